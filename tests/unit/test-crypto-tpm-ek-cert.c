/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * crypto/tpm-ek-cert.c: EK certificates for an RSA and an ECC key, read
 * back with gnutls -- signed by the CA, the TCG EK Credential Profile's
 * fields and extensions, the key given -- a platform certificate, and
 * the CA refused when its key is not its certificate's or it does not
 * parse.  iotest nvstore-tpm
 * compares them with swtpm_setup's, with openssl.
 */

#include "qemu/osdep.h"
#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/x509.h>
#include "qapi/error.h"
#include "crypto/init.h"
#include "crypto/tpm-ek-cert.h"

/* A CA: a key and a self-signed certificate, both PEM */
typedef struct TestCA {
    gnutls_datum_t key;
    gnutls_datum_t cert;
    gnutls_x509_crt_t crt;
} TestCA;

static void test_ca_make(TestCA *ca, const char *cn)
{
    gnutls_x509_privkey_t key;
    g_autofree char *dn = g_strdup_printf("CN=%s", cn);
    uint8_t serial = 1;
    uint8_t id[64];
    size_t id_len = sizeof(id);

    g_assert_cmpint(gnutls_x509_privkey_init(&key), ==, 0);
    g_assert_cmpint(gnutls_x509_privkey_generate(key, GNUTLS_PK_RSA, 2048,
                                                 0), ==, 0);
    g_assert_cmpint(gnutls_x509_crt_init(&ca->crt), ==, 0);
    gnutls_x509_crt_set_version(ca->crt, 3);
    gnutls_x509_crt_set_serial(ca->crt, &serial, 1);
    gnutls_x509_crt_set_activation_time(ca->crt, time(NULL) - 60);
    gnutls_x509_crt_set_expiration_time(ca->crt, time(NULL) + 86400);
    g_assert_cmpint(gnutls_x509_crt_set_dn(ca->crt, dn, NULL), ==, 0);
    gnutls_x509_crt_set_key(ca->crt, key);
    gnutls_x509_crt_set_basic_constraints(ca->crt, 1, -1);
    gnutls_x509_crt_set_key_usage(ca->crt, GNUTLS_KEY_KEY_CERT_SIGN);
    g_assert_cmpint(gnutls_x509_crt_get_key_id(ca->crt, 0, id, &id_len), ==,
                    0);
    gnutls_x509_crt_set_subject_key_id(ca->crt, id, id_len);
    g_assert_cmpint(gnutls_x509_crt_sign2(ca->crt, ca->crt, key,
                                          GNUTLS_DIG_SHA256, 0), ==, 0);
    g_assert_cmpint(gnutls_x509_crt_export2(ca->crt, GNUTLS_X509_FMT_PEM,
                                            &ca->cert), ==, 0);
    g_assert_cmpint(gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM,
                                                &ca->key), ==, 0);
    gnutls_x509_privkey_deinit(key);
    /* As verifiers have it: parsed from its encoding */
    gnutls_x509_crt_deinit(ca->crt);
    g_assert_cmpint(gnutls_x509_crt_init(&ca->crt), ==, 0);
    g_assert_cmpint(gnutls_x509_crt_import(ca->crt, &ca->cert,
                                           GNUTLS_X509_FMT_PEM), ==, 0);
}

static void test_ca_free(TestCA *ca)
{
    gnutls_free(ca->key.data);
    gnutls_free(ca->cert.data);
    gnutls_x509_crt_deinit(ca->crt);
}

static TestCA ca, other_ca;

/* An EK: its public key, for the certificate */
typedef struct TestEK {
    gnutls_pubkey_t pub;
    gnutls_datum_t a, b;        /* n and e, or x and y */
} TestEK;

static void test_ek_make(TestEK *ek, bool ecc)
{
    gnutls_privkey_t priv;

    g_assert_cmpint(gnutls_privkey_init(&priv), ==, 0);
    g_assert_cmpint(gnutls_privkey_generate(priv, ecc ? GNUTLS_PK_ECDSA :
                                            GNUTLS_PK_RSA,
                                            ecc ? GNUTLS_CURVE_TO_BITS(
                                                GNUTLS_ECC_CURVE_SECP256R1) :
                                            2048, 0), ==, 0);
    g_assert_cmpint(gnutls_pubkey_init(&ek->pub), ==, 0);
    g_assert_cmpint(gnutls_pubkey_import_privkey(ek->pub, priv, 0, 0), ==, 0);
    if (ecc) {
        g_assert_cmpint(gnutls_pubkey_export_ecc_raw2(ek->pub, NULL, &ek->a,
                                                      &ek->b,
                                                      GNUTLS_EXPORT_FLAG_NO_LZ),
                        ==, 0);
    } else {
        g_assert_cmpint(gnutls_pubkey_export_rsa_raw2(ek->pub, &ek->a, &ek->b,
                                                      GNUTLS_EXPORT_FLAG_NO_LZ),
                        ==, 0);
    }
    gnutls_privkey_deinit(priv);
}

static void test_ek_free(TestEK *ek)
{
    gnutls_free(ek->a.data);
    gnutls_free(ek->b.data);
    gnutls_pubkey_deinit(ek->pub);
}

static QCryptoTPMEKCert test_cert_info(const TestEK *ek, bool ecc,
                                       const TestCA *signer,
                                       const TestCA *key_of)
{
    QCryptoTPMEKCert c = {
        .ecc = ecc,
        .manufacturer = "id:00001014",
        .model = "swtpm",
        .version = "id:20191023",
        .spec_family = "2.0",
        .spec_level = 0,
        .spec_revision = 164,
        .ca_cert = signer->cert.data,
        .ca_cert_len = signer->cert.size,
        .ca_key = key_of->key.data,
        .ca_key_len = key_of->key.size,
    };
    uint32_t e = 0;
    size_t i;

    if (ecc) {
        /* Without leading zero octets: either may be shorter */
        c.ecc_x = ek->a.data;
        c.ecc_x_len = ek->a.size;
        c.ecc_y = ek->b.data;
        c.ecc_y_len = ek->b.size;
    } else {
        c.rsa_n = ek->a.data;
        c.rsa_n_len = ek->a.size;
        for (i = 0; i < ek->b.size; i++) {
            e = e << 8 | ek->b.data[i];
        }
        c.rsa_e = e;
    }
    return c;
}

/* The DER value of extension @oid of @crt, and whether it is critical */
static bool ext_get(gnutls_x509_crt_t crt, const char *oid,
                    gnutls_datum_t *val, unsigned *critical)
{
    int err = gnutls_x509_crt_get_extension_by_oid2(crt, oid, 0, val,
                                                    critical);

    return err == 0;
}

static void check_cert(const uint8_t *der, size_t len, const TestEK *ek,
                       bool ecc)
{
    /* The value of the SAN: [4] { Name { the three TPM attributes } } */
    static const uint8_t san_tail[] = {
        0x06, 0x05, 0x67, 0x81, 0x05, 0x02, 0x03, 0x0c, 0x0b,
        'i', 'd', ':', '2', '0', '1', '9', '1', '0', '2', '3',
    };
    static const uint8_t sda[] = {
        0x30, 0x19, 0x30, 0x17, 0x06, 0x05, 0x67, 0x81, 0x05, 0x02, 0x10,
        0x31, 0x0e, 0x30, 0x0c, 0x0c, 0x03, '2', '.', '0', 0x02, 0x01, 0x00,
        0x02, 0x02, 0x00, 0xa4,
    };
    gnutls_datum_t d = { (unsigned char *)der, len };
    gnutls_x509_crt_t crt;
    gnutls_pubkey_t pub;
    gnutls_datum_t val, mine, theirs;
    unsigned critical, usage, verify;
    uint8_t id[64], ca_id[64];
    size_t id_len = sizeof(id), ca_id_len = sizeof(ca_id);
    char oid[64];
    size_t oid_len = sizeof(oid);
    char dn[64];
    size_t dn_len = sizeof(dn);

    g_assert_cmpint(gnutls_x509_crt_init(&crt), ==, 0);
    g_assert_cmpint(gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_DER),
                    ==, 0);
    g_assert_cmpint(gnutls_x509_crt_get_version(crt), ==, 3);
    g_assert_cmpint(gnutls_x509_crt_verify(crt, &ca.crt, 1, 0, &verify),
                    ==, 0);

    g_assert_cmpuint(verify, ==, 0);
    g_assert_cmpint(gnutls_x509_crt_get_dn(crt, dn, &dn_len), ==, 0);
    g_assert_cmpstr(dn, ==, "CN=unknown");
    /* 99991231235959Z: gnutls says (time_t)-1, no well-defined end */
    g_assert(gnutls_x509_crt_get_expiration_time(crt) == (time_t)-1 ||
             gnutls_x509_crt_get_expiration_time(crt) ==
             (time_t)253402300799);
    g_assert_cmpint(gnutls_x509_crt_get_signature_algorithm(crt), ==,
                    GNUTLS_SIGN_RSA_SHA256);

    /* The key is the EK's */
    g_assert_cmpint(gnutls_pubkey_init(&pub), ==, 0);
    g_assert_cmpint(gnutls_pubkey_import_x509(pub, crt, 0), ==, 0);
    g_assert_cmpint(gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &mine),
                    ==, 0);
    g_assert_cmpint(gnutls_pubkey_export2(ek->pub, GNUTLS_X509_FMT_DER,
                                          &theirs), ==, 0);
    g_assert_cmpmem(mine.data, mine.size, theirs.data, theirs.size);
    gnutls_free(mine.data);
    gnutls_free(theirs.data);
    gnutls_pubkey_deinit(pub);

    /* The extensions */
    g_assert_cmpint(gnutls_x509_crt_get_key_purpose_oid(crt, 0, oid,
                                                        &oid_len, &critical),
                    ==, 0);
    g_assert_cmpstr(oid, ==, "2.23.133.8.1");
    g_assert(ext_get(crt, "2.5.29.17", &val, &critical));
    g_assert_cmpuint(critical, ==, 1);
    g_assert_cmpuint(val.data[2], ==, 0xa4);        /* directoryName */
    g_assert_cmpmem(val.data + val.size - sizeof(san_tail), sizeof(san_tail),
                    san_tail, sizeof(san_tail));
    gnutls_free(val.data);
    g_assert(ext_get(crt, "2.5.29.9", &val, &critical));
    g_assert_cmpuint(critical, ==, 0);
    g_assert_cmpmem(val.data, val.size, sda, sizeof(sda));
    gnutls_free(val.data);
    g_assert_cmpint(gnutls_x509_crt_get_basic_constraints(crt, &critical,
                                                          NULL, NULL), ==, 0);
    g_assert_cmpuint(critical, ==, 1);
    g_assert_cmpint(gnutls_x509_crt_get_key_usage(crt, &usage, &critical),
                    ==, 0);
    g_assert_cmpuint(critical, ==, 1);
    g_assert_cmpuint(usage, ==, ecc ? GNUTLS_KEY_KEY_AGREEMENT :
                     GNUTLS_KEY_KEY_ENCIPHERMENT);
    g_assert_cmpint(gnutls_x509_crt_get_authority_key_id(crt, id, &id_len,
                                                         &critical), ==, 0);
    g_assert_cmpint(gnutls_x509_crt_get_subject_key_id(ca.crt, ca_id,
                                                       &ca_id_len, NULL),
                    ==, 0);
    g_assert_cmpmem(id, id_len, ca_id, ca_id_len);
    gnutls_x509_crt_deinit(crt);
}

static void test_ek_cert(const void *opaque)
{
    bool ecc = GPOINTER_TO_INT(opaque);
    g_autofree uint8_t *der = NULL;
    g_autofree uint8_t *der2 = NULL;
    size_t len, len2;
    TestEK ek;
    QCryptoTPMEKCert c;

    test_ek_make(&ek, ecc);
    c = test_cert_info(&ek, ecc, &ca, &ca);
    g_assert_cmpint(qcrypto_tpm_ek_cert_create(&c, &der, &len, &error_abort),
                    ==, 0);
    check_cert(der, len, &ek, ecc);
    /* A second certificate: another serial number */
    g_assert_cmpint(qcrypto_tpm_ek_cert_create(&c, &der2, &len2,
                                               &error_abort), ==, 0);
    g_assert(len != len2 || memcmp(der, der2, len));
    test_ek_free(&ek);
}

/* An ECC key a coordinate of which has a leading zero octet */
static void test_ek_cert_short_coordinate(void)
{
    g_autofree uint8_t *der = NULL;
    QCryptoTPMEKCert c;
    size_t len;
    TestEK ek;
    int tries;

    /* One key in 128 has one: a leading octet of 0 for x or y */
    for (tries = 0; tries < 10000; tries++) {
        test_ek_make(&ek, true);
        if (ek.a.size < 32 || ek.b.size < 32) {
            break;
        }
        test_ek_free(&ek);
    }
    g_assert_cmpint(tries, <, 10000);
    c = test_cert_info(&ek, true, &ca, &ca);
    g_assert_cmpint(qcrypto_tpm_ek_cert_create(&c, &der, &len, &error_abort),
                    ==, 0);
    check_cert(der, len, &ek, true);
    test_ek_free(&ek);
}

static void test_platform_cert(void)
{
    /* The end of the SAN: platformVersion "2.1" */
    static const uint8_t san_tail[] = {
        0x06, 0x06, 0x67, 0x81, 0x05, 0x05, 0x01, 0x05, 0x0c, 0x03,
        '2', '.', '1',
    };
    g_autofree uint8_t *der = NULL;
    gnutls_x509_crt_t crt;
    gnutls_datum_t d, val;
    unsigned critical, usage, verify;
    char oid[64];
    size_t oid_len = sizeof(oid), len;
    QCryptoTPMEKCert c;
    TestEK ek;

    test_ek_make(&ek, false);
    c = test_cert_info(&ek, false, &ca, &ca);
    c.platform = true;
    c.platform_manufacturer = "nvstore";
    c.platform_model = "QEMU";
    c.platform_version = "2.1";
    g_assert_cmpint(qcrypto_tpm_ek_cert_create(&c, &der, &len, &error_abort),
                    ==, 0);
    d.data = der;
    d.size = len;
    g_assert_cmpint(gnutls_x509_crt_init(&crt), ==, 0);
    g_assert_cmpint(gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_DER),
                    ==, 0);
    g_assert_cmpint(gnutls_x509_crt_verify(crt, &ca.crt, 1, 0, &verify),
                    ==, 0);
    g_assert_cmpuint(verify, ==, 0);
    g_assert_cmpint(gnutls_x509_crt_get_key_purpose_oid(crt, 0, oid,
                                                        &oid_len, &critical),
                    ==, 0);
    g_assert_cmpstr(oid, ==, "2.23.133.8.2");
    g_assert(ext_get(crt, "2.5.29.17", &val, &critical));
    g_assert_cmpuint(critical, ==, 1);
    g_assert_cmpmem(val.data + val.size - sizeof(san_tail), sizeof(san_tail),
                    san_tail, sizeof(san_tail));
    gnutls_free(val.data);
    /* No TPM specification: that is the EK certificate's */
    g_assert(!ext_get(crt, "2.5.29.9", &val, &critical));
    g_assert_cmpint(gnutls_x509_crt_get_key_usage(crt, &usage, &critical),
                    ==, 0);
    g_assert_cmpuint(usage, ==, GNUTLS_KEY_KEY_ENCIPHERMENT);
    gnutls_x509_crt_deinit(crt);
    test_ek_free(&ek);
}

static void test_ek_cert_bad_ca(void)
{
    g_autofree uint8_t *der = NULL;
    Error *err = NULL;
    QCryptoTPMEKCert c;
    size_t len;
    TestEK ek;

    test_ek_make(&ek, false);
    /* The key of another CA */
    c = test_cert_info(&ek, false, &ca, &other_ca);
    g_assert_cmpint(qcrypto_tpm_ek_cert_create(&c, &der, &len, &err), ==, -1);
    g_assert(strstr(error_get_pretty(err), "not the key of the CA"));
    error_free(err);
    err = NULL;
    g_assert_cmpint(qcrypto_tpm_ek_ca_check(ca.cert.data, ca.cert.size,
                                            other_ca.key.data,
                                            other_ca.key.size, &err), ==, -1);
    error_free(err);
    err = NULL;
    g_assert_cmpint(qcrypto_tpm_ek_ca_check(ca.cert.data, ca.cert.size,
                                            ca.key.data, ca.key.size,
                                            &error_abort), ==, 0);
    /* A key where the certificate should be, and junk for the key */
    c.ca_cert = ca.key.data;
    c.ca_cert_len = ca.key.size;
    g_assert_cmpint(qcrypto_tpm_ek_cert_create(&c, &der, &len, &err), ==, -1);
    g_assert(strstr(error_get_pretty(err), "not an X.509 certificate"));
    error_free(err);
    err = NULL;
    g_assert_cmpint(qcrypto_tpm_ek_ca_check(ca.cert.data, ca.cert.size,
                                            (const uint8_t *)"junk", 4,
                                            &err), ==, -1);
    g_assert(strstr(error_get_pretty(err), "not an unencrypted private"));
    error_free(err);
    test_ek_free(&ek);
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    g_assert(qcrypto_init(NULL) == 0);
    test_ca_make(&ca, "test CA");
    test_ca_make(&other_ca, "another CA");
    g_test_add_data_func("/crypto/tpm-ek-cert/rsa", GINT_TO_POINTER(false),
                         test_ek_cert);
    g_test_add_data_func("/crypto/tpm-ek-cert/ecc", GINT_TO_POINTER(true),
                         test_ek_cert);
    g_test_add_func("/crypto/tpm-ek-cert/ecc-short-coordinate",
                    test_ek_cert_short_coordinate);
    g_test_add_func("/crypto/tpm-ek-cert/platform", test_platform_cert);
    g_test_add_func("/crypto/tpm-ek-cert/bad-ca", test_ek_cert_bad_ca);
    ret = g_test_run();
    test_ca_free(&ca);
    test_ca_free(&other_ca);
    return ret;
}
