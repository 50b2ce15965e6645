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

int coroutine_mixed_fn GRAPH_RDLOCK
nvstore_open_keys(BlockDriverState *bs, const char *secret_id, Error **errp)
{
    ERRP_GUARD();
    BDRVNvstoreState *s = bs->opaque;
    NvstoreKeySlot ks[NVSTORE_NB_KEYSLOTS];
    bool opened[NVSTORE_NB_KEYSLOTS];
    g_autoptr(GString) why = g_string_new(NULL);
    int i, ret;

    ret = nvstore_read_keyslots(bs, ks, errp);
    if (ret < 0) {
        return ret;
    }
    if (!nvstore_keyslots_try(ks, s->header_ad, secret_id, opened,
                              &s->crypt, why)) {
        error_setg(errp, "The nvstore image is encrypted but has no key "
                   "slot");
        return -EINVAL;
    }
    for (i = 0; i < NVSTORE_NB_KEYSLOTS; i++) {
        if (opened[i]) {
            trace_nvstore_open_keys(bs, i);
            return 0;
        }
    }
    error_setg(errp, "No key slot of the nvstore image opens with secret "
               "'%s'", secret_id);
    if (why->len) {
        error_append_hint(errp, "%s", why->str);
    }
    return -EACCES;
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

/*
 * Add a key slot for @new_secret, then clear those that @old_secret
 * opens: each step one write and a flush, so that a crash leaves the
 * image open to one secret or both.  Nothing else changes: the key slots
 * wrap the same master key.
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
    if (!o->new_secret && !o->old_secret) {
        error_setg(errp, "Give encrypt.new-secret, encrypt.old-secret or "
                   "both");
        return -EINVAL;
    }
    if (bdrv_is_read_only(bs)) {
        error_setg(errp, "The nvstore image is read-only");
        return -EACCES;
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
