#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Move the state of a TPM between an nvstore image (-tpmdev libtpms) and
# a swtpm state directory (-tpmdev emulator), in either direction.
#
#   nvstore-tpm-state.py [--object OBJDEF]... export IMAGE-OPTS DIR
#   nvstore-tpm-state.py [--object OBJDEF]... import DIR IMAGE-OPTS
#
# IMAGE-OPTS opens the nvstore node, as qemu-img --image-opts takes it,
# e.g. driver=nvstore,file.driver=qcow2,file.file.filename=vm-state.qcow2
# An encrypted image needs its secret: --object secret,id=sec0,file=KEYFILE
# and encrypt.key-secret=sec0 in IMAGE-OPTS.  --object goes to qemu-img
# and qemu-io as given.
# Neither QEMU nor swtpm may be using the state meanwhile.
#
# The TPM's persistent blobs (tpm2-00.permall for a TPM 2.0, tpm-00.permall
# and tpm-00.savestate for a TPM 1.2) are copied; the volatile state
# never is (libtpms starts without it, as after a power cycle).  Export
# writes the raw libtpms blobs, which swtpm reads as its version 1
# format; import accepts both those and swtpm's own unencrypted blobs
# (a 10-byte header and a data TLV), and refuses encrypted ones.
#
# qemu-img and qemu-io are taken from $QEMU_IMG and $QEMU_IO, or PATH.

import json
import os
import subprocess
import sys
import tempfile

TPM_BLOBS = ('tpm2-00.permall', 'tpm-00.permall', 'tpm-00.savestate')

QEMU_IMG = os.environ.get('QEMU_IMG', 'qemu-img')
QEMU_IO = os.environ.get('QEMU_IO', 'qemu-io')

# --object arguments for qemu-img and qemu-io (secrets)
OBJECTS: 'list[str]' = []

# swtpm_nvstore.c: struct nvram_backend_blobheader and its TLVs
SWTPM_BLOBHEADER_VERSION = 2
SWTPM_FLAGS_ENCRYPTED = 0x01 | 0x02
SWTPM_TAG_DATA = 1


class Failure(Exception):
    pass


def run(*args: str) -> str:
    res = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True, check=False)
    if res.returncode:
        raise Failure(f'{args[0]} failed: {res.stderr.strip()}')
    return res.stdout


def blob_opts(image_opts: str, name: str, extra: str = '') -> str:
    """Options of a node of driver nvstore-blob that makes blob @name
    the data of the nvstore node that @image_opts opens, every write a
    commit"""
    below = ','.join('file.' + o.replace('\0', ',,')
                     for o in image_opts.replace(',,', '\0').split(','))
    return f'driver=nvstore-blob,blob={name},commit-delay=0{extra},{below}'


def tpm_blobs(image_opts: str) -> 'list[dict]':
    info = json.loads(run(QEMU_IMG, 'info', *OBJECTS, '--output=json',
                          '--image-opts', image_opts))
    if info.get('format') != 'nvstore':
        raise Failure('the image options do not open an nvstore node')
    return [b for b in info['format-specific']['data']['blobs']
            if b['name'] in TPM_BLOBS]


def export_state(image_opts: str, directory: str) -> None:
    blobs = tpm_blobs(image_opts)
    if not blobs:
        raise Failure('the image holds no TPM state')
    for b in blobs:
        if 'unusable' in b or b['type'] != 'tpm':
            raise Failure(f"blob {b['name']} is not a usable TPM blob")
        size = b.get('realsize', b['size'])
        path = os.path.join(directory, b['name'])
        run(QEMU_IMG, 'dd', *OBJECTS, '--image-opts', '-O', 'raw', 'bs=1',
            f'count={size}', f"if={blob_opts(image_opts, b['name'])}",
            f'of={path}')
        # The node's length is a whole number of sectors
        os.truncate(path, size)
        print(f"exported {b['name']}: {size} bytes")


def unwrap_swtpm(name: str, data: bytes) -> bytes:
    """libtpms' bytes from a swtpm state file, with or without a header"""
    if len(data) < 10 or data[0] != SWTPM_BLOBHEADER_VERSION:
        return data         # version 1: raw libtpms data
    hdrsize = int.from_bytes(data[2:4], 'big')
    flags = int.from_bytes(data[4:6], 'big')
    totlen = int.from_bytes(data[6:10], 'big')
    if hdrsize < 10 or totlen != len(data):
        raise Failure(f'{name}: not a swtpm state file')
    if flags & SWTPM_FLAGS_ENCRYPTED:
        raise Failure(f'{name}: encrypted swtpm state cannot be imported; '
                      f'decrypt it with swtpm first')
    tlv = data[hdrsize:]
    if len(tlv) < 6 or int.from_bytes(tlv[0:2], 'big') != SWTPM_TAG_DATA:
        raise Failure(f'{name}: no data in the swtpm state file')
    length = int.from_bytes(tlv[2:6], 'big')
    if length > len(tlv) - 6:
        raise Failure(f'{name}: swtpm state file cut short')
    return tlv[6:6 + length]


def import_state(directory: str, image_opts: str) -> None:
    names = [n for n in TPM_BLOBS
             if os.path.exists(os.path.join(directory, n))]
    if not any(n.endswith('.permall') for n in names):
        raise Failure(f'{directory} holds no TPM state (*.permall)')
    tpm_blobs(image_opts)       # an nvstore node, readable
    for name in names:
        with open(os.path.join(directory, name), 'rb') as f:
            data = unwrap_swtpm(name, f.read())
        with tempfile.NamedTemporaryFile() as tmp:
            tmp.write(data)
            tmp.flush()
            # Two commits, each atomic: resize, then the contents
            run(QEMU_IO, *OBJECTS, '--image-opts',
                blob_opts(image_opts, name, ',blob-type=tpm'),
                '-c', f'truncate {len(data)}',
                '-c', f'write -s {tmp.name} 0 {len(data)}')
        print(f'imported {name}: {len(data)} bytes')


def main() -> int:
    args = sys.argv[1:]
    while len(args) >= 2 and args[0] == '--object':
        OBJECTS.extend(args[:2])
        args = args[2:]
    if len(args) != 3 or args[0] not in ('export', 'import'):
        print(__doc__ or '', 'usage: nvstore-tpm-state.py [--object OBJDEF]'
              '... export IMAGE-OPTS DIR | import DIR IMAGE-OPTS',
              file=sys.stderr)
        return 2
    try:
        if args[0] == 'export':
            export_state(args[1], args[2])
        else:
            import_state(args[1], args[2])
    except (Failure, OSError) as e:
        print(f'nvstore-tpm-state: {e}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
