#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Run QEMU's scripts/checkpatch.pl on every file the overlay adds (as a
# file) and on every .patch (as a diff).  Prints "PASS: file" or
# "FAIL: file" per file, followed by checkpatch's findings on failure;
# exits non-zero if any file has an error.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
B=${NVSTORE_BUILD:-$top/build}
CP=$B/src/scripts/checkpatch.pl
rc=0
cd "$top"
while IFS= read -r -d '' f; do
    f=${f#./}
    [[ $f =~ ^(\.git|\.ci|\.gitignore|README\.md|Makefile|project|bench|build)(/|$) ]] && continue
    case $f in
    *.patch)  args=(--no-tree --no-signoff "$f") ;;
    *.c|*.h|*.py|*.json|*.rst|*.sh|*.build|Kconfig*|trace-events)
              args=(--no-tree -f "$f") ;;
    *)        continue ;;
    esac
    if out=$(perl "$CP" --terse "${args[@]}" 2>&1) && ! grep -q 'ERROR' <<<"$out"; then
        echo "PASS: $f"
        grep 'WARNING' <<<"$out" | sed 's/^/  /'
    else
        echo "FAIL: $f"
        sed 's/^/  /' <<<"$out"
        rc=1
    fi
done < <(find . -path ./.git -prune -o -path ./build -prune -o -type f -print0 | sort -z)
exit $rc
