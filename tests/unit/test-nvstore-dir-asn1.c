/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Cross-check of the nvstore directory encoder with an independent
 * decoder: libtasn1, driven by the ASN.1 module of the specification,
 * extracted from docs/interop/nvstore.rst at run time (there is no
 * second copy of the module).  Every field of every entry that the
 * encoder wrote is read back through libtasn1 and compared with the
 * model it was encoded from.
 */

#include "qemu/osdep.h"
#include <libtasn1.h>
#include "qapi/error.h"
#include "qemu/bswap.h"
#include "block/nvstore-dir.h"
#include "nvstore-dir-test.h"

#define BEGIN_MARK "-- BEGIN NVSTORE ASN.1 MODULE"
#define END_MARK "-- END NVSTORE ASN.1 MODULE"

static asn1_node defs;

/* The module: the lines between the markers, without the indentation */
static char *extract_module(void)
{
    g_autofree char *rst = NULL;
    g_auto(GStrv) lines = NULL;
    GString *mod = g_string_new(NULL);
    bool in = false;
    int i;

    g_assert_true(g_file_get_contents(
                      g_test_get_filename(G_TEST_DIST, "..", "..", "docs",
                                          "interop", "nvstore.rst", NULL),
                      &rst, NULL, NULL));
    lines = g_strsplit(rst, "\n", -1);
    for (i = 0; lines[i]; i++) {
        const char *l = g_strstrip(lines[i]);

        if (!strcmp(l, BEGIN_MARK)) {
            in = true;
        } else if (!strcmp(l, END_MARK)) {
            g_assert_true(in);
            g_assert_cmpuint(mod->len, >, 0);
            return g_string_free(mod, false);
        } else if (in) {
            g_string_append_printf(mod, "%s\n", l);
        }
    }
    g_error("no ASN.1 module between the markers in nvstore.rst");
}

static void load_module(void)
{
    g_autofree char *mod = NULL;
    g_autofree char *path = NULL;
    char err[ASN1_MAX_ERROR_DESCRIPTION_SIZE] = "";
    int fd;

    if (defs) {
        return;
    }
    mod = extract_module();
    fd = g_file_open_tmp("nvstore-XXXXXX.asn", &path, NULL);
    g_assert_cmpint(fd, >=, 0);
    g_assert_true(g_file_set_contents(path, mod, -1, NULL));
    close(fd);
    if (asn1_parser2tree(path, &defs, err) != ASN1_SUCCESS) {
        g_error("libtasn1 refuses the spec's module: %s", err);
    }
    unlink(path);
}

/* libtasn1's value of a node, as bytes */
static GByteArray *read_value(asn1_node node, const char *name)
{
    GByteArray *b = g_byte_array_new();
    int len = 0;
    int ret;

    ret = asn1_read_value(node, name, NULL, &len);
    if (ret == ASN1_SUCCESS) {
        return b;       /* empty */
    }
    g_assert_cmpint(ret, ==, ASN1_MEM_ERROR);
    g_byte_array_set_size(b, len);
    g_assert_cmpint(asn1_read_value(node, name, b->data, &len), ==,
                    ASN1_SUCCESS);
    g_byte_array_set_size(b, len);
    return b;
}

static char *read_string(asn1_node node, const char *name)
{
    GByteArray *b = read_value(node, name);

    g_byte_array_append(b, (const guint8 *)"", 1);
    return (char *)g_byte_array_free(b, false);
}

/* An INTEGER as libtasn1 returns it: big-endian two's complement */
static uint64_t read_uint(asn1_node node, const char *name)
{
    g_autoptr(GByteArray) b = read_value(node, name);
    uint64_t v = 0;
    guint i;

    g_assert_cmpuint(b->len, >=, 1);
    g_assert_cmpuint(b->len, <=, 9);
    g_assert_false(b->data[0] & 0x80);
    for (i = 0; i < b->len; i++) {
        v = (v << 8) | b->data[i];
    }
    return v;
}

static asn1_node decode_as(const char *type, const uint8_t *buf, size_t len)
{
    char err[ASN1_MAX_ERROR_DESCRIPTION_SIZE] = "";
    asn1_node node = NULL;

    g_assert_cmpint(asn1_create_element(defs, type, &node), ==,
                    ASN1_SUCCESS);
    if (asn1_der_decoding(&node, buf, len, err) != ASN1_SUCCESS) {
        g_error("libtasn1 cannot decode a %s: %s", type, err);
    }
    return node;
}

/* Compare one attribute set of an entry with what the model says */
static void check_attrs(asn1_node dirnode, const char *entry, bool mandatory,
                        NvstoreEntry *e)
{
    g_autofree char *set = g_strdup_printf("%s.nvram.%s", entry,
                                           mandatory ? "mandatory" :
                                           "optional");
    unsigned expected = 0, seen_known = 0;
    int count = 0, i;

    g_assert_cmpint(asn1_number_of_elements(dirnode, set, &count), ==,
                    ASN1_SUCCESS);
    for (i = 1; i <= count; i++) {
        g_autofree char *el = g_strdup_printf("%s.?%d", set, i);
        g_autofree char *choice = read_string(dirnode, el);
        g_autofree char *nm = NULL;
        g_autofree char *name = NULL;
        g_autoptr(GByteArray) value = NULL;

        if (!strcmp(choice, "flag")) {
            nm = g_strdup_printf("%s.flag", el);
            name = read_string(dirnode, nm);
        } else {
            g_assert_cmpstr(choice, ==, "valued");
            nm = g_strdup_printf("%s.valued.name", el);
            name = read_string(dirnode, nm);
            g_free(nm);
            nm = g_strdup_printf("%s.valued.value", el);
            value = read_value(dirnode, nm);
        }

        if (!strcmp(name, NVSTORE_ATTR_EXTENT)) {
            asn1_node ext = decode_as("NVStore.Extent", value->data,
                                      value->len);
            g_autoptr(GByteArray) crc = read_value(ext, "crc32c");

            g_assert_true(mandatory && e->has_extent);
            g_assert_cmpuint(read_uint(ext, "offset"), ==, e->extent.offset);
            g_assert_cmpuint(read_uint(ext, "length"), ==, e->extent.length);
            g_assert_cmpuint(read_uint(ext, "generation"), ==,
                             e->extent.generation);
            g_assert_cmpuint(crc->len, ==, 4);
            g_assert_cmphex((uint32_t)ldl_be_p(crc->data), ==,
                            e->extent.crc32c);
            asn1_delete_structure(&ext);
            seen_known++;
        } else if (!strcmp(name, NVSTORE_ATTR_REALSIZE)) {
            asn1_node rs = decode_as("NVStore.RealSize", value->data,
                                     value->len);
            g_autoptr(GByteArray) v = read_value(rs, "");

            g_assert_true(mandatory && e->has_realsize);
            g_assert_cmpuint(v->len, ==, 8);
            g_assert_cmpuint(ldq_be_p(v->data), ==, e->realsize);
            asn1_delete_structure(&rs);
            seen_known++;
        } else {
            const NvstoreAttr *attr = nvstore_entry_get_attr(e, name);

            g_assert_false(mandatory);
            g_assert_nonnull(attr);
            if (value) {
                g_assert_cmpmem(value->data, value->len, attr->value,
                                attr->value_len);
            } else {
                g_assert_null(attr->value);
            }
        }
    }
    if (mandatory) {
        expected = e->has_extent + e->has_realsize;
        g_assert_cmpuint(seen_known, ==, expected);
        g_assert_cmpint(count, ==, expected);
    } else {
        g_assert_cmpint(count, ==, e->attrs->len);
    }
}

/*
 * The same SET OF with the definite length form (X.690 8.1.3: the same
 * value), for the one case libtasn1 4.19 does not decode: an empty SET OF
 * with the indefinite length form ("tag error near element '?1.'").
 */
static uint8_t *to_definite(const uint8_t *enc, size_t *len)
{
    size_t clen = *len - 4;
    uint8_t *out = g_malloc(*len + 1);

    g_assert_cmpmem(enc, 2, "\x31\x80", 2);
    g_assert_cmpmem(enc + *len - 2, 2, "\x00\x00", 2);
    g_assert_cmpuint(clen, <, 128);
    out[0] = 0x31;
    out[1] = clen;
    memcpy(out + 2, enc + 2, clen);
    *len = clen + 2;
    return out;
}

/* Encode @dir, decode it with libtasn1, compare field by field */
static void cross_check(NvstoreDir *dir)
{
    char err[ASN1_MAX_ERROR_DESCRIPTION_SIZE] = "";
    g_autofree uint8_t *enc = NULL;
    asn1_node node = NULL;
    size_t len;
    int count = 0, i;

    load_module();
    enc = nvstore_dir_encode(dir, &len, &error_abort);
    if (!dir->entries->len) {
        uint8_t *definite = to_definite(enc, &len);

        g_free(enc);
        enc = definite;
    }
    g_assert_cmpint(asn1_create_element(defs, "NVStore.Directory", &node),
                    ==, ASN1_SUCCESS);
    if (asn1_der_decoding(&node, enc, len, err) != ASN1_SUCCESS) {
        g_error("libtasn1 cannot decode the directory: %s", err);
    }
    g_assert_cmpint(asn1_number_of_elements(node, "", &count), ==,
                    ASN1_SUCCESS);
    g_assert_cmpint(count, ==, dir->entries->len);

    for (i = 1; i <= count; i++) {
        g_autofree char *el = g_strdup_printf("?%d", i);
        g_autofree char *f = NULL;
        g_autofree char *name = NULL;
        g_autofree char *type = NULL;
        g_autoptr(GByteArray) data = NULL;
        NvstoreEntry *e;
        int ret, vlen = 0;

        f = g_strdup_printf("%s.name", el);
        ret = asn1_read_value(node, f, NULL, &vlen);
        if (ret == ASN1_ELEMENT_NOT_FOUND || ret == ASN1_VALUE_NOT_FOUND) {
            e = nvstore_dir_lookup(dir, NULL);       /* unnamed */
        } else {
            name = read_string(node, f);
            e = nvstore_dir_lookup(dir, name);
        }
        g_assert_nonnull(e);
        g_free(f);
        f = g_strdup_printf("%s.nvram.type", el);
        type = read_string(node, f);
        g_assert_cmpstr(type, ==, e->type);
        g_free(f);
        f = g_strdup_printf("%s.nvram.data", el);
        data = read_value(node, f);
        g_assert_cmpmem(data->data, data->len, e->data, e->data_len);
        check_attrs(node, el, true, e);
        check_attrs(node, el, false, e);
    }
    asn1_delete_structure(&node);
}

/* The directory of the unit test's hand-written golden vector */
static void test_golden(void)
{
    g_autoptr(NvstoreDir) dir = nvstore_test_golden_dir();

    cross_check(dir);
}

static void test_empty(void)
{
    g_autoptr(NvstoreDir) dir = nvstore_dir_new();

    cross_check(dir);
}

/* Many entries, long lengths, extreme values, nested attribute values */
static void test_varied(void)
{
    g_autoptr(NvstoreDir) dir = nvstore_dir_new();
    GRand *r = g_rand_new_with_seed(7);
    int i, j;

    for (i = 0; i < 300; i++) {
        g_autofree char *name = g_strdup_printf("\xe6\x97\xa5-%d", i);
        g_autofree uint8_t *data = NULL;
        size_t len = i == 1 ? 70000 : g_rand_int_range(r, 0, 600);
        NvstoreEntry *e;

        e = nvstore_dir_add(dir, i ? name : NULL,
                            i % 2 ? NVSTORE_BLOB_TYPE_TPM :
                            NVSTORE_BLOB_TYPE_RAW, &error_abort);
        data = g_malloc(len);
        for (j = 0; j < len; j++) {
            data[j] = g_rand_int(r);
        }
        if (i % 4 == 3) {
            NvstoreExtent ext = {
                i == 3 ? NVSTORE_EXTENT_LIMIT - 1 : g_rand_int(r),
                len, i == 7 ? 0 : g_rand_int(r) * 0x10000ULL,
                i == 11 ? 0xffffffff : g_rand_int(r)
            };
            nvstore_entry_set_extent(e, &ext, &error_abort);
        } else {
            nvstore_entry_set_inline(e, data, len, &error_abort);
        }
        if (i % 2) {
            nvstore_entry_set_realsize(e, len / 2, &error_abort);
        }
        for (j = 0; j < i % 4; j++) {
            /* SEQUENCE { BOOLEAN, UTF8String, [1] { SET { NULL } } } */
            static const uint8_t nested[] = {
                0x30, 0x0d, 0x01, 0x01, 0x00, 0x0c, 0x02, 0xc3, 0xa9,
                0xa1, 0x04, 0x31, 0x02, 0x05, 0x00
            };
            g_autofree char *aname = g_strdup_printf("x-%d", j);

            nvstore_entry_set_attr(e, aname, j % 2 ? nested : NULL,
                                   sizeof(nested), &error_abort);
        }
    }
    g_rand_free(r);
    cross_check(dir);
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/nvstore-dir/asn1/empty", test_empty);
    g_test_add_func("/nvstore-dir/asn1/golden", test_golden);
    g_test_add_func("/nvstore-dir/asn1/varied", test_varied);
    ret = g_test_run();
    asn1_delete_structure(&defs);
    return ret;
}
