/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * QEMU Crypto AEAD: the gnutls backend
 */

#include "qemu/osdep.h"
#include <gnutls/crypto.h>

#include "qapi/error.h"
#include "crypto/aead.h"
#include "aeadpriv.h"

static const gnutls_cipher_algorithm_t
qcrypto_aead_alg_map[QCRYPTO_AEAD_ALGO__MAX] = {
    [QCRYPTO_AEAD_ALGO_AES_128_GCM] = GNUTLS_CIPHER_AES_128_GCM,
    [QCRYPTO_AEAD_ALGO_AES_256_GCM] = GNUTLS_CIPHER_AES_256_GCM,
    [QCRYPTO_AEAD_ALGO_CHACHA20_POLY1305] = GNUTLS_CIPHER_CHACHA20_POLY1305,
};

bool qcrypto_aead_lib_supports(QCryptoAeadAlgo alg)
{
    const gnutls_cipher_algorithm_t *algs = gnutls_cipher_list();
    size_t i;

    for (i = 0; algs[i] != GNUTLS_CIPHER_UNKNOWN; i++) {
        if (algs[i] == qcrypto_aead_alg_map[alg]) {
            return true;
        }
    }
    return false;
}

void *qcrypto_aead_ctx_new(QCryptoAeadAlgo alg,
                           const uint8_t *key, size_t nkey,
                           Error **errp)
{
    gnutls_aead_cipher_hd_t handle;
    gnutls_datum_t k = { .data = (unsigned char *)key, .size = nkey };
    int err = gnutls_aead_cipher_init(&handle, qcrypto_aead_alg_map[alg],
                                      &k);

    if (err != 0) {
        error_setg(errp, "Cannot initialize AEAD algorithm %s: %s",
                   QCryptoAeadAlgo_str(alg), gnutls_strerror(err));
        return NULL;
    }
    return handle;
}

static int qcrypto_aead_gnutls_encrypt(QCryptoAead *aead,
                                       const uint8_t *nonce, size_t nnonce,
                                       const uint8_t *ad, size_t nad,
                                       const uint8_t *in, uint8_t *out,
                                       size_t len, uint8_t *tag, size_t ntag,
                                       Error **errp)
{
    /* gnutls writes the ciphertext and the tag after it */
    g_autofree uint8_t *buf = g_malloc(len + ntag);
    size_t buf_len = len + ntag;
    int err;

    err = gnutls_aead_cipher_encrypt(aead->opaque, nonce, nnonce, ad, nad,
                                     ntag, in, len, buf, &buf_len);
    if (err != 0 || buf_len != len + ntag) {
        error_setg(errp, "AEAD encryption failed: %s",
                   err ? gnutls_strerror(err) : "short output");
        return -1;
    }
    memcpy(out, buf, len);
    memcpy(tag, buf + len, ntag);
    return 0;
}

static int qcrypto_aead_gnutls_decrypt(QCryptoAead *aead,
                                       const uint8_t *nonce, size_t nnonce,
                                       const uint8_t *ad, size_t nad,
                                       const uint8_t *in, uint8_t *out,
                                       size_t len, const uint8_t *tag,
                                       size_t ntag, Error **errp)
{
    /* gnutls reads the tag after the ciphertext */
    g_autofree uint8_t *buf = g_malloc(len + ntag);
    size_t out_len = len;
    int err;

    memcpy(buf, in, len);
    memcpy(buf + len, tag, ntag);
    err = gnutls_aead_cipher_decrypt(aead->opaque, nonce, nnonce, ad, nad,
                                     ntag, buf, len + ntag, out, &out_len);
    if (err == GNUTLS_E_DECRYPTION_FAILED) {
        return -EBADMSG;
    }
    if (err != 0 || out_len != len) {
        error_setg(errp, "AEAD decryption failed: %s",
                   err ? gnutls_strerror(err) : "short output");
        return -1;
    }
    return 0;
}

static void qcrypto_aead_gnutls_free(QCryptoAead *aead)
{
    gnutls_aead_cipher_deinit(aead->opaque);
}

QCryptoAeadDriver qcrypto_aead_lib_driver = {
    .encrypt = qcrypto_aead_gnutls_encrypt,
    .decrypt = qcrypto_aead_gnutls_decrypt,
    .free = qcrypto_aead_gnutls_free,
};
