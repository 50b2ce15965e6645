/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Unit tests of the nvstore block driver through its device API
 * (include/block/nvstore.h), on image files.
 */

#include "qemu/osdep.h"
#include "block/block.h"
#include "block/nvstore.h"
#include "system/block-backend.h"
#include "qapi/error.h"
#include "qobject/qdict.h"
#include "qemu/crc32c.h"
#include "qemu/main-loop.h"

static char *create_image(void)
{
    char *path = NULL;
    int fd = g_file_open_tmp("nvstore-test-XXXXXX", &path, NULL);

    g_assert_cmpint(fd, >=, 0);
    close(fd);
    bdrv_img_create(path, "nvstore", NULL, NULL, NULL, UINT64_C(-1), 0, true,
                    &error_abort);
    return path;
}

static BlockBackend *open_image(const char *path, int flags, Error **errp)
{
    QDict *options = qdict_new();

    qdict_put_str(options, "driver", "nvstore");
    return blk_new_open(path, NULL, options, flags, errp);
}

static GByteArray *pattern(size_t len, uint8_t seed)
{
    GByteArray *b = g_byte_array_sized_new(len);
    size_t i;

    g_byte_array_set_size(b, len);
    for (i = 0; i < len; i++) {
        b->data[i] = seed + i * 7 + (i >> 8);
    }
    return b;
}

static void assert_blob(BlockBackend *blk, const char *name, GByteArray *b)
{
    g_autofree uint8_t *data = NULL;
    size_t len;

    g_assert_cmpint(nvstore_blob_read(blk, name, &data, &len, &error_abort),
                    ==, 0);
    g_assert_cmpmem(data, len, b->data, b->len);
}

static void put(BlockBackend *blk, const char *name, const char *type,
                GByteArray *b)
{
    NvstoreBlobUpdate u = {
        .name = name, .type = type, .data = b->data, .len = b->len,
    };

    g_assert_cmpint(nvstore_blob_commit(blk, &u, 1, &error_abort), ==, 0);
}

static int64_t file_size(const char *path)
{
    struct stat st;

    g_assert_cmpint(stat(path, &st), ==, 0);
    return st.st_size;
}

/* The checksum is the standard CRC-32C (spec: "crc32c") */
static void test_crc32c_convention(void)
{
    g_assert_cmphex(crc32c(0xffffffff, (const uint8_t *)"123456789", 9), ==,
                    0xe3069283);
}

static void test_create_empty(void)
{
    g_autofree char *path = create_image();
    BlockBackend *blk = open_image(path, BDRV_O_RDWR, &error_abort);
    g_auto(GStrv) names = nvstore_blob_list(blk, &error_abort);
    g_autofree uint8_t *data = NULL;
    Error *err = NULL;
    size_t len;

    g_assert_cmpuint(g_strv_length(names), ==, 0);
    g_assert_cmpint(blk_getlength(blk), ==, 0);
    g_assert_cmpint(nvstore_blob_read(blk, "x", &data, &len, &err), ==,
                    -ENOENT);
    g_assert_nonnull(strstr(error_get_pretty(err), "No blob named 'x'"));
    error_free(err);
    blk_unref(blk);
    unlink(path);
}

static void test_commit_and_reopen(void)
{
    g_autofree char *path = create_image();
    g_autoptr(GByteArray) permall = pattern(5000, 1);
    g_autoptr(GByteArray) small = pattern(10, 2);
    g_autoptr(GByteArray) permall2 = pattern(7000, 3);
    g_auto(GStrv) names = NULL;
    NvstoreBlobInfo info;
    BlockBackend *blk = open_image(path, BDRV_O_RDWR, &error_abort);

    put(blk, "permall", NVSTORE_BLOB_TYPE_TPM, permall);
    put(blk, "vars", NVSTORE_BLOB_TYPE_RAW, small);
    assert_blob(blk, "permall", permall);
    assert_blob(blk, "vars", small);

    g_assert_cmpint(nvstore_blob_get_info(blk, "permall", &info,
                                          &error_abort), ==, 0);
    g_assert_cmpstr(info.type, ==, "tpm");
    g_assert_cmpuint(info.size, ==, 5000);
    g_assert_true(info.has_realsize);
    g_assert_cmpuint(info.realsize, ==, 5000);
    g_free(info.type);
    g_assert_cmpint(nvstore_blob_get_info(blk, "vars", &info, &error_abort),
                    ==, 0);
    g_assert_false(info.has_realsize);
    g_free(info.type);

    /* Replace one: the other is untouched */
    put(blk, "permall", NVSTORE_BLOB_TYPE_TPM, permall2);
    assert_blob(blk, "permall", permall2);
    assert_blob(blk, "vars", small);
    blk_unref(blk);

    /* Everything was durable on return */
    blk = open_image(path, BDRV_O_RDWR, &error_abort);
    assert_blob(blk, "permall", permall2);
    assert_blob(blk, "vars", small);
    names = nvstore_blob_list(blk, &error_abort);
    g_assert_cmpuint(g_strv_length(names), ==, 2);
    g_assert_cmpstr(names[0], ==, "permall");
    g_assert_cmpstr(names[1], ==, "vars");
    blk_unref(blk);
    unlink(path);
}

static void test_multi_commit(void)
{
    g_autofree char *path = create_image();
    g_autoptr(GByteArray) a = pattern(3000, 4);
    g_autoptr(GByteArray) b = pattern(0, 5);
    g_autoptr(GByteArray) c = pattern(100, 6);
    g_auto(GStrv) names = NULL;
    BlockBackend *blk = open_image(path, BDRV_O_RDWR, &error_abort);
    NvstoreBlobUpdate u[] = {
        { .name = "a", .type = "tpm", .data = a->data, .len = a->len },
        { .name = "b", .type = "raw", .data = b->data, .len = b->len },
        { .name = "c", .type = "raw", .data = c->data, .len = c->len,
          .has_realsize = true, .realsize = 50 },
    };
    NvstoreBlobUpdate del[] = {
        { .name = "a", .remove = true },
        { .name = "c", .type = "raw", .data = a->data, .len = a->len },
    };
    NvstoreBlobInfo info;

    g_assert_cmpint(nvstore_blob_commit(blk, u, 3, &error_abort), ==, 0);
    assert_blob(blk, "a", a);
    assert_blob(blk, "b", b);
    assert_blob(blk, "c", c);
    nvstore_blob_get_info(blk, "c", &info, &error_abort);
    g_assert_cmpuint(info.realsize, ==, 50);
    g_free(info.type);

    g_assert_cmpint(nvstore_blob_commit(blk, del, 2, &error_abort), ==, 0);
    names = nvstore_blob_list(blk, &error_abort);
    g_assert_cmpuint(g_strv_length(names), ==, 2);
    assert_blob(blk, "c", a);
    nvstore_blob_get_info(blk, "c", &info, &error_abort);
    g_assert_false(info.has_realsize);
    g_free(info.type);
    blk_unref(blk);
    unlink(path);
}

/* A refused commit changes nothing */
static void test_commit_errors(void)
{
    g_autofree char *path = create_image();
    g_autoptr(GByteArray) a = pattern(300, 7);
    g_autoptr(GByteArray) b = pattern(400, 8);
    BlockBackend *blk = open_image(path, BDRV_O_RDWR, &error_abort);
    NvstoreBlobUpdate twice[] = {
        { .name = "b", .type = "raw", .data = b->data, .len = b->len },
        { .name = "b", .type = "raw", .data = a->data, .len = a->len },
    };
    NvstoreBlobUpdate bad_type = {
        .name = "a", .type = "tpm", .data = b->data, .len = b->len,
    };
    NvstoreBlobUpdate missing = { .name = "zz", .remove = true };
    NvstoreBlobUpdate big_realsize = {
        .name = "a", .type = "raw", .data = b->data, .len = b->len,
        .has_realsize = true, .realsize = 401,
    };
    NvstoreBlobUpdate bad_name = {
        .name = "bad\n", .type = "raw", .data = b->data, .len = b->len,
    };
    g_auto(GStrv) names = NULL;
    Error *err = NULL;

    put(blk, "a", "raw", a);
    g_assert_cmpint(nvstore_blob_commit(blk, twice, 2, &err), <, 0);
    g_assert_nonnull(strstr(error_get_pretty(err), "appears twice"));
    g_clear_pointer(&err, error_free);
    g_assert_cmpint(nvstore_blob_commit(blk, &bad_type, 1, &err), <, 0);
    g_assert_nonnull(strstr(error_get_pretty(err), "is of type 'raw'"));
    g_clear_pointer(&err, error_free);
    g_assert_cmpint(nvstore_blob_commit(blk, &missing, 1, &err), ==,
                    -ENOENT);
    g_clear_pointer(&err, error_free);
    g_assert_cmpint(nvstore_blob_commit(blk, &big_realsize, 1, &err), <, 0);
    g_clear_pointer(&err, error_free);
    g_assert_cmpint(nvstore_blob_commit(blk, &bad_name, 1, &err), <, 0);
    g_clear_pointer(&err, error_free);

    names = nvstore_blob_list(blk, &error_abort);
    g_assert_cmpuint(g_strv_length(names), ==, 1);
    assert_blob(blk, "a", a);
    blk_unref(blk);

    /* Read-only: reads work, commits are refused */
    blk = open_image(path, 0, &error_abort);
    assert_blob(blk, "a", a);
    g_assert_cmpint(nvstore_blob_commit(blk, &bad_type, 1, &err), ==,
                    -EACCES);
    g_assert_nonnull(strstr(error_get_pretty(err), "read-only"));
    g_clear_pointer(&err, error_free);
    blk_unref(blk);
    unlink(path);
}

/* Space of replaced blobs is reused: the image does not keep growing */
static void test_space_reuse(void)
{
    g_autofree char *path = create_image();
    BlockBackend *blk = open_image(path, BDRV_O_RDWR, &error_abort);
    int64_t size_after_two = 0;
    int i;

    for (i = 0; i < 50; i++) {
        g_autoptr(GByteArray) a = pattern(10000, i);

        put(blk, "a", "raw", a);
        if (i == 1) {
            size_after_two = file_size(path);
        }
    }
    /* Two generations of data and directory alternate */
    g_assert_cmpint(file_size(path), <=, size_after_two + 3 * 4096);
    blk_unref(blk);
    unlink(path);
}

/* Overwrite the first occurrence of @needle in the file with zeros */
static void corrupt(const char *path, GByteArray *needle)
{
    g_autofree char *buf = NULL;
    gsize len;
    char *p;
    int fd;

    g_assert_true(g_file_get_contents(path, &buf, &len, NULL));
    p = memmem(buf, len, needle->data, needle->len);
    g_assert_nonnull(p);
    fd = open(path, O_WRONLY);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pwrite(fd, "\0\0\0\0", 4, p - buf + needle->len / 2),
                    ==, 4);
    close(fd);
}

/*
 * A commit whose data did not reach the disk before a crash (the slot
 * did): the image opens at the previous commit, with every blob intact.
 */
static void test_torn_commit(void)
{
    g_autofree char *path = create_image();
    g_autoptr(GByteArray) a1 = pattern(5000, 10);
    g_autoptr(GByteArray) a2 = pattern(5000, 11);
    g_autoptr(GByteArray) b = pattern(3000, 12);
    BlockBackend *blk = open_image(path, BDRV_O_RDWR, &error_abort);

    put(blk, "b", "raw", b);
    put(blk, "a", "raw", a1);
    put(blk, "a", "raw", a2);
    blk_unref(blk);

    corrupt(path, a2);
    blk = open_image(path, BDRV_O_RDWR, &error_abort);
    assert_blob(blk, "a", a1);
    assert_blob(blk, "b", b);

    /* And commits go on from there */
    put(blk, "a", "raw", a2);
    blk_unref(blk);
    blk = open_image(path, 0, &error_abort);
    assert_blob(blk, "a", a2);
    assert_blob(blk, "b", b);
    blk_unref(blk);
    unlink(path);
}

/*
 * A flipped bit in a blob of an older commit is bit rot: that blob is
 * reported, the others are readable.
 */
static void test_bit_rot(void)
{
    g_autofree char *path = create_image();
    g_autoptr(GByteArray) a = pattern(5000, 20);
    g_autoptr(GByteArray) b = pattern(3000, 21);
    g_autofree uint8_t *data = NULL;
    BlockBackend *blk = open_image(path, BDRV_O_RDWR, &error_abort);
    Error *err = NULL;
    size_t len;

    put(blk, "a", "raw", a);
    put(blk, "b", "raw", b);
    blk_unref(blk);

    corrupt(path, a);
    blk = open_image(path, 0, &error_abort);
    g_assert_cmpint(nvstore_blob_read(blk, "a", &data, &len, &err), ==,
                    -EIO);
    g_assert_nonnull(strstr(error_get_pretty(err), "Blob 'a' is corrupt"));
    error_free(err);
    assert_blob(blk, "b", b);
    blk_unref(blk);
    unlink(path);
}

/*
 * An I/O error (EIO, ENOSPC) on a write of a commit: the commit fails,
 * the blobs keep their old contents, in memory and on disk, and the next
 * commit works.
 */
static void test_write_error(void)
{
    static const int errnos[] = { EIO, ENOSPC };
    g_autofree char *path = create_image();
    g_autoptr(GByteArray) a1 = pattern(5000, 30);
    g_autoptr(GByteArray) a2 = pattern(6000, 31);
    g_autoptr(GByteArray) b = pattern(100, 32);
    BlockBackend *blk = open_image(path, BDRV_O_RDWR, &error_abort);
    int i;

    put(blk, "a", "raw", a1);
    put(blk, "b", "raw", b);
    blk_unref(blk);

    for (i = 0; i < ARRAY_SIZE(errnos); i++) {
        QDict *options = qdict_new();
        NvstoreBlobUpdate u = {
            .name = "a", .type = "raw", .data = a2->data, .len = a2->len,
        };
        Error *err = NULL;

        qdict_put_str(options, "driver", "nvstore");
        qdict_put_str(options, "file.driver", "blkdebug");
        qdict_put_str(options, "file.image.filename", path);
        qdict_put_str(options, "file.inject-error.0.event", "pwritev");
        qdict_put_int(options, "file.inject-error.0.errno", errnos[i]);
        qdict_put_str(options, "file.inject-error.0.once", "on");
        blk = blk_new_open(NULL, NULL, options, BDRV_O_RDWR, &error_abort);

        g_assert_cmpint(nvstore_blob_commit(blk, &u, 1, &err), ==,
                        -errnos[i]);
        g_assert_nonnull(err);
        error_free(err);
        assert_blob(blk, "a", a1);
        assert_blob(blk, "b", b);
        blk_unref(blk);

        blk = open_image(path, BDRV_O_RDWR, &error_abort);
        assert_blob(blk, "a", a1);
        assert_blob(blk, "b", b);
        blk_unref(blk);
    }

    blk = open_image(path, BDRV_O_RDWR, &error_abort);
    put(blk, "a", "raw", a2);
    blk_unref(blk);
    blk = open_image(path, 0, &error_abort);
    assert_blob(blk, "a", a2);
    assert_blob(blk, "b", b);
    blk_unref(blk);
    unlink(path);
}

static void test_not_nvstore(void)
{
    g_autofree char *path = NULL;
    g_auto(GStrv) names = NULL;
    QDict *options = qdict_new();
    BlockBackend *blk;
    Error *err = NULL;
    int fd = g_file_open_tmp("nvstore-test-XXXXXX", &path, NULL);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(ftruncate(fd, 65536), ==, 0);
    close(fd);

    /* Opening a non-nvstore file as nvstore fails */
    g_assert_null(open_image(path, 0, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "not in nvstore format"));
    g_clear_pointer(&err, error_free);

    /* The API refuses other nodes */
    qdict_put_str(options, "driver", "raw");
    blk = blk_new_open(path, NULL, options, 0, &error_abort);
    g_assert_null(nvstore_blob_list(blk, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "not an nvstore node"));
    error_free(err);
    blk_unref(blk);
    unlink(path);
}

int main(int argc, char **argv)
{
    bdrv_init();
    qemu_init_main_loop(&error_abort);
    g_test_init(&argc, &argv, NULL);

    g_test_add_func("/nvstore/crc32c", test_crc32c_convention);
    g_test_add_func("/nvstore/create-empty", test_create_empty);
    g_test_add_func("/nvstore/commit-and-reopen", test_commit_and_reopen);
    g_test_add_func("/nvstore/multi-commit", test_multi_commit);
    g_test_add_func("/nvstore/commit-errors", test_commit_errors);
    g_test_add_func("/nvstore/space-reuse", test_space_reuse);
    g_test_add_func("/nvstore/torn-commit", test_torn_commit);
    g_test_add_func("/nvstore/bit-rot", test_bit_rot);
    g_test_add_func("/nvstore/write-error", test_write_error);
    g_test_add_func("/nvstore/not-nvstore", test_not_nvstore);
    return g_test_run();
}
