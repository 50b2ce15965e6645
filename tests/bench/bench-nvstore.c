/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * nvstore benchmarks through the device API (include/block/nvstore.h):
 * durable blob update latency by blob size, on a raw file and inside
 * qcow2, against two baselines measured in the same run on the same
 * file system -- pwrite + fdatasync of the same bytes (the floor), and
 * swtpm's dir backend write path (temporary file, fsync, rename,
 * directory fsync); open + list time, update time and directory bytes
 * per blob as the number of blobs grows; and the directory's size and
 * parse time with blobs like the TPM backend's.
 *
 *   bench-nvstore update DIR COUNT      latency table, microseconds
 *   bench-nvstore flushes DIR KIND SIZE COUNT
 *                                       COUNT updates and nothing else
 *                                       (bench/run.py counts their flushes)
 *   bench-nvstore scale DIR             open/list/update vs. blob count,
 *                                       and where an update's time goes
 *   bench-nvstore dir DIR               directory bytes per blob and parse
 *                                       time, 1, 100 and 10,000 TPM blobs
 *
 * Output lines are "name value..." for bench/run.py to parse.  With
 * BENCH_NVSTORE_AIO=io_uring (or native), the image file is opened with
 * that aio mode instead of the thread pool.
 */

#include "qemu/osdep.h"
#include "block/block.h"
#include "block/nvstore.h"
#include "block/nvstore-dir.h"
#include "block/nvstore-format.h"
#include "system/block-backend.h"
#include "qapi/error.h"
#include "qobject/qdict.h"
#include "qemu/main-loop.h"
#include "qemu/cutils.h"
#include "qemu/units.h"
#include "qemu/module.h"
#include "qom/object.h"
#include "crypto/pbkdf.h"
#include "crypto/aead.h"
#include <malloc.h>

static int64_t now_ns(void)
{
    return g_get_monotonic_time() * 1000;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

/* "median p99" of @t (sorted here), microseconds */
static void print_stats(const char *name, int64_t *t, int n)
{
    qsort(t, n, sizeof(*t), cmp_i64);
    printf("%s %.1f %.1f\n", name, t[n / 2] / 1000.0,
           t[MIN(n - 1, n * 99 / 100)] / 1000.0);
}

/*
 * The ID of the secret object of encrypted images, or NULL: images are
 * then created and opened unencrypted
 */
static const char *bench_key;

/* Open images with wipe-freed=off */
static bool bench_no_wipe;

/*
 * An nvstore image at @path, raw or inside qcow2, opened read-write; the
 * file's aio mode from $BENCH_NVSTORE_AIO (threads, native, io_uring);
 * encrypted with @bench_key, if set (PBKDF2 calibrated to 1 ms: its
 * cost is reported apart)
 */
static BlockBackend *nvs_open(const char *path, bool qcow2, bool create)
{
    const char *aio = g_getenv("BENCH_NVSTORE_AIO");
    QDict *options = qdict_new();

    if (aio) {
        qdict_put_str(options, qcow2 ? "file.file.aio" : "file.aio", aio);
    }
    if (bench_key) {
        qdict_put_str(options, "encrypt.key-secret", bench_key);
    }
    if (bench_no_wipe) {
        qdict_put_str(options, "wipe-freed", "off");
    }

    if (create) {
        g_autofree char *opts = g_strdup_printf(
            "%s%s%s", qcow2 ? "container=qcow2" : "",
            qcow2 && bench_key ? "," : "",
            bench_key ? "encrypt.key-secret=bench-key,encrypt.iter-time=1" :
            "");

        bdrv_img_create(path, "nvstore", NULL, NULL, opts, UINT64_C(-1), 0,
                        true, &error_abort);
    }
    qdict_put_str(options, "driver", "nvstore");
    if (qcow2) {
        qdict_put_str(options, "file.driver", "qcow2");
        qdict_put_str(options, "file.file.filename", path);
        return blk_new_open(NULL, NULL, options, BDRV_O_RDWR, &error_abort);
    }
    return blk_new_open(path, NULL, options, BDRV_O_RDWR, &error_abort);
}

static void put(BlockBackend *blk, const char *name, const uint8_t *data,
                size_t len)
{
    NvstoreBlobUpdate u = {
        .name = name, .type = "raw", .data = data, .len = len,
    };

    nvstore_blob_commit(blk, &u, 1, &error_abort);
}

/* Updates before the steady state is measured */
#define BENCH_WARMUP 4

static void bench_nvstore(const char *dir, bool qcow2, size_t size, int n,
                          int64_t *t)
{
    g_autofree char *path = g_strdup_printf("%s/bench.%s", dir,
                                            qcow2 ? "qcow2" : "nvs");
    g_autofree uint8_t *buf = g_malloc(size);
    BlockBackend *blk;
    int i;

    memset(buf, 0x5a, size);
    blk = nvs_open(path, qcow2, true);
    /*
     * The first updates grow the image (and allocate qcow2 clusters);
     * then each update reuses the space the one before the last freed:
     * measure that steady state
     */
    for (i = 0; i < BENCH_WARMUP; i++) {
        buf[0] = i;
        put(blk, "blob", buf, size);
    }
    for (i = 0; i < n; i++) {
        int64_t start;

        buf[i % size] ^= 0xff;      /* new contents every time */
        start = now_ns();
        put(blk, "blob", buf, size);
        t[i] = now_ns() - start;
    }
    blk_unref(blk);
    unlink(path);
}

/*
 * The floor: @size bytes written with pwrite and made durable with one
 * fdatasync.  With @layout, nvstore's write pattern instead: the data, a
 * small directory elsewhere and a 40-byte slot, alternating between two
 * places as nvstore does, then one fdatasync: what the layout costs,
 * without QEMU's block layer.
 */
static void bench_floor(const char *dir, size_t size, int n, int64_t *t,
                        bool layout)
{
    g_autofree char *path = g_strdup_printf("%s/floor", dir);
    g_autofree uint8_t *buf = g_malloc(size);
    uint8_t small[64] = { 0 };
    uint64_t area = ROUND_UP(size + sizeof(small), 4096);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    int i;

    g_assert(fd >= 0);
    memset(buf, 0x5a, size);
    for (i = 0; i < n; i++) {
        uint64_t base = 12288 + (i % 2) * area;
        int64_t start = now_ns();

        buf[i % size] ^= 0xff;
        if (layout) {
            small[0] = i;
            g_assert(pwrite(fd, buf, size, base + 4096) == size);
            g_assert(pwrite(fd, small, 60, base) == 60);
            g_assert(pwrite(fd, small, 40, 4096 * (1 + i % 2)) == 40);
        } else {
            g_assert(pwrite(fd, buf, size, 0) == size);
        }
        g_assert(fdatasync(fd) == 0);
        t[i] = now_ns() - start;
    }
    close(fd);
    unlink(path);
}

/*
 * swtpm 0.7's dir backend (swtpm_nvstore_dir.c) writes TMP2-00.<name>,
 * closes it and renames it over tpm2-00.<name>; its fsync calls are
 * compiled out.  Re-created here with the fsync of the file and of the
 * directory that make it durable (swtpm's later opt-in "fsync" option).
 */
static void bench_swtpm_dir(const char *dir, size_t size, int n, int64_t *t)
{
    g_autofree char *tmp = g_strdup_printf("%s/TMP2-00.permall", dir);
    g_autofree char *dst = g_strdup_printf("%s/tpm2-00.permall", dir);
    g_autofree uint8_t *buf = g_malloc(size);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    int i;

    g_assert(dfd >= 0);
    memset(buf, 0x5a, size);
    for (i = 0; i < n; i++) {
        int64_t start = now_ns();
        int fd;

        buf[i % size] ^= 0xff;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0640);
        g_assert(fd >= 0);
        g_assert(write(fd, buf, size) == size);
        g_assert(fsync(fd) == 0);
        close(fd);
        g_assert(rename(tmp, dst) == 0);
        g_assert(fsync(dfd) == 0);
        t[i] = now_ns() - start;
    }
    close(dfd);
    unlink(dst);
}

/*
 * The kinds of cmd_update take turns, a tenth of the updates each, so
 * that a change of the disk's speed during the run weighs on all alike
 */
#define BENCH_ROUNDS 10

static int cmd_update(const char *dir, int n)
{
    static const size_t sizes[] = { 1024, 64 * 1024, 1024 * 1024 };
    static const char *const kinds[] = {
        "floor", "floor-3-writes", "nvstore-raw", "nvstore-qcow2",
        "swtpm-dir",
    };
    int per = MAX(n / BENCH_ROUNDS, 1), total = per * BENCH_ROUNDS;
    size_t i, k;

    for (i = 0; i < ARRAY_SIZE(sizes); i++) {
        size_t size = sizes[i];
        int64_t *t[ARRAY_SIZE(kinds)];
        int r;

        for (k = 0; k < ARRAY_SIZE(kinds); k++) {
            t[k] = g_new(int64_t, total);
        }
        for (r = 0; r < BENCH_ROUNDS; r++) {
            bench_floor(dir, size, per, t[0] + r * per, false);
            bench_floor(dir, size, per, t[1] + r * per, true);
            bench_nvstore(dir, false, size, per, t[2] + r * per);
            bench_nvstore(dir, true, size, per, t[3] + r * per);
            bench_swtpm_dir(dir, size, per, t[4] + r * per);
        }
        for (k = 0; k < ARRAY_SIZE(kinds); k++) {
            g_autofree char *name = g_strdup_printf("update-%s %zu",
                                                    kinds[k], size);

            print_stats(name, t[k], total);
            g_free(t[k]);
        }
        fflush(stdout);
    }
    return 0;
}

static int cmd_flushes(const char *dir, const char *kind, size_t size, int n)
{
    g_autofree int64_t *t = g_new(int64_t, MAX(n, 1));

    if (!strcmp(kind, "floor")) {
        bench_floor(dir, size, n, t, false);
    } else if (!strcmp(kind, "floor-3-writes")) {
        bench_floor(dir, size, n, t, true);
    } else if (!strcmp(kind, "swtpm-dir")) {
        bench_swtpm_dir(dir, size, n, t);
    } else {
        bench_nvstore(dir, !strcmp(kind, "nvstore-qcow2"), size, n, t);
    }
    return 0;
}

/* The current slot of the raw image at @path */
static NvstoreSlot current_slot(const char *path)
{
    NvstoreSlot slot[NVSTORE_NB_SLOTS];
    int fd = open(path, O_RDONLY);
    int i;

    g_assert(fd >= 0);
    for (i = 0; i < NVSTORE_NB_SLOTS; i++) {
        g_assert(pread(fd, &slot[i], sizeof(slot[i]),
                       NVSTORE_SLOT_OFFSET(i)) == sizeof(slot[i]));
        nvstore_slot_to_cpu(&slot[i]);
    }
    close(fd);
    return slot[slot[1].generation > slot[0].generation];
}

/* The directory length of the current slot, read from the raw image */
static uint64_t dir_length(const char *path)
{
    return current_slot(path).dir_length;
}

/* The encoded directory of the current slot, read from the raw image */
static uint8_t *read_dir(const char *path, size_t *len)
{
    NvstoreSlot slot = current_slot(path);
    uint8_t *buf = g_malloc(slot.dir_length);
    int fd = open(path, O_RDONLY);

    g_assert(fd >= 0);
    g_assert(pread(fd, buf, slot.dir_length, slot.dir_offset) ==
             slot.dir_length);
    close(fd);
    *len = slot.dir_length;
    return buf;
}

/*
 * A new raw image at @path with @n blobs holding @data, all written in
 * one commit, open; @names is set to their names.  Like the TPM
 * backend's blobs (tpm2-00.permall, type tpm) if @tpm, else blob-00000,
 * type raw.
 */
static BlockBackend *create_blobs(const char *path, int n, bool tpm,
                                  const uint8_t *data, size_t len,
                                  char ***names)
{
    g_autofree NvstoreBlobUpdate *u = g_new0(NvstoreBlobUpdate, n);
    BlockBackend *blk = nvs_open(path, false, true);
    int i;

    *names = g_new0(char *, n + 1);
    for (i = 0; i < n; i++) {
        (*names)[i] = tpm ? g_strdup_printf("tpm2-%02d.permall", i)
                          : g_strdup_printf("blob-%05d", i);
        u[i] = (NvstoreBlobUpdate) {
            .name = (*names)[i],
            .type = tpm ? NVSTORE_BLOB_TYPE_TPM : NVSTORE_BLOB_TYPE_RAW,
            .data = data, .len = len,
        };
    }
    nvstore_blob_commit(blk, u, n, &error_abort);
    return blk;
}

/*
 * What an update does with the directory in memory, timed apart: the
 * copy of the committed directory, its encoding, and the free of the
 * old one (nvstore-commit.c).  Median of 11, nanoseconds.
 */
static int64_t dir_cpu_ns(const char *path)
{
    g_autoptr(NvstoreDir) committed = NULL;
    g_autofree uint8_t *buf = NULL;
    int64_t t[11];
    size_t len;
    int k;

    buf = read_dir(path, &len);
    committed = nvstore_dir_parse(buf, len, &error_abort);
    for (k = 0; k < ARRAY_SIZE(t); k++) {
        int64_t start = now_ns();
        NvstoreDir *copy = nvstore_dir_copy(committed);
        g_autofree uint8_t *enc = nvstore_dir_encode(copy, &len,
                                                     &error_abort);

        nvstore_dir_free(copy);
        t[k] = now_ns() - start;
    }
    qsort(t, ARRAY_SIZE(t), sizeof(int64_t), cmp_i64);
    return t[ARRAY_SIZE(t) / 2];
}

static int cmd_scale(const char *dir)
{
    static const int counts[] = { 10, 1000, 10000 };
    uint8_t data[64];
    size_t i;

    memset(data, 0xa5, sizeof(data));
    for (i = 0; i < ARRAY_SIZE(counts); i++) {
        g_autofree char *path = g_strdup_printf("%s/scale.nvs", dir);
        g_auto(GStrv) names = NULL;
        int64_t open_t[5], upd_t[21], floor_t[21], cpu;
        size_t mem = 0, mem_list = 0;
        BlockBackend *blk;
        struct stat st;
        int k;

        blk = create_blobs(path, counts[i], false, data, sizeof(data),
                           &names);
        for (k = 0; k < ARRAY_SIZE(upd_t); k++) {
            int64_t start;

            data[0] = k;
            start = now_ns();
            put(blk, names[k % counts[i]], data, sizeof(data));
            upd_t[k] = now_ns() - start;
        }
        blk_unref(blk);

        for (k = 0; k < ARRAY_SIZE(open_t); k++) {
            g_auto(GStrv) list = NULL;
            int64_t start = now_ns();
            size_t before = mallinfo2().uordblks;

            blk = nvs_open(path, false, false);
            /* Heap in use by the open node; then with the caller's list */
            mem = mallinfo2().uordblks - before;
            list = nvstore_blob_list(blk, &error_abort);
            open_t[k] = now_ns() - start;
            g_assert_cmpint(g_strv_length(list), ==, counts[i]);
            mem_list = mallinfo2().uordblks - before;
            blk_unref(blk);
        }
        g_assert(stat(path, &st) == 0);
        cpu = dir_cpu_ns(path);
        /*
         * The floor of an update's writes at this size, without QEMU:
         * bench_floor()'s layout with a write of the directory's size
         * (and the blob's), a small write and the slot, one fdatasync
         */
        bench_floor(dir, dir_length(path) + sizeof(data),
                    ARRAY_SIZE(floor_t), floor_t, true);
        qsort(open_t, ARRAY_SIZE(open_t), sizeof(int64_t), cmp_i64);
        qsort(upd_t, ARRAY_SIZE(upd_t), sizeof(int64_t), cmp_i64);
        qsort(floor_t, ARRAY_SIZE(floor_t), sizeof(int64_t), cmp_i64);
        printf("scale %d open+list-us %.1f update-us %.1f dir-bytes %" PRIu64
               " image-bytes %" PRId64 " heap-bytes %zu heap-with-list-bytes "
               "%zu dir-cpu-us %.1f floor-us %.1f\n", counts[i],
               open_t[ARRAY_SIZE(open_t) / 2] / 1000.0,
               upd_t[ARRAY_SIZE(upd_t) / 2] / 1000.0, dir_length(path),
               (int64_t)st.st_size, mem, mem_list, cpu / 1000.0,
               floor_t[ARRAY_SIZE(floor_t) / 2] / 1000.0);
        fflush(stdout);
        unlink(path);
    }
    return 0;
}

/*
 * The directory of 1, 100 and 10,000 blobs like the TPM backend's
 * (named as tpm2-00.permall, type tpm, the 1346 bytes of a new TPM 2.0's
 * permall), written in one commit and then one of them again: its
 * encoded size, the time nvstore_dir_parse() takes to decode it (median
 * of 11 batches of about 100,000 entries each) and the time to open the
 * image and list its blobs (median of 5), which also reads the directory
 * and checks the CRC-32C of the directory and of the blob the last
 * commit wrote.
 */
static int cmd_dir(const char *dir)
{
    static const int counts[] = { 1, 100, 10000 };
    uint8_t data[1346];
    size_t i;

    memset(data, 0xa5, sizeof(data));
    for (i = 0; i < ARRAY_SIZE(counts); i++) {
        g_autofree char *path = g_strdup_printf("%s/dir.nvs", dir);
        g_auto(GStrv) names = NULL;
        NvstoreBlobUpdate u = {
            .type = NVSTORE_BLOB_TYPE_TPM, .data = data, .len = sizeof(data),
        };
        int reps = MAX(1, 100000 / counts[i]);
        int64_t parse_t[11], open_t[5];
        g_autofree uint8_t *buf = NULL;
        BlockBackend *blk;
        size_t len;
        int j, k;

        blk = create_blobs(path, counts[i], true, data, sizeof(data),
                           &names);
        /* The last commit writes one blob, as a TPM's commits do */
        u.name = names[0];
        nvstore_blob_commit(blk, &u, 1, &error_abort);
        blk_unref(blk);

        buf = read_dir(path, &len);
        for (k = 0; k < ARRAY_SIZE(parse_t); k++) {
            int64_t start = now_ns();

            for (j = 0; j < reps; j++) {
                g_autoptr(NvstoreDir) d = nvstore_dir_parse(buf, len,
                                                            &error_abort);

                g_assert_cmpint(d->entries->len, ==, counts[i]);
            }
            parse_t[k] = (now_ns() - start) / reps;
        }
        for (k = 0; k < ARRAY_SIZE(open_t); k++) {
            g_auto(GStrv) list = NULL;
            int64_t start = now_ns();

            blk = nvs_open(path, false, false);
            list = nvstore_blob_list(blk, &error_abort);
            open_t[k] = now_ns() - start;
            g_assert_cmpint(g_strv_length(list), ==, counts[i]);
            blk_unref(blk);
        }
        qsort(parse_t, ARRAY_SIZE(parse_t), sizeof(int64_t), cmp_i64);
        qsort(open_t, ARRAY_SIZE(open_t), sizeof(int64_t), cmp_i64);
        printf("dir %d dir-bytes %zu bytes-per-blob %.1f parse-us %.2f "
               "open+list-us %.1f\n", counts[i], len,
               (double)len / counts[i],
               parse_t[ARRAY_SIZE(parse_t) / 2] / 1000.0,
               open_t[ARRAY_SIZE(open_t) / 2] / 1000.0);
        fflush(stdout);
        unlink(path);
    }
    return 0;
}

/*
 * A pflash-like workload: @n writes of 512 bytes at random offsets of a
 * 540 KiB blob (the size of OVMF_VARS_4M.fd's variable store), then one
 * flush; on an nvstore-blob node (default commit-delay) over an nvstore
 * image, and, the baseline, on a raw file through QEMU's raw driver
 * (what pflash uses for a vars file).  Prints the time of each, in
 * milliseconds, and the number of commits of the nvstore image.
 */
static int64_t pflash_run(BlockBackend *blk, int n, GRand *rand)
{
    uint8_t buf[512];
    int64_t start = now_ns();
    int i;

    for (i = 0; i < n; i++) {
        int64_t offset = g_rand_int_range(rand, 0, 540 * KiB / 512) * 512;

        memset(buf, i, sizeof(buf));
        g_assert(blk_pwrite(blk, offset, sizeof(buf), buf, 0) == 0);
    }
    g_assert(blk_flush(blk) == 0);
    return now_ns() - start;
}

static int cmd_pflash(const char *dir, int n, int runs)
{
    g_autofree char *nvs = g_strdup_printf("%s/pflash.nvs", dir);
    g_autofree char *raw = g_strdup_printf("%s/pflash.raw", dir);
    g_autoptr(GRand) rand = g_rand_new_with_seed(1);
    int r;

    for (r = 0; r < runs; r++) {
        QDict *options = qdict_new();
        BlockBackend *blk;
        int64_t t_nvs, t_raw;
        uint64_t gen0;

        /* nvstore-blob over a new nvstore image with the blob created */
        bdrv_img_create(nvs, "nvstore", NULL, NULL, NULL, UINT64_C(-1), 0,
                        true, &error_abort);
        qdict_put_str(options, "driver", "nvstore-blob");
        qdict_put_str(options, "blob", "uefi-vars");
        qdict_put_str(options, "file.driver", "nvstore");
        qdict_put_str(options, "file.file.filename", nvs);
        blk = blk_new_open(NULL, NULL, options, BDRV_O_RDWR | BDRV_O_RESIZE,
                           &error_abort);
        g_assert(blk_truncate(blk, 540 * KiB, true, PREALLOC_MODE_OFF, 0,
                              &error_abort) == 0);
        gen0 = current_slot(nvs).generation;
        t_nvs = pflash_run(blk, n, rand);
        blk_unref(blk);

        /* The same on a raw file of the same size */
        bdrv_img_create(raw, "raw", NULL, NULL, NULL, 540 * KiB, 0, true,
                        &error_abort);
        options = qdict_new();
        qdict_put_str(options, "driver", "raw");
        blk = blk_new_open(raw, NULL, options, BDRV_O_RDWR, &error_abort);
        t_raw = pflash_run(blk, n, rand);
        blk_unref(blk);

        printf("pflash writes %d nvstore-ms %.1f raw-ms %.1f commits %"
               PRIu64 "\n", n, t_nvs / 1e6, t_raw / 1e6,
               current_slot(nvs).generation - gen0);
        fflush(stdout);
        unlink(nvs);
        unlink(raw);
    }
    return 0;
}

/*
 * @n durable 64 KiB updates of a plain image and of an encrypted one,
 * alternating one by one, so that both see the same disk (whose flush
 * times drift over a run): into @t[0] and @t[1]
 */
static void bench_encrypt_updates(const char *dir, int n, int64_t **t)
{
    static const char *const keys[] = { NULL, "bench-key" };
    g_autofree uint8_t *buf = g_malloc(64 * KiB);
    BlockBackend *blk[2];
    char *path[2];
    int i, k;

    memset(buf, 0x5a, 64 * KiB);
    for (k = 0; k < 2; k++) {
        path[k] = g_strdup_printf("%s/update-%d.nvs", dir, k);
        bench_key = keys[k];
        blk[k] = nvs_open(path[k], false, true);
        for (i = 0; i < BENCH_WARMUP; i++) {
            put(blk[k], "blob", buf, 64 * KiB);
        }
    }
    bench_key = NULL;
    for (i = 0; i < n; i++) {
        for (k = 0; k < 2; k++) {
            /* Which goes first alternates too */
            int kk = (i & 1) ^ k;
            int64_t start;

            buf[i % (64 * KiB)] ^= 0xff;
            start = now_ns();
            put(blk[kk], "blob", buf, 64 * KiB);
            t[kk][i] = now_ns() - start;
        }
    }
    for (k = 0; k < 2; k++) {
        blk_unref(blk[k]);
        unlink(path[k]);
        g_free(path[k]);
    }
}

/*
 * Encrypted vs not: durable 64 KiB updates of a raw image, alternating,
 * and in interleaved rounds open + list of an image of 100 TPM-sized
 * blobs (key slot calibrated to 1 ms); then the cost of that key slot's
 * PBKDF2, which iter-time sets at create, apart
 */
static int cmd_encrypt(const char *dir, int n)
{
    static const char *const keys[] = { NULL, "bench-key" };
    int per = MAX(n / BENCH_ROUNDS, 1), total = per * BENCH_ROUNDS;
    int64_t *t[2], *o[2];
    uint8_t data[1346];
    uint32_t iters = 0;
    int r, k, j;

    object_new_with_props("secret", object_get_objects_root(), "bench-key",
                          &error_abort, "data", "bench", NULL);
    memset(data, 0xa5, sizeof(data));
    for (k = 0; k < 2; k++) {
        t[k] = g_new(int64_t, total);
        o[k] = g_new(int64_t, BENCH_ROUNDS * 5);
    }
    bench_encrypt_updates(dir, total, t);
    for (r = 0; r < BENCH_ROUNDS; r++) {
        for (k = 0; k < 2; k++) {
            g_autofree char *path = g_strdup_printf("%s/enc.nvs", dir);
            g_auto(GStrv) names = NULL;
            BlockBackend *blk;

            bench_key = keys[k];
            blk = create_blobs(path, 100, true, data, sizeof(data), &names);
            blk_unref(blk);
            if (bench_key) {
                /* The PBKDF2 iterations of key slot 0, as calibrated */
                int fd = open(path, O_RDONLY);
                uint8_t be[4];

                g_assert(fd >= 0);
                g_assert(pread(fd, be, 4, NVSTORE_KEYSLOT_OFFSET(0) + 8) == 4);
                close(fd);
                iters = ldl_be_p(be);
            }
            for (j = 0; j < 5; j++) {
                g_auto(GStrv) list = NULL;
                int64_t start = now_ns();

                blk = nvs_open(path, false, false);
                list = nvstore_blob_list(blk, &error_abort);
                o[k][r * 5 + j] = now_ns() - start;
                g_assert_cmpint(g_strv_length(list), ==, 100);
                blk_unref(blk);
            }
            unlink(path);
        }
    }
    bench_key = NULL;
    print_stats("encrypt-update-plain 65536", t[0], total);
    print_stats("encrypt-update-aes256gcm 65536", t[1], total);
    print_stats("encrypt-open-plain 100", o[0], BENCH_ROUNDS * 5);
    print_stats("encrypt-open-aes256gcm 100", o[1], BENCH_ROUNDS * 5);
    /* What the key slot of these images costs at open */
    for (j = 0; j < BENCH_ROUNDS * 5; j++) {
        uint8_t salt[32] = { 0 }, out[32];
        int64_t start = now_ns();

        qcrypto_pbkdf2(QCRYPTO_HASH_ALGO_SHA256, (const uint8_t *)"bench", 5,
                       salt, sizeof(salt), iters, out, sizeof(out),
                       &error_abort);
        o[0][j] = now_ns() - start;
    }
    printf("encrypt-pbkdf2-iterations %" PRIu32 " 0 0\n", iters);
    print_stats("encrypt-pbkdf2", o[0], BENCH_ROUNDS * 5);

    /* The CPU an update adds: AES-256-GCM of 64 KiB, no I/O */
    {
        g_autoptr(QCryptoAead) aead = NULL;
        g_autofree uint8_t *in = g_malloc0(64 * KiB);
        g_autofree uint8_t *out = g_malloc(64 * KiB);
        uint8_t key[32] = { 1 }, nonce[12] = { 0 }, tag[16];

        aead = qcrypto_aead_new(QCRYPTO_AEAD_ALGO_AES_256_GCM, key,
                                sizeof(key), &error_abort);
        for (j = 0; j < total; j++) {
            int64_t start = now_ns();

            qcrypto_aead_encrypt(aead, nonce, sizeof(nonce), NULL, 0, in, out,
                                 64 * KiB, tag, sizeof(tag), &error_abort);
            t[0][j] = now_ns() - start;
        }
        print_stats("encrypt-aes256gcm-cpu 65536", t[0], total);
    }
    for (k = 0; k < 2; k++) {
        g_free(t[k]);
        g_free(o[k]);
    }
    return 0;
}

/*
 * What zeroing freed space costs: @n durable updates of 4 KiB (a TPM's
 * permanent state is about that) and of 64 KiB, of a plain image with
 * wipe-freed on and of one with it off, alternating one by one so that
 * both see the same disk
 */
static int cmd_wipe(const char *dir, int n)
{
    static const size_t sizes[] = { 4 * KiB, 64 * KiB };
    int s, i, k;

    for (s = 0; s < ARRAY_SIZE(sizes); s++) {
        g_autofree uint8_t *buf = g_malloc(sizes[s]);
        int64_t *t[2] = { g_new(int64_t, n), g_new(int64_t, n) };
        BlockBackend *blk[2];
        char *path[2];

        memset(buf, 0x5a, sizes[s]);
        for (k = 0; k < 2; k++) {
            path[k] = g_strdup_printf("%s/wipe-%d.nvs", dir, k);
            bench_no_wipe = k;
            blk[k] = nvs_open(path[k], false, true);
            for (i = 0; i < BENCH_WARMUP; i++) {
                put(blk[k], "blob", buf, sizes[s]);
            }
        }
        bench_no_wipe = false;
        for (i = 0; i < n; i++) {
            for (k = 0; k < 2; k++) {
                int kk = (i & 1) ^ k;
                int64_t start;

                buf[i % sizes[s]] ^= 0xff;
                start = now_ns();
                put(blk[kk], "blob", buf, sizes[s]);
                t[kk][i] = now_ns() - start;
            }
        }
        for (k = 0; k < 2; k++) {
            g_autofree char *name = g_strdup_printf("wipe-update-%s %zu",
                                                    k ? "off" : "on",
                                                    sizes[s]);

            print_stats(name, t[k], n);
            blk_unref(blk[k]);
            unlink(path[k]);
            g_free(path[k]);
            g_free(t[k]);
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    bdrv_init();
    module_call_init(MODULE_INIT_QOM);
    qemu_init_main_loop(&error_abort);

    if (argc == 4 && !strcmp(argv[1], "encrypt")) {
        return cmd_encrypt(argv[2], atoi(argv[3]));
    }
    if (argc == 4 && !strcmp(argv[1], "wipe")) {
        return cmd_wipe(argv[2], atoi(argv[3]));
    }

    if (argc == 4 && !strcmp(argv[1], "update")) {
        return cmd_update(argv[2], atoi(argv[3]));
    }
    if (argc == 6 && !strcmp(argv[1], "flushes")) {
        unsigned long size;

        if (qemu_strtoul(argv[4], NULL, 0, &size) < 0) {
            fprintf(stderr, "invalid size '%s'\n", argv[4]);
            return 2;
        }
        return cmd_flushes(argv[2], argv[3], size, atoi(argv[5]));
    }
    if (argc == 3 && !strcmp(argv[1], "scale")) {
        return cmd_scale(argv[2]);
    }
    if (argc == 3 && !strcmp(argv[1], "dir")) {
        return cmd_dir(argv[2]);
    }
    if (argc == 5 && !strcmp(argv[1], "pflash")) {
        return cmd_pflash(argv[2], atoi(argv[3]), atoi(argv[4]));
    }
    fprintf(stderr, "usage: %s update DIR COUNT | flushes DIR KIND SIZE "
            "COUNT | scale DIR | dir DIR | pflash DIR WRITES RUNS | "
            "encrypt DIR COUNT | wipe DIR COUNT\n",
            argv[0]);
    return 2;
}
