#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Move the state of a TPM between an nvstore image (-tpmdev libtpms) and
# a swtpm state directory (-tpmdev emulator), in either direction.
#
#   nvstore-tpm-state.py [--object OBJDEF]... export IMAGE-OPTS DIR
#   nvstore-tpm-state.py [--object OBJDEF]... import DIR IMAGE-OPTS
#
# A wrapper, kept for the scripts that use it, around
#
#   qemu-nvstore tpm export --format swtpm-dir --image-opts IMAGE-OPTS DIR
#   qemu-nvstore tpm import --format swtpm-dir --image-opts IMAGE-OPTS DIR
#
# which also read and write swtpm's linear files, and inspect, reset and
# provision the TPM (docs/tools/qemu-nvstore.rst).
#
# IMAGE-OPTS opens the nvstore node, as qemu-img --image-opts takes it,
# e.g. driver=nvstore,file.driver=qcow2,file.file.filename=vm-state.qcow2
# An encrypted image needs its secret: --object secret,id=sec0,file=KEYFILE
# and encrypt.key-secret=sec0 in IMAGE-OPTS.
#
# qemu-nvstore is $QEMU_NVSTORE, or the one beside $QEMU_IMG, or the one
# on PATH.

import os
import subprocess
import sys


def qemu_nvstore() -> str:
    if 'QEMU_NVSTORE' in os.environ:
        return os.environ['QEMU_NVSTORE']
    if 'QEMU_IMG' in os.environ:
        beside = os.path.join(os.path.dirname(os.environ['QEMU_IMG']),
                              'qemu-nvstore')
        if os.path.exists(beside):
            return beside
    return 'qemu-nvstore'


def main() -> int:
    args = sys.argv[1:]
    objects = []
    while len(args) >= 2 and args[0] == '--object':
        objects.extend(args[:2])
        args = args[2:]
    if len(args) != 3 or args[0] not in ('export', 'import'):
        print('usage: nvstore-tpm-state.py [--object OBJDEF]... '
              'export IMAGE-OPTS DIR | import DIR IMAGE-OPTS',
              file=sys.stderr)
        return 2
    if args[0] == 'export':
        image_opts, directory = args[1], args[2]
    else:
        directory, image_opts = args[1], args[2]
    return subprocess.run([qemu_nvstore(), 'tpm', args[0], '--format',
                           'swtpm-dir', *objects, '--image-opts', image_opts,
                           directory], check=False).returncode


if __name__ == '__main__':
    sys.exit(main())
