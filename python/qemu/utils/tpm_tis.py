# SPDX-License-Identifier: GPL-2.0-or-later
"""
TPM 2.0 commands through tpm-tis

TPM 2.0 commands sent to a tpm-tis device with qtest MMIO accesses, as
tests/qtest/tpm-tis-util.c does in C, for Python tests and benchmarks.
Works with any QEMUQtestMachine, iotests.VM included.
"""

import time
from typing import Tuple

from qemu.machine import QEMUQtestMachine


TIS_BASE = 0xfed40000
TIS_ACCESS, TIS_INT_ENABLE, TIS_STS, TIS_DATA_FIFO = 0x00, 0x08, 0x18, 0x24
ACCESS_REQUEST_USE, ACCESS_ACTIVE_LOCALITY = 0x02, 0x20
STS_COMMAND_READY, STS_TPM_GO, STS_DATA_AVAILABLE = 0x40, 0x20, 0x10

# TPM 2.0 commands, the same bytes as tests/qtest/tpm-libtpms-test.c
STARTUP_CLEAR = bytes.fromhex('80010000000c000001440000')
GETRANDOM_8 = bytes.fromhex('80010000000c0000017b0008')
# Index 0x01000000, 8 bytes, OWNERWRITE|AUTHWRITE|OWNERREAD|AUTHREAD|NO_DA
NV_DEFINE = bytes.fromhex('80020000002d0000012a4000000100000009400000090000'
                          '0000000000000e01000000000b0206000600000008')
NV_WRITE_HDR = bytes.fromhex('80020000002b0000013740000001010000000000000940'
                             '00000900000000000008')
NV_READ = bytes.fromhex('8002000000230000014e400000010100000000000009400000'
                        '09000000000000080000')
NV_SUCCESS = bytes.fromhex('80020000001300000000000000000000010000')


def nv_write(data: bytes) -> bytes:
    """TPM2_NV_Write of 8 bytes at offset 0 of the index of NV_DEFINE"""
    assert len(data) == 8
    return NV_WRITE_HDR + data + b'\0\0'


def qtest(machine: QEMUQtestMachine, cmd: str) -> int:
    """One qtest command; the value it read, if it read one"""
    out = machine.qtest(cmd)
    assert out.startswith('OK'), f'{cmd}: {out}'
    parts = out.split()
    return int(parts[1], 16) if len(parts) > 1 else 0


def timed_transfer(machine: QEMUQtestMachine,
                   req: bytes) -> Tuple[bytes, float]:
    """
    One TPM command through TIS locality 0, as tpm_tis_transfer(): the
    response, and the seconds from TPM_GO to the status that shows it
    """
    assert len(req) == int.from_bytes(req[2:6], 'big')
    qtest(machine,
          f'writeb {TIS_BASE + TIS_ACCESS:#x} {ACCESS_REQUEST_USE:#x}')
    qtest(machine, f'writel {TIS_BASE + TIS_STS:#x} {STS_COMMAND_READY:#x}')
    sts = qtest(machine, f'readl {TIS_BASE + TIS_STS:#x}')
    assert (sts >> 8) & 0xffff >= len(req)
    for byte in req:
        qtest(machine, f'writeb {TIS_BASE + TIS_DATA_FIFO:#x} {byte:#x}')
    start = time.perf_counter()
    qtest(machine, f'writeb {TIS_BASE + TIS_STS:#x} {STS_TPM_GO:#x}')
    # The backend completes the request from the main loop, which runs
    # between qtest commands
    for _ in range(100000):
        sts = qtest(machine, f'readl {TIS_BASE + TIS_STS:#x}')
        if sts & STS_DATA_AVAILABLE:
            break
    else:
        raise AssertionError('no response from the TPM')
    elapsed = time.perf_counter() - start
    rsp = bytes(qtest(machine, f'readb {TIS_BASE + TIS_DATA_FIFO:#x}')
                for _ in range((sts >> 8) & 0xffff))
    qtest(machine, f'writeb {TIS_BASE + TIS_ACCESS:#x} '
          f'{ACCESS_ACTIVE_LOCALITY:#x}')
    return rsp, elapsed


def transfer(machine: QEMUQtestMachine, req: bytes) -> bytes:
    """One TPM command through TIS locality 0: the response"""
    return timed_transfer(machine, req)[0]


def rc(rsp: bytes) -> int:  # pylint: disable=invalid-name
    """The response code of a response"""
    return int.from_bytes(rsp[6:10], 'big')
