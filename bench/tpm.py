#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
#
# TPM2_NV_Write with persistence through -tpmdev libtpms over nvstore
# (inside qcow2 on a file): round trip per command, and fdatasync calls
# per command (QEMU runs under strace).  Baselines measured in the same
# run: TPM2_GetRandom through the same path (no state change, no
# write), and pwrite + fdatasync of the same number of bytes (the size
# of permall) on a plain file in the same directory.
#
# The TPM is driven through tpm-tis with qtest MMIO accesses, so a
# round trip includes qtest's socket round trips (about a hundred per
# command); compare the two TPM commands with each other, and the
# difference between them with the fdatasync floor.
#
#   bench/tpm.py [COUNT]        (default 200 NV_Writes)
#
# bench/run.py also uses run_vm() for swtpm (-tpmdev emulator), and for
# a profile of where a durable NV_Write's time goes (trace events).
#
# Needs the build (build/gcc) and strace.  Prints one table.

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Iterator

top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
build = os.environ.get('NVSTORE_BUILD', os.path.join(top, 'build'))
sys.path.insert(0, os.path.join(build, 'src', 'python'))

# pylint: disable=wrong-import-position
from qemu.machine import QEMUQtestMachine  # noqa: E402
from qemu.utils.flush_count import flush_log_wrapper, \
    logged_flushes  # noqa: E402
from qemu.utils.tpm_tis import GETRANDOM_8, NV_DEFINE, STARTUP_CLEAR, \
    TIS_BASE, TIS_INT_ENABLE, nv_write, qtest, rc, timed_transfer  # noqa: E402

QEMU = os.path.join(build, 'gcc', 'qemu-system-x86_64')
QEMU_IMG = os.path.join(build, 'gcc', 'qemu-img')


def stats(times: 'list[float]') -> str:
    times = sorted(times)
    med = statistics.median(times)
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    return f'{med * 1e6:9.0f} {p99 * 1e6:9.0f}'


def floor(directory: str, size: int, count: int,
          gap: float = 0.0) -> 'list[float]':
    """
    Seconds of each of @count pwrite + fdatasync of @size bytes on a plain
    file, back to back or one every @gap seconds.  Spaced out, each write
    changes the file's modification time, which fdatasync may have to
    write too (the inode): the floor for writes as a TPM's commands come.
    """
    path = os.path.join(directory, 'floor')
    data = os.urandom(size)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    times = []
    try:
        for _ in range(count):
            if gap:
                time.sleep(gap)
            start = time.perf_counter()
            os.pwrite(fd, data, 0)
            os.fdatasync(fd)
            times.append(time.perf_counter() - start)
    finally:
        os.close(fd)
    return times


# Where a durable NV_Write's time goes: trace events in its order, and
# the name of the stage that ends at each
STAGES = (
    ('tpm_libtpms_handle_request', 'hand-off to the worker thread'),
    ('tpm_libtpms_nvram_store', 'libtpms runs the command'),
    ('nvstore_commit_blob', 'to the main loop, commit prepared'),
    ('nvstore_commit_flush', 'writes (data, directory, slot at once)'),
    ('nvstore_commit ', 'flush (fdatasync in a worker thread)'),
    ('tpm_tis_raise_irq', 'completion to the device'),
)


def run_vm(tmp: str, count: int, trace: str = '',
           swtpm: bool = False, profile: bool = False,
           aio: str = '') -> tuple:
    """
    NV_Writes and GetRandoms on a new image; with @trace, QEMU runs under
    strace and the fdatasync/fsync calls of the NV_Writes are counted.
    With @swtpm, -tpmdev emulator and a swtpm process instead.  @aio: the
    image file's aio mode, if not the default (threads).
    """
    img = os.path.join(tmp, 'tpm.qcow2')
    swtpm_proc = None
    args = ['-machine', 'pc', '-nodefaults', '-display', 'none']
    if swtpm:
        state = os.path.join(tmp, 'swtpm-state')
        sock = os.path.join(tmp, 'swtpm.sock')
        os.makedirs(state, exist_ok=True)
        # pylint: disable=consider-using-with
        swtpm_proc = subprocess.Popen(['swtpm', 'socket', '--tpm2',
                                       '--tpmstate', f'dir={state}',
                                       '--ctrl', f'type=unixio,path={sock}'])
        for _ in range(100):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        args += ['-chardev', f'socket,id=chrtpm,path={sock}',
                 '-tpmdev', 'emulator,id=tpm0,chardev=chrtpm']
    else:
        subprocess.run([QEMU_IMG, 'create', '-q', '-f', 'nvstore', '-o',
                        'container=qcow2', img], check=True)
        aio_opt = f',aio={aio}' if aio else ''
        args += ['-blockdev', f'file,node-name=f0,filename={img}{aio_opt}',
                 '-blockdev', 'qcow2,node-name=q0,file=f0',
                 '-blockdev', 'nvstore,node-name=nv0,file=q0',
                 '-tpmdev', 'libtpms,id=tpm0,drive=nv0']
    args += ['-device', 'tpm-tis,tpmdev=tpm0']
    log = os.path.join(tmp, 'trace.log')
    if not trace:
        # Backend time: from the TPM_GO write that hands the command to
        # the backend to the data-available interrupt of its completion
        args += ['-msg', 'timestamp=on', '-D', log,
                 '-trace', 'tpm_tis_mmio_write', '-trace', 'tpm_tis_raise_irq']
        if profile:
            for event, _ in STAGES:
                args += ['-trace', event.strip()]
    wrapper = flush_log_wrapper(trace) if trace else []
    vm = QEMUQtestMachine(QEMU, args, base_temp_dir=tmp, wrapper=wrapper)

    def syncs() -> int:
        return logged_flushes(trace) if trace else 0

    vm.launch()
    try:
        # Interrupts on, for the data-available event (INT_ENABLE)
        qtest(vm, f'writel {TIS_BASE + TIS_INT_ENABLE:#x} 0x80000003')
        assert rc(timed_transfer(vm, STARTUP_CLEAR)[0]) == 0
        assert rc(timed_transfer(vm, NV_DEFINE)[0]) == 0
        rnd = []
        for _ in range(count):
            rsp, t = timed_transfer(vm, GETRANDOM_8)
            assert rc(rsp) == 0
            rnd.append(t)
        before = syncs()
        nvw = []
        for i in range(count):
            rsp, t = timed_transfer(vm, nv_write(f'{i:08d}'.encode()))
            assert rc(rsp) == 0
            nvw.append(t)
        flushes = syncs() - before
    finally:
        vm.shutdown()
        if swtpm_proc:
            swtpm_proc.terminate()
            swtpm_proc.wait(timeout=10)
    if profile:
        return stage_times(log, count), command_interval(log, count)
    backend = backend_times(log) if not trace else []
    # Startup and NV_DefineSpace, then the GetRandoms, then the NV_Writes
    if backend:
        assert len(backend) == 2 + 2 * count, len(backend)
        backend = [backend[2:2 + count], backend[2 + count:]]
    if swtpm:
        return nvw, rnd, flushes, 0, backend
    info = subprocess.run([QEMU_IMG, 'info', '--output=json',
                           '--image-opts', 'driver=nvstore,file.driver=qcow2,'
                           f'file.file.filename={img}'],
                          check=True, stdout=subprocess.PIPE,
                          universal_newlines=True).stdout
    size = json.loads(info)['format-specific']['data']['blobs'][0]['size']
    os.unlink(img)
    return nvw, rnd, flushes, size, backend


# The TPM_GO write that hands a command to the backend
TPM_GO = 'tpm_tis_mmio_write write.1(0x00000018) = 0x00000020'


def trace_events(log: str) -> 'Iterator[tuple[float, str]]':
    """(seconds, event) of each line of a log trace backend's @log"""
    with open(log, encoding='utf-8') as f:
        for line in f:
            # 1234@1700000000.123456:tpm_tis_mmio_write write.1(...) = ...
            if '@' not in line or ':' not in line:
                continue
            stamp, _, event = line.partition(':')
            yield float(stamp.split('@')[1]), event


def backend_times(log: str) -> 'list[float]':
    """Seconds from each TPM_GO to the next data-available interrupt"""
    times, start = [], None
    for t, event in trace_events(log):
        if event.startswith(TPM_GO):
            start = t
        elif event.startswith('tpm_tis_raise_irq') and start is not None:
            times.append(t - start)
            start = None
    return times


def command_interval(log: str, count: int) -> float:
    """The median seconds from one TPM_GO to the next, last @count ones"""
    gos = [t for t, event in trace_events(log) if event.startswith(TPM_GO)]
    return statistics.median(b - a for a, b in zip(gos[-count:],
                                                   gos[-count + 1:]))


def stage_times(log: str, count: int) -> 'list[tuple[str, float]]':
    """
    The median seconds of each of STAGES over the last @count commands
    (the NV_Writes), from the TPM_GO write to the interrupt
    """
    commands, cur, last = [], None, 0.0
    for t, event in trace_events(log):
        if event.startswith(TPM_GO):
            cur, last = {}, t
            continue
        if cur is None:
            continue
        for name, stage in STAGES:
            # The first event of a stage ends the one before it; each
            # store of libtpms extends its stage
            if event.startswith(name) and (
                    stage not in cur or name.startswith('tpm_libtpms_nvram')):
                cur[stage] = cur.get(stage, 0.0) + t - last
                last = t
        if event.startswith('tpm_tis_raise_irq'):
            commands.append(cur)
            cur = None
    nvw = commands[-count:]
    return [(stage, statistics.median(c.get(stage, 0.0) for c in nvw))
            for _, stage in STAGES]


def main() -> int:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    with tempfile.TemporaryDirectory(dir=build) as tmp:
        nvw, rnd, _, size, _ = run_vm(tmp, count)
        flo = floor(tmp, size, count)
        _, _, flushes, _, _ = run_vm(tmp, 20,
                                     os.path.join(tmp, 'strace.log'))

    med = {k: statistics.median(v) for k, v in
           (('nvw', nvw), ('rnd', rnd), ('floor', flo))}
    print(f'TPM2_NV_Write with persistence, libtpms + nvstore in qcow2 on '
          f'a file, {count} commands; permall {size} bytes')
    print(f'{"":44} {"median us":>9} {"p99 us":>9}')
    print(f'{"NV_Write (tpm-tis over qtest)":44} {stats(nvw)}')
    print(f'{"GetRandom (tpm-tis over qtest, no write)":44} {stats(rnd)}')
    print(f'{"floor: pwrite + fdatasync, same bytes":44} {stats(flo)}')
    print(f'NV_Write - GetRandom (persistence): '
          f'{(med["nvw"] - med["rnd"]) * 1e6:.0f} us, '
          f'{(med["nvw"] - med["rnd"]) / med["floor"]:.2f}x the floor')
    print(f'flushes (fdatasync/fsync) per NV_Write, counted with strace over '
          f'20 commands: {flushes / 20:.2f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
