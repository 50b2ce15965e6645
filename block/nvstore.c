/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * nvstore: an image format for device NVRAM.  Named, typed blobs with
 * metadata in one image, stacked on any child node.
 *
 * This file is the driver's glue: the BlockDriver, its options, open,
 * close, reopen and cache invalidation, create, info, amend and measure.
 * The parts of the format are in the files nvstore-int.h lists.
 *
 * State: the committed directory, read at open and replaced only by a
 * successful commit.  Every commit writes through to the child and
 * flushes it once before it returns.  What is not committed yet is in
 * the write-back caches of blob nodes (nvstore-blob.c): a flush and
 * inactivation commit them.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-visit-block-core.h"
#include "qapi/visitor.h"
#include "qemu/module.h"
#include "qemu/cutils.h"
#include "qemu/option.h"
#include "qemu/uuid.h"
#include "qobject/qdict.h"
#include "system/block-backend.h"
#include "nvstore-int.h"
#include "trace.h"

static int nvstore_probe(const uint8_t *buf, int buf_size,
                         const char *filename)
{
    if (buf_size >= 8 && !memcmp(buf, NVSTORE_MAGIC, 8)) {
        return 100;
    }
    return 0;
}

/* ---- Open, close, reopen ------------------------------------------------- */

/*
 * The image is the one option image-id names, and its committed state is
 * not older than option min-generation allows
 */
static int nvstore_check_pinned(BlockDriverState *bs, Error **errp)
{
    BDRVNvstoreState *s = bs->opaque;
    const uint8_t *id = s->header_ad + offsetof(NvstoreHeader, image_id);

    if (s->has_want_id && memcmp(id, s->want_id, NVSTORE_IMAGE_ID_LEN)) {
        QemuUUID theirs, want;
        g_autofree char *theirs_str = NULL, *want_str = NULL;

        memcpy(theirs.data, id, sizeof(theirs.data));
        memcpy(want.data, s->want_id, sizeof(want.data));
        theirs_str = qemu_uuid_unparse_strdup(&theirs);
        want_str = qemu_uuid_unparse_strdup(&want);
        error_setg(errp, "The nvstore image is %s, not %s (option %s): it "
                   "was replaced by another image", theirs_str, want_str,
                   NVSTORE_OPT_IMAGE_ID);
        return -EINVAL;
    }
    if (s->dir && s->gen < s->min_gen) {
        error_setg(errp, "The nvstore image is at generation %" PRIu64
                   ", older than min-generation %" PRIu64 ": it may have "
                   "been rolled back", s->gen, s->min_gen);
        return -EINVAL;
    }
    return 0;
}

/*
 * The keys of an encrypted image, from the secret @secret_id.  Without
 * one, an encrypted image opens only for its metadata (BDRV_O_NO_IO:
 * qemu-img info), its directory unauthenticated.
 */
static int GRAPH_RDLOCK
nvstore_open_crypt(BlockDriverState *bs, const char *secret_id, int flags,
                   Error **errp)
{
    BDRVNvstoreState *s = bs->opaque;

    if (!s->encrypted) {
        if (secret_id) {
            error_setg(errp, "The nvstore image is not encrypted: option "
                       "'%s' is not allowed", NVSTORE_OPT_KEY_SECRET);
            return -EINVAL;
        }
        return 0;
    }
    bs->encrypted = true;
    if (secret_id) {
        return nvstore_open_keys(bs, secret_id, errp);
    }
    if (!(flags & BDRV_O_NO_IO)) {
        error_setg(errp, "The nvstore image is encrypted: option '%s' "
                   "must name the secret that opens it",
                   NVSTORE_OPT_KEY_SECRET);
        return -EINVAL;
    }
    return 0;
}

/*
 * Load the committed state.  For qemu-img check (BDRV_O_CHECK), an image
 * opens even with a damaged header (bad magic or checksum) or without a
 * valid slot, so that check can report the damage and salvage what the
 * data area holds (nvstore-salvage.c); nothing can then be read or
 * written.  Unknown incompatible features still refuse it.
 */
static int GRAPH_RDLOCK
nvstore_open_load(BlockDriverState *bs, const char *secret_id, int flags,
                  Error **errp)
{
    Error *local_err = NULL;
    int ret;

    if (!(flags & BDRV_O_CHECK)) {
        ret = nvstore_read_header(bs, errp);
        if (ret >= 0) {
            ret = nvstore_open_crypt(bs, secret_id, flags, errp);
        }
        if (ret >= 0) {
            ret = nvstore_load_state(bs, errp);
        }
    } else {
        ret = nvstore_read_header(bs, &local_err);
        if (ret < 0 && ret != -EINVAL) {
            error_propagate(errp, local_err);
            return ret;
        }
        if (ret == 0) {
            ret = nvstore_open_crypt(bs, secret_id, flags, errp);
            if (ret < 0) {
                error_free(local_err);
                return ret;
            }
            ret = nvstore_load_state(bs, &local_err);
        }
        if (ret < 0) {
            trace_nvstore_open_for_check(bs, error_get_pretty(local_err));
            error_free(local_err);
            ret = 0;
        }
    }
    if (ret >= 0) {
        ret = nvstore_check_pinned(bs, errp);
    }
    return ret;
}

static int nvstore_open(BlockDriverState *bs, QDict *options, int flags,
                        Error **errp)
{
    static const char *const keys[] = {
        NVSTORE_OPT_MIN_GENERATION, NVSTORE_OPT_WIPE_FREED,
        NVSTORE_OPT_IMAGE_ID, "encrypt.", NULL
    };
    BDRVNvstoreState *s = bs->opaque;
    g_autoptr(NvstoreOptions) o = NULL;
    const char *secret_id;
    Visitor *v;
    int ret;

    v = nvstore_options_visitor(options, keys, errp);
    if (!v) {
        return -EINVAL;
    }
    visit_type_NvstoreOptions(v, NULL, &o, errp);
    visit_free(v);
    if (!o) {
        return -EINVAL;
    }
    s->min_gen = o->has_min_generation ? o->min_generation : 0;
    s->wipe_freed = o->has_wipe_freed ? o->wipe_freed : true;
    if (o->image_id) {
        QemuUUID want;

        if (qemu_uuid_parse(o->image_id, &want) < 0) {
            error_setg(errp, "Option %s: '%s' is not a UUID",
                       NVSTORE_OPT_IMAGE_ID, o->image_id);
            return -EINVAL;
        }
        s->has_want_id = true;
        memcpy(s->want_id, want.data, sizeof(s->want_id));
    }
    secret_id = o->encrypt ? o->encrypt->key_secret : NULL;

    ret = bdrv_open_file_child(NULL, options, "file", bs, errp);
    if (ret < 0) {
        return ret;
    }

    s->key_secret = g_strdup(secret_id);
    qemu_co_mutex_init(&s->lock);
    bdrv_graph_rdlock_main_loop();
    ret = nvstore_open_load(bs, secret_id, flags, errp);
    bdrv_graph_rdunlock_main_loop();
    if (ret < 0) {
        g_clear_pointer(&s->dir, nvstore_dir_free);
        g_clear_pointer(&s->crypt, nvstore_crypt_free);
        g_clear_pointer(&s->old_crypts, g_ptr_array_unref);
        g_clear_pointer(&s->key_secret, g_free);
    }
    return ret;
}

/*
 * The image was closed cleanly at its committed generation: record it
 * (if the node can write), so that no later open takes damage to that
 * commit for a torn commit.  A failure costs only that knowledge.
 */
static void GRAPH_UNLOCKED nvstore_close(BlockDriverState *bs)
{
    BDRVNvstoreState *s = bs->opaque;

    GLOBAL_STATE_CODE();
    bdrv_graph_rdlock_main_loop();
    nvstore_close_record(bs);
    bdrv_graph_rdunlock_main_loop();

    g_clear_pointer(&s->dir, nvstore_dir_free);
    g_clear_pointer(&s->crypt, nvstore_crypt_free);
    g_clear_pointer(&s->old_crypts, g_ptr_array_unref);
    g_clear_pointer(&s->key_secret, g_free);
    g_clear_pointer(&s->prev_used, g_array_unref);
}

/*
 * A node whose "file" becomes a node of other storage copies its image
 * there first (nvstore-move.c).  A node that becomes read-only writes the
 * close record of its commits, as at close (the block layer flushed its
 * blob nodes' changes first).
 */
static int GRAPH_UNLOCKED
nvstore_reopen_prepare(BDRVReopenState *state, BlockReopenQueue *queue,
                       Error **errp)
{
    int ret;

    GLOBAL_STATE_CODE();
    ret = nvstore_move_prepare(state, errp);
    if (ret < 0) {
        return ret;
    }
    if (!(state->flags & BDRV_O_RDWR)) {
        bdrv_graph_rdlock_main_loop();
        nvstore_close_record(state->bs);
        bdrv_graph_rdunlock_main_loop();
    }
    return 0;
}

/*
 * Migration: the blob nodes' changes are committed, and the close record
 * written, before the destination reads the image
 */
static int GRAPH_RDLOCK nvstore_inactivate(BlockDriverState *bs)
{
    int ret = bdrv_flush(bs);

    if (ret >= 0) {
        nvstore_close_record(bs);
    }
    return ret;
}

static void coroutine_fn GRAPH_RDLOCK
nvstore_co_invalidate_cache(BlockDriverState *bs, Error **errp)
{
    ERRP_GUARD();
    BDRVNvstoreState *s = bs->opaque;

    /* Another process may have committed: trust nothing that was read */
    QEMU_LOCK_GUARD(&s->lock);
    g_clear_pointer(&s->dir, nvstore_dir_free);
    if (nvstore_load(bs, errp) < 0) {
        error_prepend(errp, "Could not reload the nvstore directory: ");
    } else if (s->crypt && !s->encrypted) {
        /* Not the image that was opened: trust none of it */
        error_setg(errp, "The nvstore image was encrypted when it was "
                   "opened, and no longer is");
        g_clear_pointer(&s->dir, nvstore_dir_free);
    } else if (nvstore_check_pinned(bs, errp) < 0) {
        /* Nothing may be read or written */
        g_clear_pointer(&s->dir, nvstore_dir_free);
    }
}

/* ---- The node's data ----------------------------------------------------- */

/*
 * An nvstore node has no data of its own: devices reach its blobs through
 * the device API (include/block/nvstore.h), and a node of driver
 * nvstore-blob on top of it makes one blob a node's data.
 */
static int coroutine_fn GRAPH_RDLOCK
nvstore_co_preadv(BlockDriverState *bs, int64_t offset, int64_t bytes,
                  QEMUIOVector *qiov, BdrvRequestFlags flags)
{
    qemu_iovec_memset(qiov, 0, 0, bytes);
    return 0;
}

static int coroutine_fn GRAPH_RDLOCK
nvstore_co_pwritev(BlockDriverState *bs, int64_t offset, int64_t bytes,
                   QEMUIOVector *qiov, BdrvRequestFlags flags)
{
    return -ENOTSUP;
}

static int coroutine_fn GRAPH_RDLOCK
nvstore_co_truncate(BlockDriverState *bs, int64_t offset, bool exact,
                    PreallocMode prealloc, BdrvRequestFlags flags,
                    Error **errp)
{
    error_setg(errp, "An nvstore node has no data of its own: a node of "
               "driver nvstore-blob makes a blob a node's data");
    return -ENOTSUP;
}

static int64_t coroutine_fn GRAPH_RDLOCK
nvstore_co_getlength(BlockDriverState *bs)
{
    return 0;
}

/* A flush commits the dirty blobs of the nvstore-blob nodes on top */
static int coroutine_fn GRAPH_RDLOCK
nvstore_co_flush_to_os(BlockDriverState *bs)
{
    Error *err = NULL;
    int ret = nvstore_co_commit(bs, NULL, 0, &err);

    if (ret < 0) {
        trace_nvstore_flush_error(bs, error_get_pretty(err));
        error_free(err);
    }
    return ret;
}

/* ---- Create -------------------------------------------------------------- */

/*
 * The header and the first commit: slot 0, generation 1, no blob; with
 * @enc_opts, encrypted, its master key in key slot 0
 */
static int coroutine_fn
nvstore_co_format(BlockBackend *blk, BlockdevNvstoreEncryptionCreate *enc_opts,
                  Error **errp)
{
    g_autofree uint8_t *meta = g_malloc0(NVSTORE_DATA_OFFSET);
    NvstoreHeader *h = (NvstoreHeader *)meta;
    NvstoreSlot *slot = (NvstoreSlot *)(meta + NVSTORE_SLOT_OFFSET(0));
    g_autoptr(NvstoreDir) dir = nvstore_dir_new();
    g_autofree uint8_t *enc = NULL;
    QemuUUID id;
    size_t len;
    int ret;

    enc = nvstore_dir_encode(dir, &len, &error_abort);
    qemu_uuid_generate(&id);
    nvstore_header_init(h, enc_opts ? NVSTORE_INCOMPAT_ENCRYPTED : 0,
                        id.data);

    if (enc_opts) {
        g_autoptr(NvstoreCrypt) crypt = nvstore_crypt_new(meta, errp);
        NvstoreKeySlot *ks = (NvstoreKeySlot *)(meta +
                                                NVSTORE_KEYSLOT_OFFSET(0));

        if (!crypt) {
            return -ENOTSUP;
        }
        ret = nvstore_keyslot_make(crypt, enc_opts->key_secret,
                                   enc_opts->has_iter_time ?
                                   enc_opts->iter_time :
                                   NVSTORE_DEFAULT_ITER_TIME_MS, ks, errp);
        if (ret < 0) {
            return ret;
        }
        enc = g_realloc(enc, len + NVSTORE_DIR_MAC_LEN);
        if (!nvstore_crypt_dir_mac(crypt, 1, enc, len, enc + len, errp)) {
            return -EIO;
        }
        len += NVSTORE_DIR_MAC_LEN;
    }
    nvstore_slot_init(slot, 1, NVSTORE_DATA_OFFSET, enc, len);

    ret = blk_co_pwrite(blk, 0, NVSTORE_DATA_OFFSET, meta, 0);
    if (ret >= 0) {
        ret = blk_co_pwrite(blk, NVSTORE_DATA_OFFSET, len, enc, 0);
    }
    if (ret >= 0) {
        ret = blk_co_flush(blk);
    }
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Could not write the nvstore image");
        return ret;
    }
    return 0;
}

static int coroutine_fn GRAPH_UNLOCKED
nvstore_co_create(BlockdevCreateOptions *opts, Error **errp)
{
    BlockDriverState *bs_file;
    BlockBackend *blk;
    int ret;

    assert(opts->driver == BLOCKDEV_DRIVER_NVSTORE);
    bs_file = bdrv_co_open_blockdev_ref(opts->u.nvstore.file, errp);
    if (!bs_file) {
        return -EIO;
    }
    blk = blk_co_new_with_bs(bs_file, BLK_PERM_WRITE | BLK_PERM_RESIZE,
                             BLK_PERM_ALL, errp);
    if (!blk) {
        bdrv_co_unref(bs_file);
        return -EPERM;
    }
    blk_set_allow_write_beyond_eof(blk, true);
    ret = nvstore_co_format(blk, opts->u.nvstore.encrypt, errp);
    if (ret >= 0) {
        int64_t size = blk_co_getlength(blk);

        /*
         * Storage larger than a new image (a volume, an NBD export, which
         * may not grow): commits allocate within it before growing it
         */
        if (size > NVSTORE_DATA_OFFSET + NVSTORE_ALIGN) {
            info_report("The nvstore image uses the %" PRId64 " bytes of "
                        "its storage, %" PRId64 " of them for blobs and "
                        "directories (qemu-img measure gives what blobs "
                        "need)", size, size - NVSTORE_DATA_OFFSET);
        }
    }
    blk_co_unref(blk);
    bdrv_co_unref(bs_file);
    return ret;
}

/*
 * Create a qcow2 image at @filename to contain the nvstore image, with
 * the virtual size of an empty one; nvstore grows it as blobs are written
 */
static int coroutine_fn GRAPH_UNLOCKED
nvstore_co_create_qcow2(const char *filename, Error **errp)
{
    BlockDriver *qcow2 = bdrv_find_format("qcow2");
    BlockDriver *proto;
    QemuOptsList *list = NULL;
    QemuOpts *opts;
    int ret;

    if (!qcow2 || !qcow2->create_opts) {
        error_setg(errp, "This QEMU cannot create qcow2 images");
        return -ENOTSUP;
    }
    proto = bdrv_find_protocol(filename, true, errp);
    if (!proto) {
        return -EINVAL;
    }
    list = qemu_opts_append(list, qcow2->create_opts);
    list = qemu_opts_append(list, proto->create_opts);
    opts = qemu_opts_create(list, NULL, 0, &error_abort);
    qemu_opt_set_number(opts, BLOCK_OPT_SIZE, NVSTORE_DATA_OFFSET +
                        NVSTORE_ALIGN, &error_abort);
    ret = bdrv_co_create(qcow2, filename, opts, errp);
    qemu_opts_del(opts);
    qemu_opts_free(list);
    return ret;
}

/*
 * qemu-img create: create the file (or, with container=qcow2, a qcow2
 * image, the first step of the documented two-step create), then format
 * it through the QAPI path, nvstore_co_create()
 */
static int coroutine_fn GRAPH_UNLOCKED
nvstore_co_create_opts(BlockDriver *drv, const char *filename,
                       QemuOpts *opts, Error **errp)
{
    g_autofree char *container = NULL;
    BlockdevRef file_ref = { .type = QTYPE_QSTRING };
    BlockdevNvstoreEncryptionCreate enc = { 0 };
    BlockdevCreateOptions create_options = {
        .driver = BLOCKDEV_DRIVER_NVSTORE,
        .u.nvstore.file = &file_ref,
    };
    g_autofree char *key_secret = NULL;
    BlockDriverState *bs_file;
    QDict *options = NULL;
    int flags = BDRV_O_RDWR | BDRV_O_RESIZE;
    int ret;

    if (qemu_opt_get_size_del(opts, BLOCK_OPT_SIZE, 0)) {
        error_setg(errp, "nvstore images have no virtual size; create them "
                   "without a size (they grow as blobs are written)");
        return -EINVAL;
    }
    key_secret = qemu_opt_get_del(opts, NVSTORE_OPT_KEY_SECRET);
    if (key_secret) {
        enc.key_secret = key_secret;
        enc.has_iter_time = qemu_opt_find(opts, NVSTORE_OPT_ITER_TIME);
        enc.iter_time = qemu_opt_get_number_del(opts, NVSTORE_OPT_ITER_TIME,
                                                NVSTORE_DEFAULT_ITER_TIME_MS);
        if (enc.iter_time > UINT32_MAX) {
            error_setg(errp, "Option '%s' is out of range",
                       NVSTORE_OPT_ITER_TIME);
            return -EINVAL;
        }
        create_options.u.nvstore.encrypt = &enc;
    } else if (qemu_opt_find(opts, NVSTORE_OPT_ITER_TIME)) {
        error_setg(errp, "Option '%s' needs option '%s'",
                   NVSTORE_OPT_ITER_TIME, NVSTORE_OPT_KEY_SECRET);
        return -EINVAL;
    }
    container = qemu_opt_get_del(opts, NVSTORE_OPT_CONTAINER);
    if (container && !strcmp(container, "qcow2")) {
        ret = nvstore_co_create_qcow2(filename, errp);
        options = qdict_new();
        qdict_put_str(options, "driver", "qcow2");
    } else if (container && strcmp(container, "none")) {
        error_setg(errp, "Invalid value '%s' for option '%s': expected "
                   "'none' or 'qcow2'", container, NVSTORE_OPT_CONTAINER);
        return -EINVAL;
    } else {
        ret = bdrv_co_create_file(filename, opts, errp);
        flags |= BDRV_O_PROTOCOL;
    }
    if (ret < 0) {
        qobject_unref(options);
        return ret;
    }
    bs_file = bdrv_co_open(filename, NULL, options, flags, errp);
    if (!bs_file) {
        return -EIO;
    }
    file_ref.u.reference = (char *)bdrv_get_node_name(bs_file);
    ret = nvstore_co_create(&create_options, errp);
    bdrv_co_unref(bs_file);
    return ret;
}

/* ---- qemu-img info ------------------------------------------------------- */

static ImageInfoSpecific * GRAPH_RDLOCK
nvstore_get_specific_info(BlockDriverState *bs, Error **errp)
{
    BDRVNvstoreState *s = bs->opaque;
    ImageInfoSpecific *spec = g_new0(ImageInfoSpecific, 1);
    ImageInfoSpecificNvstore *info = g_new0(ImageInfoSpecificNvstore, 1);
    ImageInfoSpecificNvstoreBlobList **tail = &info->blobs;
    guint i, j;

    spec->type = IMAGE_INFO_SPECIFIC_KIND_NVSTORE;
    spec->u.nvstore.data = info;
    info->generation = s->gen;
    info->slot = s->slot;
    if (!buffer_is_zero(s->header_ad, sizeof(s->header_ad))) {
        QemuUUID id;

        memcpy(id.data, s->header_ad + offsetof(NvstoreHeader, image_id),
               sizeof(id.data));
        info->image_id = qemu_uuid_unparse_strdup(&id);
    }
    /* In the directory's order: by name */
    for (i = 0; s->dir && i < s->dir->entries->len; i++) {
        NvstoreEntry *e = g_ptr_array_index(s->dir->entries, i);
        ImageInfoSpecificNvstoreBlob *b = g_new0(ImageInfoSpecificNvstoreBlob,
                                                 1);
        strList **atail = &b->attributes;

        b->name = g_strdup(e->name);
        b->type = g_strdup(e->type);
        if (nvstore_entry_unusable(e)) {
            b->unusable = g_strdup(nvstore_entry_unusable(e));
        } else {
            b->has_size = true;
            b->size = nvstore_entry_data_size(e);
            b->has_realsize = e->has_realsize;
            b->realsize = e->realsize;
            b->has_offset = b->has_generation = e->has_extent;
            b->offset = e->extent.offset;
            b->generation = e->extent.generation;
            for (j = 0; j < e->attrs->len; j++) {
                NvstoreAttr *a = g_ptr_array_index(e->attrs, j);

                QAPI_LIST_APPEND(atail, g_strdup(a->name));
            }
        }
        QAPI_LIST_APPEND(tail, b);
    }
    return spec;
}

/* ---- Amend --------------------------------------------------------------- */

static QemuOptsList nvstore_amend_opts = {
    .name = "nvstore-amend-opts",
    .head = QTAILQ_HEAD_INITIALIZER(nvstore_amend_opts.head),
    .desc = {
        {
            .name = NVSTORE_OPT_DELETE_BLOB,
            .type = QEMU_OPT_STRING,
            .help = "Delete the blob of this name",
        },
        {
            .name = NVSTORE_OPT_NEW_SECRET,
            .type = QEMU_OPT_STRING,
            .help = "Add a key slot that this secret opens",
        },
        {
            .name = NVSTORE_OPT_OLD_SECRET,
            .type = QEMU_OPT_STRING,
            .help = "Clear the key slots that this secret opens",
        },
        {
            .name = NVSTORE_OPT_ITER_TIME,
            .type = QEMU_OPT_NUMBER,
            .help = "PBKDF2 time of the new key slot, in milliseconds "
                    "(default 2000)",
        },
        {
            .name = NVSTORE_OPT_REKEY,
            .type = QEMU_OPT_BOOL,
            .help = "A new master key: every blob resealed, only the key "
                    "slots of the secret that opens the image and of "
                    "encrypt.new-secret kept (revokes every other secret "
                    "and old copies of key slots)",
        },
        { /* end of list */ }
    }
};

int coroutine_fn GRAPH_RDLOCK
nvstore_co_amend(BlockDriverState *bs, BlockdevAmendOptions *opts,
                 bool force, Error **errp)
{
    BDRVNvstoreState *s = bs->opaque;
    NvstoreBlobUpdate u = {
        .name = opts->u.nvstore.delete_blob,
        .remove = true,
    };
    int ret;

    assert(opts->driver == BLOCKDEV_DRIVER_NVSTORE);
    if (opts->u.nvstore.encrypt) {
        WITH_QEMU_LOCK_GUARD(&s->lock) {
            ret = nvstore_co_amend_keys(bs, opts->u.nvstore.encrypt, errp);
        }
        if (ret < 0) {
            return ret;
        }
    }
    if (!u.name) {
        return 0;
    }
    return nvstore_co_commit(bs, &u, 1, errp);
}

/* qemu-img amend -o: the options as QAPI amend options */
static int GRAPH_RDLOCK
nvstore_amend_options(BlockDriverState *bs, QemuOpts *opts,
                      BlockDriverAmendStatusCB *status_cb, void *cb_opaque,
                      bool force, Error **errp)
{
    BlockdevNvstoreEncryptionAmend enc = {
        .new_secret = (char *)qemu_opt_get(opts, NVSTORE_OPT_NEW_SECRET),
        .old_secret = (char *)qemu_opt_get(opts, NVSTORE_OPT_OLD_SECRET),
        .has_iter_time = qemu_opt_find(opts, NVSTORE_OPT_ITER_TIME),
        .iter_time = qemu_opt_get_number(opts, NVSTORE_OPT_ITER_TIME, 0),
        .has_rekey = qemu_opt_find(opts, NVSTORE_OPT_REKEY),
        .rekey = qemu_opt_get_bool(opts, NVSTORE_OPT_REKEY, false),
    };
    BlockdevAmendOptions amend = {
        .driver = BLOCKDEV_DRIVER_NVSTORE,
        .u.nvstore.delete_blob =
            (char *)qemu_opt_get(opts, NVSTORE_OPT_DELETE_BLOB),
    };

    if (enc.new_secret || enc.old_secret || enc.has_iter_time ||
        enc.rekey) {
        amend.u.nvstore.encrypt = &enc;
    }
    return nvstore_amend(bs, &amend, force, errp);
}

/* ---- qemu-img measure ---------------------------------------------------- */

/*
 * Space of @dir's encoding with extents of the largest values; if
 * @encrypted, with every blob sealed and the authentication code
 */
static uint64_t nvstore_measure_dir(NvstoreDir *dir, bool encrypted,
                                    Error **errp)
{
    static const uint8_t seal[NVSTORE_SEAL_LEN];
    g_autofree uint8_t *enc = NULL;
    size_t len;
    guint i;

    for (i = 0; i < dir->entries->len; i++) {
        NvstoreEntry *e = g_ptr_array_index(dir->entries, i);
        NvstoreExtent ext = {
            .offset = NVSTORE_EXTENT_LIMIT - 1,
            .generation = NVSTORE_EXTENT_LIMIT - 1,
        };

        if (nvstore_entry_unusable(e)) {
            continue;
        }
        ext.length = nvstore_entry_data_size(e);
        if (ext.length && !nvstore_entry_set_extent(e, &ext, errp)) {
            return 0;
        }
        if (ext.length && encrypted) {
            nvstore_entry_set_sealed(e, seal);
        }
    }
    enc = nvstore_dir_encode(dir, &len, errp);
    if (encrypted) {
        len += NVSTORE_DIR_MAC_LEN;
    }
    return enc ? ROUND_UP(len, NVSTORE_ALIGN) : 0;
}

/*
 * The size of an image holding the blobs of @in_bs, if it is an nvstore
 * node, or else one blob of the size given (qemu-img measure --size, or
 * the size of @in_bs): "required" just after they are written to a new
 * image, "fully-allocated" once each has been replaced, the steady state
 * in which old and new copies alternate.  An unusable blob is counted
 * with its directory entry only.
 */
static BlockMeasureInfo *nvstore_measure(QemuOpts *opts,
                                         BlockDriverState *in_bs,
                                         Error **errp)
{
    g_autoptr(NvstoreDir) dir = NULL;
    BlockMeasureInfo *info;
    uint64_t data = 0, meta;
    guint i;

    GRAPH_RDLOCK_GUARD_MAINLOOP();
    if (in_bs && bdrv_skip_filters(in_bs)->drv == &bdrv_nvstore) {
        BDRVNvstoreState *s = bdrv_skip_filters(in_bs)->opaque;
        g_autofree uint8_t *enc = NULL;
        size_t len;

        if (!s->dir) {
            error_setg(errp, "The nvstore image has no valid directory");
            return NULL;
        }
        enc = nvstore_dir_encode(s->dir, &len, errp);
        if (!enc) {
            return NULL;
        }
        dir = nvstore_dir_parse(enc, len, &error_abort);
    } else {
        g_autofree char *name = g_strnfill(NVSTORE_NAME_MAX_LEN, 'x');
        g_autofree uint8_t *buf = NULL;
        int64_t size;

        if (in_bs) {
            size = bdrv_getlength(in_bs);
            if (size < 0) {
                error_setg_errno(errp, -size, "Could not get the size of "
                                 "the source");
                return NULL;
            }
        } else {
            size = qemu_opt_get_size(opts, BLOCK_OPT_SIZE, 0);
        }
        if (size >= NVSTORE_EXTENT_LIMIT) {
            error_setg(errp, "A blob cannot hold %" PRId64 " bytes", size);
            return NULL;
        }
        dir = nvstore_dir_new();
        nvstore_dir_add(dir, name, NVSTORE_BLOB_TYPE_RAW, &error_abort);
        if (size) {
            /* Only the size matters: give it an extent at once */
            NvstoreExtent ext = { .length = size };

            nvstore_entry_set_extent(nvstore_dir_lookup(dir, name), &ext,
                                     &error_abort);
        }
    }
    for (i = 0; i < dir->entries->len; i++) {
        NvstoreEntry *e = g_ptr_array_index(dir->entries, i);

        if (!nvstore_entry_unusable(e)) {
            data += ROUND_UP(nvstore_entry_data_size(e), NVSTORE_ALIGN);
        }
    }
    meta = nvstore_measure_dir(dir, opts &&
                               qemu_opt_get(opts, NVSTORE_OPT_KEY_SECRET),
                               errp);
    if (!meta) {
        return NULL;
    }
    info = g_new0(BlockMeasureInfo, 1);
    info->required = NVSTORE_DATA_OFFSET + data + meta;
    info->fully_allocated = NVSTORE_DATA_OFFSET + 2 * (data + meta);
    return info;
}

/* ---- Registration -------------------------------------------------------- */

static QemuOptsList nvstore_create_opts = {
    .name = "nvstore-create-opts",
    .head = QTAILQ_HEAD_INITIALIZER(nvstore_create_opts.head),
    .desc = {
        {
            .name = BLOCK_OPT_SIZE,
            .type = QEMU_OPT_SIZE,
            .help = "Must be 0 or absent: nvstore images have no virtual "
                    "size",
            .def_value_str = "0",
        },
        {
            .name = NVSTORE_OPT_CONTAINER,
            .type = QEMU_OPT_STRING,
            .help = "Create the image inside a new image of this format: "
                    "none (default) or qcow2, for internal snapshots",
            .def_value_str = "none",
        },
        {
            .name = NVSTORE_OPT_KEY_SECRET,
            .type = QEMU_OPT_STRING,
            .help = "Encrypt the image; ID of the secret that opens its "
                    "first key slot",
        },
        {
            .name = NVSTORE_OPT_ITER_TIME,
            .type = QEMU_OPT_NUMBER,
            .help = "PBKDF2 time of the key slot, in milliseconds "
                    "(default 2000)",
        },
        { /* end of list */ }
    }
};

BlockDriver bdrv_nvstore = {
    .format_name            = "nvstore",
    .instance_size          = sizeof(BDRVNvstoreState),
    .is_format              = true,
    .no_implicit_vmstate    = true,

    .bdrv_probe             = nvstore_probe,
    .bdrv_open              = nvstore_open,
    .bdrv_close             = nvstore_close,
    .bdrv_reopen_prepare    = nvstore_reopen_prepare,
    .bdrv_child_perm        = bdrv_default_perms,
    .bdrv_co_invalidate_cache = nvstore_co_invalidate_cache,

    .bdrv_co_preadv         = nvstore_co_preadv,
    .bdrv_co_pwritev        = nvstore_co_pwritev,
    .bdrv_co_truncate       = nvstore_co_truncate,
    .bdrv_co_getlength      = nvstore_co_getlength,
    .bdrv_co_flush_to_os    = nvstore_co_flush_to_os,
    .bdrv_inactivate        = nvstore_inactivate,

    .bdrv_co_create         = nvstore_co_create,
    .bdrv_co_create_opts    = nvstore_co_create_opts,
    .create_opts            = &nvstore_create_opts,
    .bdrv_get_specific_info = nvstore_get_specific_info,
    .bdrv_co_check          = nvstore_co_check,
    .bdrv_co_amend          = nvstore_co_amend,
    .bdrv_amend_options     = nvstore_amend_options,
    .amend_opts             = &nvstore_amend_opts,
    .bdrv_measure           = nvstore_measure,
};

static void bdrv_nvstore_init(void)
{
    bdrv_register(&bdrv_nvstore);
}

block_init(bdrv_nvstore_init);
