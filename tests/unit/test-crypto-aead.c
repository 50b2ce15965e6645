/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * QEMU Crypto AEAD tests: known-answer vectors of the standards, in
 * place and not, and every kind of tampering refused.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "crypto/init.h"
#include "crypto/aead.h"

typedef struct QCryptoAeadTestData {
    const char *path;
    QCryptoAeadAlgo alg;
    const char *key;
    const char *nonce;
    const char *ad;
    const char *plaintext;
    const char *ciphertext;
    const char *tag;
} QCryptoAeadTestData;

static const QCryptoAeadTestData test_data[] = {
    {
        /* The Galois/Counter Mode of Operation (McGrew, Viega), test 13 */
        .path = "/crypto/aead/aes-256-gcm/empty",
        .alg = QCRYPTO_AEAD_ALGO_AES_256_GCM,
        .key = "00000000000000000000000000000000"
               "00000000000000000000000000000000",
        .nonce = "000000000000000000000000",
        .ad = "",
        .plaintext = "",
        .ciphertext = "",
        .tag = "530f8afbc74536b9a963b4f1c4cb738b",
    },
    {
        /* test 14 */
        .path = "/crypto/aead/aes-256-gcm/zero",
        .alg = QCRYPTO_AEAD_ALGO_AES_256_GCM,
        .key = "00000000000000000000000000000000"
               "00000000000000000000000000000000",
        .nonce = "000000000000000000000000",
        .ad = "",
        .plaintext = "00000000000000000000000000000000",
        .ciphertext = "cea7403d4d606b6e074ec5d3baf39d18",
        .tag = "d0d1c8a799996bf0265b98b5d48ab919",
    },
    {
        /* test 16: associated data, a partial block */
        .path = "/crypto/aead/aes-256-gcm/ad",
        .alg = QCRYPTO_AEAD_ALGO_AES_256_GCM,
        .key = "feffe9928665731c6d6a8f9467308308"
               "feffe9928665731c6d6a8f9467308308",
        .nonce = "cafebabefacedbaddecaf888",
        .ad = "feedfacedeadbeeffeedfacedeadbeefabaddad2",
        .plaintext = "d9313225f88406e5a55909c5aff5269a"
                     "86a7a9531534f7da2e4c303d8a318a72"
                     "1c3c0c95956809532fcf0e2449a6b525"
                     "b16aedf5aa0de657ba637b39",
        .ciphertext = "522dc1f099567d07f47f37a32a84427d"
                      "643a8cdcbfe5c0c97598a2bd2555d1aa"
                      "8cb08e48590dbb3da7b08b1056828838"
                      "c5f61e6393ba7a0abcc9f662",
        .tag = "76fc6ece0f4e1768cddf8853bb2d551b",
    },
    {
        /* test 4: the same with a 128-bit key */
        .path = "/crypto/aead/aes-128-gcm/ad",
        .alg = QCRYPTO_AEAD_ALGO_AES_128_GCM,
        .key = "feffe9928665731c6d6a8f9467308308",
        .nonce = "cafebabefacedbaddecaf888",
        .ad = "feedfacedeadbeeffeedfacedeadbeefabaddad2",
        .plaintext = "d9313225f88406e5a55909c5aff5269a"
                     "86a7a9531534f7da2e4c303d8a318a72"
                     "1c3c0c95956809532fcf0e2449a6b525"
                     "b16aedf5aa0de657ba637b39",
        .ciphertext = "42831ec2217774244b7221b784d0d49c"
                      "e3aa212f2c02a4e035c17e2329aca12e"
                      "21d514b25466931c7d8f6a5aac84aa05"
                      "1ba30b396a0aac973d58e091",
        .tag = "5bc94fbc3221a5db94fae95ae7121a47",
    },
    {
        /* RFC 8439, 2.8.2 */
        .path = "/crypto/aead/chacha20-poly1305/rfc8439",
        .alg = QCRYPTO_AEAD_ALGO_CHACHA20_POLY1305,
        .key = "808182838485868788898a8b8c8d8e8f"
               "909192939495969798999a9b9c9d9e9f",
        .nonce = "070000004041424344454647",
        .ad = "50515253c0c1c2c3c4c5c6c7",
        .plaintext = "4c616469657320616e642047656e746c"
                     "656d656e206f662074686520636c6173"
                     "73206f66202739393a20496620492063"
                     "6f756c64206f6666657220796f75206f"
                     "6e6c79206f6e652074697020666f7220"
                     "746865206675747572652c2073756e73"
                     "637265656e20776f756c642062652069"
                     "742e",
        .ciphertext = "d31a8d34648e60db7b86afbc53ef7ec2"
                      "a4aded51296e08fea9e2b5a736ee62d6"
                      "3dbea45e8ca9671282fafb69da92728b"
                      "1a71de0a9e060b2905d6a5b67ecd3b36"
                      "92ddbd7f2d778b8c9803aee328091b58"
                      "fab324e4fad675945585808b4831d7bc"
                      "3ff4def08e4b7a9de576d26586cec64b"
                      "6116",
        .tag = "1ae10b594f09e26a7e902ecbd0600691",
    },
};

static uint8_t *unhex(const char *hex, size_t *len)
{
    size_t n = strlen(hex) / 2, i;
    uint8_t *b = g_malloc0(MAX(n, 1));

    for (i = 0; i < n; i++) {
        b[i] = g_ascii_xdigit_value(hex[2 * i]) << 4 |
               g_ascii_xdigit_value(hex[2 * i + 1]);
    }
    *len = n;
    return b;
}

typedef struct AeadVector {
    uint8_t *key, *nonce, *ad, *pt, *ct, *tag;
    size_t nkey, nnonce, nad, len, nct, ntag;
} AeadVector;

static void vector_load(AeadVector *v, const QCryptoAeadTestData *d)
{
    v->key = unhex(d->key, &v->nkey);
    v->nonce = unhex(d->nonce, &v->nnonce);
    v->ad = unhex(d->ad, &v->nad);
    v->pt = unhex(d->plaintext, &v->len);
    v->ct = unhex(d->ciphertext, &v->nct);
    v->tag = unhex(d->tag, &v->ntag);
    g_assert_cmpuint(v->len, ==, v->nct);
}

static void vector_clear(AeadVector *v)
{
    g_free(v->key);
    g_free(v->nonce);
    g_free(v->ad);
    g_free(v->pt);
    g_free(v->ct);
    g_free(v->tag);
}

/* Decryption of @v, with @ct, @ad and @tag as given, must fail */
static void assert_refused(QCryptoAead *aead, AeadVector *v,
                           const uint8_t *nonce, const uint8_t *ad,
                           size_t nad, const uint8_t *ct, size_t len,
                           const uint8_t *tag)
{
    g_autofree uint8_t *out = g_malloc(MAX(len, 1));
    Error *err = NULL;

    memset(out, 0xee, MAX(len, 1));
    g_assert_cmpint(qcrypto_aead_decrypt(aead, nonce, v->nnonce, ad, nad,
                                         ct, out, len, tag, v->ntag, &err),
                    ==, -1);
    g_assert_nonnull(strstr(error_get_pretty(err), "authentication failed"));
    error_free(err);
    /* Nothing was written */
    g_assert_cmpuint(out[0], ==, 0xee);
}

static void test_aead(const void *opaque)
{
    const QCryptoAeadTestData *d = opaque;
    g_autoptr(QCryptoAead) aead = NULL;
    g_autofree uint8_t *out = NULL;
    g_autofree uint8_t *back = NULL;
    g_autofree uint8_t *bad = NULL;
    uint8_t tag[16];
    AeadVector v;

    if (!qcrypto_aead_supports(d->alg)) {
        g_test_skip("not supported by the crypto library");
        return;
    }
    vector_load(&v, d);
    g_assert_cmpuint(v.nkey, ==, qcrypto_aead_get_key_len(d->alg));
    g_assert_cmpuint(v.nnonce, ==, qcrypto_aead_get_nonce_len(d->alg));
    g_assert_cmpuint(v.ntag, ==, qcrypto_aead_get_tag_len(d->alg));
    aead = qcrypto_aead_new(d->alg, v.key, v.nkey, &error_abort);

    /* Known answer */
    out = g_malloc0(MAX(v.len, 1));
    g_assert_cmpint(qcrypto_aead_encrypt(aead, v.nonce, v.nnonce, v.ad, v.nad,
                                         v.pt, out, v.len, tag, sizeof(tag),
                                         &error_abort), ==, 0);
    g_assert_cmpmem(out, v.len, v.ct, v.len);
    g_assert_cmpmem(tag, sizeof(tag), v.tag, v.ntag);
    back = g_malloc0(MAX(v.len, 1));
    g_assert_cmpint(qcrypto_aead_decrypt(aead, v.nonce, v.nnonce, v.ad, v.nad,
                                         v.ct, back, v.len, v.tag, v.ntag,
                                         &error_abort), ==, 0);
    g_assert_cmpmem(back, v.len, v.pt, v.len);

    /* In place */
    memcpy(out, v.pt, v.len);
    g_assert_cmpint(qcrypto_aead_encrypt(aead, v.nonce, v.nnonce, v.ad, v.nad,
                                         out, out, v.len, tag, sizeof(tag),
                                         &error_abort), ==, 0);
    g_assert_cmpmem(out, v.len, v.ct, v.len);
    g_assert_cmpint(qcrypto_aead_decrypt(aead, v.nonce, v.nnonce, v.ad, v.nad,
                                         out, out, v.len, tag, sizeof(tag),
                                         &error_abort), ==, 0);
    g_assert_cmpmem(out, v.len, v.pt, v.len);

    /* A flipped bit anywhere, or a truncated ciphertext, is refused */
    /* Room for a copy of any of them */
    bad = g_malloc(MAX(MAX(v.len, v.nad), MAX(v.nnonce, v.nkey)) + v.ntag);
    if (v.len) {
        memcpy(bad, v.ct, v.len);
        bad[v.len - 1] ^= 1;
        assert_refused(aead, &v, v.nonce, v.ad, v.nad, bad, v.len, v.tag);
        assert_refused(aead, &v, v.nonce, v.ad, v.nad, v.ct, v.len - 1,
                       v.tag);
    }
    if (v.nad) {
        memcpy(bad, v.ad, v.nad);
        bad[0] ^= 0x80;
        assert_refused(aead, &v, v.nonce, bad, v.nad, v.ct, v.len, v.tag);
        assert_refused(aead, &v, v.nonce, NULL, 0, v.ct, v.len, v.tag);
    }
    memcpy(bad, v.nonce, v.nnonce);
    bad[v.nnonce - 1] ^= 1;
    assert_refused(aead, &v, bad, v.ad, v.nad, v.ct, v.len, v.tag);
    memcpy(bad, v.tag, v.ntag);
    bad[5] ^= 4;
    assert_refused(aead, &v, v.nonce, v.ad, v.nad, v.ct, v.len, bad);
    {
        /* Another key */
        g_autoptr(QCryptoAead) other = NULL;

        memcpy(bad, v.key, v.nkey);
        bad[0] ^= 1;
        other = qcrypto_aead_new(d->alg, bad, v.nkey, &error_abort);
        assert_refused(other, &v, v.nonce, v.ad, v.nad, v.ct, v.len, v.tag);
    }
    vector_clear(&v);
}

/* Wrong lengths of key, nonce and tag are errors, not crashes */
static void test_aead_lengths(void)
{
    QCryptoAeadAlgo alg = QCRYPTO_AEAD_ALGO_AES_256_GCM;
    uint8_t key[33] = { 0 }, nonce[13] = { 0 }, tag[17] = { 0 }, buf[4];
    g_autoptr(QCryptoAead) aead = NULL;
    Error *err = NULL;

    if (!qcrypto_aead_supports(alg)) {
        g_test_skip("not supported by the crypto library");
        return;
    }
    g_assert_null(qcrypto_aead_new(alg, key, 16, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "key of 32 bytes"));
    g_clear_pointer(&err, error_free);
    g_assert_null(qcrypto_aead_new(QCRYPTO_AEAD_ALGO__MAX, key, 32, &err));
    g_clear_pointer(&err, error_free);

    aead = qcrypto_aead_new(alg, key, 32, &error_abort);
    g_assert_cmpint(qcrypto_aead_encrypt(aead, nonce, 13, NULL, 0, buf, buf,
                                         sizeof(buf), tag, 16, &err), ==, -1);
    g_assert_nonnull(strstr(error_get_pretty(err), "nonce of 12 bytes"));
    g_clear_pointer(&err, error_free);
    g_assert_cmpint(qcrypto_aead_encrypt(aead, nonce, 12, NULL, 0, buf, buf,
                                         sizeof(buf), tag, 8, &err), ==, -1);
    g_assert_nonnull(strstr(error_get_pretty(err), "tag of 16 bytes"));
    g_clear_pointer(&err, error_free);
    g_assert_cmpint(qcrypto_aead_decrypt(aead, nonce, 12, NULL, 0, buf, buf,
                                         sizeof(buf), tag, 17, &err), ==, -1);
    g_clear_pointer(&err, error_free);
}

int main(int argc, char **argv)
{
    size_t i;

    g_test_init(&argc, &argv, NULL);
    g_assert(qcrypto_init(NULL) == 0);

    for (i = 0; i < G_N_ELEMENTS(test_data); i++) {
        g_test_add_data_func(test_data[i].path, &test_data[i], test_aead);
    }
    g_test_add_func("/crypto/aead/lengths", test_aead_lengths);
    return g_test_run();
}
