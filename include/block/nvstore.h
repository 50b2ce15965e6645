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
 * The functions may be called from the main loop (outside coroutines,
 * with the BQL) or from a coroutine.  They fail with an Error when the
 * BlockBackend has no medium or its node is not an nvstore node (filters
 * above it are skipped).
 */

#ifndef BLOCK_NVSTORE_H
#define BLOCK_NVSTORE_H

/* Blob types (docs/interop/nvstore.rst, "Blob types") */
#define NVSTORE_BLOB_TYPE_TPM   "tpm"
#define NVSTORE_BLOB_TYPE_RAW   "raw"

/**
 * NvstoreBlobUpdate:
 * @name: the blob's name
 * @remove: true to delete the blob (the other fields are ignored)
 * @type: the blob's type when it is created; an existing blob must have
 *        this type
 * @data: the new contents
 * @len: their length
 * @realsize: the number of meaningful bytes (for type "tpm"), at most @len;
 *            used only when @has_realsize; type "tpm" defaults to @len
 * @has_realsize: whether @realsize is given
 *
 * One change of an atomic commit, see nvstore_blob_commit().
 */
typedef struct NvstoreBlobUpdate {
    const char *name;
    bool remove;
    const char *type;
    const uint8_t *data;
    size_t len;
    uint64_t realsize;
    bool has_realsize;
} NvstoreBlobUpdate;

/**
 * NvstoreBlobInfo:
 * @type: the blob's type (free with g_free())
 * @size: the length of its contents
 * @realsize: the number of meaningful bytes, if @has_realsize
 * @has_realsize: whether the blob has a realsize
 */
typedef struct NvstoreBlobInfo {
    char *type;
    uint64_t size;
    uint64_t realsize;
    bool has_realsize;
} NvstoreBlobInfo;

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
int nvstore_blob_commit(BlockBackend *blk, const NvstoreBlobUpdate *updates,
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
int nvstore_blob_read(BlockBackend *blk, const char *name, uint8_t **data,
                      size_t *len, Error **errp);

/**
 * nvstore_blob_get_info:
 * @blk: a BlockBackend whose node is an nvstore node
 * @name: the blob's name
 * @info: filled on success (free @info->type with g_free())
 * @errp: error object
 *
 * Returns: 0 on success, -ENOENT if there is no such blob, another
 * negative errno value on failure.
 */
int nvstore_blob_get_info(BlockBackend *blk, const char *name,
                          NvstoreBlobInfo *info, Error **errp);

/**
 * nvstore_blob_list:
 * @blk: a BlockBackend whose node is an nvstore node
 * @errp: error object
 *
 * Returns: the names of all blobs, usable or not, sorted (free with
 * g_strfreev()); NULL on failure.
 */
char **nvstore_blob_list(BlockBackend *blk, Error **errp);

#endif /* BLOCK_NVSTORE_H */
