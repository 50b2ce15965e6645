/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * QEMU Crypto authenticated encryption with associated data (AEAD)
 */

#ifndef QCRYPTO_AEAD_H
#define QCRYPTO_AEAD_H

#include "qapi/qapi-types-crypto.h"

typedef struct QCryptoAead QCryptoAead;
struct QCryptoAead {
    QCryptoAeadAlgo alg;
    void *opaque;
    void *driver;
};

/**
 * qcrypto_aead_supports:
 * @alg: the AEAD algorithm
 *
 * Returns: true if the crypto library of this build implements @alg
 */
bool qcrypto_aead_supports(QCryptoAeadAlgo alg);

/**
 * qcrypto_aead_get_key_len:
 * @alg: the AEAD algorithm
 *
 * Returns: the length of @alg's key, in bytes
 */
size_t qcrypto_aead_get_key_len(QCryptoAeadAlgo alg);

/**
 * qcrypto_aead_get_nonce_len:
 * @alg: the AEAD algorithm
 *
 * Returns: the length of @alg's nonce, in bytes (96 bits for each
 * algorithm defined: the length the standards recommend).  A nonce must
 * never be used twice with one key.
 */
size_t qcrypto_aead_get_nonce_len(QCryptoAeadAlgo alg);

/**
 * qcrypto_aead_get_tag_len:
 * @alg: the AEAD algorithm
 *
 * Returns: the length of @alg's authentication tag, in bytes (128 bits
 * for each algorithm defined; shorter tags are not offered)
 */
size_t qcrypto_aead_get_tag_len(QCryptoAeadAlgo alg);

/**
 * qcrypto_aead_new:
 * @alg: the AEAD algorithm
 * @key: the key
 * @nkey: the length of @key, qcrypto_aead_get_key_len() bytes
 * @errp: pointer to a NULL-initialized error object
 *
 * Creates an AEAD object for @alg with @key.  The key is copied by the
 * crypto library; the caller may wipe its own copy.
 *
 * Returns: the new object, or NULL on error
 */
QCryptoAead *qcrypto_aead_new(QCryptoAeadAlgo alg,
                              const uint8_t *key, size_t nkey,
                              Error **errp);

/**
 * qcrypto_aead_free:
 * @aead: the AEAD object, or NULL
 *
 * Releases @aead and the crypto library's copy of the key.
 */
void qcrypto_aead_free(QCryptoAead *aead);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(QCryptoAead, qcrypto_aead_free)

/**
 * qcrypto_aead_encrypt:
 * @aead: the AEAD object
 * @nonce: the nonce, never used before with this key
 * @nnonce: its length, qcrypto_aead_get_nonce_len() bytes
 * @ad: the associated data: authenticated, not encrypted
 * @nad: its length (may be 0)
 * @in: the plaintext
 * @out: where the ciphertext goes, @len bytes (may be @in)
 * @len: the length of @in (may be 0)
 * @tag: where the authentication tag goes
 * @ntag: its length, qcrypto_aead_get_tag_len() bytes
 * @errp: pointer to a NULL-initialized error object
 *
 * Encrypts @in into @out and computes the tag that authenticates @out
 * and @ad together.
 *
 * Returns: 0 on success, -1 on error
 */
int qcrypto_aead_encrypt(QCryptoAead *aead,
                         const uint8_t *nonce, size_t nnonce,
                         const uint8_t *ad, size_t nad,
                         const uint8_t *in, uint8_t *out, size_t len,
                         uint8_t *tag, size_t ntag,
                         Error **errp);

/**
 * qcrypto_aead_decrypt:
 * @aead: the AEAD object
 * @nonce: the nonce the data was encrypted with
 * @nnonce: its length, qcrypto_aead_get_nonce_len() bytes
 * @ad: the associated data
 * @nad: its length (may be 0)
 * @in: the ciphertext
 * @out: where the plaintext goes, @len bytes (may be @in)
 * @len: the length of @in (may be 0)
 * @tag: the authentication tag
 * @ntag: its length, qcrypto_aead_get_tag_len() bytes
 * @errp: pointer to a NULL-initialized error object
 *
 * Verifies @tag over @in and @ad, and decrypts @in into @out.  If the
 * tag does not match (the ciphertext, the associated data, the nonce or
 * the tag was changed, or the key is not the one used to encrypt), it
 * fails and @out is left untouched.
 *
 * Returns: 0 on success, -1 on error
 */
int qcrypto_aead_decrypt(QCryptoAead *aead,
                         const uint8_t *nonce, size_t nnonce,
                         const uint8_t *ad, size_t nad,
                         const uint8_t *in, uint8_t *out, size_t len,
                         const uint8_t *tag, size_t ntag,
                         Error **errp);

#endif /* QCRYPTO_AEAD_H */
