#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Assemble the QEMU source tree under build/: the pristine tarball, the
# fix-ups Debian's tarball needs to build (project/tarball-fixups/), and
# the nvstore overlay (every file of the repository outside the project's
# own meta directories).  A file "X.patch" in the overlay is applied to X;
# any other file is copied to its path.
#
# Incremental: a file of build/src is rewritten only when its content
# changes, so ninja rebuilds only what the edit affects.  Files that left
# the overlay are restored from the base tree.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
B=${NVSTORE_BUILD:-$top/build}
PRISTINE=$B/pristine
BASE=$B/base
SRC=$B/src
MANIFEST=$B/overlay.manifest

# Top-level entries of the repository that are not QEMU files.
META='^(\.git|\.ci|\.gitignore|README\.md|Makefile|project|bench|build)(/|$)'

tarball=$("$top/project/fetch.sh")

# roms/ is left in the tarball: the sources of the guest firmware, two
# thirds of the tree, which an x86_64-softmmu build never reads (it installs
# the prebuilt images of pc-bios/) and no file of the overlay touches.
unpack() {
    local dest=$1 tmp
    tmp=$(mktemp -d "$B/unpack.XXXXXX")
    tar -C "$tmp" --no-same-owner --exclude=qemu-10.0.2/roms -xJf "$tarball"
    mv "$tmp/qemu-10.0.2" "$dest"
    rmdir "$tmp"
}

mkdir -p "$B"
if [ ! -f "$PRISTINE/VERSION" ]; then
    echo "assemble: unpacking $(basename "$tarball")"
    rm -rf "$PRISTINE"
    unpack "$PRISTINE"
fi

# The base tree: pristine + tarball fix-ups (without roms/, even from a
# pristine tree unpacked with it).  Rebuilt from scratch when a fix-up or
# this layout changes (rare); the source tree below is then refreshed file
# by file against it.
fixsum=$( (echo "base: pristine without roms/"
           cat "$top"/project/tarball-fixups/*.patch 2>/dev/null) |
         sha256sum | cut -d' ' -f1)
if [ ! -f "$BASE/.fixups" ] || [ "$(cat "$BASE/.fixups")" != "$fixsum" ]; then
    echo "assemble: preparing base tree"
    rm -rf "$BASE"
    mkdir "$BASE"
    tar -C "$PRISTINE" --exclude=./roms -cf - . | tar -C "$BASE" -xf -
    for p in "$top"/project/tarball-fixups/*.patch; do
        [ -e "$p" ] || continue
        f=${p#"$top"/project/tarball-fixups/}
        f=${f%.patch}
        f=${f//__//}
        if ! patch -s -F0 -N -r - --no-backup-if-mismatch "$BASE/$f" "$p" >/dev/null; then
            echo "assemble: tarball fix-up ${p#"$top"/} does not apply to $f" >&2
            exit 1
        fi
    done
    echo "$fixsum" >"$BASE/.fixups"
fi
if [ ! -f "$SRC/VERSION" ]; then
    echo "assemble: creating source tree"
    rm -rf "$SRC"
    cp -a "$BASE" "$SRC"
    rm -f "$SRC/.fixups" "$MANIFEST"
fi

# install_if_changed TMPFILE DEST: move TMPFILE to DEST unless identical.
changed=0
install_if_changed() {
    if cmp -s "$1" "$2"; then
        rm -f "$1"
    else
        mkdir -p "$(dirname "$2")"
        # A changed file is new to the build, whatever its mtime in the
        # overlay: an older mtime would let make/ninja keep stale objects
        touch "$1"
        mv -f "$1" "$2"
        changed=$((changed + 1))
        echo "  updated ${2#"$SRC"/}"
    fi
}

declare -A now=()
cd "$top"
while IFS= read -r -d '' rel; do
    rel=${rel#./}
    [[ $rel =~ $META ]] && continue
    tmp=$(mktemp "$B/tmp.XXXXXX")
    if [[ $rel == *.patch ]]; then
        target=${rel%.patch}
        if [ ! -f "$BASE/$target" ]; then
            echo "assemble: $rel patches $target, which QEMU 10.0.2 does not have" >&2
            rm -f "$tmp"
            exit 1
        fi
        if ! out=$(patch -s -F0 -r - --no-backup-if-mismatch -o "$tmp" \
                   "$BASE/$target" "$rel" 2>&1); then
            echo "assemble: $rel does not apply to $target:" >&2
            echo "$out" >&2
            rm -f "$tmp"
            exit 1
        fi
        chmod --reference="$BASE/$target" "$tmp"
    else
        target=$rel
        cp -p "$rel" "$tmp"
    fi
    now[$target]=1
    install_if_changed "$tmp" "$SRC/$target"
done < <(find . -path ./.git -prune -o -path ./build -prune -o -type f -print0 | sort -z)

# Restore what left the overlay since the last run.
if [ -f "$MANIFEST" ]; then
    while IFS= read -r target; do
        [ -z "$target" ] && continue
        [ -n "${now[$target]:-}" ] && continue
        if [ -f "$BASE/$target" ]; then
            tmp=$(mktemp "$B/tmp.XXXXXX")
            cp -p "$BASE/$target" "$tmp"
            install_if_changed "$tmp" "$SRC/$target"
        else
            rm -f "$SRC/$target"
            echo "  removed $target"
        fi
    done <"$MANIFEST"
fi
for t in "${!now[@]}"; do echo "$t"; done | sort >"$MANIFEST"
echo "assemble: ${#now[@]} overlay files, $changed updated"
