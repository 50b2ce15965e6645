# SPDX-License-Identifier: GPL-2.0-or-later
"""
Flush counting

The number of flushes that reach the host (fdatasync and fsync calls) a
process makes, counted with strace over all of its threads: QEMU's block
layer flushes from its thread pool, and a process that is not QEMU (a
baseline of a benchmark) is counted the same way.  Also the bytes its
positioned writes (pwrite64, pwritev, pwritev2: what file-posix issues
with aio=threads) write, for write amplification.
"""

import os
import re
import shutil
import subprocess
from typing import (
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
)


__all__ = (
    'count_flushes',
    'count_flushes_and_bytes',
    'flush_log_wrapper',
    'logged_flushes',
    'strace_available',
)

# A call that another thread interrupts is logged as "fdatasync(3
# <unfinished ...>" and "<... fdatasync resumed>) = 0": count the first
_FLUSH_CALL = re.compile(r'\b(fdatasync|fsync)\(')


# "pwritev(3, ..., 4096) = 4096", or its "<... pwritev resumed>) = 4096"
_WRITE_DONE = re.compile(r'(?:\bpwrite(?:64|v2?)\(|'
                         r'<\.\.\. pwrite(?:64|v2?) resumed>).* = (\d+)$')


def strace_available() -> bool:
    """Whether strace is installed"""
    return shutil.which('strace') is not None


def flush_log_wrapper(log: str) -> List[str]:
    """
    A command prefix that logs every flush of the command, all of its
    threads and children included, to @log (e.g. QEMUMachine's wrapper)
    """
    return ['strace', '-f', '-qq', '-e', 'trace=fdatasync,fsync',
            '-o', log]


def logged_flushes(log: str) -> int:
    """The number of flushes in @log, a log of flush_log_wrapper()"""
    with open(log, encoding='utf-8') as fh:
        return sum(1 for line in fh if _FLUSH_CALL.search(line))


def count_flushes(args: Sequence[str], log: str,
                  env: Optional[Mapping[str, str]] = None) -> int:
    """
    Run @args to completion with its standard output discarded; return
    the number of flushes it made.  @log is a scratch file, removed.
    """
    run_env = dict(os.environ if env is None else env)
    # LeakSanitizer cannot run under ptrace (sanitizer builds)
    run_env['ASAN_OPTIONS'] = (run_env.get('ASAN_OPTIONS', '') +
                               ':detect_leaks=0')
    try:
        subprocess.run([*flush_log_wrapper(log), *args], check=True,
                       stdout=subprocess.DEVNULL, env=run_env)
        return logged_flushes(log)
    finally:
        if os.path.exists(log):
            os.remove(log)


def count_flushes_and_bytes(args: Sequence[str], log: str,
                            env: Optional[Mapping[str, str]] = None
                            ) -> Tuple[int, int]:
    """
    Run @args to completion with its standard output discarded; return
    the number of flushes it made and the bytes its positioned writes
    wrote.  @log is a scratch file, removed.
    """
    run_env = dict(os.environ if env is None else env)
    run_env['ASAN_OPTIONS'] = (run_env.get('ASAN_OPTIONS', '') +
                               ':detect_leaks=0')
    try:
        subprocess.run(['strace', '-f', '-qq', '-s', '0', '-e',
                        'trace=fdatasync,fsync,pwrite64,pwritev,pwritev2',
                        '-o', log, *args], check=True,
                       stdout=subprocess.DEVNULL, env=run_env)
        flushes = written = 0
        with open(log, encoding='utf-8') as fh:
            for line in fh:
                line = line.rstrip('\n')
                if _FLUSH_CALL.search(line):
                    flushes += 1
                m = _WRITE_DONE.search(line)
                if m:
                    written += int(m.group(1))
        return flushes, written
    finally:
        if os.path.exists(log):
            os.remove(log)
