/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * nvstore: the device API of include/block/nvstore.h.  Devices name
 * blobs; this file finds the nvstore node below their BlockBackend, looks
 * the blobs up in its committed directory and hands updates to the
 * commit.  It knows nothing of the on-disk format.
 *
 * Each function is a coroutine_fn nvstore_co_*() here; the functions for
 * callers outside coroutines are generated from include/block/nvstore.h
 * by scripts/block-coroutine-wrapper.py.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "system/block-backend.h"
#include "nvstore-int.h"
#include "trace.h"

/* Look up a usable blob (s->lock is held): 0, -ENOENT or -ENOTSUP */
static int coroutine_fn nvstore_find(BDRVNvstoreState *s, const char *name,
                                     NvstoreEntry **e, Error **errp)
{
    qemu_co_mutex_assert_locked(&s->lock);
    *e = s->dir ? nvstore_dir_lookup(s->dir, name) : NULL;
    if (!*e) {
        error_setg(errp, "No blob named '%s'", name);
        return -ENOENT;
    }
    if (!nvstore_entry_check_usable(*e, errp)) {
        return -ENOTSUP;
    }
    return 0;
}

static gint nvstore_str_cmp(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void nvstore_fill_info(NvstoreEntry *e, NvstoreBlobInfo *info)
{
    GPtrArray *attrs = g_ptr_array_new();
    guint i;

    info->type = g_strdup(e->type);
    info->size = nvstore_entry_data_size(e);
    info->has_realsize = e->has_realsize;
    info->realsize = e->realsize;
    info->generation = e->has_extent ? e->extent.generation : 0;
    info->encrypted = e->sealed != NULL;
    for (i = 0; i < e->attrs->len; i++) {
        NvstoreAttr *a = g_ptr_array_index(e->attrs, i);

        g_ptr_array_add(attrs, g_strdup(a->name));
    }
    g_ptr_array_sort(attrs, nvstore_str_cmp);
    g_ptr_array_add(attrs, NULL);
    info->attrs = (char **)g_ptr_array_free(attrs, false);
}

/* The nvstore node of @blk, filters skipped, or NULL with @errp set */
static GRAPH_RDLOCK BlockDriverState *
nvstore_api_node(BlockBackend *blk, Error **errp)
{
    BlockDriverState *bs = blk_bs(blk) ? bdrv_skip_filters(blk_bs(blk)) :
                                         NULL;

    if (!bs) {
        error_setg(errp, "No medium");
    } else if (bs->drv != &bdrv_nvstore) {
        error_setg(errp, "Node '%s' is not an nvstore node",
                   bdrv_get_node_name(bs));
        bs = NULL;
    }
    return bs;
}

/* A call of the device API on the nvstore node of a BlockBackend */
typedef struct NvstoreApiCall {
    BlockBackend *blk;
    /* The node; NULL if the call could not begin */
    BlockDriverState *bs;
    /* The blob the call names, if any */
    NvstoreEntry *e;
} NvstoreApiCall;

/*
 * Begin a call on the nvstore node of @blk (filters skipped), and look up
 * the usable blob @name if @name is not NULL.  The graph lock is taken in
 * any case; on success, the call is in flight on @blk and on the node,
 * whose lock is held.
 *
 * Returns: 0 on success; -ENOMEDIUM, -EINVAL (not an nvstore node),
 * -ENOENT or -ENOTSUP (see nvstore_find()) with @errp set.
 */
static int coroutine_fn TSA_ACQUIRE_SHARED(graph_lock)
nvstore_co_api_begin(NvstoreApiCall *c, BlockBackend *blk, const char *name,
                     Error **errp)
{
    BlockDriverState *bs;
    BDRVNvstoreState *s;
    int ret;

    bdrv_graph_co_rdlock();
    *c = (NvstoreApiCall) { .blk = blk };
    bs = nvstore_api_node(blk, errp);
    if (!bs) {
        return blk_bs(blk) ? -EINVAL : -ENOMEDIUM;
    }
    blk_inc_in_flight(blk);
    bdrv_inc_in_flight(bs);
    s = bs->opaque;
    qemu_co_mutex_lock(&s->lock);
    c->bs = bs;
    if (name) {
        ret = nvstore_find(s, name, &c->e, errp);
        if (ret < 0) {
            return ret;
        }
    }
    return 0;
}

/* End call @c, which returns @ret */
static int coroutine_fn TSA_RELEASE_SHARED(graph_lock)
nvstore_co_api_end(NvstoreApiCall *c, int ret)
{
    if (c->bs) {
        BDRVNvstoreState *s = c->bs->opaque;

        qemu_co_mutex_unlock(&s->lock);
        bdrv_dec_in_flight(c->bs);
        blk_dec_in_flight(c->blk);
    }
    bdrv_graph_co_rdunlock();
    return ret;
}

void nvstore_blob_info_clear(NvstoreBlobInfo *info)
{
    g_clear_pointer(&info->type, g_free);
    g_clear_pointer(&info->attrs, g_strfreev);
}

int coroutine_fn nvstore_co_blob_commit(BlockBackend *blk,
                                        const NvstoreBlobUpdate *updates,
                                        size_t n, Error **errp)
{
    NvstoreApiCall c;
    int ret = nvstore_co_api_begin(&c, blk, NULL, errp);

    ret = ret ?: nvstore_co_commit_locked(c.bs, updates, n, errp);
    return nvstore_co_api_end(&c, ret);
}

int coroutine_fn nvstore_co_blob_read(BlockBackend *blk, const char *name,
                                      uint8_t **data, size_t *len,
                                      Error **errp)
{
    NvstoreApiCall c;
    int ret = nvstore_co_api_begin(&c, blk, name, errp);

    if (!ret) {
        ret = nvstore_read_entry(c.bs, c.e, data, len, errp);
        trace_nvstore_blob_read(c.bs, name, ret);
    }
    return nvstore_co_api_end(&c, ret);
}

int coroutine_fn nvstore_co_blob_get_info(BlockBackend *blk,
                                          const char *name,
                                          NvstoreBlobInfo *info, Error **errp)
{
    NvstoreApiCall c;
    int ret = nvstore_co_api_begin(&c, blk, name, errp);

    if (!ret) {
        nvstore_fill_info(c.e, info);
    }
    return nvstore_co_api_end(&c, ret);
}

/* Copy the value of attribute @attr of blob @e, called @name */
static int nvstore_copy_attr(NvstoreEntry *e, const char *name,
                             const char *attr, uint8_t **value, size_t *len,
                             Error **errp)
{
    const NvstoreAttr *a = nvstore_entry_get_attr(e, attr);

    if (!a) {
        error_setg(errp, "Blob '%s' has no attribute '%s'", name, attr);
        return -ENOENT;
    }
    *value = a->value ? g_memdup2(a->value, a->value_len) : NULL;
    *len = a->value_len;
    return 0;
}

int coroutine_fn nvstore_co_blob_get_attr(BlockBackend *blk,
                                          const char *name, const char *attr,
                                          uint8_t **value, size_t *len,
                                          Error **errp)
{
    NvstoreApiCall c;
    int ret = nvstore_co_api_begin(&c, blk, name, errp);

    ret = ret ?: nvstore_copy_attr(c.e, name, attr, value, len, errp);
    return nvstore_co_api_end(&c, ret);
}

/*
 * The names of all blobs of the node of @c, usable or not, sorted (as
 * the directory keeps them)
 */
static char **nvstore_names(NvstoreApiCall *c)
{
    BDRVNvstoreState *s = c->bs->opaque;
    GPtrArray *names = g_ptr_array_new();
    guint i;

    for (i = 0; s->dir && i < s->dir->entries->len; i++) {
        NvstoreEntry *e = g_ptr_array_index(s->dir->entries, i);

        g_ptr_array_add(names, g_strdup(e->name));
    }
    g_ptr_array_add(names, NULL);
    return (char **)g_ptr_array_free(names, false);
}

char ** coroutine_fn nvstore_co_blob_list(BlockBackend *blk, Error **errp)
{
    NvstoreApiCall c;
    char **names = NULL;

    if (nvstore_co_api_begin(&c, blk, NULL, errp) == 0) {
        names = nvstore_names(&c);
    }
    nvstore_co_api_end(&c, 0);
    return names;
}

int nvstore_blob_claim(BlockBackend *blk, const char *name, const char *who,
                       Error **errp)
{
    BlockDriverState *bs;

    GLOBAL_STATE_CODE();
    GRAPH_RDLOCK_GUARD_MAINLOOP();
    bs = nvstore_api_node(blk, errp);
    if (!bs) {
        return -EINVAL;
    }
    return nvstore_claim(bs, name, who, NULL, errp) ? 0 : -EBUSY;
}

void nvstore_blob_release(BlockBackend *blk, const char *name)
{
    BlockDriverState *bs;

    GLOBAL_STATE_CODE();
    GRAPH_RDLOCK_GUARD_MAINLOOP();
    bs = nvstore_api_node(blk, NULL);
    if (bs) {
        nvstore_release(bs, name);
    }
}

/*
 * The encrypted nvstore node of @blk and its keys, for
 * nvstore_state_seal() and nvstore_state_unseal(): 0, -ENOTSUP if it is
 * not encrypted, or another negative errno value with @errp set
 */
static int GRAPH_RDLOCK nvstore_state_crypt(BlockBackend *blk,
                                            NvstoreCrypt **crypt,
                                            Error **errp)
{
    BlockDriverState *bs = nvstore_api_node(blk, errp);
    BDRVNvstoreState *s;

    if (!bs) {
        return -EINVAL;
    }
    s = bs->opaque;
    if (!s->encrypted) {
        return -ENOTSUP;
    }
    if (!s->crypt) {
        error_setg(errp, "The nvstore image is encrypted, and no key was "
                   "given (%s)", NVSTORE_OPT_KEY_SECRET);
        return -EACCES;
    }
    *crypt = s->crypt;
    return 0;
}

bool coroutine_fn nvstore_co_is_encrypted(BlockBackend *blk)
{
    BlockDriverState *bs;

    GRAPH_RDLOCK_GUARD();
    bs = nvstore_api_node(blk, NULL);
    return bs && ((BDRVNvstoreState *)bs->opaque)->encrypted;
}

int coroutine_fn nvstore_co_state_seal(BlockBackend *blk, const char *label,
                                       const uint8_t *data, size_t len,
                                       uint8_t **sealed, Error **errp)
{
    NvstoreCrypt *crypt;
    uint8_t *out;
    int ret;

    GRAPH_RDLOCK_GUARD();
    QEMU_BUILD_BUG_ON(NVSTORE_STATE_SEAL_OVERHEAD !=
                      NVSTORE_SEAL_SALT_LEN + NVSTORE_SEAL_TAG_LEN);
    ret = nvstore_state_crypt(blk, &crypt, errp);
    if (ret == -ENOTSUP) {
        return 0;
    } else if (ret < 0) {
        return ret;
    }
    out = g_malloc(len + NVSTORE_STATE_SEAL_OVERHEAD);
    if (!nvstore_crypt_seal_state(crypt, label, data, len, out, errp)) {
        g_free(out);
        return -EIO;
    }
    trace_nvstore_state_seal(label, len);
    *sealed = out;
    return 1;
}

int coroutine_fn nvstore_co_state_unseal(BlockBackend *blk,
                                         const char *label,
                                         const uint8_t *sealed,
                                         size_t sealed_len, uint8_t **data,
                                         Error **errp)
{
    NvstoreCrypt *crypt;
    uint8_t *out;
    size_t len;
    int ret;

    GRAPH_RDLOCK_GUARD();
    ret = nvstore_state_crypt(blk, &crypt, errp);
    if (ret == -ENOTSUP) {
        error_setg(errp, "The nvstore image is not encrypted: it cannot "
                   "unseal state");
    }
    if (ret < 0) {
        return ret;
    }
    if (sealed_len < NVSTORE_STATE_SEAL_OVERHEAD) {
        error_setg(errp, "Sealed state '%s' of %zu octets is too short",
                   label, sealed_len);
        return -EBADMSG;
    }
    len = sealed_len - NVSTORE_STATE_SEAL_OVERHEAD;
    out = g_malloc(MAX(len, 1));
    ret = nvstore_crypt_unseal_state(crypt, label, sealed, sealed_len, out,
                                     errp);
    trace_nvstore_state_unseal(label, len, ret);
    if (ret < 0) {
        g_free(out);
        return ret;
    }
    *data = out;
    return 0;
}
