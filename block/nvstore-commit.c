/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * nvstore: the update protocol (docs/interop/nvstore.rst, "The update
 * protocol").  A commit applies a set of blob updates to a copy of the
 * committed directory, places the new data and the new directory in
 * space that the committed directory does not reference, grows the
 * child if it must, writes them and the slot that does not hold the
 * committed state, and flushes once.  Until that flush returns, the
 * committed state is untouched on disk, so a crash at any instant leaves
 * either the old state or the new one.
 *
 * Free space is derived from the committed directory at each commit:
 * there is no free list to keep or to corrupt.  Each commit also zeroes
 * what the commit before the committed one referenced and no later one
 * does ("Freed space").
 *
 * Also the close record ("The close record"), which says that the
 * committed generation is complete, written at close.  A commit here is
 * of the updates it is given: the group commit that takes the blob
 * nodes' dirty blobs along is nvstore-blob.c's, above this file.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "block/aio_task.h"
#include "qapi/qapi-events-block-core.h"
#include "nvstore-int.h"
#include "trace.h"

/* One commit in progress, from its first step to its last */
typedef struct NvstoreCommit {
    const NvstoreBlobUpdate *updates;
    size_t n;
    /* Its generation */
    uint64_t gen;
    /* Encrypted images: the data written for each update, or NULL */
    uint8_t **ciphertext;
    /*
     * The new directory, and its encoding at @dir_offset (with its
     * authentication code in an encrypted image)
     */
    NvstoreDir *dir;
    uint8_t *enc;
    size_t enc_len;
    uint64_t dir_offset;
    uint32_t dir_crc32c;
    /* The end of the last range it writes */
    uint64_t end;
    /* It wrote, or may have written, to the image */
    bool wrote;
    /*
     * The ranges that the committed directory references, and those
     * with what the commit places (NULL if unknown: then nothing is
     * wiped)
     */
    GArray *committed_used;
    GArray *used;
} NvstoreCommit;

static gint nvstore_range_cmp(gconstpointer a, gconstpointer b)
{
    const NvstoreRange *x = a, *y = b;

    return x->start < y->start ? -1 : x->start > y->start;
}

/* The ranges the committed directory references, sorted by start */
GArray *nvstore_used_ranges(BDRVNvstoreState *s, bool *unknown)
{
    GArray *used = g_array_new(false, false, sizeof(NvstoreRange));
    NvstoreRange r = { 0, NVSTORE_DATA_OFFSET };
    guint i;

    *unknown = false;
    g_array_append_val(used, r);
    r = (NvstoreRange) { s->dir_offset, s->dir_offset + s->dir_length };
    g_array_append_val(used, r);
    for (i = 0; i < s->dir->entries->len; i++) {
        NvstoreEntry *e = g_ptr_array_index(s->dir->entries, i);
        bool has = e->raw ? e->raw->has_space : e->has_extent;
        const NvstoreExtent *ext = e->raw ? &e->raw->space : &e->extent;

        if (has && ext->length) {
            r = (NvstoreRange) { ext->offset, ext->offset + ext->length };
            g_array_append_val(used, r);
        }
        if (e->raw && e->raw->space_unknown) {
            *unknown = true;
        }
    }
    g_array_sort(used, nvstore_range_cmp);
    return used;
}

/* First fit in the gaps of @used (sorted, may overlap); reserve it there */
static uint64_t nvstore_alloc(GArray *used, uint64_t len)
{
    NvstoreRange r;
    uint64_t pos = 0;
    guint i;

    for (i = 0; i < used->len; i++) {
        NvstoreRange *u = &g_array_index(used, NvstoreRange, i);

        if (u->start >= pos + len && u->start - pos >= len) {
            break;
        }
        pos = MAX(pos, ROUND_UP(u->end, NVSTORE_ALIGN));
    }
    r = (NvstoreRange) { pos, pos + len };
    g_array_insert_val(used, i, r);
    return pos;
}

/*
 * Grow the child to hold @end bytes, if it is smaller.  Storage that
 * cannot grow (an NBD export, a host block device, a fixed-size raw node)
 * or has no room left makes the image full: -ENOSPC, with how much is
 * missing.
 */
static int coroutine_fn GRAPH_RDLOCK
nvstore_grow(BlockDriverState *bs, uint64_t end, Error **errp)
{
    Error *local_err = NULL;
    int64_t size = nvstore_image_size(bs, errp);
    uint64_t new_size = ROUND_UP(end, NVSTORE_ALIGN);
    int ret;

    if (size < 0) {
        return size;
    }
    if (end <= size) {
        return 0;
    }
    trace_nvstore_grow(bs, size, new_size);
    ret = bdrv_co_truncate(bs->file, new_size, false, PREALLOC_MODE_OFF, 0,
                           &local_err);
    if (ret == -ENOTSUP || ret == -EINVAL || ret == -ENOSPC ||
        ret == -EFBIG) {
        trace_nvstore_full(bs, size, new_size);
        error_setg(errp, "The nvstore image is full: this commit needs "
                   "%" PRIu64 " bytes of storage, which has %" PRId64
                   " (%" PRIu64 " bytes missing) and cannot grow: %s",
                   new_size, size, new_size - size,
                   error_get_pretty(local_err));
        error_free(local_err);
        return -ENOSPC;
    }
    if (ret < 0) {
        error_propagate_prepend(errp, local_err,
                                "Could not grow the nvstore image: ");
    }
    return ret;
}

/* Whether update @u writes data of its own */
static bool nvstore_update_has_data(const NvstoreBlobUpdate *u)
{
    return !u->remove && !u->keep_data && u->len;
}

/* Step 1: may the node commit now, and with which generation? */
static int coroutine_fn GRAPH_RDLOCK
nvstore_commit_begin(BlockDriverState *bs, NvstoreCommit *c, Error **errp)
{
    BDRVNvstoreState *s = bs->opaque;

    if (bdrv_is_read_only(bs)) {
        error_setg(errp, "The nvstore image is read-only");
        return -EACCES;
    }
    if (bs->open_flags & BDRV_O_INACTIVE) {
        error_setg(errp, "The nvstore node is inactive (migration): no "
                   "writes until it is activated");
        return -EPERM;
    }
    if (!s->dir) {
        error_setg(errp, "The nvstore image has no valid directory");
        return -EIO;
    }
    if (s->encrypted && !s->crypt) {
        error_setg(errp, "The nvstore image is encrypted, and no key was "
                   "given (%s)", NVSTORE_OPT_KEY_SECRET);
        return -EACCES;
    }
    if (s->next_gen >= NVSTORE_EXTENT_LIMIT) {
        /* 2^63 commits: not in this universe, but never wrap around */
        error_setg(errp, "The nvstore image has reached its last generation");
        return -ENOSPC;
    }
    c->gen = s->next_gen++;
    assert(c->gen > s->gen);
    return 0;
}

/* Apply one update, of a blob to create or replace, to entry @e */
static int nvstore_apply_one(NvstoreEntry *e, const NvstoreBlobUpdate *u,
                             Error **errp)
{
    ERRP_GUARD();
    size_t j;

    for (j = 0; j < u->nb_attrs; j++) {
        const NvstoreBlobAttr *a = &u->attrs[j];

        if (a->remove) {
            nvstore_entry_del_attr(e, a->name);
        } else if (!nvstore_entry_set_attr(e, a->name, a->value, a->len,
                                           errp)) {
            error_prepend(errp, "Blob '%s': ", u->name);
            return -EINVAL;
        }
    }
    if (u->keep_data) {
        return 0;
    }
    /* Data are placed later; keep realsize within them */
    e->has_realsize = false;
    if (!nvstore_entry_set_inline(e, u->data, u->len, errp)) {
        return -EINVAL;
    }
    if (u->has_realsize || !strcmp(u->type, NVSTORE_BLOB_TYPE_TPM)) {
        if (!nvstore_entry_set_realsize(e, u->has_realsize ?
                                        u->realsize : u->len, errp)) {
            return -EINVAL;
        }
    }
    return 0;
}

/*
 * Step 2: the new directory, a copy of the committed one with @updates.
 * The copy shares the entries that the commit does not change.
 */
static int nvstore_commit_apply(BDRVNvstoreState *s, NvstoreCommit *c,
                                Error **errp)
{
    g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
    size_t i;
    int ret;

    c->dir = nvstore_dir_copy(s->dir);

    for (i = 0; i < c->n; i++) {
        const NvstoreBlobUpdate *u = &c->updates[i];
        NvstoreEntry *e;

        if (!u->name) {
            error_setg(errp, "A blob update needs a name");
            return -EINVAL;
        }
        if (!g_hash_table_add(seen, (gpointer)u->name)) {
            error_setg(errp, "Blob '%s' appears twice in one commit",
                       u->name);
            return -EINVAL;
        }
        /* What the commit changes becomes the new directory's own */
        e = u->remove ? nvstore_dir_lookup(c->dir, u->name) :
                        nvstore_dir_lookup_mut(c->dir, u->name);
        if (u->remove) {
            if (!e) {
                error_setg(errp, "No blob named '%s'", u->name);
                return -ENOENT;
            }
            nvstore_dir_delete(c->dir, u->name, &error_abort);
            continue;
        }
        if (!u->type) {
            error_setg(errp, "Blob '%s': a type is required", u->name);
            return -EINVAL;
        }
        if (e) {
            if (!nvstore_entry_check_usable(e, errp)) {
                return -ENOTSUP;
            }
            if (strcmp(e->type, u->type)) {
                error_setg(errp, "Blob '%s' is of type '%s', not '%s'",
                           u->name, e->type, u->type);
                return -EINVAL;
            }
        } else if (u->keep_data) {
            error_setg(errp, "No blob named '%s'", u->name);
            return -ENOENT;
        } else {
            e = nvstore_dir_add(c->dir, u->name, u->type, errp);
            if (!e) {
                return -EINVAL;
            }
        }
        ret = nvstore_apply_one(e, u, errp);
        if (ret < 0) {
            return ret;
        }
    }
    return 0;
}

/*
 * Step 3: place the data of each blob of the commit, then the new
 * directory, in space that the committed directory does not reference,
 * so that the committed state survives any crash
 */
static int coroutine_fn GRAPH_RDLOCK
nvstore_commit_place(BlockDriverState *bs, NvstoreCommit *c, Error **errp)
{
    BDRVNvstoreState *s = bs->opaque;
    g_autoptr(GArray) used = NULL;
    bool unknown;
    size_t i;

    used = nvstore_used_ranges(s, &unknown);
    if (!unknown) {
        c->committed_used = g_array_copy(used);
    }
    if (unknown) {
        /* Keep all of the child as it is: place everything past its end */
        int64_t size = nvstore_image_size(bs, errp);
        NvstoreRange r;

        if (size < 0) {
            return size;
        }
        r = (NvstoreRange) { 0, size };
        g_array_prepend_val(used, r);
    }
    if (s->encrypted) {
        c->ciphertext = g_new0(uint8_t *, c->n);
    }
    for (i = 0; i < c->n; i++) {
        const NvstoreBlobUpdate *u = &c->updates[i];
        NvstoreEntry *e = nvstore_dir_lookup(c->dir, u->name);
        NvstoreExtent ext;

        if (!nvstore_update_has_data(u)) {
            continue;
        }
        ext.offset = nvstore_alloc(used, u->len);
        ext.length = u->len;
        ext.generation = c->gen;
        ext.crc32c = 0;
        c->end = MAX(c->end, ext.offset + ext.length);
        if (!nvstore_entry_set_extent(e, &ext, errp)) {
            return -EINVAL;
        }
        if (s->encrypted) {
            /* The checksum is of what is written: the ciphertext */
            c->ciphertext[i] = g_try_malloc(u->len);
            if (!c->ciphertext[i]) {
                error_setg(errp, "Blob '%s': cannot allocate %zu bytes to "
                           "encrypt it", u->name, u->len);
                return -ENOMEM;
            }
            if (!nvstore_crypt_seal(s->crypt, e, u->data, c->ciphertext[i],
                                    errp)) {
                return -EIO;
            }
            e->extent.crc32c = nvstore_crc(c->ciphertext[i], u->len);
        } else {
            e->extent.crc32c = nvstore_crc(u->data, u->len);
        }
    }
    c->enc = nvstore_dir_encode(c->dir, &c->enc_len, errp);
    if (!c->enc) {
        return -EFBIG;
    }
    if (s->encrypted) {
        c->enc = g_realloc(c->enc, c->enc_len + NVSTORE_DIR_MAC_LEN);
        if (!nvstore_crypt_dir_mac(s->crypt, c->gen, c->enc, c->enc_len,
                                   c->enc + c->enc_len, errp)) {
            return -EIO;
        }
        c->enc_len += NVSTORE_DIR_MAC_LEN;
    }
    c->dir_offset = nvstore_alloc(used, c->enc_len);
    c->end = MAX(c->end, c->dir_offset + c->enc_len);
    if (!unknown) {
        c->used = g_steal_pointer(&used);
    }
    return 0;
}

/* Writes of one commit in flight at once, at most */
#define NVSTORE_MAX_WRITES 8

/* One write of a commit, run as a task of its pool */
typedef struct NvstoreWriteTask {
    AioTask task;
    BlockDriverState *bs;
    uint64_t offset;
    const void *buf;    /* NULL: zeroes, which may discard */
    uint64_t len;
} NvstoreWriteTask;

static int coroutine_fn GRAPH_RDLOCK nvstore_write_task_entry(AioTask *task)
{
    NvstoreWriteTask *t = container_of(task, NvstoreWriteTask, task);

    if (!t->buf) {
        return bdrv_co_pwrite_zeroes(t->bs->file, t->offset, t->len,
                                     BDRV_REQ_MAY_UNMAP);
    }
    return bdrv_co_pwrite(t->bs->file, t->offset, t->len, t->buf, 0);
}

static void coroutine_fn nvstore_start_write(AioTaskPool *pool,
                                             BlockDriverState *bs,
                                             uint64_t offset, const void *buf,
                                             uint64_t len)
{
    NvstoreWriteTask *t = g_new(NvstoreWriteTask, 1);

    *t = (NvstoreWriteTask) {
        .task.func = nvstore_write_task_entry,
        .bs = bs,
        .offset = offset,
        .buf = buf,
        .len = len,
    };
    aio_task_pool_start_task(pool, &t->task);
}

/*
 * The ranges of the image to zero (option wipe-freed): what the
 * directory before the committed one referenced (@s->prev_used), or all
 * of the image if that is not known (after open, or after a commit that
 * failed in its writes), except what the committed directory references
 * (the previous commit stays whole, for qemu-img check to restore a
 * damaged blob from) and what this commit places.  The other slot
 * referenced them, and this commit replaces it: they need no longer
 * survive a crash.
 */
static void coroutine_fn GRAPH_RDLOCK
nvstore_commit_wipe(AioTaskPool *pool, BlockDriverState *bs,
                    NvstoreCommit *c)
{
    BDRVNvstoreState *s = bs->opaque;
    NvstoreRange all = { 0, 0 };
    const NvstoreRange *target;
    guint n, i, k;
    int64_t size;

    if (!s->wipe_freed || !c->used) {
        return;
    }
    size = nvstore_image_size(bs, NULL);
    if (size < 0) {
        return;
    }
    if (s->prev_used) {
        target = &g_array_index(s->prev_used, NvstoreRange, 0);
        n = s->prev_used->len;
    } else {
        all.end = size;
        target = &all;
        n = 1;
    }
    /* @c->used is sorted by start; its ranges may overlap */
    for (i = 0; i < n; i++) {
        uint64_t pos = target[i].start, end = MIN(target[i].end, size);

        for (k = 0; k < c->used->len && pos < end; k++) {
            const NvstoreRange *u = &g_array_index(c->used, NvstoreRange, k);

            if (u->start > pos) {
                uint64_t stop = MIN(u->start, end);

                trace_nvstore_wipe(bs, pos, stop - pos);
                nvstore_start_write(pool, bs, pos, NULL, stop - pos);
            }
            pos = MAX(pos, u->end);
        }
        if (pos < end) {
            trace_nvstore_wipe(bs, pos, end - pos);
            nvstore_start_write(pool, bs, pos, NULL, end - pos);
        }
    }
}

/*
 * Step 4: write the data, the directory and the slot that does not hold
 * the committed state, and zero what no commit needs any longer, all at
 * once (until the flush, their order does not matter), then flush once;
 * until the flush returns, the commit may be torn
 */
static int coroutine_fn GRAPH_RDLOCK
nvstore_commit_write(BlockDriverState *bs, NvstoreCommit *c, Error **errp)
{
    BDRVNvstoreState *s = bs->opaque;
    AioTaskPool *pool = aio_task_pool_new(NVSTORE_MAX_WRITES);
    NvstoreSlot slot;
    size_t i;
    int ret;

    c->wrote = true;
    for (i = 0; i < c->n; i++) {
        const NvstoreBlobUpdate *u = &c->updates[i];
        NvstoreEntry *e;

        if (!nvstore_update_has_data(u)) {
            continue;
        }
        e = nvstore_dir_lookup(c->dir, u->name);
        trace_nvstore_commit_blob(bs, u->name, c->gen, e->extent.offset,
                                  e->extent.length);
        nvstore_start_write(pool, bs, e->extent.offset,
                            c->ciphertext ? c->ciphertext[i] : u->data,
                            u->len);
    }
    if (s->data_first) {
        aio_task_pool_wait_all(pool);
        ret = aio_task_pool_status(pool);
        if (ret >= 0) {
            ret = bdrv_co_flush(bs->file->bs);
        }
        if (ret < 0) {
            aio_task_pool_free(pool);
            error_setg_errno(errp, -ret, "Could not write to the nvstore "
                             "image");
            return ret;
        }
    }
    nvstore_start_write(pool, bs, c->dir_offset, c->enc, c->enc_len);
    nvstore_slot_init(&slot, c->gen, c->dir_offset, c->enc, c->enc_len);
    c->dir_crc32c = be32_to_cpu(slot.dir_crc32c);
    nvstore_start_write(pool, bs, NVSTORE_SLOT_OFFSET(!s->slot), &slot,
                        sizeof(slot));
    nvstore_commit_wipe(pool, bs, c);
    aio_task_pool_wait_all(pool);
    ret = aio_task_pool_status(pool);
    aio_task_pool_free(pool);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Could not write to the nvstore image");
        return ret;
    }
    trace_nvstore_commit_flush(bs, c->gen);
    ret = bdrv_co_flush(bs->file->bs);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Could not flush the nvstore image");
    }
    return ret;
}

/* Step 5: the commit is durable; make it the committed state */
static void nvstore_commit_finish(BlockDriverState *bs, NvstoreCommit *c)
{
    BDRVNvstoreState *s = bs->opaque;

    NvstoreSlot slot = {
        .generation = c->gen,
        .dir_offset = c->dir_offset,
        .dir_length = c->enc_len,
        .dir_crc32c = c->dir_crc32c,
    };

    nvstore_set_committed(s, g_steal_pointer(&c->dir), !s->slot, &slot);
    s->record_due = true;
    /* What the directory it replaced references: wiped by the next one */
    g_clear_pointer(&s->prev_used, g_array_unref);
    s->prev_used = g_steal_pointer(&c->committed_used);
    trace_nvstore_commit(bs, c->gen, s->slot, c->n, c->dir_offset,
                         c->enc_len);
    /* For a rollback anchor kept outside the image (min-generation) */
    qapi_event_send_nvstore_commit(bdrv_get_node_name(bs), c->gen);
}

/* Commit @updates: steps 1 to 5 */
int coroutine_fn GRAPH_RDLOCK
nvstore_co_commit_updates(BlockDriverState *bs,
                          const NvstoreBlobUpdate *updates, size_t n,
                          Error **errp)
{
    BDRVNvstoreState *s = bs->opaque;
    NvstoreCommit commit = { .updates = updates, .n = n };
    NvstoreCommit *c = &commit;
    int ret;

    qemu_co_mutex_assert_locked(&s->lock);
    QEMU_BUILD_BUG_ON(NVSTORE_NB_SLOTS != 2);
    ret = nvstore_commit_begin(bs, c, errp);
    if (ret < 0) {
        return ret;
    }
    ret = nvstore_commit_apply(s, c, errp);
    if (ret >= 0) {
        ret = nvstore_commit_place(bs, c, errp);
    }
    if (ret >= 0) {
        ret = nvstore_grow(bs, c->end, errp);
    }
    if (ret >= 0) {
        ret = nvstore_commit_write(bs, c, errp);
    }
    if (ret >= 0) {
        nvstore_commit_finish(bs, c);
    } else {
        trace_nvstore_commit_fail(bs, c->gen, ret);
        if (c->wrote) {
            /* Into free space: wipe all of it next time */
            g_clear_pointer(&s->prev_used, g_array_unref);
        }
    }
    nvstore_dir_free(c->dir);
    g_free(c->enc);
    for (size_t i = 0; c->ciphertext && i < c->n; i++) {
        g_free(c->ciphertext[i]);
    }
    g_free(c->ciphertext);
    g_clear_pointer(&c->used, g_array_unref);
    g_clear_pointer(&c->committed_used, g_array_unref);
    return ret < 0 ? ret : 0;
}

/*
 * The close record: the committed generation is complete.  Written
 * apart from any commit, when the node is closed or inactivated, so that
 * a commit still costs one flush; a torn write of it leaves a record
 * whose checksum fails, which open ignores.  A node that did not commit
 * writes nothing: opening an image and closing it changes nothing.
 */
int coroutine_fn GRAPH_RDLOCK nvstore_co_close_record(BlockDriverState *bs)
{
    BDRVNvstoreState *s = bs->opaque;
    uint8_t sector[NVSTORE_CLOSE_SIZE] = { 0 };
    NvstoreSlot *rec = (NvstoreSlot *)sector;
    NvstoreSlot committed;
    int ret;

    QEMU_LOCK_GUARD(&s->lock);
    if (!s->record_due || bdrv_is_read_only(bs) ||
        (bs->open_flags & BDRV_O_INACTIVE)) {
        return 0;
    }
    committed = (NvstoreSlot) {
        .generation = s->gen,
        .dir_offset = s->dir_offset,
        .dir_length = s->dir_length,
        .dir_crc32c = s->dir_crc32c,
    };
    nvstore_slot_to_disk(rec, &committed, NVSTORE_CLOSE_MAGIC);
    if (s->encrypted &&
        !nvstore_crypt_close_mac(s->crypt, rec, sector + sizeof(*rec),
                                 NULL)) {
        ret = -EIO;
        goto out;
    }
    ret = bdrv_co_pwrite(bs->file, NVSTORE_CLOSE_OFFSET, sizeof(sector),
                         sector, 0);
    if (ret >= 0) {
        ret = bdrv_co_flush(bs->file->bs);
    }
    if (ret >= 0) {
        s->record_due = false;
    }
out:
    trace_nvstore_close_record(bs, s->gen, ret);
    return ret;
}
