/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * In-process libtpms TPM backend, with the TPM state in an nvstore node
 *
 * libtpms runs on the TPM backend's worker thread.  Its NVRAM callbacks
 * only touch a RAM cache of the state blobs and mark them dirty; the
 * dirty blobs are written, in one atomic and durable nvstore commit, by
 * a coroutine in the main loop before the command that changed them is
 * completed to the guest.  No block I/O ever happens on the worker.
 *
 * libtpms keeps all its state in process-global variables and calls its
 * callbacks without a user pointer, so there is at most one instance.
 */

#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qemu/lockable.h"
#include "qemu/main-loop.h"
#include "qemu/module.h"
#include "qemu/coroutine.h"
#include "qapi/error.h"
#include "qapi/clone-visitor.h"
#include "qapi/qapi-visit-tpm.h"
#include "block/aio.h"
#include "block/block-global-state.h"
#include "block/graph-lock.h"
#include "block/nvstore.h"
#include "crypto/aead.h"
#include "crypto/memwipe.h"
#include "crypto/random.h"
#include "crypto/secret_common.h"
#include "system/block-backend.h"
#include "system/runstate.h"
#include "system/tpm_backend.h"
#include "system/tpm_util.h"
#include "migration/vmstate.h"
#include "qom/object.h"
#include "tpm_int.h"
#include "trace.h"

/*
 * Not <libtpms/tpm_error.h>: tpm_int.h has the TPM 1.2 return codes
 * the callbacks return, and the two would define them differently
 */
#include <libtpms/tpm_library.h>
#include <libtpms/tpm_tis.h>
#include <libtpms/tpm_nvfilename.h>

#define TYPE_TPM_LIBTPMS "tpm-libtpms"
OBJECT_DECLARE_SIMPLE_TYPE(TPMLibtpms, TPM_LIBTPMS)

#define TPM_LIBTPMS_MIN_VERSION TPM_LIBRARY_VERSION_GEN(0, 9, 0)

enum {
    TPM_LIBTPMS_PERMALL,
    TPM_LIBTPMS_SAVESTATE,
    TPM_LIBTPMS_VOLATILE,
    TPM_LIBTPMS_NB_BLOBS,
};

typedef struct TPMLibtpmsBlob {
    /* libtpms' name for it */
    const char *name;
    /* Kept in the image (volatilestate never is) */
    bool persist;
    /* Its name in the image, e.g. "tpm2-00.permall" */
    char *image_name;
    /* Claimed as the TPM's (nvstore_blob_claim()) */
    bool claimed;
    /* The current contents; NULL if the blob does not exist */
    GBytes *data;
    /* @data differs from the image */
    bool dirty;
    /* The image has the blob */
    bool on_disk;
} TPMLibtpmsBlob;

/* How the state in the migration stream is sealed */
enum {
    TPM_LIBTPMS_SEAL_NONE,
    /* With the keys of the encrypted image (nvstore_state_seal()) */
    TPM_LIBTPMS_SEAL_IMAGE,
    /* With option migration-key: nonce || AES-256-GCM || tag */
    TPM_LIBTPMS_SEAL_MIGRATION_KEY,
};

#define TPM_LIBTPMS_MIGRATION_KEY_LEN   32
#define TPM_LIBTPMS_NONCE_LEN           12
#define TPM_LIBTPMS_TAG_LEN             16
#define TPM_LIBTPMS_MIGRATION_KEY_OVERHEAD \
    (TPM_LIBTPMS_NONCE_LEN + TPM_LIBTPMS_TAG_LEN)

/* A state blob carried by the migration stream */
typedef struct TPMLibtpmsMigBlob {
    uint32_t size;
    uint8_t *buffer;
} TPMLibtpmsMigBlob;

struct TPMLibtpms {
    TPMBackend parent;

    TPMLibtpmsOptions *options;
    TPMVersion tpm_version;
    TPMLIB_TPMVersion lib_version;
    BlockBackend *blk;

    /*
     * Serialises every libtpms call except TPMLIB_CancelCommand(); never
     * held while waiting for anything else.
     */
    QemuMutex lib_lock;
    /* Between TPMLIB_MainInit() and TPMLIB_Terminate(); lib_lock */
    bool running;
    /* Returned by the tpm_io_getlocality callback; lib_lock */
    uint8_t cur_locty;
    /* libtpms' response buffer (it reallocs it); lib_lock */
    unsigned char *rbuf;
    uint32_t rbuf_size;

    /* Protects blobs[] */
    QemuMutex blob_lock;
    TPMLibtpmsBlob blobs[TPM_LIBTPMS_NB_BLOBS];

    /* The following are used with the BQL held */
    /* blobs[] holds the TPM's state (from the image or migration) */
    bool blobs_loaded;
    /* blobs[].on_disk is unknown (state from migration): look it up */
    bool probe_on_disk;
    /* The buffer size the frontend asked for (0: libtpms' default) */
    size_t want_buffer_size;
    /* The TPM's buffer size */
    size_t buffer_size;
    /* The return value of the worker for the request being persisted */
    int pending_ret;
    VMChangeStateEntry *vm_change;

    /* Accessed atomically */
    bool established;
    bool processing;
    /* Persisting failed: fail every command until the next reset */
    bool nv_failed;

    /* Migration and snapshots: the state of the TPM */
    uint8_t mig_tpm_version;
    /* How mig[] is sealed: TPM_LIBTPMS_SEAL_* */
    uint8_t mig_seal;
    TPMLibtpmsMigBlob mig[TPM_LIBTPMS_NB_BLOBS];
    /* Option migration-key: the key, or NULL */
    uint8_t *migration_key;
};

/* The one instance: libtpms' callbacks have no opaque pointer */
static TPMLibtpms *tpm_libtpms_instance;

static const char *const tpm_libtpms_blob_names[TPM_LIBTPMS_NB_BLOBS] = {
    [TPM_LIBTPMS_PERMALL] = TPM_PERMANENT_ALL_NAME,
    [TPM_LIBTPMS_SAVESTATE] = TPM_SAVESTATE_NAME,
    [TPM_LIBTPMS_VOLATILE] = TPM_VOLATILESTATE_NAME,
};

static const enum TPMLIB_StateType tpm_libtpms_state_types[] = {
    [TPM_LIBTPMS_PERMALL] = TPMLIB_STATE_PERMANENT,
    [TPM_LIBTPMS_SAVESTATE] = TPMLIB_STATE_SAVE_STATE,
    [TPM_LIBTPMS_VOLATILE] = TPMLIB_STATE_VOLATILE,
};

static TPMLibtpmsBlob *tpm_libtpms_find_blob(TPMLibtpms *s, const char *name)
{
    int i;

    for (i = 0; i < TPM_LIBTPMS_NB_BLOBS; i++) {
        if (!strcmp(s->blobs[i].name, name)) {
            return &s->blobs[i];
        }
    }
    return NULL;
}

static bool tpm_libtpms_has_dirty(TPMLibtpms *s)
{
    bool dirty = false;
    int i;

    QEMU_LOCK_GUARD(&s->blob_lock);
    for (i = 0; i < TPM_LIBTPMS_NB_BLOBS; i++) {
        dirty |= s->blobs[i].dirty;
    }
    return dirty;
}

/* Replace a blob's contents (NULL: delete it); blob_lock held */
static void tpm_libtpms_set_blob(TPMLibtpmsBlob *b, GBytes *data)
{
    g_clear_pointer(&b->data, g_bytes_unref);
    b->data = data;
    b->dirty = b->persist;
}

/* ---- libtpms callbacks: any thread, always inside a libtpms call --------- */

static TPM_RESULT tpm_libtpms_nvram_init(void)
{
    return TPM_SUCCESS;
}

static TPM_RESULT tpm_libtpms_nvram_loaddata(unsigned char **data,
                                             uint32_t *length,
                                             uint32_t tpm_number,
                                             const char *name)
{
    TPMLibtpms *s = tpm_libtpms_instance;
    TPMLibtpmsBlob *b;
    const void *p;
    size_t len;

    if (!s) {
        return TPM_FAIL;
    }

    QEMU_LOCK_GUARD(&s->blob_lock);
    b = tpm_libtpms_find_blob(s, name);
    /*
     * TPM_RETRY tells libtpms that the blob does not exist.  A stale
     * volatilestate must never be resurrected by a cold start: libtpms
     * gets the volatile state only through TPMLIB_SetState().
     */
    if (!b || !b->persist || !b->data || !g_bytes_get_size(b->data)) {
        trace_tpm_libtpms_nvram_load(name, 0, false);
        return TPM_RETRY;
    }

    p = g_bytes_get_data(b->data, &len);
    /* libtpms frees it with free(); g_malloc() is malloc() since glib 2.46 */
    *data = g_try_malloc(len);
    if (!*data) {
        return TPM_SIZE;
    }
    memcpy(*data, p, len);
    *length = len;
    trace_tpm_libtpms_nvram_load(name, len, true);
    return TPM_SUCCESS;
}

/*
 * Replace the contents of the blob libtpms calls @name by @data (taken),
 * or delete them if @data is NULL.  A blob that does not exist, or has
 * nothing to delete, is a failure if @must_exist.
 */
static TPM_RESULT tpm_libtpms_nvram_set(const char *name, GBytes *data,
                                        bool must_exist)
{
    g_autoptr(GBytes) bytes = data;
    TPMLibtpms *s = tpm_libtpms_instance;
    TPMLibtpmsBlob *b;

    if (!s) {
        return TPM_FAIL;
    }

    QEMU_LOCK_GUARD(&s->blob_lock);
    b = tpm_libtpms_find_blob(s, name);
    if (!b || (!bytes && !b->data)) {
        return must_exist ? TPM_FAIL : TPM_SUCCESS;
    }
    /* No block I/O here: this may run on the worker thread */
    tpm_libtpms_set_blob(b, g_steal_pointer(&bytes));
    return TPM_SUCCESS;
}

static TPM_RESULT tpm_libtpms_nvram_storedata(const unsigned char *data,
                                              uint32_t length,
                                              uint32_t tpm_number,
                                              const char *name)
{
    trace_tpm_libtpms_nvram_store(name, length);
    return tpm_libtpms_nvram_set(name, g_bytes_new(data, length), true);
}

static TPM_RESULT tpm_libtpms_nvram_deletename(uint32_t tpm_number,
                                               const char *name,
                                               TPM_BOOL mustExist)
{
    trace_tpm_libtpms_nvram_delete(name);
    return tpm_libtpms_nvram_set(name, NULL, mustExist);
}

static TPM_RESULT tpm_libtpms_io_init(void)
{
    return TPM_SUCCESS;
}

static TPM_RESULT tpm_libtpms_io_getlocality(TPM_MODIFIER_INDICATOR *locty,
                                             uint32_t tpm_number)
{
    TPMLibtpms *s = tpm_libtpms_instance;

    if (!s) {
        return TPM_FAIL;
    }
    /* lib_lock is held by our caller */
    *locty = s->cur_locty;
    return TPM_SUCCESS;
}

static struct libtpms_callbacks tpm_libtpms_callbacks = {
    .sizeOfStruct = sizeof(struct libtpms_callbacks),
    .tpm_nvram_init = tpm_libtpms_nvram_init,
    .tpm_nvram_loaddata = tpm_libtpms_nvram_loaddata,
    .tpm_nvram_storedata = tpm_libtpms_nvram_storedata,
    .tpm_nvram_deletename = tpm_libtpms_nvram_deletename,
    .tpm_io_init = tpm_libtpms_io_init,
    .tpm_io_getlocality = tpm_libtpms_io_getlocality,
};

/* ---- Persisting the blobs (main loop or coroutine, BQL held) ------------- */

/* Whether the node may be written (not inactive for migration) */
static bool tpm_libtpms_node_active(TPMLibtpms *s)
{
    BlockDriverState *bs;

    GRAPH_RDLOCK_GUARD_MAINLOOP();
    bs = blk_bs(s->blk);
    return bs && !bdrv_is_inactive(bs);
}

/*
 * Write every dirty blob to the image in one atomic, durable commit.
 * Runs in the main loop, in or outside a coroutine; never on the worker.
 */
static int coroutine_mixed_fn tpm_libtpms_persist(TPMLibtpms *s, Error **errp)
{
    NvstoreBlobUpdate updates[TPM_LIBTPMS_NB_BLOBS];
    GBytes *data[TPM_LIBTPMS_NB_BLOBS] = { NULL };
    bool in_commit[TPM_LIBTPMS_NB_BLOBS] = { false };
    size_t n = 0;
    int ret, i;

    WITH_QEMU_LOCK_GUARD(&s->blob_lock) {
        for (i = 0; i < TPM_LIBTPMS_NB_BLOBS; i++) {
            TPMLibtpmsBlob *b = &s->blobs[i];

            if (!b->dirty) {
                continue;
            }
            b->dirty = false;
            if (!b->data && !b->on_disk) {
                continue;
            }
            in_commit[i] = true;
            updates[n] = (NvstoreBlobUpdate) {
                .name = b->image_name,
                .type = NVSTORE_BLOB_TYPE_TPM,
            };
            if (b->data) {
                size_t len;

                data[i] = g_bytes_ref(b->data);
                updates[n].data = g_bytes_get_data(data[i], &len);
                updates[n].len = len;
            } else {
                updates[n].remove = true;
            }
            n++;
        }
    }
    if (!n) {
        return 0;
    }

    ret = nvstore_blob_commit(s->blk, updates, n, errp);
    trace_tpm_libtpms_persist(n, ret);

    WITH_QEMU_LOCK_GUARD(&s->blob_lock) {
        for (i = 0; i < TPM_LIBTPMS_NB_BLOBS; i++) {
            if (!in_commit[i]) {
                continue;
            }
            if (ret < 0) {
                s->blobs[i].dirty = true;
            } else {
                s->blobs[i].on_disk = data[i] != NULL;
            }
            g_clear_pointer(&data[i], g_bytes_unref);
        }
    }
    return ret;
}

/* Latch the failure: every command fails until the next reset */
static void tpm_libtpms_set_failed(TPMLibtpms *s, Error *err)
{
    qatomic_set(&s->nv_failed, true);
    error_prepend(&err, "tpm-libtpms: could not store the TPM state, the "
                  "TPM fails every command until the next reset: ");
    error_report_err(err);
}

/* Find out which blobs the image has; main loop, node active */
static void tpm_libtpms_probe_on_disk(TPMLibtpms *s)
{
    bool on_disk[TPM_LIBTPMS_NB_BLOBS];
    int i;

    for (i = 0; i < TPM_LIBTPMS_NB_BLOBS; i++) {
        NvstoreBlobInfo info = { 0 };

        on_disk[i] = s->blobs[i].persist &&
            nvstore_blob_get_info(s->blk, s->blobs[i].image_name, &info,
                                  NULL) == 0;
        nvstore_blob_info_clear(&info);
    }
    WITH_QEMU_LOCK_GUARD(&s->blob_lock) {
        for (i = 0; i < TPM_LIBTPMS_NB_BLOBS; i++) {
            s->blobs[i].on_disk = on_disk[i];
        }
    }
    s->probe_on_disk = false;
}

/* Persist now, from the main loop; deferred while the node is inactive */
static void tpm_libtpms_persist_now(TPMLibtpms *s)
{
    Error *err = NULL;

    /* A failed TPM writes nothing; its reset reloads the stored state */
    if (!s->blk || qatomic_read(&s->nv_failed) || !tpm_libtpms_has_dirty(s)) {
        return;
    }
    if (!tpm_libtpms_node_active(s)) {
        trace_tpm_libtpms_persist_deferred();
        return;
    }
    if (s->probe_on_disk) {
        tpm_libtpms_probe_on_disk(s);
    }
    if (tpm_libtpms_persist(s, &err) < 0) {
        tpm_libtpms_set_failed(s, err);
    }
}

/* Read the blobs from the image (the durable state of the TPM) */
static int tpm_libtpms_load_blobs(TPMLibtpms *s, Error **errp)
{
    GBytes *data[TPM_LIBTPMS_NB_BLOBS] = { NULL };
    int i, ret;

    for (i = 0; i < TPM_LIBTPMS_NB_BLOBS; i++) {
        TPMLibtpmsBlob *b = &s->blobs[i];
        NvstoreBlobInfo info = { 0 };
        Error *local_err = NULL;
        uint8_t *buf = NULL;
        size_t len, realsize;

        if (!b->persist) {
            continue;
        }
        ret = nvstore_blob_get_info(s->blk, b->image_name, &info, &local_err);
        if (ret == -ENOENT) {
            error_free(local_err);
            continue;
        }
        if (ret < 0) {
            error_propagate(errp, local_err);
            goto fail;
        }
        if (strcmp(info.type, NVSTORE_BLOB_TYPE_TPM)) {
            error_setg(errp, "Blob '%s' has type '%s', expected '%s'",
                       b->image_name, info.type, NVSTORE_BLOB_TYPE_TPM);
            nvstore_blob_info_clear(&info);
            ret = -EINVAL;
            goto fail;
        }
        ret = nvstore_blob_read(s->blk, b->image_name, &buf, &len, errp);
        if (ret < 0) {
            nvstore_blob_info_clear(&info);
            goto fail;
        }
        realsize = info.has_realsize ? MIN(info.realsize, len) : len;
        nvstore_blob_info_clear(&info);
        data[i] = g_bytes_new_take(buf, realsize);
        trace_tpm_libtpms_load_blob(b->image_name, realsize);
    }

    WITH_QEMU_LOCK_GUARD(&s->blob_lock) {
        for (i = 0; i < TPM_LIBTPMS_NB_BLOBS; i++) {
            TPMLibtpmsBlob *b = &s->blobs[i];

            g_clear_pointer(&b->data, g_bytes_unref);
            b->data = data[i];
            b->dirty = false;
            b->on_disk = data[i] != NULL;
        }
    }
    s->blobs_loaded = true;
    return 0;

fail:
    for (i = 0; i < TPM_LIBTPMS_NB_BLOBS; i++) {
        g_clear_pointer(&data[i], g_bytes_unref);
    }
    return ret;
}

/* ---- Running libtpms ----------------------------------------------------- */

/* lib_lock held */
static void tpm_libtpms_refresh_established(TPMLibtpms *s)
{
    TPM_BOOL established = 0;

    if (s->running && TPM_IO_TpmEstablished_Get(&established) == TPM_SUCCESS) {
        qatomic_set(&s->established, established != 0);
    }
}

/* lib_lock held */
static void tpm_libtpms_terminate(TPMLibtpms *s)
{
    if (s->running) {
        TPMLIB_Terminate();
        s->running = false;
    }
}

/*
 * (Re)start libtpms.  With @resume, from the state blobs in s->mig
 * (incoming migration, loadvm); otherwise from blobs[] through the
 * loaddata callback, manufacturing the TPM if there is no permall.
 * No request may be pending.
 */
static int tpm_libtpms_start(TPMLibtpms *s, bool resume, Error **errp)
{
    TPM_RESULT res;
    int i;

    QEMU_LOCK_GUARD(&s->lib_lock);

    tpm_libtpms_terminate(s);

    res = TPMLIB_ChooseTPMVersion(s->lib_version);
    if (res != TPM_SUCCESS) {
        error_setg(errp, "could not choose the TPM version: 0x%x", res);
        return -1;
    }

    if (s->want_buffer_size) {
        uint32_t min_size, max_size, size;

        size = TPMLIB_SetBufferSize(s->want_buffer_size, &min_size,
                                    &max_size);
        trace_tpm_libtpms_set_buffer_size(s->want_buffer_size, size,
                                          min_size, max_size);
    }

    for (i = 0; resume && i < TPM_LIBTPMS_NB_BLOBS; i++) {
        if (!s->mig[i].size) {
            continue;
        }
        res = TPMLIB_SetState(tpm_libtpms_state_types[i], s->mig[i].buffer,
                              s->mig[i].size);
        if (res != TPM_SUCCESS) {
            error_setg(errp, "could not set the %s state: 0x%x",
                       tpm_libtpms_blob_names[i], res);
            return -1;
        }
    }

    res = TPMLIB_MainInit();
    if (res != TPM_SUCCESS) {
        error_setg(errp, "TPMLIB_MainInit failed: 0x%x", res);
        return -1;
    }
    s->running = true;
    s->buffer_size = TPMLIB_SetBufferSize(0, NULL, NULL);
    tpm_libtpms_refresh_established(s);
    trace_tpm_libtpms_started(resume, s->buffer_size);
    return 0;
}

/*
 * tpm_util_write_fatal_error_response() writes a TPM 1.2 response; a
 * TPM 2.0 answers with its own tag and TPM_RC_FAILURE
 */
static void tpm_libtpms_write_failure(TPMLibtpms *s, uint8_t *out,
                                      uint32_t out_len)
{
    if (s->tpm_version == TPM_VERSION_1_2) {
        tpm_util_write_fatal_error_response(out, out_len);
    } else if (out_len >= sizeof(struct tpm_resp_hdr)) {
        tpm_cmd_set_tag(out, TPM2_ST_NO_SESSIONS);
        tpm_cmd_set_size(out, sizeof(struct tpm_resp_hdr));
        tpm_cmd_set_error(out, TPM_RC_FAILURE);
    }
}

/* ---- TPMBackend methods -------------------------------------------------- */

/* Worker thread, without the BQL: libtpms only, no block I/O */
static void tpm_libtpms_handle_request(TPMBackend *tb, TPMBackendCmd *cmd,
                                       Error **errp)
{
    TPMLibtpms *s = TPM_LIBTPMS(tb);
    g_autofree unsigned char *in = NULL;
    uint32_t rlen = 0;
    TPM_RESULT res;

    trace_tpm_libtpms_handle_request(cmd->locty, cmd->in_len);

    cmd->selftest_done = false;
    if (qatomic_read(&s->nv_failed)) {
        tpm_libtpms_write_failure(s, cmd->out, cmd->out_len);
        return;
    }

    /* libtpms takes a non-const command buffer */
    in = g_memdup2(cmd->in, cmd->in_len);

    QEMU_LOCK_GUARD(&s->lib_lock);
    if (!s->running) {
        error_setg(errp, "tpm-libtpms: the TPM is not running");
        tpm_libtpms_write_failure(s, cmd->out, cmd->out_len);
        return;
    }
    s->cur_locty = cmd->locty;
    qatomic_set(&s->processing, true);
    res = TPMLIB_Process(&s->rbuf, &rlen, &s->rbuf_size, in, cmd->in_len);
    qatomic_set(&s->processing, false);
    tpm_libtpms_refresh_established(s);

    if (res != TPM_SUCCESS || rlen < sizeof(struct tpm_resp_hdr)) {
        error_setg(errp, "tpm-libtpms: TPMLIB_Process failed: 0x%x", res);
        tpm_libtpms_write_failure(s, cmd->out, cmd->out_len);
        return;
    }
    if (rlen > cmd->out_len) {
        error_setg(errp, "tpm-libtpms: response of %u bytes exceeds the "
                   "buffer of %u bytes", rlen, cmd->out_len);
        tpm_libtpms_write_failure(s, cmd->out, cmd->out_len);
        return;
    }
    memcpy(cmd->out, s->rbuf, rlen);
    if (tpm_util_is_selftest(cmd->in, cmd->in_len)) {
        cmd->selftest_done = tpm_cmd_get_errcode(cmd->out) == 0;
    }
}

static void tpm_libtpms_complete_bh(void *opaque)
{
    TPMLibtpms *s = opaque;

    tpm_backend_request_done(TPM_BACKEND(s), s->pending_ret);
}

static void coroutine_fn tpm_libtpms_persist_co(void *opaque)
{
    TPMLibtpms *s = opaque;
    TPMBackendCmd *cmd = s->parent.cmd;
    Error *err = NULL;

    if (tpm_libtpms_persist(s, &err) < 0) {
        tpm_libtpms_set_failed(s, err);
        tpm_libtpms_write_failure(s, cmd->out, cmd->out_len);
    }
    /* Complete outside coroutine context */
    aio_bh_schedule_oneshot(qemu_get_aio_context(), tpm_libtpms_complete_bh,
                            s);
}

/*
 * Main loop, after handle_request(): the request stays pending until
 * the state it changed is durable.
 */
static void tpm_libtpms_complete_request(TPMBackend *tb, int ret)
{
    TPMLibtpms *s = TPM_LIBTPMS(tb);
    Coroutine *co;

    if (qatomic_read(&s->nv_failed) || !tpm_libtpms_has_dirty(s)) {
        tpm_backend_request_done(tb, ret);
        return;
    }

    if (!tpm_libtpms_node_active(s)) {
        /* Cannot happen while the guest runs; fail rather than lie */
        Error *err = NULL;

        error_setg(&err, "the nvstore node is inactive");
        tpm_libtpms_set_failed(s, err);
        tpm_libtpms_write_failure(s, tb->cmd->out, tb->cmd->out_len);
        tpm_backend_request_done(tb, ret);
        return;
    }

    if (s->probe_on_disk) {
        tpm_libtpms_probe_on_disk(s);
    }
    s->pending_ret = ret;
    co = qemu_coroutine_create(tpm_libtpms_persist_co, s);
    aio_co_enter(blk_get_aio_context(s->blk), co);
}

static int tpm_libtpms_startup_tpm(TPMBackend *tb, size_t buffersize)
{
    TPMLibtpms *s = TPM_LIBTPMS(tb);
    Error *err = NULL;

    if (buffersize) {
        s->want_buffer_size = buffersize;
    }

    /*
     * A -drive is a BlockBackend a device could attach to as well,
     * replacing our permissions; devices are realized before the first
     * reset.
     */
    if (blk_get_attached_dev(s->blk)) {
        error_report("tpm-libtpms: drive '%s' is also used by a device",
                     s->options->drive);
        return -1;
    }

    /*
     * The state comes from the migration stream or snapshot (loadvm
     * resets the machine inside a drained section, after reverting the
     * image); post_load starts the TPM, else the "running" VM state
     * change handler does.
     */
    if (runstate_check(RUN_STATE_INMIGRATE) ||
        runstate_check(RUN_STATE_RESTORE_VM)) {
        WITH_QEMU_LOCK_GUARD(&s->lib_lock) {
            tpm_libtpms_terminate(s);
        }
        s->blobs_loaded = false;
        trace_tpm_libtpms_startup_deferred(buffersize);
        return 0;
    }

    if (!s->blobs_loaded || qatomic_read(&s->nv_failed)) {
        /* Go back to the durable state */
        if (tpm_libtpms_load_blobs(s, &err) < 0) {
            WITH_QEMU_LOCK_GUARD(&s->lib_lock) {
                tpm_libtpms_terminate(s);
            }
            tpm_libtpms_set_failed(s, err);
            return 0;
        }
    }
    qatomic_set(&s->nv_failed, false);

    if (tpm_libtpms_start(s, false, &err) < 0) {
        error_prepend(&err, "tpm-libtpms: ");
        error_report_err(err);
        return -1;
    }

    /* The first start manufactures the TPM; every Startup writes permall */
    tpm_libtpms_persist_now(s);
    return 0;
}

static bool tpm_libtpms_get_tpm_established_flag(TPMBackend *tb)
{
    TPMLibtpms *s = TPM_LIBTPMS(tb);

    return qatomic_read(&s->established);
}

static int tpm_libtpms_reset_tpm_established_flag(TPMBackend *tb,
                                                  uint8_t locty)
{
    TPMLibtpms *s = TPM_LIBTPMS(tb);
    TPM_RESULT res;

    /* only a TPM 2.0 will support this */
    if (s->tpm_version != TPM_VERSION_2_0) {
        return 0;
    }

    WITH_QEMU_LOCK_GUARD(&s->lib_lock) {
        if (!s->running) {
            return -1;
        }
        /* libtpms checks the locality (3 or 4) through the callback */
        s->cur_locty = locty;
        res = TPM_IO_TpmEstablished_Reset();
        tpm_libtpms_refresh_established(s);
    }
    if (res != TPM_SUCCESS) {
        error_report("tpm-libtpms: could not reset the established flag: "
                     "0x%x", res);
        return -1;
    }

    /* A pending request persists what is dirty when it completes */
    if (!s->parent.cmd) {
        tpm_libtpms_persist_now(s);
    }
    return 0;
}

static void tpm_libtpms_cancel_cmd(TPMBackend *tb)
{
    TPMLibtpms *s = TPM_LIBTPMS(tb);

    /* The one libtpms call made concurrently with TPMLIB_Process() */
    if (qatomic_read(&s->processing)) {
        trace_tpm_libtpms_cancel_cmd();
        TPMLIB_CancelCommand();
    }
}

static TPMVersion tpm_libtpms_get_tpm_version(TPMBackend *tb)
{
    return TPM_LIBTPMS(tb)->tpm_version;
}

static size_t tpm_libtpms_get_buffer_size(TPMBackend *tb)
{
    return TPM_LIBTPMS(tb)->buffer_size;
}

static TpmTypeOptions *tpm_libtpms_get_tpm_options(TPMBackend *tb)
{
    TPMLibtpms *s = TPM_LIBTPMS(tb);
    TpmTypeOptions *options = g_new0(TpmTypeOptions, 1);

    options->type = TPM_TYPE_LIBTPMS;
    options->u.libtpms.data = QAPI_CLONE(TPMLibtpmsOptions, s->options);

    return options;
}

/* ---- VM state changes, migration, snapshots ------------------------------ */

static void tpm_libtpms_vm_state_change(void *opaque, bool running,
                                        RunState state)
{
    TPMLibtpms *s = opaque;

    trace_tpm_libtpms_vm_state_change(running, state);

    if (!running) {
        /*
         * This runs before migration inactivates the node, before savevm
         * drains, and before exit closes it: complete the pending request
         * (which persists its changes) and persist anything left.
         */
        tpm_backend_finish_sync(TPM_BACKEND(s));
    }
    /*
     * When running: the node is active again, write what post_load
     * (incoming migration, loadvm) produced.  Without a post_load (the
     * stream had no TPM state), start the TPM from the image.
     */
    if (running && !s->running && !qatomic_read(&s->nv_failed)) {
        if (tpm_libtpms_startup_tpm(TPM_BACKEND(s), 0) < 0) {
            qatomic_set(&s->nv_failed, true);
        }
        return;
    }
    tpm_libtpms_persist_now(s);
}

static void tpm_libtpms_mig_reset(TPMLibtpms *s)
{
    int i;

    /* The TPM's secrets, in the clear: wipe them */
    for (i = 0; i < TPM_LIBTPMS_NB_BLOBS; i++) {
        qcrypto_memwipe_free(s->mig[i].buffer, s->mig[i].size);
        s->mig[i].buffer = NULL;
        s->mig[i].size = 0;
    }
}

/* A failed, stopped TPM: carry its last permanent state */
static int tpm_libtpms_save_durable(TPMLibtpms *s)
{
    TPMLibtpmsMigBlob *m = &s->mig[TPM_LIBTPMS_PERMALL];
    GBytes *perm;
    size_t len;

    QEMU_LOCK_GUARD(&s->blob_lock);
    perm = s->blobs[TPM_LIBTPMS_PERMALL].data;
    if (!perm) {
        error_report("tpm-libtpms: the TPM has no state to save");
        return -EIO;
    }
    m->buffer = g_memdup2(g_bytes_get_data(perm, &len),
                          g_bytes_get_size(perm));
    m->size = len;
    return 0;
}

/* What a state blob is sealed as: the label binds it to its kind */
static char *tpm_libtpms_mig_label(int i)
{
    return g_strdup_printf("tpm-libtpms %s", tpm_libtpms_blob_names[i]);
}

/*
 * Seal @len octets at @in with option migration-key, into a new buffer
 * *@out: a random nonce, the AES-256-GCM ciphertext, the tag; @label as
 * associated data
 */
static int tpm_libtpms_key_seal(TPMLibtpms *s, const char *label,
                                const uint8_t *in, size_t len, uint8_t **out,
                                Error **errp)
{
    g_autoptr(QCryptoAead) aead = NULL;
    uint8_t *buf = g_malloc(len + TPM_LIBTPMS_MIGRATION_KEY_OVERHEAD);
    uint8_t *ct = buf + TPM_LIBTPMS_NONCE_LEN;

    aead = qcrypto_aead_new(QCRYPTO_AEAD_ALGO_AES_256_GCM, s->migration_key,
                            TPM_LIBTPMS_MIGRATION_KEY_LEN, errp);
    if (!aead ||
        qcrypto_random_bytes(buf, TPM_LIBTPMS_NONCE_LEN, errp) < 0 ||
        qcrypto_aead_encrypt(aead, buf, TPM_LIBTPMS_NONCE_LEN,
                             (const uint8_t *)label, strlen(label), in, ct,
                             len, ct + len, TPM_LIBTPMS_TAG_LEN, errp) < 0) {
        g_free(buf);
        return -EIO;
    }
    *out = buf;
    return 0;
}

/* What tpm_libtpms_key_seal() sealed: a new buffer *@out, or an error */
static int tpm_libtpms_key_unseal(TPMLibtpms *s, const char *label,
                                  const uint8_t *in, size_t in_len,
                                  uint8_t **out, Error **errp)
{
    g_autoptr(QCryptoAead) aead = NULL;
    const uint8_t *ct = in + TPM_LIBTPMS_NONCE_LEN;
    size_t len;
    uint8_t *buf;

    if (in_len < TPM_LIBTPMS_MIGRATION_KEY_OVERHEAD) {
        error_setg(errp, "sealed state '%s' of %zu octets is too short",
                   label, in_len);
        return -EINVAL;
    }
    len = in_len - TPM_LIBTPMS_MIGRATION_KEY_OVERHEAD;
    aead = qcrypto_aead_new(QCRYPTO_AEAD_ALGO_AES_256_GCM, s->migration_key,
                            TPM_LIBTPMS_MIGRATION_KEY_LEN, errp);
    if (!aead) {
        return -EIO;
    }
    buf = g_malloc(MAX(len, 1));
    if (qcrypto_aead_decrypt(aead, in, TPM_LIBTPMS_NONCE_LEN,
                             (const uint8_t *)label, strlen(label), ct, buf,
                             len, ct + len, TPM_LIBTPMS_TAG_LEN, NULL) < 0) {
        g_free(buf);
        error_setg(errp, "sealed state '%s' fails authentication: it was "
                   "changed, or sealed with another migration key", label);
        return -EBADMSG;
    }
    *out = buf;
    return 0;
}

/* Option migration-key: the data of secret @id, 32 octets */
static int tpm_libtpms_read_migration_key(TPMLibtpms *s, const char *id,
                                          Error **errp)
{
    uint8_t *key;
    size_t len;

    if (qcrypto_secret_lookup(id, &key, &len, errp) < 0) {
        error_prepend(errp, "migration-key: ");
        return -1;
    }
    if (len != TPM_LIBTPMS_MIGRATION_KEY_LEN) {
        error_setg(errp, "migration-key: secret '%s' has %zu octets, not "
                   "%d: it is an AES-256 key (format=base64 gives one "
                   "from 32 random octets)", id, len,
                   TPM_LIBTPMS_MIGRATION_KEY_LEN);
        qcrypto_memwipe_free(key, len);
        return -1;
    }
    s->migration_key = key;
    return 0;
}

/*
 * An encrypted image keeps the TPM's state encrypted: its copies in the
 * migration stream and in a snapshot's VM state are sealed too, with the
 * image's keys (nvstore_state_seal()), which the destination has.  Of an
 * image that is not encrypted, with option migration-key if it is set.
 */
static int tpm_libtpms_mig_seal(TPMLibtpms *s)
{
    bool image = nvstore_is_encrypted(s->blk);
    Error *err = NULL;
    int i, ret;

    s->mig_seal = image ? TPM_LIBTPMS_SEAL_IMAGE :
                  s->migration_key ? TPM_LIBTPMS_SEAL_MIGRATION_KEY :
                  TPM_LIBTPMS_SEAL_NONE;
    if (s->mig_seal == TPM_LIBTPMS_SEAL_NONE) {
        return 0;
    }
    for (i = 0; i < TPM_LIBTPMS_NB_BLOBS; i++) {
        TPMLibtpmsMigBlob *m = &s->mig[i];
        g_autofree char *label = tpm_libtpms_mig_label(i);
        uint8_t *sealed = NULL;

        if (!m->buffer) {
            continue;
        }
        if (image) {
            ret = nvstore_state_seal(s->blk, label, m->buffer, m->size,
                                     &sealed, &err);
            /* 0 (not encrypted) cannot be: the image said it is */
            assert(ret != 0);
            ret = ret < 0 ? ret : 0;
        } else {
            ret = tpm_libtpms_key_seal(s, label, m->buffer, m->size, &sealed,
                                       &err);
        }
        if (ret < 0) {
            error_prepend(&err, "tpm-libtpms: cannot seal the TPM state: ");
            error_report_err(err);
            return ret;
        }
        qcrypto_memwipe_free(m->buffer, m->size);
        m->buffer = sealed;
        m->size += image ? NVSTORE_STATE_SEAL_OVERHEAD :
                           TPM_LIBTPMS_MIGRATION_KEY_OVERHEAD;
    }
    return 0;
}

/*
 * The incoming state, unsealed: it must be sealed for this image if the
 * image is encrypted, and authenticate.  Fails before anything of it is
 * used, so that the image's state stays as it is.
 */
static int tpm_libtpms_mig_unseal(TPMLibtpms *s)
{
    bool image = nvstore_is_encrypted(s->blk);
    Error *err = NULL;
    int i, ret;

    switch (s->mig_seal) {
    case TPM_LIBTPMS_SEAL_NONE:
        if (image || s->migration_key) {
            error_report("tpm-libtpms: the incoming TPM state is in the "
                         "clear, and %s: refusing it", image ?
                         "its image is encrypted" : "migration-key is set");
            return -EINVAL;
        }
        return 0;
    case TPM_LIBTPMS_SEAL_IMAGE:
        break;
    case TPM_LIBTPMS_SEAL_MIGRATION_KEY:
        if (!s->migration_key) {
            error_report("tpm-libtpms: the incoming TPM state is sealed "
                         "with a migration key, and migration-key is not "
                         "set");
            return -EINVAL;
        }
        break;
    default:
        error_report("tpm-libtpms: the incoming TPM state is sealed in an "
                     "unknown way (%u)", s->mig_seal);
        return -EINVAL;
    }
    for (i = 0; i < TPM_LIBTPMS_NB_BLOBS; i++) {
        TPMLibtpmsMigBlob *m = &s->mig[i];
        g_autofree char *label = tpm_libtpms_mig_label(i);
        uint8_t *data = NULL;

        if (!m->size) {
            continue;
        }
        if (s->mig_seal == TPM_LIBTPMS_SEAL_IMAGE) {
            ret = nvstore_state_unseal(s->blk, label, m->buffer, m->size,
                                       &data, &err);
        } else {
            ret = tpm_libtpms_key_unseal(s, label, m->buffer, m->size, &data,
                                         &err);
        }
        if (ret < 0) {
            error_prepend(&err, "tpm-libtpms: the incoming TPM state is "
                          "refused: ");
            error_report_err(err);
            return -EINVAL;
        }
        g_free(m->buffer);
        m->buffer = data;
        m->size -= s->mig_seal == TPM_LIBTPMS_SEAL_IMAGE ?
                   NVSTORE_STATE_SEAL_OVERHEAD :
                   TPM_LIBTPMS_MIGRATION_KEY_OVERHEAD;
    }
    return 0;
}

/* The state to carry, in the clear, into @s->mig */
static int tpm_libtpms_mig_gather(TPMLibtpms *s)
{
    int i;

    QEMU_LOCK_GUARD(&s->lib_lock);
    if (!s->running) {
        return tpm_libtpms_save_durable(s);
    }

    for (i = 0; i < TPM_LIBTPMS_NB_BLOBS; i++) {
        unsigned char *buf = NULL;
        uint32_t len = 0;
        TPM_RESULT res;

        res = TPMLIB_GetState(tpm_libtpms_state_types[i], &buf, &len);
        if (res != TPM_SUCCESS) {
            /* Absent blobs (savestate of a TPM 2.0) are not an error */
            if (i == TPM_LIBTPMS_PERMALL) {
                error_report("tpm-libtpms: could not get the %s state: 0x%x",
                             tpm_libtpms_blob_names[i], res);
                tpm_libtpms_mig_reset(s);
                return -EIO;
            }
            continue;
        }
        s->mig[i].buffer = g_memdup2(buf, len);
        s->mig[i].size = len;
        qcrypto_memwipe(buf, len);
        free(buf);
        trace_tpm_libtpms_get_state(tpm_libtpms_blob_names[i], len);
    }
    return 0;
}

static int tpm_libtpms_pre_save(void *opaque)
{
    TPMLibtpms *s = opaque;
    int ret;

    trace_tpm_libtpms_pre_save();

    tpm_backend_finish_sync(TPM_BACKEND(s));
    tpm_libtpms_mig_reset(s);
    s->mig_tpm_version = s->tpm_version;

    ret = tpm_libtpms_mig_gather(s);
    if (ret >= 0) {
        ret = tpm_libtpms_mig_seal(s);
    }
    if (ret < 0) {
        tpm_libtpms_mig_reset(s);
    }
    return ret;
}

static int tpm_libtpms_post_save(void *opaque)
{
    tpm_libtpms_mig_reset(opaque);
    return 0;
}

static int tpm_libtpms_post_load(void *opaque, int version_id)
{
    TPMLibtpms *s = opaque;
    TPMLibtpmsMigBlob *perm = &s->mig[TPM_LIBTPMS_PERMALL];
    TPMLibtpmsMigBlob *save = &s->mig[TPM_LIBTPMS_SAVESTATE];
    Error *err = NULL;
    int ret = 0;

    trace_tpm_libtpms_post_load();

    if (s->mig_tpm_version != s->tpm_version) {
        error_report("tpm-libtpms: the incoming TPM state is of another TPM "
                     "version");
        ret = -EINVAL;
        goto out;
    }
    ret = tpm_libtpms_mig_unseal(s);
    if (ret < 0) {
        goto out;
    }
    if (!perm->size) {
        error_report("tpm-libtpms: the incoming TPM state has no permanent "
                     "state");
        ret = -EINVAL;
        goto out;
    }

    /*
     * The incoming state replaces the image's.  It cannot be written yet
     * (the node is inactive, or drained by loadvm); the "running" VM
     * state change handler writes it.  volatilestate goes to libtpms
     * only, never to the image.
     */
    WITH_QEMU_LOCK_GUARD(&s->blob_lock) {
        tpm_libtpms_set_blob(&s->blobs[TPM_LIBTPMS_PERMALL],
                             g_bytes_new(perm->buffer, perm->size));
        tpm_libtpms_set_blob(&s->blobs[TPM_LIBTPMS_SAVESTATE],
                             save->size ?
                             g_bytes_new(save->buffer, save->size) : NULL);
        tpm_libtpms_set_blob(&s->blobs[TPM_LIBTPMS_VOLATILE], NULL);
    }
    s->blobs_loaded = true;
    s->probe_on_disk = true;
    qatomic_set(&s->nv_failed, false);

    if (tpm_libtpms_start(s, true, &err) < 0) {
        error_prepend(&err, "tpm-libtpms: ");
        error_report_err(err);
        ret = -EIO;
    }

out:
    tpm_libtpms_mig_reset(s);
    return ret;
}

static const VMStateDescription vmstate_tpm_libtpms = {
    .name = "tpm-libtpms",
    .version_id = 0,
    .pre_save = tpm_libtpms_pre_save,
    .post_save = tpm_libtpms_post_save,
    .post_load = tpm_libtpms_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT8(mig_tpm_version, TPMLibtpms),
        VMSTATE_UINT8(mig_seal, TPMLibtpms),
        VMSTATE_UINT32(mig[TPM_LIBTPMS_PERMALL].size, TPMLibtpms),
        VMSTATE_VBUFFER_ALLOC_UINT32(mig[TPM_LIBTPMS_PERMALL].buffer,
                                     TPMLibtpms, 0, 0,
                                     mig[TPM_LIBTPMS_PERMALL].size),
        VMSTATE_UINT32(mig[TPM_LIBTPMS_VOLATILE].size, TPMLibtpms),
        VMSTATE_VBUFFER_ALLOC_UINT32(mig[TPM_LIBTPMS_VOLATILE].buffer,
                                     TPMLibtpms, 0, 0,
                                     mig[TPM_LIBTPMS_VOLATILE].size),
        VMSTATE_UINT32(mig[TPM_LIBTPMS_SAVESTATE].size, TPMLibtpms),
        VMSTATE_VBUFFER_ALLOC_UINT32(mig[TPM_LIBTPMS_SAVESTATE].buffer,
                                     TPMLibtpms, 0, 0,
                                     mig[TPM_LIBTPMS_SAVESTATE].size),
        VMSTATE_END_OF_LIST()
    }
};

/* ---- Creation ------------------------------------------------------------ */

static int tpm_libtpms_open_drive(TPMLibtpms *s, const char *drive,
                                  Error **errp)
{
    ERRP_GUARD();
    BlockBackend *blk = blk_by_name(drive);
    g_auto(GStrv) names = NULL;

    if (blk) {
        if (blk_get_attached_dev(blk)) {
            error_setg(errp, "Drive '%s' is already in use by a device",
                       drive);
            return -1;
        }
        blk_ref(blk);
    } else {
        BlockDriverState *bs = bdrv_lookup_bs(NULL, drive, NULL);

        if (!bs) {
            error_setg(errp, "Drive or node '%s' not found", drive);
            return -1;
        }
        blk = blk_new(qemu_get_aio_context(), 0, BLK_PERM_ALL);
        /* Else inactivating the node for migration fails */
        blk_set_force_allow_inactivate(blk);
        if (blk_insert_bs(blk, bs, errp) < 0) {
            blk_unref(blk);
            return -1;
        }
    }
    s->blk = blk;

    /*
     * Other users of the nvstore node (the blob nodes of UEFI variables,
     * say) write it too: the node lets each blob have one writer, and the
     * TPM claims its own
     */
    if (blk_set_perm(blk, BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE,
                     BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE |
                     BLK_PERM_WRITE_UNCHANGED, errp) < 0) {
        return -1;
    }
    /* finish_sync() may wait for a commit inside a drained section */
    blk_set_disable_request_queuing(blk, true);

    /* Fails if it is no nvstore node */
    names = nvstore_blob_list(blk, errp);
    if (!names) {
        error_prepend(errp, "Drive '%s': ", drive);
        return -1;
    }
    return 0;
}

static int tpm_libtpms_open(TPMLibtpms *s, QemuOpts *opts, Error **errp)
{
    ERRP_GUARD();
    const char *drive = qemu_opt_get(opts, "drive");
    const char *version_str = qemu_opt_get(opts, "version");
    const char *migration_key = qemu_opt_get(opts, "migration-key");
    uint32_t libver = TPMLIB_GetVersion();
    g_autofree char *who = NULL;
    int version;
    TPM_RESULT res;
    int i;

    /*
     * libtpms keeps its state in global variables, so there can be one
     * instance; system/tpm.c allows one TPM backend per process and
     * refuses a second before creating it ("Only one TPM is allowed.")
     */
    assert(!tpm_libtpms_instance);
    if (libver < TPM_LIBTPMS_MIN_VERSION) {
        error_setg(errp, "libtpms %u.%u.%u is too old: version 0.9.0 or "
                   "newer is required", (libver >> 16) & 0xff,
                   (libver >> 8) & 0xff, libver & 0xff);
        return -1;
    }
    if (!drive) {
        error_setg(errp, "Parameter 'drive' is missing");
        return -1;
    }
    if (migration_key && tpm_libtpms_read_migration_key(s, migration_key,
                                                        errp) < 0) {
        return -1;
    }
    version = !version_str ? TPM_LIBTPMS_VERSION_2_0 :
        qapi_enum_parse(&TpmLibtpmsVersion_lookup, version_str, -1, NULL);
    switch (version) {
    case TPM_LIBTPMS_VERSION_1_2:
        s->tpm_version = TPM_VERSION_1_2;
        s->lib_version = TPMLIB_TPM_VERSION_1_2;
        break;
    case TPM_LIBTPMS_VERSION_2_0:
        s->tpm_version = TPM_VERSION_2_0;
        s->lib_version = TPMLIB_TPM_VERSION_2;
        break;
    default:
        error_setg(errp, "Parameter 'version' expects '%s' or '%s'",
                   TpmLibtpmsVersion_str(TPM_LIBTPMS_VERSION_1_2),
                   TpmLibtpmsVersion_str(TPM_LIBTPMS_VERSION_2_0));
        return -1;
    }

    if (tpm_libtpms_open_drive(s, drive, errp) < 0) {
        return -1;
    }

    /* The names swtpm uses in its state directories */
    who = g_strdup_printf("TPM '%s'", qemu_opts_id(opts));
    for (i = 0; i < TPM_LIBTPMS_NB_BLOBS; i++) {
        s->blobs[i].image_name =
            g_strdup_printf("%s-00.%s",
                            s->tpm_version == TPM_VERSION_2_0 ? "tpm2" : "tpm",
                            s->blobs[i].name);
        if (nvstore_blob_claim(s->blk, s->blobs[i].image_name, who,
                               errp) < 0) {
            error_prepend(errp, "Drive '%s': ", drive);
            return -1;
        }
        s->blobs[i].claimed = true;
    }

    WITH_QEMU_LOCK_GUARD(&s->lib_lock) {
        res = TPMLIB_ChooseTPMVersion(s->lib_version);
        if (res == TPM_SUCCESS) {
            res = TPMLIB_RegisterCallbacks(&tpm_libtpms_callbacks);
        }
        s->buffer_size = TPMLIB_SetBufferSize(0, NULL, NULL);
    }
    if (res != TPM_SUCCESS) {
        error_setg(errp, "could not initialise libtpms: 0x%x", res);
        return -1;
    }

    /* On an incoming migration the state comes with the migration stream */
    if (!runstate_check(RUN_STATE_INMIGRATE) &&
        tpm_libtpms_load_blobs(s, errp) < 0) {
        error_prepend(errp, "Drive '%s': ", drive);
        return -1;
    }

    s->options->drive = g_strdup(drive);
    s->options->has_version = version_str != NULL;
    s->options->version = version;
    s->options->migration_key = g_strdup(migration_key);
    tpm_libtpms_instance = s;
    trace_tpm_libtpms_open(drive, libver);
    return 0;
}

static TPMBackend *tpm_libtpms_create(QemuOpts *opts)
{
    TPMBackend *tb = TPM_BACKEND(object_new(TYPE_TPM_LIBTPMS));
    Error *err = NULL;

    if (tpm_libtpms_open(TPM_LIBTPMS(tb), opts, &err) < 0) {
        error_prepend(&err, "tpm-libtpms: ");
        error_report_err(err);
        object_unref(OBJECT(tb));
        return NULL;
    }

    return tb;
}

static const QemuOptDesc tpm_libtpms_cmdline_opts[] = {
    TPM_STANDARD_CMDLINE_OPTS,
    {
        .name = "drive",
        .type = QEMU_OPT_STRING,
        .help = "ID or node name of the nvstore node that keeps the state",
    },
    {
        .name = "version",
        .type = QEMU_OPT_STRING,
        .help = "TPM version: 2-0 (default) or 1-2",
    },
    {
        .name = "migration-key",
        .type = QEMU_OPT_STRING,
        .help = "ID of a secret of 32 octets that seals the TPM state in "
                "migration streams and snapshots, when the image is not "
                "encrypted",
    },
    { /* end of list */ },
};

static void tpm_libtpms_inst_init(Object *obj)
{
    TPMLibtpms *s = TPM_LIBTPMS(obj);
    int i;

    s->options = g_new0(TPMLibtpmsOptions, 1);
    s->tpm_version = TPM_VERSION_2_0;
    s->lib_version = TPMLIB_TPM_VERSION_2;
    qemu_mutex_init(&s->lib_lock);
    qemu_mutex_init(&s->blob_lock);
    for (i = 0; i < TPM_LIBTPMS_NB_BLOBS; i++) {
        s->blobs[i].name = tpm_libtpms_blob_names[i];
        s->blobs[i].persist = i != TPM_LIBTPMS_VOLATILE;
    }
    s->vm_change =
        qemu_add_vm_change_state_handler(tpm_libtpms_vm_state_change, s);
    vmstate_register_any(NULL, &vmstate_tpm_libtpms, obj);
}

static void tpm_libtpms_inst_finalize(Object *obj)
{
    TPMLibtpms *s = TPM_LIBTPMS(obj);
    int i;

    vmstate_unregister(NULL, &vmstate_tpm_libtpms, obj);
    qemu_del_vm_change_state_handler(s->vm_change);

    /* TPMLIB_Terminate() stores nothing; the VM stop handler flushed */
    WITH_QEMU_LOCK_GUARD(&s->lib_lock) {
        tpm_libtpms_terminate(s);
    }
    if (tpm_libtpms_instance == s) {
        tpm_libtpms_instance = NULL;
    }

    /* Allocated by libtpms with realloc() */
    free(s->rbuf);
    for (i = 0; i < TPM_LIBTPMS_NB_BLOBS; i++) {
        if (s->blobs[i].claimed) {
            nvstore_blob_release(s->blk, s->blobs[i].image_name);
        }
        g_clear_pointer(&s->blobs[i].data, g_bytes_unref);
        g_free(s->blobs[i].image_name);
    }
    tpm_libtpms_mig_reset(s);
    if (s->blk) {
        blk_unref(s->blk);
    }
    qcrypto_memwipe_free(s->migration_key, TPM_LIBTPMS_MIGRATION_KEY_LEN);
    qapi_free_TPMLibtpmsOptions(s->options);
    qemu_mutex_destroy(&s->blob_lock);
    qemu_mutex_destroy(&s->lib_lock);
}

static void tpm_libtpms_class_init(ObjectClass *klass, void *data)
{
    TPMBackendClass *tbc = TPM_BACKEND_CLASS(klass);

    tbc->type = TPM_TYPE_LIBTPMS;
    tbc->opts = tpm_libtpms_cmdline_opts;
    tbc->desc = "In-process libtpms TPM with its state in an nvstore node";
    tbc->create = tpm_libtpms_create;
    tbc->startup_tpm = tpm_libtpms_startup_tpm;
    tbc->cancel_cmd = tpm_libtpms_cancel_cmd;
    tbc->get_tpm_established_flag = tpm_libtpms_get_tpm_established_flag;
    tbc->reset_tpm_established_flag = tpm_libtpms_reset_tpm_established_flag;
    tbc->get_tpm_version = tpm_libtpms_get_tpm_version;
    tbc->get_buffer_size = tpm_libtpms_get_buffer_size;
    tbc->get_tpm_options = tpm_libtpms_get_tpm_options;
    tbc->handle_request = tpm_libtpms_handle_request;
    tbc->complete_request = tpm_libtpms_complete_request;
}

static const TypeInfo tpm_libtpms_info = {
    .name = TYPE_TPM_LIBTPMS,
    .parent = TYPE_TPM_BACKEND,
    .instance_size = sizeof(TPMLibtpms),
    .class_init = tpm_libtpms_class_init,
    .instance_init = tpm_libtpms_inst_init,
    .instance_finalize = tpm_libtpms_inst_finalize,
};

static void tpm_libtpms_register(void)
{
    type_register_static(&tpm_libtpms_info);
}

type_init(tpm_libtpms_register)
