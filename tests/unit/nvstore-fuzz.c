/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * libFuzzer target of the nvstore block driver, with ASan and UBSan.
 *
 * The input is a control byte and an image.  The image is opened from
 * memory (tests/unit/nvstore-ramdisk.c) through the driver, read-only:
 * every blob is listed, looked up, its attributes read and its contents
 * read, and the image is checked.  Then it is opened read-write: one
 * blob is replaced and one created in one commit, everything is read
 * again, and the image is checked and repaired, then opened again: what
 * was committed must read back, both times.  Nothing may crash, leak,
 * hang or run into undefined behaviour, whatever the image.
 *
 * Random bytes rarely get past the checksums, so when bit 0 of the
 * control byte is set, the harness first fixes the checksums of the
 * header, of each slot and of the directory each slot points at: then
 * the fuzzer's mutations reach the directory decoder and what the driver
 * does with a directory it accepts.  Extent checksums stay as they are.
 *
 * project/fuzz.sh builds and runs it (built only in the clang build).
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/crc32c.h"
#include "qemu/main-loop.h"
#include "block/block.h"
#include "block/nvstore.h"
#include "block/nvstore-format.h"
#include "qobject/qdict.h"
#include "system/block-backend.h"
#include "nvstore-ramdisk.h"

/* Room for the image to grow when a commit writes past its end */
#define FUZZ_GROWTH (4 * 1024 * 1024)

static uint32_t fuzz_crc(const uint8_t *buf, size_t len)
{
    return crc32c(0xffffffff, buf, len);
}

/* Make the checksums of the header, the slots and their directories hold */
static void fix_checksums(uint8_t *img, size_t len)
{
    int i;

    if (len >= sizeof(NvstoreHeader)) {
        stl_be_p(img + offsetof(NvstoreHeader, header_crc32c),
                 fuzz_crc(img, offsetof(NvstoreHeader, header_crc32c)));
    }
    for (i = 0; i < NVSTORE_NB_SLOTS; i++) {
        uint8_t *s = img + NVSTORE_SLOT_OFFSET(i);
        uint64_t off, dlen;

        if (len < NVSTORE_SLOT_OFFSET(i) + sizeof(NvstoreSlot)) {
            break;
        }
        off = ldq_be_p(s + offsetof(NvstoreSlot, dir_offset));
        dlen = ldq_be_p(s + offsetof(NvstoreSlot, dir_length));
        if (off <= len && dlen <= len - off) {
            stl_be_p(s + offsetof(NvstoreSlot, dir_crc32c),
                     fuzz_crc(img + off, dlen));
        }
        stl_be_p(s + offsetof(NvstoreSlot, slot_crc32c),
                 fuzz_crc(s, offsetof(NvstoreSlot, slot_crc32c)));
    }
}

static BlockBackend *fuzz_open(NvstoreRamdisk *disk, int flags)
{
    QDict *options = qdict_new();
    BlockDriverState *bs;
    BlockBackend *blk;

    bs = nvstore_ramdisk_open(disk, "fuzz-disk", flags, &error_abort);
    qdict_put_str(options, "driver", "nvstore");
    qdict_put_str(options, "file", "fuzz-disk");
    blk = blk_new_open(NULL, NULL, options, flags, NULL);
    bdrv_unref(bs);
    return blk;
}

/* List, look up and read every blob; returns the first usable one's name */
static char *read_all(BlockBackend *blk, char **type)
{
    g_auto(GStrv) names = nvstore_blob_list(blk, NULL);
    char *usable = NULL;
    int i, j;

    for (i = 0; names && names[i]; i++) {
        g_autofree uint8_t *data = NULL;
        NvstoreBlobInfo info;
        size_t len;

        if (nvstore_blob_get_info(blk, names[i], &info, NULL) < 0) {
            continue;
        }
        for (j = 0; info.attrs && info.attrs[j]; j++) {
            g_autofree uint8_t *value = NULL;

            nvstore_blob_get_attr(blk, names[i], info.attrs[j], &value, &len,
                                  NULL);
        }
        if (nvstore_blob_read(blk, names[i], &data, &len, NULL) == 0 &&
            !usable) {
            g_assert_cmpuint(len, ==, info.size);
            usable = g_strdup(names[i]);
            *type = g_strdup(info.type);
        }
        nvstore_blob_info_clear(&info);
    }
    return usable;
}

/* Blob @u->name holds what @u committed */
static void assert_reads_back(BlockBackend *blk, const NvstoreBlobUpdate *u)
{
    g_autofree uint8_t *back = NULL;
    size_t len;

    g_assert_cmpint(nvstore_blob_read(blk, u->name, &back, &len, NULL), ==,
                    0);
    g_assert_cmpmem(back, len, u->data, u->len);
}

static void check(BlockBackend *blk, BdrvCheckMode fix)
{
    BdrvCheckResult res = { 0 };

    bdrv_graph_rdlock_main_loop();
    bdrv_check(blk_bs(blk), &res, fix);
    bdrv_graph_rdunlock_main_loop();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    bdrv_init();
    qemu_init_main_loop(&error_abort);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t new_data[] = "new contents of a blob";
    g_autofree uint8_t *img = NULL;
    g_autofree char *name = NULL;
    g_autofree char *type = NULL;
    NvstoreRamdisk *disk;
    BlockBackend *blk;

    if (size < 1) {
        return 0;
    }
    img = g_memdup2(data + 1, size - 1);
    if (data[0] & 1) {
        fix_checksums(img, size - 1);
    }

    disk = nvstore_ramdisk_new(img, size - 1, size - 1 + FUZZ_GROWTH);
    blk = fuzz_open(disk, 0);
    if (blk) {
        g_free(read_all(blk, &type));
        g_clear_pointer(&type, g_free);
        check(blk, 0);
        blk_unref(blk);
    }

    blk = fuzz_open(disk, BDRV_O_RDWR);
    if (blk) {
        NvstoreBlobUpdate u[2] = {
            { .name = "fuzz-created", .type = NVSTORE_BLOB_TYPE_RAW,
              .data = new_data, .len = sizeof(new_data) },
        };
        size_t n = 1;
        bool committed = false;

        name = read_all(blk, &type);
        if (name && strcmp(name, u[0].name)) {
            u[1] = (NvstoreBlobUpdate) {
                .name = name, .type = type,
                .data = new_data, .len = sizeof(new_data) - 1,
            };
            n++;
        }
        if (nvstore_blob_commit(blk, u, n, NULL) == 0) {
            g_autofree char *type2 = NULL;

            committed = true;
            assert_reads_back(blk, &u[0]);
            g_free(read_all(blk, &type2));
        }
        check(blk, BDRV_FIX_LEAKS | BDRV_FIX_ERRORS);
        blk_unref(blk);

        if (committed) {
            /* The commit is on disk: the image opens and holds it */
            blk = fuzz_open(disk, 0);
            g_assert_nonnull(blk);
            assert_reads_back(blk, &u[0]);
            blk_unref(blk);
        }
    }
    nvstore_ramdisk_free(disk);
    return 0;
}
