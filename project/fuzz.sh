#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Fuzz nvstore with libFuzzer, AddressSanitizer (with LeakSanitizer) and
# UndefinedBehaviorSanitizer, in the clang build.
#
#   project/fuzz.sh [RUNS [TARGET...]]
#
# RUNS executions of each target (default 20000, the test command's
# smoke run).  Targets (default all):
#   nvstore-dir-fuzz  the directory decoder (tests/unit/nvstore-dir-fuzz.c),
#                     seeded with every vector of tests/unit/test-nvstore-dir.c
#   nvstore-fuzz      the block driver, from an image in memory
#                     (tests/unit/nvstore-fuzz.c), seeded with images
#                     qemu-img and qemu-io write here
#   edk2-varstore-fuzz  the UEFI variable stores of qemu-nvstore vars
#                     (tests/unit/edk2-varstore-fuzz.c), seeded with
#                     Debian's OVMF stores cut to 8 KiB
#                     (project/edk2-seed.py), and their JSON
#   swtpm-state-fuzz  swtpm's state files that qemu-nvstore tpm import
#                     reads (tests/unit/swtpm-state-fuzz.c), seeded with
#                     the vectors of tests/unit/test-swtpm-state.c
# Each target's corpus grows in build/fuzz/TARGET/corpus across runs.  Any
# crash, leak, failed assertion or undefined behaviour stops the run with
# a non-zero exit status and leaves the input in build/fuzz/TARGET/.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
B=${NVSTORE_BUILD:-$top/build}
RUNS=${1:-20000}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(nvstore-dir-fuzz nvstore-fuzz \
                                     edk2-varstore-fuzz swtpm-state-fuzz)

"$top/project/build.sh" clang "${targets[@]/#/tests/unit/}" >/dev/null
"$top/project/build.sh" gcc tests/unit/test-nvstore-dir \
    tests/unit/test-swtpm-state qemu-img qemu-io >/dev/null

# The seeds of the driver target: a control byte (bit 0: fix the
# checksums; bit 1: open with the key, see nvstore-fuzz.c) and an image
driver_seeds() {
    local s=$1 img=$1/image.nvs n=0
    local q=$B/gcc
    local key="secret,id=k,data=fuzz"
    rm -rf "$s"
    mkdir -p "$s"
    seed() {
        n=$((n + 1))
        printf '\000' >"$s/$n-$1"
        cat "$img" >>"$s/$n-$1"
        printf '\001' >"$s/$n-$1-fix"
        cat "$img" >>"$s/$n-$1-fix"
    }
    seed_enc() {
        n=$((n + 1))
        printf '\002' >"$s/$n-$1"
        cat "$img" >>"$s/$n-$1"
        printf '\003' >"$s/$n-$1-fix"
        cat "$img" >>"$s/$n-$1-fix"
    }
    "$q/qemu-img" create -q -f nvstore "$img"
    seed empty
    local blob="commit-delay=0,file.driver=nvstore,file.file.filename=$img"
    "$q/qemu-io" --image-opts "driver=nvstore-blob,blob=vars,$blob" \
        -c 'truncate 100' -c 'write -q -P 0x11 0 100' >/dev/null
    seed inline
    "$q/qemu-io" --image-opts \
        "driver=nvstore-blob,blob=tpm2-00.permall,blob-type=tpm,$blob" \
        -c 'truncate 5000' -c 'write -q -P 0x22 0 5000' >/dev/null
    seed extent
    "$q/qemu-io" --image-opts "driver=nvstore-blob,blob=vars,$blob" \
        -c 'truncate 6000' -c 'write -q -P 0x33 0 6000' >/dev/null
    seed replaced
    "$q/qemu-img" amend -q -f nvstore -o delete-blob=tpm2-00.permall "$img"
    seed deleted
    rm -f "$img"
    # Encrypted, the key slot at the fewest iterations (1000)
    local eopts="commit-delay=0,file.driver=nvstore"
    eopts+=",file.encrypt.key-secret=k,file.file.filename=$img"
    "$q/qemu-img" create -q -f nvstore --object "$key" \
        -o encrypt.key-secret=k,encrypt.iter-time=1 "$img"
    seed_enc encrypted-empty
    "$q/qemu-io" --object "$key" --image-opts \
        "driver=nvstore-blob,blob=tpm2-00.permall,blob-type=tpm,$eopts" \
        -c 'truncate 1346' -c 'write -q -P 0x22 0 1346' >/dev/null
    "$q/qemu-io" --object "$key" --image-opts \
        "driver=nvstore-blob,blob=vars,$eopts" \
        -c 'truncate 6000' -c 'write -q -P 0x33 0 6000' >/dev/null
    seed_enc encrypted-two-blobs
    rm -f "$img"
}

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:symbolize=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
rc=0
for t in "${targets[@]}"; do
    W=$B/fuzz/$t
    mkdir -p "$W/corpus"
    # The seeds are made anew each run
    rm -rf "$W/seeds"
    mkdir -p "$W/seeds"
    case $t in
    nvstore-dir-fuzz)
        NVSTORE_DIR_CORPUS=$W/seeds "$B/gcc/tests/unit/test-nvstore-dir" \
            >/dev/null
        max_len=4096 ;;
    nvstore-fuzz)
        driver_seeds "$W/seeds"
        max_len=65536 ;;
    edk2-varstore-fuzz)
        # Mode octet 0: a flash image; 1: a JSON store (the fuzz target)
        for f in OVMF_VARS.fd OVMF_VARS.ms.fd; do
            /usr/bin/python3 "$top/project/edk2-seed.py" \
                "/usr/share/OVMF/$f" "$W/seeds/$f"
            /usr/bin/python3 /usr/bin/virt-fw-vars --loglevel error \
                -i "/usr/share/OVMF/$f" --output-json "$W/seeds/$f.json.in"
            { printf '\001'; cat "$W/seeds/$f.json.in"; } \
                >"$W/seeds/$f.json"
            rm "$W/seeds/$f.json.in"
        done
        max_len=20000 ;;
    swtpm-state-fuzz)
        SWTPM_STATE_CORPUS=$W/seeds "$B/gcc/tests/unit/test-swtpm-state" \
            >/dev/null
        max_len=4096 ;;
    *)
        echo "fuzz: unknown target $t" >&2
        exit 1 ;;
    esac
    # -close_fd_mask=2: the driver's own messages (check, warnings) go
    # nowhere; libFuzzer's and the sanitizers' reports still come out.
    # -timeout=20: an input that takes more than 20 s (they take
    # milliseconds) is a hang, a finding.
    trc=0
    (cd "$W" &&
     "$B/clang/tests/unit/$t" -runs="$RUNS" -seed=1 -max_len=$max_len \
         -timeout=20 -close_fd_mask=2 -print_final_stats=1 \
         -artifact_prefix="$W/" \
         corpus seeds) >"$W/last-run.log" 2>&1 || trc=$?
    echo "== $t"
    grep -E '^(#[0-9]+ *(INITED|DONE)|Done |stat::number_of_executed_units)' \
        "$W/last-run.log" || true
    if [ $trc -ne 0 ]; then
        tail -n 60 "$W/last-run.log" >&2
        echo "fuzz: $t: libFuzzer exited with status $trc (log: $W/last-run.log)" >&2
        rc=$trc
    fi
done
exit $rc
