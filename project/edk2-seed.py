#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
#
# A fuzz seed of edk2-varstore-fuzz from an edk2 variable flash:
#
#   project/edk2-seed.py FLASH SEED [SIZE]
#
# the firmware volume cut to SIZE octets (default 8 KiB: its length,
# block map and checksum, the store's size, and the variables that fit),
# after the mode octet 0 of the fuzz target (a flash image), so that
# libFuzzer mutates small inputs.
import struct
import sys

src, dst = sys.argv[1], sys.argv[2]
size = int(sys.argv[3], 0) if len(sys.argv) > 3 else 0x2000
with open(src, 'rb') as f:
    d = bytearray(f.read())
hlen = struct.unpack_from('<H', d, 48)[0]
out = d[:size]
struct.pack_into('<Q', out, 32, size)
struct.pack_into('<LL', out, 56, size // 0x1000, 0x1000)
struct.pack_into('<H', out, 50, 0)
s = sum(struct.unpack_from('<%dH' % (hlen // 2), out, 0)) & 0xffff
struct.pack_into('<H', out, 50, -s & 0xffff)
struct.pack_into('<L', out, hlen + 16, size - hlen)
pos = (hlen + 28 + 3) & ~3
while pos + 60 <= size and struct.unpack_from('<H', out, pos)[0] == 0x55aa:
    ns, ds = struct.unpack_from('<LL', out, pos + 36)
    if pos + 60 + ns + ds > size:
        out[pos:] = b'\xff' * (size - pos)
        break
    pos = (pos + 60 + ns + ds + 3) & ~3
with open(dst, 'wb') as f:
    f.write(b'\0' + bytes(out))
