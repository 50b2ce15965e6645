/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Unit tests of the nvstore block driver through its device API
 * (include/block/nvstore.h), on image files.
 */

#include "qemu/osdep.h"
#include "block/block.h"
#include "block/block_int.h"
#include "block/nvstore.h"
#include "block/snapshot.h"
#include "block/nvstore-format.h"
#include "block/nvstore-int.h"
#include "system/block-backend.h"
#include "qapi/error.h"
#include "qobject/qdict.h"
#include "qemu/crc32c.h"
#include "qemu/main-loop.h"
#include "qemu/cutils.h"
#include "qemu/option.h"
#include "qemu/module.h"
#include "qom/object.h"
#include "nvstore-ramdisk.h"

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

/* An nvstore image inside a qcow2 image (container=qcow2) */
static char *create_image_in_qcow2(void)
{
    g_autofree char *opts = g_strdup("container=qcow2");
    char *path = NULL;
    int fd = g_file_open_tmp("nvstore-test-XXXXXX", &path, NULL);

    g_assert_cmpint(fd, >=, 0);
    close(fd);
    bdrv_img_create(path, "nvstore", NULL, NULL, opts, UINT64_C(-1), 0,
                    true, &error_abort);
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

/* Open the image at @path with @flags: blobs "a" and "b" hold @a and @b */
static void assert_image(const char *path, int flags, GByteArray *a,
                         GByteArray *b)
{
    BlockBackend *blk = open_image(path, flags, &error_abort);

    assert_blob(blk, "a", a);
    assert_blob(blk, "b", b);
    blk_unref(blk);
}

static void put(BlockBackend *blk, const char *name, const char *type,
                GByteArray *b)
{
    NvstoreBlobUpdate u = {
        .name = name, .type = type, .data = b->data, .len = b->len,
    };

    g_assert_cmpint(nvstore_blob_commit(blk, &u, 1, &error_abort), ==, 0);
}

/* The value of environment variable @name, a number, or @dflt if unset */
static int env_int(const char *name, int dflt)
{
    const char *env = g_getenv(name);
    int value;

    if (!env) {
        return dflt;
    }
    if (qemu_strtoi(env, NULL, 10, &value) < 0 || value < 0) {
        g_error("%s=%s: not a number of iterations", name, env);
    }
    return value;
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
    nvstore_blob_info_clear(&info);
    g_assert_cmpint(nvstore_blob_get_info(blk, "vars", &info, &error_abort),
                    ==, 0);
    g_assert_false(info.has_realsize);
    nvstore_blob_info_clear(&info);

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
    nvstore_blob_info_clear(&info);

    g_assert_cmpint(nvstore_blob_commit(blk, del, 2, &error_abort), ==, 0);
    names = nvstore_blob_list(blk, &error_abort);
    g_assert_cmpuint(g_strv_length(names), ==, 2);
    assert_blob(blk, "c", a);
    nvstore_blob_get_info(blk, "c", &info, &error_abort);
    g_assert_false(info.has_realsize);
    nvstore_blob_info_clear(&info);
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

        assert_image(path, BDRV_O_RDWR, a1, b);
    }

    blk = open_image(path, BDRV_O_RDWR, &error_abort);
    put(blk, "a", "raw", a2);
    blk_unref(blk);
    assert_image(path, 0, a2, b);
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

/* Attributes: set at creation, changed alone, kept by data updates */
static void test_attributes(void)
{
    static const uint8_t vendor[] = { 0x0c, 0x03, 'a', 'c', 'm' };
    static const uint8_t version[] = { 0x02, 0x01, 0x02 };
    static const uint8_t not_der[] = { 0x04, 0x05, 0x00 };
    g_autofree char *path = create_image();
    g_autoptr(GByteArray) d1 = pattern(3000, 40);
    g_autoptr(GByteArray) d2 = pattern(100, 41);
    NvstoreBlobAttr create_attrs[] = {
        { .name = "vendor", .value = vendor, .len = sizeof(vendor) },
        { .name = "locked" },
    };
    NvstoreBlobAttr change[] = {
        { .name = "locked", .remove = true },
        { .name = "version", .value = version, .len = sizeof(version) },
    };
    NvstoreBlobUpdate only_attrs = {
        .name = "vars", .type = "raw", .keep_data = true,
        .attrs = change, .nb_attrs = ARRAY_SIZE(change),
    };
    NvstoreBlobUpdate create = {
        .name = "vars", .type = "raw",
        .attrs = create_attrs, .nb_attrs = ARRAY_SIZE(create_attrs),
    };
    NvstoreBlobUpdate other_type = {
        .name = "vars", .type = "tpm", .keep_data = true,
    };
    NvstoreBlobAttr bad[] = {
        { .name = "x", .value = not_der, .len = sizeof(not_der) },
    };
    NvstoreBlobAttr managed[] = { { .name = "extent" } };
    NvstoreBlobUpdate u = { .name = "vars", .type = "raw", .keep_data = true };
    BlockBackend *blk = open_image(path, BDRV_O_RDWR, &error_abort);
    NvstoreBlobInfo info = { 0 };
    g_autofree uint8_t *value = NULL;
    Error *err = NULL;
    size_t len;

    /* Created empty with its attributes, then found */
    g_assert_cmpint(nvstore_blob_commit(blk, &create, 1, &error_abort), ==,
                    0);
    g_assert_cmpint(nvstore_blob_get_info(blk, "vars", &info, &error_abort),
                    ==, 0);
    g_assert_cmpstr(info.type, ==, "raw");
    g_assert_cmpuint(info.size, ==, 0);
    g_assert_cmpuint(g_strv_length(info.attrs), ==, 2);
    g_assert_cmpstr(info.attrs[0], ==, "locked");
    g_assert_cmpstr(info.attrs[1], ==, "vendor");
    nvstore_blob_info_clear(&info);
    /* Another type is refused, the attributes alone too */
    g_assert_cmpint(nvstore_blob_commit(blk, &other_type, 1, &err), ==,
                    -EINVAL);
    g_assert_nonnull(strstr(error_get_pretty(err), "is of type 'raw'"));
    g_clear_pointer(&err, error_free);

    /* A data update keeps the attributes */
    put(blk, "vars", "raw", d1);
    g_assert_cmpint(nvstore_blob_get_attr(blk, "vars", "vendor", &value,
                                          &len, &error_abort), ==, 0);
    g_assert_cmpmem(value, len, vendor, sizeof(vendor));
    g_clear_pointer(&value, g_free);
    g_assert_cmpint(nvstore_blob_get_attr(blk, "vars", "locked", &value,
                                          &len, &error_abort), ==, 0);
    g_assert_null(value);
    g_assert_cmpuint(len, ==, 0);

    /* An attribute update keeps the data */
    g_assert_cmpint(nvstore_blob_commit(blk, &only_attrs, 1, &error_abort),
                    ==, 0);
    blk_unref(blk);
    blk = open_image(path, 0, &error_abort);
    assert_blob(blk, "vars", d1);
    g_assert_cmpint(nvstore_blob_get_attr(blk, "vars", "locked", &value,
                                          &len, &err), ==, -ENOENT);
    g_assert_nonnull(strstr(error_get_pretty(err),
                            "Blob 'vars' has no attribute 'locked'"));
    g_clear_pointer(&err, error_free);
    g_assert_cmpint(nvstore_blob_get_attr(blk, "vars", "version", &value,
                                          &len, &error_abort), ==, 0);
    g_assert_cmpmem(value, len, version, sizeof(version));
    g_clear_pointer(&value, g_free);
    g_assert_cmpint(nvstore_blob_get_info(blk, "vars", &info, &error_abort),
                    ==, 0);
    g_assert_cmpuint(g_strv_length(info.attrs), ==, 2);
    g_assert_cmpstr(info.attrs[0], ==, "vendor");
    g_assert_cmpstr(info.attrs[1], ==, "version");
    nvstore_blob_info_clear(&info);
    blk_unref(blk);

    /* Refused: not DER, a managed attribute, keep_data of no blob */
    blk = open_image(path, BDRV_O_RDWR, &error_abort);
    u.attrs = bad;
    u.nb_attrs = 1;
    g_assert_cmpint(nvstore_blob_commit(blk, &u, 1, &err), ==, -EINVAL);
    g_assert_nonnull(strstr(error_get_pretty(err), "Attribute 'x'"));
    g_clear_pointer(&err, error_free);
    u.attrs = managed;
    g_assert_cmpint(nvstore_blob_commit(blk, &u, 1, &err), ==, -EINVAL);
    g_assert_nonnull(strstr(error_get_pretty(err), "managed by nvstore"));
    g_clear_pointer(&err, error_free);
    u.name = "none";
    u.nb_attrs = 0;
    g_assert_cmpint(nvstore_blob_commit(blk, &u, 1, &err), ==, -ENOENT);
    g_clear_pointer(&err, error_free);
    put(blk, "vars", "raw", d2);
    assert_blob(blk, "vars", d2);
    blk_unref(blk);
    unlink(path);
}

/*
 * Options of a blkdebug child of an nvstore node that count the writes
 * to it (state k + 1 after k writes) and inject @errno into write @k, or,
 * if @k is 0, into the first flush
 */
static QDict *blkdebug_options(const char *path, int k, int errno_value)
{
    QDict *options = qdict_new();
    int i;

    qdict_put_str(options, "driver", "nvstore");
    qdict_put_str(options, "file.driver", "blkdebug");
    qdict_put_str(options, "file.image.filename", path);
    for (i = 0; i < 16; i++) {
        g_autofree char *pfx = g_strdup_printf("file.set-state.%d.", i);
        g_autofree char *ev = g_strconcat(pfx, "event", NULL);
        g_autofree char *st = g_strconcat(pfx, "state", NULL);
        g_autofree char *ns = g_strconcat(pfx, "new_state", NULL);

        qdict_put_str(options, ev, "pwritev");
        qdict_put_int(options, st, i + 1);
        qdict_put_int(options, ns, i + 2);
    }
    qdict_put_str(options, "file.inject-error.0.event", "pwritev");
    qdict_put_int(options, "file.inject-error.0.errno", errno_value);
    qdict_put_str(options, "file.inject-error.0.once", "on");
    if (k) {
        qdict_put_int(options, "file.inject-error.0.state", k);
        qdict_put_str(options, "file.inject-error.0.iotype", "write");
    } else {
        qdict_put_str(options, "file.inject-error.0.iotype", "flush");
    }
    return options;
}

/*
 * EIO and ENOSPC on each write of a commit of two blobs (data of each,
 * directory, slot: four writes) and on its flush: the commit fails, the
 * old contents stay, in memory and on disk, and the next commit works.
 */
static void test_fault_each_write(void)
{
    static const int errnos[] = { EIO, ENOSPC };
    g_autofree char *path = create_image();
    g_autoptr(GByteArray) a = pattern(5000, 50);
    g_autoptr(GByteArray) b = pattern(70, 51);
    g_autoptr(GByteArray) c = pattern(9000, 52);
    BlockBackend *blk = open_image(path, BDRV_O_RDWR, &error_abort);
    int i, k, round = 0;

    put(blk, "a", "tpm", a);
    put(blk, "b", "tpm", b);
    put(blk, "c", "raw", c);
    blk_unref(blk);

    for (i = 0; i < ARRAY_SIZE(errnos); i++) {
        for (k = 0; k <= 5; k++) {
            g_autoptr(GByteArray) a2 = pattern(4000 + round, 60 + round);
            g_autoptr(GByteArray) b2 = pattern(80 + round, 90 + round);
            NvstoreBlobUpdate u[] = {
                { .name = "a", .type = "tpm", .data = a2->data,
                  .len = a2->len },
                { .name = "b", .type = "tpm", .data = b2->data,
                  .len = b2->len },
            };
            Error *err = NULL;
            int ret;

            round++;
            blk = blk_new_open(NULL, NULL,
                               blkdebug_options(path, k, errnos[i]),
                               BDRV_O_RDWR, &error_abort);
            ret = nvstore_blob_commit(blk, u, 2, &err);
            if (k == 5) {
                /* Four writes and a flush: a fifth write never comes */
                g_assert_cmpint(ret, ==, 0);
            } else {
                g_assert_cmpint(ret, ==, -errnos[i]);
                g_assert_nonnull(strstr(error_get_pretty(err),
                                        k ? "Could not write" :
                                        "Could not flush"));
                error_free(err);
                assert_blob(blk, "a", a);
                assert_blob(blk, "b", b);
                assert_blob(blk, "c", c);

                /* The fault was once: the next commit succeeds */
                g_assert_cmpint(nvstore_blob_commit(blk, u, 2, &error_abort),
                                ==, 0);
            }
            blk_unref(blk);
            blk = open_image(path, 0, &error_abort);
            assert_blob(blk, "a", a2);
            assert_blob(blk, "b", b2);
            assert_blob(blk, "c", c);
            blk_unref(blk);
            g_byte_array_unref(a);
            g_byte_array_unref(b);
            a = g_steal_pointer(&a2);
            b = g_steal_pointer(&b2);
        }
    }
    unlink(path);
}

/*
 * A node that becomes read-only (blockdev-reopen, the read-only switch
 * of a block job) writes the close record of its commits, as at close;
 * reopened read-write, it commits again, and its close writes the record
 * of the new commit.
 */
static void test_reopen_read_only(void)
{
    g_autofree char *path = create_image();
    g_autoptr(GByteArray) a = pattern(3000, 3);
    g_autoptr(GByteArray) b = pattern(4000, 4);
    g_autofree char *buf = NULL;
    BlockBackend *blk = open_image(path, BDRV_O_RDWR, &error_abort);
    BDRVNvstoreState *s = blk_bs(blk)->opaque;
    uint64_t perm, shared;
    NvstoreSlot rec;
    gsize len;

    put(blk, "a", "raw", a);
    /* The BlockBackend as a read-only user, then the node read-only */
    blk_get_perm(blk, &perm, &shared);
    g_assert_cmpint(blk_set_perm(blk, perm & ~BLK_PERM_WRITE, shared,
                                 &error_abort), ==, 0);
    bdrv_graph_rdlock_main_loop();
    g_assert_cmpint(bdrv_reopen_set_read_only(blk_bs(blk), true,
                                              &error_abort), ==, 0);
    bdrv_graph_rdunlock_main_loop();
    g_assert_true(g_file_get_contents(path, &buf, &len, NULL));
    memcpy(&rec, buf + NVSTORE_CLOSE_OFFSET, sizeof(rec));
    g_assert_cmpmem(rec.magic, 8, NVSTORE_CLOSE_MAGIC, 8);
    g_assert_cmpuint(be64_to_cpu(rec.generation), ==, s->gen);
    g_clear_pointer(&buf, g_free);

    bdrv_graph_rdlock_main_loop();
    g_assert_cmpint(bdrv_reopen_set_read_only(blk_bs(blk), false,
                                              &error_abort), ==, 0);
    bdrv_graph_rdunlock_main_loop();
    g_assert_cmpint(blk_set_perm(blk, perm, shared, &error_abort), ==, 0);
    put(blk, "b", "raw", b);
    blk_unref(blk);
    g_assert_true(g_file_get_contents(path, &buf, &len, NULL));
    memcpy(&rec, buf + NVSTORE_CLOSE_OFFSET, sizeof(rec));
    blk = open_image(path, 0, &error_abort);
    s = blk_bs(blk)->opaque;
    g_assert_cmpuint(be64_to_cpu(rec.generation), ==, s->gen);
    assert_blob(blk, "a", a);
    assert_blob(blk, "b", b);
    blk_unref(blk);
    unlink(path);
}

/*
 * Crash consistency: a writer process commits in a loop and is killed
 * with SIGKILL at a random instant; the image must then open, and hold
 * exactly the state of one commit: blobs "a" and "b" of the same
 * generation, blob "c" present for odd generations only, each blob whole
 * (its checksum holds and its contents are those of that generation).
 * The generation found is at least the last one the writer reported as
 * committed (durable on return) and at most the one after it.
 */
static GByteArray *crash_contents(uint64_t gen, char blob)
{
    size_t len = (blob == 'b' ? 100 : 3000) + (gen * 797 + blob) % 9000;
    GByteArray *b = pattern(len, gen * 31 + blob);

    /* The generation, in the first bytes: a mixed state cannot pass */
    memcpy(b->data, &gen, sizeof(gen));
    return b;
}

/* The writer: commit generations @gen + 1, ... until killed */
static int crash_writer(const char *path, uint64_t gen, int fd)
{
    BlockBackend *blk = open_image(path, BDRV_O_RDWR, &error_abort);

    /* Ready: the image is open (gen is the last acknowledged commit) */
    g_assert_cmpint(write(fd, &gen, sizeof(gen)), ==, sizeof(gen));
    for (gen++; ; gen++) {
        g_autoptr(GByteArray) a = crash_contents(gen, 'a');
        g_autoptr(GByteArray) b = crash_contents(gen, 'b');
        g_autoptr(GByteArray) c = crash_contents(gen, 'c');
        NvstoreBlobUpdate u[] = {
            { .name = "a", .type = "tpm", .data = a->data, .len = a->len },
            { .name = "b", .type = "raw", .data = b->data, .len = b->len },
            { .name = "c", .type = "raw", .data = c->data, .len = c->len,
              .remove = !(gen & 1) },
        };

        nvstore_blob_commit(blk, u, 3, &error_abort);
        g_assert_cmpint(write(fd, &gen, sizeof(gen)), ==, sizeof(gen));
    }
    return 0;
}

/* Check that the image holds generation *@gen or *@gen + 1; update it */
static void crash_verify(const char *path, uint64_t *gen)
{
    BlockBackend *blk = open_image(path, 0, &error_abort);
    g_autofree uint8_t *data = NULL;
    g_autoptr(GByteArray) a = NULL;
    g_autoptr(GByteArray) b = NULL;
    g_autoptr(GByteArray) c = NULL;
    uint64_t found;
    size_t len;
    int ret;

    g_assert_cmpint(nvstore_blob_read(blk, "a", &data, &len, &error_abort),
                    ==, 0);
    g_assert_cmpuint(len, >=, sizeof(found));
    memcpy(&found, data, sizeof(found));
    g_assert_cmpuint(found, >=, *gen);
    g_assert_cmpuint(found, <=, *gen + 1);
    a = crash_contents(found, 'a');
    b = crash_contents(found, 'b');
    c = crash_contents(found, 'c');
    assert_blob(blk, "a", a);
    assert_blob(blk, "b", b);
    g_clear_pointer(&data, g_free);
    ret = nvstore_blob_read(blk, "c", &data, &len, NULL);
    if (found & 1) {
        g_assert_cmpint(ret, ==, 0);
        g_assert_cmpmem(data, len, c->data, c->len);
    } else {
        g_assert_cmpint(ret, ==, -ENOENT);
    }
    blk_unref(blk);
    *gen = found;
}

/*
 * Power cuts.  A writer runs a random sequence of commits (creating,
 * replacing, growing and deleting small, empty and large blobs, one to
 * three at a time, and creating empty blobs, or looking them up) on
 * a disk in memory whose power fails at a random write, truncate or
 * flush request.  What survives is the disk as of its last flush plus
 * any subset of the requests since, in any order, some torn (see
 * nvstore-ramdisk.h).  The image must then open, check clean (or with
 * leaks only, which check -r repairs), and hold exactly the state before
 * the interrupted commit or the state after it, every blob included; the
 * next commit must work.  Each crash point continues from the image the
 * previous one left.  The seed is printed: NVSTORE_POWERCUT_SEED replays.
 */
#define PC_BLOBS 6
#define PC_DISK_MAX (64 * 1024 * 1024)
/* Internal snapshots of the qcow2 container kept at most */
#define PC_SNAPSHOTS 3

/*
 * The container: the nvstore image directly on the disk in memory, or
 * (/nvstore/power-cut-qcow2) inside a qcow2 image on it, whose internal
 * snapshots the writer takes, reverts to and deletes between commits
 */
static bool pc_qcow2;

typedef struct PcState {
    GByteArray *blob[PC_BLOBS];     /* NULL: absent */
} PcState;

typedef struct PcStats {
    int points, newer, older, leaks;
    /* qcow2: cuts that left leaked clusters, snapshots taken, reverted to */
    int qcow2_leaks, snapshots, reverts;
} PcStats;

/* An internal snapshot of the qcow2 container, and the state it holds */
typedef struct PcSnap {
    char *name;
    PcState st;
} PcSnap;

static const char *pc_name(int i)
{
    static const char *const names[PC_BLOBS] = {
        "tpm2-00.permall", "tpm2-00.savestate", "VarStore", "eeprom",
        "a", "a-long-name-of-a-blob-that-is-not-inline",
    };
    return names[i];
}

static const char *pc_type(int i)
{
    return i & 1 ? NVSTORE_BLOB_TYPE_RAW : NVSTORE_BLOB_TYPE_TPM;
}

static void pc_state_copy(PcState *dst, const PcState *src)
{
    int i;

    for (i = 0; i < PC_BLOBS; i++) {
        dst->blob[i] = src->blob[i] ? g_byte_array_ref(src->blob[i]) : NULL;
    }
}

static bool pc_state_equal(const PcState *a, const PcState *b)
{
    int i;

    for (i = 0; i < PC_BLOBS; i++) {
        if (!a->blob[i] != !b->blob[i] ||
            (a->blob[i] && (a->blob[i]->len != b->blob[i]->len ||
                            (a->blob[i]->len &&
                             memcmp(a->blob[i]->data, b->blob[i]->data,
                                    a->blob[i]->len))))) {
            return false;
        }
    }
    return true;
}

static void pc_state_clear(PcState *st)
{
    int i;

    for (i = 0; i < PC_BLOBS; i++) {
        g_clear_pointer(&st->blob[i], g_byte_array_unref);
    }
}

static GByteArray *pc_contents(GRand *rand)
{
    static const int max[] = { 0, 100, 8192, 150000 };
    int cls = g_rand_int_range(rand, 0, ARRAY_SIZE(max));
    size_t len = cls ? g_rand_int_range(rand, max[cls - 1] + 1,
                                        max[cls] + 1) : 0;
    GByteArray *b = g_byte_array_sized_new(len);
    size_t i;

    g_byte_array_set_size(b, len);
    for (i = 0; i < len; i++) {
        b->data[i] = g_rand_int(rand);
    }
    return b;
}

/* Open an nvstore node over @disk */
/* The secret that opens the images of pc_open(), or NULL */
static const char *pc_key;
/* Open with wipe-freed=off */
static bool pc_no_wipe;

static BlockBackend *pc_open(NvstoreRamdisk *disk, int flags, Error **errp)
{
    static unsigned nb_disks;
    g_autofree char *node = g_strdup_printf("pc-disk%u", nb_disks++);
    QDict *options = qdict_new();
    BlockDriverState *bs;
    BlockBackend *blk;

    bs = nvstore_ramdisk_open(disk, node, flags, &error_abort);
    qdict_put_str(options, "driver", "nvstore");
    if (pc_key) {
        qdict_put_str(options, "encrypt.key-secret", pc_key);
    }
    if (pc_no_wipe) {
        qdict_put_str(options, NVSTORE_OPT_WIPE_FREED, "off");
    }
    if (pc_qcow2) {
        qdict_put_str(options, "file.driver", "qcow2");
        qdict_put_str(options, "file.file", node);
    } else {
        qdict_put_str(options, "file", node);
    }
    blk = blk_new_open(NULL, NULL, options, flags, errp);
    bdrv_unref(bs);
    return blk;
}

static bool pc_state_matches(BlockBackend *blk, const PcState *st);

static void pc_snap_free(gpointer p)
{
    PcSnap *sn = p;

    g_free(sn->name);
    pc_state_clear(&sn->st);
    g_free(sn);
}

static GPtrArray *pc_snaps_copy(GPtrArray *snaps)
{
    GPtrArray *copy = g_ptr_array_new_with_free_func(pc_snap_free);
    guint i;

    for (i = 0; i < snaps->len; i++) {
        PcSnap *src = g_ptr_array_index(snaps, i);
        PcSnap *sn = g_new0(PcSnap, 1);

        sn->name = g_strdup(src->name);
        pc_state_copy(&sn->st, &src->st);
        g_ptr_array_add(copy, sn);
    }
    return copy;
}

/*
 * Between two commits, take an internal snapshot of the qcow2 container
 * of @blk's nvstore node (deleting the oldest beyond PC_SNAPSHOTS), or
 * revert to one of @snaps: then @cur is its state, and the image must
 * hold it.  Counted in @stats, if not NULL.
 */
static void pc_snapshot_op(BlockBackend *blk, GRand *rand, GPtrArray *snaps,
                           PcState *cur, PcStats *stats)
{
    BlockDriverState *bs = blk_bs(blk);
    int ret;

    if (snaps->len && g_rand_boolean(rand)) {
        PcSnap *sn = g_ptr_array_index(snaps,
                                       g_rand_int_range(rand, 0, snaps->len));

        bdrv_drain_all_begin();
        ret = bdrv_snapshot_goto(bs, sn->name, &error_abort);
        bdrv_drain_all_end();
        g_assert_cmpint(ret, ==, 0);
        pc_state_clear(cur);
        pc_state_copy(cur, &sn->st);
        g_assert_true(pc_state_matches(blk, cur));
        if (stats) {
            stats->reverts++;
        }
    } else {
        QEMUSnapshotInfo info = { 0 };
        PcSnap *sn = g_new0(PcSnap, 1);

        sn->name = g_strdup_printf("s%08x", g_rand_int(rand));
        pc_state_copy(&sn->st, cur);
        pstrcpy(info.name, sizeof(info.name), sn->name);
        bdrv_drain_all_begin();
        bdrv_graph_rdlock_main_loop();
        ret = bdrv_snapshot_create(bs, &info);
        if (ret == 0 && snaps->len == PC_SNAPSHOTS) {
            PcSnap *oldest = g_ptr_array_index(snaps, 0);

            ret = bdrv_snapshot_delete(bs, NULL, oldest->name, &error_abort);
            g_ptr_array_remove_index(snaps, 0);
        }
        bdrv_graph_rdunlock_main_loop();
        bdrv_drain_all_end();
        g_assert_cmpint(ret, ==, 0);
        g_ptr_array_add(snaps, sn);
        if (stats) {
            stats->snapshots++;
        }
    }
}

/*
 * Run the writer of @seq_seed on @image from state @st, with the qcow2
 * container's snapshots @snaps.  Returns the number of write, truncate
 * and flush requests; appends those that commits send to @commit_reqs,
 * if not NULL.  If the power fails, at request @cut (a request of a
 * commit), fills @old and @new with the states before and after the
 * interrupted commit, returns the disk in @crash, and the snapshots then
 * in @snaps.
 */
static uint64_t pc_writer(GByteArray *image, const PcState *st,
                          GPtrArray **snaps, guint32 seq_seed, uint64_t cut,
                          GRand *crash_rand, GByteArray **crash, PcState *old,
                          PcState *new, GArray *commit_reqs, PcStats *stats)
{
    g_autoptr(GRand) rand = g_rand_new_with_seed(seq_seed);
    NvstoreRamdisk *disk = nvstore_ramdisk_new(image->data, image->len,
                                               PC_DISK_MAX);
    g_autoptr(GPtrArray) my_snaps = pc_snaps_copy(*snaps);
    BlockBackend *blk;
    PcState cur = { 0 };
    uint64_t requests;
    int op, nb_ops = g_rand_int_range(rand, 1, 6);

    /* What qcow2 assumes of a disk; nvstore assumes nothing */
    nvstore_ramdisk_set_atomic_sectors(disk, pc_qcow2);
    nvstore_ramdisk_cut_power(disk, cut, crash_rand);
    blk = pc_open(disk, BDRV_O_RDWR, &error_abort);
    pc_state_copy(&cur, st);
    for (op = 0; op < nb_ops; op++) {
        NvstoreBlobUpdate u[3];
        PcState next = { 0 };
        bool done[PC_BLOBS] = { false };
        int n = g_rand_int_range(rand, 1, 4), k, ret;
        uint64_t before = nvstore_ramdisk_requests(disk), r;
        Error *err = NULL;

        if (pc_qcow2 && g_rand_int_range(rand, 0, 4) == 0) {
            pc_snapshot_op(blk, rand, my_snaps, &cur, stats);
            continue;
        }
        pc_state_copy(&next, &cur);
        if (g_rand_int_range(rand, 0, 6) == 0) {
            /* Create an empty blob with its type, or look it up */
            NvstoreBlobUpdate empty;
            NvstoreBlobInfo info;

            k = g_rand_int_range(rand, 0, PC_BLOBS);
            empty = (NvstoreBlobUpdate) {
                .name = pc_name(k), .type = pc_type(k),
            };
            if (!next.blob[k]) {
                next.blob[k] = g_byte_array_new();
                ret = nvstore_blob_commit(blk, &empty, 1, &err);
            } else {
                ret = nvstore_blob_get_info(blk, pc_name(k), &info,
                                            &error_abort);
                g_assert_cmpstr(info.type, ==, pc_type(k));
                nvstore_blob_info_clear(&info);
            }
        } else {
            for (k = 0; k < n; k++) {
                int i;

                do {
                    i = g_rand_int_range(rand, 0, PC_BLOBS);
                } while (done[i]);
                done[i] = true;
                u[k] = (NvstoreBlobUpdate) {
                    .name = pc_name(i), .type = pc_type(i),
                };
                g_clear_pointer(&next.blob[i], g_byte_array_unref);
                if (cur.blob[i] && g_rand_int_range(rand, 0, 4) == 0) {
                    u[k].remove = true;
                } else {
                    next.blob[i] = pc_contents(rand);
                    u[k].data = next.blob[i]->data;
                    u[k].len = next.blob[i]->len;
                }
            }
            ret = nvstore_blob_commit(blk, u, n, &err);
        }
        for (r = before + 1; commit_reqs &&
             r <= nvstore_ramdisk_requests(disk); r++) {
            g_array_append_val(commit_reqs, r);
        }
        if (ret < 0) {
            /* Only the power cut makes a commit fail */
            g_assert_nonnull(nvstore_ramdisk_crash_image(disk));
            g_assert_nonnull(err);
            error_free(err);
            pc_state_copy(old, &cur);
            pc_state_copy(new, &next);
            *crash = g_byte_array_ref(nvstore_ramdisk_crash_image(disk));
            pc_state_clear(&next);
            break;
        }
        pc_state_clear(&cur);
        cur = next;
    }
    pc_state_clear(&cur);
    blk_unref(blk);
    requests = nvstore_ramdisk_requests(disk);
    nvstore_ramdisk_free(disk);
    if (cut) {
        g_ptr_array_unref(*snaps);
        *snaps = g_steal_pointer(&my_snaps);
    }
    return requests;
}

static bool pc_state_matches(BlockBackend *blk, const PcState *st)
{
    g_auto(GStrv) names = nvstore_blob_list(blk, &error_abort);
    int i, n = 0;

    for (i = 0; i < PC_BLOBS; i++) {
        g_autofree uint8_t *data = NULL;
        NvstoreBlobInfo info;
        size_t len;
        int ret = nvstore_blob_read(blk, pc_name(i), &data, &len, NULL);

        if (!st->blob[i]) {
            if (ret != -ENOENT) {
                return false;
            }
            continue;
        }
        n++;
        if (ret < 0 || len != st->blob[i]->len ||
            (len && memcmp(data, st->blob[i]->data, len))) {
            return false;
        }
        /* Each blob keeps the type it was created with */
        g_assert_cmpint(nvstore_blob_get_info(blk, pc_name(i), &info,
                                              &error_abort), ==, 0);
        g_assert_cmpstr(info.type, ==, pc_type(i));
        nvstore_blob_info_clear(&info);
    }
    return g_strv_length(names) == n;
}

static void pc_check(BlockBackend *blk, BdrvCheckResult *res,
                     BdrvCheckMode fix)
{
    memset(res, 0, sizeof(*res));
    bdrv_graph_rdlock_main_loop();
    g_assert_cmpint(bdrv_check(blk_bs(blk), res, fix), ==, 0);
    bdrv_graph_rdunlock_main_loop();
    g_assert_cmpint(res->corruptions, ==, 0);
    g_assert_cmpint(res->check_errors, ==, 0);
}

/*
 * After the crash: the image holds @old or @new; check and repair it.
 * Returns the image after the repair and a commit, in @image, and its
 * state in @st.
 */
/*
 * qemu-img check of the qcow2 container of @image, with @fix (repairs go
 * to @image): on a node of its own opened for check, once (a node that
 * has read qcow2's snapshot table leaks it when check reads it again)
 */
static BdrvCheckResult pc_check_qcow2_once(GByteArray **image,
                                           BdrvCheckMode fix)
{
    static unsigned nb_disks;
    g_autofree char *node = g_strdup_printf("pc-check%u", nb_disks++);
    NvstoreRamdisk *disk = nvstore_ramdisk_new((*image)->data, (*image)->len,
                                               PC_DISK_MAX);
    QDict *options = qdict_new();
    int flags = BDRV_O_RDWR | BDRV_O_CHECK;
    BlockDriverState *bs = nvstore_ramdisk_open(disk, node, flags,
                                                &error_abort);
    BlockBackend *blk;
    BdrvCheckResult res;

    qdict_put_str(options, "driver", "qcow2");
    qdict_put_str(options, "file", node);
    blk = blk_new_open(NULL, NULL, options, flags, &error_abort);
    bdrv_unref(bs);
    pc_check(blk, &res, fix);
    blk_unref(blk);
    g_byte_array_unref(*image);
    *image = g_byte_array_ref(nvstore_ramdisk_contents(disk));
    nvstore_ramdisk_free(disk);
    return res;
}

/*
 * The qcow2 container of @image checks clean, but for clusters leaked,
 * which check -r repairs in @image
 */
static void pc_check_qcow2(GByteArray **image, PcStats *stats)
{
    if (pc_check_qcow2_once(image, 0).leaks) {
        stats->qcow2_leaks++;
        pc_check_qcow2_once(image, BDRV_FIX_LEAKS);
        g_assert_cmpint(pc_check_qcow2_once(image, 0).leaks, ==, 0);
    }
}

static void pc_verify(GByteArray **image, PcState *st, const PcState *old,
                      const PcState *new, PcStats *stats)
{
    NvstoreRamdisk *disk;
    BlockBackend *blk;

    if (pc_qcow2) {
        pc_check_qcow2(image, stats);
    }
    disk = nvstore_ramdisk_new((*image)->data, (*image)->len, PC_DISK_MAX);
    blk = pc_open(disk, BDRV_O_RDWR, &error_abort);
    g_autoptr(GByteArray) probe = g_byte_array_new();
    NvstoreBlobUpdate u = {
        .name = "probe", .type = NVSTORE_BLOB_TYPE_RAW,
    };
    BdrvCheckResult res;

    pc_state_clear(st);
    if (pc_state_matches(blk, new)) {
        pc_state_copy(st, new);
        stats->newer++;
    } else {
        g_assert_true(pc_state_matches(blk, old));
        pc_state_copy(st, old);
        stats->older++;
    }
    pc_check(blk, &res, 0);
    if (res.leaks) {
        stats->leaks++;
        pc_check(blk, &res, BDRV_FIX_LEAKS | BDRV_FIX_ERRORS);
        pc_check(blk, &res, 0);
        g_assert_cmpint(res.leaks, ==, 0);
    }

    /* The next commit works, and the state is intact after it */
    g_byte_array_append(probe, (const uint8_t *)"probe", 5);
    u.data = probe->data;
    u.len = probe->len;
    g_assert_cmpint(nvstore_blob_commit(blk, &u, 1, &error_abort), ==, 0);
    u.remove = true;
    g_assert_cmpint(nvstore_blob_commit(blk, &u, 1, &error_abort), ==, 0);
    g_assert_true(pc_state_matches(blk, st));
    blk_unref(blk);
    g_byte_array_unref(*image);
    *image = g_byte_array_ref(nvstore_ramdisk_contents(disk));
    nvstore_ramdisk_free(disk);
}

/*
 * @points power cuts, each from the image the previous one left; the
 * seed from NVSTORE_POWERCUT_SEED, or random
 */
static NvstoreRamdisk *new_ramdisk_image_encrypted(void);

static void pc_run(int points)
{
    const char *env_seed = g_getenv("NVSTORE_POWERCUT_SEED");
    guint32 seed = g_test_rand_int();
    g_autoptr(GRand) rand = NULL;
    g_autoptr(GPtrArray) snaps = g_ptr_array_new_with_free_func(pc_snap_free);
    g_autofree char *path = NULL;
    g_autofree char *buf = NULL;
    GByteArray *image;
    PcState st = { 0 };
    PcStats stats = { 0 };
    gsize len;

    if (env_seed && qemu_strtoui(env_seed, NULL, 0, &seed) < 0) {
        g_error("NVSTORE_POWERCUT_SEED=%s: not a seed", env_seed);
    }
    rand = g_rand_new_with_seed(seed);

    g_test_message("power cuts%s%s: NVSTORE_POWERCUT_SEED=%" PRIu32
                   " points %d", pc_qcow2 ? " through qcow2" : "",
                   pc_key ? " of an encrypted image" : "", seed, points);
    image = g_byte_array_new();
    if (pc_key) {
        NvstoreRamdisk *disk = new_ramdisk_image_encrypted();

        assert(!pc_qcow2 && !strcmp(pc_key, "key-old"));
        g_byte_array_append(image, nvstore_ramdisk_contents(disk)->data,
                            nvstore_ramdisk_contents(disk)->len);
        nvstore_ramdisk_free(disk);
    } else {
        path = pc_qcow2 ? create_image_in_qcow2() : create_image();
        g_assert_true(g_file_get_contents(path, &buf, &len, NULL));
        unlink(path);
        g_byte_array_append(image, (const uint8_t *)buf, len);
    }

    while (stats.points < points) {
        guint32 seq_seed = g_rand_int(rand);
        g_autoptr(GArray) commit_reqs = g_array_new(false, false,
                                                    sizeof(uint64_t));
        GByteArray *crash = NULL;
        PcState old = { 0 }, new = { 0 };
        uint64_t n, cut;

        /* The requests of this sequence's commits; cut at one of them */
        n = pc_writer(image, &st, &snaps, seq_seed, 0, NULL, NULL, NULL,
                      NULL, commit_reqs, NULL);
        if (!commit_reqs->len) {
            /* Only look-ups and snapshots: nothing to cut */
            continue;
        }
        cut = g_array_index(commit_reqs, uint64_t,
                            g_rand_int_range(rand, 0, commit_reqs->len));
        g_test_message("point %d: cut at request %" PRIu64 " of %" PRIu64,
                       stats.points, cut, n);
        n = pc_writer(image, &st, &snaps, seq_seed, cut, rand, &crash, &old,
                      &new, NULL, &stats);
        g_assert_cmpuint(n, >=, cut);
        g_assert_nonnull(crash);
        g_byte_array_unref(image);
        image = crash;
        pc_verify(&image, &st, &old, &new, &stats);
        pc_state_clear(&old);
        pc_state_clear(&new);
        stats.points++;
    }
    g_test_message("%d power cuts: %d at the state after the interrupted "
                   "commit, %d before it; %d left leaks that check -r "
                   "repaired", stats.points, stats.newer, stats.older,
                   stats.leaks);
    if (pc_qcow2) {
        g_test_message("qcow2: %d snapshots taken, %d reverted to; %d cuts "
                       "left leaked clusters that check -r repaired",
                       stats.snapshots, stats.reverts, stats.qcow2_leaks);
    }
    /* Both outcomes happen: the cuts fall inside commits */
    if (points >= 100) {
        g_assert_cmpint(stats.newer, >, 0);
        g_assert_cmpint(stats.older, >, 0);
        g_assert_true(!pc_qcow2 || (stats.snapshots && stats.reverts));
    }
    pc_state_clear(&st);
    g_byte_array_unref(image);
}

static void test_power_cut(void)
{
    pc_run(env_int("NVSTORE_POWERCUT_POINTS", 1000));
}

/*
 * The same through a qcow2 container, as the TPM's state is kept: qcow2
 * grows, allocates clusters and has its own metadata and flushes, and
 * the writer takes, reverts to and deletes internal snapshots between
 * commits.  Each cut also leaves the qcow2 image checking clean (leaked
 * clusters aside, which check -r repairs), and every snapshot holds the
 * state it was taken of.
 */
static void test_power_cut_qcow2(void)
{
    pc_qcow2 = true;
    pc_run(env_int("NVSTORE_POWERCUT_QCOW2_POINTS", 500));
    pc_qcow2 = false;
}

/*
 * The same on an encrypted image: each commit also seals its blobs and
 * authenticates its directory, and closing authenticates the close
 * record; a cut leaves the old state or the new one, authenticated
 */
static void test_power_cut_encrypted(void)
{
    pc_key = "key-old";
    pc_run(env_int("NVSTORE_POWERCUT_ENCRYPTED_POINTS", 300));
    pc_key = NULL;
}

/*
 * A fault at each request of each update path.  For every write,
 * truncate and flush request that creating, replacing, deleting or
 * growing blobs (alone or together in one commit), creating an empty blob,
 * or repairing a torn slot sends to the child,
 * in turn: that request fails with EIO, then with ENOSPC; a failed write
 * may still have reached the disk, all of it, some of it or nothing (see
 * nvstore_ramdisk_fail_request()).  The caller gets the error; the node
 * still reads the old state; the disk holds the old state or the new one,
 * whole, and so does every image a power cut would now leave; the next
 * update in the same process works, is durable, and is what a reopen
 * finds; and a power cut at any request of that next update leaves the
 * old, the failed or the next state, never a mix.
 */
typedef struct FaultPath {
    const char *what;
    int n;
    int blob[3];
    int size[3];        /* -1: delete */
} FaultPath;

static const FaultPath fault_paths[] = {
    { "create", 1, { 3 }, { 3000 } },
    { "replace", 1, { 0 }, { 6000 } },
    { "delete", 1, { 1 }, { -1 } },
    { "grow", 1, { 2 }, { 300000 } },
    { "create, replace and delete", 3, { 5, 0, 2 }, { 20000, 10, -1 } },
    { "create empty", 1, { 4 }, { 0 } },
};

/* Run @path from state @cur with the data of round @round; fill @next */
static int fault_update(BlockBackend *blk, const FaultPath *path, int round,
                        const PcState *cur, PcState *next, Error **errp)
{
    NvstoreBlobUpdate u[3];
    int i;

    pc_state_clear(next);
    pc_state_copy(next, cur);
    for (i = 0; i < path->n; i++) {
        int b = path->blob[i];

        g_clear_pointer(&next->blob[b], g_byte_array_unref);
        u[i] = (NvstoreBlobUpdate) { .name = pc_name(b), .type = pc_type(b) };
        if (path->size[i] < 0) {
            u[i].remove = true;
        } else {
            /*
             * The same size each round: the next update's data and
             * directory land where the failed one's did
             */
            next->blob[b] = pattern(path->size[i], b * 16 + round);
            u[i].data = next->blob[b]->data;
            u[i].len = next->blob[b]->len;
        }
    }
    return nvstore_blob_commit(blk, u, path->n, errp);
}

/*
 * Open @image (a copy) and check it: no corruption, leaks repaired.
 * Returns the index of the first of the @n states @st it holds; fails if
 * it holds none of them.
 */
static int image_state(GByteArray *image, const PcState *const *st, int n)
{
    NvstoreRamdisk *copy = nvstore_ramdisk_new(image->data, image->len,
                                               PC_DISK_MAX);
    BlockBackend *blk = pc_open(copy, BDRV_O_RDWR, &error_abort);
    BdrvCheckResult res;
    int i;

    i = 0;
    while (i < n && !pc_state_matches(blk, st[i])) {
        i++;
    }
    g_assert_cmpint(i, <, n);
    pc_check(blk, &res, BDRV_FIX_LEAKS | BDRV_FIX_ERRORS);
    pc_check(blk, &res, 0);
    g_assert_cmpint(res.leaks, ==, 0);
    g_assert_true(pc_state_matches(blk, st[i]));
    blk_unref(blk);
    nvstore_ramdisk_free(copy);
    return i;
}

/* What reads of @disk return holds @st */
static void assert_disk_state(NvstoreRamdisk *disk, const PcState *st)
{
    image_state(nvstore_ramdisk_contents(disk), &st, 1);
}

/*
 * Every one of @samples images a power cut would now leave on @disk holds
 * one of the @n states @st; returns a bit mask of those seen
 */
static unsigned assert_power_cut_states(NvstoreRamdisk *disk, GRand *rand,
                                        int samples, const PcState *const *st,
                                        int n)
{
    unsigned seen = 0;
    int i;

    for (i = 0; i < samples; i++) {
        g_autoptr(GByteArray) img = nvstore_ramdisk_power_cut_image(disk,
                                                                    rand);

        seen |= 1u << image_state(img, st, n);
    }
    return seen;
}

/* A new, empty image on an in-memory disk */
static NvstoreRamdisk *new_ramdisk_image(void)
{
    g_autofree char *path = create_image();
    g_autofree char *buf = NULL;
    gsize len;

    g_assert_true(g_file_get_contents(path, &buf, &len, NULL));
    unlink(path);
    return nvstore_ramdisk_new(buf, len, PC_DISK_MAX);
}

/* A new, empty image encrypted with secret "key-old", in memory */
static NvstoreRamdisk *new_ramdisk_image_encrypted(void)
{
    g_autofree char *opts =
        g_strdup("encrypt.key-secret=key-old,encrypt.iter-time=1");
    g_autofree char *path = NULL;
    g_autofree char *buf = NULL;
    int fd = g_file_open_tmp("nvstore-test-XXXXXX", &path, NULL);
    gsize len;

    g_assert_cmpint(fd, >=, 0);
    close(fd);
    bdrv_img_create(path, "nvstore", NULL, NULL, opts, UINT64_C(-1), 0, true,
                    &error_abort);
    g_assert_true(g_file_get_contents(path, &buf, &len, NULL));
    unlink(path);
    return nvstore_ramdisk_new(buf, len, PC_DISK_MAX);
}

/* An image holding @st: blobs 0, 1 and 2 */
static GByteArray *fault_base_image(PcState *st)
{
    static const int sizes[] = { 5000, 70, 9000 };
    NvstoreRamdisk *disk = new_ramdisk_image();
    BlockBackend *blk;
    GByteArray *image;
    int i;

    blk = pc_open(disk, BDRV_O_RDWR, &error_abort);
    for (i = 0; i < ARRAY_SIZE(sizes); i++) {
        st->blob[i] = pattern(sizes[i], i);
        put(blk, pc_name(i), pc_type(i), st->blob[i]);
    }
    blk_unref(blk);
    image = g_byte_array_new();
    g_byte_array_append(image, nvstore_ramdisk_contents(disk)->data,
                        nvstore_ramdisk_contents(disk)->len);
    nvstore_ramdisk_free(disk);
    return image;
}

/*
 * One fault of test_fault_each_path(): @path on @image from @base fails
 * at request @k with @errno_value, what reached the disk chosen by a
 * GRand of @fault_seed; then the next update runs, with the power cut at
 * its request @cut (0: never), @rand choosing what survives.  Fills
 * @next and @next2, the states after the failed and the next update, and
 * returns the disk, and in *@before the number of requests before the
 * next update.
 */
static NvstoreRamdisk *fault_run(GByteArray *image, const FaultPath *path,
                                 const PcState *base, uint64_t k,
                                 int errno_value, guint32 fault_seed,
                                 uint64_t cut, GRand *rand, PcState *next,
                                 PcState *next2, uint64_t *before)
{
    g_autoptr(GRand) fault_rand = g_rand_new_with_seed(fault_seed);
    NvstoreRamdisk *disk = nvstore_ramdisk_new(image->data, image->len,
                                               PC_DISK_MAX);
    const PcState *old_or_new[] = { base, next };
    BlockBackend *blk;
    Error *err = NULL;
    int ret;

    nvstore_ramdisk_fail_request(disk, k, errno_value, fault_rand);
    blk = pc_open(disk, BDRV_O_RDWR, &error_abort);
    g_assert_cmpint(fault_update(blk, path, 0, base, next, &err), ==,
                    -errno_value);
    g_assert_nonnull(strstr(error_get_pretty(err), strerror(errno_value)));
    error_free(err);

    /* The node has the old state; the disk the old or the new, whole */
    g_assert_true(pc_state_matches(blk, base));
    if (!cut) {
        image_state(nvstore_ramdisk_contents(disk), old_or_new, 2);
        assert_power_cut_states(disk, rand, 4, old_or_new, 2);
    }

    /* The fault is gone: the next update works */
    *before = nvstore_ramdisk_requests(disk);
    if (cut) {
        nvstore_ramdisk_cut_power(disk, *before + cut, rand);
    }
    ret = fault_update(blk, path, 1, base, next2, cut ? NULL : &error_abort);
    g_assert_cmpint(ret, ==, nvstore_ramdisk_crash_image(disk) ? -EIO : 0);
    if (!ret) {
        g_assert_true(pc_state_matches(blk, next2));
    }
    blk_unref(blk);
    /* @fault_rand goes now */
    nvstore_ramdisk_fail_request(disk, 0, 0, NULL);
    return disk;
}

static void test_fault_each_path(void)
{
    static const int errnos[] = { EIO, ENOSPC };
    guint32 seed = g_test_rand_int();
    g_autoptr(GRand) rand = g_rand_new_with_seed(seed);
    PcState base = { 0 }, next = { 0 }, next2 = { 0 };
    g_autoptr(GByteArray) image = fault_base_image(&base);
    const PcState *all[] = { &base, &next, &next2 };
    int p, e, faults = 0, cuts = 0;
    unsigned seen = 0;
    uint64_t k, j, n, n2, before;

    g_test_message("faults: GRand seed %" PRIu32 " (the --seed of the "
                   "run replays it)", seed);
    for (p = 0; p < ARRAY_SIZE(fault_paths); p++) {
        const FaultPath *path = &fault_paths[p];
        NvstoreRamdisk *disk;
        BlockBackend *blk;

        /*
         * Count its requests (not the close record's, which closing the
         * node writes); once done, it is durable
         */
        disk = nvstore_ramdisk_new(image->data, image->len, PC_DISK_MAX);
        blk = pc_open(disk, BDRV_O_RDWR, &error_abort);
        g_assert_cmpint(fault_update(blk, path, 0, &base, &next,
                                     &error_abort), ==, 0);
        n = nvstore_ramdisk_requests(disk);
        blk_unref(blk);
        assert_power_cut_states(disk, rand, 8, all + 1, 1);
        nvstore_ramdisk_free(disk);
        g_test_message("%s: %" PRIu64 " requests", path->what, n);
        g_assert_cmpuint(n, >=, 2);

        for (k = 1; k <= n; k++) {
            for (e = 0; e < ARRAY_SIZE(errnos); e++) {
                guint32 fault_seed = g_rand_int(rand);

                disk = fault_run(image, path, &base, k, errnos[e],
                                 fault_seed, 0, rand, &next, &next2,
                                 &before);
                faults++;
                /* The next update is durable, and what a reopen finds */
                assert_disk_state(disk, &next2);
                g_assert_cmpuint(assert_power_cut_states(disk, rand, 4,
                                                         all + 2, 1), ==, 1);
                n2 = nvstore_ramdisk_requests(disk) - before;
                nvstore_ramdisk_free(disk);

                /* A power cut at each request of the next update */
                for (j = 1; j <= n2; j++) {
                    int i;

                    disk = fault_run(image, path, &base, k, errnos[e],
                                     fault_seed, j, rand, &next, &next2,
                                     &before);
                    i = image_state(nvstore_ramdisk_crash_image(disk), all,
                                    3);
                    /* Which one, where the paths' two updates differ */
                    if (!pc_state_equal(&next, &next2)) {
                        seen |= 1u << i;
                    }
                    nvstore_ramdisk_free(disk);
                    cuts++;
                }
            }
        }
    }
    g_test_message("%d faults injected, then %d power cuts in the next "
                   "update", faults, cuts);
    /*
     * Cuts left the old, the failed (it did reach the disk) and the next
     * state, on the paths (create, replace, grow, the three at once)
     * where the failed and the next update differ
     */
    g_assert_cmpuint(seen, ==, 7);
    pc_state_clear(&base);
    pc_state_clear(&next);
    pc_state_clear(&next2);
}

/*
 * check -r zeroes a torn slot (a write and a flush): a fault at either is
 * reported as a check error and leaves every blob as it was; once the
 * fault is gone, the repair works.
 */
static void test_fault_repair(void)
{
    static const int errnos[] = { EIO, ENOSPC };
    g_autoptr(GRand) rand = g_rand_new_with_seed(g_test_rand_int());
    PcState base = { 0 };
    const PcState *st = &base;
    g_autoptr(GByteArray) image = fault_base_image(&base);
    uint64_t gen[NVSTORE_NB_SLOTS];
    int i, k, e, older;

    /* Damage the slot of the older commit */
    for (i = 0; i < NVSTORE_NB_SLOTS; i++) {
        gen[i] = ldq_be_p(image->data + NVSTORE_SLOT_OFFSET(i) +
                          offsetof(NvstoreSlot, generation));
    }
    older = gen[0] < gen[1] ? 0 : 1;
    image->data[NVSTORE_SLOT_OFFSET(older) +
                offsetof(NvstoreSlot, generation) + 7] ^= 0x80;

    for (k = 1; k <= 2; k++) {
        for (e = 0; e < ARRAY_SIZE(errnos); e++) {
            NvstoreRamdisk *disk = nvstore_ramdisk_new(image->data,
                                                       image->len,
                                                       PC_DISK_MAX);
            BlockBackend *blk;
            BdrvCheckResult res = { 0 };

            nvstore_ramdisk_fail_request(disk, k, errnos[e], NULL);
            blk = pc_open(disk, BDRV_O_RDWR, &error_abort);
            bdrv_graph_rdlock_main_loop();
            g_assert_cmpint(bdrv_check(blk_bs(blk), &res,
                                       BDRV_FIX_LEAKS | BDRV_FIX_ERRORS),
                            ==, 0);
            bdrv_graph_rdunlock_main_loop();
            g_assert_cmpint(res.check_errors, ==, 1);
            g_assert_cmpint(res.leaks, ==, 1);
            g_assert_cmpint(res.leaks_fixed, ==, 0);
            g_assert_cmpint(res.corruptions, ==, 0);
            g_assert_true(pc_state_matches(blk, &base));
            assert_disk_state(disk, &base);
            assert_power_cut_states(disk, rand, 8, &st, 1);

            /*
             * Without the fault, the repair works (after a failed flush,
             * the zeroes were written: nothing is left to repair)
             */
            pc_check(blk, &res, BDRV_FIX_LEAKS | BDRV_FIX_ERRORS);
            g_assert_cmpint(res.leaks_fixed, ==, k == 1);
            pc_check(blk, &res, 0);
            g_assert_cmpint(res.leaks, ==, 0);
            g_assert_true(pc_state_matches(blk, &base));
            blk_unref(blk);
            assert_disk_state(disk, &base);
            nvstore_ramdisk_free(disk);
        }
    }
    pc_state_clear(&base);
}

/*
 * An inactive node (as on either side of a migration) refuses commits
 * with a clear error and writes nothing; once active again, it commits.
 * Inactivation writes the close record: the destination of a migration
 * finds the source's last commit recorded complete.
 */
static void test_inactive(void)
{
    g_autofree char *path = create_image();
    g_autoptr(GByteArray) a = pattern(3000, 1);
    g_autoptr(GByteArray) b = pattern(4000, 2);
    g_autofree char *before = NULL, *after = NULL;
    gsize before_len, after_len;
    BlockBackend *blk = open_image(path, BDRV_O_RDWR, &error_abort);
    NvstoreBlobUpdate u = {
        .name = "a", .type = "raw", .data = b->data, .len = b->len,
    };
    Error *err = NULL;

    put(blk, "a", "raw", a);
    g_assert_true(g_file_get_contents(path, &before, &before_len, NULL));
    g_assert_cmpmem(before + NVSTORE_CLOSE_OFFSET, 8, "\0\0\0\0\0\0\0\0",
                    8);
    g_clear_pointer(&before, g_free);

    blk_set_force_allow_inactivate(blk);
    g_assert_cmpint(bdrv_inactivate(blk_bs(blk), &error_abort), ==, 0);
    g_assert_true(g_file_get_contents(path, &before, &before_len, NULL));
    g_assert_cmpmem(before + NVSTORE_CLOSE_OFFSET, 8, NVSTORE_CLOSE_MAGIC, 8);
    g_assert_cmpmem(before + NVSTORE_CLOSE_OFFSET + 8, 28,
                    before + NVSTORE_SLOT_OFFSET(1) + 8, 28);
    g_assert_cmpint(nvstore_blob_commit(blk, &u, 1, &err), ==, -EPERM);
    g_assert_cmpstr(error_get_pretty(err), ==, "The nvstore node is "
                    "inactive (migration): no writes until it is activated");
    error_free(err);
    err = NULL;
    /* It still reads */
    assert_blob(blk, "a", a);
    g_assert_true(g_file_get_contents(path, &after, &after_len, NULL));
    g_assert_cmpmem(before, before_len, after, after_len);

    bdrv_graph_rdlock_main_loop();
    g_assert_cmpint(bdrv_activate(blk_bs(blk), &error_abort), ==, 0);
    bdrv_graph_rdunlock_main_loop();
    put(blk, "a", "raw", b);
    assert_blob(blk, "a", b);
    blk_unref(blk);
    blk = open_image(path, 0, &error_abort);
    assert_blob(blk, "a", b);
    blk_unref(blk);
    unlink(path);
}

static const char *test_argv0;

static void test_crash_loop(void)
{
    int iterations = env_int("NVSTORE_CRASH_ITERATIONS", 1000);
    g_autofree char *path = create_image();
    g_autoptr(GRand) rand = g_rand_new_with_seed(g_test_rand_int());
    BlockBackend *blk = open_image(path, BDRV_O_RDWR, &error_abort);
    uint64_t gen = 1, start;
    int i, moved = 0, mid = 0;

    {
        g_autoptr(GByteArray) a = crash_contents(1, 'a');
        g_autoptr(GByteArray) b = crash_contents(1, 'b');
        g_autoptr(GByteArray) c = crash_contents(1, 'c');

        put(blk, "a", "tpm", a);
        put(blk, "b", "raw", b);
        put(blk, "c", "raw", c);
    }
    blk_unref(blk);

    for (i = 0; i < iterations; i++) {
        g_autofree char *gen_str = g_strdup_printf("%" PRIu64, gen);
        char *argv[] = {
            (char *)test_argv0, (char *)"--crash-writer", path, gen_str,
            NULL
        };
        g_autoptr(GError) gerr = NULL;
        uint64_t acked = gen, v;
        GPid pid;
        int out, status;

        g_assert_true(g_spawn_async_with_pipes(NULL, argv, NULL,
                                               G_SPAWN_DO_NOT_REAP_CHILD,
                                               NULL, NULL, &pid, NULL, &out,
                                               NULL, &gerr));
        /*
         * Once it has opened the image (which takes long in a sanitizer
         * build), long enough for none, one or several commits
         */
        {
            GPollFD pfd = { .fd = out, .events = G_IO_IN };

            /* A minute: the writer is stuck, not slow */
            g_assert_cmpint(g_poll(&pfd, 1, 60000), ==, 1);
        }
        g_assert_cmpint(read(out, &v, sizeof(v)), ==, sizeof(v));
        g_assert_cmpuint(v, ==, gen);
        g_usleep(g_rand_int_range(rand, 0, 40000));
        g_assert_cmpint(kill(pid, SIGKILL), ==, 0);
        g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
        g_assert_true(WIFSIGNALED(status));
        g_spawn_close_pid(pid);
        while (read(out, &v, sizeof(v)) == sizeof(v)) {
            acked = v;
        }
        close(out);

        /* The last acknowledged commit is there, or the one after it */
        start = acked;
        crash_verify(path, &acked);
        moved += acked != gen;
        mid += acked != start;
        gen = acked;
    }
    g_test_message("%d crash points, %d after progress, %d with a commit "
                   "done but not yet acknowledged, generation %" PRIu64,
                   iterations, moved, mid, gen);
    /* The loop crashed writers while they were committing */
    if (iterations >= 100) {
        g_assert_cmpint(moved, >, iterations / 4);
    }
    unlink(path);
}

/*
 * Group commits and write-back commits, with power cuts.  Users of one
 * nvstore node: blob nodes (nvstore-blob, write-back) of blobs "a" and
 * "b", and a device that commits blob "c" through the device API (or a
 * third blob node).  Writes to the blob nodes stay in memory; then one
 * commit takes all three: the device's commit of "c", a flush of "a", or
 * the commit that commit-delay starts after the first unflushed write.
 * A power cut at each request of that commit leaves "a", "b" and "c" all
 * old or all new.
 */

typedef enum GcTrigger {
    GC_DEVICE_COMMIT,
    GC_FLUSH,
    GC_TIMER,
    GC__MAX,
} GcTrigger;

static const char *const gc_trigger_names[] = {
    [GC_DEVICE_COMMIT] = "device commit",
    [GC_FLUSH] = "flush of a blob node",
    [GC_TIMER] = "commit-delay timer",
};

/* commit-delay of the blob nodes, in ms, when the timer commits */
#define GC_TIMER_DELAY 50

#define GC_SIZE 3000

static const char *const gc_names[] = { "a", "b", "c" };

/*
 * Blob node of blob @name over the nvstore node of @store, committing
 * @delay ms after the first unflushed write
 */
static BlockBackend *gc_blob_node(BlockBackend *store, const char *name,
                                  int delay)
{
    QDict *options = qdict_new();

    qdict_put_str(options, "driver", "nvstore-blob");
    qdict_put_str(options, "file", bdrv_get_node_name(blk_bs(store)));
    qdict_put_str(options, "blob", name);
    qdict_put_int(options, "commit-delay", delay);
    return blk_new_open(NULL, NULL, options, BDRV_O_RDWR, &error_abort);
}

/* Whether blobs a, b and c of @image all hold @pattern */
static bool gc_image_holds(GByteArray *image, uint8_t pattern)
{
    NvstoreRamdisk *disk = nvstore_ramdisk_new(image->data, image->len,
                                               PC_DISK_MAX);
    BlockBackend *blk = pc_open(disk, 0, &error_abort);
    bool all = true;
    size_t i, j;

    for (i = 0; i < ARRAY_SIZE(gc_names); i++) {
        g_autofree uint8_t *data = NULL;
        size_t len;

        g_assert_cmpint(nvstore_blob_read(blk, gc_names[i], &data, &len,
                                          &error_abort), ==, 0);
        g_assert_cmpuint(len, ==, GC_SIZE);
        for (j = 0; j < len; j++) {
            all &= data[j] == pattern;
        }
    }
    blk_unref(blk);
    nvstore_ramdisk_free(disk);
    return all;
}

/*
 * From @image (a, b and c holding 0x11), change a and b through their
 * blob nodes to 0x22, and c through the device API, in one commit that
 * the device makes (@trigger GC_DEVICE_COMMIT); or change c through a
 * blob node too, and commit all three with a flush of a's node
 * (GC_FLUSH) or let the commit-delay timer commit them (GC_TIMER).  Cut
 * the power at request @cut of that commit (0: never).  Returns the
 * number of requests of the commit, and the image after it or after the
 * cut.
 */
static uint64_t gc_run(GByteArray *image, GcTrigger trigger, uint64_t cut,
                       GRand *rand, GByteArray **after)
{
    NvstoreRamdisk *disk = nvstore_ramdisk_new(image->data, image->len,
                                               PC_DISK_MAX);
    BlockBackend *store = pc_open(disk, BDRV_O_RDWR, &error_abort);
    int delay = trigger == GC_TIMER ? GC_TIMER_DELAY : 1000;
    BlockBackend *a = gc_blob_node(store, "a", delay);
    BlockBackend *b = gc_blob_node(store, "b", delay);
    BlockBackend *c = NULL;
    g_autofree uint8_t *buf = g_malloc(GC_SIZE);
    NvstoreBlobUpdate u = {
        .name = "c", .type = NVSTORE_BLOB_TYPE_RAW, .data = buf,
        .len = GC_SIZE,
    };
    uint64_t before;
    int ret;

    memset(buf, 0x22, GC_SIZE);
    if (trigger != GC_DEVICE_COMMIT) {
        /* c is written through a blob node too */
        c = gc_blob_node(store, "c", delay);
    }
    g_assert_cmpint(blk_pwrite(a, 0, GC_SIZE, buf, 0), ==, 0);
    g_assert_cmpint(blk_pwrite(b, 0, GC_SIZE, buf, 0), ==, 0);
    if (c) {
        g_assert_cmpint(blk_pwrite(c, 0, GC_SIZE, buf, 0), ==, 0);
    }
    /* Nothing is written before the commit */
    before = nvstore_ramdisk_requests(disk);
    if (cut) {
        nvstore_ramdisk_cut_power(disk, before + cut, rand);
    }
    switch (trigger) {
    case GC_DEVICE_COMMIT:
        ret = nvstore_blob_commit(store, &u, 1, NULL);
        break;
    case GC_FLUSH:
        ret = blk_flush(a);
        break;
    case GC_TIMER:
        /* The timer starts the commit; the drain waits for its end */
        while (nvstore_ramdisk_requests(disk) == before) {
            aio_poll(qemu_get_aio_context(), true);
        }
        blk_drain(a);
        /* The timer's commit fails only if the power failed */
        ret = nvstore_ramdisk_crash_image(disk) ? -EIO : 0;
        break;
    default:
        g_assert_not_reached();
    }
    g_assert_cmpint(ret, ==, nvstore_ramdisk_crash_image(disk) ? -EIO : 0);
    if (nvstore_ramdisk_crash_image(disk)) {
        *after = g_byte_array_ref(nvstore_ramdisk_crash_image(disk));
    } else {
        *after = g_byte_array_ref(nvstore_ramdisk_contents(disk));
    }
    before = nvstore_ramdisk_requests(disk) - before;
    /* The blobs are dirty if the power failed: closing cannot commit */
    blk_unref(a);
    blk_unref(b);
    if (c) {
        blk_unref(c);
    }
    blk_unref(store);
    nvstore_ramdisk_free(disk);
    return before;
}

static void test_group_commit_power_cut(void)
{
    g_autoptr(GRand) rand = g_rand_new_with_seed(g_test_rand_int());
    g_autoptr(GByteArray) image = NULL;
    g_autofree uint8_t *old = g_malloc(GC_SIZE);
    unsigned counts[2] = { 0, 0 };
    GcTrigger trigger;

    /* a, b and c hold 0x11 */
    {
        NvstoreRamdisk *disk = new_ramdisk_image();
        BlockBackend *blk = pc_open(disk, BDRV_O_RDWR, &error_abort);
        NvstoreBlobUpdate u[3];
        int i;

        memset(old, 0x11, GC_SIZE);
        for (i = 0; i < 3; i++) {
            u[i] = (NvstoreBlobUpdate) {
                .name = gc_names[i],
                .type = NVSTORE_BLOB_TYPE_RAW, .data = old, .len = GC_SIZE,
            };
        }
        g_assert_cmpint(nvstore_blob_commit(blk, u, 3, &error_abort), ==, 0);
        blk_unref(blk);
        image = g_byte_array_ref(nvstore_ramdisk_contents(disk));
        nvstore_ramdisk_free(disk);
    }

    for (trigger = 0; trigger < GC__MAX; trigger++) {
        g_autoptr(GByteArray) done = NULL;
        uint64_t n = gc_run(image, trigger, 0, rand, &done), k;

        /* One commit for a, b and c: all new */
        g_assert_true(gc_image_holds(done, 0x22));
        /* Each request, ten times: what survives a cut varies */
        for (k = 1; k <= n * 10; k++) {
            g_autoptr(GByteArray) crash = NULL;
            bool is_new;

            gc_run(image, trigger, (k - 1) % n + 1, rand, &crash);
            is_new = gc_image_holds(crash, 0x22);
            g_assert_true(is_new || gc_image_holds(crash, 0x11));
            counts[is_new]++;
        }
        g_test_message("%s: %" PRIu64 " requests, each cut ten times",
                       gc_trigger_names[trigger], n);
    }
    g_test_message("power cuts: %u left the old state, %u the new one",
                   counts[0], counts[1]);
    g_assert_cmpuint(counts[0], >, 0);
}

/*
 * qemu-img amend -o delete-blob=a (bdrv_amend_options(), the path of
 * qemu-img amend) on an image with blobs "a" and "b", the power cut at
 * each request of its commit, ten times each: the image holds both
 * blobs, or "b" alone, and checks clean (leaks aside, which -r repairs).
 */
static uint64_t amend_run(GByteArray *image, uint64_t cut, GRand *rand,
                          GByteArray **after, const char *key,
                          const char *const *options)
{
    NvstoreRamdisk *disk = nvstore_ramdisk_new(image->data, image->len,
                                               PC_DISK_MAX);
    BlockBackend *blk;
    BlockDriverState *bs;
    QemuOpts *opts = qemu_opts_create(bdrv_find_format("nvstore")->amend_opts,
                                      NULL, 0, &error_abort);
    uint64_t before;
    Error *err = NULL;
    int i, ret;

    pc_key = key;
    blk = pc_open(disk, BDRV_O_RDWR, &error_abort);
    pc_key = NULL;
    bs = blk_bs(blk);
    before = nvstore_ramdisk_requests(disk);
    if (cut) {
        nvstore_ramdisk_cut_power(disk, before + cut, rand);
    }
    for (i = 0; options[i]; i += 2) {
        qemu_opt_set(opts, options[i], options[i + 1], &error_abort);
    }
    bdrv_graph_rdlock_main_loop();
    ret = bdrv_amend_options(bs, opts, NULL, NULL, false, &err);
    bdrv_graph_rdunlock_main_loop();
    qemu_opts_del(opts);
    if (nvstore_ramdisk_crash_image(disk)) {
        g_assert_cmpint(ret, <, 0);
        error_free(err);
        *after = g_byte_array_ref(nvstore_ramdisk_crash_image(disk));
    } else {
        g_assert_cmpint(ret, ==, 0);
        *after = g_byte_array_ref(nvstore_ramdisk_contents(disk));
    }
    before = nvstore_ramdisk_requests(disk) - before;
    blk_unref(blk);
    nvstore_ramdisk_free(disk);
    return before;
}

static const char *const amend_delete_a[] = { "delete-blob", "a", NULL };

static void test_amend_power_cut(void)
{
    g_autoptr(GRand) rand = g_rand_new_with_seed(g_test_rand_int());
    g_autoptr(GByteArray) a = pattern(5000, 0xa0);
    g_autoptr(GByteArray) b = pattern(3000, 0xb0);
    g_autoptr(GByteArray) image = NULL;
    g_autoptr(GByteArray) done = NULL;
    unsigned counts[2] = { 0, 0 };
    uint64_t n, k;

    {
        NvstoreRamdisk *disk = new_ramdisk_image();
        BlockBackend *blk = pc_open(disk, BDRV_O_RDWR, &error_abort);

        put(blk, "a", NVSTORE_BLOB_TYPE_RAW, a);
        put(blk, "b", NVSTORE_BLOB_TYPE_RAW, b);
        blk_unref(blk);
        image = g_byte_array_ref(nvstore_ramdisk_contents(disk));
        nvstore_ramdisk_free(disk);
    }
    n = amend_run(image, 0, rand, &done, NULL, amend_delete_a);
    g_assert_cmpuint(n, >, 0);
    for (k = 1; k <= n * 10; k++) {
        g_autoptr(GByteArray) crash = NULL;
        NvstoreRamdisk *disk;
        BlockBackend *blk;
        g_autofree uint8_t *data = NULL;
        BdrvCheckResult res;
        size_t len;
        int ret;

        amend_run(image, (k - 1) % n + 1, rand, &crash, NULL, amend_delete_a);
        disk = nvstore_ramdisk_new(crash->data, crash->len, PC_DISK_MAX);
        blk = pc_open(disk, BDRV_O_RDWR, &error_abort);
        assert_blob(blk, "b", b);
        ret = nvstore_blob_read(blk, "a", &data, &len, NULL);
        if (ret == -ENOENT) {
            counts[1]++;
        } else {
            g_assert_cmpint(ret, ==, 0);
            g_assert_cmpmem(data, len, a->data, a->len);
            counts[0]++;
        }
        pc_check(blk, &res, 0);
        if (res.leaks) {
            pc_check(blk, &res, BDRV_FIX_LEAKS);
            pc_check(blk, &res, 0);
            g_assert_cmpint(res.leaks, ==, 0);
        }
        blk_unref(blk);
        nvstore_ramdisk_free(disk);
    }
    g_test_message("amend: %" PRIu64 " requests, each cut ten times: %u "
                   "left a and b, %u b alone", n, counts[0], counts[1]);
    g_assert_cmpuint(counts[0], >, 0);
}

/*
 * Key rotation of an encrypted image (qemu-img amend -o
 * encrypt.old-secret=old,encrypt.new-secret=new), the power cut at each
 * of its requests, ten times each: the image opens with the old secret,
 * the new one or both, never with neither, and blob "a" reads as written
 * with whichever opens it.  (A torn key slot sector fails its checksum;
 * the other key slot is in another sector.)
 */
static const char *const amend_rekey[] = {
    "encrypt.old-secret", "key-old", "encrypt.new-secret", "key-new",
    "encrypt.iter-time", "1", NULL
};

/*
 * Whether secret @key opens the image @image with blob "a" as @a, check
 * finding no corruption; if not, the reason is the key slots (or, with
 * @rekeyed, a directory or close record of another master key)
 */
static bool key_opens(GByteArray *image, const char *key, GByteArray *a,
                      bool rekeyed)
{
    NvstoreRamdisk *disk = nvstore_ramdisk_new(image->data, image->len,
                                               PC_DISK_MAX);
    BlockBackend *blk;
    Error *err = NULL;

    pc_key = key;
    blk = pc_open(disk, BDRV_O_RDWR, &err);
    pc_key = NULL;
    if (blk) {
        BdrvCheckResult res;

        assert_blob(blk, "a", a);
        pc_check(blk, &res, 0);
        g_assert_cmpint(res.corruptions, ==, 0);
        blk_unref(blk);
    } else {
        g_assert_true(strstr(error_get_pretty(err), "key slot") ||
                      (rekeyed &&
                       strstr(error_get_pretty(err), "authentication")));
        error_free(err);
    }
    nvstore_ramdisk_free(disk);
    return blk;
}

/* An image encrypted with secret "key-old", its blob "a" holding @a */
static GByteArray *encrypted_image_with_a(GByteArray *a)
{
    NvstoreRamdisk *disk = new_ramdisk_image_encrypted();
    BlockBackend *blk;
    GByteArray *image;

    pc_key = "key-old";
    blk = pc_open(disk, BDRV_O_RDWR, &error_abort);
    pc_key = NULL;
    put(blk, "a", NVSTORE_BLOB_TYPE_RAW, a);
    blk_unref(blk);
    image = g_byte_array_ref(nvstore_ramdisk_contents(disk));
    nvstore_ramdisk_free(disk);
    return image;
}

static void test_rekey_power_cut(void)
{
    g_autoptr(GRand) rand = g_rand_new_with_seed(g_test_rand_int());
    g_autoptr(GByteArray) a = pattern(5000, 0xa0);
    g_autoptr(GByteArray) image = NULL;
    g_autoptr(GByteArray) done = NULL;
    unsigned counts[3] = { 0, 0, 0 };
    uint64_t n, k;

    image = encrypted_image_with_a(a);
    n = amend_run(image, 0, rand, &done, "key-old", amend_rekey);
    /* Two writes and two flushes */
    g_assert_cmpuint(n, ==, 4);
    g_assert_false(key_opens(done, "key-old", a, false));
    g_assert_true(key_opens(done, "key-new", a, false));
    for (k = 1; k <= n * 10; k++) {
        g_autoptr(GByteArray) crash = NULL;
        bool old, new;

        amend_run(image, (k - 1) % n + 1, rand, &crash, "key-old",
                  amend_rekey);
        old = key_opens(crash, "key-old", a, false);
        new = key_opens(crash, "key-new", a, false);
        g_assert_true(old || new);
        counts[old && new ? 2 : new ? 1 : 0]++;
    }
    g_test_message("key rotation: %" PRIu64 " requests, each cut ten times: "
                   "%u opened with the old secret only, %u with the new "
                   "only, %u with both", n, counts[0], counts[1], counts[2]);
    g_assert_cmpuint(counts[0], >, 0);
    g_assert_cmpuint(counts[2], >, 0);
}

/*
 * encrypt.rekey (a new master key, every blob sealed again), the power
 * cut at each of its requests, five times each: with the old secret
 * replaced by a new one, the image opens with one of them or both,
 * never with neither; with the same secret kept, it always opens with
 * it, whichever master key the cut left in use (after a cut between the
 * key slots of the new key and the clearing of the old one's, the
 * secret opens both, and the open takes the newest state's), and a
 * second rekey then completes.  Blob "a"
 * reads as written, and check finds no corruption.  Once done, the old
 * key slots put back open nothing: the old master key authenticates
 * none of the image's states.
 */
static const char *const amend_rekey_master[] = {
    "encrypt.rekey", "on", "encrypt.old-secret", "key-old",
    "encrypt.new-secret", "key-new", "encrypt.iter-time", "1", NULL
};

static const char *const amend_rekey_same_secret[] = {
    "encrypt.rekey", "on", "encrypt.iter-time", "1", NULL
};

static void test_rekey_master_power_cut(void)
{
    g_autoptr(GRand) rand = g_rand_new_with_seed(g_test_rand_int());
    g_autoptr(GByteArray) a = pattern(5000, 0xa0);
    g_autoptr(GByteArray) image = NULL;
    g_autoptr(GByteArray) done = NULL;
    unsigned counts[3] = { 0, 0, 0 }, same = 0;
    uint64_t n, k;

    image = encrypted_image_with_a(a);
    n = amend_run(image, 0, rand, &done, "key-old", amend_rekey_master);
    g_assert_false(key_opens(done, "key-old", a, true));
    g_assert_true(key_opens(done, "key-new", a, true));
    /* The old key slots (sectors 1 to 4) put back: they open nothing */
    memcpy(done->data + NVSTORE_KEYSLOT_OFFSET(0),
           image->data + NVSTORE_KEYSLOT_OFFSET(0),
           NVSTORE_KEYSLOT_OFFSET(NVSTORE_NB_KEYSLOTS) -
           NVSTORE_KEYSLOT_OFFSET(0));
    g_assert_false(key_opens(done, "key-old", a, true));
    for (k = 1; k <= n * 5; k++) {
        g_autoptr(GByteArray) crash = NULL;
        bool old, new;

        amend_run(image, (k - 1) % n + 1, rand, &crash, "key-old",
                  amend_rekey_master);
        old = key_opens(crash, "key-old", a, true);
        new = key_opens(crash, "key-new", a, true);
        g_assert_true(old || new);
        counts[old && new ? 2 : new ? 1 : 0]++;
    }
    g_test_message("rekey to a new secret: %" PRIu64 " requests, each cut "
                   "five times: %u opened with the old secret only, %u "
                   "with the new only, %u with both", n, counts[0],
                   counts[1], counts[2]);
    g_assert_cmpuint(counts[0], >, 0);
    g_assert_cmpuint(counts[1], >, 0);

    g_clear_pointer(&done, g_byte_array_unref);
    n = amend_run(image, 0, rand, &done, "key-old", amend_rekey_same_secret);
    g_assert_true(key_opens(done, "key-old", a, true));
    for (k = 1; k <= n * 5; k++) {
        g_autoptr(GByteArray) crash = NULL;
        g_autoptr(GByteArray) again = NULL;

        amend_run(image, (k - 1) % n + 1, rand, &crash, "key-old",
                  amend_rekey_same_secret);
        g_assert_true(key_opens(crash, "key-old", a, true));
        /* A rekey after the interrupted one completes */
        amend_run(crash, 0, rand, &again, "key-old",
                  amend_rekey_same_secret);
        g_assert_true(key_opens(again, "key-old", a, true));
        same++;
    }
    g_test_message("rekey, the secret kept: %" PRIu64 " requests, each cut "
                   "five times: %u opened with it", n, same);
}

/*
 * Two users at once: while a commit of blob "b" is in flight (its
 * coroutine waits for I/O), another coroutine reads blob "a", and a third
 * commits "a".  Each sees a consistent directory: the read returns what
 * the image held, the commits are serialised, and both land.
 */
typedef struct ConcurrentOp {
    BlockBackend *blk;
    NvstoreBlobUpdate u;
    GByteArray *read;
    int ret;
    bool done;
} ConcurrentOp;

static void coroutine_fn concurrent_op_entry(void *opaque)
{
    ConcurrentOp *op = opaque;

    if (op->read) {
        g_autofree uint8_t *data = NULL;
        size_t len;

        op->ret = nvstore_co_blob_read(op->blk, op->u.name, &data, &len,
                                       &error_abort);
        g_byte_array_append(op->read, data, len);
    } else {
        op->ret = nvstore_co_blob_commit(op->blk, &op->u, 1, &error_abort);
    }
    op->done = true;
    aio_wait_kick();
}

static void test_concurrent_users(void)
{
    g_autofree char *path = create_image();
    BlockBackend *blk1 = open_image(path, BDRV_O_RDWR, &error_abort);
    BlockBackend *blk2 = blk_new(qemu_get_aio_context(), 0, BLK_PERM_ALL);
    g_autoptr(GByteArray) a1 = pattern(70000, 1);
    g_autoptr(GByteArray) a2 = pattern(50000, 2);
    g_autoptr(GByteArray) b = pattern(90000, 3);
    g_autoptr(GByteArray) read = g_byte_array_new();
    ConcurrentOp ops[3] = {
        { .blk = blk1, .u = { .name = "b", .type = "raw", .data = b->data,
                              .len = b->len } },
        { .blk = blk2, .u = { .name = "a" }, .read = read },
        { .blk = blk2, .u = { .name = "a", .type = "raw", .data = a2->data,
                              .len = a2->len } },
    };
    int i;

    /* A second user of the same node, as a TPM and a blob node are */
    g_assert_cmpint(blk_insert_bs(blk2, blk_bs(blk1), &error_abort), ==, 0);
    put(blk1, "a", "raw", a1);
    for (i = 0; i < ARRAY_SIZE(ops); i++) {
        aio_co_enter(qemu_get_aio_context(),
                     qemu_coroutine_create(concurrent_op_entry, &ops[i]));
    }
    /* The commit of "b" yielded: the others started while it was on */
    g_assert_false(ops[0].done);
    AIO_WAIT_WHILE_UNLOCKED(NULL, !ops[0].done || !ops[1].done ||
                            !ops[2].done);
    for (i = 0; i < ARRAY_SIZE(ops); i++) {
        g_assert_cmpint(ops[i].ret, ==, 0);
    }
    g_assert_cmpmem(read->data, read->len, a1->data, a1->len);
    assert_blob(blk1, "b", b);
    assert_blob(blk2, "a", a2);
    blk_unref(blk2);
    blk_unref(blk1);
    assert_image(path, 0, a2, b);
    unlink(path);
}

/*
 * What qemu-img and QMP see of an image: info lists the blobs and the
 * generation, amend deletes a blob, measure counts the blobs' space,
 * and an image created inside qcow2 (container=qcow2) opens through it.
 */
static void test_qemu_img(void)
{
    char qcow2_opts[] = "container=qcow2";
    g_autofree char *path = create_image();
    g_autoptr(GByteArray) a = pattern(5000, 70);
    g_autoptr(GByteArray) b = pattern(10, 71);
    BlockdevAmendOptions amend = {
        .driver = BLOCKDEV_DRIVER_NVSTORE,
        .u.nvstore.delete_blob = (char *)"a",
    };
    BlockBackend *blk = open_image(path, BDRV_O_RDWR, &error_abort);
    BDRVNvstoreState *s = blk_bs(blk)->opaque;
    ImageInfoSpecificNvstoreBlobList *l;
    g_autofree uint8_t *data = NULL;
    ImageInfoSpecific *spec;
    BlockMeasureInfo *m;
    QDict *options;
    size_t len;

    put(blk, "a", "tpm", a);
    put(blk, "b", "raw", b);
    bdrv_graph_rdlock_main_loop();
    spec = bdrv_get_specific_info(blk_bs(blk), &error_abort);
    g_assert_cmpint(spec->type, ==, IMAGE_INFO_SPECIFIC_KIND_NVSTORE);
    g_assert_cmpuint(spec->u.nvstore.data->generation, ==, s->gen);
    l = spec->u.nvstore.data->blobs;
    g_assert_cmpstr(l->value->name, ==, "a");
    g_assert_cmpstr(l->value->type, ==, "tpm");
    g_assert_cmpuint(l->value->size, ==, a->len);
    g_assert_cmpstr(l->next->value->name, ==, "b");
    g_assert_null(l->next->next);
    qapi_free_ImageInfoSpecific(spec);
    bdrv_graph_rdunlock_main_loop();

    /* Both blobs fit in "required", and twice in "fully-allocated" */
    m = bdrv_measure(blk_bs(blk)->drv, NULL, blk_bs(blk), &error_abort);
    g_assert_cmpuint(m->required, >=, NVSTORE_DATA_OFFSET + a->len + b->len);
    g_assert_cmpuint(m->fully_allocated, >=, 2 * m->required -
                     NVSTORE_DATA_OFFSET);
    qapi_free_BlockMeasureInfo(m);

    bdrv_graph_rdlock_main_loop();
    g_assert_cmpint(nvstore_amend(blk_bs(blk), &amend, false, &error_abort),
                    ==, 0);
    bdrv_graph_rdunlock_main_loop();
    blk_unref(blk);
    blk = open_image(path, 0, &error_abort);
    g_assert_cmpint(nvstore_blob_read(blk, "a", &data, &len, NULL), ==,
                    -ENOENT);
    assert_blob(blk, "b", b);
    blk_unref(blk);
    unlink(path);

    /* Inside qcow2 */
    bdrv_img_create(path, "nvstore", NULL, NULL, qcow2_opts, UINT64_C(-1), 0,
                    true, &error_abort);
    options = qdict_new();
    qdict_put_str(options, "driver", "nvstore");
    qdict_put_str(options, "file.driver", "qcow2");
    qdict_put_str(options, "file.file.filename", path);
    blk = blk_new_open(NULL, NULL, options, BDRV_O_RDWR, &error_abort);
    put(blk, "a", "tpm", a);
    blk_unref(blk);
    options = qdict_new();
    qdict_put_str(options, "driver", "nvstore");
    qdict_put_str(options, "file.driver", "qcow2");
    qdict_put_str(options, "file.file.filename", path);
    blk = blk_new_open(NULL, NULL, options, 0, &error_abort);
    assert_blob(blk, "a", a);
    blk_unref(blk);
    unlink(path);
}

/*
 * A blob node (nvstore-blob) makes blob "vars" its data: a write request
 * stays in memory until a flush commits it; a commit of the device API
 * takes it along (group commit), and refuses to change the blob itself;
 * a second writer of the blob is refused; a blob that does not exist
 * reads as empty and a resize creates it.
 */
static BlockBackend *open_blob_node(BlockBackend *store, const char *name,
                                    int delay, Error **errp)
{
    QDict *options = qdict_new();

    qdict_put_str(options, "driver", "nvstore-blob");
    qdict_put_str(options, "file", bdrv_get_node_name(blk_bs(store)));
    qdict_put_str(options, "blob", name);
    qdict_put_int(options, "commit-delay", delay);
    return blk_new_open(NULL, NULL, options, BDRV_O_RDWR | BDRV_O_RESIZE,
                        errp);
}

static void test_blob_node(void)
{
    g_autofree char *path = create_image();
    g_autoptr(GByteArray) v1 = pattern(8192, 50);
    g_autoptr(GByteArray) v2 = pattern(8192, 51);
    g_autoptr(GByteArray) b = pattern(100, 52);
    g_autofree uint8_t *buf = g_malloc(v1->len);
    BlockBackend *store = open_image(path, BDRV_O_RDWR, &error_abort);
    BlockBackend *vars = open_blob_node(store, "vars", 1000, &error_abort);
    NvstoreBlobUpdate u = {
        .name = "vars", .type = "raw", .data = b->data, .len = b->len,
    };
    Error *err = NULL;

    /* Absent: empty; a resize creates it, in a commit */
    g_assert_cmpint(blk_getlength(vars), ==, 0);
    g_assert_cmpint(blk_truncate(vars, v1->len, true, PREALLOC_MODE_OFF, 0,
                                 &error_abort), ==, 0);
    g_assert_cmpint(blk_pwrite(vars, 0, v1->len, v1->data, 0), ==, 0);
    g_assert_cmpint(blk_flush(vars), ==, 0);
    assert_blob(store, "vars", v1);

    /* Written in memory only; the device's commit of "b" takes it along */
    g_assert_cmpint(blk_pwrite(vars, 0, v2->len, v2->data, 0), ==, 0);
    assert_blob(store, "vars", v1);
    g_assert_cmpint(blk_pread(vars, 0, v1->len, buf, 0), ==, 0);
    g_assert_cmpmem(buf, v1->len, v2->data, v2->len);
    put(store, "b", "raw", b);
    assert_blob(store, "vars", v2);

    /* One writer per blob */
    g_assert_cmpint(nvstore_blob_commit(store, &u, 1, &err), ==, -EBUSY);
    g_assert_nonnull(strstr(error_get_pretty(err), "Blob 'vars' is written "
                            "by node"));
    g_clear_pointer(&err, error_free);
    g_assert_null(open_blob_node(store, "vars", 0, &err));
    g_assert_nonnull(strstr(error_get_pretty(err),
                            "is already written by node"));
    g_clear_pointer(&err, error_free);

    blk_unref(vars);
    blk_unref(store);
    store = open_image(path, 0, &error_abort);
    assert_blob(store, "vars", v2);
    assert_blob(store, "b", b);
    blk_unref(store);
    unlink(path);
}

/*
 * An encrypted image: its blobs read back with the secret that created
 * it, and nothing of them is in the file in the clear; without a secret
 * it opens only to list its blobs, and a wrong secret is refused; a key
 * rotation (amend) makes the new secret open it and the old one not.
 */
static BlockBackend *open_encrypted(const char *path, const char *key,
                                    int flags, Error **errp)
{
    QDict *options = qdict_new();

    qdict_put_str(options, "driver", "nvstore");
    if (key) {
        qdict_put_str(options, "encrypt.key-secret", key);
    }
    return blk_new_open(path, NULL, options, flags, errp);
}

static void assert_blob_encrypted(const char *path, const char *key,
                                  GByteArray *a, GByteArray *b)
{
    BlockBackend *blk = open_encrypted(path, key, 0, &error_abort);

    assert_blob(blk, "a", a);
    assert_blob(blk, "b", b);
    blk_unref(blk);
}

static void test_encrypted(void)
{
    char create_opts[] = "encrypt.key-secret=key-old,encrypt.iter-time=1";
    g_autofree char *path = NULL;
    g_autoptr(GByteArray) a = pattern(5000, 60);
    g_autoptr(GByteArray) b = pattern(30, 61);
    g_autofree uint8_t *data = NULL;
    g_autofree char *file = NULL;
    g_auto(GStrv) names = NULL;
    BlockdevNvstoreEncryptionAmend enc = {
        .new_secret = (char *)"key-new", .old_secret = (char *)"key-old",
        .has_iter_time = true, .iter_time = 1,
    };
    BlockdevAmendOptions amend = {
        .driver = BLOCKDEV_DRIVER_NVSTORE, .u.nvstore.encrypt = &enc,
    };
    BlockBackend *blk;
    Error *err = NULL;
    gsize file_len;
    size_t len;
    int fd = g_file_open_tmp("nvstore-test-XXXXXX", &path, NULL);

    g_assert_cmpint(fd, >=, 0);
    close(fd);
    bdrv_img_create(path, "nvstore", NULL, NULL, create_opts, UINT64_C(-1), 0,
                    true, &error_abort);
    blk = open_encrypted(path, "key-old", BDRV_O_RDWR, &error_abort);
    put(blk, "a", "raw", a);
    put(blk, "b", "raw", b);
    blk_unref(blk);
    assert_blob_encrypted(path, "key-old", a, b);
    g_assert_true(g_file_get_contents(path, &file, &file_len, NULL));
    g_assert_null(memmem(file, file_len, a->data, 64));
    g_assert_null(memmem(file, file_len, b->data, b->len));

    g_assert_null(open_encrypted(path, NULL, BDRV_O_RDWR, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "must name the secret"));
    g_clear_pointer(&err, error_free);
    g_assert_null(open_encrypted(path, "key-new", 0, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "No key slot of the "
                            "nvstore image opens with secret 'key-new'"));
    g_clear_pointer(&err, error_free);

    /* Without the key: the blobs are listed, not read */
    blk = open_encrypted(path, NULL, BDRV_O_NO_IO, &error_abort);
    names = nvstore_blob_list(blk, &error_abort);
    g_assert_cmpuint(g_strv_length(names), ==, 2);
    g_assert_cmpint(nvstore_blob_read(blk, "a", &data, &len, &err), ==,
                    -EACCES);
    g_assert_nonnull(strstr(error_get_pretty(err), "no key was given"));
    g_clear_pointer(&err, error_free);
    blk_unref(blk);

    /* Key rotation: no blob rewritten, the new secret opens it */
    blk = open_encrypted(path, "key-old", BDRV_O_RDWR, &error_abort);
    bdrv_graph_rdlock_main_loop();
    g_assert_cmpint(nvstore_amend(blk_bs(blk), &amend, false, &error_abort),
                    ==, 0);
    bdrv_graph_rdunlock_main_loop();
    blk_unref(blk);
    assert_blob_encrypted(path, "key-new", a, b);
    g_assert_null(open_encrypted(path, "key-old", 0, &err));
    g_assert_nonnull(err);
    error_free(err);
    unlink(path);
}

/*
 * Damage to the newest commit.  A blob "a" written twice, then a byte of
 * its newest data flipped on disk:
 *
 * - after a clean close, whose close record says that the newest
 *   generation was complete, that is damage: "a" reads as an error (and
 *   "b" back), check counts one corruption and no leak, and check -r all
 *   restores the copy of "a" that the previous commit holds;
 * - after a power cut directly after the commit (no close record), it
 *   is what a torn commit leaves: the image opens at the previous
 *   commit, and check counts a leak (the torn commit), no corruption.
 *
 * The close record costs the close one write and one flush, and a node
 * that closes at the recorded generation writes nothing.
 */
static GByteArray *damage_newest_image(const char *key, bool clean,
                                       bool damage, GByteArray *a1,
                                       GByteArray *a2, GByteArray *b)
{
    g_autoptr(GRand) rand = g_rand_new_with_seed(0x5a);
    NvstoreRamdisk *disk;
    BlockBackend *blk;
    BDRVNvstoreState *s;
    GByteArray *image;
    uint64_t offset, requests;

    g_assert_true(!key || !strcmp(key, "key-old"));
    disk = key ? new_ramdisk_image_encrypted() : new_ramdisk_image();
    pc_key = key;
    blk = pc_open(disk, BDRV_O_RDWR, &error_abort);
    put(blk, "b", NVSTORE_BLOB_TYPE_RAW, b);
    put(blk, "a", NVSTORE_BLOB_TYPE_RAW, a1);
    put(blk, "a", NVSTORE_BLOB_TYPE_RAW, a2);
    s = blk_bs(blk)->opaque;
    offset = nvstore_dir_lookup(s->dir, "a")->extent.offset;
    g_assert_cmpuint(nvstore_dir_lookup(s->dir, "a")->extent.generation, ==,
                     s->gen);
    if (clean) {
        requests = nvstore_ramdisk_requests(disk);
        blk_unref(blk);
        /* The close record: one write, one flush */
        g_assert_cmpuint(nvstore_ramdisk_requests(disk), ==, requests + 2);
        blk = pc_open(disk, BDRV_O_RDWR, &error_abort);
        requests = nvstore_ramdisk_requests(disk);
        blk_unref(blk);
        /* Closed again at the recorded generation: nothing written */
        g_assert_cmpuint(nvstore_ramdisk_requests(disk), ==, requests);
        image = g_byte_array_ref(nvstore_ramdisk_contents(disk));
    } else {
        /* The disk as a power cut directly after the commit leaves it */
        image = nvstore_ramdisk_power_cut_image(disk, rand);
        blk_unref(blk);
    }
    pc_key = NULL;
    nvstore_ramdisk_free(disk);
    g_assert_cmpuint(offset + 100, <, image->len);
    if (damage) {
        image->data[offset + 100] ^= 0x10;
    }
    return image;
}

static void damage_newest_check(NvstoreRamdisk *disk, const char *key,
                                BdrvCheckMode fix, BdrvCheckResult *res)
{
    BlockBackend *blk;

    pc_key = key;
    blk = pc_open(disk, BDRV_O_RDWR | BDRV_O_CHECK, &error_abort);
    pc_key = NULL;
    memset(res, 0, sizeof(*res));
    bdrv_graph_rdlock_main_loop();
    g_assert_cmpint(bdrv_check(blk_bs(blk), res, fix), ==, 0);
    bdrv_graph_rdunlock_main_loop();
    g_assert_cmpint(res->check_errors, ==, 0);
    blk_unref(blk);
}

/* A copy of @len bytes of @disk's contents at @offset */
static GByteArray *disk_bytes(NvstoreRamdisk *disk, uint64_t offset,
                              uint64_t len)
{
    GByteArray *image = nvstore_ramdisk_contents(disk);
    GByteArray *b = g_byte_array_new();

    g_assert_cmpuint(offset + len, <=, image->len);
    g_byte_array_append(b, image->data + offset, len);
    return b;
}

/*
 * How many of the 32-byte pieces of @b are somewhere in @disk, leaving
 * out those that one of the @nkeep arrays @keep has too
 */
static unsigned disk_holds(NvstoreRamdisk *disk, GByteArray *b,
                           GByteArray **keep, int nkeep)
{
    GByteArray *image = nvstore_ramdisk_contents(disk);
    unsigned found = 0;
    size_t i;
    int k;

    for (i = 0; i + 32 <= b->len; i += 32) {
        for (k = 0; k < nkeep; k++) {
            if (memmem(keep[k]->data, keep[k]->len, b->data + i, 32)) {
                break;
            }
        }
        found += k == nkeep &&
                 memmem(image->data, image->len, b->data + i, 32);
    }
    return found;
}

/*
 * wipe-freed: blob "b" written, blob "a" written four times, "b"
 * deleted, "a" written a fifth time.  What the image holds, as written
 * (ciphertext, in an encrypted image): the last two versions of "a" and
 * the last two directories, those of the committed and of the previous
 * commit, whole; nothing of the older versions of "a", of "b" or of the
 * older directories.  With wipe-freed=off, some of them are still there,
 * until a commit after the image is opened again with wipe-freed on.
 */
static void test_wipe_freed(gconstpointer opaque)
{
    const char *key = opaque;
    g_autoptr(GRand) rand = g_rand_new_with_seed(0x3e);
    GByteArray *written[7], *dirs[7];
    int wipe, i;

    for (wipe = 1; wipe >= 0; wipe--) {
        NvstoreRamdisk *disk = key ? new_ramdisk_image_encrypted() :
                                     new_ramdisk_image();
        unsigned left = 0;
        BlockBackend *blk;
        BDRVNvstoreState *s;
        NvstoreEntry *e;

        pc_key = key;
        pc_no_wipe = !wipe;
        blk = pc_open(disk, BDRV_O_RDWR, &error_abort);
        pc_no_wipe = false;
        s = blk_bs(blk)->opaque;
        for (i = 0; i < 7; i++) {
            g_autoptr(GByteArray) data = g_byte_array_sized_new(3000);
            NvstoreBlobUpdate u = { .name = i ? "a" : "b",
                                    .type = NVSTORE_BLOB_TYPE_RAW };

            if (i == 5) {
                u.name = "b";
                u.remove = true;
            } else {
                g_byte_array_set_size(data, i ? 3000 : 20000);
                for (guint k = 0; k < data->len; k++) {
                    data->data[k] = g_rand_int(rand);
                }
                u.data = data->data;
                u.len = data->len;
            }
            g_assert_cmpint(nvstore_blob_commit(blk, &u, 1, &error_abort),
                            ==, 0);
            e = nvstore_dir_lookup(s->dir, u.name);
            written[i] = e ? disk_bytes(disk, e->extent.offset,
                                        e->extent.length) : NULL;
            dirs[i] = disk_bytes(disk, s->dir_offset, s->dir_length);
        }
        GByteArray *kept[] = { written[4], written[6], dirs[5], dirs[6] };

        /* Commits 4 and 6 (a's last two), the directories of 5 and 6 */
        for (i = 0; i < ARRAY_SIZE(kept); i++) {
            g_assert_cmpuint(disk_holds(disk, kept[i], NULL, 0), ==,
                             kept[i]->len / 32);
        }
        /* Directories share pieces (their header, unchanged entries) */
        for (i = 0; i < 5; i++) {
            if (i != 4) {
                left += disk_holds(disk, written[i], kept, 4);
            }
            left += disk_holds(disk, dirs[i], kept, 4);
        }
        g_test_message("%s, wipe-freed=%s: %u pieces of 32 bytes of older "
                       "data and directories left", key ? "encrypted" :
                       "plain", wipe ? "on" : "off", left);
        if (wipe) {
            g_assert_cmpuint(left, ==, 0);
        } else {
            g_autoptr(GByteArray) last = pattern(3000, 0x5c);
            g_autoptr(GByteArray) last_written = NULL;
            g_autoptr(GByteArray) last_dir = NULL;
            GByteArray *kept_now[] = { NULL, written[6], NULL, dirs[6] };

            g_assert_cmpuint(left, >, 0);
            blk_unref(blk);
            blk = pc_open(disk, BDRV_O_RDWR, &error_abort);
            s = blk_bs(blk)->opaque;
            put(blk, "a", NVSTORE_BLOB_TYPE_RAW, last);
            e = nvstore_dir_lookup(s->dir, "a");
            kept_now[0] = last_written = disk_bytes(disk, e->extent.offset,
                                                    e->extent.length);
            kept_now[2] = last_dir = disk_bytes(disk, s->dir_offset,
                                                s->dir_length);
            left = 0;
            for (i = 0; i < 6; i++) {
                if (written[i]) {
                    left += disk_holds(disk, written[i], kept_now, 4);
                }
                left += disk_holds(disk, dirs[i], kept_now, 4);
            }
            g_test_message("then a commit with wipe-freed on: %u left",
                           left);
            g_assert_cmpuint(left, ==, 0);
        }
        blk_unref(blk);
        /* The image opens, and is the last commit's */
        blk = pc_open(disk, BDRV_O_RDWR, &error_abort);
        pc_key = NULL;
        s = blk_bs(blk)->opaque;
        g_assert_null(nvstore_dir_lookup(s->dir, "b"));
        blk_unref(blk);
        for (i = 0; i < 7; i++) {
            if (written[i]) {
                g_byte_array_unref(written[i]);
            }
            g_byte_array_unref(dirs[i]);
        }
        nvstore_ramdisk_free(disk);
    }
}

/* The image on @disk opens with @key, its blobs "a" and "b" hold @a, @b */
static void damage_assert_blobs(NvstoreRamdisk *disk, const char *key,
                                GByteArray *a, GByteArray *b)
{
    BlockBackend *blk;

    pc_key = key;
    blk = pc_open(disk, 0, &error_abort);
    pc_key = NULL;
    assert_blob(blk, "a", a);
    assert_blob(blk, "b", b);
    blk_unref(blk);
}

static void test_damage_newest(gconstpointer opaque)
{
    const char *key = opaque;
    g_autoptr(GByteArray) a1 = pattern(5000, 0x11);
    g_autoptr(GByteArray) a2 = pattern(5000, 0x5a);
    g_autoptr(GByteArray) b = pattern(3000, 0x42);
    g_autoptr(GByteArray) image = NULL;
    g_autofree uint8_t *data = NULL;
    NvstoreRamdisk *disk;
    BlockBackend *blk;
    BdrvCheckResult res;
    Error *err = NULL;
    size_t len;

    /* After a clean close: damage, reported and restorable */
    image = damage_newest_image(key, true, true, a1, a2, b);
    disk = nvstore_ramdisk_new(image->data, image->len, PC_DISK_MAX);
    pc_key = key;
    blk = pc_open(disk, 0, &error_abort);
    pc_key = NULL;
    g_assert_cmpint(nvstore_blob_read(blk, "a", &data, &len, &err), ==,
                    -EIO);
    g_assert_nonnull(strstr(error_get_pretty(err), "Blob 'a' is corrupt: "
                            "checksum mismatch"));
    g_clear_pointer(&err, error_free);
    assert_blob(blk, "b", b);
    blk_unref(blk);

    damage_newest_check(disk, key, 0, &res);
    g_assert_cmpint(res.corruptions, ==, 1);
    g_assert_cmpint(res.leaks, ==, 0);
    damage_newest_check(disk, key, BDRV_FIX_LEAKS | BDRV_FIX_ERRORS, &res);
    g_assert_cmpint(res.corruptions, ==, 0);
    g_assert_cmpint(res.corruptions_fixed, ==, 1);
    damage_newest_check(disk, key, 0, &res);
    g_assert_cmpint(res.corruptions + res.leaks, ==, 0);
    damage_assert_blobs(disk, key, a1, b);
    nvstore_ramdisk_free(disk);
    g_byte_array_unref(image);

    /* After a power cut directly after the commit: a torn commit */
    image = damage_newest_image(key, false, true, a1, a2, b);
    disk = nvstore_ramdisk_new(image->data, image->len, PC_DISK_MAX);
    damage_assert_blobs(disk, key, a1, b);
    damage_newest_check(disk, key, 0, &res);
    g_assert_cmpint(res.corruptions, ==, 0);
    g_assert_cmpint(res.leaks, ==, 1);
    nvstore_ramdisk_free(disk);
}

/* Open @image from memory with @key: NULL, and the error in @err */
static void assert_open_fails(GByteArray *image, const char *key,
                              const char *why)
{
    NvstoreRamdisk *disk = nvstore_ramdisk_new(image->data, image->len,
                                               PC_DISK_MAX);
    Error *err = NULL;

    pc_key = key;
    g_assert_null(pc_open(disk, 0, &err));
    pc_key = NULL;
    if (!strstr(error_get_pretty(err), why)) {
        g_error("'%s' does not say '%s'", error_get_pretty(err), why);
    }
    error_free(err);
    nvstore_ramdisk_free(disk);
}

/*
 * Close records written by hand, their checksums right: a generation
 * above the slots' (no slot holds it: refused), the slot's generation
 * with another directory (refused), a generation out of range (ignored,
 * and check clears it); on an encrypted image, an authentication code
 * that does not verify (refused)
 */
static void close_record_hostile(GByteArray *good)
{
    g_autoptr(GByteArray) a1 = pattern(100, 0x31);
    g_autoptr(GByteArray) b = pattern(200, 0x32);
    g_autoptr(GByteArray) image = g_byte_array_new();
    g_autoptr(GByteArray) enc = NULL;
    NvstoreSlot *disk_rec;
    NvstoreSlot rec;
    NvstoreRamdisk *disk;
    BdrvCheckResult res;
    BlockBackend *blk;

    g_byte_array_append(image, good->data, good->len);
    disk_rec = (NvstoreSlot *)(image->data + NVSTORE_CLOSE_OFFSET);
    rec = *disk_rec;
    nvstore_slot_to_cpu(&rec);

    rec.generation += 5;
    nvstore_slot_to_disk(disk_rec, &rec, NVSTORE_CLOSE_MAGIC);
    assert_open_fails(image, NULL, "complete when the image was last "
                      "closed, cannot be read");

    rec.generation -= 5;
    rec.dir_crc32c ^= 1;
    nvstore_slot_to_disk(disk_rec, &rec, NVSTORE_CLOSE_MAGIC);
    assert_open_fails(image, NULL, "not the directory of the close record");

    rec.dir_crc32c ^= 1;
    rec.generation = UINT64_C(1) << 63;
    nvstore_slot_to_disk(disk_rec, &rec, NVSTORE_CLOSE_MAGIC);
    disk = nvstore_ramdisk_new(image->data, image->len, PC_DISK_MAX);
    blk = pc_open(disk, 0, &error_abort);
    blk_unref(blk);
    damage_newest_check(disk, NULL, 0, &res);
    g_assert_cmpint(res.leaks, ==, 1);
    g_assert_cmpint(res.corruptions, ==, 0);
    nvstore_ramdisk_free(disk);

    enc = damage_newest_image("key-old", true, false, a1, a1, b);
    enc->data[NVSTORE_CLOSE_OFFSET + sizeof(NvstoreSlot) + 3] ^= 1;
    assert_open_fails(enc, "key-old", "the close record fails "
                      "authentication");
}

/*
 * The close record holds the state back: with the slot of the recorded
 * generation damaged, the image does not open at the older slot, and
 * says why; salvage (check -r all) finds that generation's directory.
 * A close record whose checksum fails (a crash during its write) is
 * ignored, and check -r clears it as a leak.
 */
static void test_close_record(void)
{
    g_autoptr(GByteArray) a1 = pattern(5000, 0x21);
    g_autoptr(GByteArray) a2 = pattern(6000, 0x22);
    g_autoptr(GByteArray) b = pattern(300, 0x23);
    g_autoptr(GByteArray) image = damage_newest_image(NULL, true, false, a1,
                                                      a2, b);
    NvstoreRamdisk *disk;
    BlockBackend *blk;
    BdrvCheckResult res;
    NvstoreSlot rec;
    Error *err = NULL;
    int newest;

    /* The close record: the newest slot's fields, another magic */
    memcpy(&rec, image->data + NVSTORE_CLOSE_OFFSET, sizeof(rec));
    g_assert_cmpmem(rec.magic, 8, NVSTORE_CLOSE_MAGIC, 8);
    newest = !memcmp(image->data + NVSTORE_SLOT_OFFSET(0) + 8,
                     &rec.generation, 28) ? 0 : 1;
    g_assert_cmpmem(image->data + NVSTORE_SLOT_OFFSET(newest) + 8, 28,
                    &rec.generation, 28);

    /* The slot of the recorded generation damaged */
    image->data[NVSTORE_SLOT_OFFSET(newest) + 20] ^= 1;
    disk = nvstore_ramdisk_new(image->data, image->len, PC_DISK_MAX);
    g_assert_null(pc_open(disk, 0, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "complete when the image "
                            "was last closed, cannot be read"));
    g_clear_pointer(&err, error_free);
    damage_newest_check(disk, NULL, 0, &res);
    g_assert_cmpint(res.corruptions, ==, 1);
    damage_newest_check(disk, NULL, BDRV_FIX_LEAKS | BDRV_FIX_ERRORS, &res);
    g_assert_cmpint(res.corruptions_fixed, ==, 1);
    blk = pc_open(disk, 0, &error_abort);
    assert_blob(blk, "a", a2);
    assert_blob(blk, "b", b);
    blk_unref(blk);
    nvstore_ramdisk_free(disk);

    /* Close records that no writer wrote */
    image->data[NVSTORE_SLOT_OFFSET(newest) + 20] ^= 1;
    close_record_hostile(image);

    /* A torn close record */
    image->data[NVSTORE_CLOSE_OFFSET + 20] ^= 1;
    disk = nvstore_ramdisk_new(image->data, image->len, PC_DISK_MAX);
    blk = pc_open(disk, 0, &error_abort);
    assert_blob(blk, "b", b);
    blk_unref(blk);
    damage_newest_check(disk, NULL, 0, &res);
    g_assert_cmpint(res.leaks, ==, 1);
    g_assert_cmpint(res.corruptions, ==, 0);
    damage_newest_check(disk, NULL, BDRV_FIX_LEAKS, &res);
    g_assert_cmpint(res.leaks_fixed, ==, 1);
    damage_newest_check(disk, NULL, 0, &res);
    g_assert_cmpint(res.leaks, ==, 0);
    nvstore_ramdisk_free(disk);
}

int main(int argc, char **argv)
{
    bdrv_init();
    module_call_init(MODULE_INIT_QOM);
    qemu_init_main_loop(&error_abort);
    object_new_with_props("secret", object_get_objects_root(), "key-old",
                          &error_abort, "data", "old", NULL);
    object_new_with_props("secret", object_get_objects_root(), "key-new",
                          &error_abort, "data", "new", NULL);
    if (argc == 4 && !strcmp(argv[1], "--crash-writer")) {
        return crash_writer(argv[2], g_ascii_strtoull(argv[3], NULL, 10),
                            STDOUT_FILENO);
    }
    test_argv0 = argv[0];
    g_test_init(&argc, &argv, NULL);

    g_test_add_func("/nvstore/crc32c", test_crc32c_convention);
    g_test_add_func("/nvstore/create-empty", test_create_empty);
    g_test_add_func("/nvstore/commit-and-reopen", test_commit_and_reopen);
    g_test_add_func("/nvstore/multi-commit", test_multi_commit);
    g_test_add_func("/nvstore/commit-errors", test_commit_errors);
    g_test_add_func("/nvstore/space-reuse", test_space_reuse);
    g_test_add_data_func("/nvstore/wipe-freed/plain", NULL,
                         test_wipe_freed);
    g_test_add_data_func("/nvstore/wipe-freed/encrypted", "key-old",
                         test_wipe_freed);
    g_test_add_data_func("/nvstore/damage-newest/plain", NULL,
                         test_damage_newest);
    g_test_add_data_func("/nvstore/damage-newest/encrypted", "key-old",
                         test_damage_newest);
    g_test_add_func("/nvstore/close-record", test_close_record);
    g_test_add_func("/nvstore/bit-rot", test_bit_rot);
    g_test_add_func("/nvstore/write-error", test_write_error);
    g_test_add_func("/nvstore/not-nvstore", test_not_nvstore);
    g_test_add_func("/nvstore/attributes", test_attributes);
    g_test_add_func("/nvstore/fault-each-write", test_fault_each_write);
    /* A thousand writers killed and a thousand power cuts: -m slow */
    if (g_test_slow()) {
        g_test_add_func("/nvstore/crash-loop", test_crash_loop);
        g_test_add_func("/nvstore/power-cut", test_power_cut);
        g_test_add_func("/nvstore/power-cut-qcow2", test_power_cut_qcow2);
    }
    g_test_add_func("/nvstore/fault-each-path", test_fault_each_path);
    g_test_add_func("/nvstore/fault-repair", test_fault_repair);
    g_test_add_func("/nvstore/inactive", test_inactive);
    g_test_add_func("/nvstore/reopen-read-only", test_reopen_read_only);
    g_test_add_func("/nvstore/power-cut-encrypted",
                     test_power_cut_encrypted);
    g_test_add_func("/nvstore/group-commit-power-cut",
                    test_group_commit_power_cut);
    g_test_add_func("/nvstore/concurrent-users", test_concurrent_users);
    g_test_add_func("/nvstore/qemu-img", test_qemu_img);
    g_test_add_func("/nvstore/blob-node", test_blob_node);
    g_test_add_func("/nvstore/encrypted", test_encrypted);
    g_test_add_func("/nvstore/amend-power-cut", test_amend_power_cut);
    g_test_add_func("/nvstore/rekey-power-cut", test_rekey_power_cut);
    g_test_add_func("/nvstore/rekey-master-power-cut",
                    test_rekey_master_power_cut);
    return g_test_run();
}
