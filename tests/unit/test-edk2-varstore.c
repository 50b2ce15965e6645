/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Unit tests of the edk2 variable store codec (util/edk2-varstore.c):
 * the layout of a new store, round trips, the variable states edk2
 * writes, and hostile stores -- every truncation, every octet of the
 * headers and of a variable changed, sizes that overflow -- each parsed
 * to a store that writes back as parsed, or refused with an error.
 * iotest nvstore-vars checks the codec against virt-firmware's.
 */

#include "qemu/osdep.h"
#include <zlib.h>
#include "qapi/error.h"
#include "qemu/bswap.h"
#include "qemu/edk2-varstore.h"

#define VARS_START      (0x48 + 28)
#define VAR_HEADER_LEN  60

static QemuUUID guid_of(const char *s)
{
    QemuUUID g;

    g_assert_cmpint(qemu_uuid_parse(s, &g), ==, 0);
    return g;
}

/* A store with three variables, one time-authenticated */
static Edk2VarStore *sample_store(void)
{
    static const uint8_t time[EDK2_TIME_LEN] = { 0xe8, 0x07, 5, 17, 10 };
    Edk2VarStore *s = edk2_varstore_new();
    QemuUUID global = guid_of(EDK2_GLOBAL_VARIABLE_GUID);
    QemuUUID db = guid_of(EDK2_IMAGE_SECURITY_DATABASE_GUID);

    g_assert_true(edk2_varstore_set(s, "BootOrder", &global, 7, NULL,
                                    (const uint8_t *)"\0\0\1\0", 4,
                                    &error_abort));
    g_assert_true(edk2_varstore_set(s, "db", &db, 0x27, time,
                                    (const uint8_t *)"certificates", 12,
                                    &error_abort));
    g_assert_true(edk2_varstore_set(s, "Lang", &global, 7, NULL,
                                    (const uint8_t *)"eng", 4,
                                    &error_abort));
    return s;
}

static void assert_same_vars(Edk2VarStore *a, Edk2VarStore *b)
{
    guint i;

    g_assert_cmpuint(a->vars->len, ==, b->vars->len);
    for (i = 0; i < a->vars->len; i++) {
        Edk2Var *x = g_ptr_array_index(a->vars, i);
        Edk2Var *y = g_ptr_array_index(b->vars, i);

        g_assert_cmpstr(x->name, ==, y->name);
        g_assert_true(qemu_uuid_is_equal(&x->guid, &y->guid));
        g_assert_cmphex(x->attr, ==, y->attr);
        g_assert_cmpmem(x->time, EDK2_TIME_LEN, y->time, EDK2_TIME_LEN);
        g_assert_cmpmem(x->data, x->len, y->data, y->len);
    }
}

/* The FV header's words sum to 0; the FTW header's CRC-32 holds */
static void test_new_layout(void)
{
    g_autoptr(Edk2VarStore) s = edk2_varstore_new();
    g_autoptr(GByteArray) out = edk2_varstore_serialize(s, &error_abort);
    uint8_t ftw[32];
    uint16_t sum = 0;
    size_t i;

    g_assert_cmpuint(out->len, ==, EDK2_VARSTORE_4M_SIZE);
    g_assert_cmpmem(out->data + 40, 4, "_FVH", 4);
    for (i = 0; i < 0x48; i += 2) {
        sum += lduw_le_p(out->data + i);
    }
    g_assert_cmphex(sum, ==, 0);
    g_assert_cmpuint(s->start, ==, VARS_START);
    g_assert_cmpuint(s->end, ==, 0x40000);
    for (i = s->start; i < s->end; i++) {
        g_assert_cmphex(out->data[i], ==, 0xff);
    }
    /* The working block at 0x41000, as in OVMF_VARS_4M.fd */
    g_assert_cmpuint(s->ftw, ==, 0x41000);
    memcpy(ftw, out->data + 0x41000, sizeof(ftw));
    g_assert_cmphex(ftw[20], ==, 0xfe);
    memset(ftw + 16, 0xff, 5);
    g_assert_cmphex(crc32(0, ftw, sizeof(ftw)), ==,
                    ldl_le_p(out->data + 0x41000 + 16));
    g_assert_cmpuint(ldq_le_p(out->data + 0x41000 + 24), ==, 0x1000 - 32);
}

static void test_round_trip(void)
{
    g_autoptr(Edk2VarStore) s = sample_store();
    g_autoptr(GByteArray) out = edk2_varstore_serialize(s, &error_abort);
    g_autoptr(Edk2VarStore) t = edk2_varstore_parse(out->data, out->len,
                                                    &error_abort);
    g_autoptr(GByteArray) again = edk2_varstore_serialize(t, &error_abort);
    QemuUUID global = guid_of(EDK2_GLOBAL_VARIABLE_GUID);
    Edk2Var *v;

    assert_same_vars(s, t);
    g_assert_cmpmem(out->data, out->len, again->data, again->len);
    /* The first variable: where and what edk2 puts */
    g_assert_cmphex(lduw_le_p(out->data + VARS_START), ==, 0x55aa);
    g_assert_cmphex(out->data[VARS_START + 2], ==, 0x3f);
    g_assert_cmpuint(ldl_le_p(out->data + VARS_START + 36), ==,
                     2 * strlen("BootOrder") + 2);
    /* Replaced, deleted, and a name in UCS-2 beyond ASCII */
    g_assert_true(edk2_varstore_set(t, "Lang", &global, 7, NULL,
                                    (const uint8_t *)"fra", 4,
                                    &error_abort));
    g_assert_true(edk2_varstore_delete(t, "BootOrder", &global));
    g_assert_false(edk2_varstore_delete(t, "BootOrder", &global));
    g_assert_true(edk2_varstore_set(t, "Sprache\u00e4", &global, 7, NULL,
                                    (const uint8_t *)"x", 1,
                                    &error_abort));
    g_assert_true(edk2_varstore_set(t, "Empty", &global, 7, NULL, NULL, 0,
                                    &error_abort));
    g_clear_pointer(&out, g_byte_array_unref);
    out = edk2_varstore_serialize(t, &error_abort);
    g_clear_pointer(&s, edk2_varstore_free);
    s = edk2_varstore_parse(out->data, out->len, &error_abort);
    assert_same_vars(s, t);
    g_assert_cmpint(edk2_varstore_find(s, "Sprache\u00e4", &global), ==, 2);
    v = g_ptr_array_index(s->vars, edk2_varstore_find(s, "Lang", &global));
    g_assert_cmpmem(v->data, v->len, "fra", 4);
}

/* Names that are not variable names, and a store that is full */
static void test_refusals(void)
{
    g_autoptr(Edk2VarStore) s = edk2_varstore_new();
    QemuUUID global = guid_of(EDK2_GLOBAL_VARIABLE_GUID);
    g_autofree uint8_t *big = g_malloc0(0x40000);
    g_autoptr(GByteArray) out = NULL;
    Error *err = NULL;

    g_assert_false(edk2_varstore_set(s, "", &global, 7, NULL, NULL, 0,
                                     &err));
    error_free_or_abort(&err);
    g_assert_false(edk2_varstore_set(s, "Smile\U0001F600", &global, 7,
                                     NULL, NULL, 0, &err));
    error_free_or_abort(&err);
    g_assert_false(edk2_varstore_set(s, "X", &global, 0x80, NULL, NULL, 0,
                                     &err));
    error_free_or_abort(&err);
    g_assert_true(edk2_varstore_set(s, "Big", &global, 7, NULL, big,
                                    0x40000, &error_abort));
    out = edk2_varstore_serialize(s, &err);
    g_assert_null(out);
    g_assert_nonnull(strstr(error_get_pretty(err), "do not fit"));
    error_free(err);
}

/*
 * The states edk2 leaves: a copy whose deletion began is the variable
 * only if the new copy after it was not completed; deleted copies and
 * bare headers are none
 */
static void test_states(void)
{
    g_autoptr(Edk2VarStore) s = sample_store();
    g_autoptr(GByteArray) out = edk2_varstore_serialize(s, &error_abort);
    QemuUUID global = guid_of(EDK2_GLOBAL_VARIABLE_GUID);
    size_t first = VARS_START;
    Edk2VarStore *t;
    Error *err = NULL;

    /* BootOrder in deletion transition, no other copy: it stays */
    out->data[first + 2] = 0x3e;
    t = edk2_varstore_parse(out->data, out->len, &error_abort);
    g_assert_cmpint(edk2_varstore_find(t, "BootOrder", &global), >=, 0);
    edk2_varstore_free(t);
    /* Deleted, or its header alone written: gone */
    out->data[first + 2] = 0x3c;
    t = edk2_varstore_parse(out->data, out->len, &error_abort);
    g_assert_cmpint(edk2_varstore_find(t, "BootOrder", &global), <, 0);
    g_assert_cmpuint(t->vars->len, ==, 2);
    edk2_varstore_free(t);
    out->data[first + 2] = 0x7f;
    t = edk2_varstore_parse(out->data, out->len, &error_abort);
    g_assert_cmpuint(t->vars->len, ==, 2);
    edk2_varstore_free(t);
    /* An invalid state */
    out->data[first + 2] = 0x55;
    g_assert_null(edk2_varstore_parse(out->data, out->len, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "invalid state"));
    error_free(err);
}

/* The same, with the second copy of one name: transition resolved */
static void test_transition(void)
{
    g_autoptr(Edk2VarStore) s = edk2_varstore_new();
    QemuUUID global = guid_of(EDK2_GLOBAL_VARIABLE_GUID);
    QemuUUID other = guid_of("6e767374-6f72-4565-8000-746573747661");
    g_autoptr(GByteArray) out = NULL;
    Edk2VarStore *t;
    Edk2Var *v;
    Error *err = NULL;

    /* Two variables "Aa" of different vendors, then made one name */
    edk2_varstore_set(s, "Aa", &global, 7, NULL, (const uint8_t *)"old", 3,
                      &error_abort);
    edk2_varstore_set(s, "Aa", &other, 7, NULL, (const uint8_t *)"new", 3,
                      &error_abort);
    out = edk2_varstore_serialize(s, &error_abort);
    {
        size_t first = VARS_START;
        size_t second = ROUND_UP(first + VAR_HEADER_LEN + 6 + 3, 4);
        uint8_t le[16];
        QemuUUID g = qemu_uuid_bswap(global);

        memcpy(le, g.data, 16);
        memcpy(out->data + second + 44, le, 16);
        /* Both added: the store is corrupt */
        g_assert_null(edk2_varstore_parse(out->data, out->len, &err));
        g_assert_nonnull(strstr(error_get_pretty(err), "twice"));
        g_clear_pointer(&err, error_free);
        /* The old one in deletion transition: the new one is it */
        out->data[first + 2] = 0x3e;
        t = edk2_varstore_parse(out->data, out->len, &error_abort);
        g_assert_cmpuint(t->vars->len, ==, 1);
        v = g_ptr_array_index(t->vars, 0);
        g_assert_cmpmem(v->data, v->len, "new", 3);
        edk2_varstore_free(t);
        /* The new one's header alone was written: the old one is */
        out->data[second + 2] = 0x7f;
        t = edk2_varstore_parse(out->data, out->len, &error_abort);
        g_assert_cmpuint(t->vars->len, ==, 1);
        v = g_ptr_array_index(t->vars, 0);
        g_assert_cmpmem(v->data, v->len, "old", 3);
        edk2_varstore_free(t);
    }
}

/*
 * Parse @buf: refused with an error, or a store that writes back to
 * bytes that parse to the same variables
 */
static bool parse_or_refuse(const uint8_t *buf, size_t len)
{
    Error *err = NULL;
    g_autoptr(Edk2VarStore) s = edk2_varstore_parse(buf, len, &err);
    g_autoptr(GByteArray) out = NULL;
    g_autoptr(Edk2VarStore) t = NULL;

    if (!s) {
        g_assert_nonnull(err);
        g_assert_cmpstr(error_get_pretty(err), !=, "");
        error_free(err);
        return false;
    }
    out = edk2_varstore_serialize(s, &error_abort);
    g_assert_cmpuint(out->len, ==, len);
    t = edk2_varstore_parse(out->data, out->len, &error_abort);
    assert_same_vars(s, t);
    return true;
}

/*
 * @out, a store laid out as OVMF's 4 MiB flash, cut to a firmware volume
 * of @size octets (its length, block map and checksum, the store's
 * size): the hostile stores below are copies of it, and cost less to
 * parse and write back than 540672 octets each
 */
static void shrink(GByteArray *out, size_t size)
{
    uint16_t sum = 0;
    size_t i;

    g_byte_array_set_size(out, size);
    stq_le_p(out->data + 32, size);
    stl_le_p(out->data + 56, size / 0x1000);
    stl_le_p(out->data + 60, 0x1000);
    stw_le_p(out->data + 50, 0);
    for (i = 0; i < 0x48; i += 2) {
        sum += lduw_le_p(out->data + i);
    }
    stw_le_p(out->data + 50, -sum);
    stl_le_p(out->data + 0x48 + 16, size - 0x48);
}

/* Every truncation and every changed octet of the metadata */
static void test_hostile(void)
{
    g_autoptr(Edk2VarStore) s = sample_store();
    g_autoptr(GByteArray) out = edk2_varstore_serialize(s, &error_abort);
    g_autofree uint8_t *buf = NULL;

    shrink(out, 0x2000);
    buf = g_memdup2(out->data, out->len);
    size_t meta = VARS_START + 3 * (VAR_HEADER_LEN + 24);
    size_t i, refused = 0, tried = 0;
    static const uint8_t values[] = { 0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff };

    /* Shorter than its firmware volume: every truncation is refused */
    for (i = 0; i <= meta + 16; i++) {
        g_assert_false(parse_or_refuse(buf, i));
        refused++;
        tried++;
    }
    g_assert_true(parse_or_refuse(buf, out->len));
    g_assert_false(parse_or_refuse(buf, out->len - 1));
    for (i = 0; i < meta; i++) {
        for (size_t k = 0; k < ARRAY_SIZE(values); k++) {
            uint8_t old = buf[i];

            buf[i] = values[k];
            refused += !parse_or_refuse(buf, out->len);
            tried++;
            buf[i] = old;
        }
    }
    /* A name size, a data size and the store's size at overflow edges */
    for (i = 0; i < 3; i++) {
        static const size_t where[] = {
            VARS_START + 36, VARS_START + 40, 0x48 + 16,
        };
        static const uint32_t sizes[] = {
            0xffffffff, 0xfffffffe, 0x80000000, 0x3ffff, 0x40000,
        };

        for (size_t k = 0; k < ARRAY_SIZE(sizes); k++) {
            g_autofree uint8_t *b = g_memdup2(out->data, out->len);

            stl_le_p(b + where[i], sizes[k]);
            refused += !parse_or_refuse(b, out->len);
            tried++;
        }
    }
    g_test_message("%zu hostile stores, %zu refused, the others parsed and "
                   "written back", tried, refused);
}

static void test_qapi(void)
{
    g_autoptr(Edk2VarStore) s = sample_store();
    g_autoptr(Edk2VarStore) t = edk2_varstore_new();
    g_autoptr(UefiVarStore) q = edk2_varstore_to_qapi(s);
    UefiVariable *db = q->variables->next->value;

    g_assert_cmpint(q->version, ==, 2);
    g_assert_cmpstr(db->name, ==, "db");
    g_assert_cmpstr(db->guid, ==, EDK2_IMAGE_SECURITY_DATABASE_GUID);
    g_assert_cmpint(db->attr, ==, 0x27);
    g_assert_cmpstr(db->data, ==, "636572746966696361746573");
    g_assert_cmpstr(db->time, ==, "e8070511" "0a000000" "00000000"
                    "00000000");
    g_assert_null(q->variables->value->time);
    g_assert_true(edk2_varstore_from_qapi(t, q, &error_abort));
    assert_same_vars(s, t);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/edk2-varstore/new-layout", test_new_layout);
    g_test_add_func("/edk2-varstore/round-trip", test_round_trip);
    g_test_add_func("/edk2-varstore/refusals", test_refusals);
    g_test_add_func("/edk2-varstore/states", test_states);
    g_test_add_func("/edk2-varstore/transition", test_transition);
    g_test_add_func("/edk2-varstore/hostile", test_hostile);
    g_test_add_func("/edk2-varstore/qapi", test_qapi);
    return g_test_run();
}
