/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * QEMU Crypto AEAD: the nettle backend
 */

#include "qemu/osdep.h"
#include <nettle/chacha-poly1305.h>
#include <nettle/gcm.h>
#include <nettle/memops.h>

#include "qapi/error.h"
#include "crypto/aead.h"
#include "aeadpriv.h"

/* The key is set once; each operation sets the nonce, which resets */
typedef struct QCryptoAeadNettle {
    QCryptoAeadAlgo alg;
    union {
        struct gcm_aes128_ctx gcm128;
        struct gcm_aes256_ctx gcm256;
        struct chacha_poly1305_ctx chacha;
    } u;
} QCryptoAeadNettle;

bool qcrypto_aead_lib_supports(QCryptoAeadAlgo alg)
{
    return true;
}

void *qcrypto_aead_ctx_new(QCryptoAeadAlgo alg,
                           const uint8_t *key, size_t nkey,
                           Error **errp)
{
    QCryptoAeadNettle *ctx = g_new0(QCryptoAeadNettle, 1);

    ctx->alg = alg;
    switch (alg) {
    case QCRYPTO_AEAD_ALGO_AES_128_GCM:
        gcm_aes128_set_key(&ctx->u.gcm128, key);
        break;
    case QCRYPTO_AEAD_ALGO_AES_256_GCM:
        gcm_aes256_set_key(&ctx->u.gcm256, key);
        break;
    case QCRYPTO_AEAD_ALGO_CHACHA20_POLY1305:
        chacha_poly1305_set_key(&ctx->u.chacha, key);
        break;
    default:
        g_assert_not_reached();
    }
    return ctx;
}

/*
 * Start an operation with @nonce and @ad; then encrypt (@encrypt) or
 * decrypt @len octets of @in into @out and compute the tag
 */
static void qcrypto_aead_nettle_run(QCryptoAeadNettle *ctx, bool encrypt,
                                    const uint8_t *nonce, size_t nnonce,
                                    const uint8_t *ad, size_t nad,
                                    const uint8_t *in, uint8_t *out,
                                    size_t len, uint8_t *tag, size_t ntag)
{
    switch (ctx->alg) {
    case QCRYPTO_AEAD_ALGO_AES_128_GCM:
        gcm_aes128_set_iv(&ctx->u.gcm128, nnonce, nonce);
        gcm_aes128_update(&ctx->u.gcm128, nad, ad);
        (encrypt ? gcm_aes128_encrypt : gcm_aes128_decrypt)(&ctx->u.gcm128,
                                                            len, out, in);
        gcm_aes128_digest(&ctx->u.gcm128, ntag, tag);
        break;
    case QCRYPTO_AEAD_ALGO_AES_256_GCM:
        gcm_aes256_set_iv(&ctx->u.gcm256, nnonce, nonce);
        gcm_aes256_update(&ctx->u.gcm256, nad, ad);
        (encrypt ? gcm_aes256_encrypt : gcm_aes256_decrypt)(&ctx->u.gcm256,
                                                            len, out, in);
        gcm_aes256_digest(&ctx->u.gcm256, ntag, tag);
        break;
    case QCRYPTO_AEAD_ALGO_CHACHA20_POLY1305:
        assert(nnonce == CHACHA_POLY1305_NONCE_SIZE);
        chacha_poly1305_set_nonce(&ctx->u.chacha, nonce);
        chacha_poly1305_update(&ctx->u.chacha, nad, ad);
        (encrypt ? chacha_poly1305_encrypt :
                   chacha_poly1305_decrypt)(&ctx->u.chacha, len, out, in);
        chacha_poly1305_digest(&ctx->u.chacha, ntag, tag);
        break;
    default:
        g_assert_not_reached();
    }
}

static int qcrypto_aead_nettle_encrypt(QCryptoAead *aead,
                                       const uint8_t *nonce, size_t nnonce,
                                       const uint8_t *ad, size_t nad,
                                       const uint8_t *in, uint8_t *out,
                                       size_t len, uint8_t *tag, size_t ntag,
                                       Error **errp)
{
    qcrypto_aead_nettle_run(aead->opaque, true, nonce, nnonce, ad, nad, in,
                            out, len, tag, ntag);
    return 0;
}

static int qcrypto_aead_nettle_decrypt(QCryptoAead *aead,
                                       const uint8_t *nonce, size_t nnonce,
                                       const uint8_t *ad, size_t nad,
                                       const uint8_t *in, uint8_t *out,
                                       size_t len, const uint8_t *tag,
                                       size_t ntag, Error **errp)
{
    uint8_t want[16];

    assert(ntag <= sizeof(want));
    qcrypto_aead_nettle_run(aead->opaque, false, nonce, nnonce, ad, nad, in,
                            out, len, want, ntag);
    return memeql_sec(want, tag, ntag) ? 0 : -EBADMSG;
}

static void qcrypto_aead_nettle_free(QCryptoAead *aead)
{
    QCryptoAeadNettle *ctx = aead->opaque;

    memset(ctx, 0, sizeof(*ctx));
    g_free(ctx);
}

QCryptoAeadDriver qcrypto_aead_lib_driver = {
    .encrypt = qcrypto_aead_nettle_encrypt,
    .decrypt = qcrypto_aead_nettle_decrypt,
    .free = qcrypto_aead_nettle_free,
};
