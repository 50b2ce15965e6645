/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * QEMU Crypto AEAD: the libgcrypt backend
 */

#include "qemu/osdep.h"
#include <gcrypt.h>

#include "qapi/error.h"
#include "crypto/aead.h"
#include "aeadpriv.h"

static const struct {
    int cipher;
    int mode;
} qcrypto_aead_alg_map[QCRYPTO_AEAD_ALGO__MAX] = {
    [QCRYPTO_AEAD_ALGO_AES_128_GCM] = {
        GCRY_CIPHER_AES128, GCRY_CIPHER_MODE_GCM },
    [QCRYPTO_AEAD_ALGO_AES_256_GCM] = {
        GCRY_CIPHER_AES256, GCRY_CIPHER_MODE_GCM },
    [QCRYPTO_AEAD_ALGO_CHACHA20_POLY1305] = {
        GCRY_CIPHER_CHACHA20, GCRY_CIPHER_MODE_POLY1305 },
};

bool qcrypto_aead_lib_supports(QCryptoAeadAlgo alg)
{
    return gcry_cipher_algo_info(qcrypto_aead_alg_map[alg].cipher,
                                 GCRYCTL_TEST_ALGO, NULL, NULL) == 0;
}

void *qcrypto_aead_ctx_new(QCryptoAeadAlgo alg,
                           const uint8_t *key, size_t nkey,
                           Error **errp)
{
    gcry_cipher_hd_t handle;
    gcry_error_t err;

    err = gcry_cipher_open(&handle, qcrypto_aead_alg_map[alg].cipher,
                           qcrypto_aead_alg_map[alg].mode, 0);
    if (!err) {
        err = gcry_cipher_setkey(handle, key, nkey);
        if (err) {
            gcry_cipher_close(handle);
        }
    }
    if (err) {
        error_setg(errp, "Cannot initialize AEAD algorithm %s: %s",
                   QCryptoAeadAlgo_str(alg), gcry_strerror(err));
        return NULL;
    }
    return handle;
}

/* Set the nonce (which resets the operation) and the associated data */
static gcry_error_t qcrypto_aead_gcrypt_start(gcry_cipher_hd_t handle,
                                              const uint8_t *nonce,
                                              size_t nnonce,
                                              const uint8_t *ad, size_t nad)
{
    gcry_error_t err = gcry_cipher_setiv(handle, nonce, nnonce);

    if (!err) {
        err = gcry_cipher_authenticate(handle, ad, nad);
    }
    if (!err) {
        err = gcry_cipher_final(handle);
    }
    return err;
}

static int qcrypto_aead_gcrypt_encrypt(QCryptoAead *aead,
                                       const uint8_t *nonce, size_t nnonce,
                                       const uint8_t *ad, size_t nad,
                                       const uint8_t *in, uint8_t *out,
                                       size_t len, uint8_t *tag, size_t ntag,
                                       Error **errp)
{
    gcry_error_t err;

    err = qcrypto_aead_gcrypt_start(aead->opaque, nonce, nnonce, ad, nad);
    if (!err) {
        err = in == out ? gcry_cipher_encrypt(aead->opaque, out, len, NULL, 0)
                        : gcry_cipher_encrypt(aead->opaque, out, len, in, len);
    }
    if (!err) {
        err = gcry_cipher_gettag(aead->opaque, tag, ntag);
    }
    if (err) {
        error_setg(errp, "AEAD encryption failed: %s", gcry_strerror(err));
        return -1;
    }
    return 0;
}

static int qcrypto_aead_gcrypt_decrypt(QCryptoAead *aead,
                                       const uint8_t *nonce, size_t nnonce,
                                       const uint8_t *ad, size_t nad,
                                       const uint8_t *in, uint8_t *out,
                                       size_t len, const uint8_t *tag,
                                       size_t ntag, Error **errp)
{
    gcry_error_t err;

    err = qcrypto_aead_gcrypt_start(aead->opaque, nonce, nnonce, ad, nad);
    if (!err) {
        err = gcry_cipher_decrypt(aead->opaque, out, len, in, len);
    }
    if (!err) {
        err = gcry_cipher_checktag(aead->opaque, tag, ntag);
        if (gcry_err_code(err) == GPG_ERR_CHECKSUM) {
            return -EBADMSG;
        }
    }
    if (err) {
        error_setg(errp, "AEAD decryption failed: %s", gcry_strerror(err));
        return -1;
    }
    return 0;
}

static void qcrypto_aead_gcrypt_free(QCryptoAead *aead)
{
    gcry_cipher_close(aead->opaque);
}

QCryptoAeadDriver qcrypto_aead_lib_driver = {
    .encrypt = qcrypto_aead_gcrypt_encrypt,
    .decrypt = qcrypto_aead_gcrypt_decrypt,
    .free = qcrypto_aead_gcrypt_free,
};
