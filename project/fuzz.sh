#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Fuzz the nvstore directory decoder with libFuzzer, AddressSanitizer
# (with LeakSanitizer) and UndefinedBehaviorSanitizer.
#
#   project/fuzz.sh [RUNS]      default 20000 (the test command's smoke run)
#
# The target is tests/unit/nvstore-dir-fuzz.c, built in the clang build.
# The seed corpus is every vector of tests/unit/test-nvstore-dir.c; the
# corpus grows in build/fuzz/corpus across runs.  Any crash, leak or
# undefined behaviour stops the run with a non-zero exit status and leaves
# the input in build/fuzz/.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
B=${NVSTORE_BUILD:-$top/build}
RUNS=${1:-20000}
W=$B/fuzz

"$top/project/build.sh" clang tests/unit/nvstore-dir-fuzz >/dev/null
"$top/project/build.sh" gcc tests/unit/test-nvstore-dir >/dev/null

mkdir -p "$W/corpus" "$W/seeds"
NVSTORE_DIR_CORPUS=$W/seeds "$B/gcc/tests/unit/test-nvstore-dir" >/dev/null

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:symbolize=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
cd "$W"
rc=0
"$B/clang/tests/unit/nvstore-dir-fuzz" -runs="$RUNS" -seed=1 \
    -max_len=4096 -print_final_stats=1 -artifact_prefix="$W/" \
    corpus seeds >"$W/last-run.log" 2>&1 || rc=$?
grep -E '^(#[0-9]+ *(INITED|DONE)|Done |stat::number_of_executed_units)' \
    "$W/last-run.log" || true
if [ $rc -ne 0 ]; then
    tail -n 60 "$W/last-run.log" >&2
    echo "fuzz: libFuzzer exited with status $rc (log: $W/last-run.log)" >&2
fi
exit $rc
