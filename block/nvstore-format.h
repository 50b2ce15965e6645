/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * nvstore on-disk layout: the one place in the code that owns it.
 * The specification is docs/interop/nvstore.rst ("The container").
 * All integers are big endian on disk.
 */

#ifndef BLOCK_NVSTORE_FORMAT_H
#define BLOCK_NVSTORE_FORMAT_H

#include "qemu/bswap.h"
#include "qemu/crc32c.h"

#define NVSTORE_MAGIC               "QNVSTORE"
#define NVSTORE_SLOT_MAGIC          "QNVSSLOT"
#define NVSTORE_CLOSE_MAGIC         "QNVSCLOS"

#define NVSTORE_BLOCK_SIZE          4096
#define NVSTORE_HEADER_OFFSET       0
#define NVSTORE_SLOT_OFFSET(i)      (NVSTORE_BLOCK_SIZE * (1 + (i)))
#define NVSTORE_NB_SLOTS            2
#define NVSTORE_DATA_OFFSET         (NVSTORE_BLOCK_SIZE * 3)
/* Allocations in the data area are aligned to this */
#define NVSTORE_ALIGN               NVSTORE_BLOCK_SIZE

/* Blobs encrypted and the directory authenticated ("Encryption") */
#define NVSTORE_INCOMPAT_ENCRYPTED  (UINT64_C(1) << 0)
#define NVSTORE_INCOMPAT_MASK       NVSTORE_INCOMPAT_ENCRYPTED

/*
 * Encrypted images: key slots, each in its own 512-octet sector of the
 * header block, after the header's
 */
#define NVSTORE_KEYSLOT_MAGIC       "QNVSKEY1"
/* The key derivation function of a key slot: PBKDF2 with HMAC-SHA256 */
#define NVSTORE_KDF_PBKDF2_SHA256   0
#define NVSTORE_NB_KEYSLOTS         4
#define NVSTORE_KEYSLOT_OFFSET(i)   (512 * (1 + (i)))
#define NVSTORE_MASTER_KEY_LEN      32
#define NVSTORE_KEYSLOT_SALT_LEN    32
#define NVSTORE_KEYSLOT_TAG_LEN     16
/* The directory's authentication code, after its encoding */
#define NVSTORE_DIR_MAC_LEN         32

/*
 * The close record: the slot of the committed state when the image was
 * last closed (or inactivated), a generation known complete, in the
 * sector after the key slots ("Opening an image").  The layout of a slot
 * with NVSTORE_CLOSE_MAGIC; in an encrypted image, its authentication
 * code follows.
 */
#define NVSTORE_CLOSE_OFFSET        NVSTORE_KEYSLOT_OFFSET(NVSTORE_NB_KEYSLOTS)
#define NVSTORE_CLOSE_SIZE          512
#define NVSTORE_CLOSE_MAC_LEN       32

/* The image's identifier, random at create ("The header") */
#define NVSTORE_IMAGE_ID_LEN        16

typedef struct QEMU_PACKED NvstoreHeader {
    char magic[8];                  /* NVSTORE_MAGIC */
    uint64_t incompatible_features; /* unknown bit set: refuse the image */
    uint64_t compatible_features;   /* unknown bits are ignored */
    uint8_t image_id[NVSTORE_IMAGE_ID_LEN];
    uint32_t header_crc32c;         /* CRC-32C of the bytes before it */
} NvstoreHeader;

/*
 * The header without its checksum, as on disk: what an encrypted image
 * binds into its keys ("HeaderAD")
 */
#define NVSTORE_HEADER_AD_LEN       offsetof(NvstoreHeader, header_crc32c)

typedef struct QEMU_PACKED NvstoreSlot {
    char magic[8];                  /* NVSTORE_SLOT_MAGIC */
    uint64_t generation;            /* >= 1; 0: never written */
    uint64_t dir_offset;            /* where the directory is */
    uint64_t dir_length;            /* its length in bytes */
    uint32_t dir_crc32c;            /* CRC-32C of the directory */
    uint32_t slot_crc32c;           /* CRC-32C of the bytes before it */
} NvstoreSlot;

typedef struct QEMU_PACKED NvstoreKeySlot {
    char magic[8];                  /* NVSTORE_KEYSLOT_MAGIC; zero: free */
    uint32_t iterations;            /* of the KDF */
    uint32_t kdf;                   /* NVSTORE_KDF_* */
    uint8_t salt[NVSTORE_KEYSLOT_SALT_LEN];
    uint8_t image_id[NVSTORE_IMAGE_ID_LEN]; /* the header's */
    uint8_t wrapped_key[NVSTORE_MASTER_KEY_LEN];
    uint8_t tag[NVSTORE_KEYSLOT_TAG_LEN];
    uint32_t keyslot_crc32c;        /* CRC-32C of the bytes before it */
} NvstoreKeySlot;

QEMU_BUILD_BUG_ON(sizeof(NvstoreHeader) != 44);
QEMU_BUILD_BUG_ON(NVSTORE_HEADER_AD_LEN != 40);
QEMU_BUILD_BUG_ON(sizeof(NvstoreSlot) != 40);
QEMU_BUILD_BUG_ON(sizeof(NvstoreKeySlot) != 116);
QEMU_BUILD_BUG_ON(NVSTORE_KEYSLOT_OFFSET(NVSTORE_NB_KEYSLOTS) >
                  NVSTORE_BLOCK_SIZE);
QEMU_BUILD_BUG_ON(NVSTORE_CLOSE_OFFSET + NVSTORE_CLOSE_SIZE >
                  NVSTORE_BLOCK_SIZE);
/* The data area follows the header block and the slots' blocks */
QEMU_BUILD_BUG_ON(NVSTORE_DATA_OFFSET != NVSTORE_SLOT_OFFSET(NVSTORE_NB_SLOTS));

static inline void nvstore_header_to_cpu(NvstoreHeader *h)
{
    h->incompatible_features = be64_to_cpu(h->incompatible_features);
    h->compatible_features = be64_to_cpu(h->compatible_features);
    h->header_crc32c = be32_to_cpu(h->header_crc32c);
}

static inline void nvstore_header_to_be(NvstoreHeader *h)
{
    h->incompatible_features = cpu_to_be64(h->incompatible_features);
    h->compatible_features = cpu_to_be64(h->compatible_features);
    h->header_crc32c = cpu_to_be32(h->header_crc32c);
}

static inline void nvstore_slot_to_cpu(NvstoreSlot *s)
{
    s->generation = be64_to_cpu(s->generation);
    s->dir_offset = be64_to_cpu(s->dir_offset);
    s->dir_length = be64_to_cpu(s->dir_length);
    s->dir_crc32c = be32_to_cpu(s->dir_crc32c);
    s->slot_crc32c = be32_to_cpu(s->slot_crc32c);
}

static inline void nvstore_slot_to_be(NvstoreSlot *s)
{
    s->generation = cpu_to_be64(s->generation);
    s->dir_offset = cpu_to_be64(s->dir_offset);
    s->dir_length = cpu_to_be64(s->dir_length);
    s->dir_crc32c = cpu_to_be32(s->dir_crc32c);
    s->slot_crc32c = cpu_to_be32(s->slot_crc32c);
}

/* The checksum of the format: CRC-32C, as crc32c(0xffffffff, buf, len) */
static inline uint32_t nvstore_crc(const void *buf, size_t len)
{
    return crc32c(0xffffffff, buf, len);
}

/*
 * Fill @h with the header this version writes: magic, the @incompatible
 * features (NVSTORE_INCOMPAT_ENCRYPTED or none), @image_id, the
 * checksum; on-disk byte order.
 */
static inline void nvstore_header_init(NvstoreHeader *h,
                                       uint64_t incompatible,
                                       const uint8_t *image_id)
{
    memset(h, 0, sizeof(*h));
    memcpy(h->magic, NVSTORE_MAGIC, sizeof(h->magic));
    h->incompatible_features = incompatible;
    memcpy(h->image_id, image_id, NVSTORE_IMAGE_ID_LEN);
    nvstore_header_to_be(h);
    h->header_crc32c = cpu_to_be32(nvstore_crc(h, offsetof(NvstoreHeader,
                                                         header_crc32c)));
}

/*
 * Set @out to @slot (in CPU byte order; its magic and checksum are
 * ignored) as on disk: with @magic (NVSTORE_SLOT_MAGIC or
 * NVSTORE_CLOSE_MAGIC), in disk byte order, with its checksum
 */
static inline void nvstore_slot_to_disk(NvstoreSlot *out,
                                        const NvstoreSlot *slot,
                                        const char *magic)
{
    *out = *slot;
    memcpy(out->magic, magic, sizeof(out->magic));
    nvstore_slot_to_be(out);
    out->slot_crc32c = cpu_to_be32(nvstore_crc(out,
                                               offsetof(NvstoreSlot,
                                                        slot_crc32c)));
}

/*
 * Fill @slot, in disk byte order, for a commit of generation @gen whose
 * directory @dir (@dir_length bytes) is at @dir_offset
 */
static inline void nvstore_slot_init(NvstoreSlot *slot, uint64_t gen,
                                     uint64_t dir_offset, const uint8_t *dir,
                                     size_t dir_length)
{
    NvstoreSlot cpu = {
        .generation = gen,
        .dir_offset = dir_offset,
        .dir_length = dir_length,
        .dir_crc32c = nvstore_crc(dir, dir_length),
    };

    nvstore_slot_to_disk(slot, &cpu, NVSTORE_SLOT_MAGIC);
}

#endif /* BLOCK_NVSTORE_FORMAT_H */
