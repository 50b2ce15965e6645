/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * nvstore: the blob exposed as the node's data (option "blob").  A
 * device that knows nothing of nvstore (pflash, qemu-io, qemu-img
 * convert) reads and writes one blob as a disk: a read returns its bytes
 * (the last sector is padded with zeroes), a write request or a truncate
 * replaces the whole blob in one atomic, durable commit.  Without the
 * option the node has no data.
 *
 * This file knows requests and offsets; placement and the update
 * protocol are nvstore-commit.c's.  Errors of guest requests are not
 * reported to the log (a guest could flood it): they are returned, and
 * traced.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/units.h"
#include "nvstore-int.h"
#include "trace.h"

/*
 * Limit of the exposed blob: every request reads the whole blob (its
 * checksum covers all of it) and every write commits all of it
 */
#define NVSTORE_EXPOSED_MAX (256 * MiB)

/*
 * The exposed blob in the committed directory: NULL if there is none
 * (the node then reads as empty) or no option "blob"
 */
static NvstoreEntry *nvstore_exposed_entry(BDRVNvstoreState *s)
{
    return s->blob && s->dir ? nvstore_dir_lookup(s->dir, s->blob) : NULL;
}

bool nvstore_exposed_usable(BlockDriverState *bs, Error **errp)
{
    NvstoreEntry *e = nvstore_exposed_entry(bs->opaque);

    return !e || nvstore_entry_check_usable(e, errp);
}

/* The node's length: that of the exposed blob, in sectors, rounded up */
void nvstore_update_total_sectors(BlockDriverState *bs)
{
    NvstoreEntry *e = nvstore_exposed_entry(bs->opaque);
    uint64_t size = e && !e->unusable ? nvstore_entry_data_size(e) : 0;

    bs->total_sectors = DIV_ROUND_UP(size, BDRV_SECTOR_SIZE);
}

/* Read the exposed blob; none reads as empty; called with s->lock held */
static int coroutine_fn GRAPH_RDLOCK
nvstore_read_exposed(BlockDriverState *bs, uint8_t **data, size_t *len,
                     Error **errp)
{
    NvstoreEntry *e = nvstore_exposed_entry(bs->opaque);

    *data = NULL;
    *len = 0;
    if (!e) {
        return 0;
    }
    if (!nvstore_entry_check_usable(e, errp)) {
        return -ENOTSUP;
    }
    return nvstore_read_entry(bs, e, data, len, errp);
}

/*
 * Replace the exposed blob by @data[0..@len) with the bytes at @offset
 * replaced by @qiov (if any), zero-filled up to @new_len, which is at
 * least @offset plus the size of @qiov; called with s->lock held
 */
static int coroutine_fn GRAPH_RDLOCK
nvstore_write_exposed(BlockDriverState *bs, uint8_t *data, size_t len,
                      uint64_t new_len, uint64_t offset, QEMUIOVector *qiov,
                      Error **errp)
{
    BDRVNvstoreState *s = bs->opaque;
    NvstoreEntry *e = nvstore_exposed_entry(s);
    g_autofree uint8_t *buf = NULL;
    NvstoreBlobUpdate u = {
        .name = s->blob,
        .type = e ? e->type : s->blob_type,
    };

    if (new_len > NVSTORE_EXPOSED_MAX) {
        error_setg(errp, "Blob '%s' would be larger than %" PRIu64 " bytes, "
                   "the limit of option '%s'", s->blob,
                   (uint64_t)NVSTORE_EXPOSED_MAX, NVSTORE_OPT_BLOB);
        return -EFBIG;
    }
    buf = g_try_malloc0(new_len);
    if (!buf && new_len) {
        error_setg(errp, "Blob '%s': cannot allocate %" PRIu64 " bytes",
                   s->blob, new_len);
        return -ENOMEM;
    }
    /* Truncating to zero: @buf is NULL, and memcpy() must not see it */
    if (MIN(len, new_len)) {
        memcpy(buf, data, MIN(len, new_len));
    }
    if (qiov) {
        qemu_iovec_to_buf(qiov, 0, buf + offset, qiov->size);
    }
    u.data = buf;
    u.len = new_len;
    return nvstore_co_commit_locked(bs, &u, 1, errp);
}

/*
 * A read or write request on the exposed blob: a read copies from the
 * blob (padded with zeroes to the node's last sector), a write replaces
 * the whole blob, grown if the request goes past its end, in one atomic,
 * durable commit
 */
static int coroutine_fn GRAPH_RDLOCK
nvstore_co_exposed_rw(BlockDriverState *bs, int64_t offset, int64_t bytes,
                      QEMUIOVector *qiov, bool write)
{
    BDRVNvstoreState *s = bs->opaque;
    g_autofree uint8_t *data = NULL;
    Error *err = NULL;
    size_t len, n = 0;
    int ret;

    qemu_co_mutex_lock(&s->lock);
    ret = nvstore_read_exposed(bs, &data, &len, &err);
    if (ret >= 0 && write) {
        ret = nvstore_write_exposed(bs, data, len,
                                    MAX(len, (uint64_t)offset + bytes),
                                    offset, qiov, &err);
    }
    qemu_co_mutex_unlock(&s->lock);
    if (ret < 0) {
        trace_nvstore_blob_io_error(bs, s->blob, error_get_pretty(err));
        error_free(err);
        return ret;
    }
    if (write) {
        return 0;
    }
    if (offset < len) {
        n = MIN(bytes, len - offset);
        qemu_iovec_from_buf(qiov, 0, data + offset, n);
    }
    if (n < bytes) {
        qemu_iovec_memset(qiov, n, 0, bytes - n);
    }
    return 0;
}

int coroutine_fn GRAPH_RDLOCK
nvstore_co_preadv(BlockDriverState *bs, int64_t offset, int64_t bytes,
                  QEMUIOVector *qiov, BdrvRequestFlags flags)
{
    int ret = nvstore_co_exposed_rw(bs, offset, bytes, qiov, false);

    trace_nvstore_co_preadv(bs, offset, bytes, ret);
    return ret;
}

int coroutine_fn GRAPH_RDLOCK
nvstore_co_pwritev(BlockDriverState *bs, int64_t offset, int64_t bytes,
                   QEMUIOVector *qiov, BdrvRequestFlags flags)
{
    BDRVNvstoreState *s = bs->opaque;
    int ret = s->blob ? nvstore_co_exposed_rw(bs, offset, bytes, qiov, true)
                      : -ENOTSUP;

    trace_nvstore_co_pwritev(bs, offset, bytes, ret);
    return ret;
}

/* Resize the exposed blob, creating it if it does not exist */
int coroutine_fn GRAPH_RDLOCK
nvstore_co_truncate(BlockDriverState *bs, int64_t offset, bool exact,
                    PreallocMode prealloc, BdrvRequestFlags flags,
                    Error **errp)
{
    BDRVNvstoreState *s = bs->opaque;
    g_autofree uint8_t *data = NULL;
    size_t len;
    int ret;

    if (!s->blob) {
        error_setg(errp, "An nvstore node has data only with option '%s'",
                   NVSTORE_OPT_BLOB);
        return -ENOTSUP;
    }
    if (prealloc != PREALLOC_MODE_OFF) {
        error_setg(errp, "Unsupported preallocation mode '%s'",
                   PreallocMode_str(prealloc));
        return -ENOTSUP;
    }
    qemu_co_mutex_lock(&s->lock);
    ret = nvstore_read_exposed(bs, &data, &len, errp);
    if (ret >= 0) {
        ret = nvstore_write_exposed(bs, data, len, offset, 0, NULL, errp);
    }
    qemu_co_mutex_unlock(&s->lock);
    return ret;
}

int64_t coroutine_fn GRAPH_RDLOCK
nvstore_co_getlength(BlockDriverState *bs)
{
    NvstoreEntry *e = nvstore_exposed_entry(bs->opaque);

    return e && !e->unusable ? nvstore_entry_data_size(e) : 0;
}
