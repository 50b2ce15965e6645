#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Second build with clang: -Wthread-safety checks the GRAPH_RDLOCK /
# GRAPH_WRLOCK / TSA annotations, -Werror turns findings into failures.
# Builds every object of the block layer (block/*.c, where the graph lock
# annotations live) and the objects of every C file the overlay adds or
# patches, wherever it is.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
B=${NVSTORE_BUILD:-$top/build}
OBJ=$B/clang

"$top/project/build.sh" clang build.ninja >/dev/null

# The annotations are only checked when QEMU's meson probe enabled the
# warning; refuse to report success for a check that did not run.
if ! grep -q -- '-Wthread-safety' "$OBJ/build.ninja"; then
    echo "clang-check: -Wthread-safety is not enabled in $OBJ" >&2
    exit 1
fi

mapfile -t srcs < <(sed -n 's/\.c$/.c/p' "$B/overlay.manifest" | grep '\.c$' || true)
targets=$(ninja -C "$OBJ" -t targets all 2>/dev/null | cut -d: -f1 |
          grep '\.c\.o$' | awk -v list="${srcs[*]}" '
    BEGIN { n = split(list, s, " ");
            for (i = 1; i <= n; i++) { f = s[i]; gsub("/", "_", f); want[f ".o"] = 1 } }
    { obj = $0; sub(/^.*\.p\//, "", obj) }
    obj ~ /^block_[^\/]*\.c\.o$/ || (obj in want) { print }' | sort -u)
if [ -z "$targets" ]; then
    echo "clang-check: no object targets found" >&2
    exit 1
fi
echo "clang-check: building $(echo "$targets" | wc -l) objects with clang"
# shellcheck disable=SC2086
ninja -C "$OBJ" $targets
