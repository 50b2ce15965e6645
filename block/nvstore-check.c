/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * nvstore: qemu-img check and repair.  nvstore_co_check() calls one
 * function per invariant of docs/interop/nvstore.rst; each reports what
 * it finds on stderr ("ERROR", "Leaked", "Repairing", "Warning") and
 * counts it in the BdrvCheckResult.
 *
 * The node may have been opened for check (BDRV_O_CHECK) with a damaged
 * header or without a valid slot.  Without a committed state, salvage
 * (nvstore-salvage.c) reports what the data area holds, and with -r all
 * makes its newest complete directory the state again; a damaged header
 * is rewritten once the image has a state.  Otherwise a repair never
 * touches the committed state but in one way: it clears a slot or a close
 * record that open ignores, and a damaged blob whose copy in the previous
 * commit is intact is restored to that copy, in one commit.  Other
 * damaged blobs are reported by name.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/uuid.h"
#include "nvstore-int.h"
#include "trace.h"

static void nvstore_check_report(const char *what, Error *err)
{
    fprintf(stderr, "%s %s\n", what, error_get_pretty(err));
    error_free(err);
}

/*
 * The header: magic, checksum, features.  Returns 0 if it is valid,
 * -EINVAL if it is damaged (a corruption that a repair fixes once the
 * image has a committed state); anything else ends the check.
 */
static int coroutine_fn GRAPH_RDLOCK
nvstore_check_header(BlockDriverState *bs, BdrvCheckResult *res)
{
    Error *err = NULL;
    int ret = nvstore_read_header(bs, &err);

    if (ret < 0) {
        nvstore_check_report("ERROR", err);
        if (ret == -EINVAL) {
            res->corruptions++;
        } else {
            res->check_errors++;
        }
    }
    return ret;
}

/*
 * Rewrite a damaged header, in its own sector (the key slots follow):
 * there are two this version writes, and key slots tell which
 */
static void coroutine_fn GRAPH_RDLOCK
nvstore_check_fix_header(BlockDriverState *bs, BdrvCheckResult *res)
{
    uint8_t sector[NVSTORE_KEYSLOT_OFFSET(0)] = { 0 };
    bool encrypted = nvstore_has_keyslots(bs);
    NvstoreKeySlot ks[NVSTORE_NB_KEYSLOTS];
    g_autofree char *id_str = NULL;
    QemuUUID id;
    int i, ret;

    /*
     * The image-id: an encrypted image's key slots have it, and its keys
     * are bound to it; a plain image gets a new one
     */
    qemu_uuid_generate(&id);
    if (encrypted && nvstore_read_keyslots(bs, ks, NULL) == 0) {
        for (i = 0; i < NVSTORE_NB_KEYSLOTS; i++) {
            if (!memcmp(ks[i].magic, NVSTORE_KEYSLOT_MAGIC,
                        sizeof(ks[i].magic)) &&
                nvstore_crc(&ks[i], offsetof(NvstoreKeySlot,
                                             keyslot_crc32c)) ==
                be32_to_cpu(ks[i].keyslot_crc32c)) {
                memcpy(id.data, ks[i].image_id, sizeof(id.data));
                break;
            }
        }
    }
    nvstore_header_init((NvstoreHeader *)sector,
                        encrypted ? NVSTORE_INCOMPAT_ENCRYPTED : 0, id.data);
    ret = bdrv_co_pwrite(bs->file, NVSTORE_HEADER_OFFSET, sizeof(sector),
                         sector, 0);
    if (ret >= 0) {
        ret = bdrv_co_flush(bs->file->bs);
    }
    if (ret < 0) {
        fprintf(stderr, "ERROR Could not rewrite the nvstore header: %s\n",
                strerror(-ret));
        res->check_errors++;
        return;
    }
    id_str = qemu_uuid_unparse_strdup(&id);
    fprintf(stderr, "Repairing the nvstore header (image-id %s%s)\n",
            id_str, encrypted ? ", from the key slots" :
            ": a new one, the old one was lost with the header");
    res->corruptions--;
    res->corruptions_fixed++;
}

/*
 * Zero the @len bytes at @offset, a slot or the close record that open
 * ignores: a leak fixed
 */
static void coroutine_fn GRAPH_RDLOCK
nvstore_check_clear(BlockDriverState *bs, BdrvCheckResult *res,
                    uint64_t offset, size_t len)
{
    g_autofree uint8_t *zero = g_malloc0(len);

    if (bdrv_co_pwrite(bs->file, offset, len, zero, 0) < 0 ||
        bdrv_co_flush(bs->file->bs) < 0) {
        res->check_errors++;
    } else {
        res->leaks--;
        res->leaks_fixed++;
    }
}

/*
 * A committed state: a node opened for check (BDRV_O_CHECK) may have
 * none.  The reason, the damage of each slot, is one corruption that no
 * repair can fix.
 */
static bool coroutine_fn GRAPH_RDLOCK
nvstore_check_committed(BlockDriverState *bs, BdrvCheckResult *res)
{
    BDRVNvstoreState *s = bs->opaque;
    g_autoptr(GString) why = g_string_new(NULL);
    g_auto(GStrv) lines = NULL;
    Error *err = NULL;
    int i;

    if (s->dir || nvstore_load_state_why(bs, why, &err) >= 0) {
        return true;
    }
    nvstore_check_report("ERROR", err);
    lines = g_strsplit(why->str, "\n", -1);
    for (i = 0; lines[i] && *lines[i]; i++) {
        fprintf(stderr, "  %s\n", lines[i]);
    }
    res->corruptions++;
    return false;
}

/*
 * The slot besides the committed one: a valid slot of a higher
 * generation is a torn commit, a damaged one the remains of a crash.
 * Both are harmless (open ignores them) and counted as leaks, which the
 * repair clears.
 */
static void coroutine_fn GRAPH_RDLOCK
nvstore_check_other_slot(BlockDriverState *bs, BdrvCheckResult *res,
                         BdrvCheckMode fix, int64_t file_size)
{
    BDRVNvstoreState *s = bs->opaque;
    g_autoptr(NvstoreDir) dir = NULL;
    int k = (s->slot + 1) % NVSTORE_NB_SLOTS;
    Error *err = NULL;
    NvstoreSlot slot;
    int ret;

    ret = nvstore_read_slot(bs, k, file_size, &slot, &dir, &err);
    if (ret == -ENOENT || (ret == 0 && slot.generation < s->gen)) {
        /* Never written (a new image), or the previous commit */
        error_free(err);
        return;
    }
    if (ret == 0) {
        error_setg(&err, "Slot %d: generation %" PRIu64 " is a torn commit, "
                   "which a crash or an I/O error interrupted before it "
                   "was reported done; the image is at generation %" PRIu64,
                   k, slot.generation, s->gen);
    }
    nvstore_check_report(fix & BDRV_FIX_LEAKS ? "Repairing" : "Leaked", err);
    res->leaks++;
    if (fix & BDRV_FIX_LEAKS) {
        nvstore_check_clear(bs, res, NVSTORE_SLOT_OFFSET(k),
                            sizeof(NvstoreSlot));
    }
}

/*
 * The close record: one whose checksum fails (or whose generation is out
 * of range) is what a crash leaves in the middle of its write, or
 * damage; harmless (open ignores it), counted as a leak, which the
 * repair clears
 */
static void coroutine_fn GRAPH_RDLOCK
nvstore_check_close_record(BlockDriverState *bs, BdrvCheckResult *res,
                           BdrvCheckMode fix)
{
    Error *err = NULL;
    NvstoreSlot rec;
    int ret = nvstore_read_close_record(bs, &rec, &err);

    if (ret != -EINVAL) {
        error_free(err);
        return;
    }
    error_prepend(&err, "%s ", fix & BDRV_FIX_LEAKS ? "Repairing" :
                                                     "Leaked");
    fprintf(stderr, "%s: a crash interrupted its write, or it was "
            "damaged since; open ignores it\n", error_get_pretty(err));
    error_free(err);
    res->leaks++;
    if (fix & BDRV_FIX_LEAKS) {
        nvstore_check_clear(bs, res, NVSTORE_CLOSE_OFFSET,
                            NVSTORE_CLOSE_SIZE);
    }
}

/* No two extents overlap; where the image's used space ends */
static void nvstore_check_overlaps(BDRVNvstoreState *s, BdrvCheckResult *res,
                                   int64_t file_size)
{
    g_autoptr(GArray) ranges = NULL;
    uint64_t end = 0;
    bool unknown;
    guint i;

    ranges = nvstore_used_ranges(s, &unknown);
    if (unknown) {
        fprintf(stderr, "Warning: a blob this version cannot use has an "
                "unknown placement; new data goes past the end of the "
                "image\n");
        end = file_size;
    }
    for (i = 0; i < ranges->len; i++) {
        NvstoreRange *r = &g_array_index(ranges, NvstoreRange, i);

        if (i && r->start < g_array_index(ranges, NvstoreRange, i - 1).end) {
            fprintf(stderr, "ERROR extents overlap at offset %" PRIu64 "\n",
                    r->start);
            res->corruptions++;
        }
        end = MAX(end, r->end);
    }
    res->image_end_offset = end;
}

/*
 * A damaged blob's older copy that reads back intact, as an update that
 * owns its name, type and data (the commit replaces the directory that
 * the damaged entry is in)
 */
typedef struct NvstoreRestore {
    NvstoreBlobUpdate u;
    char *name;
    char *type;
    uint8_t *data;
} NvstoreRestore;

static void nvstore_restore_clear(gpointer p)
{
    NvstoreRestore *r = p;

    g_free(r->name);
    g_free(r->type);
    g_free(r->data);
}

/*
 * The directory of the slot besides the committed one, if it is valid
 * and older: the previous commit, whose blobs may be intact where the
 * committed ones are not
 */
static NvstoreDir * coroutine_fn GRAPH_RDLOCK
nvstore_check_previous_dir(BlockDriverState *bs, int64_t file_size,
                           uint64_t *gen)
{
    BDRVNvstoreState *s = bs->opaque;
    NvstoreDir *dir = NULL;
    NvstoreSlot slot;

    if (nvstore_read_slot(bs, !s->slot, file_size, &slot, &dir, NULL) < 0) {
        return NULL;
    }
    if (slot.generation >= s->gen) {
        nvstore_dir_free(dir);
        return NULL;
    }
    *gen = slot.generation;
    return dir;
}

/*
 * Whether @old, the entry of damaged blob @e in the previous commit, is
 * another copy of its data that reads back intact: then add it to
 * @restore
 */
static bool coroutine_fn GRAPH_RDLOCK
nvstore_check_older_copy(BlockDriverState *bs, NvstoreEntry *e,
                         NvstoreEntry *old, GArray *restore)
{
    NvstoreRestore r = { 0 };
    size_t len;

    if (!old || nvstore_entry_unusable(old) || strcmp(old->type, e->type) ||
        (old->has_extent && e->has_extent &&
         old->extent.offset == e->extent.offset &&
         old->extent.generation == e->extent.generation) ||
        nvstore_read_entry(bs, old, &r.data, &len, NULL) < 0) {
        return false;
    }
    r.name = g_strdup(e->name);
    r.type = g_strdup(e->type);
    r.u = (NvstoreBlobUpdate) {
        .name = r.name, .type = r.type, .data = r.data, .len = len,
        .has_realsize = old->has_realsize, .realsize = old->realsize,
    };
    g_array_append_val(restore, r);
    return true;
}

/*
 * Every blob's data is within the image and matches its checksum.  A
 * blob that does not, but whose copy in the previous commit reads back
 * intact, can be restored to that copy: with BDRV_FIX_ERRORS, all of
 * them in one commit.
 */
static void coroutine_fn GRAPH_RDLOCK
nvstore_check_blobs(BlockDriverState *bs, BdrvCheckResult *res,
                    BdrvCheckMode fix, int64_t file_size)
{
    BDRVNvstoreState *s = bs->opaque;
    g_autoptr(GArray) restore = g_array_new(false, false,
                                            sizeof(NvstoreRestore));
    g_autoptr(NvstoreDir) prev = NULL;
    g_autofree NvstoreBlobUpdate *u = NULL;
    uint64_t prev_gen = 0;
    bool prev_read = false;
    Error *err = NULL;
    guint i;

    g_array_set_clear_func(restore, nvstore_restore_clear);
    for (i = 0; i < s->dir->entries->len; i++) {
        NvstoreEntry *e = g_ptr_array_index(s->dir->entries, i);
        const char *why = nvstore_entry_unusable(e);
        g_autofree uint8_t *data = NULL;
        size_t len;

        if (why) {
            fprintf(stderr, "Warning: blob '%s' cannot be used by this "
                    "version: %s\n", nvstore_entry_desc(e), why);
            continue;
        }
        if (nvstore_read_entry(bs, e, &data, &len, &err) >= 0) {
            continue;
        }
        nvstore_check_report("ERROR", err);
        err = NULL;
        res->corruptions++;
        if (!prev_read) {
            prev = nvstore_check_previous_dir(bs, file_size, &prev_gen);
            prev_read = true;
        }
        if (e->name[0] && prev &&
            nvstore_check_older_copy(bs, e, nvstore_dir_lookup(prev, e->name),
                                     restore)) {
            fprintf(stderr, "%s blob '%s': the previous commit, generation %"
                    PRIu64 ", holds an older copy that is intact%s\n",
                    fix & BDRV_FIX_ERRORS ? "Repairing" : "Restorable",
                    e->name, prev_gen, fix & BDRV_FIX_ERRORS ?
                    ": restoring it" : " ('qemu-img check -r all' restores "
                    "it)");
        }
    }
    if (!(fix & BDRV_FIX_ERRORS) || !restore->len) {
        return;
    }
    u = g_new(NvstoreBlobUpdate, restore->len);
    for (i = 0; i < restore->len; i++) {
        u[i] = g_array_index(restore, NvstoreRestore, i).u;
    }
    if (nvstore_co_commit_locked(bs, u, restore->len, &err) < 0) {
        fprintf(stderr, "ERROR Could not restore the damaged blobs: %s\n",
                error_get_pretty(err));
        error_free(err);
        res->check_errors++;
        return;
    }
    res->corruptions -= restore->len;
    res->corruptions_fixed += restore->len;
}

int coroutine_fn GRAPH_RDLOCK
nvstore_co_check(BlockDriverState *bs, BdrvCheckResult *res,
                 BdrvCheckMode fix)
{
    BDRVNvstoreState *s = bs->opaque;
    Error *err = NULL;
    int64_t file_size;
    int header;

    QEMU_LOCK_GUARD(&s->lock);
    file_size = nvstore_image_size(bs, &err);
    if (file_size < 0) {
        nvstore_check_report("ERROR", err);
        res->check_errors++;
        return 0;
    }
    header = nvstore_check_header(bs, res);
    if (header < 0 && header != -EINVAL) {
        return 0;
    }
    if (!nvstore_check_committed(bs, res) &&
        !nvstore_co_salvage(bs, res, fix, file_size)) {
        return 0;
    }
    if (header == -EINVAL && (fix & BDRV_FIX_ERRORS)) {
        nvstore_check_fix_header(bs, res);
    }
    QEMU_BUILD_BUG_ON(NVSTORE_NB_SLOTS != 2);
    nvstore_check_other_slot(bs, res, fix, file_size);
    nvstore_check_close_record(bs, res, fix);
    nvstore_check_overlaps(s, res, file_size);
    nvstore_check_blobs(bs, res, fix, file_size);
    return 0;
}
