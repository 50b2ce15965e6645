#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The main job: a demonstration of nvstore, growing with the project.
#
# What exists today is the directory: its specification (an ASN.1 module
# in docs/interop/nvstore.rst) and its codec (block/nvstore-dir.c on top
# of QEMU's crypto/der.c).  The demo shows a directory holding a TPM blob
# and a raw blob, byte by byte, decoded by an independent decoder
# (libtasn1) against the module taken from the specification, and the
# codec's own tests.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
B=${NVSTORE_BUILD:-$top/build}
W=$B/demo

echo "== QEMU built from the overlay"
"$B/gcc/qemu-img" --version | head -n 1
echo

rm -rf "$W"
mkdir -p "$W"
ninja -C "$B/gcc" tests/unit/test-nvstore-dir tests/unit/test-nvstore-dir-asn1 \
    >/dev/null
# The hand-written vectors of the unit test; vector-001 is a directory
# with blob "a" (type raw, inline data "hi") and blob "permall" (type
# tpm, data in an extent, realsize, a flag and a vendor attribute).
NVSTORE_DIR_CORPUS=$W/vectors "$B/gcc/tests/unit/test-nvstore-dir" >/dev/null

echo "== An nvstore directory (CER SET of DER entries), $(stat -c %s "$W/vectors/vector-001") bytes"
od -A d -t x1 "$W/vectors/vector-001"
echo

sed -n '/-- BEGIN NVSTORE ASN.1 MODULE/,/-- END NVSTORE ASN.1 MODULE/p' \
    "$top/docs/interop/nvstore.rst" | sed -e 's/^   //' \
    -e '/NVSTORE ASN.1 MODULE/d' >"$W/nvstore.asn"
echo "== The same bytes decoded by libtasn1 with the spec's ASN.1 module"
asn1Decoding "$W/nvstore.asn" "$W/vectors/vector-001" NVStore.Directory |
    sed -n '/^name:NULL/,$p' | grep -v '^$'
echo

echo "== The codec's tests"
for t in test-nvstore-dir test-nvstore-dir-asn1; do
    G_TEST_SRCDIR=$B/src/tests/unit "$B/gcc/tests/unit/$t" --tap 2>&1 |
        grep -E '^(not )?ok' | sed "s/^/$t: /"
done
echo
echo "The block driver (images, qemu-img, atomic updates) and the TPM"
echo "backend are the next steps; see the open issues."
