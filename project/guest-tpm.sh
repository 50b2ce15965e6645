#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# A real guest on the libtpms TPM backend: Debian's cloud kernel (the TPM
# TIS and CRB drivers are built in) with an initramfs of busybox and
# tpm2-tools boots on a new nvstore image (inside qcow2), and Linux's
# own TPM driver and tpm2-tools define an NV index, write it, make a key
# persistent and read random bytes; the guest powers off; a second boot
# on the same image reads the NV index back.  qemu-nvstore tpm info then
# lists exactly the persistent handles and NV indices that tpm2_getcap
# listed in the guest.  Then the state goes to swtpm (qemu-nvstore tpm
# export, as a state directory and as a linear file), which reads the
# index from both and changes it, and back into a new image (tpm
# import), where a third boot reads swtpm's value.  Last, qemu-nvstore
# tpm setup provisions a new image with EK certificates from a test CA
# and two PCR banks, and a fourth boot reads the RSA EK's certificate
# (which openssl verifies against the CA, and whose key is the one
# tpm2_readpublic reads at the EK's handle) and the PCR banks.
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
NVS=$B/gcc/qemu-nvstore

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
    tpm2_createprimary -C o -G ecc -c /tmp/primary.ctx >/dev/null &&
        tpm2_evictcontrol -C o -c /tmp/primary.ctx 0x81000005 >/dev/null &&
        echo "GUEST: persistent key ok"
    echo "GUEST: random $(tpm2_getrandom --hex 16)"
    echo "GUEST: getcap persistent" \
         $(tpm2_getcap handles-persistent | sed 's/^- //')
    echo "GUEST: getcap nv" $(tpm2_getcap handles-nv-index | sed 's/^- //')
elif [ "$step" = setup ]; then
    tpm2_nvread 0x1c00002 -C o -o /tmp/ek.der 2>/dev/null &&
        echo "GUEST: ekcert $(od -An -tx1 -v /tmp/ek.der | tr -d ' \n')"
    tpm2_readpublic -c 0x81010001 -f pem -o /tmp/ek.pem >/dev/null &&
        echo "GUEST: ekpub $(grep -v '^-----' /tmp/ek.pem | tr -d '\n')"
    echo "GUEST: pcrs $(tpm2_getcap pcrs | tr -d ' \n')"
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
echo "== qemu-nvstore tpm info after the guest"
"$NVS" tpm info "$W/vm-state.qcow2"
"$NVS" tpm info --output=json "$W/vm-state.qcow2" >"$W/info.json"
# The handles tpm info lists, in the form tpm2_getcap writes them
listed() {
    /usr/bin/python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
print(" ".join("0x%X" % int(h[sys.argv[3]], 16) for h in d[sys.argv[2]]))' \
        "$W/info.json" "$1" "$2"
}
for what in "persistent persistent-handles handle" "nv nv-indices index"; do
    set -- $what
    guest=$(sed -n "s/^GUEST: getcap $1 //p" "$W/boot-write.log")
    ours=$(listed "$2" "$3")
    echo "tpm2_getcap in the guest: $guest; tpm info: $ours"
    [ -n "$guest" ] && [ "$guest" = "$ours" ] ||
        fail "tpm info does not list the $2 that tpm2_getcap listed"
done

# --- To swtpm and back: export, change the index under swtpm, import -------
# --- To swtpm and back: export, change the index under swtpm, import -------
# swtpm TPMSTATE: start a swtpm on that state
port=$((20000 + $$ % 20000))
export TPM2TOOLS_TCTI=swtpm:host=127.0.0.1,port=$port
trap 'kill "$(cat "$W/swtpm.pid" 2>/dev/null)" 2>/dev/null || true' EXIT
start_swtpm() {
    rm -f "$W/swtpm.pid"
    swtpm socket --tpm2 --tpmstate "$1" --flags startup-clear \
        --server type=tcp,port=$port,bindaddr=127.0.0.1 \
        --ctrl type=tcp,port=$((port + 1)),bindaddr=127.0.0.1 \
        --daemon --pid file="$W/swtpm.pid"
}
stop_swtpm() {
    swtpm_ioctl --tcp 127.0.0.1:$((port + 1)) -s
}
echo "== Export as a swtpm linear file; swtpm reads the index"
"$NVS" tpm export --format swtpm-linear "$W/vm-state.qcow2" "$W/state.lin"
start_swtpm "backend-uri=file://$W/state.lin"
got=$(tpm2_nvread 0x1500016 -C o -s ${#data})
echo "swtpm reads: $got"
stop_swtpm
[ "$got" = "$data" ] || fail "swtpm did not read the exported linear file"
echo "== Export to a swtpm state directory; swtpm reads and changes the index"
state=$W/swtpm-state
"$NVS" tpm export --format swtpm-dir "$W/vm-state.qcow2" "$state"
start_swtpm "dir=$state"
got=$(tpm2_nvread 0x1500016 -C o -s ${#data})
echo "swtpm reads: $got"
[ "$got" = "$data" ] || fail "swtpm did not read the exported state"
data2=swtpm-$(date +%s)-$$
printf '%s' "$data2" >"$W/data2"
tpm2_nvwrite 0x1500016 -C o -i "$W/data2"
echo "swtpm writes: $data2"
stop_swtpm
echo "== Import swtpm's state into a new nvstore image; boot 3 reads it"
"$IMG" create -q -f nvstore -o container=qcow2 "$W/vm-state.qcow2"
"$NVS" tpm import --format swtpm-dir "$W/vm-state.qcow2" "$state"
data=$data2
boot read
grep -q "^GUEST: nvread $data2\$" "$W/boot-read.log" ||
    fail "boot 3 did not read what swtpm wrote"

# --- tpm setup: the EK certificate, read in the guest --------------------
echo "== tpm setup with a test CA on a new image; boot 4 reads the EK certificate"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$W/ca.key" \
    -out "$W/ca.pem" -days 3650 -subj "/CN=nvstore guest test CA" \
    -addext basicConstraints=critical,CA:TRUE 2>/dev/null
"$IMG" create -q -f nvstore -o container=qcow2 "$W/vm-state.qcow2"
"$NVS" tpm setup --ca-cert "$W/ca.pem" --ca-key "$W/ca.key" \
    --pcr-banks sha256,sha384 --lock-nvram "$W/vm-state.qcow2"
boot setup
sed -n 's/^GUEST: ekcert //p' "$W/boot-setup.log" |
    /usr/bin/python3 -c 'import sys
sys.stdout.buffer.write(bytes.fromhex(sys.stdin.read().strip()))' \
    >"$W/ek.der"
[ -s "$W/ek.der" ] || fail "boot 4 read no EK certificate"
openssl x509 -inform DER -in "$W/ek.der" -out "$W/ek.pem" ||
    fail "the guest's EK certificate is not a certificate"
openssl verify -CAfile "$W/ca.pem" "$W/ek.pem" ||
    fail "openssl does not verify the EK certificate against the CA"
ours=$(openssl x509 -in "$W/ek.pem" -noout -pubkey | grep -v '^-----' |
       tr -d '\n')
guest=$(sed -n 's/^GUEST: ekpub //p' "$W/boot-setup.log")
[ -n "$ours" ] && [ "$ours" = "$guest" ] ||
    fail "the certificate's key is not the EK's (tpm2_readpublic 0x81010001)"
echo "the EK certificate's key is the one tpm2_readpublic reads in the guest"
pcrs=$(sed -n 's/^GUEST: pcrs //p' "$W/boot-setup.log")
case $pcrs in
*"-sha1:[]"*"-sha256:[0,1,"*"-sha384:[0,1,"*"-sha512:[]"*)
    echo "PCR banks in the guest: sha256, sha384" ;;
*)
    fail "the guest's PCR banks are not sha256 and sha384: $pcrs" ;;
esac

echo "guest-tpm: PASS tpm-$front: NV index and persistent key made in boot 1, read back in boot 2, listed by tpm info as by tpm2_getcap; exported to swtpm (linear file, directory), changed there, imported, read back in boot 3; tpm setup's EK certificate read in boot 4, verified against the CA, its key the EK's; PCR banks as asked"
