#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""
Boot time of OVMF and Linux under TCG with the UEFI variables in an
nvstore-blob node (with the libtpms TPM on the same nvstore node, inside
qcow2) against a raw vars file (and the same TPM on its own nvstore
image), in the same run; commits and flushes per boot.

  /usr/bin/python3 bench/uefi.py [RUNS]

Uses the kernel and initramfs that project/guest-uefi.sh built (it runs
it first if they are missing).  Each boot is the guest's "read" step:
the firmware writes its own variables (boot order, counters), the guest
reads one and powers off.  Prints a markdown table.
"""

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
build = os.environ.get('NVSTORE_BUILD', os.path.join(top, 'build'))
sys.path.insert(0, os.path.join(build, 'src', 'python'))
# pylint: disable=wrong-import-position
from qemu.utils.flush_count import count_flushes  # noqa: E402

QEMU = os.path.join(build, 'gcc', 'qemu-system-x86_64')
IMG = os.path.join(build, 'gcc', 'qemu-img')
QIO = os.path.join(build, 'gcc', 'qemu-io')
GUEST = os.path.join(build, 'guest-uefi')
OVMF = '/usr/share/OVMF'


def generation(image: str) -> int:
    out = subprocess.run([IMG, 'info', '-U', '--output=json', '--image-opts',
                          'driver=nvstore,file.driver=qcow2,'
                          f'file.file.filename={image}'],
                         check=True, stdout=subprocess.PIPE,
                         universal_newlines=True).stdout
    # "generation": N of the image, the first one in the output
    key = '"generation": '
    return int(out[out.index(key) + len(key):].split(',')[0].split()[0])


def qemu_args(tmp: str, vars_raw: bool, vmlinuz: str) -> 'list[str]':
    image = os.path.join(tmp, 'vm-state.qcow2')
    args = [QEMU, '-machine', 'q35,accel=tcg,pflash0=code0,pflash1=vars0',
            '-m', '512', '-nodefaults', '-display', 'none', '-no-reboot',
            '-serial', f'file:{tmp}/serial.log',
            '-kernel', vmlinuz, '-initrd', os.path.join(GUEST, 'initrd.gz'),
            '-append', 'console=ttyS0 panic=-1 quiet nvtest=read nvdata=x',
            '-blockdev', 'file,node-name=code0,read-only=on,'
            f'filename={OVMF}/OVMF_CODE_4M.fd',
            '-blockdev', f'file,node-name=f0,filename={image}',
            '-blockdev', 'qcow2,node-name=q0,file=f0',
            '-blockdev', 'nvstore,node-name=nv0,file=q0',
            '-tpmdev', 'libtpms,id=tpm0,drive=nv0',
            '-device', 'tpm-crb,tpmdev=tpm0']
    if vars_raw:
        args += ['-blockdev', 'file,node-name=vars0,'
                 f'filename={tmp}/OVMF_VARS_4M.fd']
    else:
        args += ['-blockdev',
                 'nvstore-blob,node-name=vars0,file=nv0,blob=uefi-vars']
    return args


def setup(tmp: str) -> None:
    image = os.path.join(tmp, 'vm-state.qcow2')
    vars_fd = os.path.join(OVMF, 'OVMF_VARS_4M.fd')
    size = os.path.getsize(vars_fd)
    subprocess.run([IMG, 'create', '-q', '-f', 'nvstore', '-o',
                    'container=qcow2', image], check=True)
    subprocess.run([QIO, '--image-opts',
                    'driver=nvstore-blob,blob=uefi-vars,file.driver=nvstore,'
                    'file.file.driver=qcow2,'
                    f'file.file.file.filename={image}',
                    '-c', f'truncate {size}',
                    '-c', f'write -s {vars_fd} 0 {size}'],
                   check=True, stdout=subprocess.DEVNULL)
    shutil.copy(vars_fd, tmp)


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    if not os.path.exists(os.path.join(GUEST, 'initrd.gz')):
        subprocess.run([os.path.join(top, 'project', 'guest-uefi.sh')],
                       check=True, stdout=subprocess.DEVNULL)
    vmlinuz = [os.path.join(GUEST, 'kernel', 'boot', f)
               for f in os.listdir(os.path.join(GUEST, 'kernel', 'boot'))
               if f.startswith('vmlinuz-')][0]
    times: 'dict[bool, list[float]]' = {True: [], False: []}
    commits: 'list[int]' = []
    flushes: 'dict[bool, list[int]]' = {True: [], False: []}
    with tempfile.TemporaryDirectory() as tmp:
        setup(tmp)
        for _ in range(runs):
            for vars_raw in (True, False):
                args = qemu_args(tmp, vars_raw, vmlinuz)
                image = os.path.join(tmp, 'vm-state.qcow2')
                gen = generation(image)
                start = time.monotonic()
                subprocess.run(args, check=True, timeout=900)
                times[vars_raw].append(time.monotonic() - start)
                if not vars_raw:
                    commits.append(generation(image) - gen)
                flushes[vars_raw].append(
                    count_flushes(args, os.path.join(tmp, 'strace.log')))
    raw = statistics.median(times[True])
    nvs = statistics.median(times[False])
    print(f'## OVMF + Linux boot under TCG, median of {runs}')
    print()
    print('| vars | boot s | ratio | commits per boot | flushes per boot |')
    print('|---|---|---|---|---|')
    print(f'| raw file | {raw:.2f} | 1.00x | - | '
          f'{statistics.median(flushes[True])} |')
    print(f'| nvstore-blob | {nvs:.2f} | {nvs / raw:.2f}x | '
          f'{statistics.median(commits)} | '
          f'{statistics.median(flushes[False])} |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
