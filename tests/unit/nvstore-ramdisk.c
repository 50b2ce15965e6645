/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * A block node in memory that can lose power (see nvstore-ramdisk.h).
 *
 * It keeps the contents as of the last completed flush and a log of the
 * writes and truncates since; a power cut replays a random subset of the
 * log, in a random order, over the flushed contents, tearing some writes.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "block/block_int.h"
#include "nvstore-ramdisk.h"

#define RAMDISK_SECTOR 512

typedef struct RamdiskOp {
    uint64_t offset;
    GByteArray *data;       /* NULL: a truncate to @offset */
} RamdiskOp;

struct NvstoreRamdisk {
    GByteArray *contents;   /* what reads see */
    GByteArray *flushed;    /* the contents at the last completed flush */
    GPtrArray *log;         /* RamdiskOp since then */
    size_t max_len;
    uint64_t requests;
    uint64_t cut_at;
    GRand *rand;
    uint64_t fail_at;
    int fail_errno;
    GRand *fail_rand;
    GByteArray *crash;
    /* A sector is written whole or not at all */
    bool atomic_sectors;
};

typedef struct BDRVRamdiskState {
    NvstoreRamdisk *disk;
} BDRVRamdiskState;

static NvstoreRamdisk *ramdisk_opening;

static void ramdisk_op_free(gpointer p)
{
    RamdiskOp *op = p;

    if (op->data) {
        g_byte_array_unref(op->data);
    }
    g_free(op);
}

static GByteArray *byte_array_dup(GByteArray *b)
{
    GByteArray *c = g_byte_array_sized_new(b->len);

    g_byte_array_append(c, b->data, b->len);
    return c;
}

/* Write @len bytes of @buf at @offset into @b, growing it with zeroes */
static void put_bytes(GByteArray *b, uint64_t offset, const uint8_t *buf,
                      uint64_t len)
{
    if (!len) {
        return;
    }
    if (offset + len > b->len) {
        size_t old = b->len;

        g_byte_array_set_size(b, offset + len);
        memset(b->data + old, 0, b->len - old);
    }
    memcpy(b->data + offset, buf, len);
}

static void set_size(GByteArray *b, uint64_t size)
{
    size_t old = b->len;

    g_byte_array_set_size(b, size);
    if (size > old) {
        memset(b->data + old, 0, size - old);
    }
}

/* Write @len bytes of @buf at @offset into @b, and log it in @log */
static void land(GByteArray *b, GPtrArray *log, uint64_t offset,
                 const uint8_t *buf, uint64_t len)
{
    put_bytes(b, offset, buf, len);
    if (log && len) {
        RamdiskOp *op = g_new0(RamdiskOp, 1);

        op->offset = offset;
        op->data = g_byte_array_sized_new(len);
        g_byte_array_append(op->data, buf, len);
        g_ptr_array_add(log, op);
    }
}

/*
 * Apply @op to @b as far as a power cut or an error lets it: dropped,
 * done, or (a write) torn, with @rand choosing; everything it wrote is
 * also logged in @log if not NULL.  @all: done.
 */
static void crash_apply(GRand *rand, GByteArray *b, RamdiskOp *op,
                        bool all, bool atomic_sectors, GPtrArray *log)
{
    uint64_t pos, end, next, torn_sector = UINT64_MAX;

    switch (all ? 1 : g_rand_int_range(rand, 0, 3)) {
    case 0:                                 /* lost */
        return;
    case 1:                                 /* done */
        if (op->data) {
            land(b, log, op->offset, op->data->data, op->data->len);
        } else {
            set_size(b, op->offset);
        }
        return;
    }
    if (!op->data || !op->data->len) {
        /* A truncate is done or not */
        return;
    }
    /*
     * Torn: each sector is written or not; one may be torn within: some
     * of its new bytes written, and the rest of it sometimes garbage
     */
    end = op->offset + op->data->len;
    if (!atomic_sectors && g_rand_boolean(rand)) {
        torn_sector = op->offset / RAMDISK_SECTOR +
            g_rand_int_range(rand, 0,
                             (end - 1) / RAMDISK_SECTOR -
                             op->offset / RAMDISK_SECTOR + 1);
    }
    for (pos = op->offset; pos < end; pos = next) {
        const uint8_t *buf = op->data->data + (pos - op->offset);
        uint64_t n;

        next = MIN(end, ROUND_DOWN(pos, RAMDISK_SECTOR) + RAMDISK_SECTOR);
        n = next - pos;
        if (pos / RAMDISK_SECTOR == torn_sector) {
            uint64_t k = g_rand_int_range(rand, 0, n + 1);

            land(b, log, pos, buf, k);
            if (k < n && g_rand_int_range(rand, 0, 4) == 0) {
                g_autofree uint8_t *garbage = g_malloc(n - k);
                uint64_t i;

                for (i = 0; i < n - k; i++) {
                    garbage[i] = g_rand_int(rand);
                }
                land(b, log, pos + k, garbage, n - k);
            }
        } else if (g_rand_boolean(rand)) {
            land(b, log, pos, buf, n);
        }
    }
}

/*
 * The disk as a power cut now leaves it: the contents at the last
 * completed flush, plus a subset of the writes and truncates since, in
 * any order, some torn
 */
static GByteArray *power_cut_image(NvstoreRamdisk *d, GRand *rand)
{
    guint i, n = d->log->len;
    g_autofree guint *order = g_new(guint, n);
    /* One time in four, every request got through, but not the flush */
    bool all = g_rand_int_range(rand, 0, 4) == 0;
    GByteArray *b;

    /* Any order: a random permutation of the log (inside-out shuffle) */
    for (i = 0; i < n; i++) {
        guint j = g_rand_int_range(rand, 0, i + 1);

        if (j != i) {
            order[i] = order[j];
        }
        order[j] = i;
    }
    b = byte_array_dup(d->flushed);
    for (i = 0; i < n; i++) {
        crash_apply(rand, b, g_ptr_array_index(d->log, order[i]), all,
                    d->atomic_sectors, NULL);
    }
    return b;
}

/*
 * Count a write, truncate or flush request @op (NULL: a flush).  Returns
 * 0 if it may go on, a negative errno value if it fails: after the power
 * cut, or if it is the one to fail.
 */
static int ramdisk_request(NvstoreRamdisk *d, RamdiskOp *op)
{
    d->requests++;
    if (d->crash) {
        if (op) {
            ramdisk_op_free(op);
        }
        return -EIO;
    }
    if (d->requests == d->fail_at) {
        if (op && op->data && d->fail_rand) {
            /* A failed write may have been done, or in part */
            crash_apply(d->fail_rand, d->contents, op, false,
                        d->atomic_sectors, d->log);
        }
        if (op) {
            ramdisk_op_free(op);
        }
        return -d->fail_errno;
    }
    if (op) {
        g_ptr_array_add(d->log, op);
    }
    if (d->cut_at && d->requests >= d->cut_at) {
        d->crash = power_cut_image(d, d->rand);
        return -EIO;
    }
    return 0;
}

static int ramdisk_open(BlockDriverState *bs, QDict *options, int flags,
                        Error **errp)
{
    BDRVRamdiskState *s = bs->opaque;

    s->disk = ramdisk_opening;
    return 0;
}

static int64_t coroutine_fn ramdisk_co_getlength(BlockDriverState *bs)
{
    BDRVRamdiskState *s = bs->opaque;

    return s->disk->contents->len;
}

static int coroutine_fn ramdisk_co_preadv(BlockDriverState *bs,
                                          int64_t offset, int64_t bytes,
                                          QEMUIOVector *qiov,
                                          BdrvRequestFlags flags)
{
    BDRVRamdiskState *s = bs->opaque;
    GByteArray *b = s->disk->contents;
    uint64_t avail;

    if (s->disk->crash) {
        return -EIO;
    }
    /* Past the end reads as zeroes */
    avail = offset < b->len ? MIN(bytes, b->len - offset) : 0;
    if (avail) {
        qemu_iovec_from_buf(qiov, 0, b->data + offset, avail);
    }
    qemu_iovec_memset(qiov, avail, 0, bytes - avail);
    return 0;
}

static int coroutine_fn ramdisk_co_pwritev(BlockDriverState *bs,
                                           int64_t offset, int64_t bytes,
                                           QEMUIOVector *qiov,
                                           BdrvRequestFlags flags)
{
    BDRVRamdiskState *s = bs->opaque;
    NvstoreRamdisk *d = s->disk;
    RamdiskOp *op;
    int ret;

    if (offset + bytes > d->max_len) {
        return -ENOSPC;
    }
    op = g_new0(RamdiskOp, 1);
    op->offset = offset;
    op->data = g_byte_array_sized_new(bytes);
    g_byte_array_set_size(op->data, bytes);
    qemu_iovec_to_buf(qiov, 0, op->data->data, bytes);
    ret = ramdisk_request(d, op);
    if (ret < 0) {
        return ret;
    }
    put_bytes(d->contents, offset, op->data->data, bytes);
    return 0;
}

static int coroutine_fn ramdisk_co_truncate(BlockDriverState *bs,
                                            int64_t offset, bool exact,
                                            PreallocMode prealloc,
                                            BdrvRequestFlags flags,
                                            Error **errp)
{
    BDRVRamdiskState *s = bs->opaque;
    NvstoreRamdisk *d = s->disk;
    RamdiskOp *op;
    int ret;

    if (prealloc != PREALLOC_MODE_OFF) {
        error_setg(errp, "Preallocation is not supported");
        return -ENOTSUP;
    }
    if (offset > d->max_len) {
        error_setg_errno(errp, ENOSPC, "The ramdisk is full");
        return -ENOSPC;
    }
    op = g_new0(RamdiskOp, 1);
    op->offset = offset;
    ret = ramdisk_request(d, op);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Could not resize the ramdisk");
        return ret;
    }
    set_size(d->contents, offset);
    return 0;
}

static int coroutine_fn ramdisk_co_flush(BlockDriverState *bs)
{
    BDRVRamdiskState *s = bs->opaque;
    NvstoreRamdisk *d = s->disk;
    int ret = ramdisk_request(d, NULL);

    if (ret < 0) {
        return ret;
    }
    g_byte_array_unref(d->flushed);
    d->flushed = byte_array_dup(d->contents);
    g_ptr_array_set_size(d->log, 0);
    return 0;
}

static BlockDriver bdrv_nvstore_ramdisk = {
    .format_name            = "nvstore-ramdisk",
    .instance_size          = sizeof(BDRVRamdiskState),
    .bdrv_open              = ramdisk_open,
    .bdrv_co_getlength      = ramdisk_co_getlength,
    .bdrv_co_preadv         = ramdisk_co_preadv,
    .bdrv_co_pwritev        = ramdisk_co_pwritev,
    .bdrv_co_truncate       = ramdisk_co_truncate,
    .bdrv_co_flush_to_disk  = ramdisk_co_flush,
};

NvstoreRamdisk *nvstore_ramdisk_new(const void *data, size_t len,
                                    size_t max_len)
{
    NvstoreRamdisk *d = g_new0(NvstoreRamdisk, 1);

    /* GByteArray lengths are guint */
    assert(max_len <= G_MAXUINT);
    d->contents = g_byte_array_sized_new(len);
    g_byte_array_append(d->contents, data, len);
    d->flushed = byte_array_dup(d->contents);
    d->log = g_ptr_array_new_with_free_func(ramdisk_op_free);
    d->max_len = max_len;
    return d;
}

void nvstore_ramdisk_free(NvstoreRamdisk *d)
{
    if (!d) {
        return;
    }
    g_byte_array_unref(d->contents);
    g_byte_array_unref(d->flushed);
    g_ptr_array_unref(d->log);
    if (d->crash) {
        g_byte_array_unref(d->crash);
    }
    g_free(d);
}

BlockDriverState *nvstore_ramdisk_open(NvstoreRamdisk *d,
                                       const char *node_name, int flags,
                                       Error **errp)
{
    BlockDriverState *bs;

    ramdisk_opening = d;
    bs = bdrv_new_open_driver(&bdrv_nvstore_ramdisk, node_name, flags, errp);
    ramdisk_opening = NULL;
    return bs;
}

void nvstore_ramdisk_cut_power(NvstoreRamdisk *d, uint64_t at, GRand *rand)
{
    d->cut_at = at;
    d->rand = rand;
}

void nvstore_ramdisk_fail_request(NvstoreRamdisk *d, uint64_t at,
                                  int errno_value, GRand *rand)
{
    d->fail_at = at;
    d->fail_errno = errno_value;
    d->fail_rand = rand;
}

GByteArray *nvstore_ramdisk_power_cut_image(NvstoreRamdisk *d, GRand *rand)
{
    return d->crash ? g_byte_array_ref(d->crash) : power_cut_image(d, rand);
}

void nvstore_ramdisk_set_atomic_sectors(NvstoreRamdisk *d, bool atomic)
{
    d->atomic_sectors = atomic;
}

uint64_t nvstore_ramdisk_requests(NvstoreRamdisk *d)
{
    return d->requests;
}

GByteArray *nvstore_ramdisk_crash_image(NvstoreRamdisk *d)
{
    return d->crash;
}

GByteArray *nvstore_ramdisk_contents(NvstoreRamdisk *d)
{
    return d->contents;
}
