/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * nvstore: who writes which blob of an nvstore node.  Several users may
 * write one nvstore node at once (a TPM, the blob nodes of pflash or any
 * other device), each its own blobs: the block layer lets them share the
 * node's write permission, and this registry lets each blob have at most
 * one writer.  A blob node registers its write-back cache here, so that
 * any commit of the node takes the dirty blobs of all of them (group
 * commit, nvstore-commit.c).
 *
 * The registry is keyed by the nvstore node and lives outside its state,
 * which internal snapshot goto closes and re-opens under its users.  It is
 * changed in the main loop only (with the BQL held), and read by commits,
 * which run in the node's AioContext: an iothread's, if the node is in
 * one.  A mutex that is never held across a yield keeps the two apart.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/lockable.h"
#include "qemu/thread.h"
#include "nvstore-int.h"
#include "trace.h"

/* One writer of one blob */
typedef struct NvstoreWriter {
    char *blob;
    /* Who writes it, for error messages: "node 'vars0'", "TPM 'tpm0'" */
    char *who;
    /* Its write-back cache, if it has one */
    NvstoreBlobView *view;
} NvstoreWriter;

/* nvstore node -> GPtrArray of NvstoreWriter, under nvstore_writers_lock */
static GHashTable *nvstore_writers;
static QemuMutex nvstore_writers_lock;

static void __attribute__((__constructor__)) nvstore_writers_init(void)
{
    qemu_mutex_init(&nvstore_writers_lock);
}

static void nvstore_writer_free(gpointer p)
{
    NvstoreWriter *w = p;

    g_free(w->blob);
    g_free(w->who);
    g_free(w);
}

static GPtrArray *nvstore_writers_of(BlockDriverState *store)
{
    return nvstore_writers ? g_hash_table_lookup(nvstore_writers, store) :
                             NULL;
}

static NvstoreWriter *nvstore_writer_find(BlockDriverState *store,
                                          const char *blob)
{
    GPtrArray *writers = nvstore_writers_of(store);
    guint i;

    for (i = 0; writers && i < writers->len; i++) {
        NvstoreWriter *w = g_ptr_array_index(writers, i);

        if (!strcmp(w->blob, blob)) {
            return w;
        }
    }
    return NULL;
}

bool nvstore_claim(BlockDriverState *store, const char *blob,
                   const char *who, NvstoreBlobView *view, Error **errp)
{
    NvstoreWriter *w;
    GPtrArray *writers;

    GLOBAL_STATE_CODE();
    QEMU_LOCK_GUARD(&nvstore_writers_lock);
    w = nvstore_writer_find(store, blob);
    if (w) {
        error_setg(errp, "Blob '%s' of node '%s' is already written by %s",
                   blob, bdrv_get_node_name(store), w->who);
        return false;
    }
    if (!nvstore_writers) {
        nvstore_writers = g_hash_table_new_full(NULL, NULL, NULL,
                                                (GDestroyNotify)
                                                g_ptr_array_unref);
    }
    writers = nvstore_writers_of(store);
    if (!writers) {
        writers = g_ptr_array_new_with_free_func(nvstore_writer_free);
        g_hash_table_insert(nvstore_writers, store, writers);
    }
    w = g_new0(NvstoreWriter, 1);
    w->blob = g_strdup(blob);
    w->who = g_strdup(who);
    w->view = view;
    g_ptr_array_add(writers, w);
    trace_nvstore_claim(store, blob, who);
    return true;
}

void nvstore_release(BlockDriverState *store, const char *blob)
{
    GPtrArray *writers;
    NvstoreWriter *w;

    GLOBAL_STATE_CODE();
    QEMU_LOCK_GUARD(&nvstore_writers_lock);
    writers = nvstore_writers_of(store);
    w = nvstore_writer_find(store, blob);
    if (!w) {
        return;
    }
    trace_nvstore_release(store, blob, w->who);
    g_ptr_array_remove(writers, w);
    if (!writers->len) {
        g_hash_table_remove(nvstore_writers, store);
    }
}

char *nvstore_view_writer(BlockDriverState *store, const char *blob)
{
    NvstoreWriter *w;

    QEMU_LOCK_GUARD(&nvstore_writers_lock);
    w = nvstore_writer_find(store, blob);
    return w && w->view ? g_strdup(w->who) : NULL;
}

void nvstore_for_each_view(BlockDriverState *store,
                           void (*fn)(NvstoreBlobView *view, void *opaque),
                           void *opaque)
{
    GPtrArray *writers;
    guint i;

    QEMU_LOCK_GUARD(&nvstore_writers_lock);
    writers = nvstore_writers_of(store);
    for (i = 0; writers && i < writers->len; i++) {
        NvstoreWriter *w = g_ptr_array_index(writers, i);

        if (w->view) {
            fn(w->view, opaque);
        }
    }
}
