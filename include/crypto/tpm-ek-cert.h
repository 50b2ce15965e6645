/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The certificate of a TPM 2.0's endorsement key, as the TCG EK
 * Credential Profile for TPM Family 2.0 describes it.
 */

#ifndef QCRYPTO_TPM_EK_CERT_H
#define QCRYPTO_TPM_EK_CERT_H

/**
 * QCryptoTPMEKCert:
 * @ecc: the EK is an ECC NIST P-256 key (@ecc_x, @ecc_y); else an RSA
 *       key (@rsa_n, @rsa_e)
 * @rsa_n: the modulus, big endian
 * @rsa_n_len: its length
 * @rsa_e: the public exponent
 * @ecc_x: the point's x coordinate, big endian
 * @ecc_x_len: its length (leading zero octets may be left out)
 * @ecc_y: its y coordinate
 * @ecc_y_len: its length
 * @manufacturer: the TPM's manufacturer, e.g. "id:00001014"
 * @model: the TPM's model
 * @version: the TPM's firmware version, e.g. "id:20191023"
 * @spec_family: the TPM specification's family, e.g. "2.0"
 * @spec_level: its level
 * @spec_revision: its revision, times 100
 * @ca_cert: the CA's certificate, PEM or DER
 * @ca_cert_len: its length
 * @ca_key: the CA's private key, PEM or DER
 * @ca_key_len: its length
 * @platform: make the platform certificate for the EK, not its EK
 *            certificate
 * @platform_manufacturer: with @platform, the platform's manufacturer
 * @platform_model: its model
 * @platform_version: its version
 *
 * What the EK certificate (or the platform certificate) says, and who
 * signs it.
 */
typedef struct QCryptoTPMEKCert {
    bool ecc;
    const uint8_t *rsa_n;
    size_t rsa_n_len;
    uint32_t rsa_e;
    const uint8_t *ecc_x;
    size_t ecc_x_len;
    const uint8_t *ecc_y;
    size_t ecc_y_len;
    const char *manufacturer;
    const char *model;
    const char *version;
    const char *spec_family;
    unsigned spec_level;
    unsigned spec_revision;
    const uint8_t *ca_cert;
    size_t ca_cert_len;
    const uint8_t *ca_key;
    size_t ca_key_len;
    bool platform;
    const char *platform_manufacturer;
    const char *platform_model;
    const char *platform_version;
} QCryptoTPMEKCert;

/**
 * qcrypto_tpm_ek_ca_check:
 * @cert: a CA's certificate, PEM or DER
 * @cert_len: its length
 * @key: the CA's private key, PEM or DER, unencrypted
 * @key_len: its length
 * @errp: pointer to a NULL-initialized error object
 *
 * Check that @cert and @key can sign EK certificates: that they parse,
 * and that @key is the key of @cert.
 *
 * Returns: 0 if they can, -1 with @errp set if not.
 */
int qcrypto_tpm_ek_ca_check(const uint8_t *cert, size_t cert_len,
                            const uint8_t *key, size_t key_len,
                            Error **errp);

/**
 * qcrypto_tpm_ek_cert_create:
 * @ek: what the certificate says, and its CA
 * @der: set to the certificate, DER encoded (free with g_free())
 * @der_len: set to its length
 * @errp: pointer to a NULL-initialized error object
 *
 * Create and sign an X.509 certificate for the endorsement key @ek with
 * the fields and extensions of the TCG EK Credential Profile: a random
 * serial number, valid from now on with no well-defined end, the TPM's
 * manufacturer, model and version in a critical subject alternative
 * name, its specification in the subject directory attributes, the
 * EK certificate's extended key usage, basic constraints (not a CA),
 * key encipherment (RSA) or key agreement (ECC), and the CA's key
 * identifier.  Signed with SHA-256.
 *
 * With @ek->platform, the platform certificate that swtpm_cert writes
 * for the EK instead (TCG Infrastructure Workgroup's platform
 * certificate as an X.509 public key certificate): the platform's
 * manufacturer, model and version in a critical subject alternative
 * name, basic constraints, the CA's key identifier, key encipherment or
 * agreement, and the platform certificate's extended key usage.
 *
 * Returns: 0 on success, -1 on error (a CA key that is not the CA
 * certificate's is one).
 */
int qcrypto_tpm_ek_cert_create(const QCryptoTPMEKCert *ek,
                               uint8_t **der, size_t *der_len,
                               Error **errp);

#endif /* QCRYPTO_TPM_EK_CERT_H */
