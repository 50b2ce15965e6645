/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * qemu-nvstore: a TPM 2.0 run in-process by libtpms on a state taken from
 * an image, and the TPM 2.0 commands that the tpm commands send it
 * (qemu-nvstore-tpm2.c).  Nothing here touches the image: the caller
 * gives the permanent state and takes it back.
 */

#ifndef QEMU_NVSTORE_TPM2_H
#define QEMU_NVSTORE_TPM2_H

/* TPM 2.0 constants (TCG TPM 2.0 Library, Part 2) */
#define TPM2_ALG_RSA            0x0001
#define TPM2_ALG_SHA1           0x0004
#define TPM2_ALG_KEYEDHASH      0x0008
#define TPM2_ALG_SHA256         0x000b
#define TPM2_ALG_SHA384         0x000c
#define TPM2_ALG_SHA512         0x000d
#define TPM2_ALG_SM3_256        0x0012
#define TPM2_ALG_ECC            0x0023
#define TPM2_ALG_SYMCIPHER      0x0025

#define TPM2_ECC_NIST_P256      0x0003
#define TPM2_ECC_NIST_P384      0x0004

#define TPM2_HT_NV_INDEX        0x01
#define TPM2_HT_PERSISTENT      0x81

/* TPM_PT_* properties (TPM_CAP_TPM_PROPERTIES) */
#define TPM2_PT_FAMILY_INDICATOR    0x100
#define TPM2_PT_LEVEL               0x101
#define TPM2_PT_REVISION            0x102
#define TPM2_PT_MANUFACTURER        0x105
#define TPM2_PT_FIRMWARE_VERSION_1  0x10b
#define TPM2_PT_FIRMWARE_VERSION_2  0x10c
#define TPM2_PT_NV_BUFFER_MAX       0x12c

/* TPMA_NV */
#define TPMA_NV_PPWRITE         (1u << 0)
#define TPMA_NV_OWNERWRITE      (1u << 1)
#define TPMA_NV_AUTHWRITE       (1u << 2)
#define TPMA_NV_POLICYWRITE     (1u << 3)
#define TPMA_NV_POLICY_DELETE   (1u << 10)
#define TPMA_NV_WRITELOCKED     (1u << 11)
#define TPMA_NV_WRITEALL        (1u << 12)
#define TPMA_NV_WRITEDEFINE     (1u << 13)
#define TPMA_NV_WRITE_STCLEAR   (1u << 14)
#define TPMA_NV_GLOBALLOCK      (1u << 15)
#define TPMA_NV_PPREAD          (1u << 16)
#define TPMA_NV_OWNERREAD       (1u << 17)
#define TPMA_NV_AUTHREAD        (1u << 18)
#define TPMA_NV_POLICYREAD      (1u << 19)
#define TPMA_NV_NO_DA           (1u << 25)
#define TPMA_NV_ORDERLY         (1u << 26)
#define TPMA_NV_CLEAR_STCLEAR   (1u << 27)
#define TPMA_NV_READLOCKED      (1u << 28)
#define TPMA_NV_WRITTEN         (1u << 29)
#define TPMA_NV_PLATFORMCREATE  (1u << 30)
#define TPMA_NV_READ_STCLEAR    (1u << 31)

/* The TPM_NT field of TPMA_NV, and its ordinary kind */
#define TPMA_NV_TPM_NT_SHIFT    4
#define TPMA_NV_TPM_NT_MASK     (0xfu << TPMA_NV_TPM_NT_SHIFT)

/* A TPM 2.0 running in this process; there is at most one */
typedef struct NvsTpm2 NvsTpm2;

/*
 * Start libtpms as a TPM 2.0 on the permanent state @permall (@len
 * bytes), or on none (a new TPM, which libtpms manufactures) if @permall
 * is NULL, and send TPM2_Startup(CLEAR).  Fails if the state is not a
 * TPM 2.0's that libtpms accepts.
 */
NvsTpm2 *nvs_tpm2_start(const uint8_t *permall, size_t len, Error **errp);

/*
 * TPM2_Shutdown(CLEAR), then stop the TPM; the permanent state it has
 * stored (it stores it on every change), or NULL if it has stored none.
 * @t is freed.
 */
GBytes *nvs_tpm2_stop(NvsTpm2 *t, Error **errp);

/* Stop the TPM without a shutdown and drop what it stored; @t is freed */
void nvs_tpm2_abandon(NvsTpm2 *t);

/*
 * TPM2_Shutdown(CLEAR) and a new TPM2_Startup(CLEAR) on the state stored:
 * what makes a new PCR allocation take effect
 */
bool nvs_tpm2_restart(NvsTpm2 *t, Error **errp);

/* The handles of type @ht (TPM2_HT_*), ascending */
GArray *nvs_tpm2_get_handles(NvsTpm2 *t, uint8_t ht, Error **errp);

/* TPM_PT property @prop */
bool nvs_tpm2_get_property(NvsTpm2 *t, uint32_t prop, uint32_t *value,
                           Error **errp);

/* A PCR bank: its hash algorithm and which PCRs it has */
typedef struct NvsTpm2PcrBank {
    uint16_t hash;
    uint32_t pcrs;              /* bit i: PCR i (PCRs 0 to 31) */
} NvsTpm2PcrBank;

/* The PCR banks (NvsTpm2PcrBank), with and without PCRs allocated */
GArray *nvs_tpm2_get_pcr_banks(NvsTpm2 *t, Error **errp);

/*
 * TPM2_PCR_Allocate with the platform's authorization: every PCR in the
 * banks of @hashes (@n of them), none in the others.  Takes effect at
 * the next TPM reset, see nvs_tpm2_restart().
 */
bool nvs_tpm2_pcr_allocate(NvsTpm2 *t, const uint16_t *hashes, size_t n,
                           Error **errp);

/* The public area of an NV index */
typedef struct NvsTpm2NvPublic {
    uint16_t name_alg;
    uint32_t attributes;        /* TPMA_NV */
    uint16_t size;
    GBytes *name;
} NvsTpm2NvPublic;

bool nvs_tpm2_nv_read_public(NvsTpm2 *t, uint32_t index,
                             NvsTpm2NvPublic *pub, Error **errp);

/* The public area of a loaded or persistent object */
typedef struct NvsTpm2Public {
    uint16_t type;              /* TPM2_ALG_RSA, TPM2_ALG_ECC... */
    uint16_t name_alg;
    uint32_t attributes;        /* TPMA_OBJECT */
    uint16_t key_bits;          /* RSA */
    uint16_t curve;             /* ECC */
    GBytes *rsa_n;              /* RSA: the modulus */
    uint32_t rsa_e;             /* RSA: the exponent; 0 is 65537 */
    GBytes *ecc_x, *ecc_y;      /* ECC: the point */
    GBytes *name;
} NvsTpm2Public;

void nvs_tpm2_public_clear(NvsTpm2Public *pub);

bool nvs_tpm2_read_public(NvsTpm2 *t, uint32_t handle, NvsTpm2Public *pub,
                          Error **errp);

/*
 * TPM2_CreatePrimary in the endorsement hierarchy with the TCG default
 * EK template (TCG EK Credential Profile, templates L-1 and L-2) for
 * RSA 2048 (@alg TPM2_ALG_RSA) or ECC NIST P-256 (TPM2_ALG_ECC); then
 * TPM2_EvictControl makes it persistent at @persistent.  @pub gets its
 * public area.
 */
bool nvs_tpm2_create_ek(NvsTpm2 *t, uint16_t alg, uint32_t persistent,
                        NvsTpm2Public *pub, Error **errp);

/*
 * TPM2_NV_DefineSpace with the platform's authorization, then
 * TPM2_NV_Write of @data (@len bytes) in chunks the TPM takes
 */
bool nvs_tpm2_nv_define_write(NvsTpm2 *t, uint32_t index,
                              uint32_t attributes, const uint8_t *data,
                              size_t len, Error **errp);

/* TPM2_NV_WriteLock with the platform's authorization */
bool nvs_tpm2_nv_write_lock(NvsTpm2 *t, uint32_t index, Error **errp);

/* The name of hash algorithm @alg as tpm2-tools writes it; NULL if none */
const char *nvs_tpm2_hash_name(uint16_t alg);

/* Hash algorithm @name (as tpm2-tools writes it); 0 if unknown */
uint16_t nvs_tpm2_hash_by_name(const char *name);

#endif /* QEMU_NVSTORE_TPM2_H */
