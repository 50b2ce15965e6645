/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The certificate of a TPM 2.0's endorsement key (TCG EK Credential
 * Profile for TPM Family 2.0, section 3): X.509 v3 by gnutls, the TCG
 * extensions' values by QEMU's DER encoder.
 */

#include "qemu/osdep.h"
#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/x509.h>
#include "qapi/error.h"
#include "qemu/bswap.h"
#include "crypto/random.h"
#include "crypto/tpm-ek-cert.h"
#include "der.h"

/* tcg-at-tpmManufacturer, -tpmModel, -tpmVersion: 2.23.133.2.1, .2, .3 */
static const uint8_t tcg_at_tpm_manufacturer[] = { 0x67, 0x81, 0x05, 2, 1 };
static const uint8_t tcg_at_tpm_model[] = { 0x67, 0x81, 0x05, 2, 2 };
static const uint8_t tcg_at_tpm_version[] = { 0x67, 0x81, 0x05, 2, 3 };
/* tcg-at-tpmSpecification: 2.23.133.2.16 */
static const uint8_t tcg_at_tpm_specification[] = { 0x67, 0x81, 0x05, 2, 16 };
/*
 * tcg-at-platformManufacturerStr, -platformModel, -platformVersion:
 * 2.23.133.5.1.1, .4, .5
 */
static const uint8_t tcg_at_platform_manufacturer[] = {
    0x67, 0x81, 0x05, 5, 1, 1
};
static const uint8_t tcg_at_platform_model[] = { 0x67, 0x81, 0x05, 5, 1, 4 };
static const uint8_t tcg_at_platform_version[] = {
    0x67, 0x81, 0x05, 5, 1, 5
};
/* tcg-kp-EKCertificate, tcg-kp-PlatformCertificate: 2.23.133.8.1, .2 */
#define TCG_KP_EK_CERTIFICATE   "2.23.133.8.1"
#define TCG_KP_PLATFORM_CERTIFICATE "2.23.133.8.2"
#define OID_SUBJECT_ALT_NAME    "2.5.29.17"
#define OID_SUBJECT_DIR_ATTRS   "2.5.29.9"

/* The subject the EK certificates of swtpm_setup have */
#define EK_CERT_SUBJECT         "CN=unknown"

/* The DER of what @ctx holds, and @ctx freed */
static GByteArray *der_take(QCryptoEncodeContext *ctx)
{
    GByteArray *out = g_byte_array_new();

    g_byte_array_set_size(out, qcrypto_der_encode_ctx_buffer_len(ctx));
    qcrypto_der_encode_ctx_flush_and_free(ctx, out->data);
    return out;
}

/*
 * A SET OF with the one element @elem (kept in @keep until the encoding
 * is flushed)
 */
static void encode_set_of_one(QCryptoEncodeContext *ctx, GByteArray *elem,
                              GPtrArray *keep)
{
    g_ptr_array_add(keep, elem);
    qcrypto_der_encode_set_begin(ctx);
    qcrypto_der_encode_raw(ctx, elem->data, elem->len);
    qcrypto_der_encode_set_end(ctx);
}

/* One attribute of a Name: SET { SEQUENCE { type, UTF8String value } } */
static void encode_rdn(QCryptoEncodeContext *ctx, const uint8_t *oid,
                       size_t oid_len, const char *value, GPtrArray *keep)
{
    QCryptoEncodeContext *seq = qcrypto_der_encode_ctx_new();

    qcrypto_der_encode_seq_begin(seq);
    qcrypto_der_encode_oid(seq, oid, oid_len);
    qcrypto_der_encode_utf8_str(seq, value, strlen(value));
    qcrypto_der_encode_seq_end(seq);
    encode_set_of_one(ctx, der_take(seq), keep);
}

/*
 * SubjectAltName: GeneralNames { directoryName [4] EXPLICIT Name {
 * manufacturer, model, version } }, the TPM's or, with @platform, the
 * platform's
 */
static GByteArray *encode_san(const QCryptoTPMEKCert *ek, bool platform)
{
    QCryptoEncodeContext *ctx = qcrypto_der_encode_ctx_new();
    g_autoptr(GPtrArray) keep = g_ptr_array_new_with_free_func(
        (GDestroyNotify)g_byte_array_unref);
    g_autoptr(GByteArray) name = NULL;
    g_autoptr(GByteArray) tagged = g_byte_array_new();
    uint8_t hdr[4] = { 0xa4 };
    size_t hlen;

    qcrypto_der_encode_seq_begin(ctx);
    if (platform) {
        encode_rdn(ctx, tcg_at_platform_manufacturer,
                   sizeof(tcg_at_platform_manufacturer),
                   ek->platform_manufacturer, keep);
        encode_rdn(ctx, tcg_at_platform_model, sizeof(tcg_at_platform_model),
                   ek->platform_model, keep);
        encode_rdn(ctx, tcg_at_platform_version,
                   sizeof(tcg_at_platform_version), ek->platform_version,
                   keep);
    } else {
        encode_rdn(ctx, tcg_at_tpm_manufacturer,
                   sizeof(tcg_at_tpm_manufacturer), ek->manufacturer, keep);
        encode_rdn(ctx, tcg_at_tpm_model, sizeof(tcg_at_tpm_model),
                   ek->model, keep);
        encode_rdn(ctx, tcg_at_tpm_version, sizeof(tcg_at_tpm_version),
                   ek->version, keep);
    }
    qcrypto_der_encode_seq_end(ctx);
    name = der_take(ctx);

    /* The context tag around it: a length of up to 65535 */
    assert(name->len <= UINT16_MAX);
    if (name->len < 0x80) {
        hdr[1] = name->len;
        hlen = 2;
    } else if (name->len <= 0xff) {
        hdr[1] = 0x81;
        hdr[2] = name->len;
        hlen = 3;
    } else {
        hdr[1] = 0x82;
        hdr[2] = name->len >> 8;
        hdr[3] = name->len;
        hlen = 4;
    }
    g_byte_array_append(tagged, hdr, hlen);
    g_byte_array_append(tagged, name->data, name->len);

    ctx = qcrypto_der_encode_ctx_new();
    qcrypto_der_encode_seq_begin(ctx);
    qcrypto_der_encode_raw(ctx, tagged->data, tagged->len);
    qcrypto_der_encode_seq_end(ctx);
    return der_take(ctx);
}

/*
 * SubjectDirectoryAttributes: SEQUENCE { Attribute { tpmSpecification,
 * SET { TPMSpecification { family, level, revision } } } }
 */
static GByteArray *encode_sda(const QCryptoTPMEKCert *ek)
{
    QCryptoEncodeContext *spec = qcrypto_der_encode_ctx_new();
    QCryptoEncodeContext *ctx = qcrypto_der_encode_ctx_new();
    g_autoptr(GPtrArray) keep = g_ptr_array_new_with_free_func(
        (GDestroyNotify)g_byte_array_unref);

    qcrypto_der_encode_seq_begin(spec);
    qcrypto_der_encode_utf8_str(spec, ek->spec_family,
                                strlen(ek->spec_family));
    qcrypto_der_encode_uint64(spec, ek->spec_level);
    qcrypto_der_encode_uint64(spec, ek->spec_revision);
    qcrypto_der_encode_seq_end(spec);

    qcrypto_der_encode_seq_begin(ctx);
    qcrypto_der_encode_seq_begin(ctx);
    qcrypto_der_encode_oid(ctx, tcg_at_tpm_specification,
                           sizeof(tcg_at_tpm_specification));
    encode_set_of_one(ctx, der_take(spec), keep);
    qcrypto_der_encode_seq_end(ctx);
    qcrypto_der_encode_seq_end(ctx);
    return der_take(ctx);
}

/* A gnutls failure of @what, reported */
static int gnutls_fail(int err, const char *what, Error **errp)
{
    error_setg(errp, "EK certificate: %s: %s", what, gnutls_strerror(err));
    return -1;
}

/* Import the CA's certificate and key, and check that they belong together */
static int import_ca(const uint8_t *ca_cert, size_t ca_cert_len,
                     const uint8_t *ca_key, size_t ca_key_len,
                     gnutls_x509_crt_t ca, gnutls_x509_privkey_t key,
                     Error **errp)
{
    gnutls_datum_t d;
    uint8_t cert_id[64], key_id[64];
    size_t cert_id_len = sizeof(cert_id), key_id_len = sizeof(key_id);
    int err;

    d.data = (unsigned char *)ca_cert;
    d.size = ca_cert_len;
    err = gnutls_x509_crt_import(ca, &d, GNUTLS_X509_FMT_PEM);
    if (err < 0) {
        err = gnutls_x509_crt_import(ca, &d, GNUTLS_X509_FMT_DER);
    }
    if (err < 0) {
        error_setg(errp, "The CA certificate is not an X.509 certificate "
                   "(PEM or DER): %s", gnutls_strerror(err));
        return -1;
    }
    d.data = (unsigned char *)ca_key;
    d.size = ca_key_len;
    err = gnutls_x509_privkey_import2(key, &d, GNUTLS_X509_FMT_PEM, NULL,
                                      GNUTLS_PKCS_PLAIN);
    if (err < 0) {
        err = gnutls_x509_privkey_import2(key, &d, GNUTLS_X509_FMT_DER, NULL,
                                          GNUTLS_PKCS_PLAIN);
    }
    if (err < 0) {
        error_setg(errp, "The CA key is not an unencrypted private key "
                   "(PEM or DER): %s", gnutls_strerror(err));
        return -1;
    }
    if (gnutls_x509_crt_get_key_id(ca, GNUTLS_KEYID_USE_SHA256, cert_id,
                                   &cert_id_len) < 0 ||
        gnutls_x509_privkey_get_key_id(key, GNUTLS_KEYID_USE_SHA256, key_id,
                                       &key_id_len) < 0 ||
        cert_id_len != key_id_len || memcmp(cert_id, key_id, key_id_len)) {
        error_setg(errp, "The CA key is not the key of the CA certificate");
        return -1;
    }
    return 0;
}

/* The EK's public key */
static int import_ek(const QCryptoTPMEKCert *ek, gnutls_pubkey_t pub,
                     Error **errp)
{
    gnutls_datum_t a, b;
    uint8_t e[4];
    int err;

    if (ek->ecc) {
        a.data = (unsigned char *)ek->ecc_x;
        a.size = ek->ecc_x_len;
        b.data = (unsigned char *)ek->ecc_y;
        b.size = ek->ecc_y_len;
        err = gnutls_pubkey_import_ecc_raw(pub, GNUTLS_ECC_CURVE_SECP256R1,
                                           &a, &b);
    } else {
        stl_be_p(e, ek->rsa_e);
        a.data = (unsigned char *)ek->rsa_n;
        a.size = ek->rsa_n_len;
        b.data = e;
        b.size = sizeof(e);
        err = gnutls_pubkey_import_rsa_raw(pub, &a, &b);
    }
    if (err < 0) {
        return gnutls_fail(err, "the endorsement key", errp);
    }
    return 0;
}

int qcrypto_tpm_ek_ca_check(const uint8_t *cert, size_t cert_len,
                            const uint8_t *key, size_t key_len,
                            Error **errp)
{
    gnutls_x509_crt_t ca = NULL;
    gnutls_x509_privkey_t k = NULL;
    int ret = -1;

    if (gnutls_x509_crt_init(&ca) < 0 || gnutls_x509_privkey_init(&k) < 0) {
        error_setg(errp, "EK certificate: out of memory");
    } else {
        ret = import_ca(cert, cert_len, key, key_len, ca, k, errp);
    }
    gnutls_x509_privkey_deinit(k);
    gnutls_x509_crt_deinit(ca);
    return ret;
}

/* Version, serial number, validity, subject and key */
static int set_fields(gnutls_x509_crt_t crt, gnutls_pubkey_t pub,
                      Error **errp)
{
    uint8_t serial[16];
    int err;

    /* Positive, and no leading zero octet */
    if (qcrypto_random_bytes(serial, sizeof(serial), errp) < 0) {
        return -1;
    }
    serial[0] = (serial[0] & 0x7f) | 0x40;

    err = gnutls_x509_crt_set_version(crt, 3);
    if (err < 0) {
        return gnutls_fail(err, "version", errp);
    }
    err = gnutls_x509_crt_set_serial(crt, serial, sizeof(serial));
    if (err < 0) {
        return gnutls_fail(err, "serial number", errp);
    }
    err = gnutls_x509_crt_set_activation_time(crt, time(NULL));
    if (err >= 0) {
        /* (time_t)-1: 99991231235959Z, no well-defined expiration */
        err = gnutls_x509_crt_set_expiration_time(crt, (time_t)-1);
    }
    if (err < 0) {
        return gnutls_fail(err, "validity", errp);
    }
    err = gnutls_x509_crt_set_dn(crt, EK_CERT_SUBJECT, NULL);
    if (err < 0) {
        return gnutls_fail(err, "subject", errp);
    }
    err = gnutls_x509_crt_set_pubkey(crt, pub);
    if (err < 0) {
        return gnutls_fail(err, "subject public key", errp);
    }
    return 0;
}

static int set_ext(gnutls_x509_crt_t crt, const char *oid, GByteArray *val,
                   bool critical, const char *what, Error **errp)
{
    int err = gnutls_x509_crt_set_extension_by_oid(crt, oid, val->data,
                                                   val->len, critical);

    return err < 0 ? gnutls_fail(err, what, errp) : 0;
}

/* The CA's key identifier */
static int set_aki(gnutls_x509_crt_t crt, gnutls_x509_crt_t ca, Error **errp)
{
    uint8_t id[64];
    size_t id_len = sizeof(id);
    unsigned int critical;
    int err;

    err = gnutls_x509_crt_get_subject_key_id(ca, id, &id_len, &critical);
    if (err < 0) {
        /* A CA certificate without one: the key's SHA-1 identifier */
        id_len = sizeof(id);
        err = gnutls_x509_crt_get_key_id(ca, GNUTLS_KEYID_USE_SHA1, id,
                                         &id_len);
    }
    if (err >= 0) {
        err = gnutls_x509_crt_set_authority_key_id(crt, id, id_len);
    }
    return err < 0 ? gnutls_fail(err, "authority key identifier", errp) : 0;
}

/* The extended key usage: what the certificate is, @oid */
static int set_eku(gnutls_x509_crt_t crt, const char *oid, Error **errp)
{
    int err = gnutls_x509_crt_set_key_purpose_oid(crt, oid, 0);

    return err < 0 ? gnutls_fail(err, "extended key usage", errp) : 0;
}

/*
 * The subject alternative name, critical (the TPM's or, with @platform,
 * the platform's identity), then the basic constraints: not a CA
 */
static int set_san_not_ca(gnutls_x509_crt_t crt, const QCryptoTPMEKCert *ek,
                          bool platform, Error **errp)
{
    g_autoptr(GByteArray) san = encode_san(ek, platform);
    int err;

    if (set_ext(crt, OID_SUBJECT_ALT_NAME, san, true,
                "subject alternative name", errp) < 0) {
        return -1;
    }
    err = gnutls_x509_crt_set_basic_constraints(crt, 0, -1);
    return err < 0 ? gnutls_fail(err, "basic constraints", errp) : 0;
}

/* The key usage of an EK: key encipherment (RSA), key agreement (ECC) */
static int set_key_usage(gnutls_x509_crt_t crt, const QCryptoTPMEKCert *ek,
                         Error **errp)
{
    int err = gnutls_x509_crt_set_key_usage(crt, ek->ecc ?
                                            GNUTLS_KEY_KEY_AGREEMENT :
                                            GNUTLS_KEY_KEY_ENCIPHERMENT);

    return err < 0 ? gnutls_fail(err, "key usage", errp) : 0;
}

/* The extensions of an EK certificate, in the order swtpm_cert writes them */
static int set_ek_extensions(gnutls_x509_crt_t crt, gnutls_x509_crt_t ca,
                             const QCryptoTPMEKCert *ek, Error **errp)
{
    g_autoptr(GByteArray) sda = encode_sda(ek);

    if (set_eku(crt, TCG_KP_EK_CERTIFICATE, errp) < 0 ||
        set_san_not_ca(crt, ek, false, errp) < 0 ||
        set_ext(crt, OID_SUBJECT_DIR_ATTRS, sda, false,
                "subject directory attributes", errp) < 0 ||
        set_aki(crt, ca, errp) < 0) {
        return -1;
    }
    return set_key_usage(crt, ek, errp);
}

/*
 * The extensions of a platform certificate, in the order swtpm_cert
 * writes them
 */
static int set_platform_extensions(gnutls_x509_crt_t crt,
                                   gnutls_x509_crt_t ca,
                                   const QCryptoTPMEKCert *ek, Error **errp)
{
    if (set_san_not_ca(crt, ek, true, errp) < 0 ||
        set_aki(crt, ca, errp) < 0 ||
        set_key_usage(crt, ek, errp) < 0) {
        return -1;
    }
    return set_eku(crt, TCG_KP_PLATFORM_CERTIFICATE, errp);
}

int qcrypto_tpm_ek_cert_create(const QCryptoTPMEKCert *ek,
                               uint8_t **der, size_t *der_len,
                               Error **errp)
{
    gnutls_x509_crt_t crt = NULL, ca = NULL;
    gnutls_x509_privkey_t key = NULL;
    gnutls_privkey_t signer = NULL;
    gnutls_pubkey_t pub = NULL;
    gnutls_datum_t out = { NULL, 0 };
    int ret = -1;
    int err;

    if (gnutls_x509_crt_init(&crt) < 0 || gnutls_x509_crt_init(&ca) < 0 ||
        gnutls_x509_privkey_init(&key) < 0 ||
        gnutls_privkey_init(&signer) < 0 || gnutls_pubkey_init(&pub) < 0) {
        error_setg(errp, "EK certificate: out of memory");
        goto out;
    }
    if (import_ca(ek->ca_cert, ek->ca_cert_len, ek->ca_key, ek->ca_key_len,
                  ca, key, errp) < 0 ||
        import_ek(ek, pub, errp) < 0 ||
        set_fields(crt, pub, errp) < 0 ||
        (ek->platform ? set_platform_extensions(crt, ca, ek, errp) :
                        set_ek_extensions(crt, ca, ek, errp)) < 0) {
        goto out;
    }
    err = gnutls_privkey_import_x509(signer, key, 0);
    if (err >= 0) {
        err = gnutls_x509_crt_privkey_sign(crt, ca, signer,
                                           GNUTLS_DIG_SHA256, 0);
    }
    if (err < 0) {
        gnutls_fail(err, "signing", errp);
        goto out;
    }
    err = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &out);
    if (err < 0) {
        gnutls_fail(err, "export", errp);
        goto out;
    }
    *der = g_memdup2(out.data, out.size);
    *der_len = out.size;
    gnutls_free(out.data);
    ret = 0;

out:
    gnutls_pubkey_deinit(pub);
    gnutls_privkey_deinit(signer);
    gnutls_x509_privkey_deinit(key);
    gnutls_x509_crt_deinit(ca);
    gnutls_x509_crt_deinit(crt);
    return ret;
}
