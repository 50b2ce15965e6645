/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * nvstore: salvage (docs/interop/nvstore.rst, "Salvage").  An image whose
 * slots are both damaged has no committed state, yet the directories of
 * its commits are still in the data area, each beside the data it
 * references.  qemu-img check scans the data area for them and reports
 * the newest complete one; check -r all makes it the committed state
 * again, in a new slot.  The header is the checker's concern
 * (nvstore-check.c).
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/units.h"
#include "nvstore-int.h"
#include "trace.h"

/* How much of the data area one read of the scan takes */
#define NVSTORE_SCAN_CHUNK (1 * MiB)

/*
 * The bytes the scan may read and decode for candidate directories, at
 * most, beyond the data area itself: a hostile image could otherwise
 * make every 4 KiB block start a directory that claims 16 MiB
 */
#define NVSTORE_SCAN_BUDGET(size) MAX(4 * (uint64_t)(size), 64 * MiB)

/* A directory found in the data area */
typedef struct NvstoreFound {
    uint64_t offset;
    uint8_t *enc;
    size_t len;
    NvstoreDir *dir;
    /* The generation of its newest extent; 0 if it has none */
    uint64_t gen;
    /* Verified: every extent of generation @gen matches its checksum */
    bool verified;
    bool complete;
    /* Why extents of older generations do not: blobs salvage loses */
    GPtrArray *damaged;
} NvstoreFound;

static void nvstore_found_free(gpointer p)
{
    NvstoreFound *f = p;

    nvstore_dir_free(f->dir);
    g_ptr_array_unref(f->damaged);
    g_free(f->enc);
    g_free(f);
}

/* The generation of @f's newest extent */
static void nvstore_found_gen(NvstoreFound *f)
{
    guint k;

    for (k = 0; k < f->dir->entries->len; k++) {
        NvstoreEntry *e = g_ptr_array_index(f->dir->entries, k);

        if (!nvstore_entry_unusable(e) && e->has_extent) {
            f->gen = MAX(f->gen, e->extent.generation);
        }
    }
}

/*
 * Whether @f's extents match their checksums, as open checks a slot's
 * commit (nvstore-load.c).  The bytes read are taken from *@budget;
 * past it, @f counts as incomplete.
 */
static void coroutine_fn GRAPH_RDLOCK
nvstore_found_verify(BlockDriverState *bs, NvstoreFound *f, int64_t size,
                     int64_t *budget)
{
    guint k;

    f->verified = true;
    f->complete = true;
    for (k = 0; k < f->dir->entries->len; k++) {
        NvstoreEntry *e = g_ptr_array_index(f->dir->entries, k);
        g_autofree uint8_t *data = NULL;
        Error *err = NULL;
        size_t len;

        if (nvstore_entry_unusable(e) || !e->has_extent) {
            continue;
        }
        /* Only an extent within the image is read */
        if (e->extent.offset <= size &&
            e->extent.length <= size - e->extent.offset) {
            *budget -= e->extent.length;
        }
        if (*budget < 0) {
            f->complete = false;
            return;
        }
        if (nvstore_read_entry(bs, e, &data, &len, &err) == 0) {
            continue;
        }
        if (e->extent.generation == f->gen) {
            f->complete = false;
        } else {
            g_ptr_array_add(f->damaged, g_strdup(error_get_pretty(err)));
        }
        error_free(err);
    }
}

/*
 * The directory at @offset, if one starts there and decodes; or NULL.
 * The bytes read and decoded are taken from *@budget, which may go
 * below zero by one candidate's.
 */
static NvstoreFound * coroutine_fn GRAPH_RDLOCK
nvstore_found_read(BlockDriverState *bs, uint64_t offset, int64_t size,
                   int64_t *budget)
{
    uint64_t avail = size - offset;
    size_t want = MIN(NVSTORE_BLOCK_SIZE, avail);
    g_autofree uint8_t *buf = NULL;
    NvstoreFound *f;
    NvstoreDir *dir;
    size_t len, need;

    for (;;) {
        buf = g_realloc(buf, want);
        *budget -= want;
        if (bdrv_co_pread(bs->file, offset, want, buf, 0) < 0) {
            return NULL;
        }
        len = nvstore_dir_measure(buf, want, &need);
        if (len) {
            break;
        }
        if (!need || need > avail || *budget < 0) {
            return NULL;
        }
        want = MAX(need, MIN((uint64_t)want * 2, avail));
    }
    *budget -= len;
    dir = nvstore_dir_parse(buf, len, NULL);
    if (!dir) {
        return NULL;
    }
    f = g_new0(NvstoreFound, 1);
    f->offset = offset;
    f->len = len;
    f->enc = g_steal_pointer(&buf);
    f->dir = dir;
    f->damaged = g_ptr_array_new_with_free_func(g_free);
    nvstore_found_gen(f);
    return f;
}

/*
 * Every directory in the data area of an image of @size bytes, at the
 * offsets where a writer places them (multiples of NVSTORE_ALIGN)
 */
static GPtrArray * coroutine_fn GRAPH_RDLOCK
nvstore_salvage_scan(BlockDriverState *bs, int64_t size, int64_t *budget,
                     Error **errp)
{
    g_autoptr(GPtrArray) found = g_ptr_array_new_with_free_func(
                                     nvstore_found_free);
    g_autofree uint8_t *chunk = g_malloc(NVSTORE_SCAN_CHUNK);
    uint64_t pos;

    QEMU_BUILD_BUG_ON(NVSTORE_SCAN_CHUNK % NVSTORE_ALIGN);
    for (pos = NVSTORE_DATA_OFFSET; pos < size; pos += NVSTORE_SCAN_CHUNK) {
        size_t n = MIN(NVSTORE_SCAN_CHUNK, size - pos), k;
        int ret = bdrv_co_pread(bs->file, pos, n, chunk, 0);

        if (ret < 0) {
            error_setg_errno(errp, -ret, "Could not read the data area at "
                             "offset %" PRIu64, pos);
            return NULL;
        }
        for (k = 0; k + 2 <= n; k += NVSTORE_ALIGN) {
            NvstoreFound *f;

            /* The identifier and length octets of every directory */
            if (chunk[k] != 0x31 || chunk[k + 1] != 0x80) {
                continue;
            }
            f = nvstore_found_read(bs, pos + k, size, budget);
            if (f) {
                g_ptr_array_add(found, f);
            }
            if (*budget < 0) {
                error_setg(errp, "Salvage gave up at offset %" PRIu64 ": "
                           "the candidate directories up to there took "
                           "more than %" PRIu64 " bytes to examine",
                           pos + k, NVSTORE_SCAN_BUDGET(size));
                return NULL;
            }
        }
    }
    return g_steal_pointer(&found);
}

static gint nvstore_found_newer(gconstpointer a, gconstpointer b)
{
    const NvstoreFound *x = *(NvstoreFound *const *)a;
    const NvstoreFound *y = *(NvstoreFound *const *)b;

    return x->gen > y->gen ? -1 : x->gen < y->gen;
}

/*
 * The complete directory with the newest data; among those with data of
 * the same generation, which only commits that wrote no data (deleted
 * blobs, say) tell apart, the one with the most blobs: salvage drops no
 * blob it cannot know deleted.  @ties: how many other complete
 * directories, not the same bytes, have data of that generation too.
 * Directories are verified newest first, and older ones not at all once
 * one is complete; all within *@budget.
 */
static NvstoreFound * coroutine_fn GRAPH_RDLOCK
nvstore_salvage_choose(BlockDriverState *bs, GPtrArray *found, int64_t size,
                       int64_t *budget, unsigned *ties)
{
    NvstoreFound *best = NULL;
    guint i;

    g_ptr_array_sort(found, nvstore_found_newer);
    for (i = 0; i < found->len && *budget >= 0; i++) {
        NvstoreFound *f = g_ptr_array_index(found, i);

        if (best && f->gen < best->gen) {
            break;
        }
        nvstore_found_verify(bs, f, size, budget);
        trace_nvstore_salvage_found(bs, f->offset, f->len,
                                    f->dir->entries->len, f->gen,
                                    f->complete, f->damaged->len);
        if (f->complete &&
            (!best || f->dir->entries->len > best->dir->entries->len)) {
            best = f;
        }
    }
    *ties = 0;
    for (i = 0; best && i < found->len; i++) {
        NvstoreFound *f = g_ptr_array_index(found, i);

        if (f != best && f->complete && f->gen == best->gen &&
            (f->len != best->len || memcmp(f->enc, best->enc, f->len))) {
            (*ties)++;
        }
    }
    return best;
}

/*
 * The generation of the new slot: above every generation the image
 * shows, in the directories found, in slots whose checksum holds and in
 * the close record, as a commit's (docs/interop/nvstore.rst, "The update
 * protocol"), so that the close record no longer holds the state back
 */
static uint64_t coroutine_fn GRAPH_RDLOCK
nvstore_salvage_generation(BlockDriverState *bs, GPtrArray *found)
{
    NvstoreSlot slot;
    uint64_t gen = 0;
    guint i;
    int k;

    for (i = 0; i < found->len; i++) {
        gen = MAX(gen, ((NvstoreFound *)g_ptr_array_index(found, i))->gen);
    }
    for (k = 0; k < NVSTORE_NB_SLOTS; k++) {
        if (nvstore_read_slot_raw(bs, k, &slot, NULL) == 0) {
            gen = MAX(gen, slot.generation);
        }
    }
    if (nvstore_read_close_record(bs, &slot, NULL) == 0) {
        gen = MAX(gen, slot.generation);
    }
    return gen + 1;
}

/*
 * Make @f the committed state: slot 0 of generation @gen points to it,
 * slot 1 is cleared (nothing valid was there), one flush
 */
static int coroutine_fn GRAPH_RDLOCK
nvstore_salvage_write(BlockDriverState *bs, NvstoreFound *f, uint64_t gen,
                      Error **errp)
{
    g_autofree uint8_t *slots = g_malloc0(NVSTORE_BLOCK_SIZE *
                                          NVSTORE_NB_SLOTS);
    int ret;

    nvstore_slot_init((NvstoreSlot *)slots, gen, f->offset, f->enc, f->len);
    ret = bdrv_co_pwrite(bs->file, NVSTORE_SLOT_OFFSET(0),
                         NVSTORE_BLOCK_SIZE * NVSTORE_NB_SLOTS, slots, 0);
    if (ret >= 0) {
        ret = bdrv_co_flush(bs->file->bs);
    }
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Could not write the salvaged slot");
    }
    return ret;
}

bool coroutine_fn GRAPH_RDLOCK
nvstore_co_salvage(BlockDriverState *bs, BdrvCheckResult *res,
                   BdrvCheckMode fix, int64_t size)
{
    BDRVNvstoreState *s = bs->opaque;
    g_autoptr(GPtrArray) found = NULL;
    int64_t budget = NVSTORE_SCAN_BUDGET(size);
    NvstoreFound *best;
    Error *err = NULL;
    unsigned ties;
    uint64_t gen;
    guint i;

    if (s->encrypted || nvstore_has_keyslots(bs)) {
        /*
         * A directory found in the data area cannot be authenticated
         * without its generation, which only a slot records
         */
        fprintf(stderr, "ERROR The nvstore image is encrypted: salvage "
                "cannot authenticate what it would find, and does not "
                "try\n");
        res->check_errors++;
        return false;
    }
    found = nvstore_salvage_scan(bs, size, &budget, &err);
    if (!found) {
        fprintf(stderr, "ERROR %s\n", error_get_pretty(err));
        error_free(err);
        res->check_errors++;
        return false;
    }
    fprintf(stderr, "Salvage: %u directories in the data area\n",
            found->len);
    best = nvstore_salvage_choose(bs, found, size, &budget, &ties);
    if (!best) {
        fprintf(stderr, "ERROR No complete directory to salvage%s\n",
                budget < 0 ? " within the bytes it may examine" :
                ": the image's blobs are lost");
        return false;
    }
    fprintf(stderr, "Salvage: the newest complete directory is at offset %"
            PRIu64 ": %u blobs, data up to generation %" PRIu64 "\n",
            best->offset, best->dir->entries->len, best->gen);
    for (i = 0; i < best->damaged->len; i++) {
        fprintf(stderr, "Salvage: cannot save: %s\n",
                (char *)g_ptr_array_index(best->damaged, i));
    }
    if (ties) {
        fprintf(stderr, "Warning: %u other complete directories have data "
                "up to generation %" PRIu64 " too: salvage takes the one "
                "with the most blobs\n", ties, best->gen);
    }
    fprintf(stderr, "Warning: a later commit that wrote no data (one that "
            "only deleted blobs, say) cannot be dated: blobs it deleted "
            "come back\n");
    if (!(fix & BDRV_FIX_ERRORS)) {
        return false;
    }

    gen = nvstore_salvage_generation(bs, found);
    if (gen >= NVSTORE_EXTENT_LIMIT ||
        nvstore_salvage_write(bs, best, gen, &err) < 0 ||
        nvstore_load_state(bs, &err) < 0) {
        if (!err) {
            error_setg(&err, "Generation %" PRIu64 " is out of range", gen);
        }
        fprintf(stderr, "ERROR Salvage failed: %s\n", error_get_pretty(err));
        error_free(err);
        res->check_errors++;
        return false;
    }
    fprintf(stderr, "Repairing: the directory at offset %" PRIu64 " is the "
            "committed state again, as generation %" PRIu64 "\n",
            best->offset, s->gen);
    trace_nvstore_salvage(bs, best->offset, s->gen);
    res->corruptions--;
    res->corruptions_fixed++;
    return true;
}
