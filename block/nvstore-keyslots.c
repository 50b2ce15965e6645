/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * nvstore: the key slots of an encrypted image (docs/interop/nvstore.rst,
 * "Key slots"): reading them, opening the image's keys with a secret,
 * and changing them (qemu-img amend).  What a key slot holds, and the
 * cryptography that wraps and unwraps the master key, are
 * nvstore-crypt.c's.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "crypto/memwipe.h"
#include "nvstore-int.h"
#include "trace.h"

int coroutine_mixed_fn GRAPH_RDLOCK
nvstore_read_keyslots(BlockDriverState *bs,
                      NvstoreKeySlot ks[NVSTORE_NB_KEYSLOTS], Error **errp)
{
    int i, ret;

    for (i = 0; i < NVSTORE_NB_KEYSLOTS; i++) {
        ret = bdrv_pread(bs->file, NVSTORE_KEYSLOT_OFFSET(i), sizeof(ks[i]),
                         &ks[i], 0);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Could not read key slot %d", i);
            return ret;
        }
    }
    return 0;
}

bool coroutine_mixed_fn GRAPH_RDLOCK
nvstore_has_keyslots(BlockDriverState *bs)
{
    NvstoreKeySlot ks[NVSTORE_NB_KEYSLOTS];
    int i;

    if (nvstore_read_keyslots(bs, ks, NULL) < 0) {
        return false;
    }
    for (i = 0; i < NVSTORE_NB_KEYSLOTS; i++) {
        if (!memcmp(ks[i].magic, NVSTORE_KEYSLOT_MAGIC,
                    sizeof(ks[i].magic))) {
            return true;
        }
    }
    return false;
}

/*
 * Which key slots of @ks the secret @secret_id opens: each sets
 * @opened[i].  With @crypt, stop at the first, and set *@crypt to the
 * image's keys; without, try them all.  Each try costs a key
 * derivation.  @why, if not NULL, gets the reasons of the key slots that
 * are damaged or that the secret cannot be tried on, a line each.
 *
 * Returns: the number of key slots in use.
 */
static int nvstore_keyslots_try(const NvstoreKeySlot ks[NVSTORE_NB_KEYSLOTS],
                                const uint8_t *header_ad,
                                const char *secret_id,
                                bool opened[NVSTORE_NB_KEYSLOTS],
                                NvstoreCrypt **crypt, GString *why)
{
    int i, in_use = 0;

    for (i = 0; i < NVSTORE_NB_KEYSLOTS; i++) {
        g_autoptr(NvstoreCrypt) c = NULL;
        Error *local_err = NULL;
        int ret;

        opened[i] = false;
        if (!nvstore_keyslot_in_use(&ks[i])) {
            continue;
        }
        in_use++;
        if (crypt && *crypt) {
            continue;
        }
        ret = nvstore_keyslot_open(&ks[i], i, header_ad, secret_id, &c,
                                   &local_err);
        if (ret == 0) {
            opened[i] = true;
            if (crypt) {
                *crypt = g_steal_pointer(&c);
            }
        } else if (ret != -EACCES && why) {
            /* Damaged, or the secret cannot be read: say which */
            g_string_append_printf(why, "%s\n", error_get_pretty(local_err));
        }
        error_free(local_err);
    }
    return in_use;
}

/*
 * The secret opens several master keys: an encrypt.rekey was interrupted
 * between writing the new key's key slots and clearing the old ones.
 * The image's key is the one under which the newest state loads; the
 * others are replaced keys (@s->old_crypts), whose slots and close
 * record the load then passes over instead of taking them for
 * tampering.  Takes the keys of @opened.
 */
static void coroutine_mixed_fn GRAPH_RDLOCK
nvstore_choose_key(BlockDriverState *bs, GPtrArray *opened)
{
    BDRVNvstoreState *s = bs->opaque;
    uint64_t best_gen = 0;
    guint k, j, best = 0;
    bool found = false;

    for (k = 0; k < opened->len; k++) {
        g_autoptr(GString) why = g_string_new(NULL);

        s->crypt = g_ptr_array_index(opened, k);
        s->old_crypts = g_ptr_array_new();
        for (j = 0; j < opened->len; j++) {
            if (j != k) {
                g_ptr_array_add(s->old_crypts, g_ptr_array_index(opened, j));
            }
        }
        if (nvstore_load_state_why(bs, why, NULL) == 0 &&
            (!found || s->gen > best_gen)) {
            found = true;
            best = k;
            best_gen = s->gen;
        }
        g_clear_pointer(&s->dir, nvstore_dir_free);
        g_clear_pointer(&s->old_crypts, g_ptr_array_unref);
    }
    /* If none loads, the load that follows says why */
    s->crypt = g_ptr_array_steal_index(opened, best);
    s->old_crypts = g_ptr_array_new_with_free_func(
        (GDestroyNotify)nvstore_crypt_free);
    while (opened->len) {
        g_ptr_array_add(s->old_crypts, g_ptr_array_steal_index(opened, 0));
    }
    trace_nvstore_choose_key(bs, s->old_crypts->len, best_gen);
}

int coroutine_mixed_fn GRAPH_RDLOCK
nvstore_open_keys(BlockDriverState *bs, const char *secret_id, Error **errp)
{
    ERRP_GUARD();
    BDRVNvstoreState *s = bs->opaque;
    NvstoreKeySlot ks[NVSTORE_NB_KEYSLOTS];
    g_autoptr(GPtrArray) opened = g_ptr_array_new_with_free_func(
        (GDestroyNotify)nvstore_crypt_free);
    g_autoptr(GString) why = g_string_new(NULL);
    int i, in_use = 0, ret;

    ret = nvstore_read_keyslots(bs, ks, errp);
    if (ret < 0) {
        return ret;
    }
    /*
     * Every key slot the secret opens: more than one master key after an
     * interrupted encrypt.rekey
     */
    for (i = 0; i < NVSTORE_NB_KEYSLOTS; i++) {
        NvstoreCrypt *c = NULL;
        Error *local_err = NULL;
        guint k;

        if (!nvstore_keyslot_in_use(&ks[i])) {
            continue;
        }
        in_use++;
        ret = nvstore_keyslot_open(&ks[i], i, s->header_ad, secret_id, &c,
                                   &local_err);
        if (ret == 0) {
            trace_nvstore_open_keys(bs, i);
            for (k = 0; k < opened->len; k++) {
                if (nvstore_crypt_same_master(c, opened->pdata[k])) {
                    g_clear_pointer(&c, nvstore_crypt_free);
                    break;
                }
            }
            if (c) {
                g_ptr_array_add(opened, c);
            }
        } else if (ret != -EACCES) {
            /* Damaged, or the secret cannot be read: say which */
            g_string_append_printf(why, "%s\n", error_get_pretty(local_err));
        }
        error_free(local_err);
    }
    if (!in_use) {
        error_setg(errp, "The nvstore image is encrypted but has no key "
                   "slot");
        return -EINVAL;
    }
    if (!opened->len) {
        error_setg(errp, "No key slot of the nvstore image opens with "
                   "secret '%s'", secret_id);
        if (why->len) {
            error_append_hint(errp, "%s", why->str);
        }
        return -EACCES;
    }
    if (opened->len == 1) {
        s->crypt = g_ptr_array_steal_index(opened, 0);
    } else {
        nvstore_choose_key(bs, opened);
    }
    return 0;
}

/* Write key slot @i, @ks, and flush */
static int coroutine_fn GRAPH_RDLOCK
nvstore_write_keyslot(BlockDriverState *bs, int i, const NvstoreKeySlot *ks,
                      Error **errp)
{
    int ret;

    ret = bdrv_co_pwrite(bs->file, NVSTORE_KEYSLOT_OFFSET(i), sizeof(*ks),
                         ks, 0);
    if (ret >= 0) {
        ret = bdrv_co_flush(bs->file->bs);
    }
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Could not write key slot %d", i);
        return ret;
    }
    trace_nvstore_keyslot_write(bs, i, nvstore_keyslot_in_use(ks));
    return 0;
}

/* Zero the close record, and flush: a rekey's first step */
static int coroutine_fn GRAPH_RDLOCK
nvstore_clear_close_record(BlockDriverState *bs, Error **errp)
{
    int ret = bdrv_co_pwrite_zeroes(bs->file, NVSTORE_CLOSE_OFFSET,
                                    NVSTORE_CLOSE_SIZE, 0);

    if (ret >= 0) {
        ret = bdrv_co_flush(bs->file->bs);
    }
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Could not clear the close record");
    }
    return ret;
}

/*
 * Every blob of the committed state that has data, read with the current
 * key: updates that write it anew (under the new key, once @s->crypt is
 * that).  Attributes stay as they are.
 */
static int coroutine_fn GRAPH_RDLOCK
nvstore_reseal_updates(BlockDriverState *bs, GArray *updates, Error **errp)
{
    BDRVNvstoreState *s = bs->opaque;
    guint i;
    int ret;

    for (i = 0; i < s->dir->entries->len; i++) {
        NvstoreEntry *e = g_ptr_array_index(s->dir->entries, i);
        NvstoreBlobUpdate u = { .name = e->name, .type = e->type };
        uint8_t *data;
        size_t len;

        if (nvstore_entry_unusable(e)) {
            if (e->raw && (e->raw->has_space || e->raw->space_unknown)) {
                error_setg(errp, "Blob '%s' cannot be used by this version: "
                           "rekeying would lose its data",
                           nvstore_entry_desc(e));
                return -ENOTSUP;
            }
            continue;
        }
        if (!nvstore_entry_data_size(e)) {
            continue;
        }
        ret = nvstore_read_entry(bs, e, &data, &len, errp);
        if (ret < 0) {
            error_prepend(errp, "Cannot reseal blob '%s': ",
                          nvstore_entry_desc(e));
            return ret;
        }
        u.data = data;
        u.len = len;
        u.has_realsize = e->has_realsize;
        u.realsize = e->realsize;
        g_array_append_val(updates, u);
    }
    return 0;
}

static void nvstore_reseal_free(GArray *updates)
{
    guint i;

    for (i = 0; i < updates->len; i++) {
        NvstoreBlobUpdate *u = &g_array_index(updates, NvstoreBlobUpdate, i);

        qcrypto_memwipe_free((void *)u->data, u->len);
    }
    g_array_unref(updates);
}

typedef GArray NvstoreUpdates;
G_DEFINE_AUTOPTR_CLEANUP_FUNC(NvstoreUpdates, nvstore_reseal_free)

/*
 * encrypt.rekey: a new master key.  The key slots of the new key are
 * those of the secret that opened the node (unless it is @old_secret)
 * and of @new_secret; every other key slot, of the old key, is cleared.
 * Each step is durable before the next:
 *
 * 1. key slots of the old key that will go anyway, cleared as far as
 *    the new ones need room (one of the secret that opened the node
 *    stays; if the rekey fails later, they are gone all the same);
 * 2. the new key's key slots written, in free key slots;
 * 3. the close record cleared (the old key's);
 * 4. a commit that writes every blob anew, sealed under the new key,
 *    with a directory authenticated under it, its data written and
 *    flushed before its directory and slot (see @s->data_first);
 * 5. a commit of nothing, so that neither slot holds a directory of the
 *    old key;
 * 6. the old key's key slots cleared.
 *
 * A crash before 4 is durable leaves the old key in use, which the old
 * key slots open; after, the new one, which the new key slots open.
 * When a secret opens both (the interrupted rekey of a secret that
 * stays), the open takes the key of the newest state
 * (nvstore_choose_key()).
 */
static int coroutine_fn GRAPH_RDLOCK
nvstore_co_rekey(BlockDriverState *bs, BlockdevNvstoreEncryptionAmend *o,
                 Error **errp)
{
    BDRVNvstoreState *s = bs->opaque;
    NvstoreKeySlot ks[NVSTORE_NB_KEYSLOTS], new[2], zero = { 0 };
    bool is_new[NVSTORE_NB_KEYSLOTS] = { 0 };
    g_autoptr(NvstoreCrypt) c2 = NULL;
    g_autoptr(NvstoreUpdates) updates = NULL;
    const char *secrets[2];
    NvstoreCrypt *c1;
    int i, n = 0, k, in_use = 0, kept = -1, ret;

    if (!s->key_secret) {
        error_setg(errp, "Rekeying needs the image open with its key (%s)",
                   NVSTORE_OPT_KEY_SECRET);
        return -EACCES;
    }
    if (!o->old_secret || strcmp(o->old_secret, s->key_secret)) {
        secrets[n++] = s->key_secret;
    }
    if (o->new_secret && (!n || strcmp(o->new_secret, s->key_secret))) {
        secrets[n++] = o->new_secret;
    }
    if (!n) {
        error_setg(errp, "Rekeying without the secret that opened the image "
                   "('%s') needs encrypt.new-secret: no key slot would "
                   "remain", s->key_secret);
        return -EINVAL;
    }
    ret = nvstore_read_keyslots(bs, ks, errp);
    if (ret < 0) {
        return ret;
    }
    /*
     * A key slot that opens the current key with the node's secret stays
     * until the new key is in use (not one of a key that an interrupted
     * rekey replaced, which the secret may open too)
     */
    for (i = 0; i < NVSTORE_NB_KEYSLOTS; i++) {
        g_autoptr(NvstoreCrypt) c = NULL;

        if (!nvstore_keyslot_in_use(&ks[i])) {
            continue;
        }
        in_use++;
        if (kept < 0 &&
            nvstore_keyslot_open(&ks[i], i, s->header_ad, s->key_secret, &c,
                                 NULL) == 0 &&
            nvstore_crypt_same_master(c, s->crypt)) {
            kept = i;
        }
    }
    if (kept < 0) {
        error_setg(errp, "No key slot opens the image's key with secret "
                   "'%s'", s->key_secret);
        return -EINVAL;
    }

    /* The new key, and its key slots (made first: they may fail) */
    c2 = nvstore_crypt_new(s->header_ad, errp);
    if (!c2) {
        return -ENOTSUP;
    }
    for (k = 0; k < n; k++) {
        ret = nvstore_keyslot_make(c2, secrets[k],
                                   o->has_iter_time ? o->iter_time :
                                   NVSTORE_DEFAULT_ITER_TIME_MS, &new[k],
                                   errp);
        if (ret < 0) {
            return ret;
        }
    }

    /* 1: room for them */
    for (i = 0; i < NVSTORE_NB_KEYSLOTS && NVSTORE_NB_KEYSLOTS - in_use < n;
         i++) {
        if (nvstore_keyslot_in_use(&ks[i]) && i != kept) {
            ret = nvstore_write_keyslot(bs, i, &zero, errp);
            if (ret < 0) {
                return ret;
            }
            ks[i] = zero;
            in_use--;
        }
    }
    /* 2 */
    for (i = 0, k = 0; i < NVSTORE_NB_KEYSLOTS && k < n; i++) {
        if (!nvstore_keyslot_in_use(&ks[i])) {
            ret = nvstore_write_keyslot(bs, i, &new[k++], errp);
            if (ret < 0) {
                goto undo_keyslots;
            }
            is_new[i] = true;
        }
    }
    /* 3 */
    ret = nvstore_clear_close_record(bs, errp);
    if (ret < 0) {
        goto undo_keyslots;
    }
    /* 4 */
    updates = g_array_new(false, false, sizeof(NvstoreBlobUpdate));
    ret = nvstore_reseal_updates(bs, updates, errp);
    if (ret < 0) {
        goto undo_keyslots;
    }
    c1 = s->crypt;
    s->crypt = g_steal_pointer(&c2);
    s->data_first = true;
    ret = nvstore_co_commit_updates(bs, (NvstoreBlobUpdate *)updates->data,
                                    updates->len, errp);
    s->data_first = false;
    if (ret < 0) {
        c2 = s->crypt;
        s->crypt = c1;
        error_prepend(errp, "Rekeying failed, the old key stays: ");
        goto undo_keyslots;
    }
    /* The old key's directory is still in the other slot */
    if (!s->old_crypts) {
        s->old_crypts = g_ptr_array_new_with_free_func(
            (GDestroyNotify)nvstore_crypt_free);
    }
    g_ptr_array_add(s->old_crypts, c1);
    trace_nvstore_rekey(bs, s->gen, updates->len);
    /* 5 */
    ret = nvstore_co_commit_updates(bs, NULL, 0, errp);
    if (ret < 0) {
        error_prepend(errp, "Rekeying is incomplete (the new key is in "
                      "use; run it again to clear the old key slots): ");
        return ret;
    }
    /* 6 */
    for (i = 0; i < NVSTORE_NB_KEYSLOTS; i++) {
        if (!is_new[i] && nvstore_keyslot_in_use(&ks[i])) {
            ret = nvstore_write_keyslot(bs, i, &zero, errp);
            if (ret < 0) {
                error_prepend(errp, "Rekeying is incomplete (the new key "
                              "is in use; run it again to clear the old "
                              "key slots): ");
                return ret;
            }
        }
    }
    g_clear_pointer(&s->old_crypts, g_ptr_array_unref);
    return 0;

undo_keyslots:
    /* The old key is in use: its key slots open it; the new ones go */
    for (i = 0; i < NVSTORE_NB_KEYSLOTS; i++) {
        if (is_new[i]) {
            nvstore_write_keyslot(bs, i, &zero, NULL);
        }
    }
    return ret;
}

/*
 * Add a key slot for @new_secret, then clear those that @old_secret
 * opens: each step one write and a flush, so that a crash leaves the
 * image open to one secret or both.  Nothing else changes: the key slots
 * wrap the same master key.  With @rekey, nvstore_co_rekey().
 */
int coroutine_fn GRAPH_RDLOCK
nvstore_co_amend_keys(BlockDriverState *bs,
                      BlockdevNvstoreEncryptionAmend *o, Error **errp)
{
    BDRVNvstoreState *s = bs->opaque;
    NvstoreKeySlot ks[NVSTORE_NB_KEYSLOTS], new;
    bool clear[NVSTORE_NB_KEYSLOTS] = { false };
    int i, free_slot = -1, in_use = 0, to_clear = 0;
    int ret;

    qemu_co_mutex_assert_locked(&s->lock);
    if (!s->encrypted) {
        error_setg(errp, "The nvstore image is not encrypted: it has no key "
                   "slots");
        return -EINVAL;
    }
    if (!s->crypt) {
        error_setg(errp, "Changing key slots needs the image open with its "
                   "key (%s)", NVSTORE_OPT_KEY_SECRET);
        return -EACCES;
    }
    if (!o->new_secret && !o->old_secret && !o->rekey) {
        error_setg(errp, "Give encrypt.new-secret, encrypt.old-secret, "
                   "encrypt.rekey or more");
        return -EINVAL;
    }
    if (bdrv_is_read_only(bs)) {
        error_setg(errp, "The nvstore image is read-only");
        return -EACCES;
    }
    if (bs->open_flags & BDRV_O_INACTIVE) {
        error_setg(errp, "The nvstore node is inactive (migration): no "
                   "changes until it is activated");
        return -EPERM;
    }
    if (o->rekey) {
        return nvstore_co_rekey(bs, o, errp);
    }
    ret = nvstore_read_keyslots(bs, ks, errp);
    if (ret < 0) {
        return ret;
    }
    /* The first free key slot, for the new secret */
    for (i = NVSTORE_NB_KEYSLOTS - 1; i >= 0; i--) {
        if (nvstore_keyslot_in_use(&ks[i])) {
            in_use++;
        } else {
            free_slot = i;
        }
    }
    if (o->old_secret) {
        nvstore_keyslots_try(ks, s->header_ad, o->old_secret, clear, NULL,
                             NULL);
        for (i = 0; i < NVSTORE_NB_KEYSLOTS; i++) {
            to_clear += clear[i];
        }
    }
    if (o->old_secret && !to_clear) {
        error_setg(errp, "No key slot opens with secret '%s'",
                   o->old_secret);
        return -EINVAL;
    }
    if (in_use - to_clear + !!o->new_secret < 1) {
        error_setg(errp, "Clearing the key slots of secret '%s' would leave "
                   "none: the blobs would be lost", o->old_secret);
        return -EINVAL;
    }
    if (o->new_secret) {
        if (free_slot < 0) {
            error_setg(errp, "All %d key slots are in use: clear one first",
                       NVSTORE_NB_KEYSLOTS);
            return -ENOSPC;
        }
        ret = nvstore_keyslot_make(s->crypt, o->new_secret,
                                   o->has_iter_time ? o->iter_time :
                                   NVSTORE_DEFAULT_ITER_TIME_MS, &new, errp);
        if (ret < 0) {
            return ret;
        }
        ret = nvstore_write_keyslot(bs, free_slot, &new, errp);
        if (ret < 0) {
            return ret;
        }
    }
    memset(&new, 0, sizeof(new));
    for (i = 0; i < NVSTORE_NB_KEYSLOTS; i++) {
        if (clear[i]) {
            ret = nvstore_write_keyslot(bs, i, &new, errp);
            if (ret < 0) {
                return ret;
            }
        }
    }
    return 0;
}
