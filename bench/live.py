#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Live NVRAM (docs/interop/nvstore-live.rst): what a backup, an export
# and a move cost a running VM.  One QEMU, -tpmdev libtpms over nvstore
# inside qcow2 on a file, driven through tpm-tis with qtest MMIO.
#
# - TPM2_NV_Write round trip (qtest TPM_GO to data available), with
#   nothing else, while a backup of the storage node runs (one after
#   another, each slowed to 1 MiB/s so that it lasts), and while a
#   fleecing node is exported over NBD, with a reader that lists its
#   blobs every 10 ms (a qemu-nvstore process each time) and without.
#   The sets alternate in rounds, so that drift in the machine's speed
#   falls on all of them.
# - A move: blockdev-reopen of the nvstore node onto a new file, timed
#   around the QMP command; the devices wait for the copy made in its
#   drained section, so this bounds the pause of a device's write.
# - A backup of an image of 1 MiB of blobs: blockdev-backup to a raw
#   file, until the job completes and the target is closed (flushed),
#   against a copy of the image file's bytes and fdatasync of the copy;
#   then the same for an image of a 4 KiB blob, whose backup costs what
#   any backup costs.
#
#   bench/live.py [COUNT]        (default 100 NV_Writes per set)

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
build = os.environ.get('NVSTORE_BUILD', os.path.join(top, 'build'))
sys.path.insert(0, os.path.join(build, 'src', 'python'))

# pylint: disable=wrong-import-position
from qemu.machine import QEMUQtestMachine  # noqa: E402
from qemu.utils.tpm_tis import NV_DEFINE, STARTUP_CLEAR, nv_write, rc, \
    timed_transfer  # noqa: E402

QEMU = os.path.join(build, 'gcc', 'qemu-system-x86_64')
QEMU_IMG = os.path.join(build, 'gcc', 'qemu-img')
TOOL = os.path.join(build, 'gcc', 'qemu-nvstore')


def ms(times: 'list[float]') -> str:
    t = sorted(times)
    p90 = t[min(len(t) - 1, int(len(t) * 0.9))]
    return (f'min {t[0] * 1e3:.2f}, median {statistics.median(t) * 1e3:.2f}, '
            f'p90 {p90 * 1e3:.2f}, max {t[-1] * 1e3:.2f} ms')


def size_of(vm: QEMUQtestMachine, node: str) -> int:
    for n in vm.cmd('query-named-block-nodes', flat=True):
        if n['node-name'] == node:
            return n['image']['virtual-size']
    raise AssertionError(node)


# Each NV_Write writes other data: libtpms stores no unchanged state
written = [0]


def nv_writes(vm: QEMUQtestMachine, count: int) -> 'list[float]':
    times = []
    for _ in range(count):
        written[0] += 1
        rsp, t = timed_transfer(vm, nv_write(b'%08d' % written[0]))
        assert rc(rsp) == 0
        times.append(t)
    return times


def tpm_latency(tmp: str, vm: QEMUQtestMachine, count: int) -> None:
    rounds = 10
    alone: 'list[float]' = []
    backup: 'list[float]' = []
    export: 'list[float]' = []
    idle_export: 'list[float]' = []
    n = 0
    for _ in range(rounds):
        alone += nv_writes(vm, count // rounds)

        # Backups, one after another, for the whole set
        done = 0
        while True:
            target = os.path.join(tmp, 'backup')
            with open(target, 'wb') as f:
                f.truncate(size_of(vm, 'q0'))
            vm.cmd('blockdev-add', driver='file', node_name=f't{n}',
                   filename=target)
            vm.cmd('blockdev-backup', job_id=f'b{n}', device='q0',
                   target=f't{n}', sync='full', speed=1024 * 1024)
            while done < count // rounds:
                backup += nv_writes(vm, 1)
                done += 1
                if not vm.cmd('query-block-jobs'):
                    break
            vm.cmd('block-job-cancel', device=f'b{n}', force=True) \
                if vm.cmd('query-block-jobs') else None
            while vm.cmd('query-block-jobs'):
                time.sleep(0.001)
            vm.cmd('blockdev-del', node_name=f't{n}')
            n += 1
            if done >= count // rounds:
                break

        # A fleecing export, read by qemu-img convert again and again
        fleece = os.path.join(tmp, 'fleece.qcow2')
        subprocess.run([QEMU_IMG, 'create', '-q', '-f', 'qcow2', fleece,
                        str(size_of(vm, 'q0'))], check=True)
        vm.cmd('blockdev-add', driver='qcow2', node_name='fleece',
               file={'driver': 'file', 'filename': fleece}, backing='q0')
        vm.cmd('blockdev-backup', job_id='fleecing', device='q0',
               target='fleece', sync='none')
        sock = os.path.join(tmp, 'nbd.sock')
        vm.cmd('nbd-server-start',
               addr={'type': 'unix', 'data': {'path': sock}})
        vm.cmd('block-export-add', type='nbd', id='exp', node_name='fleece',
               name='nvram')
        stop = threading.Event()

        def reader() -> None:
            # A read every 10 ms: a reader that is never idle would
            # measure the competition for this machine's two CPUs
            while not stop.wait(0.01):
                subprocess.run([TOOL, 'list', '-U', '--image-opts',
                                'driver=nvstore,file.driver=nbd,'
                                'file.server.type=unix,'
                                f'file.server.path={sock},file.export=nvram'],
                               check=True, stdout=subprocess.DEVNULL)

        thread = threading.Thread(target=reader)
        thread.start()
        try:
            export += nv_writes(vm, count // rounds)
        finally:
            stop.set()
            thread.join()
        # The export and its copy-before-write alone, no reader
        idle_export += nv_writes(vm, count // rounds)
        vm.cmd('block-export-del', id='exp')
        vm.event_wait('BLOCK_EXPORT_DELETED')
        vm.cmd('nbd-server-stop')
        vm.cmd('job-cancel', id='fleecing')
        vm.event_wait('BLOCK_JOB_CANCELLED')
        vm.cmd('blockdev-del', node_name='fleece')

    base = statistics.median(alone)
    print(f'TPM2_NV_Write, {len(alone)} each (median, ratio to alone)')
    print(f'  {"alone":34} {base * 1e6:7.0f} us')
    for name, times in (('during backups', backup),
                        ('during an export, read every 10 ms', export),
                        ('during an export, no reader', idle_export)):
        med = statistics.median(times)
        print(f'  {name:34} {med * 1e6:7.0f} us  {med / base:.2f}x')


def moves(tmp: str, vm: QEMUQtestMachine, count: int) -> None:
    times = []
    for i in range(count):
        path = os.path.join(tmp, f'moved{i % 2}')
        with open(path, 'wb'):
            pass
        vm.cmd('blockdev-add', driver='file', node_name=f'm{i}',
               filename=path)
        start = time.perf_counter()
        vm.cmd('blockdev-reopen', options=[
            {'driver': 'nvstore', 'node-name': 'nv0', 'file': f'm{i}'}])
        times.append(time.perf_counter() - start)
        old = 'q0' if i == 0 else f'm{i - 1}'
        vm.cmd('blockdev-del', node_name=old)
        if i == 0:
            vm.cmd('blockdev-del', node_name='f0')
        # The TPM commits on the new storage before the next move
        nv_writes(vm, 1)
    print(f'Move of the image ({size_of(vm, f"m{count - 1}")} bytes) to a '
          f'new file, {count} times: blockdev-reopen {ms(times)}')


def backup(tmp: str, count: int, blob_size: int) -> None:
    img = os.path.join(tmp, f'backup-{blob_size}.nvstore')
    blob = os.path.join(tmp, 'blob')
    with open(blob, 'wb') as f:
        f.write(os.urandom(blob_size))
    subprocess.run([QEMU_IMG, 'create', '-q', '-f', 'nvstore', img],
                   check=True)
    subprocess.run([TOOL, 'put', '-i', blob, img, 'data'], check=True)
    size = os.path.getsize(img)
    vm = QEMUQtestMachine(QEMU, ['-nodefaults', '-display', 'none',
                                 '-blockdev',
                                 f'file,node-name=f1,filename={img}',
                                 '-blockdev', 'nvstore,node-name=nv1,file=f1'],
                          base_temp_dir=tmp)
    vm.launch()
    job, copy, run, close = [], [], [], []
    try:
        for i in range(count):
            target = os.path.join(tmp, 'target')
            with open(target, 'wb') as f:
                f.truncate(size)
            start = time.perf_counter()
            vm.cmd('blockdev-add', driver='file', node_name='t',
                   filename=target)
            started = time.perf_counter()
            vm.cmd('blockdev-backup', job_id=f'j{i}', device='f1',
                   target='t', sync='full')
            vm.event_wait('BLOCK_JOB_COMPLETED')
            run.append(time.perf_counter() - started)
            started = time.perf_counter()
            vm.cmd('blockdev-del', node_name='t')
            close.append(time.perf_counter() - started)
            job.append(time.perf_counter() - start)
            os.unlink(target)

            start = time.perf_counter()
            with open(img, 'rb') as f:
                data = f.read()
            fd = os.open(target, os.O_WRONLY | os.O_CREAT, 0o600)
            os.write(fd, data)
            os.fdatasync(fd)
            os.close(fd)
            copy.append(time.perf_counter() - start)
            os.unlink(target)
    finally:
        vm.shutdown()
    j, c = statistics.median(job), statistics.median(copy)
    print(f'Backup of an image of {size} bytes (a blob of {blob_size} '
          f'bytes), {count} each (median):')
    print(f'  read, write and fdatasync  {c * 1e3:6.2f} ms')
    print(f'  blockdev-backup, closed    {j * 1e3:6.2f} ms  {j / c:.2f}x')
    print(f'    of which the job, from blockdev-backup to its completion '
          f'{statistics.median(run) * 1e3:.2f} ms, and blockdev-del of the '
          f'target (its flush and close) {statistics.median(close) * 1e3:.2f} '
          'ms')


def main() -> int:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    with tempfile.TemporaryDirectory(dir=os.path.join(build, 'bench-tmp')
                                     if os.path.isdir(os.path.join(
                                         build, 'bench-tmp')) else None) \
            as tmp:
        img = os.path.join(tmp, 'vm-state.qcow2')
        subprocess.run([QEMU_IMG, 'create', '-q', '-f', 'nvstore', '-o',
                        'container=qcow2', img], check=True)
        # OVMF's variable store beside the TPM, as a VM has them
        vars_ = os.path.join(tmp, 'vars')
        with open(vars_, 'wb') as f:
            f.write(b'\xff' * 540 * 1024)
        subprocess.run([TOOL, 'put', '-i', vars_, img, 'uefi-vars'],
                       check=True)
        vm = QEMUQtestMachine(QEMU, [
            '-machine', 'pc', '-nodefaults', '-display', 'none',
            '-blockdev', f'file,node-name=f0,filename={img}',
            '-blockdev', 'qcow2,node-name=q0,file=f0',
            '-blockdev', 'nvstore,node-name=nv0,file=q0',
            '-tpmdev', 'libtpms,id=tpm0,drive=nv0',
            '-device', 'tpm-tis,tpmdev=tpm0'], base_temp_dir=tmp)
        vm.launch()
        try:
            assert rc(timed_transfer(vm, STARTUP_CLEAR)[0]) == 0
            assert rc(timed_transfer(vm, NV_DEFINE)[0]) == 0
            tpm_latency(tmp, vm, count)
            moves(tmp, vm, 20)
        finally:
            vm.shutdown()
        backup(tmp, 20, 1024 * 1024)
        # What a backup costs whatever the image's size
        backup(tmp, 20, 4096)
    return 0


if __name__ == '__main__':
    sys.exit(main())
