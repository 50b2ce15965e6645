# SPDX-License-Identifier: GPL-2.0-or-later
"""
Flush counting

The number of flushes that reach the host (fdatasync and fsync calls) a
process makes, counted with strace over all of its threads: QEMU's block
layer flushes from its thread pool, and a process that is not QEMU (a
baseline of a benchmark) is counted the same way.
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
)


__all__ = (
    'count_flushes',
    'flush_log_wrapper',
    'logged_flushes',
    'strace_available',
)

# A call that another thread interrupts is logged as "fdatasync(3
# <unfinished ...>" and "<... fdatasync resumed>) = 0": count the first
_FLUSH_CALL = re.compile(r'\b(fdatasync|fsync)\(')


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
