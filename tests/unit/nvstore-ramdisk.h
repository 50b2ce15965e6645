/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * A block node in memory that can lose power: the child under the nvstore
 * node of the power-cut test (test-nvstore) and of the fuzz target of the
 * driver (nvstore-fuzz).
 */

#ifndef TESTS_UNIT_NVSTORE_RAMDISK_H
#define TESTS_UNIT_NVSTORE_RAMDISK_H

#include "block/block.h"

typedef struct NvstoreRamdisk NvstoreRamdisk;

/**
 * nvstore_ramdisk_new:
 * @data: the initial contents, durable
 * @len: their length
 * @max_len: the size beyond which writes and truncates fail with ENOSPC
 */
NvstoreRamdisk *nvstore_ramdisk_new(const void *data, size_t len,
                                    size_t max_len);
void nvstore_ramdisk_free(NvstoreRamdisk *d);

/**
 * nvstore_ramdisk_open:
 * @d: the disk; it must outlive the node
 * @node_name: the node's name, to refer to it as a child
 * @flags: BDRV_O_* flags
 *
 * Returns: a new reference to a node whose contents are @d's.
 */
BlockDriverState *nvstore_ramdisk_open(NvstoreRamdisk *d,
                                       const char *node_name, int flags,
                                       Error **errp);

/**
 * nvstore_ramdisk_cut_power:
 * @d: the disk
 * @at: 1-based number of the write, truncate or flush request at which
 *      the power fails (counting from the disk's creation); 0: never
 * @rand: the choice of what survives
 *
 * From request @at on, every request fails with EIO, and
 * nvstore_ramdisk_crash_image() is the disk as a power cut before request
 * @at completed leaves it: the contents at the last completed flush, plus
 * an arbitrary subset, in an arbitrary order, of the writes and truncates
 * issued since (request @at included), each dropped, done, or torn: only
 * some of its 512-byte sectors written, and possibly one of them only in
 * part, the rest of that sector sometimes garbage.
 */
void nvstore_ramdisk_cut_power(NvstoreRamdisk *d, uint64_t at, GRand *rand);

/**
 * nvstore_ramdisk_power_cut_image:
 * @d: the disk
 * @rand: the choice of what survives
 *
 * Returns: the contents a power cut would leave if it happened now, as
 * nvstore_ramdisk_cut_power() describes, without cutting the power; or
 * a reference to nvstore_ramdisk_crash_image() if the power is cut.
 */
GByteArray *nvstore_ramdisk_power_cut_image(NvstoreRamdisk *d, GRand *rand);

/**
 * nvstore_ramdisk_fail_request:
 * @d: the disk
 * @at: 1-based number of the write, truncate or flush request that fails
 *      (counting from the disk's creation); 0: none
 * @errno_value: the positive errno value it fails with
 * @rand: if not NULL, a failed write may still reach the disk: dropped,
 *        done or torn as by a power cut, @rand choosing; if NULL, it
 *        changes nothing
 *
 * That one request fails; the others work.  A failed truncate changes
 * nothing.  A failed flush makes nothing durable: until the next flush
 * that works, a power cut keeps any subset of the writes since the last
 * one that did, as always (a later flush that works makes them all
 * durable, as a disk that retries would; on Linux, file-posix fails every
 * flush after one failed, since the kernel may have dropped the data).
 */
void nvstore_ramdisk_fail_request(NvstoreRamdisk *d, uint64_t at,
                                  int errno_value, GRand *rand);

/**
 * nvstore_ramdisk_set_atomic_sectors:
 * @d: the disk
 * @atomic: whether sectors are atomic
 *
 * With @atomic, a torn write writes each of its 512-byte sectors whole
 * or not at all, as disks that guarantee sector atomicity do, and as
 * qcow2's metadata updates assume; by default (for nvstore, which
 * assumes nothing), one sector may be written in part and the rest of it
 * turn to garbage.
 */
void nvstore_ramdisk_set_atomic_sectors(NvstoreRamdisk *d, bool atomic);

/* Write, truncate and flush requests so far */
uint64_t nvstore_ramdisk_requests(NvstoreRamdisk *d);

/* The contents after the power cut, or NULL if it did not happen yet */
GByteArray *nvstore_ramdisk_crash_image(NvstoreRamdisk *d);

/* The current contents (what reads return) */
GByteArray *nvstore_ramdisk_contents(NvstoreRamdisk *d);

#endif /* TESTS_UNIT_NVSTORE_RAMDISK_H */
