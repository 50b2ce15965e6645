/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * libFuzzer target for the edk2 variable store codec
 * (util/edk2-varstore.c) and the JSON variable store that qemu-nvstore
 * vars imports.  The first octet says which: even, the rest is a flash
 * image; odd, a JSON variable store (qapi/uefi.json).
 *
 * Besides "no crash, no leak, no undefined behaviour", every input is
 * refused with a message or accepted, and then what it writes back
 * parses again to the same variables.
 *
 * Built by project/fuzz.sh with clang, libFuzzer, AddressSanitizer and
 * UndefinedBehaviorSanitizer.  libFuzzer declares the entry point, so the
 * build disables -Wmissing-prototypes for this file.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-visit-uefi.h"
#include "qapi/qobject-input-visitor.h"
#include "qobject/qjson.h"
#include "qobject/qobject.h"
#include "qemu/edk2-varstore.h"

static void refused(Error *err)
{
    if (!err || !*error_get_pretty(err)) {
        abort();            /* every refusal says why */
    }
    error_free(err);
}

/* @s writes back to a store of the same variables */
static void check_round_trip(Edk2VarStore *s)
{
    Error *err = NULL;
    GByteArray *out = edk2_varstore_serialize(s, &err);
    Edk2VarStore *t;
    guint i;

    if (!out) {
        refused(err);       /* the variables do not fit */
        return;
    }
    t = edk2_varstore_parse(out->data, out->len, &error_abort);
    if (t->vars->len != s->vars->len) {
        abort();
    }
    for (i = 0; i < s->vars->len; i++) {
        Edk2Var *a = g_ptr_array_index(s->vars, i);
        Edk2Var *b = g_ptr_array_index(t->vars, i);

        if (strcmp(a->name, b->name) || a->attr != b->attr ||
            !qemu_uuid_is_equal(&a->guid, &b->guid) || a->len != b->len ||
            memcmp(a->data, b->data, a->len) ||
            memcmp(a->time, b->time, EDK2_TIME_LEN)) {
            abort();
        }
    }
    edk2_varstore_free(t);
    g_byte_array_unref(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Error *err = NULL;

    if (!size) {
        return 0;
    }
    if (!(data[0] & 1)) {
        Edk2VarStore *s = edk2_varstore_parse(data + 1, size - 1, &err);

        if (!s) {
            refused(err);
            return 0;
        }
        check_round_trip(s);
        edk2_varstore_free(s);
    } else {
        g_autofree char *text = g_strndup((const char *)data + 1, size - 1);
        UefiVarStore *q = NULL;
        Edk2VarStore *s;
        QObject *obj;
        Visitor *v;

        obj = qobject_from_json(text, &err);
        if (!obj) {
            refused(err);
            return 0;
        }
        v = qobject_input_visitor_new(obj);
        visit_type_UefiVarStore(v, NULL, &q, &err);
        visit_free(v);
        qobject_unref(obj);
        if (!q) {
            refused(err);
            return 0;
        }
        s = edk2_varstore_new();
        if (edk2_varstore_from_qapi(s, q, &err)) {
            UefiVarStore *back = edk2_varstore_to_qapi(s);

            check_round_trip(s);
            qapi_free_UefiVarStore(back);
        } else {
            refused(err);
        }
        edk2_varstore_free(s);
        qapi_free_UefiVarStore(q);
    }
    return 0;
}
