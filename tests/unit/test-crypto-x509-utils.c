/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * qcrypto_x509_convert_cert_der(): a certificate in PEM or in DER, given
 * back in DER with the start of its validity; what is not one, refused.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "crypto/init.h"
#include "crypto/x509-utils.h"

/* openssl req -x509 -newkey ec (P-256), valid from 2026-12-07 08:01:55 */
static const char cert_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBmTCCAT+gAwIBAgIULzrVBRtIj/NpX5Mk9sU9ICiTSlQwCgYIKoZIzj0EAwIw\n"
    "IjEgMB4GA1UEAwwXbnZzdG9yZSB4NTA5LXV0aWxzIHRlc3QwHhcNMjYxMjA3MDgw\n"
    "MTU1WhcNMzYxMjA0MDgwMTU1WjAiMSAwHgYDVQQDDBdudnN0b3JlIHg1MDktdXRp\n"
    "bHMgdGVzdDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABGHVhV/L5ZLyGC4RhKWW\n"
    "5+vGjqab75dVpb4mmX0RvVS56TyEFBT7hDLsZrUDYFeNSk807yQ+ojy+bSqDZzJi\n"
    "MtWjUzBRMB0GA1UdDgQWBBRMmxLlMC6kvEHdYOs3uhB/2IFgKjAfBgNVHSMEGDAW\n"
    "gBRMmxLlMC6kvEHdYOs3uhB/2IFgKjAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49\n"
    "BAMCA0gAMEUCIAo4Exc+FHQ0YBwIt1uryg9qRzoGnpHYw4dRG65sv2/nAiEAibOI\n"
    "NtuIuwAgUdYYQyIcRAfkdJ5jhd7rWdbDa4VhrhQ=\n"
    "-----END CERTIFICATE-----\n";
#define CERT_DER_LEN    413
#define CERT_NOT_BEFORE 1796630515      /* 2026-12-07 08:01:55 UTC */

/* The DER of cert_pem: its base64 body, decoded */
static uint8_t *expected_der(size_t *len)
{
    g_autofree char *body = g_strdup(cert_pem + strlen("-----BEGIN "
                                                       "CERTIFICATE-----\n"));

    *strstr(body, "-----END") = '\0';
    return g_base64_decode(body, len);
}

static void test_pem_and_der(void)
{
    g_autofree uint8_t *want = NULL, *der = NULL, *again = NULL;
    size_t want_len, len, again_len;
    int64_t not_before = 0;

    want = expected_der(&want_len);
    g_assert_cmpuint(want_len, ==, CERT_DER_LEN);
    g_assert_cmpint(qcrypto_x509_convert_cert_der((const uint8_t *)cert_pem,
                                                  strlen(cert_pem), &der,
                                                  &len, &not_before,
                                                  &error_abort), ==, 0);
    g_assert_cmpmem(der, len, want, want_len);
    g_assert_cmpint(not_before, ==, CERT_NOT_BEFORE);

    /* DER in, the same DER out; the time is optional */
    g_assert_cmpint(qcrypto_x509_convert_cert_der(want, want_len, &again,
                                                  &again_len, NULL,
                                                  &error_abort), ==, 0);
    g_assert_cmpmem(again, again_len, want, want_len);
}

static void test_refused(void)
{
    g_autofree uint8_t *want = NULL;
    uint8_t *der = NULL;
    size_t want_len, len;
    Error *err = NULL;

    want = expected_der(&want_len);
    g_assert_cmpint(qcrypto_x509_convert_cert_der((const uint8_t *)"junk", 4,
                                                  &der, &len, NULL, &err),
                    ==, -1);
    error_free_or_abort(&err);
    /* Truncated DER, and a PEM whose body was cut */
    g_assert_cmpint(qcrypto_x509_convert_cert_der(want, want_len - 1, &der,
                                                  &len, NULL, &err), ==, -1);
    error_free_or_abort(&err);
    g_assert_cmpint(qcrypto_x509_convert_cert_der((const uint8_t *)cert_pem,
                                                  200, &der, &len, NULL,
                                                  &err), ==, -1);
    error_free_or_abort(&err);
    g_assert_null(der);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_assert(qcrypto_init(NULL) == 0);
    g_test_add_func("/crypto/x509-utils/pem-and-der", test_pem_and_der);
    g_test_add_func("/crypto/x509-utils/refused", test_refused);
    return g_test_run();
}
