/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * libFuzzer target of the nvstore block driver, with ASan and UBSan.
 *
 * The input is a control byte and an image.  The image is opened from
 * memory (tests/unit/nvstore-ramdisk.c) through the driver, read-only:
 * every blob is listed, looked up, its attributes read and its contents
 * read, and the image is checked.  Then it is opened read-write: one
 * blob is replaced, one created and one deleted in one commit.  If the
 * commit succeeds, every blob must then be as the commit left it:
 * replaced and created blobs hold what it wrote, deleted ones are gone,
 * every other blob reads as before (or fails to, as before), and check
 * finds no corruption that was not there before; the same after check
 * -r and after the image is opened again.  Nothing may crash, leak, hang
 * or run into undefined behaviour, whatever the image.
 *
 * Random bytes rarely get past the checksums, so when bit 0 of the
 * control byte is set, the harness first fixes the checksums of the
 * header, of each slot and of the directory each slot points at (and
 * of the close record, if it has its magic): then
 * the fuzzer's mutations reach the directory decoder and what the driver
 * does with a directory it accepts.  Extent checksums stay as they are.
 *
 * When bit 1 is set, the image is opened as an encrypted one, with the
 * secret of the seeds' key slots ("fuzz"); with bit 0 too, the harness
 * opens key slot 0 with it and recomputes each slot's directory
 * authentication code (and the close record's) before the checksums, so
 * that mutated directories reach the decoder and the decryption of blobs
 * (each blob's tag and associated data still bind its ciphertext).
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
#include "qemu/module.h"
#include "qom/object.h"
#include "block/nvstore-int.h"
#include "nvstore-ramdisk.h"

#define FUZZ_SECRET "fuzz-key"

/* Room for the image to grow when a commit writes past its end */
#define FUZZ_GROWTH (4 * 1024 * 1024)

static uint32_t fuzz_crc(const uint8_t *buf, size_t len)
{
    return crc32c(0xffffffff, buf, len);
}

/*
 * Where slot @i of @img (@len octets) says its directory is, if the slot
 * and the directory are within @img
 */
static bool slot_dir(uint8_t *img, size_t len, int i, uint64_t *off,
                     uint64_t *dlen)
{
    uint8_t *s = img + NVSTORE_SLOT_OFFSET(i);

    if (len < NVSTORE_SLOT_OFFSET(i) + sizeof(NvstoreSlot)) {
        return false;
    }
    *off = ldq_be_p(s + offsetof(NvstoreSlot, dir_offset));
    *dlen = ldq_be_p(s + offsetof(NvstoreSlot, dir_length));
    return *off <= len && *dlen <= len - *off;
}

/* The close record's checksum, if it has its magic */
static uint8_t *fix_close_record(uint8_t *img, size_t len)
{
    uint8_t *r = img + NVSTORE_CLOSE_OFFSET;

    if (len < NVSTORE_CLOSE_OFFSET + sizeof(NvstoreSlot) +
              NVSTORE_CLOSE_MAC_LEN ||
        memcmp(r, NVSTORE_CLOSE_MAGIC, 8)) {
        return NULL;
    }
    stl_be_p(r + offsetof(NvstoreSlot, slot_crc32c),
             fuzz_crc(r, offsetof(NvstoreSlot, slot_crc32c)));
    return r;
}

/*
 * Encrypted images: make each slot's directory authentication code, and
 * the close record's, hold, with the master key that key slot 0 wraps
 */
static void fix_macs(uint8_t *img, size_t len)
{
    NvstoreCrypt *crypt = NULL;
    uint8_t *rec;
    int i;

    if (len < NVSTORE_KEYSLOT_OFFSET(0) + sizeof(NvstoreKeySlot) ||
        nvstore_keyslot_open((NvstoreKeySlot *)(img +
                                                NVSTORE_KEYSLOT_OFFSET(0)),
                             0, img, FUZZ_SECRET, &crypt, NULL) < 0) {
        return;
    }
    for (i = 0; i < NVSTORE_NB_SLOTS; i++) {
        uint64_t off, dlen;

        if (slot_dir(img, len, i, &off, &dlen) &&
            dlen >= NVSTORE_DIR_MAC_LEN) {
            dlen -= NVSTORE_DIR_MAC_LEN;
            nvstore_crypt_dir_mac(crypt,
                                  ldq_be_p(img + NVSTORE_SLOT_OFFSET(i) +
                                           offsetof(NvstoreSlot,
                                                    generation)),
                                  img + off, dlen, img + off + dlen, NULL);
        }
    }
    rec = fix_close_record(img, len);
    if (rec) {
        nvstore_crypt_close_mac(crypt, (NvstoreSlot *)rec,
                                rec + sizeof(NvstoreSlot), NULL);
    }
    nvstore_crypt_free(crypt);
}

/*
 * Make the checksums of the header, the slots and their directories, and
 * of the close record, hold
 */
static void fix_checksums(uint8_t *img, size_t len)
{
    int i;

    fix_close_record(img, len);

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
        if (slot_dir(img, len, i, &off, &dlen)) {
            stl_be_p(s + offsetof(NvstoreSlot, dir_crc32c),
                     fuzz_crc(img + off, dlen));
        }
        stl_be_p(s + offsetof(NvstoreSlot, slot_crc32c),
                 fuzz_crc(s, offsetof(NvstoreSlot, slot_crc32c)));
    }
}

/* Whether this input opens the image with the key */
static bool fuzz_encrypted;

static BlockBackend *fuzz_open(NvstoreRamdisk *disk, int flags)
{
    QDict *options = qdict_new();
    BlockDriverState *bs;
    BlockBackend *blk;

    bs = nvstore_ramdisk_open(disk, "fuzz-disk", flags, &error_abort);
    qdict_put_str(options, "driver", "nvstore");
    qdict_put_str(options, "file", "fuzz-disk");
    if (fuzz_encrypted) {
        qdict_put_str(options, "encrypt.key-secret", FUZZ_SECRET);
    }
    blk = blk_new_open(NULL, NULL, options, flags, NULL);
    bdrv_unref(bs);
    return blk;
}

/* What a blob reads as: its contents, or NULL if the read fails */
typedef struct FuzzBlob {
    char *name;
    char *type;
    GByteArray *data;
} FuzzBlob;

static void fuzz_blob_free(gpointer p)
{
    FuzzBlob *b = p;

    g_free(b->name);
    g_free(b->type);
    if (b->data) {
        g_byte_array_unref(b->data);
    }
    g_free(b);
}

/* List, look up and read every blob, attributes included */
static GPtrArray *read_all(BlockBackend *blk)
{
    g_auto(GStrv) names = nvstore_blob_list(blk, NULL);
    GPtrArray *blobs = g_ptr_array_new_with_free_func(fuzz_blob_free);
    int i, j;

    for (i = 0; names && names[i]; i++) {
        g_autofree uint8_t *data = NULL;
        NvstoreBlobInfo info;
        FuzzBlob *b;
        size_t len;

        b = g_new0(FuzzBlob, 1);
        b->name = g_strdup(names[i]);
        g_ptr_array_add(blobs, b);
        if (nvstore_blob_get_info(blk, names[i], &info, NULL) < 0) {
            continue;
        }
        b->type = g_strdup(info.type);
        for (j = 0; info.attrs && info.attrs[j]; j++) {
            g_autofree uint8_t *value = NULL;

            nvstore_blob_get_attr(blk, names[i], info.attrs[j], &value, &len,
                                  NULL);
        }
        if (nvstore_blob_read(blk, names[i], &data, &len, NULL) == 0) {
            g_assert_cmpuint(len, ==, info.size);
            b->data = g_byte_array_new_take(g_steal_pointer(&data), len);
        }
        nvstore_blob_info_clear(&info);
    }
    return blobs;
}

static FuzzBlob *find(GPtrArray *blobs, const char *name)
{
    guint i;

    for (i = 0; i < blobs->len; i++) {
        FuzzBlob *b = g_ptr_array_index(blobs, i);

        if (!strcmp(b->name, name)) {
            return b;
        }
    }
    return NULL;
}

/*
 * The image of @blk is as @before with @u (@n updates) applied: the
 * updated blobs hold their data or are gone, every other blob reads as
 * it did (or fails to, as it did)
 */
static void assert_committed(BlockBackend *blk, GPtrArray *before,
                             const NvstoreBlobUpdate *u, size_t n)
{
    g_autoptr(GPtrArray) after = read_all(blk);
    guint i, expected = 0;
    size_t k;

    for (k = 0; k < n; k++) {
        FuzzBlob *b = find(after, u[k].name);

        if (u[k].remove) {
            g_assert_null(b);
        } else {
            g_assert_nonnull(b);
            g_assert_nonnull(b->data);
            g_assert_cmpmem(b->data->data, b->data->len, u[k].data, u[k].len);
            expected++;
        }
    }
    for (i = 0; i < before->len; i++) {
        FuzzBlob *old = g_ptr_array_index(before, i), *b;

        for (k = 0; k < n && strcmp(u[k].name, old->name); k++) {
            continue;
        }
        if (k < n) {
            continue;
        }
        b = find(after, old->name);
        g_assert_nonnull(b);
        g_assert_true(!b->data == !old->data);
        if (old->data) {
            g_assert_cmpmem(b->data->data, b->data->len, old->data->data,
                            old->data->len);
        }
        expected++;
    }
    g_assert_cmpuint(after->len, ==, expected);
}

static BdrvCheckResult check(BlockBackend *blk, BdrvCheckMode fix)
{
    BdrvCheckResult res = { 0 };

    bdrv_graph_rdlock_main_loop();
    bdrv_check(blk_bs(blk), &res, fix);
    bdrv_graph_rdunlock_main_loop();
    return res;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    bdrv_init();
    module_call_init(MODULE_INIT_QOM);
    qemu_init_main_loop(&error_abort);
    object_new_with_props("secret", object_get_objects_root(), FUZZ_SECRET,
                          &error_abort, "data", "fuzz", NULL);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t new_data[] = "new contents of a blob";
    g_autofree uint8_t *img = NULL;
    NvstoreRamdisk *disk;
    BlockBackend *blk;

    if (size < 1) {
        return 0;
    }
    img = g_memdup2(data + 1, size - 1);
    fuzz_encrypted = data[0] & 2;
    if ((data[0] & 3) == 3) {
        fix_macs(img, size - 1);
    }
    if (data[0] & 1) {
        fix_checksums(img, size - 1);
    }

    disk = nvstore_ramdisk_new(img, size - 1, size - 1 + FUZZ_GROWTH);
    blk = fuzz_open(disk, 0);
    if (blk) {
        g_ptr_array_unref(read_all(blk));
        check(blk, 0);
        blk_unref(blk);
    }

    blk = fuzz_open(disk, BDRV_O_RDWR);
    if (blk) {
        g_autoptr(GPtrArray) before = read_all(blk);
        BdrvCheckResult res_before = check(blk, 0), res;
        NvstoreBlobUpdate u[3] = {
            { .name = "fuzz-created", .type = NVSTORE_BLOB_TYPE_RAW,
              .data = new_data, .len = sizeof(new_data) },
        };
        size_t n = 1;
        guint i;

        /* Replace the first readable blob, delete the second */
        for (i = 0; i < before->len && n < 3; i++) {
            FuzzBlob *b = g_ptr_array_index(before, i);

            if (!b->data || !strcmp(b->name, u[0].name)) {
                continue;
            }
            u[n] = (NvstoreBlobUpdate) { .name = b->name, .type = b->type };
            if (n == 1) {
                u[n].data = new_data;
                u[n].len = sizeof(new_data) - 1;
            } else {
                u[n].remove = true;
            }
            n++;
        }
        if (nvstore_blob_commit(blk, u, n, NULL) == 0) {
            assert_committed(blk, before, u, n);
            /* A commit adds no corruption to those already there */
            res = check(blk, 0);
            g_assert_cmpint(res.corruptions, <=, res_before.corruptions);
            g_assert_cmpint(res.check_errors, <=, res_before.check_errors);
            check(blk, BDRV_FIX_LEAKS | BDRV_FIX_ERRORS);
            assert_committed(blk, before, u, n);
            blk_unref(blk);

            /* The commit is on disk: the image opens and holds it */
            blk = fuzz_open(disk, 0);
            g_assert_nonnull(blk);
            assert_committed(blk, before, u, n);
        } else {
            check(blk, BDRV_FIX_LEAKS | BDRV_FIX_ERRORS);
        }
        blk_unref(blk);
    }
    nvstore_ramdisk_free(disk);
    return 0;
}
