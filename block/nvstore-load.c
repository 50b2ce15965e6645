/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * nvstore: reading the image.  The header, the two slots and their
 * directories, the blobs' data with their checksums, and the choice of
 * the slot that holds the committed state (docs/interop/nvstore.rst,
 * "Opening an image").
 *
 * Everything here reads and nothing writes: a damaged image is reported,
 * never changed (repairs are nvstore-check.c's).
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "nvstore-int.h"
#include "trace.h"

int64_t coroutine_mixed_fn GRAPH_RDLOCK
nvstore_image_size(BlockDriverState *bs, Error **errp)
{
    int64_t size = bdrv_getlength(bs->file->bs);

    if (size < 0) {
        error_setg_errno(errp, -size, "Could not get the image size");
    }
    return size;
}

/* Read and check the header: magic, checksum, incompatible features */
int coroutine_mixed_fn GRAPH_RDLOCK
nvstore_read_header(BlockDriverState *bs, Error **errp)
{
    BDRVNvstoreState *s = bs->opaque;
    NvstoreHeader h;
    int ret;

    ret = bdrv_pread(bs->file, NVSTORE_HEADER_OFFSET, sizeof(h), &h, 0);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Could not read the nvstore header");
        return ret;
    }
    if (memcmp(h.magic, NVSTORE_MAGIC, sizeof(h.magic))) {
        error_setg(errp, "Image is not in nvstore format (bad magic)");
        return -EINVAL;
    }

    if (nvstore_crc(&h, offsetof(NvstoreHeader, header_crc32c)) !=
        be32_to_cpu(h.header_crc32c)) {
        error_setg(errp, "The nvstore header is corrupt (checksum mismatch)");
        return -EINVAL;
    }
    memcpy(s->header_ad, &h, NVSTORE_HEADER_AD_LEN);
    nvstore_header_to_cpu(&h);
    if (h.incompatible_features & ~NVSTORE_INCOMPAT_MASK) {
        error_setg(errp, "Unsupported nvstore incompatible features 0x%"
                   PRIx64, h.incompatible_features & ~NVSTORE_INCOMPAT_MASK);
        return -ENOTSUP;
    }
    s->encrypted = h.incompatible_features & NVSTORE_INCOMPAT_ENCRYPTED;
    return 0;
}

/*
 * A commit of generation @gen references data that commits up to @gen
 * wrote, never later ones: an extent of a later generation would escape
 * the completeness check of the commit that copies it, which could then
 * never be complete.
 */
static bool nvstore_dir_generations_ok(NvstoreDir *dir, uint64_t gen,
                                       int i, Error **errp)
{
    guint k;

    for (k = 0; k < dir->entries->len; k++) {
        NvstoreEntry *e = g_ptr_array_index(dir->entries, k);

        if (!nvstore_entry_unusable(e) && e->has_extent &&
            e->extent.generation > gen) {
            error_setg(errp, "Slot %d: blob '%s' has data of generation %"
                       PRIu64 ", after the slot's", i, nvstore_entry_desc(e),
                       e->extent.generation);
            return false;
        }
    }
    return true;
}

/*
 * Check a slot or close record @slot read from disk, and convert it to
 * CPU byte order if its magic and checksum hold.  Returns 0 if it is
 * usable; -ENOENT if it was never written (no @magic, or generation 0);
 * -EINVAL if its checksum fails; -ERANGE if its generation is out of
 * range.
 */
static int nvstore_slot_decode(NvstoreSlot *slot, const char *magic)
{
    if (memcmp(slot->magic, magic, sizeof(slot->magic))) {
        memset(slot, 0, sizeof(*slot));
        return -ENOENT;
    }
    if (nvstore_crc(slot, offsetof(NvstoreSlot, slot_crc32c)) !=
        be32_to_cpu(slot->slot_crc32c)) {
        memset(slot, 0, sizeof(*slot));
        return -EINVAL;
    }
    nvstore_slot_to_cpu(slot);
    if (slot->generation == 0) {
        return -ENOENT;
    }
    return slot->generation < NVSTORE_EXTENT_LIMIT ? 0 : -ERANGE;
}

/* Read slot @i; -ENOENT if it was never written */
int coroutine_mixed_fn GRAPH_RDLOCK
nvstore_read_slot_raw(BlockDriverState *bs, int i, NvstoreSlot *slot,
                      Error **errp)
{
    int ret;

    ret = bdrv_pread(bs->file, NVSTORE_SLOT_OFFSET(i), sizeof(*slot), slot,
                     0);
    if (ret < 0) {
        memset(slot, 0, sizeof(*slot));
        error_setg_errno(errp, -ret, "Could not read slot %d", i);
        return ret;
    }
    ret = nvstore_slot_decode(slot, NVSTORE_SLOT_MAGIC);
    switch (ret) {
    case -ENOENT:
        error_setg(errp, "Slot %d was never written (%s)", i,
                   slot->magic[0] ? "generation 0" : "no slot magic");
        break;
    case -EINVAL:
        error_setg(errp, "Slot %d is corrupt (checksum mismatch)", i);
        break;
    case -ERANGE:
        error_setg(errp, "Slot %d: generation %" PRIu64 " is out of range",
                   i, slot->generation);
        ret = -EINVAL;
        break;
    }
    return ret;
}

/*
 * Whether the directory @buf (@len octets, its authentication code
 * after them) of generation @gen authenticates under a replaced key
 */
static bool nvstore_old_key_verifies(BDRVNvstoreState *s, uint64_t gen,
                                     const uint8_t *buf, size_t len)
{
    guint k;

    for (k = 0; s->old_crypts && k < s->old_crypts->len; k++) {
        if (nvstore_crypt_dir_verify(g_ptr_array_index(s->old_crypts, k),
                                     gen, buf, len, buf + len, NULL)) {
            return true;
        }
    }
    return false;
}

/* Read the close record; -ENOENT if there is none */
int coroutine_mixed_fn GRAPH_RDLOCK
nvstore_read_close_record(BlockDriverState *bs, NvstoreSlot *rec,
                          Error **errp)
{
    BDRVNvstoreState *s = bs->opaque;
    uint8_t sector[sizeof(*rec) + NVSTORE_CLOSE_MAC_LEN];
    Error *local_err = NULL;
    guint k;
    int ret;

    memset(rec, 0, sizeof(*rec));
    ret = bdrv_pread(bs->file, NVSTORE_CLOSE_OFFSET, sizeof(sector), sector,
                     0);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Could not read the close record");
        return ret;
    }
    memcpy(rec, sector, sizeof(*rec));
    ret = nvstore_slot_decode(rec, NVSTORE_CLOSE_MAGIC);
    switch (ret) {
    case -ENOENT:
        error_setg(errp, "The image has no close record");
        return ret;
    case -EINVAL:
        error_setg(errp, "The close record is corrupt (checksum mismatch)");
        return ret;
    case -ERANGE:
        error_setg(errp, "The close record: generation %" PRIu64 " is out "
                   "of range", rec->generation);
        memset(rec, 0, sizeof(*rec));
        return -EINVAL;
    }
    /* No crash leaves a checksum that holds and a code that does not */
    if (s->encrypted && s->crypt &&
        !nvstore_crypt_close_verify(s->crypt, (NvstoreSlot *)sector,
                                    sector + sizeof(*rec), &local_err)) {
        memset(rec, 0, sizeof(*rec));
        for (k = 0; s->old_crypts && k < s->old_crypts->len; k++) {
            if (nvstore_crypt_close_verify(
                    g_ptr_array_index(s->old_crypts, k),
                    (NvstoreSlot *)sector, sector + sizeof(*rec), NULL)) {
                /* A replaced key's: it records nothing of this key's */
                error_free(local_err);
                error_setg(errp, "The close record is of a replaced key");
                return -EINVAL;
            }
        }
        error_propagate(errp, local_err);
        return -EBADMSG;
    }
    return 0;
}

/* Read slot @i and its directory, and check both */
int coroutine_mixed_fn GRAPH_RDLOCK
nvstore_read_slot(BlockDriverState *bs, int i, int64_t file_size,
                  NvstoreSlot *slot, NvstoreDir **dir, Error **errp)
{
    ERRP_GUARD();
    BDRVNvstoreState *s = bs->opaque;
    g_autofree uint8_t *buf = NULL;
    g_autoptr(NvstoreDir) d = NULL;
    Error *local_err = NULL;
    uint64_t len;
    int ret;

    *dir = NULL;
    ret = nvstore_read_slot_raw(bs, i, slot, errp);
    if (ret < 0) {
        return ret;
    }
    if (slot->dir_offset < NVSTORE_DATA_OFFSET ||
        slot->dir_length > NVSTORE_DIR_MAX_SIZE +
                           (s->encrypted ? NVSTORE_DIR_MAC_LEN : 0) ||
        slot->dir_offset > file_size ||
        slot->dir_length > file_size - slot->dir_offset) {
        error_setg(errp, "Slot %d: the directory at %" PRIu64 "+%" PRIu64
                   " is outside the image", i, slot->dir_offset,
                   slot->dir_length);
        return -EINVAL;
    }
    buf = g_try_malloc(slot->dir_length);
    if (!buf && slot->dir_length) {
        error_setg(errp, "Slot %d: cannot allocate the directory", i);
        return -ENOMEM;
    }
    ret = bdrv_pread(bs->file, slot->dir_offset, slot->dir_length, buf, 0);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Slot %d: could not read the directory",
                         i);
        return ret;
    }
    if (nvstore_crc(buf, slot->dir_length) != slot->dir_crc32c) {
        error_setg(errp, "Slot %d: directory checksum mismatch", i);
        return -EINVAL;
    }
    len = slot->dir_length;
    if (s->encrypted) {
        /* The authentication code follows the encoding */
        if (len < NVSTORE_DIR_MAC_LEN) {
            error_setg(errp, "Slot %d: the directory is too short for its "
                       "authentication code", i);
            return -EINVAL;
        }
        len -= NVSTORE_DIR_MAC_LEN;
        if (s->crypt &&
            !nvstore_crypt_dir_verify(s->crypt, slot->generation, buf, len,
                                      buf + len, &local_err)) {
            if (nvstore_old_key_verifies(s, slot->generation, buf, len)) {
                error_free(local_err);
                error_setg(errp, "Slot %d: the directory is of a replaced "
                           "key (an interrupted encrypt.rekey)", i);
                return -ESTALE;
            }
            error_propagate_prepend(errp, local_err, "Slot %d: ", i);
            return -EBADMSG;
        }
    }
    d = nvstore_dir_parse(buf, len, errp);
    if (!d) {
        error_prepend(errp, "Slot %d: ", i);
        return -EINVAL;
    }
    if (!nvstore_dir_generations_ok(d, slot->generation, i, errp)) {
        return -EINVAL;
    }
    *dir = g_steal_pointer(&d);
    return 0;
}

/* Read the extent of @e and check its checksum: what a crash can tear */
static int coroutine_mixed_fn GRAPH_RDLOCK
nvstore_read_extent(BlockDriverState *bs, NvstoreEntry *e, uint8_t **data,
                    size_t *len, Error **errp)
{
    g_autofree uint8_t *buf = NULL;
    int64_t size;
    int ret;

    assert(e->has_extent);
    /*
     * Before allocating anything: a hostile length is not believed.  (The
     * block layer rounds the size up to a sector; past the end of a file
     * reads as zeroes, and the checksum tells.)
     */
    size = nvstore_image_size(bs, errp);
    if (size < 0) {
        return size;
    }
    if (e->extent.offset > size || e->extent.length > size - e->extent.offset) {
        error_setg(errp, "Blob '%s' is corrupt: its data at %" PRIu64 "+%"
                   PRIu64 " is outside the image",
                   nvstore_entry_desc(e), e->extent.offset,
                   e->extent.length);
        return -EIO;
    }
    if (e->extent.length > SIZE_MAX) {
        error_setg(errp, "Blob '%s' is too large", nvstore_entry_desc(e));
        return -EFBIG;
    }
    buf = g_try_malloc(e->extent.length);
    if (!buf && e->extent.length) {
        error_setg(errp, "Blob '%s': cannot allocate %" PRIu64 " bytes",
                   nvstore_entry_desc(e), e->extent.length);
        return -ENOMEM;
    }
    ret = bdrv_pread(bs->file, e->extent.offset, e->extent.length, buf, 0);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Blob '%s': read error",
                         nvstore_entry_desc(e));
        return ret;
    }
    if (nvstore_crc(buf, e->extent.length) != e->extent.crc32c) {
        error_setg(errp, "Blob '%s' is corrupt: checksum mismatch in its "
                   "data at offset %" PRIu64, nvstore_entry_desc(e),
                   e->extent.offset);
        return -EIO;
    }
    *data = g_steal_pointer(&buf);
    *len = e->extent.length;
    return 0;
}

int coroutine_mixed_fn GRAPH_RDLOCK
nvstore_read_entry(BlockDriverState *bs, NvstoreEntry *e, uint8_t **data,
                   size_t *len, Error **errp)
{
    BDRVNvstoreState *s = bs->opaque;
    int ret;

    if (!s->encrypted && e->sealed) {
        error_setg(errp, "Blob '%s' is encrypted, but the image is not",
                   nvstore_entry_desc(e));
        return -EIO;
    }
    if (!e->has_extent) {
        if (s->encrypted && e->data_len) {
            error_setg(errp, "Blob '%s' has data in the clear in an "
                       "encrypted image", nvstore_entry_desc(e));
            return -EIO;
        }
        *data = g_memdup2(e->data, e->data_len);
        *len = e->data_len;
        return 0;
    }
    if (s->encrypted && !s->crypt) {
        error_setg(errp, "Blob '%s' is encrypted, and no key was given "
                   "(%s)", nvstore_entry_desc(e), NVSTORE_OPT_KEY_SECRET);
        return -EACCES;
    }
    if (s->encrypted && !e->sealed) {
        error_setg(errp, "Blob '%s' is not encrypted in an encrypted image",
                   nvstore_entry_desc(e));
        return -EIO;
    }
    ret = nvstore_read_extent(bs, e, data, len, errp);
    if (ret < 0 || !s->encrypted) {
        return ret;
    }
    ret = nvstore_crypt_unseal(s->crypt, e, *data, *len, errp);
    if (ret < 0) {
        g_clear_pointer(data, g_free);
    }
    return ret;
}

/*
 * Whether slot @i holds a complete commit: one of generation @gen is
 * complete only if every extent it wrote (those of generation @gen)
 * matches its checksum.  The commit flushes once, after all its writes,
 * so a crash can leave the slot written but an extent not.
 */
static bool coroutine_mixed_fn GRAPH_RDLOCK
nvstore_slot_complete(BlockDriverState *bs, NvstoreDir *dir, uint64_t gen,
                      int i, Error **errp)
{
    ERRP_GUARD();
    guint k;

    for (k = 0; k < dir->entries->len; k++) {
        NvstoreEntry *e = g_ptr_array_index(dir->entries, k);
        g_autofree uint8_t *data = NULL;
        size_t len;

        if (nvstore_entry_unusable(e) || !e->has_extent ||
            e->extent.generation != gen) {
            continue;
        }
        /* A torn write breaks a checksum; authentication is the reader's */
        if (nvstore_read_extent(bs, e, &data, &len, errp) < 0) {
            error_prepend(errp, "Slot %d holds an incomplete commit: ", i);
            return false;
        }
    }
    return true;
}

void nvstore_set_committed(BDRVNvstoreState *s, NvstoreDir *dir, int i,
                           const NvstoreSlot *slot)
{
    nvstore_dir_free(s->dir);
    s->dir = dir;
    s->gen = slot->generation;
    s->slot = i;
    s->dir_offset = slot->dir_offset;
    s->dir_length = slot->dir_length;
    s->dir_crc32c = slot->dir_crc32c;
}

/*
 * Whether slot @slot of generation @floor records the commit of close
 * record @rec
 */
static bool nvstore_slot_is_recorded(const NvstoreSlot *slot,
                                     const NvstoreSlot *rec)
{
    return slot->dir_offset == rec->dir_offset &&
           slot->dir_length == rec->dir_length &&
           slot->dir_crc32c == rec->dir_crc32c;
}

/*
 * The rule of "Opening an image": the newest valid slot whose commit is
 * complete, but never below the generation of the close record, which
 * is known complete: a commit of that generation is the state even if
 * an extent it wrote no longer matches its checksum (that is damage to
 * the blob, which reads as an error), and nothing older is.
 */
int coroutine_mixed_fn GRAPH_RDLOCK
nvstore_load_state_why(BlockDriverState *bs, GString *why_out, Error **errp)
{
    BDRVNvstoreState *s = bs->opaque;
    NvstoreSlot slot[NVSTORE_NB_SLOTS];
    NvstoreDir *dir[NVSTORE_NB_SLOTS] = { NULL };
    Error *why[NVSTORE_NB_SLOTS] = { NULL };
    int rets[NVSTORE_NB_SLOTS];
    NvstoreSlot rec;
    Error *rec_err = NULL;
    int64_t file_size;
    uint64_t last_gen = 0, floor;
    int newest, i, k;
    int ret;

    file_size = nvstore_image_size(bs, errp);
    if (file_size < 0) {
        return file_size;
    }
    for (i = 0; i < NVSTORE_NB_SLOTS; i++) {
        rets[i] = nvstore_read_slot(bs, i, file_size, &slot[i], &dir[i],
                                    &why[i]);
        /*
         * The highest generation attempted, in a slot whose checksum
         * holds, valid or not (an out-of-range one is no generation)
         */
        if (slot[i].generation < NVSTORE_EXTENT_LIMIT) {
            last_gen = MAX(last_gen, slot[i].generation);
        }
    }

    /* A damaged close record is one whose write a crash tore: none */
    ret = nvstore_read_close_record(bs, &rec, &rec_err);
    if (ret < 0 && ret != -ENOENT && ret != -EINVAL) {
        error_propagate(errp, rec_err);
        ret = ret == -EBADMSG ? -EIO : ret;
        goto out;
    }
    error_free(rec_err);
    floor = rec.generation;
    last_gen = MAX(last_gen, floor);

    QEMU_BUILD_BUG_ON(NVSTORE_NB_SLOTS != 2);
    if (dir[0] && dir[1] && slot[0].generation == slot[1].generation) {
        error_setg(errp, "The nvstore image is corrupt: both slots have "
                   "generation %" PRIu64, slot[0].generation);
        ret = -EINVAL;
        goto out;
    }

    /*
     * No crash leaves a directory whose checksum holds and whose
     * authentication code does not: someone without the key wrote it.
     * (Whoever can write the image can also make a slot's checksum fail,
     * and so roll the image back one commit that no close recorded: see
     * option min-generation.)
     */
    for (i = 0; i < NVSTORE_NB_SLOTS; i++) {
        /*
         * Unless a newer slot authenticates: this one, older, is not
         * used, and may be of a key that encrypt.rekey replaced
         */
        if (rets[i] == -EBADMSG &&
            !(dir[!i] && slot[!i].generation > slot[i].generation)) {
            error_propagate(errp, why[i]);
            why[i] = NULL;
            ret = -EIO;
            goto out;
        }
    }

    /* The newest valid slot first; the other if its commit is torn */
    newest = (!dir[0] || (dir[1] && slot[1].generation >
                          slot[0].generation)) ? 1 : 0;
    for (k = 0; k < NVSTORE_NB_SLOTS; k++) {
        i = (newest + k) % NVSTORE_NB_SLOTS;
        if (!dir[i]) {
            continue;
        }
        if (slot[i].generation < floor) {
            break;
        }
        if (slot[i].generation == floor) {
            if (!nvstore_slot_is_recorded(&slot[i], &rec)) {
                error_setg(errp, "The nvstore image is corrupt: slot %d "
                           "has generation %" PRIu64 ", but not the "
                           "directory of the close record", i, floor);
                ret = -EINVAL;
                goto out;
            }
            /* Known complete: what does not match is damage */
            if (!nvstore_slot_complete(bs, dir[i], floor, i, &why[i])) {
                trace_nvstore_load_damaged(bs, i, floor,
                                           error_get_pretty(why[i]));
            }
        } else if (!nvstore_slot_complete(bs, dir[i], slot[i].generation,
                                            i, &why[i])) {
            trace_nvstore_load_incomplete(bs, i, slot[i].generation);
            continue;
        }
        nvstore_set_committed(s, g_steal_pointer(&dir[i]), i, &slot[i]);
        s->record_due = false;
        /* What earlier commits freed is not known: all of it, next time */
        g_clear_pointer(&s->prev_used, g_array_unref);
        /*
         * Above every generation attempted; but the other slot, which the
         * next commit replaces, cannot take the last generation away
         */
        s->next_gen = last_gen + 1 < NVSTORE_EXTENT_LIMIT ? last_gen + 1 :
                      s->gen + 1;
        trace_nvstore_load(bs, i, s->gen, s->dir->entries->len);
        ret = 0;
        goto out;
    }
    for (i = 0; i < NVSTORE_NB_SLOTS; i++) {
        if (why[i]) {
            g_string_append_printf(why_out, "%s\n", error_get_pretty(why[i]));
        } else {
            g_string_append_printf(why_out, "Slot %d holds generation %"
                                   PRIu64 "\n", i, slot[i].generation);
        }
    }
    if (!floor) {
        error_setg(errp, "The nvstore image has no valid directory");
        ret = -EINVAL;
        goto out;
    }
    error_setg(errp, "The nvstore image is damaged: the commit of "
               "generation %" PRIu64 ", complete when the image was last "
               "closed, cannot be read", floor);
    ret = -EIO;
out:
    for (i = 0; i < NVSTORE_NB_SLOTS; i++) {
        nvstore_dir_free(dir[i]);
        error_free(why[i]);
    }
    return ret;
}

/* nvstore_load() without reading the header */
int coroutine_mixed_fn GRAPH_RDLOCK
nvstore_load_state(BlockDriverState *bs, Error **errp)
{
    ERRP_GUARD();
    g_autoptr(GString) why = g_string_new(NULL);
    int ret = nvstore_load_state_why(bs, why, errp);

    if (ret < 0 && why->len) {
        error_append_hint(errp, "%s", why->str);
    }
    return ret;
}

int coroutine_mixed_fn GRAPH_RDLOCK
nvstore_load(BlockDriverState *bs, Error **errp)
{
    int ret = nvstore_read_header(bs, errp);

    return ret < 0 ? ret : nvstore_load_state(bs, errp);
}
