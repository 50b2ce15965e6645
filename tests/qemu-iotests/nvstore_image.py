# SPDX-License-Identifier: GPL-2.0-or-later
#
# Writing and reading nvstore images by hand, following
# docs/interop/nvstore.rst, for the nvstore iotests that craft images
# (nvstore-corrupt, nvstore-hostile).  Not a test: it has no .out file.

import re

BLOCK = 4096
DATA_OFFSET = 3 * BLOCK
# The close record, in the sector after the four key slots' of the header
# block ("Opening an image")
CLOSE_OFFSET = 5 * 512


# An image-id as qemu-img info shows it: a UUID
UUID_RE = r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'


def filter_image_id(msg):  # type: ignore
    """The random image-ids (UUIDs) in @msg, a string or (recursively) a
    dict or list, as IMAGE-ID"""
    if isinstance(msg, str):
        return re.sub(UUID_RE, 'IMAGE-ID', msg)
    if isinstance(msg, dict):
        return {k: filter_image_id(v) for k, v in msg.items()}
    if isinstance(msg, list):
        return [filter_image_id(v) for v in msg]
    return msg


def poke(path: str, offset: int, data: bytes) -> None:
    """Write @data at @offset of the file @path"""
    with open(path, 'r+b') as f:
        f.seek(offset)
        f.write(data)


def flip(path: str, offset: int, mask: int) -> None:
    """Flip the bits of @mask in the byte at @offset of the file @path"""
    with open(path, 'r+b') as f:
        f.seek(offset)
        b = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([b ^ mask]))


def require_libtpms() -> None:
    """Skip the test (notrun) unless QEMU has the libtpms TPM backend"""
    # Imported here: this module is also used by tests without a VM
    import iotests  # pylint: disable=import-outside-toplevel
    probe = iotests.VM()
    try:
        probe.launch()
        types = probe.qmp('query-tpm-types')['return']
    finally:
        probe.shutdown()
    if 'libtpms' not in types:
        iotests.notrun('QEMU has no libtpms TPM backend')


def blob_node(nvstore_opts: str, blob: str, extra: str = '') -> str:
    """The option string of a node of driver nvstore-blob that makes
    @blob the data of the nvstore node that @nvstore_opts opens
    ("driver=nvstore,..."), every write request a commit
    (commit-delay=0) unless @extra says otherwise"""
    parts = []
    for opt in nvstore_opts.replace(',,', '\0').split(','):
        parts.append('file.' + opt.replace('\0', ',,'))
    delay = '' if 'commit-delay=' in extra else ',commit-delay=0'
    return (f'driver=nvstore-blob,blob={blob}{delay}'
            f'{"," + extra if extra else ""},{",".join(parts)}')


# ---- CRC-32C (Castagnoli), as crc32c(0xffffffff, buf, len) in QEMU ----

def _crc32c_table() -> 'list[int]':
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (0x82f63b78 if c & 1 else 0)
        table.append(c)
    return table


CRC32C_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    crc = 0xffffffff
    for b in data:
        crc = CRC32C_TABLE[(crc ^ b) & 0xff] ^ (crc >> 8)
    return crc ^ 0xffffffff


assert crc32c(b'123456789') == 0xe3069283


# ---- DER, as the specification's "Encoding rules" ----

def tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        octets = n.to_bytes((n.bit_length() + 7) // 8, 'big')
        length = bytes([0x80 | len(octets)]) + octets
    return bytes([tag]) + length + content


def der_int(v: int) -> bytes:
    assert v >= 0
    return tlv(0x02, v.to_bytes(v.bit_length() // 8 + 1, 'big'))


def sorted_set(elements: 'list[bytes]') -> bytes:
    """X.690 11.6: ascending order, shorter ones padded with zeros"""
    width = max((len(e) for e in elements), default=0)

    def padded(e: bytes) -> bytes:
        return e.ljust(width, b'\0')

    ordered: 'list[bytes]' = sorted(elements, key=padded)
    return b''.join(ordered)


def set_of(elements: 'list[bytes]') -> bytes:
    return tlv(0x31, sorted_set(elements))


def flag(name: str) -> bytes:
    return tlv(0x16, name.encode())


def valued(name: str, value: bytes) -> bytes:
    return tlv(0x30, tlv(0x16, name.encode()) + value)


def extent(offset: int, data: bytes, gen: int) -> bytes:
    return valued('extent', tlv(0x30, der_int(offset) + der_int(len(data)) +
                                der_int(gen) +
                                tlv(0x04, crc32c(data).to_bytes(4, 'big'))))


def entry(name: str, typ: str, mandatory: 'list[bytes]',
          optional: 'list[bytes]', data: bytes = b'') -> bytes:
    nvram = tlv(0x30, tlv(0x16, typ.encode()) + set_of(mandatory) +
                set_of(optional) + tlv(0x04, data))
    return tlv(0x30, nvram + tlv(0x0c, name.encode()))


def directory(entries: 'list[bytes]') -> bytes:
    """The CER form of the outermost SET OF"""
    return b'\x31\x80' + sorted_set(entries) + b'\0\0'


def hexvec(s: str) -> bytes:
    return bytes.fromhex(s)


# Vectors written by hand in tests/unit/test-nvstore-dir.c: entry "a",
# and entry "m" with an unknown mandatory flag "must-know" and inline
# data; and an unknown optional attribute "future" with a nested value
V_ENTRY_A = hexvec('3012 300d 1603726177 3100 3100 04026869 0c0161')
V_ENTRY_UNKNOWN_MANDATORY = hexvec('301d 3018 1603726177'
                                   '310b 16096d7573742d6b6e6f77'
                                   '3100 04026869 0c016d')
V_FUTURE_OPT_ATTR = hexvec('3012 1606667574757265 3008 0101ff a00302012a')

# The encoder above agrees with them
assert entry('a', 'raw', [], [], b'hi') == V_ENTRY_A
assert entry('m', 'raw', [flag('must-know')], [], b'hi') == \
    V_ENTRY_UNKNOWN_MANDATORY


# ---- Decoding, enough to find the parts of an image ----

def der_next(buf: bytes, pos: int) -> 'tuple[int, int, int]':
    """(tag, start of the contents, end of the value) at @pos"""
    tag, n = buf[pos], buf[pos + 1]
    if n < 0x80:
        return tag, pos + 2, pos + 2 + n
    k = n & 0x7f
    n = int.from_bytes(buf[pos + 2:pos + 2 + k], 'big')
    return tag, pos + 2 + k, pos + 2 + k + n


def parse_directory(buf: bytes) -> 'dict[str, dict[str, bytes]]':
    """name -> the encodings of the entry and of its parts"""
    assert buf[:2] == b'\x31\x80' and buf[-2:] == b'\0\0'
    entries = {}
    pos = 2
    while pos < len(buf) - 2:
        _, start, end = der_next(buf, pos)
        _, nv_start, nv_end = der_next(buf, start)
        _, name_start, name_end = der_next(buf, nv_end)
        parts = {'entry': buf[pos:end]}
        p = nv_start
        for part in ('type', 'mandatory', 'optional', 'data'):
            _, _, e = der_next(buf, p)
            parts[part] = buf[p:e]
            p = e
        entries[buf[name_start:name_end].decode()] = parts
        pos = end
    return entries


def parse_extent(mandatory: bytes) -> 'tuple[int, int, int]':
    """(offset, length, generation) of the extent in a mandatory set"""
    _, pos, end = der_next(mandatory, 0)
    while pos < end:
        tag, start, next_pos = der_next(mandatory, pos)
        if tag == 0x30:
            _, name_start, name_end = der_next(mandatory, start)
            if mandatory[name_start:name_end] == b'extent':
                _, p, _ = der_next(mandatory, name_end)
                fields = []
                for _ in range(3):
                    _, s, e = der_next(mandatory, p)
                    fields.append(int.from_bytes(mandatory[s:e], 'big'))
                    p = e
                return fields[0], fields[1], fields[2]
        pos = next_pos
    raise ValueError('no extent')


def read_slot(path: str, i: int) -> 'tuple[int, int, int]':
    """(generation, dir_offset, dir_length) of slot @i"""
    with open(path, 'rb') as f:
        f.seek(BLOCK * (1 + i))
        s = f.read(40)
    return (int.from_bytes(s[8:16], 'big'), int.from_bytes(s[16:24], 'big'),
            int.from_bytes(s[24:32], 'big'))


def read_directory(path: str, i: int) -> 'dict[str, dict[str, bytes]]':
    _, offset, length = read_slot(path, i)
    with open(path, 'rb') as f:
        f.seek(offset)
        return parse_directory(f.read(length))


# ---- Writing an image ----

# The image-id of the images written here
IMAGE_ID = bytes.fromhex('6e7673746f72652d74657374696d6167')


def header() -> bytes:
    """Magic, no feature, image-id IMAGE_ID, checksum: 44 octets"""
    h = b'QNVSTORE' + bytes(16) + IMAGE_ID
    return h + crc32c(h).to_bytes(4, 'big')


def slot(gen: int, dir_offset: int, dir_bytes: bytes) -> bytes:
    s = (b'QNVSSLOT' + gen.to_bytes(8, 'big') + dir_offset.to_bytes(8, 'big')
         + len(dir_bytes).to_bytes(8, 'big') +
         crc32c(dir_bytes).to_bytes(4, 'big'))
    return s + crc32c(s).to_bytes(4, 'big')


def write_image(path: str, slots: 'dict[int, tuple[int, int, bytes]]',
                data: 'list[tuple[int, bytes]]') -> None:
    """
    @slots: slot index -> (generation, dir_offset, directory); @data: the
    extents, as (offset, bytes).  Every directory and extent is written.
    """
    img = bytearray(DATA_OFFSET)
    img[0:44] = header()
    placed = list(data)
    for i, (gen, dir_offset, dir_bytes) in slots.items():
        pos = BLOCK * (1 + i)
        img[pos:pos + 40] = slot(gen, dir_offset, dir_bytes)
        placed.append((dir_offset, dir_bytes))
    for offset, b in placed:
        if len(img) < offset + len(b):
            img.extend(bytes(offset + len(b) - len(img)))
        img[offset:offset + len(b)] = b
    if len(img) % BLOCK:
        img.extend(bytes(BLOCK - len(img) % BLOCK))
    with open(path, 'wb') as f:
        f.write(img)
