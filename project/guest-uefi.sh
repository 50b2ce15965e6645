#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# UEFI variables and a TPM in one nvstore image, with real firmware and a
# real guest.  Debian's OVMF boots Debian's cloud kernel (an initramfs
# of busybox and tpm2-tools, and the efivarfs module) under TCG; its
# variable store (pflash1) is a blob node over the nvstore node inside
# qcow2 that also keeps the libtpms TPM's state:
#
#   boot 1 writes a UEFI variable (efivarfs) and a TPM NV index, both
#          with a value unique to the run;
#   boot 2 reads both back;
#   qemu-img snapshot -a, to a snapshot taken before boot 1: boot 3 finds
#          neither;
#   boot 4 writes a variable, and QEMU is killed with SIGKILL as soon as
#          the guest says so: the image opens, qemu-img check is clean on
#          both layers, and boot 5 starts the firmware and the kernel;
#   boot 6 writes a variable and the NV index again and again, a new
#          value each second; once it has written the fourth, the NVRAM
#          is backed up over QMP (docs/interop/nvstore-live.rst) while it
#          goes on writing; boot 7, a new QEMU on the backup, reads the
#          fourth value or a later one, and not the last (the variables
#          are one per value: efivarfs makes a variable immutable).
#
#   project/guest-uefi.sh
#
# The variables are imported from OVMF_VARS_4M.fd with one command (see
# docs/system/qemu-block-drivers.rst.inc).  Prints "guest-uefi: PASS ..."
# and exits 0 when everything held; the time of each boot is printed.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
B=${NVSTORE_BUILD:-$top/build}
CACHE=${NVSTORE_CACHE:-$HOME/.cache/nvstore}
W=$B/guest-uefi
QEMU=$B/gcc/qemu-system-x86_64
IMG=$B/gcc/qemu-img
OVMF=/usr/share/OVMF
# A vendor GUID of our own for the test variable
GUID=6e767374-6f72-4565-8000-746573747661

# --- The kernel and the initramfs, with efivarfs ----------------------------
. "$top/project/guest-lib.sh"
guest_prepare
cp "$kmod/kernel/fs/efivarfs/efivarfs.ko" "$R/efivarfs.ko"
echo "var=/sys/firmware/efi/efivars/NvstoreTest-$GUID" >>"$R/init"
cat >>"$R/init" <<'EOF'
step=$(sed -n 's/.* nvtest=\([a-z]*\).*/\1/p' /proc/cmdline)
data=$(sed -n 's/.* nvdata=\([0-9a-z-]*\).*/\1/p' /proc/cmdline)
len=$(sed -n 's/.* nvlen=\([0-9]*\).*/\1/p' /proc/cmdline)
insmod /efivarfs.ko
mount -t efivarfs efivarfs /sys/firmware/efi/efivars &&
    echo "GUEST: UEFI booted, efivarfs mounted"
case $step in
write)
    # 4 bytes of attributes (non-volatile, boot and runtime access), data
    printf '\007\000\000\000%s' "$data" >"$var" &&
        echo "GUEST: variable written"
    tpm2_nvdefine 0x1500016 -C o -s 32 \
        -a "ownerread|ownerwrite|authread|authwrite" >/dev/null &&
        printf '%s' "$data" >/tmp/data &&
        tpm2_nvwrite 0x1500016 -C o -i /tmp/data && echo "GUEST: nvwrite ok"
    ;;
read)
    if [ -e "$var" ]; then
        echo "GUEST: variable $(tail -c +5 "$var")"
    else
        echo "GUEST: no variable"
    fi
    echo "GUEST: loop variables $(ls /sys/firmware/efi/efivars |
        sed -n 's/^NvstoreLoop\([0-9]\)-.*/\1/p' | tr '\n' ' ')"
    size=${#data}
    [ -z "$len" ] || size=$len
    if tpm2_nvread 0x1500016 -C o -s $size >/tmp/read 2>/dev/null; then
        echo "GUEST: nvread $(cat /tmp/read)"
    else
        echo "GUEST: no NV index"
    fi
    ;;
kill)
    printf '\007\000\000\000%s' "$data" >"$var" &&
        echo "GUEST: variable written, kill me"
    sleep 600
    ;;
loop)
    # Each value said written once it is durable: the TPM's at once, the
    # variable's after the blob node's commit-delay (100 ms)
    tpm2_nvdefine 0x1500016 -C o -s 32 \
        -a "ownerread|ownerwrite|authread|authwrite" >/dev/null
    # A variable of its own per value: efivarfs makes a variable that
    # it does not know immutable once written
    for i in 1 2 3 4 5 6 7 8; do
        printf '\007\000\000\000%s' "$data-$i" \
            >"${var%NvstoreTest-*}NvstoreLoop$i-${var#*NvstoreTest-}" &&
            printf '%s' "$data-$i" >/tmp/data &&
            tpm2_nvwrite 0x1500016 -C o -i /tmp/data &&
            sleep 1 && echo "GUEST: wrote $i"
    done
    ;;
esac
sync
poweroff -f
EOF
chmod +x "$R/init"
guest_cpio "$R" "$W/initrd.gz"

# --- The image: the TPM and the variables in one nvstore node in qcow2 ------
"$IMG" create -q -f nvstore -o container=qcow2 "$W/vm-state.qcow2"
# The import: one command
"$B/gcc/qemu-nvstore" vars import --format ovmf-fd "$W/vm-state.qcow2" \
    "$OVMF/OVMF_VARS_4M.fd"
"$IMG" snapshot -c before-boot-1 "$W/vm-state.qcow2"
data=nvstore-$(date +%s)-$$

fail() {
    echo "guest-uefi: FAIL: $* (see $W/boot-*.log)"
    tail -n 30 "$W"/boot-*.log
    exit 1
}

# The nvstore node nv0 and the nodes under it
nvram=(-blockdev "file,node-name=f0,filename=$W/vm-state.qcow2"
       -blockdev qcow2,node-name=q0,file=f0
       -blockdev nvstore,node-name=nv0,file=q0)
nvlen=

boot() {
    local step=$1 n=$2 kill=()
    shift 2
    [ "$step" != kill ] || kill=(--kill-at "kill me")
    guest_run "$n" 900 "${kill[@]}" -- \
        -machine q35,accel=tcg,pflash0=code0,pflash1=vars0 \
        -m 512 -nodefaults -display none -no-reboot \
        -kernel "$vmlinuz" -initrd "$W/initrd.gz" \
        -append "console=ttyS0 panic=-1 quiet nvtest=$step nvdata=$data $nvlen" \
        -blockdev "file,node-name=code0,filename=$OVMF/OVMF_CODE_4M.fd,read-only=on" \
        "${nvram[@]}" \
        -blockdev nvstore-blob,node-name=vars0,file=nv0,blob=uefi-vars \
        -tpmdev libtpms,id=tpm0,drive=nv0 -device tpm-crb,tpmdev=tpm0 "$@"
    [ ! -e "$W/hung-$n" ] || fail "boot $n ($step) hung for 900 s"
}


boot write 1
grep -q "^GUEST: variable written" "$W/boot-1.log" ||
    fail "boot 1 could not write the UEFI variable"
grep -q "^GUEST: nvwrite ok" "$W/boot-1.log" ||
    fail "boot 1 could not write the NV index"
boot read 2
grep -q "^GUEST: variable $data\$" "$W/boot-2.log" ||
    fail "boot 2 did not read the variable back"
grep -q "^GUEST: nvread $data\$" "$W/boot-2.log" ||
    fail "boot 2 did not read the NV index back"

echo "== qemu-img snapshot -a before-boot-1"
"$IMG" snapshot -a before-boot-1 "$W/vm-state.qcow2"
boot read 3
grep -q "^GUEST: no variable" "$W/boot-3.log" ||
    fail "boot 3 found the variable after the snapshot was applied"
grep -q "^GUEST: no NV index" "$W/boot-3.log" ||
    fail "boot 3 found the NV index after the snapshot was applied"

boot kill 4
grep -q "^GUEST: variable written, kill me" "$W/boot-4.log" ||
    fail "boot 4 could not write the variable"
echo "== qemu-img check after SIGKILL"
"$IMG" check -q "$W/vm-state.qcow2" || fail "qcow2 check"
"$IMG" check -q --image-opts \
    "driver=nvstore,file.driver=qcow2,file.file.filename=$W/vm-state.qcow2" ||
    fail "nvstore check"
boot read 5
grep -q "^GUEST: UEFI booted, efivarfs mounted" "$W/boot-5.log" ||
    fail "the firmware did not boot the kernel after the kill"

/usr/bin/python3 "$top/project/guest-backup.py" "$B/src/python" \
    "$W/qmp.sock" "$W/boot-6.log" "$W/backup.img" &
helper=$!
boot loop 6 -qmp "unix:$W/qmp.sock,server=on,wait=off"
wait $helper || fail "the backup during boot 6"
grep -q "^GUEST: wrote 8" "$W/boot-6.log" ||
    fail "boot 6 did not write its 8 values"
"$IMG" check -q -f nvstore "$W/backup.img" ||
    fail "the backup does not check clean"
echo "== boot 7 on the backup"
nvram=(-blockdev "file,node-name=f0,filename=$W/backup.img"
       -blockdev nvstore,node-name=nv0,file=f0)
nvlen=nvlen=$(( ${#data} + 2 ))
boot read 7
# The highest of the loop's variables in the backup
value=$(sed -n 's/^GUEST: loop variables \(.*\)$/\1/p' "$W/boot-7.log" |
        tr ' ' '\n' | sort -n | tail -n 1)
nvvalue=$(sed -n "s/^GUEST: nvread $data-\([0-9]\)\$/\1/p" "$W/boot-7.log")
[ -n "$value" ] && [ "$value" -ge 4 ] && [ "$value" -lt 8 ] ||
    fail "boot 7 read variable value '$value' from the backup, not 4 to 7"
[ -n "$nvvalue" ] && [ "$nvvalue" -ge 4 ] && [ "$nvvalue" -lt 8 ] ||
    fail "boot 7 read NV index value '$nvvalue' from the backup, not 4 to 7"

echo "guest-uefi: PASS: UEFI variable and TPM NV index written in boot 1," \
     "read back in boot 2, gone after snapshot -a in boot 3; killed after" \
     "a variable write in boot 4, image clean, boot 5 up; NVRAM backed up" \
     "while boot 6 wrote, restored in boot 7 with values $value and" \
     "$nvvalue of 8"
