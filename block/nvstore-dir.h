/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * nvstore directory model: the entries of an nvstore image, their types,
 * attributes and data, decoded from and encoded to the directory's
 * CER/DER encoding (docs/interop/nvstore.rst, "The directory").
 *
 * Bytes in, bytes out: this module does no I/O and knows nothing of the
 * block layer, so that it can be unit-tested and fuzzed on its own.
 */

#ifndef BLOCK_NVSTORE_DIR_H
#define BLOCK_NVSTORE_DIR_H

#include "qemu/units.h"
#include "block/nvstore-types.h"

/* Limits of the specification ("Limits") */
#define NVSTORE_DIR_MAX_SIZE        (16 * MiB)
#define NVSTORE_DIR_MAX_ENTRIES     65536
#define NVSTORE_ENTRY_MAX_ATTRS     64
#define NVSTORE_ATTR_MAX_SIZE       (64 * KiB)
#define NVSTORE_ATTR_MAX_DEPTH      8
#define NVSTORE_ID_MAX_LEN          64
#define NVSTORE_NAME_MAX_LEN        255

/* Attributes defined by this version (blob types: nvstore-types.h) */
#define NVSTORE_ATTR_EXTENT         "extent"
#define NVSTORE_ATTR_REALSIZE       "realsize"
#define NVSTORE_ATTR_SEALED         "sealed"

/* The value of attribute 'sealed': a key salt and an authentication tag */
#define NVSTORE_SEAL_SALT_LEN       32
#define NVSTORE_SEAL_TAG_LEN        16
#define NVSTORE_SEAL_LEN \
    (NVSTORE_SEAL_SALT_LEN + NVSTORE_SEAL_TAG_LEN)

/* The largest offset, length and generation of an extent, plus one */
#define NVSTORE_EXTENT_LIMIT        (1ULL << 63)

/* Where the data of an entry is, when it is not inline */
typedef struct NvstoreExtent {
    uint64_t offset;
    uint64_t length;
    uint64_t generation;
    uint32_t crc32c;
} NvstoreExtent;

/*
 * An optional attribute that the directory model does not interpret: one
 * set by a device, or one this version does not know.
 */
typedef struct NvstoreAttr {
    char *name;
    /* DER encoding of the value, kept byte for byte; NULL for a flag */
    uint8_t *value;
    size_t value_len;
} NvstoreAttr;

/*
 * What is kept of an entry that cannot be used: why (an unknown
 * mandatory attribute, an invalid known attribute), and its encoding
 * @enc, written back exactly as it was read.  The space its attribute
 * 'extent' references is decoded, so that writers keep that space free
 * (@has_space); @space_unknown when an attribute 'extent' does not
 * decode, so that the space the entry uses cannot be known.
 */
typedef struct NvstoreRaw {
    char *why;
    uint8_t *enc;
    size_t len;
    bool has_space;
    bool space_unknown;
    NvstoreExtent space;
} NvstoreRaw;

/*
 * One blob.  A node keeps one per blob, so the entry is kept small: the
 * name is part of the same allocation, and what only an unusable entry
 * needs is apart (@raw).
 */
typedef struct NvstoreEntry {
    /* Shared by the entries of a type this version defines: read only */
    const char *type;

    /* The known attributes, decoded (the flags below say which) */
    NvstoreExtent extent;
    uint64_t realsize;
    /*
     * Encrypted images: how the data is encrypted (nvstore-crypt.c),
     * NVSTORE_SEAL_LEN octets, or NULL
     */
    uint8_t *sealed;
    /* The other attributes (NvstoreAttr *), in no particular order */
    GPtrArray *attrs;

    /* Inline data; empty when has_extent */
    uint8_t *data;
    size_t data_len;

    /* NULL for a usable entry (nvstore_entry_unusable()) */
    NvstoreRaw *raw;

    /*
     * The directories that hold the entry: nvstore_dir_copy() shares
     * entries, and an entry is changed only when it is its directory's
     * alone (nvstore_dir_lookup_mut())
     */
    uint16_t refs;
    bool has_extent;
    bool has_realsize;
    /* The name; "" for the unnamed entry (a blob's name is never empty) */
    char name[];
} NvstoreEntry;

/*
 * The entries of a directory.  The array is sorted by name, the
 * unnamed entry first: a lookup is a binary search, and an index of
 * names would cost more memory than the entries' names themselves.
 */
typedef struct NvstoreDir {
    /* NvstoreEntry *, sorted by name (strcmp) */
    GPtrArray *entries;
} NvstoreDir;

/* Why @entry cannot be used, or NULL if it can */
static inline const char *nvstore_entry_unusable(const NvstoreEntry *entry)
{
    return entry->raw ? entry->raw->why : NULL;
}

/**
 * nvstore_dir_new:
 *
 * Returns: a new, empty directory.
 */
NvstoreDir *nvstore_dir_new(void);

/**
 * nvstore_dir_copy:
 * @dir: a directory
 *
 * Copy @dir in time independent of the size of its entries: the copy
 * shares them (each entry counts its directories), and an entry is
 * copied when one of the directories changes it, which it must look up
 * with nvstore_dir_lookup_mut().  Directories that share entries are
 * used in one thread (a node's AioContext).
 *
 * Returns: a copy of @dir, every entry usable or not, which encodes to
 * the same bytes.
 */
NvstoreDir *nvstore_dir_copy(const NvstoreDir *dir);

/**
 * nvstore_dir_free:
 * @dir: a directory, or NULL
 *
 * Frees @dir and all its entries.
 */
void nvstore_dir_free(NvstoreDir *dir);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(NvstoreDir, nvstore_dir_free)

/**
 * nvstore_dir_parse:
 * @buf: the encoded directory
 * @len: its length; nothing may follow the end-of-contents octets
 * @errp: error object
 *
 * Decode a directory.  @buf is untrusted: every deviation from the
 * specification's encoding rules and limits is an error that says what
 * is wrong and where (byte offset, entry index or name).  Entries that
 * are well-formed but cannot be used by this version (an unknown
 * mandatory attribute, for instance) are not errors: they are returned
 * with the reason, which nvstore_entry_unusable() gives.
 *
 * Returns: the directory, or NULL on error.
 */
NvstoreDir *nvstore_dir_parse(const uint8_t *buf, size_t len, Error **errp);

/**
 * nvstore_dir_measure:
 * @buf: octets that may start with an encoded directory
 * @len: how many there are
 * @need: set to how many octets the framing needs, if @len is too few
 *
 * Follow the framing of a directory (the indefinite-length SET OF and the
 * lengths of its entries) to its end-of-contents octets, to find its
 * length in the data area, where nothing records it (salvage).  Nothing
 * but the framing is checked: nvstore_dir_parse() decodes the result.
 *
 * Returns: the length of the encoding, or 0 if @buf does not start with
 * one (*@need 0) or if it needs more than @len octets (*@need set, at
 * most NVSTORE_DIR_MAX_SIZE + 2).
 */
size_t nvstore_dir_measure(const uint8_t *buf, size_t len, size_t *need);

/**
 * nvstore_dir_encode:
 * @dir: the directory
 * @len: set to the length of the encoding
 * @errp: error object
 *
 * Encode @dir: the canonical encoding of the specification, with unusable
 * entries and unknown attributes as they were read.
 *
 * Returns: the encoding (free with g_free()), or NULL if it would exceed
 * NVSTORE_DIR_MAX_SIZE.
 */
uint8_t *nvstore_dir_encode(NvstoreDir *dir, size_t *len, Error **errp);

/**
 * nvstore_dir_lookup:
 * @dir: the directory
 * @name: the blob's name, NULL for the unnamed blob
 *
 * Returns: the entry, usable or not, or NULL if there is none.
 */
NvstoreEntry *nvstore_dir_lookup(NvstoreDir *dir, const char *name);

/**
 * nvstore_dir_lookup_mut:
 * @dir: the directory
 * @name: the blob's name, NULL for the unnamed blob
 *
 * Like nvstore_dir_lookup(), for an entry to change: if another
 * directory shares it (nvstore_dir_copy()), @dir gets a copy of its own.
 * The nvstore_entry_set_*() functions and nvstore_entry_del_attr() take
 * only such an entry, or one of nvstore_dir_add().
 *
 * Returns: the entry, usable or not, or NULL if there is none.
 */
NvstoreEntry *nvstore_dir_lookup_mut(NvstoreDir *dir, const char *name);

/**
 * nvstore_dir_add:
 * @dir: the directory
 * @name: the new blob's name, NULL for the unnamed blob
 * @type: its type
 * @errp: error object
 *
 * Add an entry with no data and no attributes.  Fails if @name or @type
 * is invalid, if an entry of that name exists, or if @dir is full.
 *
 * Returns: the new entry, or NULL on error.
 */
NvstoreEntry *nvstore_dir_add(NvstoreDir *dir, const char *name,
                              const char *type, Error **errp);

/**
 * nvstore_check_name_type:
 * @name: a blob's name, or NULL
 * @type: a blob's type, or NULL
 * @errp: error object
 *
 * Returns: whether @name and @type (those that are not NULL) are valid
 * as a blob's name and type; if not, @errp says why.
 */
bool nvstore_check_name_type(const char *name, const char *type,
                             Error **errp);

/**
 * nvstore_dir_delete:
 * @dir: the directory
 * @name: the blob's name, NULL for the unnamed blob
 * @errp: error object
 *
 * Remove an entry, usable or not.
 *
 * Returns: true on success, false if there is no such entry.
 */
bool nvstore_dir_delete(NvstoreDir *dir, const char *name, Error **errp);

/**
 * nvstore_entry_desc:
 * @entry: the entry
 *
 * Returns: the entry's name for messages: its name, or "(unnamed)".
 */
const char *nvstore_entry_desc(NvstoreEntry *entry);

/**
 * nvstore_entry_check_usable:
 * @entry: the entry
 * @errp: error object
 *
 * Returns: true if @entry can be read and modified; false, with an error
 * naming the entry and the reason, if not.
 */
bool nvstore_entry_check_usable(NvstoreEntry *entry, Error **errp);

/**
 * nvstore_entry_data_size:
 * @entry: a usable entry
 *
 * Returns: the length of the data, inline or in the extent.
 */
uint64_t nvstore_entry_data_size(NvstoreEntry *entry);

/**
 * nvstore_entry_set_inline:
 * @entry: a usable entry
 * @data: the new data
 * @len: its length
 * @errp: error object
 *
 * Make @data the entry's inline data, dropping its extent and its seal.
 * Fails if the entry has a realsize larger than @len.
 *
 * Returns: true on success.
 */
bool nvstore_entry_set_inline(NvstoreEntry *entry, const uint8_t *data,
                              size_t len, Error **errp);

/**
 * nvstore_entry_set_extent:
 * @entry: a usable entry
 * @extent: where the data is
 * @errp: error object
 *
 * Make @extent the place of the entry's data, dropping its inline data
 * and its seal.  Fails if a field is out of range or the entry has a
 * realsize larger than the extent.
 *
 * Returns: true on success.
 */
bool nvstore_entry_set_extent(NvstoreEntry *entry,
                              const NvstoreExtent *extent, Error **errp);

/**
 * nvstore_entry_set_realsize:
 * @entry: a usable entry
 * @realsize: the number of meaningful octets of the data
 * @errp: error object
 *
 * Returns: true on success, false if @realsize exceeds the data.
 */
bool nvstore_entry_set_realsize(NvstoreEntry *entry, uint64_t realsize,
                                Error **errp);

/**
 * nvstore_entry_set_sealed:
 * @entry: a usable entry
 * @sealed: the value of attribute 'sealed' of its current data
 *
 * Record how the entry's data is encrypted.  The seal is dropped when
 * the data change.
 */
void nvstore_entry_set_sealed(NvstoreEntry *entry,
                              const uint8_t sealed[NVSTORE_SEAL_LEN]);

/**
 * nvstore_entry_get_attr:
 * @entry: the entry
 * @name: an attribute name other than those of the known attributes
 *
 * Returns: the attribute, or NULL if the entry has none of that name.
 */
const NvstoreAttr *nvstore_entry_get_attr(NvstoreEntry *entry,
                                          const char *name);

/**
 * nvstore_entry_set_attr:
 * @entry: a usable entry
 * @name: attribute name
 * @value: DER encoding of a single value, NULL for a flag
 * @value_len: its length
 * @errp: error object
 *
 * Add or replace an optional attribute.  Fails if @name is invalid or
 * is that of a known attribute, or if @value is not well-formed DER
 * within the limits.  Mandatory attributes are only those this version
 * knows, and are set with their own functions.
 *
 * Returns: true on success.
 */
bool nvstore_entry_set_attr(NvstoreEntry *entry, const char *name,
                            const uint8_t *value, size_t value_len,
                            Error **errp);

/**
 * nvstore_entry_del_attr:
 * @entry: a usable entry
 * @name: attribute name
 *
 * Remove an optional attribute, known or not.
 *
 * Returns: true if the entry had it.
 */
bool nvstore_entry_del_attr(NvstoreEntry *entry, const char *name);

#endif /* BLOCK_NVSTORE_DIR_H */
