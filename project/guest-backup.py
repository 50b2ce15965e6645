#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The management side of project/guest-uefi.sh's boot 6: once the
# guest's console says it wrote its fourth value, back up the NVRAM of
# the running VM over QMP, as docs/interop/nvstore-live.rst says (the
# size of the nvstore node's storage node q0, a target of that size,
# blockdev-backup, the job's completion, blockdev-del), while the guest
# goes on writing.
#
#   guest-backup.py PYTHON-DIR QMP-SOCKET CONSOLE-LOG TARGET

import os
import sys
import time

sys.path.insert(0, sys.argv[1])
# pylint: disable=wrong-import-position
from qemu.qmp.legacy import QEMUMonitorProtocol  # noqa: E402


def main() -> int:
    sock, log, target = sys.argv[2:5]
    deadline = time.monotonic() + 900
    while b'GUEST: wrote 4' not in (open(log, 'rb').read()
                                    if os.path.exists(log) else b''):
        if time.monotonic() > deadline:
            print('guest-backup: no fourth value after 900 s')
            return 1
        time.sleep(0.1)
    qmp = QEMUMonitorProtocol(sock)
    qmp.connect()
    size = [n for n in qmp.cmd('query-named-block-nodes', flat=True)
            if n['node-name'] == 'q0'][0]['image']['virtual-size']
    with open(target, 'wb') as f:
        f.truncate(size)
    qmp.cmd('blockdev-add', **{'driver': 'file', 'node-name': 'bk',
                               'filename': target})
    qmp.cmd('blockdev-backup', **{'job-id': 'bk', 'device': 'q0',
                                  'target': 'bk', 'sync': 'full'})
    while qmp.cmd('query-block-jobs'):
        time.sleep(0.01)
    done = [e for e in qmp.get_events()
            if e['event'] == 'BLOCK_JOB_COMPLETED']
    if not done or 'error' in done[0]['data']:
        print(f'guest-backup: the backup failed: {done}')
        return 1
    qmp.cmd('blockdev-del', **{'node-name': 'bk'})
    qmp.close()
    with open(log, 'rb') as f:
        written = f.read().count(b'GUEST: wrote')
    print(f'== backup taken, {size} bytes, when the guest had said '
          f'{written} values written')
    return 0


if __name__ == '__main__':
    sys.exit(main())
