/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * swtpm's state formats (util/swtpm-state.c): the blob header and the
 * linear file, their layouts as swtpm 0.7 writes them, and hostile
 * inputs -- every truncation, and six values of every octet of the
 * headers -- each refused with a message or read within its bounds.
 * iotest nvstore-tpm checks the same formats against swtpm itself.
 *
 * With SWTPM_STATE_CORPUS set to a directory, the linear files and blobs
 * of these tests are written there: the seeds of swtpm-state-fuzz.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/bswap.h"
#include "qemu/swtpm-state.h"

/* A blob as swtpm 0.7.1 writes libtpms' data "abc": header and data TLV */
static const uint8_t swtpm_blob_abc[] = {
    0x02, 0x01, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x13,
    0x00, 0x01, 0x00, 0x00, 0x00, 0x03, 'a', 'b', 'c',
};

static void save_seed(const char *name, const uint8_t *data, size_t len)
{
    const char *dir = g_getenv("SWTPM_STATE_CORPUS");
    g_autofree char *path = NULL;

    if (dir) {
        path = g_build_filename(dir, name, NULL);
        g_assert(g_file_set_contents(path, (const char *)data, len, NULL));
    }
}

static void test_blob_wrap(void)
{
    g_autoptr(GByteArray) b = swtpm_blob_wrap((const uint8_t *)"abc", 3);
    const uint8_t *out;
    size_t len;

    g_assert_cmpmem(b->data, b->len, swtpm_blob_abc, sizeof(swtpm_blob_abc));
    g_assert(swtpm_blob_unwrap(b->data, b->len, &out, &len, &error_abort));
    g_assert_cmpmem(out, len, "abc", 3);
    save_seed("blob-abc", b->data, b->len);
}

static void test_blob_raw(void)
{
    /* No header (swtpm's version 1): libtpms' data itself */
    static const uint8_t raw[] = { 0x00, 0x03, 0xab, 0x36, 0x47, 0x23, 1, 2 };
    const uint8_t *out;
    size_t len;

    g_assert(swtpm_blob_unwrap(raw, sizeof(raw), &out, &len, &error_abort));
    g_assert(out == raw && len == sizeof(raw));
    g_assert(swtpm_blob_unwrap(raw, 0, &out, &len, &error_abort));
    g_assert_cmpuint(len, ==, 0);
}

/* A blob refused, with @msg in the message */
static void check_blob_refused(const uint8_t *data, size_t len,
                               const char *msg)
{
    Error *err = NULL;
    const uint8_t *out;
    size_t out_len;

    g_assert(!swtpm_blob_unwrap(data, len, &out, &out_len, &err));
    g_assert(err);
    g_assert(strstr(error_get_pretty(err), msg));
    error_free(err);
}

static void test_blob_refused(void)
{
    uint8_t b[sizeof(swtpm_blob_abc) + 6];

    /* Encrypted by swtpm --key, and by --migration-key */
    memcpy(b, swtpm_blob_abc, sizeof(swtpm_blob_abc));
    b[5] = 0x01;
    check_blob_refused(b, sizeof(swtpm_blob_abc), "encrypted");
    b[5] = 0x02;
    check_blob_refused(b, sizeof(swtpm_blob_abc), "encrypted");
    /* An encrypted data TLV without the flag */
    b[5] = 0;
    b[11] = 2;
    check_blob_refused(b, sizeof(swtpm_blob_abc), "encrypted");
    /* A TLV longer than the blob */
    b[11] = 1;
    b[15] = 4;
    check_blob_refused(b, sizeof(swtpm_blob_abc), "runs past its end");
    /* No data TLV: an HMAC TLV only */
    b[11] = 3;
    b[15] = 3;
    check_blob_refused(b, sizeof(swtpm_blob_abc), "no data");
    /* A header of a later version */
    memcpy(b, swtpm_blob_abc, sizeof(swtpm_blob_abc));
    b[0] = 3;
    check_blob_refused(b, sizeof(swtpm_blob_abc), "version 3");
    /* Data after the TLV: still this TLV's data */
    memcpy(b, swtpm_blob_abc, sizeof(swtpm_blob_abc));
    memset(b + sizeof(swtpm_blob_abc), 0, 6);
    stl_be_p(b + 6, sizeof(b));
    {
        const uint8_t *out;
        size_t len;

        g_assert(swtpm_blob_unwrap(b, sizeof(b), &out, &len, &error_abort));
        g_assert_cmpmem(out, len, "abc", 3);
    }
}

static GBytes *bytes_of(const char *s)
{
    return g_bytes_new(s, strlen(s));
}

static void test_linear_layout(void)
{
    GBytes *states[SWTPM_STATE__MAX] = { NULL };
    GBytes *back[SWTPM_STATE__MAX] = { NULL };
    g_autoptr(GByteArray) f = NULL;
    g_autofree char *big = g_strnfill(300, 'p');
    int i;

    states[SWTPM_STATE_PERMALL] = bytes_of(big);
    states[SWTPM_STATE_VOLATILE] = bytes_of("volatile");
    f = swtpm_linear_build(states);

    /* swtpm's layout: the header, then each state in a power of two */
    g_assert_cmpuint(f->len, ==, 192 + 512 + 8);
    g_assert_cmpmem(f->data, 8, "nilmptws", 8);
    g_assert_cmpuint(f->data[8], ==, 1);
    g_assert_cmpuint(lduw_le_p(f->data + 10), ==, 192);
    g_assert_cmpuint(ldl_le_p(f->data + 12), ==, 192);
    g_assert_cmpuint(ldl_le_p(f->data + 16), ==, 300);
    g_assert_cmpuint(ldl_le_p(f->data + 20), ==, 512);
    g_assert_cmpuint(ldl_le_p(f->data + 24), ==, 192 + 512);
    g_assert_cmpuint(ldl_le_p(f->data + 28), ==, 8);
    g_assert_cmpuint(ldl_le_p(f->data + 32), ==, 8);
    for (i = 36; i < 192; i++) {
        g_assert_cmpuint(f->data[i], ==, 0);
    }
    save_seed("linear-two", f->data, f->len);

    g_assert(swtpm_linear_parse(f->data, f->len, back, &error_abort));
    for (i = 0; i < SWTPM_STATE__MAX; i++) {
        g_assert((states[i] == NULL) == (back[i] == NULL));
        if (states[i]) {
            g_assert(g_bytes_equal(states[i], back[i]));
        }
        g_clear_pointer(&states[i], g_bytes_unref);
        g_clear_pointer(&back[i], g_bytes_unref);
    }
}

/*
 * Parse @data; a success must give states that lie in @data, a failure a
 * message.  Returns whether it parsed.
 */
static bool check_linear(const uint8_t *data, size_t len)
{
    GBytes *states[SWTPM_STATE__MAX] = { NULL };
    Error *err = NULL;
    int i;

    if (!swtpm_linear_parse(data, len, states, &err)) {
        g_assert(err && *error_get_pretty(err));
        error_free(err);
        return false;
    }
    for (i = 0; i < SWTPM_STATE__MAX; i++) {
        size_t slen;
        const uint8_t *s;
        size_t off;

        if (!states[i]) {
            continue;
        }
        s = g_bytes_get_data(states[i], &slen);
        off = ldl_le_p(data + 12 + 12 * i);
        g_assert_cmpuint(off + slen, <=, len);
        g_assert(!slen || !memcmp(s, data + off, slen));
        g_bytes_unref(states[i]);
    }
    return true;
}

static void test_linear_hostile(void)
{
    GBytes *states[SWTPM_STATE__MAX] = { NULL };
    static const uint8_t values[] = { 0x00, 0x01, 0x7f, 0x80, 0xff };
    g_autoptr(GByteArray) f = NULL;
    g_autofree uint8_t *m = NULL;
    unsigned cases = 0, parsed = 0;
    size_t len, i, v;

    states[SWTPM_STATE_PERMALL] = bytes_of("permanent state");
    states[SWTPM_STATE_SAVESTATE] = bytes_of("save state");
    f = swtpm_linear_build(states);
    g_bytes_unref(states[SWTPM_STATE_PERMALL]);
    g_bytes_unref(states[SWTPM_STATE_SAVESTATE]);
    save_seed("linear-permall-savestate", f->data, f->len);

    /* Every truncation: the whole header is needed, and every state */
    for (len = 0; len <= f->len; len++, cases++) {
        bool ok = check_linear(f->data, len);

        parsed += ok;
        g_assert(ok == (len >= 192 + 16 + 10));
    }
    /* Six values of every octet of the header */
    m = g_memdup2(f->data, f->len);
    for (i = 0; i < 192; i++) {
        for (v = 0; v <= ARRAY_SIZE(values); v++) {
            m[i] = v < ARRAY_SIZE(values) ? values[v] : f->data[i] ^ 0xff;
            parsed += check_linear(m, f->len);
            cases++;
        }
        m[i] = f->data[i];
    }
    /* Offsets and lengths at the edges of overflow */
    for (v = 0; v < 4; v++) {
        static const uint32_t edges[] = {
            0xffffffff, 0xfffffff0, 0x80000000, 191,
        };

        stl_le_p(m + 12, edges[v]);
        g_assert(!check_linear(m, f->len));
        memcpy(m, f->data, 192);
        stl_le_p(m + 16, edges[v]);
        g_assert(!check_linear(m, f->len));
        memcpy(m, f->data, 192);
        cases += 2;
    }
    g_test_message("%u hostile linear files, %u read", cases, parsed);
}

static void test_blob_hostile(void)
{
    static const uint8_t values[] = { 0x00, 0x01, 0x7f, 0x80, 0xff };
    g_autoptr(GByteArray) b = swtpm_blob_wrap((const uint8_t *)"data", 4);
    g_autofree uint8_t *m = g_memdup2(b->data, b->len);
    unsigned cases = 0;
    size_t len, i, v;

    for (len = 0; len <= b->len; len++) {
        const uint8_t *out;
        size_t out_len;
        Error *err = NULL;

        if (swtpm_blob_unwrap(b->data, len, &out, &out_len, &err)) {
            g_assert(out >= b->data && out + out_len <= b->data + len);
        } else {
            error_free(err);
        }
        cases++;
    }
    for (i = 0; i < 16; i++) {
        for (v = 0; v < ARRAY_SIZE(values); v++) {
            const uint8_t *out;
            size_t out_len;
            Error *err = NULL;

            m[i] = values[v];
            if (swtpm_blob_unwrap(m, b->len, &out, &out_len, &err)) {
                g_assert(out >= m && out + out_len <= m + b->len);
            } else {
                g_assert(err && *error_get_pretty(err));
                error_free(err);
            }
            cases++;
        }
        m[i] = b->data[i];
    }
    g_test_message("%u hostile blobs", cases);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/swtpm-state/blob/wrap", test_blob_wrap);
    g_test_add_func("/swtpm-state/blob/raw", test_blob_raw);
    g_test_add_func("/swtpm-state/blob/refused", test_blob_refused);
    g_test_add_func("/swtpm-state/blob/hostile", test_blob_hostile);
    g_test_add_func("/swtpm-state/linear/layout", test_linear_layout);
    g_test_add_func("/swtpm-state/linear/hostile", test_linear_hostile);
    return g_test_run();
}
