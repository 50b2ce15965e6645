/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * nvstore: encryption (docs/interop/nvstore.rst, "Encryption").  The key
 * slots that wrap the master key under keys derived from QEMU secrets,
 * the keys derived from the master key, the encryption and
 * authentication of each blob's data, and the authentication code of
 * the directory.
 *
 * Everything here works on buffers: the callers read and write.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "crypto/aead.h"
#include "crypto/hmac.h"
#include "crypto/memwipe.h"
#include "crypto/pbkdf.h"
#include "crypto/random.h"
#include "crypto/secret_common.h"
#include "qemu/bswap.h"
#include "qemu/cutils.h"
#include "qemu/uuid.h"
#include "nvstore-int.h"
#include "trace.h"

/* The cipher of the blobs and of the key slots */
#define NVSTORE_AEAD            QCRYPTO_AEAD_ALGO_AES_256_GCM
#define NVSTORE_AEAD_NONCE_LEN  12

/* Labels of the derived keys */
#define NVSTORE_LABEL_DIR       "nvstore directory"
#define NVSTORE_LABEL_BLOB      "nvstore blob"
#define NVSTORE_LABEL_CLOSE     "nvstore close record"
#define NVSTORE_LABEL_STATE     "nvstore device state"

/*
 * Below this, PBKDF2 is not worth its name, whatever iter-time says (the
 * floor of QEMU's LUKS key slots, QCRYPTO_BLOCK_LUKS_MIN_SLOT_KEY_ITERS)
 */
#define NVSTORE_MIN_ITERATIONS  1000
/*
 * Above this, a key slot is refused rather than opened: about 30 s of
 * PBKDF2-HMAC-SHA256 at the 4.2 million iterations a second of a 2-core
 * virtual machine, 15 times the default iter-time there.  A hostile key
 * slot cannot stall an open for longer; the writer never goes beyond it.
 */
#define NVSTORE_MAX_ITERATIONS  (1u << 27)

struct NvstoreCrypt {
    uint8_t master[NVSTORE_MASTER_KEY_LEN];
    /* The image's header, which every derived key is bound to */
    uint8_t header_ad[NVSTORE_HEADER_AD_LEN];
    /* The key of the directory's authentication code */
    uint8_t dir_key[NVSTORE_DIR_MAC_LEN];
    /* The key of the close record's */
    uint8_t close_key[NVSTORE_CLOSE_MAC_LEN];
};

/* Each key of the construction encrypts once: its nonce can be fixed */
static const uint8_t nvstore_zero_nonce[NVSTORE_AEAD_NONCE_LEN];

void nvstore_crypt_free(NvstoreCrypt *c)
{
    if (c) {
        qcrypto_memwipe(c, sizeof(*c));
        g_free(c);
    }
}

bool nvstore_crypt_same_master(const NvstoreCrypt *a, const NvstoreCrypt *b)
{
    return !memcmp(a->master, b->master, sizeof(a->master));
}

/*
 * HMAC-SHA256 of the concatenation of @iov into @out, keyed with @key
 * (32 octets)
 */
static bool nvstore_hmac(const uint8_t *key, const struct iovec *iov,
                         size_t niov, uint8_t out[32], Error **errp)
{
    g_autoptr(QCryptoHmac) hmac = NULL;
    size_t len = 32;

    hmac = qcrypto_hmac_new(QCRYPTO_HASH_ALGO_SHA256, key, 32, errp);
    return hmac && qcrypto_hmac_bytesv(hmac, iov, niov, &out, &len,
                                       errp) == 0;
}

/*
 * One 256-bit key from the master key: the KDF in counter mode of NIST
 * SP 800-108r1 with HMAC-SHA256, one block,
 * K = HMAC(master, [1]_32 || label || 0x00 || context || [256]_32)
 */
static bool nvstore_derive(NvstoreCrypt *c, const char *label,
                           const uint8_t *context, size_t ncontext,
                           uint8_t out[32], Error **errp)
{
    uint8_t one[4], bits[4], zero = 0;
    struct iovec iov[] = {
        { one, 4 },
        { (void *)label, strlen(label) },
        { &zero, 1 },
        { (void *)context, ncontext },
        { bits, 4 },
    };

    stl_be_p(one, 1);
    stl_be_p(bits, 256);
    return nvstore_hmac(c->master, iov, ARRAY_SIZE(iov), out, errp);
}

/*
 * The keys of the image whose header is @header_ad, from its master key:
 * those of the directory and of the close record have the header as
 * their context, so that neither verifies under another header (feature
 * bits, image-id)
 */
static NvstoreCrypt *nvstore_crypt_from_master(const uint8_t *master,
                                               const uint8_t *header_ad,
                                               Error **errp)
{
    NvstoreCrypt *c = g_new0(NvstoreCrypt, 1);

    memcpy(c->master, master, NVSTORE_MASTER_KEY_LEN);
    memcpy(c->header_ad, header_ad, NVSTORE_HEADER_AD_LEN);
    if (!nvstore_derive(c, NVSTORE_LABEL_DIR, c->header_ad,
                        NVSTORE_HEADER_AD_LEN, c->dir_key, errp) ||
        !nvstore_derive(c, NVSTORE_LABEL_CLOSE, c->header_ad,
                        NVSTORE_HEADER_AD_LEN, c->close_key, errp)) {
        nvstore_crypt_free(c);
        return NULL;
    }
    return c;
}

NvstoreCrypt *nvstore_crypt_new(const uint8_t *header_ad, Error **errp)
{
    uint8_t master[NVSTORE_MASTER_KEY_LEN];
    NvstoreCrypt *c;

    if (!qcrypto_aead_supports(NVSTORE_AEAD)) {
        error_setg(errp, "This QEMU cannot encrypt nvstore images: it has "
                   "no AES-256-GCM");
        return NULL;
    }
    if (qcrypto_random_bytes(master, sizeof(master), errp) < 0) {
        return NULL;
    }
    c = nvstore_crypt_from_master(master, header_ad, errp);
    qcrypto_memwipe(master, sizeof(master));
    return c;
}

/* ---- Key slots ----------------------------------------------------------- */

/* The key that wraps the master key in @ks, from the secret @secret_id */
static bool nvstore_keyslot_kek(const NvstoreKeySlot *ks,
                                const char *secret_id, uint8_t kek[32],
                                Error **errp)
{
    g_autofree uint8_t *secret = NULL;
    size_t nsecret;
    int ret;

    if (qcrypto_secret_lookup(secret_id, &secret, &nsecret, errp) < 0) {
        return false;
    }
    ret = qcrypto_pbkdf2(QCRYPTO_HASH_ALGO_SHA256, secret, nsecret,
                         ks->salt, sizeof(ks->salt),
                         be32_to_cpu(ks->iterations), kek, 32, errp);
    qcrypto_memwipe(secret, nsecret);
    return ret == 0;
}

/*
 * Iterations of PBKDF2-HMAC-SHA256 (32-octet salt and key) per second on
 * this host, or 0 with @errp set.  Measured once per process (about a
 * second of CPU): neither the secret nor the salt changes the rate.
 */
static uint64_t nvstore_pbkdf2_rate(Error **errp)
{
    static uint32_t rate;
    uint32_t r = qatomic_read(&rate);
    uint8_t pass[32] = { 0 }, salt[NVSTORE_KEYSLOT_SALT_LEN] = { 0 };

    if (!r) {
        r = MIN(qcrypto_pbkdf2_count_iters(QCRYPTO_HASH_ALGO_SHA256, pass,
                                           sizeof(pass), salt, sizeof(salt),
                                           32, errp), UINT32_MAX);
        qatomic_set(&rate, r);
    }
    return r;
}

int nvstore_keyslot_make(NvstoreCrypt *c, const char *secret_id,
                         uint64_t iter_time_ms, NvstoreKeySlot *ks,
                         Error **errp)
{
    g_autoptr(QCryptoAead) aead = NULL;
    uint8_t kek[32];
    uint64_t iters;
    int ret = -EINVAL;

    if (!iter_time_ms) {
        /* Like LUKS's, the floor of iterations alone would be guessable */
        error_setg(errp, "encrypt.iter-time must be at least 1 (ms)");
        return -EINVAL;
    }

    memset(ks, 0, sizeof(*ks));
    memcpy(ks->magic, NVSTORE_KEYSLOT_MAGIC, sizeof(ks->magic));
    memcpy(ks->image_id, c->header_ad + offsetof(NvstoreHeader, image_id),
           sizeof(ks->image_id));
    if (qcrypto_random_bytes(ks->salt, sizeof(ks->salt), errp) < 0) {
        return -EIO;
    }
    iters = nvstore_pbkdf2_rate(errp);
    if (!iters) {
        return -EINVAL;
    }
    /* Iterations per second, scaled to @iter_time_ms */
    if (iters > UINT64_MAX / iter_time_ms) {
        iters = NVSTORE_MAX_ITERATIONS;
    } else {
        iters = iters * iter_time_ms / 1000;
    }
    iters = MIN(MAX(iters, NVSTORE_MIN_ITERATIONS), NVSTORE_MAX_ITERATIONS);
    ks->iterations = cpu_to_be32(iters);

    if (!nvstore_keyslot_kek(ks, secret_id, kek, errp)) {
        goto out;
    }
    aead = qcrypto_aead_new(NVSTORE_AEAD, kek, sizeof(kek), errp);
    if (!aead ||
        qcrypto_aead_encrypt(aead, nvstore_zero_nonce,
                             sizeof(nvstore_zero_nonce),
                             (const uint8_t *)ks,
                             offsetof(NvstoreKeySlot, wrapped_key),
                             c->master, ks->wrapped_key,
                             sizeof(ks->wrapped_key),
                             ks->tag, sizeof(ks->tag), errp) < 0) {
        goto out;
    }
    ks->keyslot_crc32c = cpu_to_be32(nvstore_crc(ks,
                                     offsetof(NvstoreKeySlot,
                                              keyslot_crc32c)));
    trace_nvstore_keyslot_make(iters);
    ret = 0;
out:
    qcrypto_memwipe(kek, sizeof(kek));
    return ret;
}

bool nvstore_keyslot_in_use(const NvstoreKeySlot *ks)
{
    return !buffer_is_zero(ks, sizeof(*ks));
}

/* @id as the UUID that qemu-img info shows */
static char *nvstore_id_str(const uint8_t *id)
{
    QemuUUID uuid;

    memcpy(uuid.data, id, sizeof(uuid.data));
    return qemu_uuid_unparse_strdup(&uuid);
}

int nvstore_keyslot_check(const NvstoreKeySlot *ks, int i,
                          const uint8_t *header_ad, Error **errp)
{
    const uint8_t *id = header_ad + offsetof(NvstoreHeader, image_id);

    if (memcmp(ks->magic, NVSTORE_KEYSLOT_MAGIC, sizeof(ks->magic)) ||
        nvstore_crc(ks, offsetof(NvstoreKeySlot, keyslot_crc32c)) !=
        be32_to_cpu(ks->keyslot_crc32c)) {
        error_setg(errp, "Key slot %d is corrupt (bad magic or checksum)", i);
        return -EINVAL;
    }
    if (be32_to_cpu(ks->kdf) != NVSTORE_KDF_PBKDF2_SHA256) {
        error_setg(errp, "Key slot %d uses key derivation function %" PRIu32
                   ", which this QEMU does not know", i,
                   be32_to_cpu(ks->kdf));
        return -ENOTSUP;
    }
    if (be32_to_cpu(ks->iterations) < NVSTORE_MIN_ITERATIONS ||
        be32_to_cpu(ks->iterations) > NVSTORE_MAX_ITERATIONS) {
        error_setg(errp, "Key slot %d asks for %" PRIu32 " iterations of "
                   "PBKDF2, not %u to %u", i, be32_to_cpu(ks->iterations),
                   NVSTORE_MIN_ITERATIONS, NVSTORE_MAX_ITERATIONS);
        return -EINVAL;
    }
    if (memcmp(ks->image_id, id, NVSTORE_IMAGE_ID_LEN)) {
        g_autofree char *theirs = nvstore_id_str(ks->image_id);
        g_autofree char *ours = nvstore_id_str(id);

        error_setg(errp, "Key slot %d is of image %s, not of this one (%s)",
                   i, theirs, ours);
        return -EINVAL;
    }
    return 0;
}

int nvstore_keyslot_open(const NvstoreKeySlot *ks, int i,
                         const uint8_t *header_ad, const char *secret_id,
                         NvstoreCrypt **crypt, Error **errp)
{
    g_autoptr(QCryptoAead) aead = NULL;
    uint8_t kek[32], master[NVSTORE_MASTER_KEY_LEN];
    Error *local_err = NULL;
    int ret = -EINVAL;

    *crypt = NULL;
    if (nvstore_keyslot_check(ks, i, header_ad, errp) < 0) {
        return -EINVAL;
    }
    if (!nvstore_keyslot_kek(ks, secret_id, kek, errp)) {
        return -EINVAL;
    }
    aead = qcrypto_aead_new(NVSTORE_AEAD, kek, sizeof(kek), errp);
    if (!aead) {
        goto out;
    }
    if (qcrypto_aead_decrypt(aead, nvstore_zero_nonce,
                             sizeof(nvstore_zero_nonce),
                             (const uint8_t *)ks,
                             offsetof(NvstoreKeySlot, wrapped_key),
                             ks->wrapped_key, master, sizeof(master),
                             ks->tag, sizeof(ks->tag), &local_err) < 0) {
        /* Not this secret's slot (or tampered with) */
        error_free(local_err);
        error_setg(errp, "Key slot %d does not open with secret '%s'", i,
                   secret_id);
        ret = -EACCES;
        goto out;
    }
    *crypt = nvstore_crypt_from_master(master, header_ad, errp);
    ret = *crypt ? 0 : -EINVAL;
out:
    qcrypto_memwipe(kek, sizeof(kek));
    qcrypto_memwipe(master, sizeof(master));
    return ret;
}

/* ---- Blobs --------------------------------------------------------------- */

/*
 * The associated data of a blob's encryption: what binds the ciphertext
 * to its entry (the spec's "BlobAD")
 */
static GByteArray *nvstore_blob_ad(const NvstoreEntry *e, uint64_t gen,
                                   uint64_t len)
{
    GByteArray *ad = g_byte_array_new();
    size_t name_len = strlen(e->name);
    size_t type_len = strlen(e->type);
    uint8_t buf[8], has = e->has_realsize;

    stq_be_p(buf, gen);
    g_byte_array_append(ad, buf, 8);
    stq_be_p(buf, len);
    g_byte_array_append(ad, buf, 8);
    g_byte_array_append(ad, &has, 1);
    stq_be_p(buf, e->has_realsize ? e->realsize : 0);
    g_byte_array_append(ad, buf, 8);
    stw_be_p(buf, type_len);
    g_byte_array_append(ad, buf, 2);
    g_byte_array_append(ad, (const uint8_t *)e->type, type_len);
    stw_be_p(buf, name_len);
    g_byte_array_append(ad, buf, 2);
    g_byte_array_append(ad, (const uint8_t *)e->name, name_len);
    return ad;
}

/*
 * The AEAD of one sealing (of a blob's data or of device state): its key
 * is KDF(@label, HeaderAD || @salt || @extra), so that no two sealings,
 * blobs, states or images share one
 */
static QCryptoAead *nvstore_sealing_aead(NvstoreCrypt *c, const char *label,
                                         const uint8_t *salt,
                                         const uint8_t *extra, size_t nextra,
                                         Error **errp)
{
    g_autoptr(GByteArray) context = g_byte_array_new();
    uint8_t key[32];
    QCryptoAead *aead = NULL;

    g_byte_array_append(context, c->header_ad, NVSTORE_HEADER_AD_LEN);
    g_byte_array_append(context, salt, NVSTORE_SEAL_SALT_LEN);
    g_byte_array_append(context, extra, nextra);
    if (nvstore_derive(c, label, context->data, context->len, key, errp)) {
        aead = qcrypto_aead_new(NVSTORE_AEAD, key, sizeof(key), errp);
    }
    qcrypto_memwipe(key, sizeof(key));
    return aead;
}

/* The AEAD of one blob's data: bound to its associated data @ad too */
static QCryptoAead *nvstore_blob_aead(NvstoreCrypt *c, const uint8_t *salt,
                                      GByteArray *ad, Error **errp)
{
    return nvstore_sealing_aead(c, NVSTORE_LABEL_BLOB, salt, ad->data,
                                ad->len, errp);
}

bool nvstore_crypt_seal(NvstoreCrypt *c, NvstoreEntry *e,
                        const uint8_t *in, uint8_t *out, Error **errp)
{
    g_autoptr(QCryptoAead) aead = NULL;
    g_autoptr(GByteArray) ad = NULL;
    uint8_t sealed[NVSTORE_SEAL_LEN];

    assert(e->has_extent);
    if (qcrypto_random_bytes(sealed, NVSTORE_SEAL_SALT_LEN, errp) < 0) {
        return false;
    }
    ad = nvstore_blob_ad(e, e->extent.generation, e->extent.length);
    aead = nvstore_blob_aead(c, sealed, ad, errp);
    if (!aead) {
        return false;
    }
    if (qcrypto_aead_encrypt(aead, nvstore_zero_nonce,
                             sizeof(nvstore_zero_nonce), ad->data, ad->len,
                             in, out, e->extent.length,
                             sealed + NVSTORE_SEAL_SALT_LEN,
                             NVSTORE_SEAL_TAG_LEN, errp) < 0) {
        return false;
    }
    nvstore_entry_set_sealed(e, sealed);
    return true;
}

int nvstore_crypt_unseal(NvstoreCrypt *c, NvstoreEntry *e, uint8_t *buf,
                         size_t len, Error **errp)
{
    g_autoptr(QCryptoAead) aead = NULL;
    g_autoptr(GByteArray) ad = NULL;
    Error *local_err = NULL;

    assert(e->has_extent && e->sealed && len == e->extent.length);
    ad = nvstore_blob_ad(e, e->extent.generation, len);
    aead = nvstore_blob_aead(c, e->sealed, ad, errp);
    if (!aead) {
        return -EIO;
    }
    if (qcrypto_aead_decrypt(aead, nvstore_zero_nonce,
                             sizeof(nvstore_zero_nonce), ad->data, ad->len,
                             buf, buf, len, e->sealed + NVSTORE_SEAL_SALT_LEN,
                             NVSTORE_SEAL_TAG_LEN, &local_err) < 0) {
        error_free(local_err);
        error_setg(errp, "Blob '%s' fails authentication: its data at "
                   "offset %" PRIu64 " or its entry was changed by someone "
                   "without the key", nvstore_entry_desc(e),
                   e->extent.offset);
        return -EIO;
    }
    return 0;
}

/* ---- The directory ------------------------------------------------------- */

bool nvstore_crypt_dir_mac(NvstoreCrypt *c, uint64_t gen,
                           const uint8_t *dir, size_t len,
                           uint8_t mac[NVSTORE_DIR_MAC_LEN], Error **errp)
{
    uint8_t be_gen[8];
    struct iovec iov[] = {
        { be_gen, 8 },
        { (void *)dir, len },
    };

    stq_be_p(be_gen, gen);
    return nvstore_hmac(c->dir_key, iov, ARRAY_SIZE(iov), mac, errp);
}

/* Whether two codes of 32 octets are equal, in constant time */
static bool nvstore_mac_equal(const uint8_t *a, const uint8_t *b)
{
    uint8_t diff = 0;
    size_t i;

    for (i = 0; i < 32; i++) {
        diff |= a[i] ^ b[i];
    }
    return !diff;
}

bool nvstore_crypt_dir_verify(NvstoreCrypt *c, uint64_t gen,
                              const uint8_t *dir, size_t len,
                              const uint8_t *mac, Error **errp)
{
    uint8_t want[NVSTORE_DIR_MAC_LEN];

    if (!nvstore_crypt_dir_mac(c, gen, dir, len, want, errp)) {
        return false;
    }
    if (!nvstore_mac_equal(want, mac)) {
        error_setg(errp, "the directory of generation %" PRIu64 " fails "
                   "authentication: it was changed by someone without the "
                   "key", gen);
        return false;
    }
    return true;
}

/* ---- The close record ---------------------------------------------------- */

bool nvstore_crypt_close_mac(NvstoreCrypt *c, const NvstoreSlot *rec,
                             uint8_t mac[NVSTORE_CLOSE_MAC_LEN],
                             Error **errp)
{
    struct iovec iov = { (void *)rec, sizeof(*rec) };

    QEMU_BUILD_BUG_ON(NVSTORE_CLOSE_MAC_LEN != 32);
    return nvstore_hmac(c->close_key, &iov, 1, mac, errp);
}

bool nvstore_crypt_close_verify(NvstoreCrypt *c, const NvstoreSlot *rec,
                                const uint8_t *mac, Error **errp)
{
    uint8_t want[NVSTORE_CLOSE_MAC_LEN];

    if (!nvstore_crypt_close_mac(c, rec, want, errp)) {
        return false;
    }
    if (!nvstore_mac_equal(want, mac)) {
        error_setg(errp, "the close record fails authentication: it was "
                   "changed by someone without the key");
        return false;
    }
    return true;
}

/* ---- Device state (nvstore_state_seal()) --------------------------------- */

/* The AEAD of one sealing of device state: bound to its @label too */
static QCryptoAead *nvstore_state_aead(NvstoreCrypt *c, const uint8_t *salt,
                                       const char *label, Error **errp)
{
    return nvstore_sealing_aead(c, NVSTORE_LABEL_STATE, salt,
                                (const uint8_t *)label, strlen(label), errp);
}

bool nvstore_crypt_seal_state(NvstoreCrypt *c, const char *label,
                              const uint8_t *in, size_t len, uint8_t *out,
                              Error **errp)
{
    g_autoptr(QCryptoAead) aead = NULL;
    uint8_t *salt = out, *ct = out + NVSTORE_SEAL_SALT_LEN;

    if (qcrypto_random_bytes(salt, NVSTORE_SEAL_SALT_LEN, errp) < 0) {
        return false;
    }
    aead = nvstore_state_aead(c, salt, label, errp);
    return aead &&
           qcrypto_aead_encrypt(aead, nvstore_zero_nonce,
                                sizeof(nvstore_zero_nonce),
                                (const uint8_t *)label, strlen(label), in, ct,
                                len, ct + len, NVSTORE_SEAL_TAG_LEN,
                                errp) == 0;
}

int nvstore_crypt_unseal_state(NvstoreCrypt *c, const char *label,
                               const uint8_t *in, size_t in_len,
                               uint8_t *out, Error **errp)
{
    g_autoptr(QCryptoAead) aead = NULL;
    size_t len = in_len - NVSTORE_SEAL_SALT_LEN - NVSTORE_SEAL_TAG_LEN;
    const uint8_t *ct = in + NVSTORE_SEAL_SALT_LEN;
    Error *local_err = NULL;

    aead = nvstore_state_aead(c, in, label, errp);
    if (!aead) {
        return -EIO;
    }
    if (qcrypto_aead_decrypt(aead, nvstore_zero_nonce,
                             sizeof(nvstore_zero_nonce),
                             (const uint8_t *)label, strlen(label), ct, out,
                             len, ct + len, NVSTORE_SEAL_TAG_LEN,
                             &local_err) < 0) {
        error_free(local_err);
        error_setg(errp, "Sealed state '%s' fails authentication: it was "
                   "changed, or sealed for another image or another "
                   "state", label);
        return -EBADMSG;
    }
    return 0;
}
