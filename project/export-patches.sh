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
#   Tests: unit/test-nvstore iotests/nvstore-basic   (project/series-steps.sh)
#
# Every overlay file must belong to exactly one patch.  A patch that needs
# an earlier state of a file that a later patch changes again names
# project/steps/X.patch, X as it is at that patch (pristine + that diff);
# X.patch, in the later patch, is always against pristine.  Or the later
# patch names project/later/TAG/X.patch, what it adds to X: X is then, at
# every patch before it, as the overlay has it less the later diffs
# (reversed, the last first).  TAG only groups the diffs of one patch.  The cover letter's
# subject and text come from project/cover-letter (first line: subject).  The patches go to
# OUTDIR (default build/patches).  With --check, the mails are also
# applied to pristine QEMU the way "git am" applies them (git mailinfo, git
# apply), the result must be the series' tree, and the applied commits are
# checked with "scripts/checkpatch.pl --branch".
#
# The repository (build/series.git) has no work tree: files go into its
# index with "git hash-object" and "git update-index", and the mails are
# applied to an index of their own.  A checked-out QEMU tree would cost
# another 400 MiB of disk per copy for nothing.
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
AUTHOR_NAME=$(git -C "$top" config user.name || echo "nvstore developers")
AUTHOR_EMAIL=$(git -C "$top" config user.email || echo "nvstore@invalid")

[ -f "$B/pristine/VERSION" ] || "$top/project/assemble.sh" >/dev/null

GIT_DIR=$B/series.git
export GIT_DIR

# The trees of the copies this script once checked out.
rm -rf "$B/series-work" "$B/series-check"

# The pristine tree as commit "pristine", made once.
if ! git rev-parse -q --verify 'refs/tags/pristine^{commit}' >/dev/null 2>&1; then
    rm -rf "$GIT_DIR"
    git init -q --bare
    GIT_INDEX_FILE=$GIT_DIR/index git --work-tree="$B/pristine" add -A
    tree=$(GIT_INDEX_FILE=$GIT_DIR/index git write-tree)
    c=$(echo "QEMU 10.0.2 (Debian qemu_10.0.2+ds.orig.tar.xz)" |
        git -c user.name=QEMU -c user.email=qemu@invalid commit-tree "$tree")
    git tag pristine "$c"
    git repack -adq
fi

# commit_tree INDEX BRANCH: commit INDEX onto BRANCH with the message on
# stdin and the author (name, e-mail, date) in the environment, if set.
commit_tree() {
    local tree c
    tree=$(GIT_INDEX_FILE=$1 git write-tree)
    c=$(git -c user.name="$AUTHOR_NAME" -c user.email="$AUTHOR_EMAIL" \
        commit-tree "$tree" -p "refs/heads/$2")
    git update-ref "refs/heads/$2" "$c"
}

INDEX=$GIT_DIR/series-index
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
git update-ref refs/heads/series pristine
GIT_INDEX_FILE=$INDEX git read-tree pristine

# The series, read first: patch k has subjects[k], bodies[k], files[k]
subjects=() bodies=() files=()
subject= fs= body=
add_stanza() {
    [ -n "$subject" ] || return 0
    subjects+=("$subject")
    bodies+=("$(printf '%s' "$body" | sed -e '/./,$!d')")
    files+=("$fs")
}
while IFS= read -r line || [ -n "$line" ]; do
    case $line in
    '#'*) continue ;;
    'Subject: '*)
        add_stanza
        subject=${line#Subject: } fs= body= ;;
    'Files: '*)
        fs="$fs ${line#Files: }" ;;
    'Tests: '*)
        continue ;;
    *)
        body="$body$line"$'\n' ;;
    esac
done <"$SERIES"
add_stanza

# later[X]: "K:FILE ..." for each project/later/TAG/X.patch of patch K, in
# series order: what patch K adds to X, which an earlier patch created
declare -A later=()
for k in "${!subjects[@]}"; do
    for f in ${files[$k]}; do
        if [[ $f == project/later/*/*.patch ]]; then
            t=${f#project/later/*/}
            t=${t%.patch}
            later[$t]="${later[$t]:-}$k:$f "
        fi
    done
done

# state_at TARGET K OUT: TARGET as it is after patch K: as the overlay
# has it (a new file, or pristine + X.patch), less what the patches after
# K add to it (their project/later/*/TARGET.patch, reversed, last first)
state_at() {
    local t=$1 k=$2 out=$3 e j f list=()
    if [ -f "$top/$t.patch" ]; then
        patch -s -F0 -r - --no-backup-if-mismatch -o "$out" \
            "$B/pristine/$t" "$top/$t.patch"
    else
        cp "$top/$t" "$out"
    fi
    for e in ${later[$t]:-}; do
        list=("$e" "${list[@]}")
    done
    for e in "${list[@]}"; do
        j=${e%%:*}
        f=${e#*:}
        [ "$j" -gt "$k" ] || continue
        if ! patch -s -R -F0 -r - --no-backup-if-mismatch "$out" \
               "$top/$f" >/dev/null; then
            echo "export: $f does not reverse out of $t" >&2
            exit 1
        fi
    done
}

declare -A used=()
n=0
commit_patch() {
    local k=$1 subject=${subjects[$1]} f target file mode sha
    for f in ${files[$k]}; do
        if [ ! -f "$top/$f" ]; then
            echo "export: $f (patch \"$subject\") is not in the overlay" >&2
            exit 1
        fi
        if [ -n "${used[$f]:-}" ]; then
            echo "export: $f is in two patches" >&2
            exit 1
        fi
        used[$f]=1
        file=$TMP/state
        if [[ $f == project/steps/*.patch ]]; then
            # An earlier state of a file that a later patch changes
            # again: pristine + this diff
            target=${f#project/steps/}
            target=${target%.patch}
            patch -s -F0 -r - --no-backup-if-mismatch -o "$file" \
                "$B/pristine/$target" "$top/$f"
        else
            if [[ $f == project/later/*/*.patch ]]; then
                target=${f#project/later/*/}
            else
                target=$f
            fi
            target=${target%.patch}
            [[ $f == *.patch ]] || target=$f
            state_at "$target" "$k" "$file"
        fi
        if [ -f "$B/pristine/$target" ]; then
            # the file keeps its pristine mode
            mode=$(git ls-tree pristine -- "$target" | cut -d' ' -f1)
        elif [ -x "$top/$target" ]; then
            mode=100755
        else
            mode=100644
        fi
        sha=$(git hash-object -w -- "$file")
        GIT_INDEX_FILE=$INDEX git update-index --add \
            --cacheinfo "$mode,$sha,$target"
    done
    printf '%s\n\n%s\n\nSigned-off-by: %s <%s>\n' "$subject" "${bodies[$k]}" \
        "$AUTHOR_NAME" "$AUTHOR_EMAIL" | commit_tree "$INDEX" series
    n=$((n + 1))
}

for k in "${!subjects[@]}"; do
    commit_patch "$k"
done

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
git format-patch -q --cover-letter -o "$OUT" pristine..series
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
    # What "git am" does, mail by mail, into an index of its own
    CHKINDEX=$GIT_DIR/check-index
    git update-ref refs/heads/applied pristine
    GIT_INDEX_FILE=$CHKINDEX git read-tree pristine
    for mail in "$OUT"/*.patch; do
        [ "${mail##*/}" != 0000-cover-letter.patch ] || continue
        git mailinfo "$TMP/msg" "$TMP/diff" <"$mail" >"$TMP/info"
        if ! GIT_INDEX_FILE=$CHKINDEX git apply --cached "$TMP/diff"; then
            echo "export: ${mail##*/} does not apply" >&2
            exit 1
        fi
        subject=$(sed -n 's/^Subject: //p' "$TMP/info")
        {
            printf '%s\n\n' "$subject"
            cat "$TMP/msg"
        } | GIT_AUTHOR_NAME=$(sed -n 's/^Author: //p' "$TMP/info") \
            GIT_AUTHOR_EMAIL=$(sed -n 's/^Email: //p' "$TMP/info") \
            GIT_AUTHOR_DATE=$(sed -n 's/^Date: //p' "$TMP/info") \
            commit_tree "$CHKINDEX" applied
    done
    # The applied series must reproduce the overlay exactly.
    if [ "$(git rev-parse 'applied^{tree}')" != \
         "$(git rev-parse 'series^{tree}')" ]; then
        echo "export: the mails applied do not reproduce the series" >&2
        exit 1
    fi
    # checkpatch reads the commits through GIT_DIR; the pristine tree
    # is the QEMU tree it wants to run in
    (cd "$B/pristine" && perl scripts/checkpatch.pl --branch pristine..applied)
    echo "export: the mails apply to pristine QEMU and pass checkpatch"
fi
