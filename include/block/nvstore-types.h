/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * nvstore blob types (docs/interop/nvstore.rst, "Blob types"): shared by
 * the device API (block/nvstore.h) and the directory model, which
 * includes no block-layer header.
 */

#ifndef BLOCK_NVSTORE_TYPES_H
#define BLOCK_NVSTORE_TYPES_H

#define NVSTORE_BLOB_TYPE_TPM   "tpm"
#define NVSTORE_BLOB_TYPE_RAW   "raw"

#endif /* BLOCK_NVSTORE_TYPES_H */
