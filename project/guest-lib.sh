# SPDX-License-Identifier: GPL-2.0-or-later
#
# Sourced by the guest tests (project/guest-*.sh): Debian's cloud kernel
# and an initramfs root of busybox and tpm2-tools.
#
#   guest_kernel DIR    the kernel package, unpacked once beside DIR
#                       (guest-kernel/, 100 MiB: shared by the guest
#                       tests), as DIR/kernel; sets $vmlinuz and $kmod
#                       (its modules directory)
#   guest_root DIR      makes DIR an initramfs root with busybox, tpm2
#                       (tpm2_nvdefine, nvwrite, nvread, getrandom, getcap,
#                       createprimary, evictcontrol, readpublic) and
#                       the libraries they load
#   guest_prepare       a new work directory $W with the kernel and the
#                       root $R, whose /init starts with the mounts every
#                       guest needs (the caller appends its steps)
#   guest_cpio DIR OUT  packs the root DIR into the initramfs OUT
#   guest_run N LIMIT [--kill-at TEXT] -- QEMU-ARGS...
#                       runs $QEMU, its serial console in $W/boot-N.log,
#                       for at most LIMIT seconds ($W/hung-N then says it
#                       was killed); with --kill-at, SIGKILLs it as soon
#                       as TEXT is on the console; prints the time and
#                       the guest's GUEST lines
#
# $CACHE is the download cache of the kernel package.

guest_kernel() {
    local w=$1 kpkg deb dir tmp
    kpkg=$(apt-cache depends linux-image-cloud-amd64 |
           awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
    deb=$(ls "$CACHE/${kpkg}"_*.deb 2>/dev/null | head -n 1 || true)
    if [ -z "$deb" ]; then
        (cd "$CACHE" && apt-get download "$kpkg" >/dev/null)
        deb=$(ls "$CACHE/${kpkg}"_*.deb | head -n 1)
    fi
    dir=$(dirname "$w")/guest-kernel/$(basename "$deb" .deb)
    if [ ! -d "$dir" ]; then
        mkdir -p "$(dirname "$dir")"
        tmp=$(mktemp -d "$dir.XXXXXX")
        dpkg-deb -x "$deb" "$tmp"
        mv -T "$tmp" "$dir" 2>/dev/null || rm -rf "$tmp"
    fi
    ln -s "$dir" "$w/kernel"
    vmlinuz=$(ls "$w"/kernel/boot/vmlinuz-*)
    kmod=$(ls -d "$w"/kernel/lib/modules/*)
}

guest_root() {
    local r=$1 t l libs
    mkdir -p "$r"/{bin,dev,proc,sys,tmp,etc}
    cp /bin/busybox "$r/bin/busybox"
    cp /usr/bin/tpm2 "$r/bin/tpm2"
    for t in nvdefine nvwrite nvread getrandom getcap createprimary \
             evictcontrol readpublic; do
        ln -s tpm2 "$r/bin/tpm2_$t"
    done
    # tpm2-tools loads its TCTI (libtss2-tcti-device) with dlopen()
    libs=$( (ldd /usr/bin/tpm2
             ldd /usr/lib/x86_64-linux-gnu/libtss2-tcti-device.so.0) |
            awk '/=> \// { print $3 } /^\t\/lib64/ { print $1 }' | sort -u)
    for l in $libs /usr/lib/x86_64-linux-gnu/libtss2-tcti-device.so.0; do
        mkdir -p "$r$(dirname "$l")"
        cp -L "$l" "$r$l"
    done
}

guest_cpio() {
    (cd "$1" && find . | cpio -o -H newc --quiet | gzip -1) >"$2"
}

guest_prepare() {
    rm -rf "$W"
    mkdir -p "$W" "$CACHE"
    guest_kernel "$W"
    R=$W/root
    guest_root "$R"
    cat >"$R/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
export TPM2TOOLS_TCTI=device:/dev/tpmrm0
EOF
    chmod +x "$R/init"
}

guest_run() {
    local n=$1 limit=$2 mark= log start end qpid wd
    shift 2
    if [ "$1" = --kill-at ]; then
        mark=$2
        shift 2
    fi
    [ "$1" != -- ] || shift
    log=$W/boot-$n.log
    rm -f "$W/hung-$n"
    start=$(date +%s%N)
    "$QEMU" -serial "file:$log" "$@" &
    qpid=$!
    # A hang is a failure that says which boot hung
    (sleep "$limit" && kill -KILL $qpid && touch "$W/hung-$n") 2>/dev/null &
    wd=$!
    if [ -n "$mark" ]; then
        while ! grep -q "$mark" "$log" 2>/dev/null; do
            kill -0 $qpid 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL $qpid 2>/dev/null || true
    fi
    wait $qpid 2>/dev/null || true
    { pkill -P $wd; kill $wd && wait $wd; } 2>/dev/null || true
    end=$(date +%s%N)
    # The serial console ends lines with CR LF
    sed -i 's/\r$//' "$log"
    echo "== boot $n: $(( (end - start) / 1000000 )) ms" \
         "$([ -e "$W/hung-$n" ] && echo "(killed after $limit s)")"
    grep '^GUEST' "$log" || true
}
