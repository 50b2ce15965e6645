#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# qemu-nvstore vars with real firmware and a real guest: Debian's OVMF
# boots Debian's cloud kernel (an initramfs of busybox and the efivarfs
# module) under TCG, its variable store (pflash1) a blob node over an
# nvstore image inside qcow2, changed offline between boots with
# qemu-nvstore only:
#
#   boot 1  the store imported from OVMF_VARS_4M.fd, and a variable set,
#           with vars: the guest reads the variable in efivarfs;
#   boot 2  a BootOrder naming only Boot0009, a disk the VM does not
#           have, removed with vars delete-boot-entries: OVMF boots and
#           writes its default boot options again, which the guest sees
#           in efivarfs and vars list sees offline after it;
#   boot 3  Secure Boot keys enrolled with vars enroll (PK, KEK and db,
#           certificates made here, and --secure-boot), OVMF's Secure
#           Boot build with SMM: the guest reads SecureBoot = 1 in
#           efivarfs.  (Debian's OVMF does not verify a kernel that QEMU
#           gives it with -kernel, so this shows Secure Boot enabled by
#           the enrolled store, not a signature check.)
#
#   project/guest-vars.sh
#
# Prints "guest-vars: PASS ..." and exits 0 when everything held; the
# time of each boot is printed.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
B=${NVSTORE_BUILD:-$top/build}
CACHE=${NVSTORE_CACHE:-$HOME/.cache/nvstore}
W=$B/guest-vars
QEMU=$B/gcc/qemu-system-x86_64
IMG=$B/gcc/qemu-img
NVS=$B/gcc/qemu-nvstore
OVMF=/usr/share/OVMF
# A vendor GUID of our own for the test variable
GUID=6e767374-6f72-4565-8000-746573747661
GLOBAL=8be4df61-93ca-11d2-aa0d-00e098032b8c

. "$top/project/guest-lib.sh"
guest_prepare
cp "$kmod/kernel/fs/efivarfs/efivarfs.ko" "$R/efivarfs.ko"
cat >>"$R/init" <<EOF
vars=/sys/firmware/efi/efivars
offline=\$vars/NvstoreOffline-$GUID
secure=\$vars/SecureBoot-$GLOBAL
EOF
cat >>"$R/init" <<'EOF'
insmod /efivarfs.ko
mount -t efivarfs efivarfs "$vars" && echo "GUEST: efivarfs mounted"
if [ -e "$offline" ]; then
    echo "GUEST: offline variable $(tail -c +5 "$offline")"
else
    echo "GUEST: no offline variable"
fi
echo "GUEST: boot entries $(cd "$vars" && ls -d Boot[0-9A-F][0-9A-F][0-9A-F][0-9A-F]-* 2>/dev/null |
    cut -c1-8 | tr '\n' ' ')"
if [ -e "$secure" ]; then
    echo "GUEST: SecureBoot $(tail -c +5 "$secure" | od -An -tu1 | tr -d ' ')"
fi
sync
poweroff -f
EOF
guest_cpio "$R" "$W/initrd.gz"

fail() {
    echo "guest-vars: FAIL: $* (see $W/boot-*.log)"
    tail -n 30 "$W"/boot-*.log 2>/dev/null || true
    exit 1
}

# --- The image, and the store imported with vars ----------------------------
img=$W/vm-state.qcow2
"$IMG" create -q -f nvstore -o container=qcow2 "$img"
"$NVS" vars import --format ovmf-fd "$img" "$OVMF/OVMF_VARS_4M.fd"
data=offline-$(date +%s)-$$
printf '%s' "$data" >"$W/value"
"$NVS" vars set -g "$GUID" -i "$W/value" "$img" NvstoreOffline

# boot N CODE TIMEOUT [QEMU ARGS]: boot the kernel $W/vmlinuz with the
# firmware CODE; a boot that takes more than TIMEOUT seconds is killed
boot() {
    local n=$1 code=$2 limit=$3
    shift 3
    guest_run "$n" "$limit" -- \
        -machine q35,accel=tcg,pflash0=code0,pflash1=vars0 \
        -m 512 -nodefaults -display none -no-reboot \
        -kernel "$W/vmlinuz" -initrd "$W/initrd.gz" \
        -append "console=ttyS0 panic=-1 quiet" \
        -blockdev "file,node-name=code0,filename=$code,read-only=on" \
        -blockdev "file,node-name=f0,filename=$img" \
        -blockdev qcow2,node-name=q0,file=f0 \
        -blockdev nvstore,node-name=nv0,file=q0 \
        -blockdev nvstore-blob,node-name=vars0,file=nv0,blob=uefi-vars "$@"
}

# OVMF's Secure Boot build (with SMM) for every boot: Secure Boot is off
# until boot 3, whose store vars enroll changed
code=$OVMF/OVMF_CODE_4M.secboot.fd
sb=(-machine smm=on -global driver=cfi.pflash01,property=secure,value=on)

# --- Boot 1: a variable set offline -------------------------------------------
cp "$vmlinuz" "$W/vmlinuz"
boot 1 "$code" 900 "${sb[@]}"
[ ! -e "$W/hung-1" ] || fail "boot 1 hung"
grep -q "^GUEST: offline variable $data\$" "$W/boot-1.log" ||
    fail "boot 1: the guest did not read the variable vars set wrote"

# --- Boot 2: boot entries of a missing disk, deleted --------------------------
# Boot0009: an active load option "Missing disk" whose device path is a
# SATA port behind a PCI device the VM does not have (00:1f.7)
{
    printf '\001\000\000\000'                       # LOAD_OPTION_ACTIVE
    printf '\040\000'                               # FilePathListLength
    printf 'M\000i\000s\000s\000i\000n\000g\000 \000d\000i\000s\000k\000\000\000'
    printf '\002\001\014\000\320\101\003\012\000\000\000\000' # PciRoot(0)
    printf '\001\001\006\000\007\037'               # Pci(0x1f,0x7)
    printf '\003\022\012\000\005\000\377\377\000\000' # Sata(5,0xffff,0)
    printf '\177\377\004\000'                       # End
} >"$W/boot0009"
printf '\011\000' >"$W/bootorder"
"$NVS" vars set -i "$W/boot0009" "$img" Boot0009
"$NVS" vars set -i "$W/bootorder" "$img" BootOrder
"$NVS" vars list "$img" | grep -q '^BootOrder ' || fail "BootOrder not set"
echo "== qemu-nvstore vars delete-boot-entries"
"$NVS" vars delete-boot-entries "$img"
left=$("$NVS" vars list "$img" | awk '$1 ~ /^Boot/ { print $1 }')
[ -z "$left" ] || fail "boot entries left after delete-boot-entries: $left"
boot 2 "$code" 900 "${sb[@]}"
[ ! -e "$W/hung-2" ] || fail "boot 2 hung"
grep -q "^GUEST: boot entries Boot" "$W/boot-2.log" ||
    fail "boot 2: the firmware wrote no boot option"
grep -q "Boot0009" "$W/boot-2.log" &&
    fail "boot 2: Boot0009 came back"
grep -q "^GUEST: SecureBoot 0\$" "$W/boot-2.log" ||
    fail "boot 2: Secure Boot is not off before the keys are enrolled"
after=$("$NVS" vars list "$img" | awk '$1 ~ /^Boot/ { print $1 }' | tr '\n' ' ')
echo "== vars list after boot 2: $after"
case $after in
*BootOrder*) ;;
*) fail "after boot 2, vars list shows no BootOrder: $after" ;;
esac

# --- Boot 3: Secure Boot keys enrolled offline -------------------------------
for k in pk kek db; do
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -sha256 \
        -subj "/CN=nvstore guest test $k" -keyout "$W/$k.key" \
        -out "$W/$k.pem" >/dev/null 2>&1
done
"$NVS" vars enroll --pk "$W/pk.pem" --kek "$W/kek.pem" --db "$W/db.pem" \
    --secure-boot "$img"
"$NVS" vars list "$img" | grep -E '^(PK|KEK|db|dbx|SecureBootEnable) '
boot 3 "$code" 900 "${sb[@]}"
[ ! -e "$W/hung-3" ] || fail "boot 3 hung"
grep -q "^GUEST: SecureBoot 1\$" "$W/boot-3.log" ||
    fail "boot 3: the guest does not see Secure Boot enabled"

echo "guest-vars: PASS: a variable set offline read in the guest (boot 1);" \
     "after delete-boot-entries OVMF wrote its boot options again:" \
     "$after(boot 2, SecureBoot=0); Secure Boot keys enrolled offline," \
     "SecureBoot=1 in the guest (boot 3)"
