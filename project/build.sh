#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Configure (once) and build the assembled tree out of tree.
#   project/build.sh [gcc|clang] [ninja targets...]
# gcc is the main build (build/gcc); clang (build/clang) is a second
# build whose -Wthread-safety checks the block graph lock annotations,
# and the sanitizer build: AddressSanitizer (with LeakSanitizer) and
# UndefinedBehaviorSanitizer, aborting on the first finding, everywhere;
# with libFuzzer's coverage instrumentation (-fsanitize=fuzzer-no-link)
# for the fuzz targets that link the block layer.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
B=${NVSTORE_BUILD:-$top/build}
flavor=${1:-gcc}
shift || true
OBJ=$B/$flavor

# nettle and gcrypt: small builds for the crypto backends that gnutls
# takes the place of in the others (project/crypto-backends.sh)
# linux-io-uring: files can be opened with aio=io_uring, which submits
# I/O from the event loop instead of handing each request to a worker
# thread (bench/run.py measures nvstore's updates both ways)
# The libtpms backend's option, where the tree has it (not in the steps
# of the patch series before the backend's patch: project/series-steps.sh)
libtpms=()
if grep -q "^option('libtpms'" "$B/src/meson_options.txt"; then
    libtpms=(--enable-libtpms)
fi
opts=(
    --python=/usr/bin/python3
    --target-list=x86_64-softmmu
    --enable-tools --enable-tpm "${libtpms[@]}" --enable-gnutls --enable-kvm
    --enable-linux-io-uring
    --enable-werror
    --disable-install-blobs --disable-docs
)
small=(
    --python=/usr/bin/python3 --disable-system --disable-user
    --enable-tools --disable-docs --disable-install-blobs --enable-werror
    --disable-gnutls
)
case $flavor in
gcc)   ;;
nettle) opts=("${small[@]}" --enable-nettle --disable-gcrypt) ;;
gcrypt) opts=("${small[@]}" --disable-nettle --enable-gcrypt) ;;
clang) opts+=(--cc=clang-19 --cxx=clang++-19 --objcc=clang-19
             --enable-asan --enable-ubsan
             "--extra-cflags=-fno-sanitize-recover=undefined -fsanitize=fuzzer-no-link") ;;
*)     echo "build: unknown flavor $flavor (gcc, clang, nettle or gcrypt)" >&2
       exit 1 ;;
esac

# ccache through its masquerade directory: QEMU's configure hands meson
# an explicit compiler, which turns off meson's own ccache detection.
# Paths relative to the build directory, so that another clone of the
# project (CI's) hits the same cache entries.
if [ -d /usr/lib/ccache ]; then
    export PATH=/usr/lib/ccache:$PATH
    export CCACHE_BASEDIR=$B CCACHE_NOHASHDIR=1
fi

# Reconfigure from scratch when the options change
if [ ! -f "$OBJ/build.ninja" ] ||
   [ "$(cat "$OBJ/.nvstore-opts" 2>/dev/null)" != "${opts[*]}" ]; then
    echo "build: configuring $flavor in $OBJ"
    rm -rf "$OBJ"
    mkdir -p "$OBJ"
    (cd "$OBJ" && "$B/src/configure" "${opts[@]}") >"$B/configure-$flavor.log" 2>&1 || {
        tail -n 30 "$B/configure-$flavor.log" >&2
        echo "build: configure failed, see $B/configure-$flavor.log" >&2
        exit 1
    }
    echo "${opts[*]}" >"$OBJ/.nvstore-opts"
fi

# Binaries run from the build tree look for firmware under the bundle
# directory, not at --firmwarepath; Debian's tarball has no firmware, so
# point the bundle at Debian's packaged images (seabios, ipxe-qemu,
# qemu-system-data).
fw=$OBJ/qemu-bundle/usr/local/share/qemu
mkdir -p "$fw"
for f in /usr/share/qemu/* /usr/share/seabios/*.bin /usr/lib/ipxe/qemu/*.rom; do
    [ -e "$f" ] || continue
    ln -sfn "$f" "$fw/$(basename "$f")"
done

# Without targets, the gcc build builds what the demonstration and
# project/test.sh run, not every test program and helper of QEMU's tree
# (a third of its objects); "project/build.sh gcc all" builds them all
if [ "$flavor" = gcc ] && [ $# -eq 0 ]; then
    set -- qemu-system-x86_64 qemu-img qemu-io qemu-nbd qemu-nvstore \
        storage-daemon/qemu-storage-daemon \
        tests/unit/test-crc32c tests/unit/test-edk2-varstore \
        tests/unit/check-qjson tests/unit/test-crypto-x509-utils \
        tests/unit/test-swtpm-state tests/unit/test-crypto-tpm-ek-cert \
        tests/unit/test-nvstore-dir \
        tests/unit/test-nvstore-dir-asn1 tests/unit/test-nvstore \
        tests/unit/test-crypto-der tests/unit/test-crypto-akcipher \
        tests/unit/test-crypto-aead tests/qtest/tpm-libtpms-test \
        tests/qtest/tpm-tis-test tests/qtest/tpm-crb-test \
        tests/qtest/tpm-tis-swtpm-test tests/qtest/tpm-crb-swtpm-test \
        tests/bench/bench-nvstore
fi
ninja -C "$OBJ" "$@"
