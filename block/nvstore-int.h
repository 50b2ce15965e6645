/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * nvstore driver internals: the state of an open node and the functions
 * its files share, grouped by file.
 *
 *   nvstore.c          driver glue: the BlockDriver, options, open, close,
 *                      reopen, create, info, amend, measure
 *   nvstore-load.c     reading the image: header, slots, blob data, which
 *                      slot holds the committed state
 *   nvstore-commit.c   the update protocol: placement in free space,
 *                      growth, writing a new generation, the close
 *                      record; it knows nothing of blob nodes
 *   nvstore-blob.c     a blob as a node's data: driver nvstore-blob, a
 *                      write-back cache of the blob, and the group
 *                      commit that takes it along
 *   nvstore-writers.c  who writes which blob: one writer per blob, and
 *                      the write-back caches a commit takes along
 *   nvstore-api.c      the device API of include/block/nvstore.h
 *   nvstore-check.c    qemu-img check and repair
 *   nvstore-salvage.c  finding the committed state of a damaged image
 *   nvstore-keyslots.c the key slots: read, opened with a secret, changed
 *   nvstore-crypt.c    encryption: wrapping the master key in a key
 *                      slot, derived keys, the blobs' encryption, the
 *                      directory's and the close record's authentication
 *
 * The on-disk layout is in nvstore-format.h, the directory model (no
 * I/O) in nvstore-dir.h, the specification in docs/interop/nvstore.rst.
 */

#ifndef BLOCK_NVSTORE_INT_H
#define BLOCK_NVSTORE_INT_H

#include "block/block-io.h"
#include "block/block_int.h"
#include "block/qdict.h"
#include "block/nvstore.h"
#include "qemu/coroutine.h"
#include "nvstore-dir.h"
#include "nvstore-format.h"

#define NVSTORE_OPT_DELETE_BLOB "delete-blob"
#define NVSTORE_OPT_CONTAINER   "container"
#define NVSTORE_OPT_MIN_GENERATION "min-generation"
#define NVSTORE_OPT_WIPE_FREED "wipe-freed"
#define NVSTORE_OPT_IMAGE_ID "image-id"
#define NVSTORE_OPT_KEY_SECRET  "encrypt.key-secret"
#define NVSTORE_OPT_ITER_TIME   "encrypt.iter-time"
#define NVSTORE_OPT_NEW_SECRET  "encrypt.new-secret"
#define NVSTORE_OPT_OLD_SECRET  "encrypt.old-secret"
#define NVSTORE_OPT_REKEY       "encrypt.rekey"

/*
 * nvstore_options_visitor:
 *
 * Take the options @keys (NULL-terminated; a key ending in '.' names
 * every option it prefixes) out of a node's flat @options, into a
 * visitor of the QAPI type of the driver's options (NvstoreOptions,
 * NvstoreBlobOptions).  The rest, the child's options or unknown ones,
 * stays for the block layer.
 */
static inline Visitor *
nvstore_options_visitor(QDict *options, const char *const *keys,
                        Error **errp)
{
    g_autoptr(QDict) own = qdict_new();
    const QDictEntry *e, *next;
    const char *const *k;

    for (e = qdict_first(options); e; e = next) {
        next = qdict_next(options, e);
        for (k = keys; *k; k++) {
            if (g_str_has_suffix(*k, ".") ? g_str_has_prefix(e->key, *k) :
                !strcmp(e->key, *k)) {
                qdict_put_obj(own, e->key, qobject_ref(e->value));
                qdict_del(options, e->key);
                break;
            }
        }
    }
    return qobject_input_visitor_new_flat_confused(own, errp);
}

/* Default PBKDF2 cost of a new key slot, as LUKS's */
#define NVSTORE_DEFAULT_ITER_TIME_MS 2000

/* The keys of an encrypted image (nvstore-crypt.c) */
typedef struct NvstoreCrypt NvstoreCrypt;

/* A blob as a node's data, cached in memory (nvstore-blob.c) */
typedef struct NvstoreBlobView NvstoreBlobView;

typedef struct BDRVNvstoreState {
    /*
     * Serialises commits, and every use of @dir by a request that may
     * yield: @dir is replaced by each commit
     */
    CoMutex lock;

    /*
     * The committed directory, of generation @gen, in slot @slot, at
     * @dir_offset (@dir_length bytes).  NULL only while a node opened for
     * qemu-img check (BDRV_O_CHECK) has no valid slot: no blob can then
     * be read or written.
     */
    NvstoreDir *dir;
    uint64_t gen;
    int slot;
    uint64_t dir_offset;
    uint64_t dir_length;
    uint32_t dir_crc32c;

    /*
     * This node committed @gen, and the close record does not hold it
     * yet: closing or inactivating the node writes it
     */
    bool record_due;

    /*
     * Generation of the next commit: above every generation attempted,
     * valid or not, so that a torn commit's data is never taken for the
     * next one's
     */
    uint64_t next_gen;

    /*
     * Option "min-generation": an image whose committed generation is
     * below it is refused, at open and at activation (rollback)
     */
    uint64_t min_gen;

    /*
     * The image is encrypted (NVSTORE_INCOMPAT_ENCRYPTED); @crypt holds
     * its keys, NULL if no secret opened it: then nothing can be read or
     * written, and the directory, unauthenticated, is only shown
     */
    bool encrypted;
    NvstoreCrypt *crypt;

    /*
     * The header as read (without its checksum; its image-id at
     * offsetof(NvstoreHeader, image_id)), and option "image-id": an
     * image with another is refused, at open and at activation
     */
    uint8_t header_ad[NVSTORE_HEADER_AD_LEN];
    bool has_want_id;
    uint8_t want_id[NVSTORE_IMAGE_ID_LEN];

    /*
     * Option "wipe-freed": each commit zeroes what the directory before
     * the committed one referenced, @prev_used, and neither the
     * committed directory nor the new one does (@prev_used NULL: not
     * known, as after open; then all that they do not reference).  See
     * "Freed space" in docs/interop/nvstore.rst.
     */
    bool wipe_freed;
    GArray *prev_used;

    /*
     * The secret that opened the image (option encrypt.key-secret), and
     * other master keys that it also opens (NvstoreCrypt *): those that
     * an interrupted encrypt.rekey left.  A slot or close record that
     * authenticates under one of them is the replaced key's, not
     * tampering; it is not used.
     */
    char *key_secret;
    GPtrArray *old_crypts;

    /*
     * Commits write and flush their data before their directory and
     * slot (encrypt.rekey): a crash then leaves no slot whose directory
     * authenticates under one key and whose data is incomplete, which a
     * reader with the other key could not tell from tampering
     */
    bool data_first;
} BDRVNvstoreState;

/* A byte range [start, end) of the image */
typedef struct NvstoreRange {
    uint64_t start;
    uint64_t end;
} NvstoreRange;

/* ---- nvstore.c: driver glue ---------------------------------------------- */

extern BlockDriver bdrv_nvstore;

/**
 * nvstore_amend:
 * @bs: an nvstore node
 * @opts: what to change (BLOCKDEV_DRIVER_NVSTORE)
 * @force: unused
 * @errp: error object
 *
 * Apply @opts in one commit.  The coroutine version is the driver's
 * bdrv_co_amend; this wrapper serves qemu-img amend's QemuOpts path.
 *
 * Returns: 0 on success, a negative errno value on failure.
 */
int co_wrapper_mixed_bdrv_rdlock
nvstore_amend(BlockDriverState *bs, BlockdevAmendOptions *opts, bool force,
              Error **errp);
int coroutine_fn GRAPH_RDLOCK
nvstore_co_amend(BlockDriverState *bs, BlockdevAmendOptions *opts,
                 bool force, Error **errp);

/* ---- nvstore-move.c: moving the image to other storage ------------------- */

/**
 * nvstore_move_prepare:
 * @state: the reopen of an nvstore node
 * @errp: error object
 *
 * If @state sets the node's "file" to a node of other storage (not a
 * filter over the same), copy the image there, its header block last,
 * and flush it.  Called in the drained section of the reopen.
 *
 * Returns: 0 on success or if there is nothing to copy, a negative errno
 * value on failure.
 */
int GRAPH_UNLOCKED nvstore_move_prepare(BDRVReopenState *state, Error **errp);

/* ---- nvstore-load.c: reading the image ----------------------------------- */

/**
 * nvstore_image_size:
 *
 * Returns: the size of the image (the child), or a negative errno value
 * with @errp set.
 */
int64_t coroutine_mixed_fn GRAPH_RDLOCK
nvstore_image_size(BlockDriverState *bs, Error **errp);

/**
 * nvstore_read_header:
 *
 * Read and check the header: magic, checksum, incompatible features.
 */
int coroutine_mixed_fn GRAPH_RDLOCK
nvstore_read_header(BlockDriverState *bs, Error **errp);

/**
 * nvstore_read_slot:
 * @i: the slot
 * @file_size: the size of the image
 * @slot: set to the slot, in CPU byte order; all zeroes if it cannot be
 *        read or its magic or checksum is wrong
 * @dir: set to the slot's directory if it is valid, else to NULL
 *
 * Read slot @i and its directory, and check both.
 *
 * Returns: 0 if the slot is valid; -ENOENT if it was never written (no
 * slot magic, or generation 0); -EBADMSG if its directory fails
 * authentication (its checksums hold: someone without the key wrote
 * it; the error code of an AEAD whose tag does not verify, as in
 * Linux's crypto API); another negative errno value, with @errp set, if
 * it is damaged or cannot be read.  For -ENOENT too @errp says why.
 */
int coroutine_mixed_fn GRAPH_RDLOCK
nvstore_read_slot(BlockDriverState *bs, int i, int64_t file_size,
                  NvstoreSlot *slot, NvstoreDir **dir, Error **errp);

/**
 * nvstore_read_entry:
 *
 * Read the data of usable entry @e and check its checksum.  *@data is
 * freed by the caller.
 */
int coroutine_mixed_fn GRAPH_RDLOCK
nvstore_read_entry(BlockDriverState *bs, NvstoreEntry *e, uint8_t **data,
                   size_t *len, Error **errp);

/**
 * nvstore_set_committed:
 * @slot: the committed slot, in CPU byte order
 *
 * Make @dir, of the commit that slot @i records, the committed state;
 * @s takes @dir.
 */
void nvstore_set_committed(BDRVNvstoreState *s, NvstoreDir *dir, int i,
                           const NvstoreSlot *slot);

/**
 * nvstore_load:
 *
 * Find the committed state (the valid, complete slot of the highest
 * generation) and make it the node's: @dir, @gen, @slot, @next_gen.
 * On failure, the state is unchanged.
 */
int coroutine_mixed_fn GRAPH_RDLOCK
nvstore_load(BlockDriverState *bs, Error **errp);

/**
 * nvstore_load_state:
 *
 * nvstore_load() without reading the header: for qemu-img check, which
 * reports a damaged header and the committed state apart.  When no
 * state can be read, the error says so, and its hint what each slot
 * holds.
 */
int coroutine_mixed_fn GRAPH_RDLOCK
nvstore_load_state(BlockDriverState *bs, Error **errp);

/**
 * nvstore_load_state_why:
 *
 * nvstore_load_state(), with what each slot holds, a line each, in @why
 * instead of in the error's hint: for qemu-img check, which prints it.
 */
int coroutine_mixed_fn GRAPH_RDLOCK
nvstore_load_state_why(BlockDriverState *bs, GString *why, Error **errp);

/**
 * nvstore_read_close_record:
 * @rec: set to the close record, in CPU byte order, if it holds
 *
 * Read the close record, and on an encrypted image whose key is open
 * check its authentication code.
 *
 * Returns: 0 if it holds; -ENOENT if there is none (never written, or
 * zeroed); -EBADMSG if its checksum holds and its authentication
 * code does not; another negative errno value if it is damaged or
 * cannot be read.  For -ENOENT too @errp says why.
 */
int coroutine_mixed_fn GRAPH_RDLOCK
nvstore_read_close_record(BlockDriverState *bs, NvstoreSlot *rec,
                          Error **errp);

/**
 * nvstore_read_slot_raw:
 * @i: the slot
 * @slot: set to slot @i, in CPU byte order, if its magic and checksum hold
 *
 * Returns: 0 if slot @i has its magic and its checksum holds, whatever
 * it points to; -ENOENT if it was never written; another negative errno
 * value if it is damaged or cannot be read.  (For salvage: which
 * generations were attempted.)
 */
int coroutine_mixed_fn GRAPH_RDLOCK
nvstore_read_slot_raw(BlockDriverState *bs, int i, NvstoreSlot *slot,
                      Error **errp);

/* ---- nvstore-commit.c: the update protocol ------------------------------- */

/**
 * nvstore_close_record:
 * @bs: an nvstore node
 *
 * Record that the committed generation is complete, in the close record
 * (one write and one flush), if this node committed it and the close
 * record does not hold it yet: when the node is closed or inactivated.  On
 * failure the image stays as it was, and only loses the record's
 * protection (docs/interop/nvstore.rst, "Opening an image").
 *
 * Returns: 0 on success (or when there is nothing to write), a negative
 * errno value on failure.
 */
int co_wrapper_mixed_bdrv_rdlock nvstore_close_record(BlockDriverState *bs);
int coroutine_fn GRAPH_RDLOCK nvstore_co_close_record(BlockDriverState *bs);

/**
 * nvstore_used_ranges:
 * @unknown: set if an unusable entry's placement cannot be decoded (the
 *           space it uses, if any, is unknown)
 *
 * Returns: the ranges the committed directory references, sorted by
 * start: the metadata blocks, the directory and every extent, of usable
 * and unusable entries alike.  Everything else is free.
 */
GArray *nvstore_used_ranges(BDRVNvstoreState *s, bool *unknown);

/**
 * nvstore_co_commit_updates:
 *
 * Commit @updates, and only them, in one commit of a new generation
 * (see nvstore_blob_commit() for what an update is), with @s->lock
 * held.  Knows nothing of blob nodes: see nvstore_co_commit_locked().
 */
int coroutine_fn GRAPH_RDLOCK
nvstore_co_commit_updates(BlockDriverState *bs,
                          const NvstoreBlobUpdate *updates, size_t n,
                          Error **errp);

/* ---- nvstore-blob.c: a blob as a node's data, the group commit -------- */

/**
 * nvstore_co_commit_locked:
 *
 * Commit @updates (see nvstore_blob_commit()) with @s->lock held, and
 * with them the dirty blob of every blob node of the image (group
 * commit); refuse an update of a blob that a blob node writes.  With
 * @updates NULL, commit only the dirty blobs, if any.
 */
int coroutine_fn GRAPH_RDLOCK
nvstore_co_commit_locked(BlockDriverState *bs,
                         const NvstoreBlobUpdate *updates, size_t n,
                         Error **errp);

/**
 * nvstore_co_commit:
 *
 * Take @s->lock and nvstore_co_commit_locked().
 */
int coroutine_fn GRAPH_RDLOCK
nvstore_co_commit(BlockDriverState *bs, const NvstoreBlobUpdate *updates,
                  size_t n, Error **errp);

/* ---- nvstore-writers.c: one writer per blob ----------------------------- */

/**
 * nvstore_claim:
 * @store: an nvstore node
 * @blob: a blob's name
 * @who: the writer, for error messages ("node 'vars0'", "TPM 'tpm0'")
 * @view: the writer's write-back cache, or NULL
 *
 * Register the writer of @blob.  Main loop only.
 *
 * Returns: false, with @errp set, if @blob has a writer already.
 */
bool nvstore_claim(BlockDriverState *store, const char *blob,
                   const char *who, NvstoreBlobView *view, Error **errp);

/**
 * nvstore_release:
 *
 * @blob has no writer any more.  Main loop only.
 */
void nvstore_release(BlockDriverState *store, const char *blob);

/**
 * nvstore_view_writer:
 *
 * Returns: who writes @blob through a view (free it with g_free()), or
 * NULL if no view does.
 */
char *nvstore_view_writer(BlockDriverState *store, const char *blob);

/**
 * nvstore_for_each_view:
 *
 * Call @fn for the view of each writer of a blob of @store that has one,
 * with the registry locked: @fn must not yield or claim.
 */
void nvstore_for_each_view(BlockDriverState *store,
                           void (*fn)(NvstoreBlobView *view, void *opaque),
                           void *opaque);

/* ---- nvstore-salvage.c: an image without a committed state ------------- */

/**
 * nvstore_co_salvage:
 * @size: the size of the image
 *
 * For qemu-img check of an image without a committed state: report the
 * directories its data area holds and the one salvage would take; with
 * BDRV_FIX_ERRORS in @fix, make it the committed state (a corruption
 * fixed).
 *
 * Returns: true if the image now has a committed state.
 */
bool coroutine_fn GRAPH_RDLOCK
nvstore_co_salvage(BlockDriverState *bs, BdrvCheckResult *res,
                   BdrvCheckMode fix, int64_t size);

/* ---- nvstore-keyslots.c: the key slots of an encrypted image ---------- */

/**
 * nvstore_read_keyslots:
 * @ks: set to the key slots, as on disk
 */
int coroutine_mixed_fn GRAPH_RDLOCK
nvstore_read_keyslots(BlockDriverState *bs,
                      NvstoreKeySlot ks[NVSTORE_NB_KEYSLOTS], Error **errp);

/**
 * nvstore_has_keyslots:
 *
 * Returns: whether a key slot has its magic: the image is encrypted,
 * whatever its header (damaged, perhaps) says.
 */
bool coroutine_mixed_fn GRAPH_RDLOCK
nvstore_has_keyslots(BlockDriverState *bs);

/**
 * nvstore_open_keys:
 * @secret_id: the ID of a secret object that opens a key slot
 *
 * Read the key slots of an encrypted image and open the first that
 * @secret_id opens: @s->crypt.
 *
 * Returns: 0 on success; -EACCES if no key slot opens with the secret.
 */
int coroutine_mixed_fn GRAPH_RDLOCK
nvstore_open_keys(BlockDriverState *bs, const char *secret_id, Error **errp);

/**
 * nvstore_co_amend_keys:
 * @o: what to change (encrypt.new-secret, encrypt.old-secret,
 *     encrypt.iter-time)
 *
 * Add a key slot for the new secret, then clear those that the old one
 * opens, with @s->lock held.
 */
int coroutine_fn GRAPH_RDLOCK
nvstore_co_amend_keys(BlockDriverState *bs,
                      BlockdevNvstoreEncryptionAmend *o, Error **errp);

/* ---- nvstore-crypt.c: encryption ----------------------------------------- */

/**
 * nvstore_crypt_new:
 * @header_ad: the image's header, NVSTORE_HEADER_AD_LEN octets as on
 *             disk
 *
 * Returns: the keys of a new encrypted image, from a new random master
 * key, or NULL if this QEMU cannot encrypt.
 */
NvstoreCrypt *nvstore_crypt_new(const uint8_t *header_ad, Error **errp);

void nvstore_crypt_free(NvstoreCrypt *c);

/**
 * nvstore_crypt_same_master:
 *
 * Returns: whether @a and @b are keys of the same master key.
 */
bool nvstore_crypt_same_master(const NvstoreCrypt *a, const NvstoreCrypt *b);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(NvstoreCrypt, nvstore_crypt_free)

/**
 * nvstore_keyslot_make:
 * @secret_id: a secret object's ID
 * @iter_time_ms: how long opening the key slot should take, calibrated
 *                here
 * @ks: set to the key slot, as on disk
 *
 * Wrap the master key of @c in a new key slot that @secret_id opens.
 */
int nvstore_keyslot_make(NvstoreCrypt *c, const char *secret_id,
                         uint64_t iter_time_ms, NvstoreKeySlot *ks,
                         Error **errp);

/**
 * nvstore_keyslot_in_use:
 *
 * Returns: whether key slot @ks (as on disk) is in use (not all zeroes).
 */
bool nvstore_keyslot_in_use(const NvstoreKeySlot *ks);

/**
 * nvstore_keyslot_check:
 *
 * Returns: 0 if key slot @i, @ks, is well-formed (magic, checksum,
 * fields) and of the image whose header is @header_ad, else -EINVAL
 * (-ENOTSUP for an unknown KDF) with @errp set.
 */
int nvstore_keyslot_check(const NvstoreKeySlot *ks, int i,
                          const uint8_t *header_ad, Error **errp);

/**
 * nvstore_keyslot_open:
 * @crypt: set to the image's keys on success
 *
 * Unwrap the master key of key slot @i of the image whose header is
 * @header_ad with the secret @secret_id.
 *
 * Returns: 0 on success; -EACCES if the secret does not open the key
 * slot (or the key slot was tampered with); -EINVAL if it is corrupt, of
 * another image, or the secret cannot be read.
 */
int nvstore_keyslot_open(const NvstoreKeySlot *ks, int i,
                         const uint8_t *header_ad, const char *secret_id,
                         NvstoreCrypt **crypt, Error **errp);

/**
 * nvstore_crypt_seal_state:
 * @label: what @in is, bound into the result
 * @in: @len octets of device state
 * @out: set to the salt, the ciphertext and the tag: @len +
 *       NVSTORE_SEAL_SALT_LEN + NVSTORE_SEAL_TAG_LEN octets
 *
 * Seal device state with @c (see nvstore_state_seal()).
 */
bool nvstore_crypt_seal_state(NvstoreCrypt *c, const char *label,
                              const uint8_t *in, size_t len, uint8_t *out,
                              Error **errp);

/**
 * nvstore_crypt_unseal_state:
 * @in: what nvstore_crypt_seal_state() wrote, @in_len octets (at least
 *      NVSTORE_SEAL_SALT_LEN + NVSTORE_SEAL_TAG_LEN)
 * @out: set to the state if it authenticates
 *
 * Returns: 0, -EIO or -EBADMSG (it does not authenticate).
 */
int nvstore_crypt_unseal_state(NvstoreCrypt *c, const char *label,
                               const uint8_t *in, size_t in_len,
                               uint8_t *out, Error **errp);

/**
 * nvstore_crypt_seal:
 * @e: an entry, with its extent and realsize as committed
 * @in: the blob's data, e->extent.length octets
 * @out: set to the ciphertext (may be @in)
 *
 * Encrypt a blob's data for @e and set @e's attribute 'sealed'.
 */
bool nvstore_crypt_seal(NvstoreCrypt *c, NvstoreEntry *e,
                        const uint8_t *in, uint8_t *out, Error **errp);

/**
 * nvstore_crypt_unseal:
 * @e: a sealed entry with an extent
 * @buf: its data as read, decrypted in place
 *
 * Returns: 0 on success, -EIO if the data or the entry fail
 * authentication.
 */
int nvstore_crypt_unseal(NvstoreCrypt *c, NvstoreEntry *e, uint8_t *buf,
                         size_t len, Error **errp);

/**
 * nvstore_crypt_dir_mac:
 *
 * Compute into @mac the authentication code of directory @dir (its
 * encoding, @len octets) of generation @gen.
 */
bool nvstore_crypt_dir_mac(NvstoreCrypt *c, uint64_t gen,
                           const uint8_t *dir, size_t len,
                           uint8_t mac[NVSTORE_DIR_MAC_LEN], Error **errp);

/**
 * nvstore_crypt_dir_verify:
 *
 * Returns: true if @mac is the authentication code of directory @dir of
 * generation @gen; false with @errp set if not.
 */
bool nvstore_crypt_dir_verify(NvstoreCrypt *c, uint64_t gen,
                              const uint8_t *dir, size_t len,
                              const uint8_t *mac, Error **errp);

/**
 * nvstore_crypt_close_mac:
 * @rec: a close record, as on disk
 *
 * Compute into @mac the authentication code of close record @rec.
 */
bool nvstore_crypt_close_mac(NvstoreCrypt *c, const NvstoreSlot *rec,
                             uint8_t mac[NVSTORE_CLOSE_MAC_LEN],
                             Error **errp);

/**
 * nvstore_crypt_close_verify:
 *
 * Returns: true if @mac is the authentication code of close record @rec
 * (as on disk); false with @errp set if not.
 */
bool nvstore_crypt_close_verify(NvstoreCrypt *c, const NvstoreSlot *rec,
                                const uint8_t *mac, Error **errp);

/* ---- nvstore-check.c: qemu-img check ------------------------------------- */

int coroutine_fn GRAPH_RDLOCK
nvstore_co_check(BlockDriverState *bs, BdrvCheckResult *res,
                 BdrvCheckMode fix);

#endif /* BLOCK_NVSTORE_INT_H */
