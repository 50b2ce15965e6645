#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Install what building and testing nvstore needs on Debian 12 (bookworm).
# Idempotent: when every package is already installed it does nothing.
set -euo pipefail

SUDO=
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
fi

# Packages from bookworm (main).  clang-19, not bookworm's default clang
# 14: QEMU enables -Wthread-safety only if the compiler handles the
# cleanup attribute in its probe, which clang 14 and 16 fail.
PKGS=(
    build-essential pkg-config git make ninja-build flex bison ccache
    clang-19 libclang-rt-19-dev llvm-19
    libglib2.0-dev zlib1g-dev libfdt-dev libpixman-1-dev libtpms-dev
    libgnutls28-dev libtasn1-6-dev libtasn1-bin liburing-dev
    python3-venv python3-pyasn1 python3-setuptools python3-cryptography
    seabios ipxe-qemu qemu-system-data
    swtpm swtpm-tools
    socat xz-utils file strace
    tpm2-tools busybox-static cpio gnuplot-nox ovmf openssl
)
# Packages that must come from bookworm-backports (name/target).
# python3-virt-firmware (virt-fw-vars) is the other implementation of
# the UEFI variable store that iotest nvstore-vars checks ours against.
BPO_PKGS=(meson python3-pycotap python3-virt-firmware)

SRCLIST=/etc/apt/sources.list.d/nvstore-project.sources

missing=()
for p in "${PKGS[@]}" "${BPO_PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
        missing+=("$p")
    fi
done
meson_ok=0
if command -v meson >/dev/null 2>&1 &&
   dpkg --compare-versions "$(meson --version 2>/dev/null || echo 0)" ge 1.5; then
    meson_ok=1
fi

if [ ! -f "$SRCLIST" ] || [ ${#missing[@]} -gt 0 ] || [ $meson_ok -eq 0 ]; then
    if [ ! -f "$SRCLIST" ]; then
        echo "deps: adding $SRCLIST (deb-src bookworm, bookworm-backports)"
        $SUDO tee "$SRCLIST" >/dev/null <<'EOS'
# Added by nvstore's project/deps.sh
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOS
    fi
    echo "deps: apt-get update"
    $SUDO apt-get update -q
    echo "deps: installing ${missing[*]:-(backports refresh)}"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends "${PKGS[@]}"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends -t bookworm-backports "${BPO_PKGS[@]}"
else
    echo "deps: all packages present"
fi
# ccache's masquerade links for compilers installed after ccache
if [ ! -e /usr/lib/ccache/clang-19 ] && command -v update-ccache-symlinks >/dev/null; then
    $SUDO update-ccache-symlinks
fi
