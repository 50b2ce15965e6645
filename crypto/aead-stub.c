/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * QEMU Crypto AEAD: no backend (built without gnutls)
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "crypto/aead.h"
#include "aeadpriv.h"

bool qcrypto_aead_lib_supports(QCryptoAeadAlgo alg)
{
    return false;
}

void *qcrypto_aead_ctx_new(QCryptoAeadAlgo alg,
                           const uint8_t *key, size_t nkey,
                           Error **errp)
{
    error_setg(errp, "AEAD needs QEMU built with gnutls");
    return NULL;
}

QCryptoAeadDriver qcrypto_aead_lib_driver;
