#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The main job: a demonstration of nvstore, growing with the project.
#
# It shows the directory (a TPM blob and a raw blob, byte by byte,
# decoded by libtasn1 against the ASN.1 module of docs/interop/nvstore.rst),
# then the driver's tests, then an nvstore image inside qcow2: blobs
# written with qemu-io, a qcow2 snapshot, changes, and the revert, with
# qemu-img info before and after; then the main job: a real Linux guest
# whose TPM (-tpmdev libtpms) keeps its state in nvstore across boots.
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
NVSTORE_CRASH_ITERATIONS=50 "$B/gcc/tests/unit/test-nvstore" -m slow --tap \
    2>&1 |
    grep -E '^(not )?ok|crash points'
echo

# An nvstore image inside a qcow2 container: qcow2's internal snapshots
# capture every blob at once.
img=$W/nvram.qcow2
nvs="driver=nvstore,file.driver=qcow2,file.file.filename=$img"
qemu_img() {
    echo "\$ qemu-img $*" | sed "s|$W/||g"
    "$B/gcc/qemu-img" "$@" | sed "s|$W/||g"
}
# qemu_io BLOB-OPTIONS COMMANDS...: qemu-io on one blob (a node of
# driver nvstore-blob over the nvstore node, every write a commit),
# without timings
qemu_io() {
    local o="driver=nvstore-blob,$1,commit-delay=0,file.driver=nvstore"
    o+=",file.file.driver=qcow2,file.file.file.filename=$img"
    shift
    echo "\$ qemu-io --image-opts $o $*" | sed "s|$W/||g"
    "$B/gcc/qemu-io" --image-opts "$o" "$@" | sed -e '/ ops; /d'
}
qemu_nvstore() {
    echo "\$ qemu-nvstore $*" | sed "s|$W/||g"
    "$B/gcc/qemu-nvstore" "$@" | sed "s|$W/||g"
}
echo "== An nvstore image inside qcow2: one command"
qemu_img create -f nvstore -o container=qcow2 "$img"
echo
echo "== Two blobs, written with qemu-io through nvstore-blob nodes"
qemu_io blob=vars -c 'truncate 8k' -c 'write -P 0x11 0 8k'
qemu_io blob=tpm-permall,blob-type=tpm -c 'truncate 3000' \
    -c 'write -P 0x22 0 3000'
echo
qemu_img info --image-opts "$nvs"
echo
echo "== Snapshot 'before' of the qcow2 container, with every blob in it"
qemu_img snapshot -c before --image-opts "$nvs"
qemu_img snapshot -l --image-opts "$nvs"
echo
echo "== Change both blobs and add one"
qemu_io blob=vars -c 'write -P 0x33 0 8k'
qemu_io blob=tpm-permall -c 'truncate 5000' -c 'write -P 0x44 0 5000'
qemu_io blob=later -c 'truncate 1k' -c 'write -P 0x55 0 1k'
qemu_nvstore list "$img"
echo
echo "== Revert to 'before'"
qemu_img snapshot -a before --image-opts "$nvs"
qemu_img info --image-opts "$nvs"
echo
echo "== The old contents are back (qemu-io verifies the patterns)"
qemu_io blob=vars -c 'read -P 0x11 0 8k'
qemu_io blob=tpm-permall -c 'read -P 0x22 0 3000'
qemu_img check --image-opts "$nvs"
echo
echo
echo "== A real guest on -tpmdev libtpms, its TPM state in nvstore inside qcow2"
echo "   (Linux's TPM driver and tpm2-tools; two boots on one image)"
"$top/project/guest-tpm.sh" tis
echo
echo
echo "== UEFI variables and the TPM in one nvstore image: Debian's OVMF, its"
echo "   variable store in an nvstore-blob node beside the TPM's state"
"$top/project/guest-uefi.sh"
