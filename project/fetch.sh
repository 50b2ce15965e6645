#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Fetch Debian's source tarball of QEMU 10.0.2 into the download cache
# and verify its checksum.  Prints the tarball's path on stdout.
#
# Only qemu_10.0.2+ds.orig.tar.xz is used; the .dsc and .debian.tar.xz
# of the backport may not be downloadable and are not needed.
set -euo pipefail

QEMU_UPSTREAM=10.0.2
TARBALL="qemu_${QEMU_UPSTREAM}+ds.orig.tar.xz"
SHA256=0901da33844a331bf8b3602b9c1fbd178e60b737c8e3ade678255bd090c9b9f1
CACHE=${NVSTORE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nvstore}

mkdir -p "$CACHE"
if [ -f "$CACHE/$TARBALL" ] &&
   echo "$SHA256  $CACHE/$TARBALL" | sha256sum --status -c -; then
    echo "$CACHE/$TARBALL"
    exit 0
fi

# Any Debian revision of 10.0.2+ds ships the same orig tarball.
ver=$(apt-cache showsrc qemu 2>/dev/null |
      sed -n "s/^Version: \(1:${QEMU_UPSTREAM//./\\.}+ds-.*\)$/\1/p" | head -n 1)
if [ -z "$ver" ]; then
    echo "fetch: no source package qemu 1:${QEMU_UPSTREAM}+ds-* in the apt" \
         "sources; run project/deps.sh first (it adds bookworm-backports deb-src)" >&2
    exit 1
fi

tmp=$(mktemp -d "$CACHE/dl.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "fetch: apt-get source --download-only qemu=$ver" >&2
# apt-get fails when the .dsc or the Debian diff is missing on the
# mirror; only the orig tarball matters, so judge by that file.
(cd "$tmp" && apt-get source --download-only "qemu=$ver" >&2) || true
if [ ! -f "$tmp/$TARBALL" ]; then
    echo "fetch: apt-get source did not download $TARBALL" >&2
    exit 1
fi
got=$(sha256sum "$tmp/$TARBALL" | cut -d' ' -f1)
if [ "$got" != "$SHA256" ]; then
    echo "fetch: checksum mismatch for $TARBALL:" >&2
    echo "fetch:   expected $SHA256" >&2
    echo "fetch:   got      $got" >&2
    exit 1
fi
mv "$tmp/$TARBALL" "$CACHE/$TARBALL"
echo "$CACHE/$TARBALL"
