/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Shared by the nvstore directory unit tests.
 */

#ifndef TESTS_UNIT_NVSTORE_DIR_TEST_H
#define TESTS_UNIT_NVSTORE_DIR_TEST_H

#include "block/nvstore-dir.h"

/*
 * Build, through the API, the directory of the golden vector V_TWO of
 * test-nvstore-dir.c: blob "permall" (type tpm, extent {4096, 300, 7,
 * 0xdeadbeef}, realsize 300, optional flag "z" and "vendor" = INTEGER 5)
 * and blob "a" (type raw, inline data "hi").  Added in the opposite of
 * their encoding order, which the encoder must restore.
 */
static inline NvstoreDir *nvstore_test_golden_dir(void)
{
    NvstoreDir *dir = nvstore_dir_new();
    NvstoreExtent ext = { 4096, 300, 7, 0xdeadbeef };
    static const uint8_t vendor[] = { 0x02, 0x01, 0x05 };
    NvstoreEntry *e;

    e = nvstore_dir_add(dir, "permall", NVSTORE_BLOB_TYPE_TPM, &error_abort);
    nvstore_entry_set_extent(e, &ext, &error_abort);
    nvstore_entry_set_realsize(e, 300, &error_abort);
    nvstore_entry_set_attr(e, "vendor", vendor, sizeof(vendor),
                           &error_abort);
    nvstore_entry_set_attr(e, "z", NULL, 0, &error_abort);
    e = nvstore_dir_add(dir, "a", NVSTORE_BLOB_TYPE_RAW, &error_abort);
    nvstore_entry_set_inline(e, (const uint8_t *)"hi", 2, &error_abort);
    return dir;
}

#endif
