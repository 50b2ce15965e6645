#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Build every step of the patch series and run each patch's own tests:
# what a reviewer who applies the series one patch at a time gets.
#
#   project/series-steps.sh [FIRST [LAST]]
#
# Patches are numbered from 1 as in the mails; FIRST and LAST limit the
# run to patches FIRST..LAST (the steps before FIRST are still applied).
# The tree of patch k (build/steps/src) is QEMU's base tree (pristine +
# project/tarball-fixups) with the files the series has changed so far,
# rewritten only where they differ, so that the build (build/steps/gcc,
# configured as the main build) is incremental from step to step.  Each
# step builds the whole tree ("ninja", every target), then runs the tests
# that its stanza of project/series names on its "Tests:" lines:
#
#   unit/NAME     tests/unit/NAME, with -m slow
#   iotests/NAME  the iotest NAME with format nvstore
#   qtest/NAME    tests/qtest/NAME on qemu-system-x86_64
#
# A step that does not build, or whose tests fail, is reported; the run
# goes on with the next step.  The last line says how many steps built
# and passed.  Not part of "make check": it rebuilds the tree once per
# patch (with ccache, about a minute per step after the first).
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
B=${NVSTORE_BUILD:-$top/build}
S=$B/steps
FIRST=${1:-1}
LAST=${2:-1000}
export GIT_DIR=$B/series.git

"$top/project/export-patches.sh" "$S/patches" >/dev/null || exit 1
mapfile -t commits < <(git rev-list --reverse pristine..series)

# The Tests: lines of each stanza, in series order
mapfile -t tests < <(awk '
    /^#/ { next }
    /^Subject: / { if (n++) print t; t = ""; next }
    /^Tests: / { sub(/^Tests: /, ""); t = t " " $0 }
    END { if (n) print t }' "$top/project/series")
if [ ${#tests[@]} -ne ${#commits[@]} ]; then
    echo "series-steps: ${#tests[@]} stanzas, ${#commits[@]} commits" >&2
    exit 1
fi

# The base tree once; src is rewritten file by file
mkdir -p "$S"
if [ ! -f "$S/src/VERSION" ]; then
    rm -rf "$S/src"
    cp -a "$B/base" "$S/src"
    rm -f "$S/src/.fixups"
fi
: >"$S/changed.new"
[ -f "$S/changed" ] || : >"$S/changed"

# put TARGET: make src/TARGET what the series has at the current step
# (or the base tree's, if the series does not change it), plus any
# tarball fix-up of it; its mtime changes only if its content does
put() {
    local t=$1 tmp fix
    tmp=$(mktemp "$S/tmp.XXXXXX")
    if git cat-file -e "$commit:$t" 2>/dev/null; then
        git cat-file blob "$commit:$t" >"$tmp"
        fix=$top/project/tarball-fixups/${t//\//__}.patch
        if [ -f "$fix" ]; then
            patch -s -F0 -r - --no-backup-if-mismatch "$tmp" "$fix" >/dev/null
        fi
    elif [ -f "$B/base/$t" ]; then
        cp -p "$B/base/$t" "$tmp"
    else
        rm -f "$tmp" "$S/src/$t"
        return
    fi
    if [ -f "$B/base/$t" ]; then
        chmod --reference="$B/base/$t" "$tmp"
    elif git ls-tree "$commit" -- "$t" | grep -q '^100755'; then
        chmod 755 "$tmp"
    fi
    if cmp -s "$tmp" "$S/src/$t"; then
        rm -f "$tmp"
    else
        mkdir -p "$(dirname "$S/src/$t")"
        mv -f "$tmp" "$S/src/$t"
    fi
}

built=0 passed=0 total=0
for i in "${!commits[@]}"; do
    k=$((i + 1))
    commit=${commits[$i]}
    [ "$k" -le "$LAST" ] || break
    # The files of this step: those the series changed so far, and those
    # it changed at the step before (to restore those it no longer does)
    git diff --name-only pristine "$commit" >"$S/changed.new"
    sort -u "$S/changed" "$S/changed.new" | while IFS= read -r t; do
        put "$t"
    done
    mv "$S/changed.new" "$S/changed"
    [ "$k" -ge "$FIRST" ] || continue

    total=$((total + 1))
    subject=$(git log -1 --format=%s "$commit")
    log=$S/step-$k.log
    echo "=== $k: $subject"
    if ! NVSTORE_BUILD=$S "$top/project/build.sh" gcc all >"$log" 2>&1; then
        tail -n 20 "$log"
        echo "FAIL: $k does not build (see $log)"
        continue
    fi
    built=$((built + 1))
    ok=1
    for t in ${tests[$i]}; do
        case $t in
        unit/*)
            G_TEST_SRCDIR=$S/src/tests/unit timeout -k 10 900 \
                "$S/gcc/tests/$t" -m slow --tap >>"$log" 2>&1 ;;
        qtest/*)
            QTEST_QEMU_BINARY=$S/gcc/qemu-system-x86_64 \
            QTEST_QEMU_IMG=$S/gcc/qemu-img timeout -k 10 900 \
                "$S/gcc/tests/$t" --tap >>"$log" 2>&1 ;;
        iotests/*)
            (cd "$S/gcc/tests/qemu-iotests" &&
             timeout -k 10 900 /usr/bin/python3 ./check -nvstore "${t#iotests/}") \
                >>"$log" 2>&1 ;;
        *)
            echo "series-steps: unknown test $t in the stanza of patch $k" >&2
            false ;;
        esac
        rc=$?
        if [ $rc -eq 0 ]; then
            echo "  pass $t"
        else
            echo "  FAIL $t (exit $rc, see $log)"
            ok=0
        fi
    done
    if [ $ok = 1 ]; then
        passed=$((passed + 1))
        echo "PASS: $k (${tests[$i]:- no tests of its own})"
    else
        echo "FAIL: $k"
    fi
done
echo "$total steps: $built built, $passed built and passed their tests"
[ "$passed" -eq "$total" ]
