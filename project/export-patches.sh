#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Export the overlay as a git patch series against pristine QEMU 10.0.2,
# as it would be posted to qemu-devel.
#
#   project/export-patches.sh [--check] [OUTDIR]
#
# project/series defines the series: one stanza per patch,
#
#   Subject: block/nvstore: Add the directory codec
#   Files: block/nvstore-dir.c include/block/nvstore-dir.h ...
#
#   Body paragraphs (the commit message), until the next "Subject:".
#
# Every overlay file must belong to exactly one patch.  A patch that needs
# an earlier state of a file that a later patch changes again names
# project/steps/X.patch, X as it is at that patch (pristine + that diff);
# X.patch, in the later patch, is always against pristine.  The cover letter's
# subject and text come from project/cover-letter (first line: subject).  The patches go to
# OUTDIR (default build/patches).  With --check, the series is also
# applied with "git am" to a fresh pristine tree and checked with
# "scripts/checkpatch.pl --branch".
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
B=${NVSTORE_BUILD:-$top/build}
check=0
if [ "${1:-}" = --check ]; then
    check=1
    shift
fi
OUT=${1:-$B/patches}
SERIES=$top/project/series
WORK=$B/series-work
AUTHOR_NAME=$(git -C "$top" config user.name || echo "nvstore developers")
AUTHOR_EMAIL=$(git -C "$top" config user.email || echo "nvstore@invalid")

[ -f "$B/pristine/VERSION" ] || "$top/project/assemble.sh" >/dev/null

# A git repository of the pristine tree, made once and reset each run.
init_repo() {
    local dir=$1
    if [ ! -d "$dir/.git" ]; then
        rm -rf "$dir"
        cp -a "$B/pristine" "$dir"
        git -C "$dir" init -q
        git -C "$dir" add -A
        git -C "$dir" -c user.name=QEMU -c user.email=qemu@invalid \
            commit -q -m "QEMU 10.0.2 (Debian qemu_10.0.2+ds.orig.tar.xz)"
        git -C "$dir" tag pristine
    fi
    git -C "$dir" am --abort >/dev/null 2>&1 || true
    git -C "$dir" checkout -q -f pristine 2>/dev/null
    git -C "$dir" clean -q -fdx
    git -C "$dir" branch -q -D series 2>/dev/null || true
    git -C "$dir" checkout -q -b series
}

init_repo "$WORK"
declare -A used=()
n=0
commit_patch() {
    local subject=$1 body=$2 files=$3 f target
    [ -n "$subject" ] || return 0
    for f in $files; do
        if [ ! -f "$top/$f" ]; then
            echo "export: $f (patch \"$subject\") is not in the overlay" >&2
            exit 1
        fi
        if [ -n "${used[$f]:-}" ]; then
            echo "export: $f is in two patches" >&2
            exit 1
        fi
        used[$f]=1
        if [[ $f == *.patch ]]; then
            # A patch sets the file to pristine + patch, whatever an
            # earlier step of the same file (project/steps/) made of it
            target=${f%.patch}
            target=${target#project/steps/}
            patch -s -F0 -r - --no-backup-if-mismatch -o "$WORK/$target" \
                "$B/pristine/$target" "$top/$f"
        else
            mkdir -p "$(dirname "$WORK/$f")"
            cp "$top/$f" "$WORK/$f"
            target=$f
        fi
        git -C "$WORK" add "$target"
    done
    printf '%s\n\n%s\n\nSigned-off-by: %s <%s>\n' "$subject" "$body" \
        "$AUTHOR_NAME" "$AUTHOR_EMAIL" |
        git -C "$WORK" -c user.name="$AUTHOR_NAME" -c user.email="$AUTHOR_EMAIL" \
            commit -q -F -
    n=$((n + 1))
}

subject= files= body=
while IFS= read -r line || [ -n "$line" ]; do
    case $line in
    '#'*) continue ;;
    'Subject: '*)
        commit_patch "$subject" "$(printf '%s' "$body" | sed -e '/./,$!d')" "$files"
        subject=${line#Subject: } files= body= ;;
    'Files: '*)
        files="$files ${line#Files: }" ;;
    *)
        body="$body$line"$'\n' ;;
    esac
done <"$SERIES"
commit_patch "$subject" "$(printf '%s' "$body" | sed -e '/./,$!d')" "$files"

# Every overlay file must be in the series.
missing=0
while IFS= read -r t; do
    if [ -f "$top/$t.patch" ]; then f=$t.patch; else f=$t; fi
    if [ -z "${used[$f]:-}" ]; then
        echo "export: overlay file $f is in no patch of project/series" >&2
        missing=1
    fi
done <"$B/overlay.manifest"
[ $missing -eq 0 ] || exit 1

rm -rf "$OUT"
mkdir -p "$OUT"
git -C "$WORK" format-patch -q --cover-letter -o "$OUT" pristine..series
if [ -f "$top/project/cover-letter" ]; then
    /usr/bin/python3 - "$OUT/0000-cover-letter.patch" "$top/project/cover-letter" <<'PY'
import sys
mail, src = sys.argv[1], open(sys.argv[2]).read().split('\n', 1)
s = open(mail).read()
s = s.replace('*** SUBJECT HERE ***', src[0]).replace('*** BLURB HERE ***', src[1].strip())
open(mail, 'w').write(s)
PY
fi
echo "export: $n patches in $OUT"

if [ $check -eq 1 ]; then
    CHK=$B/series-check
    init_repo "$CHK"
    mapfile -t mails < <(ls "$OUT"/*.patch | grep -v '/0000-cover-letter\.patch$')
    git -C "$CHK" -c user.name="$AUTHOR_NAME" -c user.email="$AUTHOR_EMAIL" \
        am -q "${mails[@]}"
    # The applied series must reproduce the overlay exactly.
    if [ "$(git -C "$CHK" rev-parse 'HEAD^{tree}')" != \
         "$(git -C "$WORK" rev-parse 'series^{tree}')" ]; then
        echo "export: git am of the mails does not reproduce the series" >&2
        exit 1
    fi
    (cd "$CHK" && perl scripts/checkpatch.pl --branch pristine..series)
    echo "export: series applies with git am and passes checkpatch"
fi
