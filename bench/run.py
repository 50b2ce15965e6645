#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
#
# All nvstore benchmarks, one command: prints a table and writes
# bench/results.md and bench/latency.png (gnuplot).  Every figure is
# compared with a baseline measured in the same run.
#
#   /usr/bin/python3 bench/run.py [COUNT]     (default 200 per point)
#
# Needs the build (make build), strace, swtpm and gnuplot (deps.sh
# installs them).  Runs in build/bench-tmp, on the file system of the
# build directory.

import datetime
import os
import platform
import statistics
import subprocess
import sys
import tempfile

top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(top, 'bench'))
# pylint: disable=wrong-import-position
import tpm  # noqa: E402
from qemu.utils.flush_count import count_flushes, \
    count_flushes_and_bytes  # noqa: E402

build = tpm.build
BENCH = os.path.join(build, 'gcc', 'tests', 'bench', 'bench-nvstore')
SIZES = (1024, 65536, 1048576)
KINDS = ('floor', 'floor-3-writes', 'nvstore-raw', 'nvstore-qcow2',
         'swtpm-dir')
URING_KINDS = ('nvstore-raw io_uring', 'nvstore-qcow2 io_uring')


def bench(*args: str, aio: str = '') -> 'list[list[str]]':
    env = dict(os.environ)
    if aio:
        env['BENCH_NVSTORE_AIO'] = aio
    out = subprocess.run([BENCH, *args], check=True, stdout=subprocess.PIPE,
                         universal_newlines=True, env=env).stdout
    return [line.split() for line in out.splitlines()]


def flushes(tmp: str, kind: str, size: int, n: int) -> float:
    """fdatasync/fsync calls per update (strace; N updates minus none)"""
    def count(k: int) -> int:
        return count_flushes([BENCH, 'flushes', tmp, kind, str(size),
                              str(k)], os.path.join(tmp, 'strace.log'))
    return (count(n) - count(0)) / n


def amplification(tmp: str, kind: str, size: int, n: int) -> float:
    """Bytes written to the file per update / the blob's size (strace)"""
    def count(k: int) -> int:
        return count_flushes_and_bytes(
            [BENCH, 'flushes', tmp, kind, str(size), str(k)],
            os.path.join(tmp, 'strace.log'))[1]
    return (count(n) - count(0)) / n / size


class Goals:
    """The performance goals, each with its figure from this run"""

    def __init__(self) -> None:
        self.rows: 'list[tuple[str, str, str, bool]]' = []

    def add(self, what: str, now: float, goal: float, unit: str = 'x',
            fmt: str = '.2f') -> None:
        # A figure that rounds to the goal but misses it shows why
        if f'{now:{fmt}}' == f'{goal:{fmt}}' and now > goal:
            fmt = fmt.replace('2', '3').replace('1', '2')
        self.rows.append((what, f'{now:{fmt}}{unit}',
                          f'<= {goal:{fmt}}{unit}', now <= goal))

    def emit(self, emit) -> None:
        emit('## Goals, from this run')
        emit()
        emit('| what | now | goal | met |')
        emit('|---|---|---|---|')
        for what, now, goal, met in self.rows:
            emit(f'| {what} | {now} | {goal} | {"yes" if met else "no"} |')
        emit()


def main() -> int:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    out = []

    def emit(line: str = '') -> None:
        print(line)
        out.append(line)

    commit = subprocess.run(['git', '-C', top, 'rev-parse', '--short',
                             'HEAD'], stdout=subprocess.PIPE,
                            universal_newlines=True).stdout.strip()
    with open('/proc/cpuinfo', encoding='utf-8') as f:
        cpu = next((line.split(':', 1)[1].strip() for line in f
                    if line.startswith('model name')), platform.machine())
    tmpbase = os.path.join(build, 'bench-tmp')
    os.makedirs(tmpbase, exist_ok=True)
    fs = subprocess.run(['stat', '-f', '-c', '%T', tmpbase],
                        stdout=subprocess.PIPE,
                        universal_newlines=True).stdout.strip()

    emit('# nvstore benchmark results')
    emit()
    when = datetime.datetime.now(datetime.timezone.utc)
    emit(f'- date: {when:%Y-%m-%d %H:%M} UTC; commit {commit}')
    emit(f'- machine: {os.cpu_count()} CPUs, {cpu}; file system {fs} '
         f'({tmpbase}); {count} updates per point')
    emit('- command: `/usr/bin/python3 bench/run.py ' + str(count) + '`')
    emit()

    goals = Goals()
    with tempfile.TemporaryDirectory(dir=tmpbase) as tmp:
        rows = bench('update', tmp, str(count))
        lat = {(r[0][len('update-'):], int(r[1])): (float(r[2]), float(r[3]))
               for r in rows if r[0].startswith('update-')}
        # The same with the image files opened with aio=io_uring: nvstore
        # rows against the floor measured in that run
        rows = bench('update', tmp, str(count), aio='io_uring')
        for r in rows:
            kind = r[0][len('update-'):]
            if kind.startswith('nvstore-'):
                lat[(kind + ' io_uring', int(r[1]))] = (float(r[2]),
                                                        float(r[3]))
            elif kind == 'floor':
                lat[('floor io_uring', int(r[1]))] = (float(r[2]),
                                                      float(r[3]))
        fl = {k: flushes(tmp, k, 65536, 20) for k in KINDS}
        amp = {(k, size): amplification(tmp, k, size, 20)
               for k in ('nvstore-raw', 'nvstore-qcow2') for size in SIZES}

        def ratio(kind: str, size: int) -> float:
            floor = 'floor io_uring' if kind.endswith('io_uring') else 'floor'
            return lat[(kind, size)][0] / lat[(floor, size)][0]
        for aio in ('', ' io_uring'):
            how = ', aio=io_uring' if aio else ''
            goals.add(f'64 KiB durable update, raw file{how}, vs floor',
                      ratio('nvstore-raw' + aio, 65536), 1.3)
            goals.add(f'1 KiB durable update, raw file{how}, vs floor',
                      ratio('nvstore-raw' + aio, 1024), 1.4)
            goals.add(f'64 KiB update inside qcow2{how} vs floor',
                      ratio('nvstore-qcow2' + aio, 65536), 1.4)
        goals.add('flushes per 64 KiB update inside qcow2',
                  fl['nvstore-qcow2'], 1.0, unit='')

        emit('## Durable blob update (one blob replaced, flushed)')
        emit()
        emit('| size | what | median us | p99 us | x floor | flushes |')
        emit('|---|---|---|---|---|---|')
        for size in SIZES:
            for k in KINDS + URING_KINDS:
                med, p99 = lat[(k, size)]
                nfl = f'{fl[k]:.2f}' if size == 65536 and k in fl else ''
                emit(f'| {size // 1024} KiB | {k} | {med:.0f} | {p99:.0f} | '
                     f'{ratio(k, size):.2f} | {nfl} |')
        m64 = lat[('nvstore-raw', 65536)][0]
        emit()
        emit(f'64 KiB update, nvstore on a raw file: '
             f'{m64 / lat[("floor", 65536)][0]:.2f}x the floor '
             f'(goal <= 1.3x), '
             f'{m64 / lat[("swtpm-dir", 65536)][0]:.2f}x swtpm-dir with '
             f'fsync (goal <= 0.33x).  Flushes counted with strace over 20 '
             f'64 KiB updates.')
        emit()
        emit('floor: pwrite + fdatasync of the same bytes at offset 0 of a '
             'plain file.  floor-3-writes: the floor with nvstore\'s write '
             'pattern (the data, a 60-byte directory and a 40-byte slot in '
             'three places, alternating between two sets of places, one '
             'fdatasync), without QEMU: what the on-disk layout costs; the '
             'rest of nvstore\'s time is the block layer (thread-pool '
             'round trips: the three writes at once, then the flush).  '
             'nvstore: after 4 warm-up updates, which grow the image (and '
             'allocate qcow2 clusters): the steady state, where each update '
             'reuses the space the one before the last freed.  swtpm-dir: '
             'swtpm 0.7.1 dir backend write path re-created (write a '
             'temporary file, fsync, close, rename, fsync the directory; '
             'swtpm 0.7.1 itself does not fsync).  '
             'swtpm\'s linear file backend is not measured (it writes in '
             'place with msync, not atomically).  io_uring: the image '
             'files opened with aio=io_uring, which submits the writes and '
             'the flush from the event loop instead of handing each to a '
             'worker thread; against the floor measured in that run.  '
             'Flushes are not counted with io_uring (its fsync is no '
             'system call for strace to see).')
        emit()
        emit('Write amplification: bytes written to the file per update '
             '(strace: pwrite64/pwritev; 20 updates), over the blob\'s '
             'size.')
        emit()
        emit('| size | nvstore-raw | nvstore-qcow2 |')
        emit('|---|---|---|')
        for size in SIZES:
            emit(f'| {size // 1024} KiB | '
                 f'{amp[("nvstore-raw", size)]:.3f} | '
                 f'{amp[("nvstore-qcow2", size)]:.3f} |')
        emit()

        with open(os.path.join(tmp, 'latency.dat'), 'w',
                  encoding='utf-8') as f:
            for size in SIZES:
                f.write(f'{size // 1024} ' + ' '.join(
                    f'{lat[(k, size)][0]:.0f}' for k in KINDS + URING_KINDS)
                    + '\n')
        gp = os.path.join(tmp, 'plot.gp')
        png = os.path.join(top, 'bench', 'latency.png')
        with open(gp, 'w', encoding='utf-8') as f:
            f.write(f'''set terminal png size 800,500
set output '{png}'
set title 'Durable update latency vs blob size (median, {commit})'
set xlabel 'blob size (KiB)'
set ylabel 'microseconds'
set logscale x 2
set logscale y
set key left top
plot '{tmp}/latency.dat' u 1:2 w lp t 'floor: pwrite+fdatasync', \\
     '' u 1:3 w lp t "floor with nvstore's 3 writes", \\
     '' u 1:4 w lp t 'nvstore (raw file)', \\
     '' u 1:5 w lp t 'nvstore (in qcow2)', \\
     '' u 1:6 w lp t 'swtpm-dir with fsync', \\
     '' u 1:7 w lp t 'nvstore (raw file, aio=io_uring)', \\
     '' u 1:8 w lp t 'nvstore (in qcow2, aio=io_uring)'
''')
        subprocess.run(['gnuplot', gp], check=True)

        emit('## Scaling with the number of blobs (64-byte blobs, raw file)')
        emit()
        emit('| blobs | open + list ms | one update ms | of which the '
             'directory in memory ms | floor of its writes ms | directory '
             'bytes | directory bytes per blob | image bytes | heap bytes '
             'of the open node | heap bytes per blob |')
        emit('|---|---|---|---|---|---|---|---|---|---|')
        scale = {}
        for r in bench('scale', tmp):
            n = int(r[1])
            scale[n] = r
            emit(f'| {n} | {float(r[3]) / 1000:.1f} | '
                 f'{float(r[5]) / 1000:.1f} | {float(r[15]) / 1000:.2f} | '
                 f'{float(r[17]) / 1000:.2f} | {r[7]} | '
                 f'{int(r[7]) / n:.1f} | {r[9]} | {r[11]} | '
                 f'{int(r[11]) / n:.0f} |')
        emit()
        emit('The directory in memory: the copy of the committed directory, '
             'its encoding and the free of the old one, timed apart (CPU). '
             'Floor of its writes: pwrite of the directory\'s size (and the '
             'blob\'s), a small write and the slot, one fdatasync, without '
             'QEMU: what the format costs an update at that size, as long '
             'as each commit rewrites the whole directory.  At 10,000 blobs '
             f'that floor is {float(scale[10000][17]) / float(scale[10][5]):.1f}x '
             'the whole update at 10 blobs.')
        emit()
        emit('Heap: malloc\'s count of the bytes in use once the node is '
             'open; the list of names that open + list returns, the '
             'caller\'s, adds '
             f'{(int(scale[10000][13]) - int(scale[10000][11])) / 10000:.0f} '
             'bytes per blob at 10,000 blobs.')
        emit()
        emit('An update re-encodes and rewrites the whole directory, so its '
             'cost grows with the number of blobs.')
        emit()
        goals.add('one update with 10,000 blobs vs with 10',
                  float(scale[10000][5]) / float(scale[10][5]), 3.0,
                  fmt='.1f')
        goals.add('heap of an open node per blob, 10,000 blobs',
                  int(scale[10000][11]) / 10000, 150, unit=' bytes',
                  fmt='.0f')
        goals.add('open + list, 10,000 blobs',
                  float(scale[10000][3]) / 1000, 10, unit=' ms', fmt='.1f')

        # Encrypted images against plain ones, interleaved in one run
        # Four times the updates: the ratio of two noisy medians
        bench_rows = bench('encrypt', tmp, str(4 * count))
        enc = {r[0]: (float(r[-2]), float(r[-1])) for r in bench_rows}
        upd = (enc['encrypt-update-aes256gcm'][0] /
               enc['encrypt-update-plain'][0])
        kdf = enc['encrypt-pbkdf2'][0]
        kdf_iters = next(int(r[1]) for r in bench_rows
                         if r[0] == 'encrypt-pbkdf2-iterations')
        opn = ((enc['encrypt-open-aes256gcm'][0] - kdf) /
               enc['encrypt-open-plain'][0])
        emit('## Encrypted images (AES-256-GCM), against plain ones')
        emit()
        emit('| what | plain us | encrypted us | ratio |')
        emit('|---|---|---|---|')
        emit(f"| 64 KiB durable update, raw file | "
             f"{enc['encrypt-update-plain'][0]:.0f} | "
             f"{enc['encrypt-update-aes256gcm'][0]:.0f} | {upd:.2f}x |")
        emit(f"| open + list, 100 TPM blobs | "
             f"{enc['encrypt-open-plain'][0]:.0f} | "
             f"{enc['encrypt-open-aes256gcm'][0]:.0f} (of which PBKDF2, "
             f"{kdf_iters} iterations, {kdf:.0f}) | {opn:.2f}x without "
             f"PBKDF2 |")
        emit()
        emit(f"The CPU that encryption adds to an update: AES-256-GCM of "
             f"64 KiB takes {enc['encrypt-aes256gcm-cpu'][0]:.0f} us "
             f"here (median, no I/O).")
        emit()
        emit('The PBKDF2 cost of opening a key slot is set at create '
             '(encrypt.iter-time, 2000 ms by default); the images here are '
             'calibrated to 1 ms, and that cost is measured apart.')
        emit()
        goals.add('encrypted vs plain 64 KiB durable update', upd, 1.15)
        goals.add('encrypted vs plain open + list of 100 blobs, PBKDF2 '
                  'apart', opn, 1.2)

        emit('## Zeroing freed space (wipe-freed)')
        emit()
        emit('Durable updates of one blob in a plain raw image with '
             'wipe-freed on (the default: each commit also zeroes what the '
             'commit before the previous one referenced) and with it off, '
             'alternating one by one; microseconds, median and 99th '
             'percentile.')
        emit()
        wipe = {(r[0], int(r[1])): (float(r[2]), float(r[3]))
                for r in bench('wipe', tmp, str(4 * count))}
        emit('| blob | off us | on us | ratio (medians) |')
        emit('|---|---|---|---|')
        for size in (4096, 65536):
            on = wipe[('wipe-update-on', size)]
            off = wipe[('wipe-update-off', size)]
            emit(f'| {size // 1024} KiB | {off[0]:.0f} (p99 {off[1]:.0f}) | '
                 f'{on[0]:.0f} (p99 {on[1]:.0f}) | {on[0] / off[0]:.2f}x |')
        emit()

        emit('## A pflash-like workload: 10,000 writes of 512 bytes at '
             'random offsets of a 540 KiB blob, then one flush')
        emit()
        emit('nvstore-blob (commit-delay 100 ms) over an nvstore image, '
             'against a raw file through QEMU\'s raw driver (what pflash '
             'uses for a vars file); medians of 5 runs.')
        emit()
        runs = bench('pflash', tmp, '10000', '5')
        nvs = statistics.median(float(r[4]) for r in runs)
        raw = statistics.median(float(r[6]) for r in runs)
        emit('| nvstore-blob ms | raw ms | ratio | commits |')
        emit('|---|---|---|---|')
        emit(f'| {nvs:.1f} | {raw:.1f} | {nvs / raw:.2f}x | '
             f'{runs[0][8]} |')
        emit()

        emit('## TPM round trip through tpm-tis (qtest MMIO), '
             f'{count} commands each')
        emit()
        nvw, rnd, _, size, (b_rnd, b_nvw) = tpm.run_vm(tmp, count)
        s_nvw, s_rnd, _, _, (sb_rnd, sb_nvw) = tpm.run_vm(tmp, count,
                                                          swtpm=True)
        _, _, nfl, _, _ = tpm.run_vm(tmp, 20, os.path.join(tmp, 's.log'))
        u_nvw, _, _, _, (_, ub_nvw) = tpm.run_vm(tmp, count, aio='io_uring')

        def st(v: 'list[float]') -> str:
            v = sorted(v)
            return (f'{statistics.median(v) * 1e6:.0f} | '
                    f'{v[min(len(v) - 1, len(v) * 99 // 100)] * 1e6:.0f}')

        emit('| command | backend | end to end median us | p99 us | '
             'at the backend median us | p99 us |')
        emit('|---|---|---|---|---|---|')
        emit(f'| NV_Write | libtpms + nvstore (durable) | {st(nvw)} | '
             f'{st(b_nvw)} |')
        emit(f'| NV_Write | libtpms + nvstore, aio=io_uring (durable) | '
             f'{st(u_nvw)} | {st(ub_nvw)} |')
        emit(f'| NV_Write | swtpm 0.7.1 (not durable) | {st(s_nvw)} | '
             f'{st(sb_nvw)} |')
        emit(f'| GetRandom | libtpms | {st(rnd)} | {st(b_rnd)} |')
        emit(f'| GetRandom | swtpm 0.7.1 | {st(s_rnd)} | {st(sb_rnd)} |')
        emit()
        med = statistics.median
        goals.add("durable TPM2_NV_Write at the backend vs swtpm's "
                  'non-durable one', med(b_nvw) / med(sb_nvw), 0.7)
        goals.add("durable TPM2_NV_Write at the backend, aio=io_uring, vs "
                  "swtpm's non-durable one", med(ub_nvw) / med(sb_nvw), 0.7)
        goals.add('TPM2_GetRandom at the backend vs swtpm',
                  med(b_rnd) / med(sb_rnd), 0.3)
        emit(f'At the backend: durable NV_Write via libtpms + nvstore / '
             f'swtpm\'s non-durable NV_Write: '
             f'{med(b_nvw) / med(sb_nvw):.2f}x (goal <= 0.7x); GetRandom '
             f'libtpms / swtpm: {med(b_rnd) / med(sb_rnd):.2f}x (goal <= '
             f'0.3x).  End to end: {med(nvw) / med(s_nvw):.2f}x and '
             f'{med(rnd) / med(s_rnd):.2f}x.  Flushes per NV_Write '
             f'(strace, 20 commands): {nfl / 20:.2f}; permall {size} bytes.')
        emit()
        prof, interval = tpm.run_vm(tmp, count, profile=True)
        emit('Where a durable NV_Write\'s time goes at the backend '
             f'(medians of {count}, trace event timestamps):')
        emit()
        emit('| stage | us |')
        emit('|---|---|')
        for stage, t in prof:
            emit(f'| {stage} | {t * 1e6:.0f} |')
        emit()
        flo = statistics.median(tpm.floor(tmp, size, count))
        flo_spaced = statistics.median(tpm.floor(tmp, size, count,
                                                 gap=interval))
        emit(f'The floor of the flush: pwrite + fdatasync of the permall\'s '
             f'{size} bytes on a plain file in the same directory (measured '
             f'after the commands), median {flo * 1e6:.0f} us back to back, '
             f'and {flo_spaced * 1e6:.0f} us one every '
             f'{interval * 1e3:.1f} ms, as the commands came here.  Spaced '
             'out, each write changes the file\'s modification time, and '
             'on a file system that makes fdatasync write the inode as well '
             '(this one does: one more write request each time), that is '
             'the floor of a durable TPM command.  The goal, 0.7x swtpm\'s '
             f'non-durable NV_Write at the backend, is '
             f'{0.7 * med(sb_nvw) * 1e6:.0f} us here.')
        emit()
        emit('End to end: from the TPM_GO register write to the status '
             'read that shows the response, through tpm-tis driven by '
             'qtest (each poll is a qtest socket round trip).  At the '
             'backend: from the TPM_GO write (trace event '
             'tpm_tis_mmio_write) to the data-available interrupt of the '
             'completion (tpm_tis_raise_irq), timestamps of QEMU\'s log '
             'trace backend: the worker thread hand-off, the TPM, for '
             'libtpms the nvstore commit, for swtpm the socket round trip.')
        emit()

    def script(name: str, arg: str, verbatim: bool = False) -> None:
        """The output of bench/@name @arg, line by line; @verbatim: as
        a code block (plain text rather than Markdown)"""
        text = subprocess.run([sys.executable, os.path.join(top, 'bench',
                                                            name), arg],
                              check=True, stdout=subprocess.PIPE,
                              universal_newlines=True).stdout
        lines = text.rstrip('\n').split('\n')
        for line in ['```', *lines, '```'] if verbatim else lines:
            emit(line)
        emit()

    # OVMF + Linux with the UEFI variables on a raw file and in nvstore
    script('uefi.py', '3')
    emit('Goal: <= 1.1x the raw boot.  Before nvstore-blob (each pflash '
         'write request a durable commit of the whole store): 12.8x, '
         '15,231 flushes per boot.')
    emit()
    # A running VM's NVRAM backed up, exported and moved
    emit('## Live NVRAM: backup, export and move (bench/live.py)')
    emit()
    script('live.py', '100', verbatim=True)
    emit('Goals: a TPM command <= 1.2x during a backup or an export; a '
         'device write paused <= 10 ms by a move; a backup of 1 MiB <= 2x '
         'a copy and flush of it.')
    emit()
    goals.emit(emit)

    with open(os.path.join(top, 'bench', 'results.md'), 'w',
              encoding='utf-8') as f:
        f.write('\n'.join(out) + '\n')
    print('\nwritten: bench/results.md, bench/latency.png')
    return 0


if __name__ == '__main__':
    sys.exit(main())
