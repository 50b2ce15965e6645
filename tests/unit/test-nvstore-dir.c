/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Unit tests of the nvstore directory model (block/nvstore-dir.c).
 *
 * The golden vectors were written by hand from docs/interop/nvstore.rst,
 * octet by octet (see the comments), not produced by the encoder.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "crypto/der.h"
#include "block/nvstore-dir.h"
#include "nvstore-dir-test.h"

/* "31 80 00 00" -> bytes */
static GByteArray *hex(const char *s)
{
    GByteArray *b = g_byte_array_new();

    while (*s) {
        unsigned v;

        if (*s == ' ' || *s == '\n') {
            s++;
            continue;
        }
        g_assert(sscanf(s, "%2x", &v) == 1);
        g_byte_array_append(b, &(guint8){ v }, 1);
        s += 2;
    }
    return b;
}

/* Empty directory: SET, indefinite length, end-of-contents */
#define V_EMPTY "31 80 00 00"

/* Entry "a", type "raw", no attributes, data "hi" (20 octets) */
#define V_ENTRY_A \
    "30 12"                         /* Entry SEQUENCE, 18 */ \
    "  30 0d"                       /* NVRAM SEQUENCE, 13 */ \
    "    16 03 72 61 77"            /* type IA5String "raw" */ \
    "    31 00"                     /* mandatory: empty SET */ \
    "    31 00"                     /* optional: empty SET */ \
    "    04 02 68 69"               /* data "hi" */ \
    "  0c 01 61"                    /* name UTF8String "a" */

/*
 * Entry "permall", type "tpm" (91 octets):
 *   mandatory: realsize 300, extent {4096, 300, 7, 0xdeadbeef}
 *   optional:  flag "z", vendor = INTEGER 5
 * Attributes sorted by encoding: realsize's SEQUENCE (30 14) before
 * extent's (30 1b); the flag's IA5String (16) before a SEQUENCE (30).
 */
#define V_ENTRY_PERMALL \
    "30 59"                                         /* Entry, 89 */ \
    "  30 4e"                                       /* NVRAM, 78 */ \
    "    16 03 74 70 6d"                            /* "tpm" */ \
    "    31 33"                                     /* mandatory, 51 */ \
    "      30 14"                                   /* realsize, 20 */ \
    "        16 08 72 65 61 6c 73 69 7a 65" \
    "        04 08 00 00 00 00 00 00 01 2c" \
    "      30 1b"                                   /* extent, 27 */ \
    "        16 06 65 78 74 65 6e 74" \
    "        30 11"                                 /* Extent, 17 */ \
    "          02 02 10 00"                         /* offset 4096 */ \
    "          02 02 01 2c"                         /* length 300 */ \
    "          02 01 07"                            /* generation 7 */ \
    "          04 04 de ad be ef"                   /* crc32c */ \
    "    31 10"                                     /* optional, 16 */ \
    "      16 01 7a"                                /* flag "z" */ \
    "      30 0b"                                   /* vendor, 11 */ \
    "        16 06 76 65 6e 64 6f 72" \
    "        02 01 05" \
    "    04 00"                                     /* data: empty */ \
    "  0c 07 70 65 72 6d 61 6c 6c"                  /* "permall" */

/* Both entries, sorted: 30 12 ... before 30 59 ... */
#define V_TWO "31 80" V_ENTRY_A V_ENTRY_PERMALL "00 00"

static NvstoreDir *parse_ok(const char *vec)
{
    g_autoptr(GByteArray) b = hex(vec);

    return nvstore_dir_parse(b->data, b->len, &error_abort);
}

static void assert_encodes_to(NvstoreDir *dir, const char *vec)
{
    g_autoptr(GByteArray) b = hex(vec);
    g_autofree uint8_t *enc = NULL;
    size_t len;

    enc = nvstore_dir_encode(dir, &len, &error_abort);
    g_assert_cmpmem(enc, len, b->data, b->len);
}

/* A copy of @dir encodes to @b */
static void assert_copy_encodes(NvstoreDir *dir, GByteArray *b)
{
    g_autoptr(NvstoreDir) copy = nvstore_dir_copy(dir);
    g_autofree uint8_t *enc = NULL;
    size_t len;

    g_assert_cmpuint(copy->entries->len, ==, dir->entries->len);
    enc = nvstore_dir_encode(copy, &len, &error_abort);
    g_assert_cmpmem(enc, len, b->data, b->len);
}

static void test_golden_empty(void)
{
    g_autoptr(NvstoreDir) dir = parse_ok(V_EMPTY);
    g_autoptr(NvstoreDir) fresh = nvstore_dir_new();

    g_assert_cmpuint(dir->entries->len, ==, 0);
    assert_encodes_to(fresh, V_EMPTY);
}

static void test_golden_decode(void)
{
    g_autoptr(NvstoreDir) dir = parse_ok(V_TWO);
    NvstoreEntry *a, *p;
    const NvstoreAttr *attr;

    g_assert_cmpuint(dir->entries->len, ==, 2);
    a = nvstore_dir_lookup(dir, "a");
    g_assert_nonnull(a);
    g_assert_null(nvstore_entry_unusable(a));
    g_assert_cmpstr(a->type, ==, "raw");
    g_assert_false(a->has_extent);
    g_assert_false(a->has_realsize);
    g_assert_cmpmem(a->data, a->data_len, "hi", 2);
    g_assert_cmpuint(a->attrs->len, ==, 0);

    p = nvstore_dir_lookup(dir, "permall");
    g_assert_nonnull(p);
    g_assert_true(nvstore_entry_check_usable(p, &error_abort));
    g_assert_cmpstr(p->type, ==, "tpm");
    g_assert_true(p->has_extent);
    g_assert_cmpuint(p->extent.offset, ==, 4096);
    g_assert_cmpuint(p->extent.length, ==, 300);
    g_assert_cmpuint(p->extent.generation, ==, 7);
    g_assert_cmphex(p->extent.crc32c, ==, 0xdeadbeef);
    g_assert_true(p->has_realsize);
    g_assert_cmpuint(p->realsize, ==, 300);
    g_assert_cmpuint(nvstore_entry_data_size(p), ==, 300);
    g_assert_cmpuint(p->data_len, ==, 0);
    g_assert_cmpuint(p->attrs->len, ==, 2);
    attr = nvstore_entry_get_attr(p, "z");
    g_assert_nonnull(attr);
    g_assert_null(attr->value);
    attr = nvstore_entry_get_attr(p, "vendor");
    g_assert_nonnull(attr);
    g_assert_cmpmem(attr->value, attr->value_len, "\x02\x01\x05", 3);

    g_assert_null(nvstore_dir_lookup(dir, "nope"));
    g_assert_null(nvstore_dir_lookup(dir, NULL));

    /* A copy encodes the same, and changes to it leave @dir alone */
    {
        g_autoptr(GByteArray) b = hex(V_TWO);
        g_autoptr(NvstoreDir) copy = nvstore_dir_copy(dir);

        assert_copy_encodes(dir, b);
        g_assert_true(nvstore_dir_lookup(copy, "permall") == p);
        g_assert_true(nvstore_entry_set_attr(nvstore_dir_lookup_mut(copy,
                                                                    "permall"),
                                             "z", (const uint8_t *)"\x05\x00",
                                             2, &error_abort));
        /* The copy changed its own copy of the entry */
        g_assert_true(nvstore_dir_lookup(copy, "permall") != p);
        g_assert_true(nvstore_dir_lookup(dir, "permall") == p);
        g_assert_true(nvstore_dir_delete(copy, "a", &error_abort));
        g_assert_nonnull(nvstore_dir_lookup(dir, "a"));
        g_assert_null(nvstore_entry_get_attr(p, "z")->value);
        assert_copy_encodes(dir, b);
    }
}

static void test_golden_encode(void)
{
    g_autoptr(NvstoreDir) dir = nvstore_test_golden_dir();

    assert_encodes_to(dir, V_TWO);
}

/* Encode, decode, encode again: same bytes, same model */
static void test_roundtrip(void)
{
    g_autoptr(NvstoreDir) dir = nvstore_dir_new();
    g_autoptr(NvstoreDir) back = NULL;
    g_autofree uint8_t *enc1 = NULL, *enc2 = NULL;
    size_t len1, len2;
    GRand *r = g_rand_new_with_seed(42);
    int i, j;

    for (i = 0; i < 200; i++) {
        g_autofree char *name = g_strdup_printf("blob-%d-\xc3\xa9", i);
        g_autofree uint8_t *data = NULL;
        size_t len = g_rand_int_range(r, 0, 3000);
        NvstoreEntry *e;

        e = nvstore_dir_add(dir, i == 0 ? NULL : name,
                            i % 3 ? NVSTORE_BLOB_TYPE_RAW :
                            NVSTORE_BLOB_TYPE_TPM, &error_abort);
        data = g_malloc(len);
        for (j = 0; j < len; j++) {
            data[j] = g_rand_int(r);
        }
        if (i % 2) {
            NvstoreExtent ext = {
                g_rand_int(r) * 512ULL, len + g_rand_int_range(r, 0, 10),
                g_rand_int(r), g_rand_int(r)
            };
            nvstore_entry_set_extent(e, &ext, &error_abort);
        } else {
            nvstore_entry_set_inline(e, data, len, &error_abort);
        }
        if (i % 3 == 0) {
            nvstore_entry_set_realsize(e, len, &error_abort);
        }
        for (j = 0; j < i % 5; j++) {
            g_autofree char *aname = g_strdup_printf("attr%d", j);
            uint8_t v[] = { 0x04, 0x02, i, j };

            nvstore_entry_set_attr(e, aname, j % 2 ? v : NULL, sizeof(v),
                                   &error_abort);
        }
    }
    g_rand_free(r);

    enc1 = nvstore_dir_encode(dir, &len1, &error_abort);
    back = nvstore_dir_parse(enc1, len1, &error_abort);
    g_assert_cmpuint(back->entries->len, ==, 200);
    for (i = 0; i < dir->entries->len; i++) {
        NvstoreEntry *e = g_ptr_array_index(dir->entries, i);
        NvstoreEntry *f = nvstore_dir_lookup(back, e->name);

        g_assert_nonnull(f);
        g_assert_cmpstr(e->type, ==, f->type);
        g_assert_cmpmem(e->data, e->data_len, f->data, f->data_len);
        g_assert_cmpint(e->has_extent, ==, f->has_extent);
        g_assert_cmpmem(&e->extent, sizeof(e->extent),
                        &f->extent, sizeof(f->extent));
        g_assert_cmpint(e->has_realsize, ==, f->has_realsize);
        g_assert_cmpuint(e->realsize, ==, f->realsize);
        g_assert_cmpuint(e->attrs->len, ==, f->attrs->len);
        for (j = 0; j < e->attrs->len; j++) {
            NvstoreAttr *x = g_ptr_array_index(e->attrs, j);
            const NvstoreAttr *y = nvstore_entry_get_attr(f, x->name);

            g_assert_nonnull(y);
            g_assert_cmpmem(x->value, x->value_len, y->value, y->value_len);
        }
    }
    enc2 = nvstore_dir_encode(back, &len2, &error_abort);
    g_assert_cmpmem(enc1, len1, enc2, len2);
}

/* An unknown optional attribute with a nested value */
#define V_FUTURE_OPT_ATTR \
    "30 12"                                         /* 18 */ \
    "  16 06 66 75 74 75 72 65"                     /* "future" */ \
    "  30 08"                                       /* SEQUENCE */ \
    "    01 01 ff"                                  /* TRUE */ \
    "    a0 03 02 01 2a"                            /* [0] { 42 } */

static void test_unknown_optional_preserved(void)
{
    /* Entry "b", type "raw", optional { future }, data "x" */
    g_autoptr(NvstoreDir) dir = parse_ok(
        "31 80"
        "30 25"                                     /* Entry, 37 */
        "  30 20"                                   /* NVRAM, 32 */
        "    16 03 72 61 77"
        "    31 00"
        "    31 14" V_FUTURE_OPT_ATTR
        "    04 01 78"
        "  0c 01 62"
        "00 00");
    g_autoptr(GByteArray) attr_bytes = hex(V_FUTURE_OPT_ATTR);
    g_autoptr(NvstoreDir) back = NULL;
    g_autofree uint8_t *enc = NULL;
    NvstoreEntry *b, *c;
    size_t len;

    b = nvstore_dir_lookup(dir, "b");
    g_assert_true(nvstore_entry_check_usable(b, &error_abort));
    g_assert_nonnull(nvstore_entry_get_attr(b, "future"));

    /* Replace the entry's data and add another blob, then rewrite */
    nvstore_entry_set_inline(b, (const uint8_t *)"new data", 8,
                             &error_abort);
    c = nvstore_dir_add(dir, "c", NVSTORE_BLOB_TYPE_RAW, &error_abort);
    nvstore_entry_set_inline(c, (const uint8_t *)"c", 1, &error_abort);
    enc = nvstore_dir_encode(dir, &len, &error_abort);

    g_assert_nonnull(memmem(enc, len, attr_bytes->data, attr_bytes->len));
    back = nvstore_dir_parse(enc, len, &error_abort);
    b = nvstore_dir_lookup(back, "b");
    g_assert_cmpmem(b->data, b->data_len, "new data", 8);
    g_assert_cmpmem(nvstore_entry_get_attr(b, "future")->value,
                    nvstore_entry_get_attr(b, "future")->value_len,
                    attr_bytes->data + 10, attr_bytes->len - 10);
}

/* Entry "m" with an unknown mandatory flag "must-know" (31 octets) */
#define V_ENTRY_UNKNOWN_MANDATORY \
    "30 1d"                                         /* Entry, 29 */ \
    "  30 18"                                       /* NVRAM, 24 */ \
    "    16 03 72 61 77" \
    "    31 0b 16 09 6d 75 73 74 2d 6b 6e 6f 77"    /* "must-know" */ \
    "    31 00" \
    "    04 02 68 69" \
    "  0c 01 6d"

static void test_unknown_mandatory(void)
{
    g_autoptr(NvstoreDir) dir = parse_ok(
        "31 80" V_ENTRY_A V_ENTRY_UNKNOWN_MANDATORY "00 00");
    g_autoptr(GByteArray) raw = hex(V_ENTRY_UNKNOWN_MANDATORY);
    g_autofree uint8_t *enc = NULL;
    Error *err = NULL;
    NvstoreEntry *m, *c;
    size_t len;

    /* The other entry is usable, the directory can be listed */
    g_assert_true(nvstore_entry_check_usable(nvstore_dir_lookup(dir, "a"),
                                             &error_abort));
    m = nvstore_dir_lookup(dir, "m");
    g_assert_nonnull(m);
    g_assert_cmpstr(m->type, ==, "raw");
    g_assert_false(nvstore_entry_check_usable(m, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "'m'"));
    g_assert_nonnull(strstr(error_get_pretty(err),
                            "unknown mandatory attribute 'must-know'"));
    g_clear_pointer(&err, error_free);

    /* It cannot be modified... */
    g_assert_false(nvstore_entry_set_inline(m, (const uint8_t *)"x", 1,
                                            &err));
    g_assert_nonnull(err);
    g_clear_pointer(&err, error_free);
    g_assert_false(nvstore_entry_set_attr(m, "y", NULL, 0, &err));
    g_clear_pointer(&err, error_free);

    /* ...and is written back byte for byte with the others */
    c = nvstore_dir_add(dir, "c", NVSTORE_BLOB_TYPE_RAW, &error_abort);
    nvstore_entry_set_inline(c, (const uint8_t *)"c", 1, &error_abort);
    enc = nvstore_dir_encode(dir, &len, &error_abort);
    g_assert_nonnull(memmem(enc, len, raw->data, raw->len));

    /* It can be deleted */
    g_assert_true(nvstore_dir_delete(dir, "m", &error_abort));
    g_assert_null(nvstore_dir_lookup(dir, "m"));
}

/* Entries that are well-formed but unusable, and why */
static const struct {
    const char *vec;
    const char *why;
} unusable_vectors[] = {
    {   /* extent in the optional set */
        "31 80 30 2d 30 28 16 03 72 61 77 31 00"
        "  31 1d 30 1b 16 06 65 78 74 65 6e 74"
        "    30 11 02 02 10 00 02 02 01 2c 02 01 07 04 04 de ad be ef"
        "  04 00 0c 01 61 00 00",
        "attribute 'extent' must be mandatory"
    }, {    /* extent as a flag */
        "31 80 30 18 30 13 16 03 72 61 77 31 08 16 06 65 78 74 65 6e 74"
        "  31 00 04 00 0c 01 61 00 00",
        "attribute 'extent' needs a value"
    }, {    /* extent value is an INTEGER */
        "31 80 30 1d 30 18 16 03 72 61 77 31 0d 30 0b"
        "  16 06 65 78 74 65 6e 74 02 01 00"
        "  31 00 04 00 0c 01 61 00 00",
        "attribute 'extent' is not an Extent"
    }, {    /* extent offset negative */
        "31 80 30 2d 30 28 16 03 72 61 77"
        "  31 1d 30 1b 16 06 65 78 74 65 6e 74"
        "    30 11 02 02 ff 00 02 02 01 2c 02 01 07 04 04 de ad be ef"
        "  31 00 04 00 0c 01 61 00 00",
        "INTEGER is negative"
    }, {    /* extent crc32c of 3 octets */
        "31 80 30 2c 30 27 16 03 72 61 77"
        "  31 1c 30 1a 16 06 65 78 74 65 6e 74"
        "    30 10 02 02 10 00 02 02 01 2c 02 01 07 04 03 de ad be"
        "  31 00 04 00 0c 01 61 00 00",
        "attribute 'extent' is not an Extent"
    }, {    /* extent offset 2^63 */
        "31 80 30 34 30 2f 16 03 72 61 77"
        "  31 24 30 22 16 06 65 78 74 65 6e 74"
        "    30 18 02 09 00 80 00 00 00 00 00 00 00 02 02 01 2c 02 01 07"
        "      04 04 de ad be ef"
        "  31 00 04 00 0c 01 61 00 00",
        "field out of range"
    }, {    /* extent and inline data */
        "31 80 30 2f 30 2a 16 03 72 61 77"
        "  31 1d 30 1b 16 06 65 78 74 65 6e 74"
        "    30 11 02 02 10 00 02 02 01 2c 02 01 07 04 04 de ad be ef"
        "  31 00 04 02 68 69 0c 01 61 00 00",
        "both an extent and inline data"
    }, {    /* realsize of 4 octets */
        "31 80 30 22 30 1d 16 03 72 61 77"
        "  31 12 30 10 16 08 72 65 61 6c 73 69 7a 65 04 04 00 00 00 00"
        "  31 00 04 00 0c 01 61 00 00",
        "'realsize' is not an OCTET STRING of 8 octets"
    }, {    /* type tpm without realsize */
        "31 80 30 12 30 0d 16 03 74 70 6d 31 00 31 00 04 02 68 69"
        "  0c 01 61 00 00",
        "type 'tpm' requires attribute 'realsize'"
    }, {    /* realsize 3 > 2 octets of data */
        "31 80 30 28 30 23 16 03 74 70 6d"
        "  31 16 30 14 16 08 72 65 61 6c 73 69 7a 65"
        "    04 08 00 00 00 00 00 00 00 03"
        "  31 00 04 02 68 69 0c 01 61 00 00",
        "realsize exceeds the data"
    }, {    /* sealed of 2 octets */
        "31 80 30 1e 30 19 16 03 72 61 77"
        "  31 0e 30 0c 16 06 73 65 61 6c 65 64 04 02 00 00"
        "  31 00 04 00 0c 01 61 00 00",
        "'sealed' is not an OCTET STRING of 48 octets"
    }, {    /* sealed among the optional attributes */
        "31 80 30 1e 30 19 16 03 72 61 77 31 00"
        "  31 0e 30 0c 16 06 73 65 61 6c 65 64 04 02 00 00"
        "  04 00 0c 01 61 00 00",
        "attribute 'sealed' must be mandatory"
    }, {    /* optional attribute "x" twice: as a flag and with a value */
        "31 80 30 1c 30 17 16 03 72 61 77 31 00"
        "  31 0a 16 01 78 30 05 16 01 78 05 00"
        "  04 02 68 69 0c 01 61 00 00",
        "attribute 'x' appears twice"
    },
};

static void test_unusable(void)
{
    int i;

    for (i = 0; i < ARRAY_SIZE(unusable_vectors); i++) {
        g_autoptr(GByteArray) b = hex(unusable_vectors[i].vec);
        g_autoptr(NvstoreDir) dir = NULL;
        g_autofree uint8_t *enc = NULL;
        Error *err = NULL;
        NvstoreEntry *e;
        size_t len;

        dir = nvstore_dir_parse(b->data, b->len, &error_abort);
        e = nvstore_dir_lookup(dir, "a");
        g_assert_nonnull(e);
        g_assert_false(nvstore_entry_check_usable(e, &err));
        if (!strstr(error_get_pretty(err), unusable_vectors[i].why)) {
            g_error("vector %d: '%s' does not say '%s'", i,
                    error_get_pretty(err), unusable_vectors[i].why);
        }
        error_free(err);
        /* Written back exactly as read, and so is a copy */
        enc = nvstore_dir_encode(dir, &len, &error_abort);
        g_assert_cmpmem(enc, len, b->data, b->len);
        assert_copy_encodes(dir, b);
    }
}

/* Directories that must be refused, and what the error must say */
static const struct {
    const char *name;
    const char *vec;
    const char *error;
} bad_vectors[] = {
    { "empty input", "", "Need more data" },
    { "outer SEQUENCE", "30 80 00 00", "Unexpected tag" },
    { "outer definite length", "31 00", "indefinite length form" },
    { "no end-of-contents", "31 80", "no end-of-contents" },
    { "trailing data", "31 80 00 00 00", "1 bytes of trailing data at "
      "offset 4" },
    { "entry not a SEQUENCE", "31 80 04 00 00 00", "entry #0 at offset 2" },
    { "truncated entry", "31 80 30 12 30 0d 16 03 72 61 77",
      "Invalid content length" },
    { "non-minimal short length",
      "31 80 30 81 12 30 0d 16 03 72 61 77 31 00 31 00 04 02 68 69 0c 01 61 "
      "00 00",
      "not minimally encoded" },
    { "length with leading zero", "31 80 30 82 00 12 00 00",
      "not minimally encoded" },
    { "5 length octets", "31 80 30 85 00 00 00 00 12 00 00",
      "Invalid byte count" },
    { "huge length", "31 80 30 84 ff ff ff ff 00 00",
      "Content length too large" },
    { "length beyond the input", "31 80 30 83 01 00 00 00 00",
      "Invalid content length" },
    { "reserved length octet 0xff", "31 80 30 ff 00 00",
      "Invalid byte count" },
    { "nvram not a SEQUENCE", "31 80 30 02 04 00 00 00", "nvram" },
    { "type not IA5String",
      "31 80 30 0e 30 0c 0c 02 72 61 31 00 31 00 04 00 00 00", "type" },
    { "type with a space",
      "31 80 30 0d 30 0b 16 03 72 20 77 31 00 31 00 04 00 00 00",
      "invalid blob type" },
    { "type empty", "31 80 30 0a 30 08 16 00 31 00 31 00 04 00 00 00",
      "invalid blob type" },
    { "type not ASCII",
      "31 80 30 0d 30 0b 16 01 80 31 00 31 00 04 00 00 00 00 00",
      "non-ASCII" },
    { "missing data",
      "31 80 30 0b 30 09 16 03 72 61 77 31 00 31 00 00 00", "data" },
    { "constructed data",
      "31 80 30 0f 30 0d 16 03 72 61 77 31 00 31 00 24 02 04 00 00 00",
      "data" },
    { "extra element in nvram",
      "31 80 30 0f 30 0d 16 03 72 61 77 31 00 31 00 04 00 05 00 00 00",
      "after the nvram data" },
    { "name not UTF-8",
      "31 80 30 11 30 0c 16 03 72 61 77 31 00 31 00 04 01 78 0c 01 ff "
      "00 00", "not valid UTF-8" },
    { "name with a control character",
      "31 80 30 11 30 0c 16 03 72 61 77 31 00 31 00 04 01 78 0c 01 0a "
      "00 00", "invalid blob name" },
    { "empty name",
      "31 80 30 10 30 0c 16 03 72 61 77 31 00 31 00 04 01 78 0c 00 00 00",
      "invalid blob name" },
    { "name not UTF8String",
      "31 80 30 11 30 0c 16 03 72 61 77 31 00 31 00 04 01 78 16 01 61 "
      "00 00", "name" },
    { "element after the name",
      "31 80 30 13 30 0c 16 03 72 61 77 31 00 31 00 04 01 78 0c 01 61 "
      "05 00 00 00", "after the name" },
    { "INTEGER as an attribute",
      "31 80 30 10 30 0e 16 03 72 61 77 31 03 02 01 00 31 00 04 00 00 00",
      "attribute: Unexpected tag: expected: 0x16, actual: 0x02" },
    { "valued attribute without a value",
      "31 80 30 12 30 10 16 03 72 61 77 31 05 30 03 16 01 78 31 00 04 00 "
      "00 00", "without a value" },
    { "valued attribute with two values",
      "31 80 30 17 30 15 16 03 72 61 77 31 00 31 0a 30 08 16 01 78 05 00 "
      "02 01 01 04 00 00 00", "more than one value" },
    { "attribute name empty",
      "31 80 30 11 30 0f 16 03 72 61 77 31 00 31 02 16 00 04 00 00 00",
      "invalid attribute name" },
    { "attribute value truncated",
      "31 80 30 14 30 12 16 03 72 61 77 31 00 31 07 30 05 16 01 78 04 05 "
      "04 00 00 00", "at offset 20: Invalid content length" },
    { "constructed OCTET STRING in a value",
      "31 80 30 18 30 16 16 03 72 61 77 31 00 31 0b 30 09 16 01 78 24 04 "
      "04 02 68 69 04 00 00 00", "constructed encoding of universal type 4" },
    { "primitive SEQUENCE in a value",
      "31 80 30 14 30 12 16 03 72 61 77 31 00 31 07 30 05 16 01 78 10 00 "
      "04 00 00 00", "primitive encoding of a SEQUENCE" },
    { "high tag number in a value",
      "31 80 30 15 30 13 16 03 72 61 77 31 00 31 08 30 06 16 01 78 1f 21 "
      "00 04 00 00 00", "High tag numbers" },
    { "end-of-contents in a value",
      "31 80 30 14 30 12 16 03 72 61 77 31 00 31 07 30 05 16 01 78 00 00 "
      "04 00 00 00", "end-of-contents" },
    { "value nested 9 levels",
      "31 80 30 26 30 24 16 03 72 61 77 31 00 31 19 30 17 16 01 78"
      " 30 12 30 10 30 0e 30 0c 30 0a 30 08 30 06 30 04 30 02 05 00"
      " 04 00 00 00", "nested more than 8 levels" },
    { "attributes out of order",
      "31 80 30 13 30 11 16 03 72 61 77 31 00 31 06 16 01 79 16 01 78 "
      "04 00 00 00", "not in ascending order" },
    { "attribute twice, same encoding",
      "31 80 30 13 30 11 16 03 72 61 77 31 00 31 06 16 01 78 16 01 78 "
      "04 00 00 00", "not in ascending order" },
    { "entries out of order",
      "31 80" V_ENTRY_PERMALL V_ENTRY_A "00 00", "not in ascending order" },
    { "duplicate names",
      "31 80"
      "30 11 30 0c 16 03 72 61 77 31 00 31 00 04 01 78 0c 01 61"
      "30 11 30 0c 16 03 72 61 77 31 00 31 00 04 01 79 0c 01 61 00 00",
      "entry #1: duplicate blob name 'a'" },
    { "duplicate names, another entry between them",
      "31 80"
      "30 11 30 0c 16 03 72 61 77 31 00 31 00 04 01 78 0c 01 61"
      "30 11 30 0c 16 03 72 61 77 31 00 31 00 04 01 78 0c 01 62"
      "30 11 30 0c 16 03 72 61 77 31 00 31 00 04 01 79 0c 01 61 00 00",
      "entry #2: duplicate blob name 'a'" },
    { "two names twice: the first duplicate in the directory's order",
      "31 80"
      "30 11 30 0c 16 03 72 61 77 31 00 31 00 04 01 78 0c 01 62"
      "30 11 30 0c 16 03 72 61 77 31 00 31 00 04 01 79 0c 01 62"
      "30 11 30 0c 16 03 72 61 77 31 00 31 00 04 01 7a 0c 01 61"
      "30 11 30 0c 16 03 72 61 77 31 00 31 00 04 01 7b 0c 01 61 00 00",
      "entry #1: duplicate blob name 'b'" },
    { "a duplicate before a malformed entry",
      "31 80"
      "30 11 30 0c 16 03 72 61 77 31 00 31 00 04 01 78 0c 01 61"
      "30 11 30 0c 16 03 72 61 77 31 00 31 00 04 01 79 0c 01 61"
      "30 02 05 00 00 00",
      "entry #1: duplicate blob name 'a'" },
    { "two unnamed entries",
      "31 80"
      "30 0e 30 0c 16 03 72 61 77 31 00 31 00 04 01 78"
      "30 0e 30 0c 16 03 72 61 77 31 00 31 00 04 01 79 00 00",
      "duplicate blob name '(unnamed)'" },
    { "end-of-contents as an entry's element",
      "31 80 30 02 00 00 00 00", "nvram" },
};

static void test_bad(void)
{
    int i;

    for (i = 0; i < ARRAY_SIZE(bad_vectors); i++) {
        g_autoptr(GByteArray) b = hex(bad_vectors[i].vec);
        Error *err = NULL;
        NvstoreDir *dir;

        dir = nvstore_dir_parse(b->data, b->len, &err);
        if (dir) {
            g_error("'%s' was accepted", bad_vectors[i].name);
        }
        g_assert_nonnull(err);
        if (!strstr(error_get_pretty(err), bad_vectors[i].error)) {
            g_error("'%s': error '%s' does not say '%s'", bad_vectors[i].name,
                    error_get_pretty(err), bad_vectors[i].error);
        }
        g_assert_true(g_str_has_prefix(error_get_pretty(err),
                                       "Directory"));
        error_free(err);
    }
}

/* Every proper prefix of a valid directory is refused */
static void test_truncated(void)
{
    g_autoptr(GByteArray) b = hex(V_TWO);
    guint len;

    for (len = 0; len < b->len; len++) {
        g_autofree uint8_t *copy = g_memdup2(b->data, len);
        Error *err = NULL;

        g_assert_null(nvstore_dir_parse(copy, len, &err));
        g_assert_nonnull(err);
        error_free(err);
    }
}

/* Entry "a" with @n flags "a00".."a{n-1}" (all 3 characters) */
static GByteArray *many_attrs(int n)
{
    g_autoptr(GByteArray) set = g_byte_array_new();
    GByteArray *out = g_byte_array_new();
    int i;

    for (i = 0; i < n; i++) {
        char name[4];

        g_snprintf(name, sizeof(name), "a%02d", i);
        g_byte_array_append(set, (const guint8 *)"\x16\x03", 2);
        g_byte_array_append(set, (const guint8 *)name, 3);
    }
    /* 5 * 65 = 325 octets at most: long form lengths */
    g_assert(set->len < 65536);
    g_byte_array_append(out, (const guint8 *)"\x31\x80", 2);
    {
        guint nvram = 5 + 2 + 4 + set->len + 2;
        guint entry = 4 + nvram + 3;
        guint8 hdr[] = { 0x30, 0x82, entry >> 8, entry, 0x30, 0x82,
                         nvram >> 8, nvram, 0x16, 0x03, 'r', 'a', 'w',
                         0x31, 0x00, 0x31, 0x82, set->len >> 8, set->len };

        g_byte_array_append(out, hdr, sizeof(hdr));
        g_byte_array_append(out, set->data, set->len);
        g_byte_array_append(out, (const guint8 *)"\x04\x00\x0c\x01\x61", 5);
    }
    g_byte_array_append(out, (const guint8 *)"\x00\x00", 2);
    return out;
}

static void test_limits(void)
{
    g_autoptr(GByteArray) ok = many_attrs(NVSTORE_ENTRY_MAX_ATTRS);
    g_autoptr(GByteArray) bad = many_attrs(NVSTORE_ENTRY_MAX_ATTRS + 1);
    g_autoptr(NvstoreDir) dir = NULL;
    g_autoptr(GByteArray) entries = g_byte_array_new();
    g_autofree uint8_t *huge = NULL;
    Error *err = NULL;
    int i;

    /* 64 attributes are fine (and need long form lengths), 65 are not */
    dir = nvstore_dir_parse(ok->data, ok->len, &error_abort);
    g_assert_cmpuint(nvstore_dir_lookup(dir, "a")->attrs->len, ==, 64);
    g_clear_pointer(&dir, nvstore_dir_free);
    g_assert_null(nvstore_dir_parse(bad->data, bad->len, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "more than 64 attrib"));
    g_clear_pointer(&err, error_free);

    /* More than 16 MiB is refused before it is looked at */
    huge = g_malloc0(NVSTORE_DIR_MAX_SIZE + 1);
    g_assert_null(nvstore_dir_parse(huge, NVSTORE_DIR_MAX_SIZE + 1, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "more than the limit"));
    g_clear_pointer(&err, error_free);

    /*
     * 65537 entries named with 3 characters from '0' (0x30) upwards, so
     * that their encodings ascend with i
     */
    g_byte_array_append(entries, (const guint8 *)"\x31\x80", 2);
    for (i = 0; i <= NVSTORE_DIR_MAX_ENTRIES; i++) {
        guint8 e[] = { 0x30, 0x10, 0x30, 0x09, 0x16, 0x01, 'r',
                       0x31, 0x00, 0x31, 0x00, 0x04, 0x00,
                       0x0c, 0x03, '0' + (i >> 12), '0' + ((i >> 6) & 63),
                       '0' + (i & 63) };
        e[1] = sizeof(e) - 2;
        g_byte_array_append(entries, e, sizeof(e));
    }
    g_byte_array_append(entries, (const guint8 *)"\x00\x00", 2);
    g_assert_null(nvstore_dir_parse(entries->data, entries->len, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "more than 65536 ent"));
    g_clear_pointer(&err, error_free);
}

/* Whether the entries of @dir are sorted by name, each name once */
static bool dir_sorted(NvstoreDir *dir)
{
    guint i;

    for (i = 1; i < dir->entries->len; i++) {
        NvstoreEntry *a = g_ptr_array_index(dir->entries, i - 1);
        NvstoreEntry *b = g_ptr_array_index(dir->entries, i);

        if (strcmp(a->name, b->name) >= 0) {
            return false;
        }
    }
    return true;
}

/*
 * Random adds and deletes, the unnamed entry among them, against a hash
 * table of the names: the entries stay sorted by name, every lookup
 * finds what the table has, and a parse of the encoding gives the same
 * entries in the same order
 */
static void test_sorted(void)
{
    g_autoptr(GRand) rand = g_rand_new_with_seed(4);
    g_autoptr(NvstoreDir) dir = nvstore_dir_new();
    g_autoptr(GHashTable) model = g_hash_table_new(g_str_hash, g_str_equal);
    const char *names[40];
    char buf[40][16];
    int i, k;

    for (i = 0; i < ARRAY_SIZE(names); i++) {
        /* Names that share prefixes, and the unnamed entry ("") */
        snprintf(buf[i], sizeof(buf[i]), "%.*s%d", g_rand_int_range(rand, 0, 3),
                 "aaa", g_rand_int_range(rand, 0, 100));
        names[i] = i ? buf[i] : "";
    }
    for (k = 0; k < 2000; k++) {
        const char *name = names[g_rand_int_range(rand, 0, ARRAY_SIZE(names))];
        const char *arg = name[0] ? name : NULL;
        bool present = g_hash_table_contains(model, name);
        Error *err = NULL;

        if (g_rand_boolean(rand)) {
            NvstoreEntry *e = nvstore_dir_add(dir, arg, NVSTORE_BLOB_TYPE_RAW,
                                              &err);

            g_assert_true(!e == present);
            if (e) {
                g_assert_cmpstr(e->name, ==, name);
                g_hash_table_add(model, (gpointer)name);
            }
        } else {
            g_assert_true(nvstore_dir_delete(dir, arg, &err) == present);
            g_hash_table_remove(model, name);
        }
        if (err) {
            error_free(err);
        }
        g_assert_true(dir_sorted(dir));
        g_assert_cmpuint(dir->entries->len, ==, g_hash_table_size(model));
        for (i = 0; i < ARRAY_SIZE(names); i++) {
            NvstoreEntry *e = nvstore_dir_lookup(dir, names[i][0] ? names[i]
                                                 : NULL);

            g_assert_true(!e == !g_hash_table_contains(model, names[i]));
            g_assert_true(!e || !strcmp(e->name, names[i]));
        }
        if (k % 100 == 99) {
            g_autoptr(NvstoreDir) back = NULL;
            g_autofree uint8_t *enc = NULL;
            size_t len;

            enc = nvstore_dir_encode(dir, &len, &error_abort);
            back = nvstore_dir_parse(enc, len, &error_abort);
            g_assert_cmpuint(back->entries->len, ==, dir->entries->len);
            for (i = 0; i < dir->entries->len; i++) {
                g_assert_cmpstr(((NvstoreEntry *)
                                 g_ptr_array_index(back->entries, i))->name,
                                ==,
                                ((NvstoreEntry *)
                                 g_ptr_array_index(dir->entries, i))->name);
            }
        }
    }
}

/* @dir encodes to @len bytes at @enc */
static void assert_encodes(NvstoreDir *dir, const uint8_t *enc, size_t len)
{
    g_autofree uint8_t *e = NULL;
    size_t n;

    e = nvstore_dir_encode(dir, &n, &error_abort);
    g_assert_cmpmem(e, n, enc, len);
}

/*
 * Copies share their entries until one changes them: a change through
 * nvstore_dir_lookup_mut() leaves the other directories as they were,
 * and each entry lives until the last directory that holds it goes,
 * whatever the order they go in (the sanitizer build checks the frees)
 */
static void test_copy_shares(void)
{
    NvstoreDir *dir = nvstore_dir_new();
    g_autofree uint8_t *before = NULL;
    size_t len;
    int i, round;

    for (i = 0; i < 50; i++) {
        g_autofree char *name = g_strdup_printf("b%02d", i);
        NvstoreEntry *e = nvstore_dir_add(dir, name, NVSTORE_BLOB_TYPE_RAW,
                                          &error_abort);

        nvstore_entry_set_inline(e, (const uint8_t *)name, strlen(name),
                                 &error_abort);
    }
    before = nvstore_dir_encode(dir, &len, &error_abort);
    for (round = 0; round < 3; round++) {
        NvstoreDir *copy = nvstore_dir_copy(dir);
        NvstoreDir *copy2 = nvstore_dir_copy(copy);

        for (i = 0; i < 50; i += 3) {
            g_autofree char *name = g_strdup_printf("b%02d", i);
            NvstoreEntry *e = nvstore_dir_lookup_mut(copy, name);

            g_assert_true(e != nvstore_dir_lookup(dir, name));
            g_assert_true(e != nvstore_dir_lookup(copy2, name));
            g_assert_true(nvstore_dir_lookup_mut(copy, name) == e);
            nvstore_entry_set_inline(e, (const uint8_t *)"x", 1,
                                     &error_abort);
        }
        g_assert_true(nvstore_dir_lookup(copy, "b01") ==
                      nvstore_dir_lookup(dir, "b01"));
        nvstore_dir_delete(copy, "b01", &error_abort);
        nvstore_dir_add(copy, "new", NVSTORE_BLOB_TYPE_RAW, &error_abort);
        assert_encodes(dir, before, len);
        assert_encodes(copy2, before, len);
        if (round == 0) {
            nvstore_dir_free(copy);
            nvstore_dir_free(copy2);
        } else if (round == 1) {
            nvstore_dir_free(copy2);
            nvstore_dir_free(copy);
        } else {
            /* As a commit does: the copy becomes the directory */
            nvstore_dir_free(dir);
            dir = copy;
            assert_encodes(copy2, before, len);
            nvstore_dir_free(copy2);
        }
        if (round < 2) {
            assert_encodes(dir, before, len);
        }
    }
    g_assert_cmpuint(dir->entries->len, ==, 50);
    g_assert_null(nvstore_dir_lookup(dir, "b01"));
    g_assert_nonnull(nvstore_dir_lookup(dir, "new"));
    g_assert_cmpmem(nvstore_dir_lookup(dir, "b03")->data, 1, "x", 1);
    g_assert_cmpmem(nvstore_dir_lookup(dir, "b04")->data, 3, "b04", 3);
    nvstore_dir_free(dir);
}

static void test_api(void)
{
    g_autoptr(NvstoreDir) dir = nvstore_dir_new();
    g_autofree char *long_name = g_strnfill(NVSTORE_NAME_MAX_LEN + 1, 'n');
    g_autofree char *long_type = g_strnfill(NVSTORE_ID_MAX_LEN + 1, 't');
    g_autofree uint8_t *enc = NULL;
    NvstoreEntry *e, *u;
    Error *err = NULL;
    size_t len;

    e = nvstore_dir_add(dir, "x", NVSTORE_BLOB_TYPE_RAW, &error_abort);
    g_assert_null(nvstore_dir_add(dir, "x", NVSTORE_BLOB_TYPE_RAW, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "exists already"));
    g_clear_pointer(&err, error_free);
    g_assert_null(nvstore_dir_add(dir, long_name, NVSTORE_BLOB_TYPE_RAW, &err));
    g_clear_pointer(&err, error_free);
    g_assert_null(nvstore_dir_add(dir, "", NVSTORE_BLOB_TYPE_RAW, &err));
    g_clear_pointer(&err, error_free);
    g_assert_null(nvstore_dir_add(dir, "bad\xff", NVSTORE_BLOB_TYPE_RAW, &err));
    g_clear_pointer(&err, error_free);
    g_assert_null(nvstore_dir_add(dir, "tab\t", NVSTORE_BLOB_TYPE_RAW, &err));
    g_clear_pointer(&err, error_free);
    g_assert_null(nvstore_dir_add(dir, "y", long_type, &err));
    g_clear_pointer(&err, error_free);
    g_assert_null(nvstore_dir_add(dir, "y", "a b", &err));
    g_clear_pointer(&err, error_free);

    /* The unnamed entry */
    u = nvstore_dir_add(dir, NULL, NVSTORE_BLOB_TYPE_RAW, &error_abort);
    g_assert_true(nvstore_dir_lookup(dir, NULL) == u);
    g_assert_null(nvstore_dir_add(dir, NULL, NVSTORE_BLOB_TYPE_RAW, &err));
    g_clear_pointer(&err, error_free);

    /* Known attributes are not set as generic ones */
    g_assert_false(nvstore_entry_set_attr(e, "extent", NULL, 0, &err));
    g_clear_pointer(&err, error_free);
    g_assert_false(nvstore_entry_set_attr(e, "realsize",
                                          (const uint8_t *)"\x05\x00", 2,
                                          &err));
    g_clear_pointer(&err, error_free);
    g_assert_false(nvstore_entry_set_attr(e, "sealed",
                                          (const uint8_t *)"\x05\x00", 2,
                                          &err));
    g_clear_pointer(&err, error_free);
    /* Values must be exactly one well-formed DER encoding */
    g_assert_false(nvstore_entry_set_attr(e, "v",
                                          (const uint8_t *)"\x05\x00\x05\x00",
                                          4, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "single DER"));
    g_clear_pointer(&err, error_free);
    g_assert_false(nvstore_entry_set_attr(e, "v",
                                          (const uint8_t *)"\x30\x03\x05\x00",
                                          4, &err));
    g_clear_pointer(&err, error_free);
    g_assert_false(nvstore_entry_set_attr(e, "v",
                                          (const uint8_t *)"\x24\x00", 2,
                                          &err));
    g_clear_pointer(&err, error_free);
    /* 8 levels of nesting are fine, 9 are not */
    g_assert_true(nvstore_entry_set_attr(
                      e, "v", (const uint8_t *)"\x30\x10\x30\x0e\x30\x0c"
                      "\x30\x0a\x30\x08\x30\x06\x30\x04\x30\x02\x05\x00",
                      18, &error_abort));
    g_assert_false(nvstore_entry_set_attr(
                      e, "v", (const uint8_t *)"\x30\x12\x30\x10\x30\x0e"
                      "\x30\x0c\x30\x0a\x30\x08\x30\x06\x30\x04\x30\x02"
                      "\x05\x00", 20, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "more than 8 levels"));
    g_clear_pointer(&err, error_free);
    g_assert_true(nvstore_entry_set_attr(e, "v", (const uint8_t *)"\x05\x00",
                                         2, &error_abort));
    g_assert_true(nvstore_entry_set_attr(e, "v", NULL, 0, &error_abort));
    g_assert_null(nvstore_entry_get_attr(e, "v")->value);
    g_assert_true(nvstore_entry_del_attr(e, "v"));
    g_assert_false(nvstore_entry_del_attr(e, "v"));

    /* realsize never exceeds the data */
    nvstore_entry_set_inline(e, (const uint8_t *)"abc", 3, &error_abort);
    g_assert_false(nvstore_entry_set_realsize(e, 4, &err));
    g_clear_pointer(&err, error_free);
    nvstore_entry_set_realsize(e, 3, &error_abort);
    g_assert_false(nvstore_entry_set_inline(e, (const uint8_t *)"ab", 2,
                                            &err));
    g_clear_pointer(&err, error_free);
    g_assert_false(nvstore_entry_set_extent(e, &(NvstoreExtent){ 0, 2, 0, 0 },
                                            &err));
    g_clear_pointer(&err, error_free);
    g_assert_false(nvstore_entry_set_extent(
                       e, &(NvstoreExtent){ NVSTORE_EXTENT_LIMIT, 9, 0, 0 },
                       &err));
    g_clear_pointer(&err, error_free);

    g_assert_false(nvstore_dir_delete(dir, "nope", &err));
    g_clear_pointer(&err, error_free);
    g_assert_true(nvstore_dir_delete(dir, "x", &error_abort));
    g_assert_true(nvstore_dir_delete(dir, NULL, &error_abort));
    enc = nvstore_dir_encode(dir, &len, &error_abort);
    g_assert_cmpmem(enc, len, "\x31\x80\x00\x00", 4);
}

/*
 * With NVSTORE_DIR_CORPUS=DIR in the environment, write every vector of
 * this file to DIR first: the seed corpus of the fuzz target
 * (tests/unit/nvstore-dir-fuzz.c, project/fuzz.sh).
 */
static void write_corpus(const char *dir)
{
    const char *vecs[3 + ARRAY_SIZE(unusable_vectors) +
                     ARRAY_SIZE(bad_vectors)];
    int n = 0, i;

    vecs[n++] = V_EMPTY;
    vecs[n++] = V_TWO;
    vecs[n++] = "31 80" V_ENTRY_A V_ENTRY_UNKNOWN_MANDATORY "00 00";
    for (i = 0; i < ARRAY_SIZE(unusable_vectors); i++) {
        vecs[n++] = unusable_vectors[i].vec;
    }
    for (i = 0; i < ARRAY_SIZE(bad_vectors); i++) {
        vecs[n++] = bad_vectors[i].vec;
    }
    g_mkdir_with_parents(dir, 0755);
    for (i = 0; i < n; i++) {
        g_autoptr(GByteArray) b = hex(vecs[i]);
        g_autofree char *path = g_strdup_printf("%s/vector-%03d", dir, i);

        g_assert_true(g_file_set_contents(path, (const char *)b->data,
                                          b->len, NULL));
    }
}

/*
 * Attribute 'sealed' (encrypted images): decoded, copied and encoded
 * back byte for byte; dropped with the data it seals
 */
static void test_sealed(void)
{
    g_autoptr(NvstoreDir) dir = nvstore_dir_new();
    g_autoptr(NvstoreDir) back = NULL;
    g_autoptr(NvstoreDir) copy = NULL;
    g_autofree uint8_t *enc = NULL, *enc2 = NULL;
    NvstoreExtent ext = { 12288, 300, 2, 0x12345678 };
    uint8_t seal[NVSTORE_SEAL_LEN];
    NvstoreEntry *e;
    size_t len, len2;
    int i;

    for (i = 0; i < NVSTORE_SEAL_LEN; i++) {
        seal[i] = i * 7;
    }
    e = nvstore_dir_add(dir, "a", NVSTORE_BLOB_TYPE_RAW, &error_abort);
    nvstore_entry_set_extent(e, &ext, &error_abort);
    nvstore_entry_set_sealed(e, seal);
    enc = nvstore_dir_encode(dir, &len, &error_abort);
    back = nvstore_dir_parse(enc, len, &error_abort);
    e = nvstore_dir_lookup(back, "a");
    g_assert_null(nvstore_entry_unusable(e));
    g_assert_nonnull(e->sealed);
    g_assert_cmpmem(e->sealed, NVSTORE_SEAL_LEN, seal, NVSTORE_SEAL_LEN);

    copy = nvstore_dir_copy(back);
    enc2 = nvstore_dir_encode(copy, &len2, &error_abort);
    g_assert_cmpmem(enc, len, enc2, len2);

    /* New data, no seal */
    e = nvstore_dir_lookup_mut(copy, "a");
    nvstore_entry_set_extent(e, &ext, &error_abort);
    g_assert_null(e->sealed);
    nvstore_entry_set_sealed(e, seal);
    nvstore_entry_set_inline(e, (const uint8_t *)"x", 1, &error_abort);
    g_assert_null(e->sealed);
    /* The original is untouched */
    g_assert_nonnull(nvstore_dir_lookup(back, "a")->sealed);
}

int main(int argc, char **argv)
{
    if (getenv("NVSTORE_DIR_CORPUS")) {
        write_corpus(getenv("NVSTORE_DIR_CORPUS"));
    }
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/nvstore-dir/golden/empty", test_golden_empty);
    g_test_add_func("/nvstore-dir/golden/decode", test_golden_decode);
    g_test_add_func("/nvstore-dir/golden/encode", test_golden_encode);
    g_test_add_func("/nvstore-dir/roundtrip", test_roundtrip);
    g_test_add_func("/nvstore-dir/unknown-optional-preserved",
                    test_unknown_optional_preserved);
    g_test_add_func("/nvstore-dir/unknown-mandatory", test_unknown_mandatory);
    g_test_add_func("/nvstore-dir/unusable", test_unusable);
    g_test_add_func("/nvstore-dir/bad", test_bad);
    g_test_add_func("/nvstore-dir/truncated", test_truncated);
    g_test_add_func("/nvstore-dir/limits", test_limits);
    g_test_add_func("/nvstore-dir/api", test_api);
    g_test_add_func("/nvstore-dir/sorted", test_sorted);
    g_test_add_func("/nvstore-dir/copy-shares", test_copy_shares);
    g_test_add_func("/nvstore-dir/sealed", test_sealed);
    return g_test_run();
}
