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
 * touches the committed state: it only clears a slot that open ignores.
 * Damaged blobs cannot be repaired: they are reported by name.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
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
    int ret;

    nvstore_header_init((NvstoreHeader *)sector,
                        encrypted ? NVSTORE_INCOMPAT_ENCRYPTED : 0);
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
    fprintf(stderr, "Repairing the nvstore header\n");
    res->corruptions--;
    res->corruptions_fixed++;
}

/* Clear slot @k, which open ignores */
static void coroutine_fn GRAPH_RDLOCK
nvstore_check_clear_slot(BlockDriverState *bs, BdrvCheckResult *res, int k)
{
    uint8_t zero[sizeof(NvstoreSlot)] = { 0 };

    if (bdrv_co_pwrite(bs->file, NVSTORE_SLOT_OFFSET(k), sizeof(zero), zero,
                       0) < 0 ||
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
    Error *err = NULL;

    if (!s->dir && nvstore_load_state(bs, &err) < 0) {
        nvstore_check_report("ERROR", err);
        res->corruptions++;
        return false;
    }
    return true;
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
        error_setg(&err, "Slot %d: generation %" PRIu64 " is a torn commit",
                   k, slot.generation);
    }
    nvstore_check_report(fix & BDRV_FIX_LEAKS ? "Repairing" : "Leaked", err);
    res->leaks++;
    if (fix & BDRV_FIX_LEAKS) {
        nvstore_check_clear_slot(bs, res, k);
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

/* Every blob's data is within the image and matches its checksum */
static void coroutine_fn GRAPH_RDLOCK
nvstore_check_blobs(BlockDriverState *bs, BdrvCheckResult *res)
{
    BDRVNvstoreState *s = bs->opaque;
    guint i;

    for (i = 0; i < s->dir->entries->len; i++) {
        NvstoreEntry *e = g_ptr_array_index(s->dir->entries, i);
        const char *why = nvstore_entry_unusable(e);
        g_autofree uint8_t *data = NULL;
        Error *err = NULL;
        size_t len;

        if (why) {
            fprintf(stderr, "Warning: blob '%s' cannot be used by this "
                    "version: %s\n", nvstore_entry_desc(e), why);
            continue;
        }
        if (nvstore_read_entry(bs, e, &data, &len, &err) < 0) {
            nvstore_check_report("ERROR", err);
            res->corruptions++;
        }
    }
}

int coroutine_fn GRAPH_RDLOCK
nvstore_co_check(BlockDriverState *bs, BdrvCheckResult *res,
                 BdrvCheckMode fix)
{
    BDRVNvstoreState *s = bs->opaque;
    Error *err = NULL;
    int64_t file_size;
    int header;

    qemu_co_mutex_lock(&s->lock);
    file_size = nvstore_image_size(bs, &err);
    if (file_size < 0) {
        nvstore_check_report("ERROR", err);
        res->check_errors++;
        goto out;
    }
    header = nvstore_check_header(bs, res);
    if (header < 0 && header != -EINVAL) {
        goto out;
    }
    if (!nvstore_check_committed(bs, res) &&
        !nvstore_co_salvage(bs, res, fix, file_size)) {
        goto out;
    }
    if (header == -EINVAL && (fix & BDRV_FIX_ERRORS)) {
        nvstore_check_fix_header(bs, res);
    }
    QEMU_BUILD_BUG_ON(NVSTORE_NB_SLOTS != 2);
    nvstore_check_other_slot(bs, res, fix, file_size);
    nvstore_check_overlaps(s, res, file_size);
    nvstore_check_blobs(bs, res);
out:
    qemu_co_mutex_unlock(&s->lock);
    return 0;
}
