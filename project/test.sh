#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The project's test command: set up, build, and run every test.
# Ends with one line "N passed, N failed, N skipped" counting every test
# it ran and exits non-zero if any failed.
#
# Environment:
#   NVSTORE_TEST_SKIP_UPSTREAM=1   skip the upstream iotests quick groups
#                                  (for quick local iterations only)
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
B=${NVSTORE_BUILD:-$top/build}
LOG=$B/test-logs
JOBS=${NVSTORE_TEST_JOBS:-2}

passed=0
failed=0
skipped=0
failures=()

t_pass() { passed=$((passed + 1)); echo "PASS: $1"; }
t_fail() { failed=$((failed + 1)); failures+=("$1"); echo "FAIL: $1"; }
t_skip() { skipped=$((skipped + 1)); echo "SKIP: $1"; }

summary() {
    echo
    if [ ${#failures[@]} -gt 0 ]; then
        echo "Failed:"
        printf '  %s\n' "${failures[@]}"
    fi
    echo "$passed passed, $failed failed, $skipped skipped"
    [ "$failed" -eq 0 ]
    exit
}

step() { echo; echo "=== $* ($(date +%T))"; }

# --- Setup: a failure here fails the whole run -----------------------------
step "setup"
start=$(date +%s)
# A clean run takes about 2.5 GiB under build/ (QEMU's sources three
# times, four builds, the guests); say so up front, not as a failure
# half-way
mkdir -p "$B"
free_mib=$(df -Pm "$B" | awk 'NR == 2 { print $4 }')
if [ "${free_mib:-0}" -lt 3072 ]; then
    echo "note: ${free_mib} MiB free under $B; a clean run needs about 2.5 GiB"
fi
if ! "$top/project/deps.sh"; then
    t_fail "setup: project/deps.sh"
    summary
fi
if ! "$top/project/assemble.sh"; then
    t_fail "setup: project/assemble.sh"
    summary
fi
mkdir -p "$LOG"
if "$top/project/build.sh" gcc >"$LOG/build-gcc.log" 2>&1; then
    t_pass "build: gcc ($(( $(date +%s) - start ))s from setup start)"
else
    tail -n 40 "$LOG/build-gcc.log"
    t_fail "build: gcc (see $LOG/build-gcc.log)"
    summary
fi

# --- The other builds, in the background ---------------------------------------
# clang (-Wthread-safety on the overlay's objects; the sanitizer build of
# the tools, unit tests, system emulator and fuzz targets), then the two
# small builds of the AEAD API's nettle and libgcrypt backends.  They run
# at the lowest priority while the tests of the gcc build run, on the
# CPU time those leave idle (a guest under TCG, a unit test, a test
# waiting for its flushes: one core of two); their results are reported
# where the tests that need them run.  A build that runs longer than
# $BG_TIMEOUT seconds hangs and is killed.
SAN_TARGETS=(qemu-img qemu-io qemu-nvstore tests/unit/test-nvstore
             tests/unit/test-nvstore-dir tests/unit/test-crc32c
             tests/unit/test-edk2-varstore tests/unit/check-qjson
             tests/unit/test-swtpm-state
             tests/unit/test-crypto-aead qemu-system-x86_64
             tests/qtest/tpm-libtpms-test
             tests/unit/nvstore-dir-fuzz tests/unit/nvstore-fuzz
             tests/unit/edk2-varstore-fuzz tests/unit/swtpm-state-fuzz)
BG_TIMEOUT=${NVSTORE_BG_BUILD_TIMEOUT:-3600}
step "builds in the background: clang, nettle, gcrypt"
rm -f "$LOG"/bg-*.rc
(
    bg() {
        local name=$1
        shift
        timeout -k 10 "$BG_TIMEOUT" nice -n 19 "$@" \
            >"$LOG/build-$name.log" 2>&1
        echo $? >"$LOG/bg-$name.rc"
    }
    bg clang "$top/project/clang-check.sh"
    bg sanitizers "$top/project/build.sh" clang "${SAN_TARGETS[@]}"
    for flavor in nettle gcrypt; do
        bg $flavor "$top/project/build.sh" $flavor tests/unit/test-crypto-aead
    done
) &
bg_pid=$!
# bg_result NAME: the exit status of background build NAME, once it has
# finished (each has a timeout; if the job is gone without a status, 1)
bg_result() {
    while [ ! -f "$LOG/bg-$1.rc" ] && kill -0 $bg_pid 2>/dev/null; do
        sleep 1
    done
    cat "$LOG/bg-$1.rc" 2>/dev/null || echo 1
}

# --- checkpatch on every file the overlay adds or changes --------------------
step "checkpatch"
while IFS= read -r line; do
    case $line in
    PASS:*) t_pass "checkpatch: ${line#PASS: }" ;;
    FAIL:*) t_fail "checkpatch: ${line#FAIL: }" ;;
    *) echo "$line" ;;
    esac
done < <("$top/project/checkpatch.sh")

# --- The overlay as a patch series against pristine QEMU ---------------------
step "patch series"
if [ -n "$(cat "$B/overlay.manifest")" ]; then
    if "$top/project/export-patches.sh" --check >"$LOG/series.log" 2>&1; then
        t_pass "series: mails apply to pristine 10.0.2 + checkpatch --branch"
    else
        tail -n 30 "$LOG/series.log"
        t_fail "series: (see $LOG/series.log)"
    fi
fi

# --- Unit tests (glib, TAP) --------------------------------------------------
# run_gtest NAME [DIR [FLAVOR]]: one result per test case of
# build/FLAVOR/tests/DIR/NAME (DIR: unit by default, or qtest; FLAVOR: gcc
# by default, or clang, the sanitizer build), slow test cases included
# (-m slow: test-nvstore's crash loop and power cuts).  With
# GTEST_NO_SKIP=1, a skipped test case fails (what it needs is installed).
# A test that runs longer than $GTEST_TIMEOUT seconds hangs: it is killed
# and fails, naming the test case after the last one that finished.
GTEST_TIMEOUT=${NVSTORE_GTEST_TIMEOUT:-900}
run_gtest() {
    local name=$1 dir=${2:-unit} flavor=${3:-gcc} line rc=0 n=0 label tap
    label="$dir $name"
    [ "$flavor" = gcc ] || label="$label ($flavor)"
    tap=$LOG/$name-$flavor.tap
    G_TEST_SRCDIR=$B/src/tests/$dir G_TEST_BUILDDIR=$B/$flavor/tests/$dir \
        timeout -k 10 "$GTEST_TIMEOUT" \
        "$B/$flavor/tests/$dir/$name" -m slow --tap >"$tap" 2>&1 || rc=$?
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        line=$(grep -E '^(not )?ok ' "$tap" | tail -n 1)
        t_fail "$label: hung, killed after $GTEST_TIMEOUT s (in the test case after \"${line:-none}\")"
    fi
    while IFS= read -r line; do
        case $line in
        "ok "*"# SKIP"*)
            if [ "${GTEST_NO_SKIP:-0}" = 1 ]; then
                t_fail "$label: skipped: ${line#ok }"
            else
                t_skip "$label: ${line#ok }"
            fi ;;
        "ok "*) t_pass "$label: ${line#ok }"; n=$((n + 1)) ;;
        "not ok "*) t_fail "$label: ${line#not ok }"; n=$((n + 1)) ;;
        esac
    done <"$tap"
    if [ $rc -ne 0 ] || [ $n -eq 0 ]; then
        tail -n 20 "$tap"
        t_fail "$label: exit status $rc after $n test cases"
    fi
}

step "unit tests"
# The directory model, its cross-check with libtasn1 against the spec's
# ASN.1 module, the driver through its device API, QEMU's own DER and
# CRC-32C tests (crypto/der.c and util/crc32c.c are patched), the
# AEAD API the overlay adds to crypto/, and the edk2 variable store
# codec of qemu-nvstore vars with its hostile stores; QEMU's JSON parser
# (qobject/json-parser.c is patched); crypto/x509-utils' DER conversion;
# swtpm's state formats that qemu-nvstore tpm reads and writes, and the
# EK certificates it writes (crypto/tpm-ek-cert.c).
for t in test-crc32c test-nvstore-dir test-nvstore-dir-asn1 test-nvstore \
         test-crypto-der test-crypto-akcipher test-crypto-aead \
         test-edk2-varstore check-qjson test-crypto-x509-utils \
         test-swtpm-state test-crypto-tpm-ek-cert; do
    run_gtest "$t"
done

step "qtests"
# The libtpms TPM backend through tpm-tis and tpm-crb: TPM 2.0 commands,
# restarts on the same nvstore image, savevm/loadvm, migration
QTEST_QEMU_BINARY=$B/gcc/qemu-system-x86_64 QTEST_QEMU_IMG=$B/gcc/qemu-img \
    run_gtest tpm-libtpms-test qtest
# Upstream's TPM qtests: backends/tpm/tpm_backend.c.patch changes how
# every TPM backend completes a request.  tpm-tis-test and tpm-crb-test
# drive the emulator backend against an in-process swtpm stand-in, the
# -swtpm tests against swtpm itself (installed by project/deps.sh: a skip
# is a failure), migration included.
for t in tpm-tis-test tpm-crb-test tpm-tis-swtpm-test tpm-crb-swtpm-test; do
    GTEST_NO_SKIP=1 QTEST_QEMU_BINARY=$B/gcc/qemu-system-x86_64 \
    QTEST_QEMU_IMG=$B/gcc/qemu-img run_gtest "$t" qtest
done

step "a real guest on the libtpms TPM"
# Debian's cloud kernel, busybox and tpm2-tools, under TCG: an NV index
# written in one boot is read back in the next, through tpm-tis and
# tpm-crb; qemu-nvstore tpm info lists what tpm2_getcap listed in the
# guest; the state goes to swtpm and back (tpm export, import); tpm
# setup's EK certificate, read in the guest, verifies against the test
# CA (four boots, about 20 s in all, for each front end)
for front in tis crb; do
    if "$top/project/guest-tpm.sh" "$front" >"$LOG/guest-$front.log" 2>&1; then
        t_pass "guest: $(tail -n 1 "$LOG/guest-$front.log" | sed 's/^guest-tpm: PASS //')"
    else
        tail -n 40 "$LOG/guest-$front.log"
        t_fail "guest: tpm-$front (see $LOG/guest-$front.log)"
    fi
done

step "UEFI variables and the TPM in one nvstore image"
# Debian's OVMF with its variable store in an nvstore-blob node beside
# the libtpms TPM's state: a variable and an NV index written, read back,
# reverted by qemu-img snapshot -a, and a kill after a variable write
# (five boots, about 45 s)
if "$top/project/guest-uefi.sh" >"$LOG/guest-uefi.log" 2>&1; then
    t_pass "guest: $(tail -n 1 "$LOG/guest-uefi.log" | sed 's/^guest-uefi: PASS: //')"
else
    tail -n 40 "$LOG/guest-uefi.log"
    t_fail "guest: UEFI (see $LOG/guest-uefi.log)"
fi

step "UEFI variables changed offline with qemu-nvstore vars"
# Debian's OVMF (its Secure Boot build, SMM) on a store that only
# qemu-nvstore changed: a variable set offline read in the guest, boot
# entries of a missing disk deleted and written again by the firmware,
# Secure Boot keys enrolled and seen on in the guest (three boots,
# about 30 s)
if "$top/project/guest-vars.sh" >"$LOG/guest-vars.log" 2>&1; then
    t_pass "guest: $(tail -n 1 "$LOG/guest-vars.log" | sed 's/^guest-vars: PASS: //')"
else
    tail -n 40 "$LOG/guest-vars.log"
    t_fail "guest: UEFI variables offline (see $LOG/guest-vars.log)"
fi

step "benchmark smoke run"
# The pflash-like workload, tiny: it must keep working (no timings judged)
mkdir -p "$B/bench-smoke"
if timeout 300 "$B/gcc/tests/bench/bench-nvstore" pflash "$B/bench-smoke" \
       100 1 >"$LOG/bench-smoke.log" 2>&1; then
    t_pass "bench: bench-nvstore pflash, 100 writes"
else
    cat "$LOG/bench-smoke.log"
    t_fail "bench: bench-nvstore pflash (see $LOG/bench-smoke.log)"
fi
# Encrypted against plain images, tiny (ten rounds of one update)
if timeout 300 "$B/gcc/tests/bench/bench-nvstore" encrypt "$B/bench-smoke" \
       10 >"$LOG/bench-smoke-encrypt.log" 2>&1; then
    t_pass "bench: bench-nvstore encrypt, 10 updates"
else
    cat "$LOG/bench-smoke-encrypt.log"
    t_fail "bench: bench-nvstore encrypt (see $LOG/bench-smoke-encrypt.log)"
fi
# Scaling to 10,000 blobs, as bench/run.py reads it: three lines, every
# field there (the run takes about a second)
if timeout 300 "$B/gcc/tests/bench/bench-nvstore" scale "$B/bench-smoke" \
       >"$LOG/bench-smoke-scale.log" 2>&1 &&
   [ "$(grep -cE '^scale (10|1000|10000) open\+list-us [0-9.]+ update-us [0-9.]+ dir-bytes [0-9]+ image-bytes [0-9]+ heap-bytes [0-9]+ heap-with-list-bytes [0-9]+ dir-cpu-us [0-9.]+ floor-us [0-9.]+$' \
         "$LOG/bench-smoke-scale.log")" = 3 ]; then
    t_pass "bench: bench-nvstore scale, 10 to 10,000 blobs"
else
    cat "$LOG/bench-smoke-scale.log"
    t_fail "bench: bench-nvstore scale (see $LOG/bench-smoke-scale.log)"
fi

# --- iotests ------------------------------------------------------------------
# run_iotests LABEL CHECK-ARGS...: runs ./check with TAP output, in
# build/$IOTESTS_FLAVOR (default gcc); tests
# listed in project/iotests-known-failures for LABEL are reported, not
# counted as failures, when they fail.  For our own labels (nvstore*),
# a skipped test is a failure: every one of them must run here.
known_reason() {
    awk -v fmt="$1" -v t="$2" '!/^#/ && $1 == fmt && $2 == t {
        $1 = ""; $2 = ""; sub(/^ +/, ""); print; exit }' \
        "$top/project/iotests-known-failures"
}
# retry_iotest LABEL TEST CHECK-ARGS...: run one failed upstream test
# again, alone (never ours: a flaky nvstore test is a failure).  Some
# upstream tests race with process exit or iothreads under load (153:
# image lock still held by the previous QEMU); a retry that passes is
# reported as such, one that fails again is a failure.
retry_iotest() {
    local label=$1 name=$2 fmt
    shift 2
    fmt=$1
    (cd "$B/gcc/tests/qemu-iotests" &&
     timeout -k 10 600 /usr/bin/python3 ./check "$fmt" "$name") \
        >>"$LOG/iotests-$label-retry.log" 2>&1
}

# split_tap: ./check's TAP on stdin, one result per line.  Its parallel
# jobs can write two results into one line ("ok raw 081ok raw 025"), and
# a result read as part of another could hide a failure.
split_tap() {
    /usr/bin/python3 -c '
import re, sys
for line in sys.stdin:
    for part in re.split(r"(?<=\S)(?=(?:not ok|ok) [a-z0-9]+ \S|# )",
                         line.rstrip("\n")):
        print(part)
'
}

# An iotests run that takes more than $IOTESTS_TIMEOUT seconds hangs: it
# is killed and fails, naming the tests that had not finished.
IOTESTS_TIMEOUT=${NVSTORE_IOTESTS_TIMEOUT:-2400}
run_iotests() {
    local label=$1 line name reason rc=0
    shift
    rm -f "$LOG/iotests-$label-retry.log"
    (cd "$B/${IOTESTS_FLAVOR:-gcc}/tests/qemu-iotests" &&
     timeout -k 10 "$IOTESTS_TIMEOUT" \
     /usr/bin/python3 ./check -tap -j "$JOBS" "$@") >"$LOG/iotests-$label.tap" 2>&1 ||
        rc=$?
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        t_fail "iotests $label: hung, killed after $IOTESTS_TIMEOUT s (see $LOG/iotests-$label.tap for the tests that finished)"
    fi
    # TAP lines: "ok raw 046 # SKIP", "not ok qcow2 240"
    while IFS= read -r line; do
        case $line in
        "ok "*"# SKIP"*)
            if [[ $label == nvstore* ]]; then
                t_fail "iotests $label: ${line#ok } (an nvstore test must not be skipped)"
            else
                t_skip "iotests $label: ${line#ok }"
            fi ;;
        "ok "*)
            t_pass "iotests $label: ${line#ok }" ;;
        "not ok "*)
            name=${line#not ok }
            name=${name#* }
            name=${name%% *}
            reason=
            if [[ $label != nvstore* ]]; then
                reason=$(known_reason "$label" "$name")
            fi
            if [ -n "$reason" ]; then
                t_skip "iotests $label: $name known to fail here: $reason"
            elif [[ $label != nvstore* ]] &&
                 retry_iotest "$label" "$name" "$@"; then
                t_pass "iotests $label: $name (failed with -j $JOBS, passed alone on retry: timing-sensitive upstream test, see $LOG/iotests-$label.tap)"
            else
                t_fail "iotests $label: ${line#not ok }"
            fi ;;
        esac
    done < <(split_tap <"$LOG/iotests-$label.tap")
    if ! grep -qE '^(not )?ok ' "$LOG/iotests-$label.tap"; then
        tail -n 20 "$LOG/iotests-$label.tap"
        t_fail "iotests $label: no test ran"
    fi
}

step "nvstore iotests"
# Format nvstore: only the tests of group nvstore support it
run_iotests nvstore -nvstore -g nvstore

if [ "${NVSTORE_TEST_SKIP_UPSTREAM:-0}" != 1 ]; then
    step "upstream iotests, quick group, raw"
    run_iotests raw -raw -g quick
    step "upstream iotests, quick group, qcow2"
    run_iotests qcow2 -qcow2 -g quick
fi

step "clang build of the overlay's C files"
if [ "$(bg_result clang)" = 0 ]; then
    t_pass "build: clang -Wthread-safety -Werror on overlay objects"
else
    tail -n 40 "$LOG/build-clang.log"
    t_fail "build: clang (see $LOG/build-clang.log)"
fi

step "fuzz smoke runs: the directory decoder, the driver, the UEFI stores, swtpm's state"
# fuzz.sh builds its targets in build/clang: not while the sanitizer
# build, which makes them, is still running there
bg_result sanitizers >/dev/null
for t in nvstore-dir-fuzz nvstore-fuzz edk2-varstore-fuzz swtpm-state-fuzz; do
    if "$top/project/fuzz.sh" 20000 $t >"$LOG/fuzz-$t.log" 2>&1; then
        t_pass "fuzz: $t, 20000 runs, ASan+UBSan, no finding"
    else
        tail -n 40 "$LOG/fuzz-$t.log"
        t_fail "fuzz: $t (see $LOG/fuzz-$t.log)"
    fi
done

step "ASan+UBSan: the driver's unit tests and iotests, the TPM, sanitizer build"
# The clang build is the sanitizer build (project/build.sh): every fault,
# power cut and crash of the unit tests, and every hostile image,
# injected fault, salvage and read-only mode of the iotests, again, with
# AddressSanitizer, LeakSanitizer and UBSan aborting on the first
# finding, in qemu-img, qemu-io, qemu-nvstore and the unit tests.  Then the libtpms
# TPM backend and the blob nodes in the sanitizer build's system
# emulator: the libtpms qtest (restarts, a failing flush, savevm/loadvm,
# a second instance, migration) and the iotests that start VMs (the TPM
# killed, pflash and the TPM through savevm/loadvm and migration, an
# iothread, an encrypted image with its tampering cases).  LeakSanitizer skips two leaks of upstream QEMU's
# migration code (project/lsan-suppressions.txt).  Sanitizer messages go to files (log_path),
# not into the iotests' output; anything in them but ASan's warnings
# about coroutine stacks (every process that runs a coroutine logs the
# first; the second, three lines, when a coroutine's stack is unwound
# past, as iotests/nvstore-hostile also allows) is a failure.
SAN=$LOG/sanitizers
san_benign="^(==[0-9]+==WARNING: ASan doesn't fully support makecontext/swapcontext functions and may produce false positives in some cases!"
san_benign+="|==[0-9]+==WARNING: ASan is ignoring requested __asan_handle_no_return: stack type: [a-z]+ top: 0x[0-9a-f]+; bottom 0x[0-9a-f]+; size: 0x[0-9a-f]+ \\(-?[0-9]+\\)"
san_benign+="|False positive error reports may follow"
san_benign+="|For details see https://github.com/google/sanitizers/issues/189"
# LeakSanitizer's summary of the suppressions it applied, and its blank lines
san_benign+="|-+|Suppressions used:|  count      bytes template"
san_benign+="| +[0-9]+ +[0-9]+ (qio_channel_block_new|migrate_init)|)\$"
rm -rf "$SAN"
mkdir -p "$SAN"
if [ "$(bg_result sanitizers)" = 0 ]; then
    t_pass "build: clang ASan+UBSan qemu-img, qemu-io, qemu-nvstore, qemu-system-x86_64, unit tests, libtpms qtest"
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:log_path=$SAN/log
    export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:log_path=$SAN/log
    export LSAN_OPTIONS=suppressions=$top/project/lsan-suppressions.txt
    for t in test-crc32c test-crypto-aead test-nvstore-dir test-nvstore \
             test-edk2-varstore check-qjson test-swtpm-state; do
        NVSTORE_CRASH_ITERATIONS=200 run_gtest "$t" unit clang
    done
    QEMU_PROG=$B/gcc/qemu-system-x86_64 QEMU_NBD_PROG=$B/gcc/qemu-nbd \
    QSD_PROG=$B/gcc/storage-daemon/qemu-storage-daemon IOTESTS_FLAVOR=clang \
        run_iotests nvstore-asan -nvstore nvstore-basic nvstore-children \
            nvstore-snapshot nvstore-faults nvstore-corrupt nvstore-hostile \
            nvstore-salvage nvstore-modes nvstore-encrypt-spec nvstore-tool \
            nvstore-vars nvstore-tpm nvstore-fixed
    QTEST_QEMU_BINARY=$B/clang/qemu-system-x86_64 \
    QTEST_QEMU_IMG=$B/gcc/qemu-img run_gtest tpm-libtpms-test qtest clang
    QEMU_PROG=$B/clang/qemu-system-x86_64 QEMU_NBD_PROG=$B/gcc/qemu-nbd \
    QSD_PROG=$B/gcc/storage-daemon/qemu-storage-daemon IOTESTS_FLAVOR=clang \
        run_iotests nvstore-asan-vm -nvstore nvstore-tpm-kill nvstore-pflash \
            nvstore-blob-vm nvstore-savevm nvstore-migrate nvstore-iothread \
            nvstore-encrypt
    unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
    logs=0
    reports=()
    for f in "$SAN"/log.*; do
        [ -e "$f" ] || continue
        logs=$((logs + 1))
        if grep -qvE "$san_benign" "$f"; then
            reports+=("$f")
        fi
    done
    if [ $logs -eq 0 ]; then
        t_fail "sanitizers: no process wrote a sanitizer log: are they on?"
    elif [ ${#reports[@]} -eq 0 ]; then
        t_pass "sanitizers: $logs sanitizer logs, nothing but ASan's coroutine stack warnings"
    else
        head -n 40 "${reports[@]}"
        t_fail "sanitizers: reports in ${reports[*]}"
    fi
else
    tail -n 40 "$LOG/build-sanitizers.log"
    t_fail "build: clang ASan+UBSan (see $LOG/build-sanitizers.log)"
fi

step "the AEAD API's nettle and libgcrypt backends"
# The main build's crypto library is gnutls; QEMU built without it uses
# nettle, or libgcrypt, and so does the AEAD API.  Two small builds (no
# emulator) run its test with each.
for flavor in nettle gcrypt; do
    if [ "$(bg_result $flavor)" = 0 ] &&
       grep -q "aead-$flavor\.c" "$B/$flavor/build.ninja"; then
        run_gtest test-crypto-aead unit $flavor
    else
        tail -n 40 "$LOG/build-$flavor.log"
        t_fail "build: $flavor, test-crypto-aead (see $LOG/build-$flavor.log)"
    fi
done
wait $bg_pid

summary
