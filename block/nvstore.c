/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * nvstore: an image format for device NVRAM.  Named, typed blobs with
 * metadata in one image, stacked on any child node.
 *
 * The format is specified in docs/interop/nvstore.rst; the on-disk
 * structures are in nvstore-format.h, the directory model in
 * nvstore-dir.c, the device API in include/block/nvstore.h.
 *
 * State: the committed directory of generation s->gen, read at open and
 * replaced only by a successful commit.  Every commit writes through to
 * the child and flushes it once before it returns, so closing the node
 * (as internal snapshot goto does, without a flush) loses nothing, and
 * nothing needs writing back at inactivation.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-visit-block-core.h"
#include "qemu/error-report.h"
#include "qemu/units.h"
#include "qemu/crc32c.h"
#include "qemu/coroutine.h"
#include "qemu/module.h"
#include "qemu/option.h"
#include "qobject/qdict.h"
#include "block/aio-wait.h"
#include "block/block_int.h"
#include "block/block-gen.h"
#include "block/nvstore.h"
#include "system/block-backend.h"
#include "nvstore-dir.h"
#include "nvstore-format.h"
#include "trace.h"

typedef struct BDRVNvstoreState {
    /* Serialises commits and directory lookups that may yield */
    CoMutex lock;
    /* The committed directory, of generation @gen, in slot @slot */
    NvstoreDir *dir;
    uint64_t gen;
    int slot;
    /* Where the committed directory is */
    uint64_t dir_offset;
    uint64_t dir_length;
    /* Generation of the next commit: above every one ever attempted */
    uint64_t next_gen;

    /* Options: the blob exposed as the node's data, and its type */
    char *blob;
    char *blob_type;
} BDRVNvstoreState;

#define NVSTORE_OPT_BLOB        "blob"
#define NVSTORE_OPT_BLOB_TYPE   "blob-type"
#define NVSTORE_OPT_DELETE_BLOB "delete-blob"
#define NVSTORE_OPT_CONTAINER   "container"

static QemuOptsList nvstore_runtime_opts = {
    .name = "nvstore",
    .head = QTAILQ_HEAD_INITIALIZER(nvstore_runtime_opts.head),
    .desc = {
        {
            .name = NVSTORE_OPT_BLOB,
            .type = QEMU_OPT_STRING,
            .help = "Name of the blob to expose as the node's data",
        },
        {
            .name = NVSTORE_OPT_BLOB_TYPE,
            .type = QEMU_OPT_STRING,
            .help = "Type of that blob if a write creates it (default: "
                    "raw)",
        },
        { /* end of list */ }
    },
};

static BlockDriver bdrv_nvstore;

static uint32_t nvstore_crc(const void *buf, size_t len)
{
    return crc32c(0xffffffff, buf, len);
}

/* Fill @slot, in disk byte order, for a commit of @dir at @dir_offset */
static void nvstore_slot_init(NvstoreSlot *slot, uint64_t gen,
                              uint64_t dir_offset, const uint8_t *dir,
                              size_t dir_length)
{
    memset(slot, 0, sizeof(*slot));
    memcpy(slot->magic, NVSTORE_SLOT_MAGIC, sizeof(slot->magic));
    slot->generation = gen;
    slot->dir_offset = dir_offset;
    slot->dir_length = dir_length;
    slot->dir_crc32c = nvstore_crc(dir, dir_length);
    nvstore_slot_to_be(slot);
    slot->slot_crc32c = cpu_to_be32(nvstore_crc(slot,
                                                 offsetof(NvstoreSlot,
                                                          slot_crc32c)));
}

static int nvstore_probe(const uint8_t *buf, int buf_size,
                         const char *filename)
{
    if (buf_size >= 8 && !memcmp(buf, NVSTORE_MAGIC, 8)) {
        return 100;
    }
    return 0;
}

/* ---- Reading the image ------------------------------------------------- */

static int coroutine_mixed_fn GRAPH_RDLOCK
nvstore_read_header(BlockDriverState *bs, Error **errp)
{
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
        error_setg(errp, "nvstore header is corrupt (checksum mismatch)");
        return -EINVAL;
    }
    nvstore_header_to_cpu(&h);
    if (h.incompatible_features & ~NVSTORE_INCOMPAT_MASK) {
        error_setg(errp, "Unsupported nvstore incompatible features 0x%"
                   PRIx64, h.incompatible_features & ~NVSTORE_INCOMPAT_MASK);
        return -ENOTSUP;
    }
    return 0;
}

/*
 * Read and check slot @i and its directory.  On success *@slot and
 * *@dir are the slot and the parsed directory; on failure *@dir is NULL
 * and errp says why the slot is not a valid commit.
 */
static int coroutine_mixed_fn GRAPH_RDLOCK
nvstore_read_slot(BlockDriverState *bs, int i, int64_t file_size,
                  NvstoreSlot *slot, NvstoreDir **dir, Error **errp)
{
    g_autofree uint8_t *buf = NULL;
    int ret;

    *dir = NULL;
    ret = bdrv_pread(bs->file, NVSTORE_SLOT_OFFSET(i), sizeof(*slot), slot,
                     0);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Could not read slot %d", i);
        memset(slot, 0, sizeof(*slot));
        return ret;
    }
    if (memcmp(slot->magic, NVSTORE_SLOT_MAGIC, sizeof(slot->magic))) {
        error_setg(errp, "slot %d: never written or bad magic", i);
        memset(slot, 0, sizeof(*slot));
        return -EINVAL;
    }
    if (nvstore_crc(slot, offsetof(NvstoreSlot, slot_crc32c)) !=
        be32_to_cpu(slot->slot_crc32c)) {
        error_setg(errp, "slot %d: checksum mismatch", i);
        memset(slot, 0, sizeof(*slot));
        return -EINVAL;
    }
    nvstore_slot_to_cpu(slot);
    if (slot->generation == 0 || slot->generation >= NVSTORE_EXTENT_LIMIT) {
        error_setg(errp, "slot %d: generation %" PRIu64 " out of range", i,
                   slot->generation);
        return -EINVAL;
    }
    if (slot->dir_offset < NVSTORE_DATA_OFFSET ||
        slot->dir_length > NVSTORE_DIR_MAX_SIZE ||
        slot->dir_offset > file_size ||
        slot->dir_length > file_size - slot->dir_offset) {
        error_setg(errp, "slot %d: directory at %" PRIu64 "+%" PRIu64
                   " is outside the image", i, slot->dir_offset,
                   slot->dir_length);
        return -EINVAL;
    }
    buf = g_try_malloc(slot->dir_length);
    if (!buf && slot->dir_length) {
        error_setg(errp, "slot %d: cannot allocate the directory", i);
        return -ENOMEM;
    }
    ret = bdrv_pread(bs->file, slot->dir_offset, slot->dir_length, buf, 0);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "slot %d: could not read the directory",
                         i);
        return ret;
    }
    if (nvstore_crc(buf, slot->dir_length) != slot->dir_crc32c) {
        error_setg(errp, "slot %d: directory checksum mismatch", i);
        return -EINVAL;
    }
    *dir = nvstore_dir_parse(buf, slot->dir_length, errp);
    if (!*dir) {
        error_prepend(errp, "slot %d: ", i);
        return -EINVAL;
    }
    return 0;
}

/* Read the data of a usable entry and check it */
static int coroutine_mixed_fn GRAPH_RDLOCK
nvstore_read_entry(BlockDriverState *bs, NvstoreEntry *e, uint8_t **data,
                   size_t *len, Error **errp)
{
    g_autofree uint8_t *buf = NULL;
    int64_t size;
    int ret;

    if (!e->has_extent) {
        *data = g_memdup2(e->data, e->data_len);
        *len = e->data_len;
        return 0;
    }
    /*
     * Before allocating anything: a hostile length is not believed.  (The
     * block layer rounds the size up to a sector; past the end of a file
     * reads as zeroes, and the checksum tells.)
     */
    size = bdrv_getlength(bs->file->bs);
    if (size < 0) {
        error_setg_errno(errp, -size, "Could not get the image size");
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

/*
 * A commit of generation @gen is complete only if every extent it wrote
 * (those of generation @gen) matches its checksum: the commit flushes
 * once, after all its writes, so a crash can leave the slot written but
 * an extent not.
 */
static bool coroutine_mixed_fn GRAPH_RDLOCK
nvstore_commit_complete(BlockDriverState *bs, NvstoreDir *dir, uint64_t gen,
                        int64_t file_size, Error **errp)
{
    guint i;

    for (i = 0; i < dir->entries->len; i++) {
        NvstoreEntry *e = g_ptr_array_index(dir->entries, i);
        g_autofree uint8_t *data = NULL;
        size_t len;

        if (e->unusable || !e->has_extent || e->extent.generation != gen) {
            continue;
        }
        if (e->extent.offset > file_size ||
            e->extent.length > file_size - e->extent.offset) {
            error_setg(errp, "blob '%s' of generation %" PRIu64 " is "
                       "outside the image", nvstore_entry_desc(e), gen);
            return false;
        }
        if (nvstore_read_entry(bs, e, &data, &len, errp) < 0) {
            return false;
        }
    }
    return true;
}

/*
 * A commit of generation @gen references data that commits up to @gen
 * wrote, never later ones: an extent of a later generation would escape
 * the completeness check of the commit that copies it, which could then
 * never be complete.
 */
static bool nvstore_dir_generations_ok(NvstoreDir *dir, uint64_t gen,
                                       Error **errp)
{
    guint i;

    for (i = 0; i < dir->entries->len; i++) {
        NvstoreEntry *e = g_ptr_array_index(dir->entries, i);

        if (!e->unusable && e->has_extent && e->extent.generation > gen) {
            error_setg(errp, "blob '%s' has data of generation %" PRIu64
                       ", after the commit's", nvstore_entry_desc(e),
                       e->extent.generation);
            return false;
        }
    }
    return true;
}

/*
 * Find the committed state: the slot of the highest generation whose
 * checksums hold and whose commit is complete; else the other slot.
 */
static int coroutine_mixed_fn GRAPH_RDLOCK
nvstore_load(BlockDriverState *bs, Error **errp)
{
    BDRVNvstoreState *s = bs->opaque;
    NvstoreSlot slot[NVSTORE_NB_SLOTS];
    NvstoreDir *dir[NVSTORE_NB_SLOTS] = { NULL, NULL };
    Error *why[NVSTORE_NB_SLOTS] = { NULL, NULL };
    int64_t file_size;
    uint64_t last_gen = 0;
    int order[2];
    int ret, i, k;

    ret = nvstore_read_header(bs, errp);
    if (ret < 0) {
        return ret;
    }
    file_size = bdrv_getlength(bs->file->bs);
    if (file_size < 0) {
        error_setg_errno(errp, -file_size, "Could not get the image size");
        return file_size;
    }
    for (i = 0; i < NVSTORE_NB_SLOTS; i++) {
        nvstore_read_slot(bs, i, file_size, &slot[i], &dir[i], &why[i]);
        if (dir[i] && !nvstore_dir_generations_ok(dir[i], slot[i].generation,
                                                  &why[i])) {
            error_prepend(&why[i], "slot %d: ", i);
            g_clear_pointer(&dir[i], nvstore_dir_free);
        }
        /*
         * The highest generation attempted, in a slot whose checksum
         * holds, valid or not (an out-of-range one is no generation)
         */
        if (slot[i].generation < NVSTORE_EXTENT_LIMIT) {
            last_gen = MAX(last_gen, slot[i].generation);
        }
    }
    if (dir[0] && dir[1] && slot[0].generation == slot[1].generation) {
        error_setg(errp, "nvstore image is corrupt: both slots have "
                   "generation %" PRIu64, slot[0].generation);
        ret = -EINVAL;
        goto out;
    }
    order[0] = (!dir[0] || (dir[1] && slot[1].generation >
                            slot[0].generation)) ? 1 : 0;
    order[1] = !order[0];

    for (k = 0; k < NVSTORE_NB_SLOTS; k++) {
        i = order[k];
        if (!dir[i]) {
            continue;
        }
        if (!nvstore_commit_complete(bs, dir[i], slot[i].generation,
                                     file_size, &why[i])) {
            error_prepend(&why[i], "slot %d: incomplete commit: ", i);
            trace_nvstore_load_incomplete(bs, i, slot[i].generation);
            continue;
        }
        nvstore_dir_free(s->dir);
        s->dir = g_steal_pointer(&dir[i]);
        s->gen = slot[i].generation;
        s->slot = i;
        s->dir_offset = slot[i].dir_offset;
        s->dir_length = slot[i].dir_length;
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
    error_setg(errp, "nvstore image has no valid directory: %s; %s",
               why[0] ? error_get_pretty(why[0]) : "slot 0 unused",
               why[1] ? error_get_pretty(why[1]) : "slot 1 unused");
    ret = -EINVAL;
out:
    nvstore_dir_free(dir[0]);
    nvstore_dir_free(dir[1]);
    error_free(why[0]);
    error_free(why[1]);
    return ret;
}

/*
 * The exposed blob of option "blob" in the committed directory: NULL if
 * there is none (the node then reads as empty) or no such option
 */
static NvstoreEntry *nvstore_exposed_entry(BDRVNvstoreState *s)
{
    return s->blob && s->dir ? nvstore_dir_lookup(s->dir, s->blob) : NULL;
}

/* The node's length: that of the exposed blob, in sectors, rounded up */
static void nvstore_update_total_sectors(BlockDriverState *bs)
{
    NvstoreEntry *e = nvstore_exposed_entry(bs->opaque);
    uint64_t size = e && !e->unusable ? nvstore_entry_data_size(e) : 0;

    bs->total_sectors = DIV_ROUND_UP(size, BDRV_SECTOR_SIZE);
}

static int nvstore_open(BlockDriverState *bs, QDict *options, int flags,
                        Error **errp)
{
    BDRVNvstoreState *s = bs->opaque;

    QemuOpts *opts;
    int ret;

    opts = qemu_opts_create(&nvstore_runtime_opts, NULL, 0, &error_abort);
    if (!qemu_opts_absorb_qdict(opts, options, errp)) {
        ret = -EINVAL;
        goto fail;
    }
    s->blob = g_strdup(qemu_opt_get(opts, NVSTORE_OPT_BLOB));
    s->blob_type = g_strdup(qemu_opt_get(opts, NVSTORE_OPT_BLOB_TYPE) ?:
                            NVSTORE_TYPE_RAW);
    if (s->blob) {
        /* Check the name and the type as a directory would */
        g_autoptr(NvstoreDir) dir = nvstore_dir_new();

        if (!nvstore_dir_add(dir, s->blob, s->blob_type, errp)) {
            error_prepend(errp, "Invalid option '%s' or '%s': ",
                          NVSTORE_OPT_BLOB, NVSTORE_OPT_BLOB_TYPE);
            ret = -EINVAL;
            goto fail;
        }
    } else if (qemu_opt_get(opts, NVSTORE_OPT_BLOB_TYPE)) {
        error_setg(errp, "Option '%s' needs option '%s'",
                   NVSTORE_OPT_BLOB_TYPE, NVSTORE_OPT_BLOB);
        ret = -EINVAL;
        goto fail;
    }

    ret = bdrv_open_file_child(NULL, options, "file", bs, errp);
    if (ret < 0) {
        goto fail;
    }

    qemu_co_mutex_init(&s->lock);
    bdrv_graph_rdlock_main_loop();
    ret = nvstore_load(bs, errp);
    if (ret >= 0) {
        /* The blob of option "blob", or no data: blobs are reached by name */
        NvstoreEntry *e = nvstore_exposed_entry(s);

        if (e && !nvstore_entry_check_usable(e, errp)) {
            ret = -ENOTSUP;
        }
        nvstore_update_total_sectors(bs);
    }
    bdrv_graph_rdunlock_main_loop();
    if (ret < 0) {
        goto fail;
    }
    qemu_opts_del(opts);
    return 0;

fail:
    g_clear_pointer(&s->dir, nvstore_dir_free);
    g_clear_pointer(&s->blob, g_free);
    g_clear_pointer(&s->blob_type, g_free);
    qemu_opts_del(opts);
    return ret;
}

static void nvstore_close(BlockDriverState *bs)
{
    BDRVNvstoreState *s = bs->opaque;

    g_clear_pointer(&s->dir, nvstore_dir_free);
    g_clear_pointer(&s->blob, g_free);
    g_clear_pointer(&s->blob_type, g_free);
}

static int nvstore_reopen_prepare(BDRVReopenState *state,
                                  BlockReopenQueue *queue, Error **errp)
{
    /*
     * Every commit is already on disk.  Options "blob" and "blob-type" are
     * left in the queue's options: the block layer refuses to change them.
     */
    return 0;
}

static void coroutine_fn GRAPH_RDLOCK
nvstore_co_invalidate_cache(BlockDriverState *bs, Error **errp)
{
    BDRVNvstoreState *s = bs->opaque;

    /* Another process may have committed: trust nothing that was read */
    qemu_co_mutex_lock(&s->lock);
    g_clear_pointer(&s->dir, nvstore_dir_free);
    if (nvstore_load(bs, errp) < 0) {
        error_prepend(errp, "Could not reload the nvstore directory: ");
    }
    nvstore_update_total_sectors(bs);
    qemu_co_mutex_unlock(&s->lock);
}

/* ---- Creating an image --------------------------------------------------- */

/* The header and the first commit: slot 0, generation 1, no blob */
static int coroutine_fn nvstore_co_format(BlockBackend *blk, Error **errp)
{
    g_autofree uint8_t *meta = g_malloc0(NVSTORE_DATA_OFFSET);
    NvstoreHeader *h = (NvstoreHeader *)meta;
    NvstoreSlot *slot = (NvstoreSlot *)(meta + NVSTORE_SLOT_OFFSET(0));
    g_autoptr(NvstoreDir) dir = nvstore_dir_new();
    g_autofree uint8_t *enc = NULL;
    size_t len;
    int ret;

    enc = nvstore_dir_encode(dir, &len, &error_abort);

    memcpy(h->magic, NVSTORE_MAGIC, sizeof(h->magic));
    nvstore_header_to_be(h);
    h->header_crc32c = cpu_to_be32(nvstore_crc(h, offsetof(NvstoreHeader,
                                                         header_crc32c)));
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

static int coroutine_fn GRAPH_UNLOCKED
nvstore_co_create_opts(BlockDriver *drv, const char *filename,
                       QemuOpts *opts, Error **errp)
{
    g_autofree char *container = NULL;
    BlockDriverState *bs_file = NULL;
    BlockBackend *blk = NULL;
    QDict *options = NULL;
    int flags = BDRV_O_RDWR | BDRV_O_RESIZE;
    uint64_t size;
    int ret;

    size = qemu_opt_get_size_del(opts, BLOCK_OPT_SIZE, 0);
    if (size) {
        error_setg(errp, "nvstore images have no virtual size; create them "
                   "without a size (they grow as blobs are written)");
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
    blk = blk_co_new_with_bs(bs_file, BLK_PERM_WRITE | BLK_PERM_RESIZE,
                             BLK_PERM_ALL, errp);
    if (!blk) {
        ret = -EPERM;
        goto out;
    }
    blk_set_allow_write_beyond_eof(blk, true);
    ret = nvstore_co_format(blk, errp);
out:
    blk_co_unref(blk);
    bdrv_co_unref(bs_file);
    return ret;
}

/* ---- Commits ------------------------------------------------------------- */

typedef struct Range {
    uint64_t start;
    uint64_t end;
} Range;

static gint range_cmp(gconstpointer a, gconstpointer b)
{
    const Range *x = a, *y = b;

    return x->start < y->start ? -1 : x->start > y->start;
}

/*
 * The space the committed directory of @s references: the metadata
 * blocks, the directory and every extent, of usable and unusable entries
 * alike.  Everything else is free.  *@unknown is set if an unusable entry
 * has an attribute 'extent' that does not decode: the space it uses, if
 * any, cannot be known.
 */
static GArray *nvstore_used_ranges(BDRVNvstoreState *s, bool *unknown)
{
    GArray *used = g_array_new(false, false, sizeof(Range));
    Range r = { 0, NVSTORE_DATA_OFFSET };
    guint i;

    *unknown = false;
    g_array_append_val(used, r);
    r = (Range) { s->dir_offset, s->dir_offset + s->dir_length };
    g_array_append_val(used, r);
    for (i = 0; i < s->dir->entries->len; i++) {
        NvstoreEntry *e = g_ptr_array_index(s->dir->entries, i);
        bool has = e->unusable ? e->has_space : e->has_extent;
        const NvstoreExtent *ext = e->unusable ? &e->space : &e->extent;

        if (has && ext->length) {
            r = (Range) { ext->offset, ext->offset + ext->length };
            g_array_append_val(used, r);
        }
        if (e->unusable && e->space_unknown) {
            *unknown = true;
        }
    }
    g_array_sort(used, range_cmp);
    return used;
}

/* First fit in the gaps of @used (sorted, may overlap); reserve it there */
static uint64_t nvstore_alloc(GArray *used, uint64_t len)
{
    uint64_t pos = 0;
    Range r;
    guint i;

    for (i = 0; i < used->len; i++) {
        Range *u = &g_array_index(used, Range, i);

        if (u->start >= pos + len && u->start - pos >= len) {
            break;
        }
        pos = MAX(pos, ROUND_UP(u->end, NVSTORE_ALIGN));
    }
    r = (Range) { pos, pos + len };
    g_array_insert_val(used, i, r);
    return pos;
}

/* Grow the child to hold @end bytes, if it is smaller */
static int coroutine_fn GRAPH_RDLOCK
nvstore_grow(BlockDriverState *bs, uint64_t end, Error **errp)
{
    int64_t size = bdrv_co_getlength(bs->file->bs);
    uint64_t new_size = ROUND_UP(end, NVSTORE_ALIGN);
    int ret;

    if (size < 0) {
        error_setg_errno(errp, -size, "Could not get the image size");
        return size;
    }
    if (end <= size) {
        return 0;
    }
    trace_nvstore_grow(bs, size, new_size);
    ret = bdrv_co_truncate(bs->file, new_size, false, PREALLOC_MODE_OFF, 0,
                           errp);
    if (ret < 0) {
        error_prepend(errp, "Could not grow the nvstore image: ");
    }
    return ret;
}

static int coroutine_fn GRAPH_RDLOCK
nvstore_write_at(BlockDriverState *bs, uint64_t offset, const void *buf,
                 uint64_t len, Error **errp)
{
    int ret = bdrv_co_pwrite(bs->file, offset, len, buf, 0);

    if (ret < 0) {
        error_setg_errno(errp, -ret, "Could not write to the nvstore image");
    }
    return ret;
}

/* Apply @updates to @dir, a copy of the committed directory */
static int nvstore_apply(NvstoreDir *dir, const NvstoreBlobUpdate *updates,
                         size_t n, Error **errp)
{
    g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
    size_t i, j;

    for (i = 0; i < n; i++) {
        const NvstoreBlobUpdate *u = &updates[i];
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
        e = nvstore_dir_lookup(dir, u->name);
        if (u->remove) {
            if (!e) {
                error_setg(errp, "No blob named '%s'", u->name);
                return -ENOENT;
            }
            nvstore_dir_delete(dir, u->name, &error_abort);
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
            e = nvstore_dir_add(dir, u->name, u->type, errp);
            if (!e) {
                return -EINVAL;
            }
        }
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
            continue;
        }
        /* Data are placed by the caller; keep realsize within them */
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
    }
    return 0;
}

/* Commit @updates; called with s->lock held */
static int coroutine_fn GRAPH_RDLOCK
nvstore_co_commit_locked(BlockDriverState *bs,
                         const NvstoreBlobUpdate *updates, size_t n,
                         Error **errp)
{
    BDRVNvstoreState *s = bs->opaque;
    g_autoptr(NvstoreDir) dir = NULL;
    g_autoptr(GArray) used = NULL;
    g_autofree uint8_t *cur = NULL;
    g_autofree uint8_t *enc = NULL;
    NvstoreSlot slot;
    uint64_t gen = 0, dir_offset, end = 0;
    size_t cur_len, len, i;
    bool unknown;
    int ret;

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
        error_setg(errp, "The nvstore directory is not loaded");
        ret = -EIO;
        goto out;
    }
    if (s->next_gen >= NVSTORE_EXTENT_LIMIT) {
        /* 2^63 commits: not in this universe, but never wrap around */
        error_setg(errp, "The nvstore image has reached its last generation");
        ret = -ENOSPC;
        goto out;
    }
    gen = s->next_gen++;
    assert(gen > s->gen);

    /* A copy of the committed directory, changed by @updates */
    cur = nvstore_dir_encode(s->dir, &cur_len, &error_abort);
    dir = nvstore_dir_parse(cur, cur_len, &error_abort);
    ret = nvstore_apply(dir, updates, n, errp);
    if (ret < 0) {
        goto out;
    }

    /*
     * Place the data of each blob of this commit, then the new directory,
     * in space that the committed directory does not reference, so that
     * the committed state survives any crash; grow the child once.
     */
    used = nvstore_used_ranges(s, &unknown);
    if (unknown) {
        /* Keep all of the child as it is: place everything past its end */
        int64_t size = bdrv_co_getlength(bs->file->bs);
        Range r;

        if (size < 0) {
            error_setg_errno(errp, -size, "Could not get the size of the "
                             "nvstore image");
            ret = size;
            goto out;
        }
        r = (Range) { 0, size };
        g_array_prepend_val(used, r);
    }
    for (i = 0; i < n; i++) {
        NvstoreEntry *e;
        NvstoreExtent ext;

        if (updates[i].remove || updates[i].keep_data || !updates[i].len) {
            continue;
        }
        e = nvstore_dir_lookup(dir, updates[i].name);
        ext.offset = nvstore_alloc(used, updates[i].len);
        ext.length = updates[i].len;
        ext.generation = gen;
        ext.crc32c = nvstore_crc(updates[i].data, updates[i].len);
        end = MAX(end, ext.offset + ext.length);
        if (!nvstore_entry_set_extent(e, &ext, errp)) {
            ret = -EINVAL;
            goto out;
        }
    }
    enc = nvstore_dir_encode(dir, &len, errp);
    if (!enc) {
        ret = -EFBIG;
        goto out;
    }
    dir_offset = nvstore_alloc(used, len);
    end = MAX(end, dir_offset + len);
    ret = nvstore_grow(bs, end, errp);
    if (ret < 0) {
        goto out;
    }

    /* Write the data, the directory, the slot that does not hold @s->gen */
    for (i = 0; i < n; i++) {
        NvstoreEntry *e;

        if (updates[i].remove || updates[i].keep_data || !updates[i].len) {
            continue;
        }
        e = nvstore_dir_lookup(dir, updates[i].name);
        trace_nvstore_commit_blob(bs, updates[i].name, gen, e->extent.offset,
                                  e->extent.length);
        ret = nvstore_write_at(bs, e->extent.offset, updates[i].data,
                               updates[i].len, errp);
        if (ret < 0) {
            goto out;
        }
    }
    ret = nvstore_write_at(bs, dir_offset, enc, len, errp);
    if (ret < 0) {
        goto out;
    }
    nvstore_slot_init(&slot, gen, dir_offset, enc, len);
    ret = nvstore_write_at(bs, NVSTORE_SLOT_OFFSET(!s->slot), &slot,
                           sizeof(slot), errp);
    if (ret < 0) {
        goto out;
    }

    /* One flush makes the commit durable; until then it may be torn */
    ret = bdrv_co_flush(bs->file->bs);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Could not flush the nvstore image");
        goto out;
    }

    nvstore_dir_free(s->dir);
    s->dir = g_steal_pointer(&dir);
    s->gen = gen;
    s->slot = !s->slot;
    s->dir_offset = dir_offset;
    s->dir_length = len;
    nvstore_update_total_sectors(bs);
    trace_nvstore_commit(bs, gen, s->slot, n, dir_offset, len);
    ret = 0;
out:
    if (ret < 0) {
        trace_nvstore_commit_fail(bs, gen, ret);
    }
    return ret;
}

static int coroutine_fn GRAPH_RDLOCK
nvstore_co_commit(BlockDriverState *bs, const NvstoreBlobUpdate *updates,
                  size_t n, Error **errp)
{
    BDRVNvstoreState *s = bs->opaque;
    int ret;

    qemu_co_mutex_lock(&s->lock);
    ret = nvstore_co_commit_locked(bs, updates, n, errp);
    qemu_co_mutex_unlock(&s->lock);
    return ret;
}

/* ---- The exposed blob (option "blob") ----------------------------------- */

/*
 * Limit of the exposed blob: every request reads the whole blob (its
 * checksum covers all of it) and every write commits all of it
 */
#define NVSTORE_EXPOSED_MAX (256 * MiB)

/* Read the exposed blob; none reads as empty; called with s->lock held */
static int coroutine_fn GRAPH_RDLOCK
nvstore_read_exposed(BlockDriverState *bs, uint8_t **data, size_t *len,
                     Error **errp)
{
    NvstoreEntry *e = nvstore_exposed_entry(bs->opaque);

    *data = NULL;
    *len = 0;
    if (!e) {
        return 0;
    }
    if (!nvstore_entry_check_usable(e, errp)) {
        return -ENOTSUP;
    }
    return nvstore_read_entry(bs, e, data, len, errp);
}

/*
 * Replace the exposed blob by @data[0..@len) with the bytes at @offset
 * replaced by @qiov (if any), zero-filled up to @new_len, which is at
 * least @offset plus the size of @qiov; called with s->lock held
 */
static int coroutine_fn GRAPH_RDLOCK
nvstore_write_exposed(BlockDriverState *bs, uint8_t *data, size_t len,
                      uint64_t new_len, uint64_t offset, QEMUIOVector *qiov,
                      Error **errp)
{
    BDRVNvstoreState *s = bs->opaque;
    NvstoreEntry *e = nvstore_exposed_entry(s);
    g_autofree uint8_t *buf = NULL;
    NvstoreBlobUpdate u = {
        .name = s->blob,
        .type = e ? e->type : s->blob_type,
    };

    if (new_len > NVSTORE_EXPOSED_MAX) {
        error_setg(errp, "Blob '%s' would be larger than %" PRIu64 " bytes, "
                   "the limit of option '%s'", s->blob,
                   (uint64_t)NVSTORE_EXPOSED_MAX, NVSTORE_OPT_BLOB);
        return -EFBIG;
    }
    buf = g_try_malloc0(new_len);
    if (!buf && new_len) {
        error_setg(errp, "Blob '%s': cannot allocate %" PRIu64 " bytes",
                   s->blob, new_len);
        return -ENOMEM;
    }
    /* Truncating to zero: @buf is NULL, and memcpy() must not see it */
    if (MIN(len, new_len)) {
        memcpy(buf, data, MIN(len, new_len));
    }
    if (qiov) {
        qemu_iovec_to_buf(qiov, 0, buf + offset, qiov->size);
    }
    u.data = buf;
    u.len = new_len;
    return nvstore_co_commit_locked(bs, &u, 1, errp);
}

static int coroutine_fn GRAPH_RDLOCK
nvstore_co_preadv(BlockDriverState *bs, int64_t offset, int64_t bytes,
                  QEMUIOVector *qiov, BdrvRequestFlags flags)
{
    BDRVNvstoreState *s = bs->opaque;
    g_autofree uint8_t *data = NULL;
    Error *err = NULL;
    size_t len, n = 0;
    int ret;

    qemu_co_mutex_lock(&s->lock);
    ret = nvstore_read_exposed(bs, &data, &len, &err);
    qemu_co_mutex_unlock(&s->lock);
    trace_nvstore_co_preadv(bs, offset, bytes, ret);
    if (ret < 0) {
        error_report_err(err);
        return ret;
    }
    /* The node's last sector may extend past the blob: zeroes */
    if (offset < len) {
        n = MIN(bytes, len - offset);
        qemu_iovec_from_buf(qiov, 0, data + offset, n);
    }
    if (n < bytes) {
        qemu_iovec_memset(qiov, n, 0, bytes - n);
    }
    return 0;
}

/* Each write request is one atomic, durable commit of the whole blob */
static int coroutine_fn GRAPH_RDLOCK
nvstore_co_pwritev(BlockDriverState *bs, int64_t offset, int64_t bytes,
                   QEMUIOVector *qiov, BdrvRequestFlags flags)
{
    BDRVNvstoreState *s = bs->opaque;
    g_autofree uint8_t *data = NULL;
    Error *err = NULL;
    size_t len;
    int ret;

    if (!s->blob) {
        return -ENOTSUP;
    }
    qemu_co_mutex_lock(&s->lock);
    ret = nvstore_read_exposed(bs, &data, &len, &err);
    if (ret >= 0) {
        /* Past the blob's end, within the node: the blob grows */
        ret = nvstore_write_exposed(bs, data, len,
                                    MAX(len, (uint64_t)offset + bytes),
                                    offset, qiov, &err);
    }
    qemu_co_mutex_unlock(&s->lock);
    trace_nvstore_co_pwritev(bs, offset, bytes, ret);
    if (ret < 0) {
        error_report_err(err);
    }
    return ret;
}

/* Resize the exposed blob, creating it if it does not exist */
static int coroutine_fn GRAPH_RDLOCK
nvstore_co_truncate(BlockDriverState *bs, int64_t offset, bool exact,
                    PreallocMode prealloc, BdrvRequestFlags flags,
                    Error **errp)
{
    BDRVNvstoreState *s = bs->opaque;
    g_autofree uint8_t *data = NULL;
    size_t len;
    int ret;

    if (!s->blob) {
        error_setg(errp, "An nvstore node has data only with option '%s'",
                   NVSTORE_OPT_BLOB);
        return -ENOTSUP;
    }
    if (prealloc != PREALLOC_MODE_OFF) {
        error_setg(errp, "Unsupported preallocation mode '%s'",
                   PreallocMode_str(prealloc));
        return -ENOTSUP;
    }
    qemu_co_mutex_lock(&s->lock);
    ret = nvstore_read_exposed(bs, &data, &len, errp);
    if (ret >= 0) {
        ret = nvstore_write_exposed(bs, data, len, offset, 0, NULL, errp);
    }
    qemu_co_mutex_unlock(&s->lock);
    return ret;
}

static int64_t coroutine_fn GRAPH_RDLOCK
nvstore_co_getlength(BlockDriverState *bs)
{
    NvstoreEntry *e = nvstore_exposed_entry(bs->opaque);

    return e && !e->unusable ? nvstore_entry_data_size(e) : 0;
}

/* ---- The device API ------------------------------------------------------ */

typedef struct NvstoreCall NvstoreCall;
typedef int coroutine_fn NvstoreOpFn(BlockDriverState *bs, NvstoreCall *c,
                                     Error **errp);

struct NvstoreCall {
    BdrvPollCo poll_state;
    /* The node: that of @blk, or @bs */
    BlockBackend *blk;
    BlockDriverState *bs;
    /* Runs in a coroutine, with the graph read lock held */
    NvstoreOpFn *op GRAPH_RDLOCK_PTR;
    Error **errp;
    int ret;
    /* Arguments and results of the operations */
    const char *name;
    const char *attr;
    const char *type;
    const NvstoreBlobAttr *attrs;
    const NvstoreBlobUpdate *updates;
    size_t n;
    uint8_t **data;
    size_t *len;
    NvstoreBlobInfo *info;
    char **names;
};

static void coroutine_fn nvstore_call_entry(void *opaque)
{
    NvstoreCall *c = opaque;
    BlockDriverState *bs;

    if (c->blk) {
        blk_inc_in_flight(c->blk);
    }
    bdrv_graph_co_rdlock();
    bs = c->blk ? blk_bs(c->blk) : c->bs;
    if (bs) {
        bs = bdrv_skip_filters(bs);
    }
    if (!bs) {
        error_setg(c->errp, "No medium");
        c->ret = -ENOMEDIUM;
    } else if (bs->drv != &bdrv_nvstore) {
        error_setg(c->errp, "Node '%s' is not an nvstore node",
                   bdrv_get_node_name(bs));
        c->ret = -EINVAL;
    } else {
        bdrv_inc_in_flight(bs);
        c->ret = c->op(bs, c, c->errp);
        bdrv_dec_in_flight(bs);
    }
    bdrv_graph_co_rdunlock();
    if (c->blk) {
        blk_dec_in_flight(c->blk);
    }
    c->poll_state.in_progress = false;
    aio_wait_kick();
}

/* Run @c->op on the nvstore node of @c->blk, in a coroutine */
static int coroutine_mixed_fn nvstore_call(NvstoreCall *c)
{
    c->poll_state.in_progress = true;
    if (qemu_in_coroutine()) {
        nvstore_call_entry(c);
    } else {
        c->poll_state.ctx = qemu_get_current_aio_context();
        c->poll_state.co = qemu_coroutine_create(nvstore_call_entry, c);
        bdrv_poll_co(&c->poll_state);
    }
    return c->ret;
}

static int coroutine_fn GRAPH_RDLOCK
nvstore_op_commit(BlockDriverState *bs, NvstoreCall *c, Error **errp)
{
    return nvstore_co_commit(bs, c->updates, c->n, errp);
}

int nvstore_blob_commit(BlockBackend *blk, const NvstoreBlobUpdate *updates,
                        size_t n, Error **errp)
{
    NvstoreCall c = {
        .blk = blk, .op = nvstore_op_commit, .errp = errp,
        .updates = updates, .n = n,
    };

    return nvstore_call(&c);
}

/* Look up a usable blob; called with s->lock held */
static NvstoreEntry *nvstore_find(BDRVNvstoreState *s, const char *name,
                                  Error **errp)
{
    NvstoreEntry *e = s->dir ? nvstore_dir_lookup(s->dir, name) : NULL;

    if (!e) {
        error_setg(errp, "No blob named '%s'", name);
        return NULL;
    }
    if (!nvstore_entry_check_usable(e, errp)) {
        return NULL;
    }
    return e;
}

static gint str_cmp(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Look up a usable blob, with s->lock held: 0, -ENOENT or -ENOTSUP */
static int nvstore_find_ret(BDRVNvstoreState *s, const char *name,
                            NvstoreEntry **e, Error **errp)
{
    *e = nvstore_find(s, name, errp);
    if (*e) {
        return 0;
    }
    return s->dir && nvstore_dir_lookup(s->dir, name) ? -ENOTSUP : -ENOENT;
}

static void nvstore_fill_info(NvstoreEntry *e, NvstoreBlobInfo *info)
{
    GPtrArray *attrs = g_ptr_array_new();
    guint i;

    info->type = g_strdup(e->type);
    info->size = nvstore_entry_data_size(e);
    info->has_realsize = e->has_realsize;
    info->realsize = e->realsize;
    for (i = 0; i < e->attrs->len; i++) {
        NvstoreAttr *a = g_ptr_array_index(e->attrs, i);

        g_ptr_array_add(attrs, g_strdup(a->name));
    }
    g_ptr_array_sort(attrs, str_cmp);
    g_ptr_array_add(attrs, NULL);
    info->attrs = (char **)g_ptr_array_free(attrs, false);
}

void nvstore_blob_info_clear(NvstoreBlobInfo *info)
{
    g_clear_pointer(&info->type, g_free);
    g_clear_pointer(&info->attrs, g_strfreev);
}

static int coroutine_fn GRAPH_RDLOCK
nvstore_op_read(BlockDriverState *bs, NvstoreCall *c, Error **errp)
{
    BDRVNvstoreState *s = bs->opaque;
    NvstoreEntry *e;
    int ret;

    qemu_co_mutex_lock(&s->lock);
    ret = nvstore_find_ret(s, c->name, &e, errp);
    if (!ret) {
        ret = nvstore_read_entry(bs, e, c->data, c->len, errp);
        trace_nvstore_blob_read(bs, c->name, ret);
    }
    qemu_co_mutex_unlock(&s->lock);
    return ret;
}

int nvstore_blob_read(BlockBackend *blk, const char *name, uint8_t **data,
                      size_t *len, Error **errp)
{
    NvstoreCall c = {
        .blk = blk, .op = nvstore_op_read, .errp = errp,
        .name = name, .data = data, .len = len,
    };

    return nvstore_call(&c);
}

static int coroutine_fn GRAPH_RDLOCK
nvstore_op_get_info(BlockDriverState *bs, NvstoreCall *c, Error **errp)
{
    BDRVNvstoreState *s = bs->opaque;
    NvstoreEntry *e;
    int ret;

    qemu_co_mutex_lock(&s->lock);
    ret = nvstore_find_ret(s, c->name, &e, errp);
    if (!ret) {
        nvstore_fill_info(e, c->info);
    }
    qemu_co_mutex_unlock(&s->lock);
    return ret;
}

int nvstore_blob_get_info(BlockBackend *blk, const char *name,
                          NvstoreBlobInfo *info, Error **errp)
{
    NvstoreCall c = {
        .blk = blk, .op = nvstore_op_get_info, .errp = errp,
        .name = name, .info = info,
    };

    return nvstore_call(&c);
}

/* Look up, or create in a commit; with s->lock held */
static int coroutine_fn GRAPH_RDLOCK
nvstore_op_open(BlockDriverState *bs, NvstoreCall *c, Error **errp)
{
    BDRVNvstoreState *s = bs->opaque;
    NvstoreBlobUpdate u = {
        .name = c->name, .type = c->type, .attrs = c->attrs, .nb_attrs = c->n,
    };
    NvstoreEntry *e;
    bool created = false;
    int ret;

    if (!c->type) {
        error_setg(errp, "Blob '%s': a type is required", c->name);
        return -EINVAL;
    }
    qemu_co_mutex_lock(&s->lock);
    if (!s->dir || !nvstore_dir_lookup(s->dir, c->name)) {
        ret = nvstore_co_commit_locked(bs, &u, 1, errp);
        if (ret < 0) {
            goto out;
        }
        created = true;
    }
    ret = nvstore_find_ret(s, c->name, &e, errp);
    if (ret < 0) {
        goto out;
    }
    if (strcmp(e->type, c->type)) {
        error_setg(errp, "Blob '%s' is of type '%s', not '%s'", c->name,
                   e->type, c->type);
        ret = -EINVAL;
        goto out;
    }
    nvstore_fill_info(e, c->info);
    ret = created;
out:
    qemu_co_mutex_unlock(&s->lock);
    return ret;
}

int nvstore_blob_open(BlockBackend *blk, const char *name, const char *type,
                      const NvstoreBlobAttr *attrs, size_t nb_attrs,
                      NvstoreBlobInfo *info, Error **errp)
{
    NvstoreCall c = {
        .blk = blk, .op = nvstore_op_open, .errp = errp,
        .name = name, .type = type, .attrs = attrs, .n = nb_attrs,
        .info = info,
    };

    return nvstore_call(&c);
}

static int coroutine_fn GRAPH_RDLOCK
nvstore_op_get_attr(BlockDriverState *bs, NvstoreCall *c, Error **errp)
{
    BDRVNvstoreState *s = bs->opaque;
    const NvstoreAttr *a;
    NvstoreEntry *e;
    int ret;

    qemu_co_mutex_lock(&s->lock);
    ret = nvstore_find_ret(s, c->name, &e, errp);
    if (!ret) {
        a = nvstore_entry_get_attr(e, c->attr);
        if (!a) {
            error_setg(errp, "Blob '%s' has no attribute '%s'", c->name,
                       c->attr);
            ret = -ENOENT;
        } else {
            *c->data = a->value ? g_memdup2(a->value, a->value_len) : NULL;
            *c->len = a->value_len;
        }
    }
    qemu_co_mutex_unlock(&s->lock);
    return ret;
}

int nvstore_blob_get_attr(BlockBackend *blk, const char *name,
                          const char *attr, uint8_t **value, size_t *len,
                          Error **errp)
{
    NvstoreCall c = {
        .blk = blk, .op = nvstore_op_get_attr, .errp = errp,
        .name = name, .attr = attr, .data = value, .len = len,
    };

    return nvstore_call(&c);
}

static int coroutine_fn GRAPH_RDLOCK
nvstore_op_list(BlockDriverState *bs, NvstoreCall *c, Error **errp)
{
    BDRVNvstoreState *s = bs->opaque;
    GPtrArray *names = g_ptr_array_new();
    guint i;

    qemu_co_mutex_lock(&s->lock);
    for (i = 0; s->dir && i < s->dir->entries->len; i++) {
        NvstoreEntry *e = g_ptr_array_index(s->dir->entries, i);

        g_ptr_array_add(names, g_strdup(e->name ? e->name : ""));
    }
    qemu_co_mutex_unlock(&s->lock);
    g_ptr_array_sort(names, str_cmp);
    g_ptr_array_add(names, NULL);
    c->names = (char **)g_ptr_array_free(names, false);
    return 0;
}

char **nvstore_blob_list(BlockBackend *blk, Error **errp)
{
    NvstoreCall c = {
        .blk = blk, .op = nvstore_op_list, .errp = errp,
    };

    return nvstore_call(&c) < 0 ? NULL : c.names;
}

/* ---- blockdev-create ----------------------------------------------------- */

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
    ret = nvstore_co_format(blk, errp);
    blk_co_unref(blk);
    bdrv_co_unref(bs_file);
    return ret;
}

/* ---- qemu-img info ------------------------------------------------------- */

static gint blob_info_cmp(gconstpointer a, gconstpointer b)
{
    const ImageInfoSpecificNvstoreBlob *x = *(void *const *)a;
    const ImageInfoSpecificNvstoreBlob *y = *(void *const *)b;

    return strcmp(x->name, y->name);
}

static ImageInfoSpecific * GRAPH_RDLOCK
nvstore_get_specific_info(BlockDriverState *bs, Error **errp)
{
    BDRVNvstoreState *s = bs->opaque;
    ImageInfoSpecific *spec = g_new0(ImageInfoSpecific, 1);
    ImageInfoSpecificNvstore *info = g_new0(ImageInfoSpecificNvstore, 1);
    g_autoptr(GPtrArray) blobs = g_ptr_array_new();
    ImageInfoSpecificNvstoreBlobList **tail = &info->blobs;
    guint i, j;

    spec->type = IMAGE_INFO_SPECIFIC_KIND_NVSTORE;
    spec->u.nvstore.data = info;
    info->generation = s->gen;
    info->slot = s->slot;
    for (i = 0; s->dir && i < s->dir->entries->len; i++) {
        NvstoreEntry *e = g_ptr_array_index(s->dir->entries, i);
        ImageInfoSpecificNvstoreBlob *b = g_new0(ImageInfoSpecificNvstoreBlob,
                                                 1);
        strList **atail = &b->attributes;

        b->name = g_strdup(e->name ? e->name : "");
        b->type = g_strdup(e->type);
        if (e->unusable) {
            b->unusable = g_strdup(e->unusable);
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
        g_ptr_array_add(blobs, b);
    }
    g_ptr_array_sort(blobs, blob_info_cmp);
    for (i = 0; i < blobs->len; i++) {
        QAPI_LIST_APPEND(tail, g_ptr_array_index(blobs, i));
    }
    return spec;
}

/* ---- qemu-img check ------------------------------------------------------ */

/*
 * Check everything: the header, both slots, the committed directory and
 * every blob's data; extents within the image and not overlapping.  A
 * slot left by a torn or damaged commit is harmless (open ignores it) and
 * counted as a leak; the repair clears it.  Damaged blobs cannot be
 * repaired: they are reported by name.
 */
static int coroutine_fn GRAPH_RDLOCK
nvstore_co_check(BlockDriverState *bs, BdrvCheckResult *res,
                 BdrvCheckMode fix)
{
    BDRVNvstoreState *s = bs->opaque;
    g_autoptr(GArray) ranges = NULL;
    Error *err = NULL;
    int64_t file_size;
    uint64_t end = 0;
    bool unknown;
    guint i;
    int k;

    qemu_co_mutex_lock(&s->lock);
    file_size = bdrv_co_getlength(bs->file->bs);
    if (file_size < 0 || nvstore_read_header(bs, &err) < 0 || !s->dir) {
        fprintf(stderr, "ERROR %s\n",
                err ? error_get_pretty(err) : "cannot read the image");
        error_free(err);
        res->check_errors++;
        goto out;
    }

    /* The slot not holding the current commit */
    for (k = 0; k < NVSTORE_NB_SLOTS; k++) {
        NvstoreSlot slot;
        NvstoreDir *dir = NULL;
        bool stale;

        if (k == s->slot) {
            continue;
        }
        nvstore_read_slot(bs, k, file_size, &slot, &dir, &err);
        if (dir && !nvstore_dir_generations_ok(dir, slot.generation, &err)) {
            error_prepend(&err, "slot %d: ", k);
            g_clear_pointer(&dir, nvstore_dir_free);
        }
        /* A valid slot of a higher generation is a torn commit */
        stale = dir && slot.generation > s->gen;
        nvstore_dir_free(dir);
        if (!err && !stale) {
            continue;
        }
        if (!err && stale) {
            error_setg(&err, "slot %d: generation %" PRIu64 " is a torn "
                       "commit", k, slot.generation);
        }
        if (!slot.generation && !stale &&
            !strstr(error_get_pretty(err), "checksum")) {
            /* Never written (a new image): nothing to report */
            error_free(err);
            err = NULL;
            continue;
        }
        /* Left over by a crash, harmless: counted as a leak */
        fprintf(stderr, "%s %s\n", fix & BDRV_FIX_LEAKS ? "Repairing" :
                "Leaked", error_get_pretty(err));
        error_free(err);
        err = NULL;
        res->leaks++;
        if (fix & BDRV_FIX_LEAKS) {
            uint8_t zero[sizeof(NvstoreSlot)] = { 0 };

            if (bdrv_co_pwrite(bs->file, NVSTORE_SLOT_OFFSET(k),
                               sizeof(zero), zero, 0) < 0 ||
                bdrv_co_flush(bs->file->bs) < 0) {
                res->check_errors++;
            } else {
                res->leaks--;
                res->leaks_fixed++;
            }
        }
    }

    /* Every blob: within the image, checksum, no overlap */
    ranges = nvstore_used_ranges(s, &unknown);
    if (unknown) {
        fprintf(stderr, "Warning: a blob this version cannot use has an "
                "unknown placement; new data goes past the end of the "
                "image\n");
        end = file_size;
    }
    for (i = 0; i < ranges->len; i++) {
        Range *r = &g_array_index(ranges, Range, i);

        if (i && r->start < g_array_index(ranges, Range, i - 1).end) {
            fprintf(stderr, "ERROR extents overlap at offset %" PRIu64 "\n",
                    r->start);
            res->corruptions++;
        }
        end = MAX(end, r->end);
    }
    for (i = 0; i < s->dir->entries->len; i++) {
        NvstoreEntry *e = g_ptr_array_index(s->dir->entries, i);
        g_autofree uint8_t *data = NULL;
        size_t len;

        if (e->unusable) {
            fprintf(stderr, "Warning: blob '%s' cannot be used by this "
                    "version: %s\n", nvstore_entry_desc(e), e->unusable);
            continue;
        }
        if (e->has_extent && (e->extent.offset > file_size ||
                              e->extent.length >
                              file_size - e->extent.offset)) {
            fprintf(stderr, "ERROR blob '%s' is outside the image\n",
                    nvstore_entry_desc(e));
            res->corruptions++;
            continue;
        }
        if (nvstore_read_entry(bs, e, &data, &len, &err) < 0) {
            fprintf(stderr, "ERROR %s\n", error_get_pretty(err));
            error_free(err);
            err = NULL;
            res->corruptions++;
        }
    }
    res->image_end_offset = end;
out:
    qemu_co_mutex_unlock(&s->lock);
    return 0;
}

/* ---- qemu-img amend ------------------------------------------------------ */

static QemuOptsList nvstore_amend_opts = {
    .name = "nvstore-amend-opts",
    .head = QTAILQ_HEAD_INITIALIZER(nvstore_amend_opts.head),
    .desc = {
        {
            .name = NVSTORE_OPT_DELETE_BLOB,
            .type = QEMU_OPT_STRING,
            .help = "Delete the blob of this name",
        },
        { /* end of list */ }
    }
};

static int GRAPH_RDLOCK
nvstore_amend_options(BlockDriverState *bs, QemuOpts *opts,
                      BlockDriverAmendStatusCB *status_cb, void *cb_opaque,
                      bool force, Error **errp)
{
    NvstoreBlobUpdate u = {
        .name = qemu_opt_get(opts, NVSTORE_OPT_DELETE_BLOB),
        .remove = true,
    };
    NvstoreCall c = {
        .bs = bs, .op = nvstore_op_commit, .errp = errp,
        .updates = &u, .n = 1,
    };

    if (!u.name) {
        return 0;
    }
    return nvstore_call(&c);
}

/* ---- qemu-img measure ---------------------------------------------------- */

/* Space of @dir's encoding with extents of the largest values */
static uint64_t nvstore_measure_dir(NvstoreDir *dir, Error **errp)
{
    g_autofree uint8_t *enc = NULL;
    size_t len;
    guint i;

    for (i = 0; i < dir->entries->len; i++) {
        NvstoreEntry *e = g_ptr_array_index(dir->entries, i);
        NvstoreExtent ext = {
            .offset = NVSTORE_EXTENT_LIMIT - 1,
            .generation = NVSTORE_EXTENT_LIMIT - 1,
        };

        if (e->unusable) {
            continue;
        }
        ext.length = nvstore_entry_data_size(e);
        if (ext.length && !nvstore_entry_set_extent(e, &ext, errp)) {
            return 0;
        }
    }
    enc = nvstore_dir_encode(dir, &len, errp);
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
        nvstore_dir_add(dir, name, NVSTORE_TYPE_RAW, &error_abort);
        if (size) {
            /* Only the size matters: give it an extent at once */
            NvstoreExtent ext = { .length = size };

            nvstore_entry_set_extent(nvstore_dir_lookup(dir, name), &ext,
                                     &error_abort);
        }
    }
    for (i = 0; i < dir->entries->len; i++) {
        NvstoreEntry *e = g_ptr_array_index(dir->entries, i);

        if (!e->unusable) {
            data += ROUND_UP(nvstore_entry_data_size(e), NVSTORE_ALIGN);
        }
    }
    meta = nvstore_measure_dir(dir, errp);
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
        { /* end of list */ }
    }
};

static const char *const nvstore_strong_runtime_opts[] = {
    NVSTORE_OPT_BLOB,
    NVSTORE_OPT_BLOB_TYPE,

    NULL
};

static BlockDriver bdrv_nvstore = {
    .format_name            = "nvstore",
    .instance_size          = sizeof(BDRVNvstoreState),
    .is_format              = true,
    .no_implicit_vmstate    = true,
    .strong_runtime_opts    = nvstore_strong_runtime_opts,

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

    .bdrv_co_create         = nvstore_co_create,
    .bdrv_co_create_opts    = nvstore_co_create_opts,
    .create_opts            = &nvstore_create_opts,
    .bdrv_get_specific_info = nvstore_get_specific_info,
    .bdrv_co_check          = nvstore_co_check,
    .bdrv_amend_options     = nvstore_amend_options,
    .amend_opts             = &nvstore_amend_opts,
    .bdrv_measure           = nvstore_measure,
};

static void bdrv_nvstore_init(void)
{
    bdrv_register(&bdrv_nvstore);
}

block_init(bdrv_nvstore_init);
