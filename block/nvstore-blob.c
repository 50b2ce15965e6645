/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * nvstore: a blob as a node's data.  A device that knows nothing of
 * nvstore (pflash, qemu-io, qemu-img convert, an NBD export) reads and
 * writes one blob as a disk, through a node of driver nvstore-blob over
 * the nvstore node (which has no data of its own).  Also the group
 * commit, which takes the dirty blobs of those nodes along with every
 * commit of the image.
 *
 * The blob is cached in memory (a "view"): a read returns its bytes (the
 * last sector padded with zeroes); a write request changes them and
 * makes the blob dirty.  A dirty blob is committed, with the dirty blobs
 * of every other user of the nvstore node (group commit), at the next
 * flush or FUA write, when the node is inactivated or closed, and at
 * the latest commit-delay after its first unflushed change (0:
 * each write request commits).  A failed commit leaves the blob dirty,
 * and the next flush reports it.
 *
 * This file knows requests, offsets and the cache; placement and the
 * update protocol are nvstore-commit.c's, who writes what
 * nvstore-writers.c's.  Errors of guest requests are not reported to the
 * log (a guest could flood it): they are returned, and traced.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-visit-block-core.h"
#include "qapi/visitor.h"
#include "crypto/memwipe.h"
#include "qemu/units.h"
#include "qemu/timer.h"
#include "qemu/module.h"
#include "nvstore-int.h"
#include "trace.h"

/*
 * Limit of a blob used as a node's data: it is kept in memory and every
 * commit writes all of it
 */
#define NVSTORE_VIEW_MAX (256 * MiB)

/* The options of driver nvstore-blob */
#define NVSTORE_OPT_BLOB        "blob"
#define NVSTORE_OPT_BLOB_TYPE   "blob-type"
#define NVSTORE_OPT_COMMIT_DELAY "commit-delay"

/* The longest commit-delay, in milliseconds */
#define NVSTORE_COMMIT_DELAY_MAX 1000

/*
 * The default commit-delay: firmware writes a variable
 * as a burst of small writes (pflash programs a byte per request, a
 * few thousand requests per variable); 100 ms commits a burst at once
 * and loses at most the last 100 ms of writes that nobody flushed
 */
#define NVSTORE_BLOB_COMMIT_DELAY_DEFAULT 100

struct NvstoreBlobView {
    /* The node whose data the blob is */
    BlockDriverState *bs;
    /* The nvstore node that holds the blob: @bs's file, fixed */
    BlockDriverState *store;
    char *name;
    /* Its type, if a write creates it; an existing blob's, once loaded */
    char *type;
    /* Whether an existing blob must have @type */
    bool type_given;
    /* 0: every write request commits */
    int64_t delay_ns;
    /* Registered as the blob's writer (nvstore-writers.c) */
    bool claimed;
    /* Claimed by a reopen that may still be aborted */
    bool claimed_by_reopen;

    /*
     * Serialises the requests that change @data (writes, truncates): a
     * change that commits at once and fails is undone, which is only
     * right if no other change followed it while it waited for its
     * commit
     */
    CoMutex lock;

    /*
     * The contents, as users see them; NULL until first used.  @data,
     * @gen and @committed are used in the AioContext of @bs only, which
     * is @store's (a node shares its children's), and nothing yields
     * while it reads or changes them: the requests of @bs, and the
     * commits of @store that take the dirty blob along
     * (nvstore_view_collect() and nvstore_views_committed()).  Changes
     * are serialised by @lock besides.
     */
    GByteArray *data;
    /* Counts the changes of @data, and the last one committed */
    uint64_t gen;
    uint64_t committed;
    /* Commits a dirty blob at @deadline; NULL while detached */
    QEMUTimer *timer;
    int64_t deadline;
};

/* The state of a node of driver nvstore-blob */
typedef struct BDRVNvstoreBlobState {
    NvstoreBlobView *view;
} BDRVNvstoreBlobState;

static BlockDriver bdrv_nvstore_blob;

/* ---- The view: the blob in memory ---------------------------------------- */

/* The view of @bs, a node of driver nvstore-blob; NULL while it opens */
static NvstoreBlobView *nvstore_node_view(BlockDriverState *bs)
{
    return ((BDRVNvstoreBlobState *)bs->opaque)->view;
}

/* The nvstore node that holds the blob */
static BlockDriverState *nvstore_view_store(NvstoreBlobView *v)
{
    return v->store;
}

static bool nvstore_view_dirty(NvstoreBlobView *v)
{
    return v->data && v->gen != v->committed;
}

/* The blob's length, as the node's users see it */
static uint64_t nvstore_view_length(NvstoreBlobView *v)
{
    BDRVNvstoreState *s = nvstore_view_store(v)->opaque;
    NvstoreEntry *e;

    if (v->data) {
        return v->data->len;
    }
    e = s->dir ? nvstore_dir_lookup(s->dir, v->name) : NULL;
    return e && !nvstore_entry_unusable(e) ? nvstore_entry_data_size(e) : 0;
}

static void nvstore_view_update_length(NvstoreBlobView *v)
{
    v->bs->total_sectors = DIV_ROUND_UP(nvstore_view_length(v),
                                        BDRV_SECTOR_SIZE);
}

/* An existing blob must have the type that option blob-type gave */
static bool nvstore_view_check_type(NvstoreBlobView *v, NvstoreEntry *e,
                                    Error **errp)
{
    if (v->type_given && e && strcmp(e->type, v->type)) {
        error_setg(errp, "Blob '%s' is of type '%s', not '%s'", v->name,
                   e->type, v->type);
        return false;
    }
    return true;
}

/*
 * Read the blob into memory if it is not there yet; a blob that does not
 * exist is empty.  The store's lock is held.
 */
static int coroutine_fn GRAPH_RDLOCK
nvstore_co_view_load_locked(NvstoreBlobView *v, Error **errp)
{
    BlockDriverState *store = nvstore_view_store(v);
    BDRVNvstoreState *s = store->opaque;
    uint8_t *buf;
    NvstoreEntry *e;
    size_t len;
    int ret;

    qemu_co_mutex_assert_locked(&s->lock);
    if (v->data) {
        return 0;
    }
    if (!s->dir) {
        error_setg(errp, "The nvstore image has no valid directory");
        return -EIO;
    }
    e = nvstore_dir_lookup(s->dir, v->name);
    if (!e) {
        v->data = g_byte_array_new();
        return 0;
    }
    if (!nvstore_entry_check_usable(e, errp)) {
        return -ENOTSUP;
    }
    if (!nvstore_view_check_type(v, e, errp)) {
        return -EINVAL;
    }
    ret = nvstore_read_entry(store, e, &buf, &len, errp);
    if (ret < 0) {
        return ret;
    }
    g_free(v->type);
    v->type = g_strdup(e->type);
    v->data = g_byte_array_new_take(buf, len);
    return 0;
}

static int coroutine_fn GRAPH_RDLOCK
nvstore_co_view_load(NvstoreBlobView *v, Error **errp)
{
    BDRVNvstoreState *s = nvstore_view_store(v)->opaque;

    QEMU_LOCK_GUARD(&s->lock);
    return nvstore_co_view_load_locked(v, errp);
}

/*
 * Commit the dirty blobs of every view of nvstore node @store in one
 * commit; nothing if none is dirty
 */
static int coroutine_fn GRAPH_RDLOCK
nvstore_co_commit_dirty(BlockDriverState *store, Error **errp)
{
    BDRVNvstoreState *s = store->opaque;

    QEMU_LOCK_GUARD(&s->lock);
    return nvstore_co_commit_locked(store, NULL, 0, errp);
}

/* Commit @v's blob, and with it every other dirty blob of the store */
static int coroutine_fn GRAPH_RDLOCK
nvstore_co_view_commit(NvstoreBlobView *v, Error **errp)
{
    int ret = nvstore_co_commit_dirty(nvstore_view_store(v), errp);

    trace_nvstore_view_commit(v->bs, v->name, ret);
    return ret;
}

static void coroutine_fn nvstore_view_commit_entry(void *opaque)
{
    NvstoreBlobView *v = opaque;
    Error *err = NULL;

    bdrv_graph_co_rdlock();
    if (nvstore_co_view_commit(v, &err) < 0) {
        /* The blob stays dirty: the next flush tries again and fails */
        trace_nvstore_blob_io_error(v->bs, v->name, error_get_pretty(err));
        error_free(err);
    }
    bdrv_graph_co_rdunlock();
    bdrv_dec_in_flight(v->bs);
}

/* commit-delay has passed: commit, in a coroutine accounted in flight */
static void nvstore_view_timer_cb(void *opaque)
{
    NvstoreBlobView *v = opaque;
    Coroutine *co = qemu_coroutine_create(nvstore_view_commit_entry, v);

    bdrv_inc_in_flight(v->bs);
    aio_co_enter(bdrv_get_aio_context(v->bs), co);
}

static void nvstore_view_attach_timer(NvstoreBlobView *v, AioContext *ctx)
{
    v->timer = aio_timer_new(ctx, QEMU_CLOCK_REALTIME, SCALE_NS,
                             nvstore_view_timer_cb, v);
    if (nvstore_view_dirty(v) && v->delay_ns) {
        timer_mod(v->timer, v->deadline);
    }
}

static void nvstore_view_detach_timer(NvstoreBlobView *v)
{
    if (v->timer) {
        timer_free(v->timer);
        v->timer = NULL;
    }
}

/* After a change of @data: commit now or arm the timer */
static int coroutine_fn GRAPH_RDLOCK
nvstore_co_view_changed(NvstoreBlobView *v, bool fua, Error **errp)
{
    v->gen++;
    nvstore_view_update_length(v);
    if (fua || !v->delay_ns) {
        return nvstore_co_view_commit(v, errp);
    }
    if (v->timer && !timer_pending(v->timer)) {
        v->deadline = qemu_clock_get_ns(QEMU_CLOCK_REALTIME) + v->delay_ns;
        timer_mod(v->timer, v->deadline);
    }
    return 0;
}

/*
 * Free a copy of a blob's data.  A blob may be a TPM's secrets, which
 * an encrypted image keeps encrypted everywhere but here: no copy is
 * left behind in freed memory.
 */
static void nvstore_bytes_free(GByteArray *b)
{
    if (b) {
        qcrypto_memwipe(b->data, b->len);
        g_byte_array_unref(b);
    }
}

/* Resize the blob in memory to @len, zero-filled */
static int nvstore_view_resize(NvstoreBlobView *v, uint64_t len, Error **errp)
{
    uint64_t old = v->data->len;
    GByteArray *grown;

    if (len > NVSTORE_VIEW_MAX) {
        error_setg(errp, "Blob '%s' would be larger than %" PRIu64 " bytes, "
                   "the limit of a blob used as a node's data", v->name,
                   (uint64_t)NVSTORE_VIEW_MAX);
        return -EFBIG;
    }
    if (len <= old) {
        qcrypto_memwipe(v->data->data + len, old - len);
        g_byte_array_set_size(v->data, len);
        return 0;
    }
    /* Not g_byte_array_set_size(): realloc() would leave the old copy */
    grown = g_byte_array_sized_new(len);
    g_byte_array_append(grown, v->data->data, old);
    g_byte_array_set_size(grown, len);
    memset(grown->data + old, 0, len - old);
    nvstore_bytes_free(v->data);
    v->data = grown;
    return 0;
}

/* What a change that commits at once restores if its commit fails */
typedef struct NvstoreViewUndo {
    GByteArray *data;
    uint64_t gen;
} NvstoreViewUndo;

static void nvstore_view_save(NvstoreBlobView *v, NvstoreViewUndo *undo)
{
    undo->data = g_byte_array_sized_new(v->data->len);
    g_byte_array_append(undo->data, v->data->data, v->data->len);
    undo->gen = v->gen;
}

/* Restore what nvstore_view_save() saved in @undo, if @ret failed */
static void nvstore_view_undo(NvstoreBlobView *v, NvstoreViewUndo *undo,
                              int ret)
{
    if (ret < 0 && undo->data) {
        nvstore_bytes_free(v->data);
        v->data = g_steal_pointer(&undo->data);
        v->gen = undo->gen;
        nvstore_view_update_length(v);
    }
    g_clear_pointer(&undo->data, nvstore_bytes_free);
}

/*
 * Write @qiov at @offset of the blob in memory; past the blob's end,
 * within the node's last sector, the blob grows.  A write that commits
 * (@fua, or no commit-delay) and fails leaves the blob as it was.
 */
static int coroutine_fn GRAPH_RDLOCK
nvstore_co_view_write(NvstoreBlobView *v, int64_t offset, int64_t bytes,
                      QEMUIOVector *qiov, bool fua, Error **errp)
{
    NvstoreViewUndo undo = { 0 };
    int ret = 0;

    QEMU_LOCK_GUARD(&v->lock);
    if (fua || !v->delay_ns) {
        nvstore_view_save(v, &undo);
    }
    if (offset + bytes > v->data->len) {
        ret = nvstore_view_resize(v, offset + bytes, errp);
    }
    if (ret >= 0) {
        qemu_iovec_to_buf(qiov, 0, v->data->data + offset, bytes);
        ret = nvstore_co_view_changed(v, fua, errp);
    }
    nvstore_view_undo(v, &undo, ret);
    return ret;
}

static int coroutine_fn GRAPH_RDLOCK
nvstore_co_view_rw(NvstoreBlobView *v, int64_t offset, int64_t bytes,
                   QEMUIOVector *qiov, BdrvRequestFlags flags, bool write)
{
    Error *err = NULL;
    size_t n = 0;
    int ret;

    ret = nvstore_co_view_load(v, &err);
    if (ret >= 0 && write) {
        ret = nvstore_co_view_write(v, offset, bytes, qiov,
                                    flags & BDRV_REQ_FUA, &err);
    } else if (ret >= 0) {
        if (offset < v->data->len) {
            n = MIN(bytes, v->data->len - offset);
            qemu_iovec_from_buf(qiov, 0, v->data->data + offset, n);
        }
        if (n < bytes) {
            qemu_iovec_memset(qiov, n, 0, bytes - n);
        }
    }
    if (ret < 0) {
        trace_nvstore_blob_io_error(v->bs, v->name, error_get_pretty(err));
        error_free(err);
    }
    return ret < 0 ? ret : 0;
}

static int coroutine_fn GRAPH_RDLOCK
nvstore_co_view_truncate(NvstoreBlobView *v, int64_t offset,
                         PreallocMode prealloc, Error **errp)
{
    NvstoreViewUndo undo = { 0 };
    int ret;

    if (prealloc != PREALLOC_MODE_OFF) {
        error_setg(errp, "Unsupported preallocation mode '%s'",
                   PreallocMode_str(prealloc));
        return -ENOTSUP;
    }
    ret = nvstore_co_view_load(v, errp);
    if (ret < 0) {
        return ret;
    }
    /* A resize is metadata: durable when it returns, or not done at all */
    QEMU_LOCK_GUARD(&v->lock);
    nvstore_view_save(v, &undo);
    ret = nvstore_view_resize(v, offset, errp);
    if (ret >= 0) {
        ret = nvstore_co_view_changed(v, true, errp);
    }
    nvstore_view_undo(v, &undo, ret);
    return ret;
}

/* Register @v as the writer of its blob */
static bool nvstore_view_claim(NvstoreBlobView *v, Error **errp)
{
    g_autofree char *who = g_strdup_printf("node '%s'",
                                           bdrv_get_node_name(v->bs));

    if (!v->claimed) {
        if (!nvstore_claim(nvstore_view_store(v), v->name, who, v, errp)) {
            return false;
        }
        v->claimed = true;
    }
    return true;
}

static void nvstore_view_release(NvstoreBlobView *v)
{
    if (v->claimed) {
        nvstore_release(nvstore_view_store(v), v->name);
        v->claimed = false;
    }
}

/*
 * A view of blob @name, of the node @bs.  Claims the blob if the node is
 * writable.
 */
static NvstoreBlobView * GRAPH_RDLOCK
nvstore_view_new(BlockDriverState *bs, const char *name, const char *type,
                 bool type_given, uint32_t delay_ms, Error **errp)
{
    NvstoreBlobView *v = g_new0(NvstoreBlobView, 1);
    BDRVNvstoreState *s;
    NvstoreEntry *e;

    v->bs = bs;
    v->store = bs->file->bs;
    v->name = g_strdup(name);
    v->type = g_strdup(type);
    v->type_given = type_given;
    v->delay_ns = (int64_t)delay_ms * SCALE_MS;
    qemu_co_mutex_init(&v->lock);
    s = v->store->opaque;
    e = s->dir ? nvstore_dir_lookup(s->dir, name) : NULL;
    /* Refused now, rather than read as empty and written over later */
    if ((e && !nvstore_entry_check_usable(e, errp)) ||
        !nvstore_view_check_type(v, e, errp) ||
        (bdrv_is_writable(bs) && !nvstore_view_claim(v, errp))) {
        g_free(v->name);
        g_free(v->type);
        g_free(v);
        return NULL;
    }
    nvstore_view_attach_timer(v, bdrv_get_aio_context(bs));
    return v;
}

/*
 * Free @v: its node is being closed (after a flush) or re-opened by
 * internal snapshot goto (after a drain), so nothing is dirty but what a
 * failed commit left
 */
static void nvstore_view_free(NvstoreBlobView *v)
{
    if (!v) {
        return;
    }
    if (nvstore_view_dirty(v)) {
        trace_nvstore_view_lost(v->bs, v->name);
    }
    nvstore_view_detach_timer(v);
    nvstore_view_release(v);
    nvstore_bytes_free(v->data);
    g_free(v->name);
    g_free(v->type);
    g_free(v);
}

/*
 * After migration hands the image over to this process: drop what was
 * read before (the source may have changed it since), and claim the
 * blob, which an inactive node could not
 */
static int nvstore_view_activate(NvstoreBlobView *v, Error **errp)
{
    g_clear_pointer(&v->data, nvstore_bytes_free);
    v->gen = v->committed = 0;
    nvstore_view_update_length(v);
    if (bdrv_is_writable(v->bs) && !nvstore_view_claim(v, errp)) {
        return -EBUSY;
    }
    return 0;
}

/*
 * Reopen, for both drivers: the block layer flushed the node, so its
 * blob is committed; the options cannot change (strong runtime options).
 * A node that becomes writable claims its blob (and gives it back if the
 * reopen is aborted); one that becomes read-only releases it.
 */
static int nvstore_blob_reopen_prepare(BDRVReopenState *state,
                                      BlockReopenQueue *queue, Error **errp)
{
    NvstoreBlobView *v = nvstore_node_view(state->bs);

    if (v && (state->flags & BDRV_O_RDWR) && !v->claimed) {
        if (!nvstore_view_claim(v, errp)) {
            return -EBUSY;
        }
        v->claimed_by_reopen = true;
    }
    return 0;
}

static void nvstore_blob_reopen_commit(BDRVReopenState *state)
{
    NvstoreBlobView *v = nvstore_node_view(state->bs);

    if (v) {
        v->claimed_by_reopen = false;
        if (!(state->flags & BDRV_O_RDWR)) {
            nvstore_view_release(v);
        }
    }
}

static void nvstore_blob_reopen_abort(BDRVReopenState *state)
{
    NvstoreBlobView *v = nvstore_node_view(state->bs);

    if (v && v->claimed_by_reopen) {
        nvstore_view_release(v);
        v->claimed_by_reopen = false;
    }
}

/* ---- Group commit -------------------------------------------------------- */

/* A dirty blob taken into a commit: its view and the change committed */
typedef struct NvstoreViewMark {
    NvstoreBlobView *view;
    uint64_t gen;
} NvstoreViewMark;

typedef struct NvstoreCollect {
    GArray *updates;
    GArray *marks;
} NvstoreCollect;

static void nvstore_view_collect(NvstoreBlobView *v, void *opaque)
{
    NvstoreCollect *c = opaque;
    NvstoreViewMark m = { v, v->gen };
    NvstoreBlobUpdate u = {
        .name = v->name,
        .type = v->type,
    };

    if (!nvstore_view_dirty(v)) {
        return;
    }
    /* The data may change while the commit yields: commit a copy */
    u.len = v->data->len;
    u.data = u.len ? g_memdup2(v->data->data, u.len) : NULL;
    g_array_append_val(c->updates, u);
    g_array_append_val(c->marks, m);
}

/*
 * After a commit of the updates from index @first of @updates, which
 * nvstore_view_collect() appended for @marks: mark what was committed
 * clean, and free the copies
 */
static void nvstore_views_committed(GArray *updates, size_t first,
                                    GArray *marks, bool ok)
{
    guint i;

    for (i = 0; i < marks->len; i++) {
        NvstoreViewMark *m = &g_array_index(marks, NvstoreViewMark, i);
        NvstoreBlobUpdate *u = &g_array_index(updates, NvstoreBlobUpdate,
                                              first + i);

        if (ok) {
            m->view->committed = m->gen;
        }
        qcrypto_memwipe_free((void *)u->data, u->len);
    }
}

/* A blob of @updates that a blob node writes cannot be changed by others */
static int nvstore_check_writers(BlockDriverState *bs,
                                 const NvstoreBlobUpdate *updates, size_t n,
                                 Error **errp)
{
    size_t i;

    for (i = 0; i < n; i++) {
        g_autofree char *who = updates[i].name ?
                               nvstore_view_writer(bs, updates[i].name) :
                               NULL;

        if (who) {
            error_setg(errp, "Blob '%s' is written by %s", updates[i].name,
                       who);
            return -EBUSY;
        }
    }
    return 0;
}

int coroutine_fn GRAPH_RDLOCK
nvstore_co_commit_locked(BlockDriverState *bs,
                         const NvstoreBlobUpdate *updates, size_t n,
                         Error **errp)
{
    g_autoptr(GArray) all = g_array_new(false, false,
                                        sizeof(NvstoreBlobUpdate));
    g_autoptr(GArray) marks = g_array_new(false, false,
                                          sizeof(NvstoreViewMark));
    BDRVNvstoreState *s = bs->opaque;
    NvstoreCollect c = { all, marks };
    int ret;

    qemu_co_mutex_assert_locked(&s->lock);
    ret = nvstore_check_writers(bs, updates, n, errp);
    if (ret < 0) {
        return ret;
    }
    /* The dirty blobs of the blob nodes come along */
    g_array_append_vals(all, updates, n);
    nvstore_for_each_view(bs, nvstore_view_collect, &c);
    if (!all->len && !updates) {
        /* Nothing dirty to commit */
        return 0;
    }
    ret = nvstore_co_commit_updates(bs, (NvstoreBlobUpdate *)all->data,
                                    all->len, errp);
    nvstore_views_committed(all, n, marks, ret >= 0);
    return ret;
}

int coroutine_fn GRAPH_RDLOCK
nvstore_co_commit(BlockDriverState *bs, const NvstoreBlobUpdate *updates,
                  size_t n, Error **errp)
{
    BDRVNvstoreState *s = bs->opaque;

    QEMU_LOCK_GUARD(&s->lock);
    return nvstore_co_commit_locked(bs, updates, n, errp);
}

/* ---- The data path ------------------------------------------------------ */

static int coroutine_fn GRAPH_RDLOCK
nvstore_blob_co_preadv(BlockDriverState *bs, int64_t offset, int64_t bytes,
                       QEMUIOVector *qiov, BdrvRequestFlags flags)
{
    int ret = nvstore_co_view_rw(nvstore_node_view(bs), offset, bytes, qiov,
                                 flags, false);

    trace_nvstore_co_preadv(bs, offset, bytes, ret);
    return ret;
}

static int coroutine_fn GRAPH_RDLOCK
nvstore_blob_co_pwritev(BlockDriverState *bs, int64_t offset, int64_t bytes,
                        QEMUIOVector *qiov, BdrvRequestFlags flags)
{
    int ret = nvstore_co_view_rw(nvstore_node_view(bs), offset, bytes, qiov,
                                 flags, true);

    trace_nvstore_co_pwritev(bs, offset, bytes, ret);
    return ret;
}

static int coroutine_fn GRAPH_RDLOCK
nvstore_blob_co_truncate(BlockDriverState *bs, int64_t offset, bool exact,
                         PreallocMode prealloc, BdrvRequestFlags flags,
                         Error **errp)
{
    return nvstore_co_view_truncate(nvstore_node_view(bs), offset, prealloc,
                                    errp);
}

static int64_t coroutine_fn GRAPH_RDLOCK
nvstore_blob_co_getlength(BlockDriverState *bs)
{
    return nvstore_view_length(nvstore_node_view(bs));
}

/* A flush commits the blob, and every other dirty blob of the store */
static int coroutine_fn GRAPH_RDLOCK
nvstore_blob_co_flush_to_os(BlockDriverState *bs)
{
    NvstoreBlobView *v = nvstore_node_view(bs);
    Error *err = NULL;
    int ret = nvstore_co_view_commit(v, &err);

    if (ret < 0) {
        trace_nvstore_blob_io_error(bs, v->name, error_get_pretty(err));
        error_free(err);
    }
    return ret;
}

/* Before migration hands the image over: commit */
static int GRAPH_RDLOCK nvstore_blob_inactivate(BlockDriverState *bs)
{
    return bdrv_flush(bs);
}

/*
 * No commit starts in a drained section: the timer stops at its
 * beginning and starts again, for the same deadline, at its end (data
 * stay in memory: a drain is no flush)
 */
static void nvstore_blob_drain_begin(BlockDriverState *bs)
{
    NvstoreBlobView *v = nvstore_node_view(bs);

    if (v && v->timer) {
        timer_del(v->timer);
    }
}

static void nvstore_blob_drain_end(BlockDriverState *bs)
{
    NvstoreBlobView *v = nvstore_node_view(bs);

    if (v && v->timer && nvstore_view_dirty(v) && v->delay_ns) {
        timer_mod(v->timer, v->deadline);
    }
}

static void nvstore_blob_detach_aio_context(BlockDriverState *bs)
{
    NvstoreBlobView *v = nvstore_node_view(bs);

    if (v) {
        nvstore_view_detach_timer(v);
    }
}

static void nvstore_blob_attach_aio_context(BlockDriverState *bs,
                                            AioContext *ctx)
{
    NvstoreBlobView *v = nvstore_node_view(bs);

    if (v) {
        nvstore_view_attach_timer(v, ctx);
    }
}

/* ---- Driver nvstore-blob ------------------------------------------------- */

static int nvstore_blob_node_open(BlockDriverState *bs, QDict *options,
                                  int flags, Error **errp)
{
    ERRP_GUARD();
    static const char *const keys[] = {
        NVSTORE_OPT_BLOB, NVSTORE_OPT_BLOB_TYPE, NVSTORE_OPT_COMMIT_DELAY, NULL
    };
    BDRVNvstoreBlobState *s = bs->opaque;
    g_autoptr(NvstoreBlobOptions) o = NULL;
    const char *name, *type;
    uint32_t delay;
    Visitor *v;
    int ret;

    v = nvstore_options_visitor(options, keys, errp);
    if (!v) {
        return -EINVAL;
    }
    visit_type_NvstoreBlobOptions(v, NULL, &o, errp);
    visit_free(v);
    if (!o) {
        return -EINVAL;
    }
    name = o->blob;
    type = o->blob_type;
    delay = o->has_commit_delay ? o->commit_delay :
            NVSTORE_BLOB_COMMIT_DELAY_DEFAULT;
    if (delay > NVSTORE_COMMIT_DELAY_MAX) {
        error_setg(errp, "Option '%s' must be at most %d (milliseconds)",
                   NVSTORE_OPT_COMMIT_DELAY, NVSTORE_COMMIT_DELAY_MAX);
        return -EINVAL;
    }
    if (!nvstore_check_name_type(name, type, errp)) {
        error_prepend(errp, "Invalid option '%s' or '%s': ",
                      NVSTORE_OPT_BLOB, NVSTORE_OPT_BLOB_TYPE);
        return -EINVAL;
    }

    ret = bdrv_open_file_child(NULL, options, "file", bs, errp);
    if (ret < 0) {
        return ret;
    }
    bdrv_graph_rdlock_main_loop();
    if (bs->file->bs->drv != &bdrv_nvstore) {
        error_setg(errp, "The file of an nvstore-blob node must be an "
                   "nvstore node, not a node of driver '%s'",
                   bs->file->bs->drv->format_name);
        ret = -EINVAL;
    } else {
        s->view = nvstore_view_new(bs, name, type ?: NVSTORE_BLOB_TYPE_RAW,
                                   type != NULL, delay, errp);
        ret = s->view ? 0 : -EBUSY;
    }
    if (ret >= 0) {
        nvstore_view_update_length(s->view);
    }
    bdrv_graph_rdunlock_main_loop();
    bs->supported_write_flags = BDRV_REQ_FUA;
    return ret;
}

static void nvstore_blob_node_close(BlockDriverState *bs)
{
    BDRVNvstoreBlobState *s = bs->opaque;

    g_clear_pointer(&s->view, nvstore_view_free);
}

static void coroutine_fn GRAPH_RDLOCK
nvstore_blob_node_co_invalidate_cache(BlockDriverState *bs, Error **errp)
{
    BDRVNvstoreBlobState *s = bs->opaque;

    nvstore_view_activate(s->view, errp);
}

/*
 * The nvstore node arbitrates between the writers of its blobs: share
 * its write permission with them, and do not resize it
 */
static void nvstore_blob_node_child_perm(BlockDriverState *bs, BdrvChild *c,
                                         BdrvChildRole role,
                                         BlockReopenQueue *reopen_queue,
                                         uint64_t perm, uint64_t shared,
                                         uint64_t *nperm, uint64_t *nshared)
{
    bdrv_default_perms(bs, c, role, reopen_queue, perm, shared, nperm,
                       nshared);
    *nperm &= ~BLK_PERM_RESIZE;
    *nshared |= BLK_PERM_WRITE | BLK_PERM_WRITE_UNCHANGED;
}

static const char *const nvstore_blob_node_strong_runtime_opts[] = {
    NVSTORE_OPT_BLOB,
    NVSTORE_OPT_BLOB_TYPE,

    NULL
};

static BlockDriver bdrv_nvstore_blob = {
    .format_name            = "nvstore-blob",
    .instance_size          = sizeof(BDRVNvstoreBlobState),
    /* Never the VM state's node unless named: it is nvstore's */
    .no_implicit_vmstate    = true,
    .strong_runtime_opts    = nvstore_blob_node_strong_runtime_opts,

    .bdrv_open              = nvstore_blob_node_open,
    .bdrv_close             = nvstore_blob_node_close,
    .bdrv_reopen_prepare    = nvstore_blob_reopen_prepare,
    .bdrv_reopen_commit     = nvstore_blob_reopen_commit,
    .bdrv_reopen_abort      = nvstore_blob_reopen_abort,
    .bdrv_child_perm        = nvstore_blob_node_child_perm,
    .bdrv_co_invalidate_cache = nvstore_blob_node_co_invalidate_cache,
    .bdrv_inactivate        = nvstore_blob_inactivate,
    .bdrv_drain_begin       = nvstore_blob_drain_begin,
    .bdrv_drain_end         = nvstore_blob_drain_end,
    .bdrv_detach_aio_context = nvstore_blob_detach_aio_context,
    .bdrv_attach_aio_context = nvstore_blob_attach_aio_context,

    .bdrv_co_preadv         = nvstore_blob_co_preadv,
    .bdrv_co_pwritev        = nvstore_blob_co_pwritev,
    .bdrv_co_truncate       = nvstore_blob_co_truncate,
    .bdrv_co_getlength      = nvstore_blob_co_getlength,
    .bdrv_co_flush_to_os    = nvstore_blob_co_flush_to_os,
};

static void bdrv_nvstore_blob_init(void)
{
    bdrv_register(&bdrv_nvstore_blob);
}

block_init(bdrv_nvstore_blob_init);
