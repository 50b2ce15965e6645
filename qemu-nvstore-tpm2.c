/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * qemu-nvstore: a TPM 2.0 run in-process by libtpms, and the commands
 * the tpm commands send it, marshalled as the TCG TPM 2.0 Library
 * specification (Part 3) has them.  libtpms keeps its state through
 * callbacks; here they read and keep one permanent state in memory, as
 * the libtpms backend (backends/tpm/tpm_libtpms.c) keeps it in blobs.
 * libtpms has one TPM per process, hence one NvsTpm2.
 */

#include "qemu/osdep.h"
#include <libtpms/tpm_library.h>
#include <libtpms/tpm_error.h>
#include <libtpms/tpm_nvfilename.h>
#include "qapi/error.h"
#include "qemu/bswap.h"
#include "qemu-nvstore-tpm2.h"

/* Command codes */
#define TPM2_CC_EVICT_CONTROL       0x120
#define TPM2_CC_NV_DEFINE_SPACE     0x12a
#define TPM2_CC_PCR_ALLOCATE        0x12b
#define TPM2_CC_CREATE_PRIMARY      0x131
#define TPM2_CC_NV_WRITE            0x137
#define TPM2_CC_NV_WRITELOCK        0x138
#define TPM2_CC_STARTUP             0x144
#define TPM2_CC_SHUTDOWN            0x145
#define TPM2_CC_FLUSH_CONTEXT       0x165
#define TPM2_CC_NV_READ_PUBLIC      0x169
#define TPM2_CC_READ_PUBLIC         0x173
#define TPM2_CC_GET_CAPABILITY      0x17a

#define TPM2_ST_NO_SESSIONS     0x8001
#define TPM2_ST_SESSIONS        0x8002
#define TPM2_SU_CLEAR           0x0000
#define TPM2_RS_PW              0x40000009
#define TPM2_RH_OWNER           0x40000001
#define TPM2_RH_ENDORSEMENT     0x4000000b
#define TPM2_RH_PLATFORM        0x4000000c
#define TPM2_RC_FAILURE         0x101

#define TPM2_CAP_HANDLES        1
#define TPM2_CAP_PCRS           5
#define TPM2_CAP_TPM_PROPERTIES 6

#define TPM2_ALG_AES            0x0006
#define TPM2_ALG_NULL           0x0010
#define TPM2_ALG_CFB            0x0043

/* The header of a command or response */
#define TPM2_HDR_SIZE           10

struct NvsTpm2 {
    /* The permanent state libtpms loads, and then the one it stored */
    GBytes *permall;
    /* libtpms stored a permanent state */
    bool stored;
    /* libtpms' response buffer (it reallocs it) */
    unsigned char *rbuf;
    uint32_t rbuf_size;
    /* Between TPMLIB_MainInit() and TPMLIB_Terminate() */
    bool running;
};

/* The one TPM: libtpms' callbacks have no opaque pointer */
static NvsTpm2 *nvs_tpm2_instance;

/* ---- libtpms' callbacks: the state in memory ----------------------------- */

static TPM_RESULT nvs_tpm2_nvram_init(void)
{
    return TPM_SUCCESS;
}

static TPM_RESULT nvs_tpm2_nvram_loaddata(unsigned char **data,
                                          uint32_t *length,
                                          uint32_t tpm_number,
                                          const char *name)
{
    NvsTpm2 *t = nvs_tpm2_instance;
    const void *p;
    size_t len;

    /* TPM_RETRY: no such state (the volatile state never exists here) */
    if (!t || strcmp(name, TPM_PERMANENT_ALL_NAME) || !t->permall) {
        return TPM_RETRY;
    }
    p = g_bytes_get_data(t->permall, &len);
    /* libtpms frees it with free(); g_malloc() is malloc() */
    *data = g_try_malloc(len);
    if (!*data) {
        return TPM_SIZE;
    }
    memcpy(*data, p, len);
    *length = len;
    return TPM_SUCCESS;
}

static TPM_RESULT nvs_tpm2_nvram_storedata(const unsigned char *data,
                                           uint32_t length,
                                           uint32_t tpm_number,
                                           const char *name)
{
    NvsTpm2 *t = nvs_tpm2_instance;

    if (!t) {
        return TPM_FAIL;
    }
    /* The volatile state and the save state are dropped: a power cycle */
    if (!strcmp(name, TPM_PERMANENT_ALL_NAME)) {
        g_bytes_unref(t->permall);
        t->permall = g_bytes_new(data, length);
        t->stored = true;
    }
    return TPM_SUCCESS;
}

static TPM_RESULT nvs_tpm2_nvram_deletename(uint32_t tpm_number,
                                            const char *name,
                                            TPM_BOOL must_exist)
{
    NvsTpm2 *t = nvs_tpm2_instance;

    if (t && !strcmp(name, TPM_PERMANENT_ALL_NAME)) {
        g_clear_pointer(&t->permall, g_bytes_unref);
        t->stored = true;
    }
    return TPM_SUCCESS;
}

static TPM_RESULT nvs_tpm2_io_init(void)
{
    return TPM_SUCCESS;
}

static TPM_RESULT nvs_tpm2_io_getlocality(TPM_MODIFIER_INDICATOR *locty,
                                          uint32_t tpm_number)
{
    *locty = 0;
    return TPM_SUCCESS;
}

static struct libtpms_callbacks nvs_tpm2_callbacks = {
    .sizeOfStruct = sizeof(struct libtpms_callbacks),
    .tpm_nvram_init = nvs_tpm2_nvram_init,
    .tpm_nvram_loaddata = nvs_tpm2_nvram_loaddata,
    .tpm_nvram_storedata = nvs_tpm2_nvram_storedata,
    .tpm_nvram_deletename = nvs_tpm2_nvram_deletename,
    .tpm_io_init = nvs_tpm2_io_init,
    .tpm_io_getlocality = nvs_tpm2_io_getlocality,
};

/* ---- Commands and responses ---------------------------------------------- */

static void nvs_put16(GByteArray *b, uint16_t v)
{
    uint8_t x[2];

    stw_be_p(x, v);
    g_byte_array_append(b, x, sizeof(x));
}

static void nvs_put32(GByteArray *b, uint32_t v)
{
    uint8_t x[4];

    stl_be_p(x, v);
    g_byte_array_append(b, x, sizeof(x));
}

/* A TPM2B: a 16-bit size and the bytes */
static void nvs_put2b(GByteArray *b, const void *data, uint16_t len)
{
    nvs_put16(b, len);
    g_byte_array_append(b, data, len);
}

/* A command: the header, then @nb_handles handles */
static GByteArray *nvs_cmd_new(uint32_t cc, bool sessions, size_t nb_handles,
                               const uint32_t *handles)
{
    GByteArray *b = g_byte_array_new();
    size_t i;

    nvs_put16(b, sessions ? TPM2_ST_SESSIONS : TPM2_ST_NO_SESSIONS);
    nvs_put32(b, 0);            /* the size, see nvs_tpm2_transact() */
    nvs_put32(b, cc);
    for (i = 0; i < nb_handles; i++) {
        nvs_put32(b, handles[i]);
    }
    if (sessions) {
        /* One password session with the empty password */
        nvs_put32(b, 9);
        nvs_put32(b, TPM2_RS_PW);
        nvs_put16(b, 0);        /* nonce */
        g_byte_array_append(b, (const uint8_t *)"", 1); /* attributes */
        nvs_put16(b, 0);        /* hmac: the password */
    }
    return b;
}

/* A response being read; @bad once anything was missing */
typedef struct NvsRsp {
    const uint8_t *p;
    size_t left;
    bool bad;
} NvsRsp;

static const uint8_t *nvs_get(NvsRsp *r, size_t n)
{
    const uint8_t *p = r->p;

    if (r->bad || r->left < n) {
        r->bad = true;
        return NULL;
    }
    r->p += n;
    r->left -= n;
    return p;
}

static uint8_t nvs_get8(NvsRsp *r)
{
    const uint8_t *p = nvs_get(r, 1);

    return p ? *p : 0;
}

static uint16_t nvs_get16(NvsRsp *r)
{
    const uint8_t *p = nvs_get(r, 2);

    return p ? lduw_be_p(p) : 0;
}

static uint32_t nvs_get32(NvsRsp *r)
{
    const uint8_t *p = nvs_get(r, 4);

    return p ? ldl_be_p(p) : 0;
}

/* A TPM2B, as new GBytes (NULL if the response is short) */
static GBytes *nvs_get2b(NvsRsp *r)
{
    uint16_t len = nvs_get16(r);
    const uint8_t *p = nvs_get(r, len);

    return p ? g_bytes_new(p, len) : NULL;
}

/* Read a TPM2B's size and make @sub the TPM2B's contents */
static void nvs_get_sub(NvsRsp *r, NvsRsp *sub)
{
    uint16_t len = nvs_get16(r);

    sub->p = nvs_get(r, len);
    sub->left = sub->p ? len : 0;
    sub->bad = !sub->p;
}

/*
 * Send @cmd (freed), which is called @what in errors.  On success, @r
 * is the response's parameters; with @nb_handles handles first, which
 * go to @handles.
 */
static bool nvs_tpm2_transact(NvsTpm2 *t, GByteArray *cmd, const char *what,
                              size_t nb_handles, uint32_t *handles,
                              NvsRsp *r, Error **errp)
{
    g_autoptr(GByteArray) c = cmd;
    uint32_t rlen = 0;
    TPM_RESULT res;
    uint32_t rc;
    size_t i;

    stl_be_p(c->data + 2, c->len);
    res = TPMLIB_Process(&t->rbuf, &rlen, &t->rbuf_size, c->data, c->len);
    if (res != TPM_SUCCESS) {
        error_setg(errp, "%s: libtpms failed (0x%x)", what, res);
        return false;
    }
    if (rlen < TPM2_HDR_SIZE || ldl_be_p(t->rbuf + 2) != rlen) {
        error_setg(errp, "%s: the TPM's response is malformed", what);
        return false;
    }
    rc = ldl_be_p(t->rbuf + 6);
    if (rc == TPM2_RC_FAILURE) {
        error_setg(errp, "%s: the TPM is in failure mode (libtpms did not "
                   "accept its state)", what);
        return false;
    }
    if (rc) {
        error_setg(errp, "%s failed: TPM error 0x%x", what, rc);
        return false;
    }
    r->p = t->rbuf + TPM2_HDR_SIZE;
    r->left = rlen - TPM2_HDR_SIZE;
    r->bad = false;
    for (i = 0; i < nb_handles; i++) {
        handles[i] = nvs_get32(r);
    }
    if (lduw_be_p(t->rbuf) == TPM2_ST_SESSIONS) {
        /* The parameters, sized; the authorization area follows */
        uint32_t size = nvs_get32(r);

        if (size > r->left) {
            r->bad = true;
        } else {
            r->left = size;
        }
    }
    if (r->bad) {
        error_setg(errp, "%s: the TPM's response is malformed", what);
        return false;
    }
    return true;
}

/* The end of a response: @r was all there */
static bool nvs_rsp_ok(NvsRsp *r, const char *what, Error **errp)
{
    if (r->bad) {
        error_setg(errp, "%s: the TPM's response is cut short", what);
        return false;
    }
    return true;
}

/* A command whose response has no parameters we need */
static bool nvs_tpm2_simple(NvsTpm2 *t, GByteArray *cmd, const char *what,
                            Error **errp)
{
    NvsRsp r;

    return nvs_tpm2_transact(t, cmd, what, 0, NULL, &r, errp);
}

static bool nvs_tpm2_startup(NvsTpm2 *t, Error **errp)
{
    GByteArray *c = nvs_cmd_new(TPM2_CC_STARTUP, false, 0, NULL);

    nvs_put16(c, TPM2_SU_CLEAR);
    return nvs_tpm2_simple(t, c, "TPM2_Startup", errp);
}

static bool nvs_tpm2_shutdown(NvsTpm2 *t, Error **errp)
{
    GByteArray *c = nvs_cmd_new(TPM2_CC_SHUTDOWN, false, 0, NULL);

    nvs_put16(c, TPM2_SU_CLEAR);
    return nvs_tpm2_simple(t, c, "TPM2_Shutdown", errp);
}

/* ---- Starting and stopping ----------------------------------------------- */

static bool nvs_tpm2_init(NvsTpm2 *t, Error **errp)
{
    TPM_RESULT res;

    res = TPMLIB_ChooseTPMVersion(TPMLIB_TPM_VERSION_2);
    if (res == TPM_SUCCESS) {
        res = TPMLIB_RegisterCallbacks(&nvs_tpm2_callbacks);
    }
    if (res != TPM_SUCCESS) {
        error_setg(errp, "libtpms cannot run a TPM 2.0 (0x%x)", res);
        return false;
    }
    res = TPMLIB_MainInit();
    if (res != TPM_SUCCESS) {
        error_setg(errp, "libtpms did not accept the TPM 2.0 state (0x%x)",
                   res);
        return false;
    }
    t->running = true;
    return nvs_tpm2_startup(t, errp);
}

static void nvs_tpm2_free(NvsTpm2 *t)
{
    if (t->running) {
        TPMLIB_Terminate();
    }
    free(t->rbuf);
    g_bytes_unref(t->permall);
    g_free(t);
    nvs_tpm2_instance = NULL;
}

NvsTpm2 *nvs_tpm2_start(const uint8_t *permall, size_t len, Error **errp)
{
    NvsTpm2 *t;

    assert(!nvs_tpm2_instance);
    t = g_new0(NvsTpm2, 1);
    t->permall = permall ? g_bytes_new(permall, len) : NULL;
    nvs_tpm2_instance = t;
    if (!nvs_tpm2_init(t, errp)) {
        nvs_tpm2_free(t);
        return NULL;
    }
    return t;
}

bool nvs_tpm2_restart(NvsTpm2 *t, Error **errp)
{
    if (!nvs_tpm2_shutdown(t, errp)) {
        return false;
    }
    TPMLIB_Terminate();
    t->running = false;
    return nvs_tpm2_init(t, errp);
}

GBytes *nvs_tpm2_stop(NvsTpm2 *t, Error **errp)
{
    GBytes *state = NULL;

    if (nvs_tpm2_shutdown(t, errp)) {
        TPMLIB_Terminate();
        t->running = false;
        if (!t->stored || !t->permall) {
            error_setg(errp, "The TPM stored no permanent state");
        } else {
            state = g_bytes_ref(t->permall);
        }
    }
    nvs_tpm2_free(t);
    return state;
}

void nvs_tpm2_abandon(NvsTpm2 *t)
{
    nvs_tpm2_free(t);
}

/* ---- Capabilities -------------------------------------------------------- */

/*
 * TPM2_GetCapability(@cap, @prop, @count): @r is the capability data
 * after its TPM_CAP; @more, whether there is more
 */
static bool nvs_tpm2_getcap(NvsTpm2 *t, uint32_t cap, uint32_t prop,
                            uint32_t count, NvsRsp *r, bool *more,
                            Error **errp)
{
    GByteArray *c = nvs_cmd_new(TPM2_CC_GET_CAPABILITY, false, 0, NULL);

    nvs_put32(c, cap);
    nvs_put32(c, prop);
    nvs_put32(c, count);
    if (!nvs_tpm2_transact(t, c, "TPM2_GetCapability", 0, NULL, r, errp)) {
        return false;
    }
    *more = nvs_get8(r);
    if (nvs_get32(r) != cap) {
        r->bad = true;
    }
    return nvs_rsp_ok(r, "TPM2_GetCapability", errp);
}

GArray *nvs_tpm2_get_handles(NvsTpm2 *t, uint8_t ht, Error **errp)
{
    g_autoptr(GArray) handles = g_array_new(false, false, sizeof(uint32_t));
    uint32_t next = (uint32_t)ht << 24;
    bool more = true;

    while (more) {
        uint32_t n, i, h = 0;
        NvsRsp r;

        if (!nvs_tpm2_getcap(t, TPM2_CAP_HANDLES, next, 64, &r, &more,
                             errp)) {
            return NULL;
        }
        n = nvs_get32(&r);
        for (i = 0; i < n && !r.bad; i++) {
            h = nvs_get32(&r);
            if (h >> 24 != ht || h < next) {
                r.bad = true;
                break;
            }
            g_array_append_val(handles, h);
        }
        if (!nvs_rsp_ok(&r, "TPM2_GetCapability", errp)) {
            return NULL;
        }
        if (!n || h == UINT32_MAX) {
            break;
        }
        next = h + 1;
    }
    return g_steal_pointer(&handles);
}

bool nvs_tpm2_get_property(NvsTpm2 *t, uint32_t prop, uint32_t *value,
                           Error **errp)
{
    bool more;
    NvsRsp r;

    if (!nvs_tpm2_getcap(t, TPM2_CAP_TPM_PROPERTIES, prop, 1, &r, &more,
                         errp)) {
        return false;
    }
    if (nvs_get32(&r) < 1 || nvs_get32(&r) != prop) {
        error_setg(errp, "The TPM does not have property 0x%x", prop);
        return false;
    }
    *value = nvs_get32(&r);
    return nvs_rsp_ok(&r, "TPM2_GetCapability", errp);
}

GArray *nvs_tpm2_get_pcr_banks(NvsTpm2 *t, Error **errp)
{
    g_autoptr(GArray) banks = g_array_new(false, false,
                                          sizeof(NvsTpm2PcrBank));
    uint32_t n, i;
    bool more;
    NvsRsp r;

    if (!nvs_tpm2_getcap(t, TPM2_CAP_PCRS, 0, 1, &r, &more, errp)) {
        return NULL;
    }
    n = nvs_get32(&r);
    for (i = 0; i < n && !r.bad; i++) {
        NvsTpm2PcrBank b = { .hash = nvs_get16(&r) };
        uint8_t size = nvs_get8(&r);
        const uint8_t *sel = nvs_get(&r, size);
        unsigned j;

        for (j = 0; sel && j < size * 8 && j < 32; j++) {
            if (sel[j / 8] & (1 << (j % 8))) {
                b.pcrs |= 1u << j;
            }
        }
        g_array_append_val(banks, b);
    }
    if (!nvs_rsp_ok(&r, "TPM2_GetCapability", errp)) {
        return NULL;
    }
    return g_steal_pointer(&banks);
}

bool nvs_tpm2_pcr_allocate(NvsTpm2 *t, const uint16_t *hashes, size_t n,
                           Error **errp)
{
    uint32_t handle = TPM2_RH_PLATFORM;
    g_autoptr(GArray) banks = nvs_tpm2_get_pcr_banks(t, errp);
    GByteArray *c;
    size_t i, j;
    NvsRsp r;

    if (!banks) {
        return false;
    }
    for (j = 0; j < n; j++) {
        for (i = 0; i < banks->len; i++) {
            if (g_array_index(banks, NvsTpm2PcrBank, i).hash == hashes[j]) {
                break;
            }
        }
        if (i == banks->len) {
            error_setg(errp, "The TPM has no PCR bank %s",
                       nvs_tpm2_hash_name(hashes[j]) ?: "(unknown)");
            return false;
        }
    }
    c = nvs_cmd_new(TPM2_CC_PCR_ALLOCATE, true, 1, &handle);
    /* Every bank the TPM has: all PCRs in those asked, none elsewhere */
    nvs_put32(c, banks->len);
    for (i = 0; i < banks->len; i++) {
        uint16_t hash = g_array_index(banks, NvsTpm2PcrBank, i).hash;
        uint8_t sel = 0;

        for (j = 0; j < n; j++) {
            if (hashes[j] == hash) {
                sel = 0xff;
            }
        }
        nvs_put16(c, hash);
        g_byte_array_append(c, (const uint8_t *)"\3", 1);
        g_byte_array_append(c, (uint8_t[]){ sel, sel, sel }, 3);
    }
    if (!nvs_tpm2_transact(t, c, "TPM2_PCR_Allocate", 0, NULL, &r, errp)) {
        return false;
    }
    if (!nvs_get8(&r)) {
        error_setg(errp, "TPM2_PCR_Allocate: the TPM refused the "
                   "allocation");
        return false;
    }
    return nvs_rsp_ok(&r, "TPM2_PCR_Allocate", errp);
}

/* ---- NV indices ---------------------------------------------------------- */

bool nvs_tpm2_nv_read_public(NvsTpm2 *t, uint32_t index,
                             NvsTpm2NvPublic *pub, Error **errp)
{
    GByteArray *c = nvs_cmd_new(TPM2_CC_NV_READ_PUBLIC, false, 1, &index);
    NvsRsp r, p;

    memset(pub, 0, sizeof(*pub));
    if (!nvs_tpm2_transact(t, c, "TPM2_NV_ReadPublic", 0, NULL, &r, errp)) {
        return false;
    }
    nvs_get_sub(&r, &p);
    if (nvs_get32(&p) != index) {
        p.bad = true;
    }
    pub->name_alg = nvs_get16(&p);
    pub->attributes = nvs_get32(&p);
    g_bytes_unref(nvs_get2b(&p));      /* authPolicy */
    pub->size = nvs_get16(&p);
    pub->name = nvs_get2b(&r);
    if (p.bad || !nvs_rsp_ok(&r, "TPM2_NV_ReadPublic", errp)) {
        g_clear_pointer(&pub->name, g_bytes_unref);
        error_setg(errp, "TPM2_NV_ReadPublic: the TPM's response is "
                   "malformed");
        return false;
    }
    return true;
}

bool nvs_tpm2_nv_define_write(NvsTpm2 *t, uint32_t index,
                              uint32_t attributes, const uint8_t *data,
                              size_t len, Error **errp)
{
    uint32_t handles[2] = { TPM2_RH_PLATFORM, index };
    uint32_t chunk;
    GByteArray *c;
    size_t done;

    if (len > UINT16_MAX) {
        error_setg(errp, "NV index 0x%08x: %zu bytes do not fit", index, len);
        return false;
    }
    if (!nvs_tpm2_get_property(t, TPM2_PT_NV_BUFFER_MAX, &chunk, errp)) {
        return false;
    }
    c = nvs_cmd_new(TPM2_CC_NV_DEFINE_SPACE, true, 1, handles);
    nvs_put16(c, 0);                    /* auth */
    nvs_put16(c, 14);                   /* TPMS_NV_PUBLIC's size */
    nvs_put32(c, index);
    nvs_put16(c, TPM2_ALG_SHA256);
    nvs_put32(c, attributes);
    nvs_put16(c, 0);                    /* authPolicy */
    nvs_put16(c, len);
    if (!nvs_tpm2_simple(t, c, "TPM2_NV_DefineSpace", errp)) {
        return false;
    }
    for (done = 0; done < len; done += chunk) {
        uint16_t n = MIN(len - done, chunk);

        c = nvs_cmd_new(TPM2_CC_NV_WRITE, true, 2, handles);
        nvs_put2b(c, data + done, n);
        nvs_put16(c, done);
        if (!nvs_tpm2_simple(t, c, "TPM2_NV_Write", errp)) {
            return false;
        }
    }
    return true;
}

bool nvs_tpm2_nv_write_lock(NvsTpm2 *t, uint32_t index, Error **errp)
{
    uint32_t handles[2] = { TPM2_RH_PLATFORM, index };

    return nvs_tpm2_simple(t, nvs_cmd_new(TPM2_CC_NV_WRITELOCK, true, 2,
                                          handles),
                           "TPM2_NV_WriteLock", errp);
}

/* ---- Objects ------------------------------------------------------------- */

void nvs_tpm2_public_clear(NvsTpm2Public *pub)
{
    g_bytes_unref(pub->rsa_n);
    g_bytes_unref(pub->ecc_x);
    g_bytes_unref(pub->ecc_y);
    g_bytes_unref(pub->name);
    memset(pub, 0, sizeof(*pub));
}

/* TPMT_SYM_DEF_OBJECT */
static void nvs_get_symdef(NvsRsp *r)
{
    if (nvs_get16(r) != TPM2_ALG_NULL) {
        nvs_get16(r);           /* keyBits */
        nvs_get16(r);           /* mode */
    }
}

/* A TPMT_RSA_SCHEME or a TPMT_ECC_SCHEME */
static void nvs_get_scheme(NvsRsp *r)
{
    uint16_t scheme = nvs_get16(r);

    switch (scheme) {
    case 0x0014: case 0x0016: case 0x0017:  /* RSASSA, RSAPSS, OAEP */
    case 0x0018: case 0x0019: case 0x001b:  /* ECDSA, ECDH, SM2 */
    case 0x001c: case 0x001d:               /* ECSCHNORR, ECMQV */
        nvs_get16(r);           /* hashAlg */
        break;
    case 0x001a:                            /* ECDAA */
        nvs_get16(r);
        nvs_get16(r);           /* count */
        break;
    case TPM2_ALG_NULL:
    case 0x0015:                            /* RSAES */
        break;
    default:
        r->bad = true;
    }
}

/* TPMT_PUBLIC (only what the tpm commands need of it) */
static void nvs_get_public(NvsRsp *r, NvsTpm2Public *pub)
{
    pub->type = nvs_get16(r);
    pub->name_alg = nvs_get16(r);
    pub->attributes = nvs_get32(r);
    g_bytes_unref(nvs_get2b(r));       /* authPolicy */
    switch (pub->type) {
    case TPM2_ALG_RSA:
        nvs_get_symdef(r);
        nvs_get_scheme(r);
        pub->key_bits = nvs_get16(r);
        pub->rsa_e = nvs_get32(r);
        pub->rsa_n = nvs_get2b(r);
        break;
    case TPM2_ALG_ECC:
        nvs_get_symdef(r);
        nvs_get_scheme(r);
        pub->curve = nvs_get16(r);
        if (nvs_get16(r) != TPM2_ALG_NULL) {   /* kdf */
            nvs_get16(r);
        }
        pub->ecc_x = nvs_get2b(r);
        pub->ecc_y = nvs_get2b(r);
        break;
    default:
        /* The rest of a keyed hash or a symmetric key is not needed */
        break;
    }
}

bool nvs_tpm2_read_public(NvsTpm2 *t, uint32_t handle, NvsTpm2Public *pub,
                          Error **errp)
{
    GByteArray *c = nvs_cmd_new(TPM2_CC_READ_PUBLIC, false, 1, &handle);
    NvsRsp r, p;

    memset(pub, 0, sizeof(*pub));
    if (!nvs_tpm2_transact(t, c, "TPM2_ReadPublic", 0, NULL, &r, errp)) {
        return false;
    }
    nvs_get_sub(&r, &p);
    nvs_get_public(&p, pub);
    pub->name = nvs_get2b(&r);
    if (p.bad || r.bad) {
        nvs_tpm2_public_clear(pub);
        error_setg(errp, "TPM2_ReadPublic: the TPM's response is malformed");
        return false;
    }
    return true;
}

/* PolicySecret(TPM_RH_ENDORSEMENT): the TCG default EK templates' policy */
static const uint8_t nvs_ek_policy[32] = {
    0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc, 0x8d,
    0x46, 0xa5, 0xd7, 0x24, 0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52, 0x0b, 0x64,
    0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa,
};

/*
 * fixedTPM, fixedParent, sensitiveDataOrigin, adminWithPolicy,
 * restricted, decrypt
 */
#define NVS_EK_ATTRIBUTES       0x000300b2

/* The TCG default EK template L-1 (RSA 2048) or L-2 (ECC NIST P-256) */
static void nvs_put_ek_template(GByteArray *c, uint16_t alg)
{
    g_autoptr(GByteArray) t = g_byte_array_new();
    static const uint8_t zeros[256];

    nvs_put16(t, alg);
    nvs_put16(t, TPM2_ALG_SHA256);
    nvs_put32(t, NVS_EK_ATTRIBUTES);
    nvs_put2b(t, nvs_ek_policy, sizeof(nvs_ek_policy));
    nvs_put16(t, TPM2_ALG_AES);
    nvs_put16(t, 128);
    nvs_put16(t, TPM2_ALG_CFB);
    nvs_put16(t, TPM2_ALG_NULL);                /* scheme */
    if (alg == TPM2_ALG_RSA) {
        nvs_put16(t, 2048);
        nvs_put32(t, 0);                        /* exponent: 65537 */
        nvs_put2b(t, zeros, 256);
    } else {
        nvs_put16(t, TPM2_ECC_NIST_P256);
        nvs_put16(t, TPM2_ALG_NULL);            /* kdf */
        nvs_put2b(t, zeros, 32);
        nvs_put2b(t, zeros, 32);
    }
    nvs_put2b(c, t->data, t->len);
}

bool nvs_tpm2_create_ek(NvsTpm2 *t, uint16_t alg, uint32_t persistent,
                        NvsTpm2Public *pub, Error **errp)
{
    uint32_t hierarchy = TPM2_RH_ENDORSEMENT;
    uint32_t handles[2] = { TPM2_RH_OWNER, 0 };
    GByteArray *c;
    bool ok;
    NvsRsp r;

    assert(alg == TPM2_ALG_RSA || alg == TPM2_ALG_ECC);
    c = nvs_cmd_new(TPM2_CC_CREATE_PRIMARY, true, 1, &hierarchy);
    nvs_put16(c, 4);            /* TPM2B_SENSITIVE_CREATE: empty auth, data */
    nvs_put16(c, 0);
    nvs_put16(c, 0);
    nvs_put_ek_template(c, alg);
    nvs_put16(c, 0);            /* outsideInfo */
    nvs_put32(c, 0);            /* creationPCR */
    if (!nvs_tpm2_transact(t, c, "TPM2_CreatePrimary", 1, &handles[1], &r,
                           errp)) {
        return false;
    }
    c = nvs_cmd_new(TPM2_CC_EVICT_CONTROL, true, 2, handles);
    nvs_put32(c, persistent);
    ok = nvs_tpm2_simple(t, c, "TPM2_EvictControl", errp);
    c = nvs_cmd_new(TPM2_CC_FLUSH_CONTEXT, false, 0, NULL);
    nvs_put32(c, handles[1]);
    if (!nvs_tpm2_simple(t, c, "TPM2_FlushContext", ok ? errp : NULL)) {
        return false;
    }
    return ok && nvs_tpm2_read_public(t, persistent, pub, errp);
}

/* ---- Names --------------------------------------------------------------- */

static const struct {
    uint16_t alg;
    const char *name;
} nvs_tpm2_hashes[] = {
    { TPM2_ALG_SHA1, "sha1" },
    { TPM2_ALG_SHA256, "sha256" },
    { TPM2_ALG_SHA384, "sha384" },
    { TPM2_ALG_SHA512, "sha512" },
    { TPM2_ALG_SM3_256, "sm3_256" },
};

const char *nvs_tpm2_hash_name(uint16_t alg)
{
    size_t i;

    for (i = 0; i < ARRAY_SIZE(nvs_tpm2_hashes); i++) {
        if (nvs_tpm2_hashes[i].alg == alg) {
            return nvs_tpm2_hashes[i].name;
        }
    }
    return NULL;
}

uint16_t nvs_tpm2_hash_by_name(const char *name)
{
    size_t i;

    for (i = 0; i < ARRAY_SIZE(nvs_tpm2_hashes); i++) {
        if (!strcmp(nvs_tpm2_hashes[i].name, name)) {
            return nvs_tpm2_hashes[i].alg;
        }
    }
    return 0;
}
