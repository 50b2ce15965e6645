/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * nvstore device API: named, typed blobs in an nvstore image, reached
 * through the BlockBackend of a device or backend.
 *
 * Devices see names, types and bytes, never the on-disk format.  Every
 * call looks the blob up by name in the node's current directory, so a
 * caller keeps no pointer into the driver's state: the node may be closed
 * and re-opened underneath it (internal snapshot goto, cache
 * invalidation after migration).
 *
 * Each function nvstore_blob_X() may be called from the main loop
 * (outside coroutines, with the BQL) or from a coroutine; its coroutine
 * version nvstore_co_blob_X(), from a coroutine only.  The former are
 * generated (scripts/block-coroutine-wrapper.py).  They take the block
 * graph lock themselves, as the blk_*() functions do.  They fail with an
 * Error when the BlockBackend has no medium or its node is not an nvstore
 * node (filters above it are skipped).
 */

#ifndef BLOCK_NVSTORE_H
#define BLOCK_NVSTORE_H

#include "block/block-common.h"
#include "block/nvstore-types.h"

/**
 * NvstoreBlobAttr:
 * @name: the attribute's name (not "extent" or "realsize", which nvstore
 *        manages itself)
 * @value: the DER encoding of its one value; NULL for a flag
 * @len: the length of @value
 * @remove: true to remove the attribute (@value is ignored); removing an
 *          attribute the blob does not have is not an error
 *
 * An optional attribute of a blob, set or removed by an update.
 */
typedef struct NvstoreBlobAttr {
    const char *name;
    const uint8_t *value;
    size_t len;
    bool remove;
} NvstoreBlobAttr;

/**
 * NvstoreBlobUpdate:
 * @name: the blob's name
 * @remove: true to delete the blob (the other fields are ignored)
 * @type: the blob's type when it is created; an existing blob must have
 *        this type
 * @keep_data: true to keep the contents of an existing blob and change
 *             only its attributes (@data, @len and @realsize are ignored)
 * @data: the new contents
 * @len: their length
 * @realsize: the number of meaningful bytes (for type "tpm"), at most @len;
 *            used only when @has_realsize; type "tpm" defaults to @len
 * @has_realsize: whether @realsize is given
 * @attrs: attributes to set or remove, in order; the blob's other
 *         attributes are kept
 * @nb_attrs: how many
 *
 * One change of an atomic commit, see nvstore_blob_commit().
 */
typedef struct NvstoreBlobUpdate {
    const char *name;
    bool remove;
    const char *type;
    bool keep_data;
    const uint8_t *data;
    size_t len;
    uint64_t realsize;
    bool has_realsize;
    const NvstoreBlobAttr *attrs;
    size_t nb_attrs;
} NvstoreBlobUpdate;

/**
 * NvstoreBlobInfo:
 * @type: the blob's type
 * @size: the length of its contents
 * @realsize: the number of meaningful bytes, if @has_realsize
 * @has_realsize: whether the blob has a realsize
 * @attrs: the names of its optional attributes, sorted, NULL-terminated
 * @generation: the generation of the commit that wrote its contents; 0
 *              if they are in the directory (empty, or inline)
 * @encrypted: whether its contents are encrypted
 *
 * Free the contents with nvstore_blob_info_clear().
 */
typedef struct NvstoreBlobInfo {
    char *type;
    uint64_t size;
    uint64_t realsize;
    bool has_realsize;
    char **attrs;
    uint64_t generation;
    bool encrypted;
} NvstoreBlobInfo;

/**
 * nvstore_blob_info_clear:
 * @info: filled by nvstore_blob_get_info()
 *
 * Free what @info points to (not @info itself).
 */
void nvstore_blob_info_clear(NvstoreBlobInfo *info);

/**
 * nvstore_blob_commit:
 * @blk: a BlockBackend whose node is an nvstore node
 * @updates: the changes
 * @n: how many
 * @errp: error object
 *
 * Create, replace or delete the blobs of @updates in one atomic commit:
 * after a crash at any time, all of them have their old contents or all
 * have their new contents, and no other blob is affected.  Durable on
 * success.  Fails, changing nothing, if the node is read-only or
 * inactive, a name appears twice, a blob to replace is of another type or
 * cannot be used by this version, or a blob to delete does not exist.
 *
 * Returns: 0 on success, a negative errno value on failure.
 */
int coroutine_fn nvstore_co_blob_commit(BlockBackend *blk,
                                        const NvstoreBlobUpdate *updates,
                                        size_t n, Error **errp);
int co_wrapper_mixed nvstore_blob_commit(BlockBackend *blk,
                                         const NvstoreBlobUpdate *updates,
                                         size_t n, Error **errp);

/**
 * nvstore_blob_read:
 * @blk: a BlockBackend whose node is an nvstore node
 * @name: the blob's name
 * @data: set to its contents (free with g_free())
 * @len: set to their length
 * @errp: error object
 *
 * Read a whole blob, checking its checksum.
 *
 * Returns: 0 on success; -ENOENT if there is no such blob; another
 * negative errno value (-EIO for a checksum mismatch) on failure.
 */
int coroutine_fn nvstore_co_blob_read(BlockBackend *blk, const char *name,
                                      uint8_t **data, size_t *len,
                                      Error **errp);
int co_wrapper_mixed nvstore_blob_read(BlockBackend *blk, const char *name,
                                       uint8_t **data, size_t *len,
                                       Error **errp);

/**
 * nvstore_blob_get_info:
 * @blk: a BlockBackend whose node is an nvstore node
 * @name: the blob's name
 * @info: filled on success (free with nvstore_blob_info_clear())
 * @errp: error object
 *
 * Returns: 0 on success, -ENOENT if there is no such blob, -ENOTSUP if
 * this version cannot use it, another negative errno value on failure.
 */
int coroutine_fn nvstore_co_blob_get_info(BlockBackend *blk,
                                          const char *name,
                                          NvstoreBlobInfo *info, Error **errp);
int co_wrapper_mixed nvstore_blob_get_info(BlockBackend *blk,
                                           const char *name,
                                           NvstoreBlobInfo *info,
                                           Error **errp);

/**
 * nvstore_blob_get_attr:
 * @blk: a BlockBackend whose node is an nvstore node
 * @name: the blob's name
 * @attr: the name of one of its optional attributes
 * @value: set to the DER encoding of its value (free with g_free()), or
 *         to NULL for a flag
 * @len: set to the length of @value
 * @errp: error object
 *
 * Returns: 0 on success, -ENOENT if there is no such blob or attribute,
 * another negative errno value on failure.
 */
int coroutine_fn nvstore_co_blob_get_attr(BlockBackend *blk,
                                          const char *name, const char *attr,
                                          uint8_t **value, size_t *len,
                                          Error **errp);
int co_wrapper_mixed nvstore_blob_get_attr(BlockBackend *blk,
                                           const char *name,
                                           const char *attr, uint8_t **value,
                                           size_t *len, Error **errp);

/**
 * nvstore_blob_list:
 * @blk: a BlockBackend whose node is an nvstore node
 * @errp: error object
 *
 * Returns: the names of all blobs, usable or not, sorted (free with
 * g_strfreev()); NULL on failure.
 */
char ** coroutine_fn nvstore_co_blob_list(BlockBackend *blk, Error **errp);
char ** co_wrapper_mixed nvstore_blob_list(BlockBackend *blk, Error **errp);

/**
 * nvstore_blob_claim:
 * @blk: a BlockBackend whose node is an nvstore node
 * @name: a blob's name
 * @who: the writer, for error messages (e.g. "TPM 'tpm0'")
 * @errp: error object
 *
 * Become the only writer of blob @name of the node: another device, or a
 * blob node (nvstore-blob), that wants to write it is refused, with an
 * error naming @who.  A device that writes blobs shares the node's write
 * permission with the other users of the node, and claims its blobs.
 * Main loop only.
 *
 * Returns: 0 on success, -EBUSY if the blob has a writer already,
 * another negative errno value on failure.
 */
int nvstore_blob_claim(BlockBackend *blk, const char *name, const char *who,
                       Error **errp);

/**
 * nvstore_blob_release:
 * @blk: a BlockBackend whose node is an nvstore node
 * @name: a blob claimed with nvstore_blob_claim()
 *
 * Stop being the writer of blob @name.  Main loop only.
 */
void nvstore_blob_release(BlockBackend *blk, const char *name);

/**
 * nvstore_is_encrypted:
 * @blk: a BlockBackend whose node is an nvstore node
 *
 * Returns: whether the image of @blk's node is encrypted, so that
 * nvstore_state_seal() seals (false if @blk's node is not an nvstore
 * node).
 */
bool coroutine_fn nvstore_co_is_encrypted(BlockBackend *blk);
bool co_wrapper_mixed nvstore_is_encrypted(BlockBackend *blk);

/* What nvstore_state_seal() adds to the state it seals, in octets */
#define NVSTORE_STATE_SEAL_OVERHEAD 48

/**
 * nvstore_state_seal:
 * @blk: a BlockBackend whose node is an nvstore node
 * @label: what @data is (the device and the part of its state), bound
 *         into the result: a state sealed under one label does not
 *         unseal under another
 * @data: device state bound for migration or a snapshot's VM state
 * @len: its length
 * @sealed: set to a new buffer of @len + NVSTORE_STATE_SEAL_OVERHEAD
 *          octets, if the image is encrypted
 * @errp: error object
 *
 * A device whose state the nvstore image keeps encrypted (a TPM's seeds)
 * seals the copy of that state that goes into its vmstate with the
 * image's keys, so that it does not leave the encryption through a
 * migration stream or a snapshot; the destination, which opens the same
 * image with its key, unseals it with nvstore_state_unseal().  No I/O:
 * a migration's handlers may call it, in a coroutine or not.
 *
 * Returns: 1 if @data was sealed; 0 if the image is not encrypted (then
 * @sealed is not set); a negative errno value with @errp set on failure
 * (-EACCES: the image was opened without its key).
 */
int coroutine_fn nvstore_co_state_seal(BlockBackend *blk, const char *label,
                                       const uint8_t *data, size_t len,
                                       uint8_t **sealed, Error **errp);
int co_wrapper_mixed nvstore_state_seal(BlockBackend *blk, const char *label,
                                        const uint8_t *data, size_t len,
                                        uint8_t **sealed, Error **errp);

/**
 * nvstore_state_unseal:
 * @blk: a BlockBackend whose node is an nvstore node
 * @label: the label @sealed was sealed with
 * @sealed: what nvstore_state_seal() returned
 * @sealed_len: its length
 * @data: set to a new buffer of @sealed_len - NVSTORE_STATE_SEAL_OVERHEAD
 *        octets, the state
 * @errp: error object
 *
 * Check and decrypt a state sealed by nvstore_state_seal() for the same
 * image (its keys and its image-id) and label.  Nothing reaches @data
 * unless it authenticates.  No I/O, as nvstore_state_seal().
 *
 * Returns: 0 on success; -ENOTSUP if the image is not encrypted;
 * -EACCES if it was opened without its key; -EBADMSG if @sealed was
 * changed, or sealed for another image or label; with @errp set.
 */
int coroutine_fn nvstore_co_state_unseal(BlockBackend *blk,
                                         const char *label,
                                         const uint8_t *sealed,
                                         size_t sealed_len, uint8_t **data,
                                         Error **errp);
int co_wrapper_mixed nvstore_state_unseal(BlockBackend *blk,
                                          const char *label,
                                          const uint8_t *sealed,
                                          size_t sealed_len, uint8_t **data,
                                          Error **errp);

#endif /* BLOCK_NVSTORE_H */
