/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * nvstore: moving an image to other storage while its node is in use.
 *
 * An nvstore node's storage is its "file" child, which is never a root
 * node, so blockdev-mirror cannot move it.  QEMU's idiom for a child is
 * blockdev-reopen of the parent with "file" set to another node; for
 * most formats the management layer must first make that node hold the
 * same bytes.  An nvstore image is small (KiB to a few MiB), so the node
 * makes the copy itself, in the drained section of the reopen, where no
 * commit runs: when the reopen completes the new storage holds every
 * committed generation's bytes, and the next commit goes there.
 *
 * The copy writes everything but the header block first, flushes, then
 * the header block, and flushes again.  Killed before the last flush,
 * the new storage holds no header that a reader takes for an nvstore
 * image, and the old storage is the image; after it, both hold the same
 * generation until the first commit on the new storage.  A management
 * layer that cannot tell whether the reopen completed opens both and
 * takes the one of the higher generation (docs/interop/nvstore-live.rst).
 * Storage that held an nvstore image before has its header cleared
 * first, so that the same holds of it.
 *
 * A node that only puts a filter over the same storage (copy-before-write,
 * throttle) is not a move: nothing is copied.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "crypto/memwipe.h"
#include "qobject/qdict.h"
#include "system/block-backend.h"
#include "nvstore-int.h"
#include "trace.h"

/* Bytes copied per request */
#define NVSTORE_MOVE_CHUNK (1 * MiB)

/* Copy [@offset, @end) of the image to @to (node @name), and flush it */
static int GRAPH_RDLOCK
nvstore_move_copy(BdrvChild *from, BlockBackend *to, const char *name,
                  int64_t offset, int64_t end, Error **errp)
{
    g_autofree uint8_t *buf = g_malloc(NVSTORE_MOVE_CHUNK);
    int ret = 0;

    while (offset < end) {
        int64_t n = MIN(end - offset, NVSTORE_MOVE_CHUNK);

        ret = bdrv_pread(from, offset, n, buf, 0);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Could not read the nvstore image "
                             "at offset %" PRId64, offset);
            break;
        }
        ret = blk_pwrite(to, offset, n, buf, 0);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Could not write the copy of the "
                             "nvstore image at offset %" PRId64, offset);
            break;
        }
        offset += n;
    }
    /* What was read is the image's, possibly encrypted: wipe it all the same */
    qcrypto_memwipe(buf, NVSTORE_MOVE_CHUNK);
    if (ret < 0) {
        return ret;
    }
    ret = blk_flush(to);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Could not flush '%s'", name);
    }
    return ret;
}

/* Whether @bs is @node or below it */
static bool GRAPH_RDLOCK
nvstore_move_is_below(BlockDriverState *node, BlockDriverState *bs)
{
    BdrvChild *c;

    if (node == bs) {
        return true;
    }
    QLIST_FOREACH(c, &node->children, next) {
        if (nvstore_move_is_below(c->bs, bs)) {
            return true;
        }
    }
    return false;
}

/*
 * Copy the image to @blk, its header block last, flushing after each.
 * Storage that holds an nvstore image already (an older copy of this
 * one, say) has its header zeroed and flushed first: else a copy cut
 * short would be its header over new slots whose data is not there.
 */
static int GRAPH_RDLOCK
nvstore_move_copy_all(BlockDriverState *bs, BlockBackend *blk,
                      const char *name, int64_t len, Error **errp)
{
    int64_t head = MIN(len, NVSTORE_BLOCK_SIZE);
    uint8_t magic[sizeof(NVSTORE_MAGIC) - 1];
    int ret;

    ret = blk_pread(blk, 0, sizeof(magic), magic, 0);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Could not read '%s'", name);
        return ret;
    }
    if (!memcmp(magic, NVSTORE_MAGIC, sizeof(magic))) {
        ret = blk_pwrite_zeroes(blk, 0, NVSTORE_BLOCK_SIZE, 0);
        if (ret >= 0) {
            ret = blk_flush(blk);
        }
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Could not clear the nvstore "
                             "header that '%s' holds", name);
            return ret;
        }
    }

    ret = nvstore_move_copy(bs->file, blk, name, head, len, errp);
    if (ret < 0) {
        return ret;
    }
    return nvstore_move_copy(bs->file, blk, name, 0, head, errp);
}

int GRAPH_UNLOCKED
nvstore_move_prepare(BDRVReopenState *state, Error **errp)
{
    BlockDriverState *bs = state->bs;
    const char *name = qdict_get_try_str(state->options, "file");
    BlockDriverState *to_bs;
    BlockBackend *blk;
    int64_t len, to_len;
    bool move, inactive;
    int ret;

    GLOBAL_STATE_CODE();

    to_bs = name ? bdrv_lookup_bs(NULL, name, NULL) : NULL;
    if (!to_bs) {
        /* No new child, or one the block layer refuses with its reason */
        return 0;
    }
    bdrv_graph_rdlock_main_loop();
    /* A filter over the same storage is no move; a cycle is refused later */
    move = bs->file && to_bs != bs->file->bs &&
        bdrv_skip_filters(to_bs) != bdrv_skip_filters(bs->file->bs) &&
        !nvstore_move_is_below(to_bs, bs);
    len = move ? bdrv_getlength(bs->file->bs) : 0;
    inactive = bdrv_is_inactive(bs);
    bdrv_graph_rdunlock_main_loop();
    if (!move) {
        return 0;
    }
    if (inactive) {
        /* Another process (a migration destination) owns the image */
        error_setg(errp, "Cannot move the nvstore image of '%s': the node "
                   "is inactive", bdrv_get_node_name(bs));
        return -EPERM;
    }
    if (!(state->flags & BDRV_O_RDWR)) {
        error_setg(errp, "Cannot move the nvstore image of '%s' to '%s': "
                   "the node must be writable", bdrv_get_node_name(bs), name);
        return -EACCES;
    }
    if (len < 0) {
        error_setg_errno(errp, -len, "Could not get the size of the nvstore "
                         "image");
        return len;
    }

    /* Nobody else may write the new storage while it is written */
    blk = blk_new(bdrv_get_aio_context(to_bs),
                  BLK_PERM_WRITE | BLK_PERM_RESIZE,
                  BLK_PERM_ALL & ~(BLK_PERM_WRITE | BLK_PERM_RESIZE));
    ret = blk_insert_bs(blk, to_bs, errp);
    if (ret < 0) {
        error_prepend(errp, "Cannot move the nvstore image to '%s': ", name);
        goto out;
    }
    to_len = blk_getlength(blk);
    if (to_len < 0) {
        ret = to_len;
        error_setg_errno(errp, -ret, "Could not get the size of '%s'", name);
        goto out;
    }
    if (to_len < len) {
        Error *local_err = NULL;

        ret = blk_truncate(blk, len, false, PREALLOC_MODE_OFF, 0, &local_err);
        if (ret < 0) {
            error_setg(errp, "Cannot move the nvstore image to '%s': the "
                       "image needs %" PRId64 " bytes, and it has %" PRId64
                       " and cannot grow: %s", name, len, to_len,
                       error_get_pretty(local_err));
            error_free(local_err);
            goto out;
        }
    }

    trace_nvstore_move(bs, name, len);
    bdrv_graph_rdlock_main_loop();
    ret = nvstore_move_copy_all(bs, blk, name, len, errp);
    bdrv_graph_rdunlock_main_loop();
    if (ret < 0) {
        error_prepend(errp, "Cannot move the nvstore image to '%s': ", name);
        goto out;
    }
    trace_nvstore_move_done(bs, name);
    ret = 0;
out:
    blk_unref(blk);
    return ret;
}
