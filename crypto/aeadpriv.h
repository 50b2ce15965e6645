/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * QEMU Crypto AEAD: the interface of the crypto library backends
 */

#ifndef QCRYPTO_AEADPRIV_H
#define QCRYPTO_AEADPRIV_H

#include "crypto/aead.h"

typedef struct QCryptoAeadDriver QCryptoAeadDriver;

/*
 * The generic code (aead.c) has checked every length: the nonce's, the
 * key's and the tag's are those of the algorithm.  @decrypt writes to a
 * buffer of the generic code, which copies it to the caller's only if
 * the tag matches; it returns -EBADMSG, without setting @errp, if the
 * tag does not match, and -1 with @errp set on any other failure.
 */
struct QCryptoAeadDriver {
    int (*encrypt)(QCryptoAead *aead,
                   const uint8_t *nonce, size_t nnonce,
                   const uint8_t *ad, size_t nad,
                   const uint8_t *in, uint8_t *out, size_t len,
                   uint8_t *tag, size_t ntag, Error **errp);
    int (*decrypt)(QCryptoAead *aead,
                   const uint8_t *nonce, size_t nnonce,
                   const uint8_t *ad, size_t nad,
                   const uint8_t *in, uint8_t *out, size_t len,
                   const uint8_t *tag, size_t ntag, Error **errp);
    void (*free)(QCryptoAead *aead);
};

/* The backend's context for @alg with @key, or NULL */
void *qcrypto_aead_ctx_new(QCryptoAeadAlgo alg,
                           const uint8_t *key, size_t nkey,
                           Error **errp);
bool qcrypto_aead_lib_supports(QCryptoAeadAlgo alg);
extern QCryptoAeadDriver qcrypto_aead_lib_driver;

#endif /* QCRYPTO_AEADPRIV_H */
