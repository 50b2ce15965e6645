#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# A real guest on the libtpms TPM backend: Debian's cloud kernel (the TPM
# TIS and CRB drivers are built in) with an initramfs of busybox and
# tpm2-tools boots on a new nvstore image (inside qcow2), and Linux's
# own TPM driver and tpm2-tools define an NV index, write it and read
# random bytes; the guest powers off; a second boot on the same image
# reads the NV index back.  Then qemu-img info shows the TPM's blobs.
# Then the state goes to swtpm (scripts/nvstore-tpm-state.py export),
# which reads the index and changes it, and back into a new image
# (import), where a third boot reads swtpm's value.
#
#   project/guest-tpm.sh [tis|crb]     (tis by default)
#
# Under TCG (NVSTORE_GUEST_ACCEL=kvm to use KVM where it works).  The kernel package
# is downloaded once into the cache (~/.cache/nvstore, NVSTORE_CACHE).
# Prints "guest-tpm: PASS ..." and exits 0 when the data came back.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
B=${NVSTORE_BUILD:-$top/build}
CACHE=${NVSTORE_CACHE:-$HOME/.cache/nvstore}
front=${1:-tis}
W=$B/guest-$front
QEMU=$B/gcc/qemu-system-x86_64
IMG=$B/gcc/qemu-img

case $front in
tis|crb) ;;
*) echo "guest-tpm: unknown front end $front (tis or crb)" >&2; exit 2 ;;
esac

# --- The kernel and the initramfs: busybox, tpm2-tools --------------------
. "$top/project/guest-lib.sh"
guest_prepare
cat >>"$R/init" <<'EOF'
step=$(sed -n 's/.* nvtest=\([a-z]*\).*/\1/p' /proc/cmdline)
data=$(sed -n 's/.* nvdata=\([0-9a-z-]*\).*/\1/p' /proc/cmdline)
echo "GUEST: TPM $(cat /sys/class/tpm/tpm0/tpm_version_major)," \
     "driver $(basename "$(readlink /sys/class/tpm/tpm0/device/driver)")"
if [ "$step" = write ]; then
    tpm2_nvdefine 0x1500016 -C o -s 32 \
        -a "ownerread|ownerwrite|authread|authwrite" >/dev/null &&
        echo "GUEST: nvdefine ok"
    printf '%s' "$data" >/tmp/data
    tpm2_nvwrite 0x1500016 -C o -i /tmp/data && echo "GUEST: nvwrite ok"
    echo "GUEST: random $(tpm2_getrandom --hex 16)"
else
    tpm2_nvread 0x1500016 -C o -s ${#data} >/tmp/read &&
        echo "GUEST: nvread $(cat /tmp/read)"
fi
sync
poweroff -f
EOF
chmod +x "$R/init"
guest_cpio "$R" "$W/initrd.gz"

# --- Two boots on one nvstore image -----------------------------------------
# TCG unless told otherwise: on these machines /dev/kvm is a nested,
# paravirtualised KVM that stops the guest with "emulation failure"
accel=${NVSTORE_GUEST_ACCEL:-tcg}
"$IMG" create -q -f nvstore -o container=qcow2 "$W/vm-state.qcow2"
data=nvstore-$(date +%s)-$$

boot() {
    local step=$1 start end
    start=$(date +%s%N)
    timeout 600 "$QEMU" -machine q35,accel=$accel -m 512 -nodefaults \
        -display none -serial "file:$W/boot-$step.log" -no-reboot \
        -kernel "$vmlinuz" -initrd "$W/initrd.gz" \
        -append "console=ttyS0 panic=-1 quiet nvtest=$step nvdata=$data" \
        -blockdev "file,node-name=f0,filename=$W/vm-state.qcow2" \
        -blockdev qcow2,node-name=q0,file=f0 \
        -blockdev nvstore,node-name=nv0,file=q0 \
        -tpmdev libtpms,id=tpm0,drive=nv0 \
        -device "tpm-$front,tpmdev=tpm0"
    end=$(date +%s%N)
    # The serial console ends lines with CR LF
    sed -i 's/\r$//' "$W/boot-$step.log"
    echo "== boot $step ($accel, tpm-$front): $(( (end - start) / 1000000 )) ms"
    grep '^GUEST' "$W/boot-$step.log" || true
}

fail() {
    echo "guest-tpm: FAIL tpm-$front: $* (see $W/boot-*.log)"
    tail -n 30 "$W"/boot-*.log
    exit 1
}

boot write
boot read
grep -q "^GUEST: nvwrite ok" "$W/boot-write.log" ||
    fail "boot 1 could not write the NV index"
grep -q "^GUEST: nvread $data\$" "$W/boot-read.log" ||
    fail "boot 2 did not read back what boot 1 wrote"
echo "== qemu-img info after the guest"
"$IMG" info --image-opts \
    "driver=nvstore,file.driver=qcow2,file.file.filename=$W/vm-state.qcow2" |
    sed -n '/^Format specific information/,/^Child node/{/^Child node/q;p}'

# --- To swtpm and back: export, change the index under swtpm, import -------
echo "== Export to a swtpm state directory; swtpm reads and changes the index"
export QEMU_IMG=$IMG QEMU_IO=$B/gcc/qemu-io
state=$W/swtpm-state
mkdir -p "$state"
/usr/bin/python3 "$top/scripts/nvstore-tpm-state.py" export \
    "driver=nvstore,file.driver=qcow2,file.file.filename=$W/vm-state.qcow2" \
    "$state"
port=$((20000 + $$ % 20000))
swtpm socket --tpm2 --tpmstate dir="$state" --flags startup-clear \
    --server type=tcp,port=$port,bindaddr=127.0.0.1 \
    --ctrl type=tcp,port=$((port + 1)),bindaddr=127.0.0.1 \
    --daemon --pid file="$W/swtpm.pid"
trap 'kill "$(cat "$W/swtpm.pid" 2>/dev/null)" 2>/dev/null || true' EXIT
export TPM2TOOLS_TCTI=swtpm:host=127.0.0.1,port=$port
got=$(tpm2_nvread 0x1500016 -C o -s ${#data})
echo "swtpm reads: $got"
[ "$got" = "$data" ] || fail "swtpm did not read the exported state"
data2=swtpm-$(date +%s)-$$
printf '%s' "$data2" >"$W/data2"
tpm2_nvwrite 0x1500016 -C o -i "$W/data2"
echo "swtpm writes: $data2"
swtpm_ioctl --tcp 127.0.0.1:$((port + 1)) -s
echo "== Import swtpm's state into a new nvstore image; boot 3 reads it"
"$IMG" create -q -f nvstore -o container=qcow2 "$W/vm-state.qcow2"
/usr/bin/python3 "$top/scripts/nvstore-tpm-state.py" import "$state" \
    "driver=nvstore,file.driver=qcow2,file.file.filename=$W/vm-state.qcow2"
data=$data2
boot read
grep -q "^GUEST: nvread $data2\$" "$W/boot-read.log" ||
    fail "boot 3 did not read what swtpm wrote"

echo "guest-tpm: PASS tpm-$front: NV index written in boot 1, read back in boot 2; exported to swtpm, changed there, imported, read back in boot 3"
