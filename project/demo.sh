#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The main job: a demonstration of nvstore, growing with the project.
#
# It shows the directory (a TPM blob and a raw blob, byte by byte,
# decoded by libtasn1 against the ASN.1 module of docs/interop/nvstore.rst),
# then an nvstore image made by qemu-img, and the driver's tests.
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

echo "== An nvstore image: qemu-img create needs no size"
"$B/gcc/qemu-img" create -f nvstore "$W/demo.nvs"
"$B/gcc/qemu-img" info "$W/demo.nvs"
"$B/gcc/qemu-img" check "$W/demo.nvs"
echo
echo "== Blobs through the device API: commits, reopen, a torn commit, bit rot"
ninja -C "$B/gcc" tests/unit/test-nvstore >/dev/null
"$B/gcc/tests/unit/test-nvstore" --tap 2>&1 | grep -E '^(not )?ok'
echo
echo "Next: blob access from the command line, snapshots and migration"
echo "tests, the TPM backend; see the open issues."
