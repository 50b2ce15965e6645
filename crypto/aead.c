/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * QEMU Crypto authenticated encryption with associated data (AEAD): the
 * parameters of each algorithm and the checks common to the backends
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "crypto/aead.h"
#include "crypto/memwipe.h"
#include "aeadpriv.h"

typedef struct QCryptoAeadParams {
    size_t key_len;
    size_t nonce_len;
    size_t tag_len;
} QCryptoAeadParams;

static const QCryptoAeadParams qcrypto_aead_params[QCRYPTO_AEAD_ALGO__MAX] = {
    [QCRYPTO_AEAD_ALGO_AES_128_GCM] = { 16, 12, 16 },
    [QCRYPTO_AEAD_ALGO_AES_256_GCM] = { 32, 12, 16 },
    [QCRYPTO_AEAD_ALGO_CHACHA20_POLY1305] = { 32, 12, 16 },
};

bool qcrypto_aead_supports(QCryptoAeadAlgo alg)
{
    return alg < QCRYPTO_AEAD_ALGO__MAX && qcrypto_aead_lib_supports(alg);
}

size_t qcrypto_aead_get_key_len(QCryptoAeadAlgo alg)
{
    assert(alg < QCRYPTO_AEAD_ALGO__MAX);
    return qcrypto_aead_params[alg].key_len;
}

size_t qcrypto_aead_get_nonce_len(QCryptoAeadAlgo alg)
{
    assert(alg < QCRYPTO_AEAD_ALGO__MAX);
    return qcrypto_aead_params[alg].nonce_len;
}

size_t qcrypto_aead_get_tag_len(QCryptoAeadAlgo alg)
{
    assert(alg < QCRYPTO_AEAD_ALGO__MAX);
    return qcrypto_aead_params[alg].tag_len;
}

QCryptoAead *qcrypto_aead_new(QCryptoAeadAlgo alg,
                              const uint8_t *key, size_t nkey,
                              Error **errp)
{
    QCryptoAead *aead;
    void *ctx;

    if (alg >= QCRYPTO_AEAD_ALGO__MAX) {
        error_setg(errp, "Unknown AEAD algorithm %d", alg);
        return NULL;
    }
    if (!qcrypto_aead_supports(alg)) {
        error_setg(errp, "AEAD algorithm %s is not supported by this build",
                   QCryptoAeadAlgo_str(alg));
        return NULL;
    }
    if (nkey != qcrypto_aead_get_key_len(alg)) {
        error_setg(errp, "AEAD algorithm %s needs a key of %zu bytes, not "
                   "%zu", QCryptoAeadAlgo_str(alg),
                   qcrypto_aead_get_key_len(alg), nkey);
        return NULL;
    }
    ctx = qcrypto_aead_ctx_new(alg, key, nkey, errp);
    if (!ctx) {
        return NULL;
    }
    aead = g_new0(QCryptoAead, 1);
    aead->alg = alg;
    aead->opaque = ctx;
    aead->driver = &qcrypto_aead_lib_driver;
    return aead;
}

void qcrypto_aead_free(QCryptoAead *aead)
{
    QCryptoAeadDriver *drv;

    if (!aead) {
        return;
    }
    drv = aead->driver;
    drv->free(aead);
    g_free(aead);
}

static bool qcrypto_aead_check_lens(QCryptoAead *aead, size_t nnonce,
                                    size_t ntag, Error **errp)
{
    const QCryptoAeadParams *p = &qcrypto_aead_params[aead->alg];

    if (nnonce != p->nonce_len) {
        error_setg(errp, "AEAD algorithm %s needs a nonce of %zu bytes, "
                   "not %zu", QCryptoAeadAlgo_str(aead->alg), p->nonce_len,
                   nnonce);
        return false;
    }
    if (ntag != p->tag_len) {
        error_setg(errp, "AEAD algorithm %s has a tag of %zu bytes, not "
                   "%zu", QCryptoAeadAlgo_str(aead->alg), p->tag_len, ntag);
        return false;
    }
    return true;
}

int qcrypto_aead_encrypt(QCryptoAead *aead,
                         const uint8_t *nonce, size_t nnonce,
                         const uint8_t *ad, size_t nad,
                         const uint8_t *in, uint8_t *out, size_t len,
                         uint8_t *tag, size_t ntag,
                         Error **errp)
{
    QCryptoAeadDriver *drv = aead->driver;

    if (!qcrypto_aead_check_lens(aead, nnonce, ntag, errp)) {
        return -1;
    }
    return drv->encrypt(aead, nonce, nnonce, ad, nad, in, out, len, tag,
                        ntag, errp);
}

int qcrypto_aead_decrypt(QCryptoAead *aead,
                         const uint8_t *nonce, size_t nnonce,
                         const uint8_t *ad, size_t nad,
                         const uint8_t *in, uint8_t *out, size_t len,
                         const uint8_t *tag, size_t ntag,
                         Error **errp)
{
    QCryptoAeadDriver *drv = aead->driver;
    uint8_t *plain;
    int ret;

    if (!qcrypto_aead_check_lens(aead, nnonce, ntag, errp)) {
        return -1;
    }
    /* Nothing reaches @out unless the tag matches */
    plain = g_malloc(MAX(len, 1));
    ret = drv->decrypt(aead, nonce, nnonce, ad, nad, in, plain, len, tag,
                       ntag, errp);
    if (ret == -EBADMSG) {
        error_setg(errp, "AEAD authentication failed: the data, the "
                   "associated data, the nonce or the tag was changed, or "
                   "the key is wrong");
    }
    if (ret == 0) {
        memcpy(out, plain, len);
    }
    /* Plaintext, even when unauthenticated: wipe it */
    qcrypto_memwipe_free(plain, MAX(len, 1));
    return ret < 0 ? -1 : 0;
}
