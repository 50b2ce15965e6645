/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * qemu-nvstore vars: the UEFI variables of an edk2 variable store
 * (OVMF_VARS.fd) kept in a blob of an nvstore image, as an nvstore-blob
 * node gives it to the firmware's flash.  The store is parsed and
 * written back compacted by util/edk2-varstore.c; every change is one
 * commit of the blob.  The JSON format is QEMU's own (qapi/uefi.json),
 * which virt-firmware reads and writes too.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-visit-uefi.h"
#include "qapi/qobject-input-visitor.h"
#include "qapi/qobject-output-visitor.h"
#include "qobject/qdict.h"
#include "qobject/qjson.h"
#include "qobject/qlist.h"
#include "qemu/bswap.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"
#include "qemu/edk2-varstore.h"
#include "block/nvstore.h"
#ifdef CONFIG_GNUTLS
#include "crypto/x509-utils.h"
#endif
#include "qemu-nvstore.h"

/* The blob that holds the variable store, by default */
#define NVS_VARS_BLOB       "uefi-vars"
/* The type of a blob that vars import creates */
#define NVS_VARS_TYPE       "raw"

/* A variable store read from a blob, and how to write it back */
typedef struct NvsVars {
    BlockBackend *blk;
    const char *blob;
    char *type;                 /* the blob's type; NULL if it is absent */
    Edk2VarStore *store;
} NvsVars;

static void nvs_vars_close(NvsVars *v)
{
    edk2_varstore_free(v->store);
    g_free(v->type);
    blk_unref(v->blk);
}

/*
 * Open the image and, with @parse, read the variable store of blob
 * o->blob.  With @may_be_absent, a missing blob is not an error:
 * v->store is NULL.
 */
static bool nvs_vars_open(const NvsOpts *o, const char *image, bool writable,
                          bool may_be_absent, bool parse, NvsVars *v)
{
    g_autofree uint8_t *data = NULL;
    NvstoreBlobInfo info;
    Error *err = NULL;
    size_t len;
    int ret;

    memset(v, 0, sizeof(*v));
    v->blob = o->blob ?: NVS_VARS_BLOB;
    v->blk = nvs_open(o, image, writable);
    if (!v->blk) {
        return false;
    }
    ret = nvstore_blob_get_info(v->blk, v->blob, &info, &err);
    if (ret == -ENOENT && may_be_absent) {
        error_free(err);
        return true;
    }
    if (ret < 0) {
        error_report_err(err);
        return false;
    }
    v->type = g_strdup(info.type);
    nvstore_blob_info_clear(&info);
    if (!parse) {
        return true;
    }
    if (nvstore_blob_read(v->blk, v->blob, &data, &len, &err) < 0) {
        error_report_err(err);
        return false;
    }
    v->store = edk2_varstore_parse(data, len, &err);
    if (!v->store) {
        error_reportf_err(err, "Blob '%s' does not hold an edk2 variable "
                          "store: ", v->blob);
        return false;
    }
    return true;
}

/* Write the store back into its blob, in one commit */
static int nvs_vars_commit(NvsVars *v)
{
    g_autoptr(GByteArray) out = NULL;
    Error *err = NULL;
    NvstoreBlobUpdate u = {
        .name = v->blob,
        .type = v->type ?: NVS_VARS_TYPE,
    };

    out = edk2_varstore_serialize(v->store, &err);
    if (!out) {
        error_report_err(err);
        return NVS_EXIT_ERROR;
    }
    u.data = out->data;
    u.len = out->len;
    if (nvstore_blob_commit(v->blk, &u, 1, &err) < 0) {
        error_report_err(err);
        return NVS_EXIT_ERROR;
    }
    return NVS_EXIT_OK;
}

/* -g GUID: the vendor, EfiGlobalVariable if absent */
static bool nvs_vars_guid(const char *str, QemuUUID *guid)
{
    Error *err = NULL;

    if (!edk2_guid_parse(str ?: EDK2_GLOBAL_VARIABLE_GUID, guid, &err)) {
        error_report_err(err);
        return false;
    }
    return true;
}

static const struct {
    const char *name;
    uint32_t bit;
} nvs_vars_attrs[] = {
    { "nv", EDK2_VAR_NON_VOLATILE },
    { "bs", EDK2_VAR_BOOTSERVICE_ACCESS },
    { "rt", EDK2_VAR_RUNTIME_ACCESS },
    { "hw", EDK2_VAR_HARDWARE_ERROR_RECORD },
    { "aw", EDK2_VAR_AUTHENTICATED_WRITE_ACCESS },
    { "at", EDK2_VAR_TIME_BASED_AUTHENTICATED_WRITE_ACCESS },
    { "ap", EDK2_VAR_APPEND_WRITE },
};

/* "nv,bs,rt" or a number */
static bool nvs_vars_parse_attr(const char *str, uint32_t *attr)
{
    g_auto(GStrv) names = NULL;
    uint64_t n;

    if (!qemu_strtou64(str, NULL, 0, &n)) {
        if (n > EDK2_VAR_ATTR_MASK) {
            error_report("Attributes 0x%" PRIx64 ": unknown bits", n);
            return false;
        }
        *attr = n;
        return true;
    }
    *attr = 0;
    names = g_strsplit(str, ",", -1);
    for (char **p = names; *p; p++) {
        size_t i;

        for (i = 0; i < ARRAY_SIZE(nvs_vars_attrs); i++) {
            if (!g_ascii_strcasecmp(*p, nvs_vars_attrs[i].name)) {
                *attr |= nvs_vars_attrs[i].bit;
                break;
            }
        }
        if (i == ARRAY_SIZE(nvs_vars_attrs)) {
            error_report("'%s' is not an attribute (nv, bs, rt, hw, aw, at, "
                         "ap, or a number)", *p);
            return false;
        }
    }
    return true;
}

static char *nvs_vars_attr_str(uint32_t attr)
{
    GString *s = g_string_new(NULL);
    size_t i;

    for (i = 0; i < ARRAY_SIZE(nvs_vars_attrs); i++) {
        if (attr & nvs_vars_attrs[i].bit) {
            g_string_append_printf(s, "%s%s", s->len ? "," : "",
                                   nvs_vars_attrs[i].name);
        }
    }
    return g_string_free(s, false);
}

/* EFI_TIME as "2024-01-31 12:00:00", or NULL if it is zero */
static char *nvs_vars_time_str(const uint8_t *t)
{
    if (buffer_is_zero(t, EDK2_TIME_LEN)) {
        return NULL;
    }
    return g_strdup_printf("%04u-%02u-%02u %02u:%02u:%02u", lduw_le_p(t),
                           t[2], t[3], t[4], t[5], t[6]);
}

/* An EFI_TIME of @t, seconds since the epoch (UTC) */
static void nvs_vars_efi_time(int64_t t, uint8_t *out)
{
    g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(t);

    memset(out, 0, EDK2_TIME_LEN);
    if (!dt) {
        return;
    }
    stw_le_p(out, g_date_time_get_year(dt));
    out[2] = g_date_time_get_month(dt);
    out[3] = g_date_time_get_day_of_month(dt);
    out[4] = g_date_time_get_hour(dt);
    out[5] = g_date_time_get_minute(dt);
    out[6] = g_date_time_get_second(dt);
}

/* The current time as an EFI_TIME (UTC) */
static void nvs_vars_now(uint8_t *t)
{
    nvs_vars_efi_time(g_get_real_time() / G_USEC_PER_SEC, t);
}

/* ---- Subcommands -------------------------------------------------------- */

static int nvs_vars_list(const NvsCmd *cmd, int argc, char **argv)
{
    const char *own_values[256] = { NULL };
    g_autoptr(QList) list = qlist_new();
    NvsOpts o = { 0 };
    NvsVars v = { 0 };
    int first;
    guint i;

    first = nvs_parse(cmd, argc, argv, "", own_values, NULL, &o);
    nvs_operands(cmd, argc, first, 0, 0);
    if (!nvs_vars_open(&o, argv[first], false, false, true, &v)) {
        nvs_vars_close(&v);
        return NVS_EXIT_ERROR;
    }
    if (!o.json) {
        printf("%-24s %-36s %-12s %7s %s\n", "NAME", "VENDOR", "ATTRIBUTES",
               "SIZE", "TIME");
    }
    for (i = 0; i < v.store->vars->len; i++) {
        Edk2Var *var = g_ptr_array_index(v.store->vars, i);
        g_autofree char *guid = qemu_uuid_unparse_strdup(&var->guid);
        g_autofree char *attr = nvs_vars_attr_str(var->attr);
        g_autofree char *time = nvs_vars_time_str(var->time);
        const char *gname = edk2_guid_name(&var->guid);

        if (o.json) {
            QDict *d = qdict_new();

            qdict_put_str(d, "name", var->name);
            qdict_put_str(d, "guid", guid);
            if (gname) {
                qdict_put_str(d, "vendor", gname);
            }
            qdict_put_int(d, "attr", var->attr);
            qdict_put_int(d, "size", var->len);
            if (time) {
                qdict_put_str(d, "time", time);
            }
            qlist_append(list, d);
        } else {
            printf("%-24s %-36s %-12s %7zu %s\n", var->name, gname ?: guid,
                   attr, var->len, time ?: "-");
        }
    }
    if (o.json) {
        nvs_print_json(QOBJECT(list));
    }
    nvs_vars_close(&v);
    return NVS_EXIT_OK;
}

static int nvs_vars_get(const NvsCmd *cmd, int argc, char **argv)
{
    const char *own_values[256] = { NULL };
    NvsOpts o = { 0 };
    QemuUUID guid;
    NvsVars v = { 0 };
    int first, i, ret = NVS_EXIT_ERROR;

    first = nvs_parse(cmd, argc, argv, "g:o:", own_values, NULL, &o);
    nvs_operands(cmd, argc, first, 1, 1);
    if (nvs_vars_guid(own_values['g'], &guid) &&
        nvs_vars_open(&o, argv[first], false, false, true, &v)) {
        i = edk2_varstore_find(v.store, argv[first + 1], &guid);
        if (i < 0) {
            error_report("No variable '%s' of vendor %s", argv[first + 1],
                         own_values['g'] ?: "EfiGlobalVariable");
        } else {
            Edk2Var *var = g_ptr_array_index(v.store->vars, i);

            ret = nvs_write_output(own_values['o'], var->data, var->len) ?
                  NVS_EXIT_OK : NVS_EXIT_ERROR;
        }
    }
    nvs_vars_close(&v);
    return ret;
}

static int nvs_vars_set(const NvsCmd *cmd, int argc, char **argv)
{
    const char *own_values[256] = { NULL };
    g_autoptr(GByteArray) data = NULL;
    uint8_t time[EDK2_TIME_LEN];
    uint32_t attr = EDK2_VAR_NON_VOLATILE | EDK2_VAR_BOOTSERVICE_ACCESS |
                    EDK2_VAR_RUNTIME_ACCESS;
    NvsOpts o = { 0 };
    Error *err = NULL;
    QemuUUID guid;
    NvsVars v = { 0 };
    int first, ret = NVS_EXIT_ERROR;

    first = nvs_parse(cmd, argc, argv, "g:a:i:", own_values, NULL, &o);
    nvs_operands(cmd, argc, first, 1, 1);
    if (!nvs_vars_guid(own_values['g'], &guid) ||
        (own_values['a'] && !nvs_vars_parse_attr(own_values['a'], &attr))) {
        return NVS_EXIT_ERROR;
    }
    data = nvs_read_input(own_values['i']);
    if (!data) {
        return NVS_EXIT_ERROR;
    }
    nvs_vars_now(time);
    if (nvs_vars_open(&o, argv[first], true, false, true, &v)) {
        bool timed = attr & EDK2_VAR_TIME_BASED_AUTHENTICATED_WRITE_ACCESS;

        if (!edk2_varstore_set(v.store, argv[first + 1], &guid, attr,
                               timed ? time : NULL, data->data, data->len,
                               &err)) {
            error_report_err(err);
        } else {
            ret = nvs_vars_commit(&v);
        }
    }
    nvs_vars_close(&v);
    return ret;
}

static int nvs_vars_delete(const NvsCmd *cmd, int argc, char **argv)
{
    const char *own_values[256] = { NULL };
    NvsOpts o = { 0 };
    QemuUUID guid;
    NvsVars v = { 0 };
    int first, i, ret = NVS_EXIT_ERROR;

    first = nvs_parse(cmd, argc, argv, "g:", own_values, NULL, &o);
    nvs_operands(cmd, argc, first, 1, -1);
    if (!nvs_vars_guid(own_values['g'], &guid)) {
        return NVS_EXIT_ERROR;
    }
    if (nvs_vars_open(&o, argv[first], true, false, true, &v)) {
        for (i = first + 1; i < argc; i++) {
            if (!edk2_varstore_delete(v.store, argv[i], &guid)) {
                error_report("No variable '%s' of vendor %s", argv[i],
                             own_values['g'] ?: "EfiGlobalVariable");
                break;
            }
        }
        if (i == argc) {
            ret = nvs_vars_commit(&v);
        }
    }
    nvs_vars_close(&v);
    return ret;
}

/* Boot####, BootOrder, BootNext: the boot entries UEFI keeps */
static bool nvs_vars_is_boot_entry(const char *name)
{
    if (!strcmp(name, "BootOrder") || !strcmp(name, "BootNext")) {
        return true;
    }
    if (strlen(name) != 8 || strncmp(name, "Boot", 4)) {
        return false;
    }
    for (int i = 4; i < 8; i++) {
        if (!g_ascii_isxdigit(name[i]) || g_ascii_islower(name[i])) {
            return false;
        }
    }
    return true;
}

static int nvs_vars_delete_boot_entries(const NvsCmd *cmd, int argc,
                                        char **argv)
{
    const char *own_values[256] = { NULL };
    g_autoptr(GString) deleted = g_string_new(NULL);
    NvsOpts o = { 0 };
    QemuUUID global;
    NvsVars v = { 0 };
    int first, ret = NVS_EXIT_ERROR;
    guint i;

    first = nvs_parse(cmd, argc, argv, "", own_values, NULL, &o);
    nvs_operands(cmd, argc, first, 0, 0);
    qemu_uuid_parse(EDK2_GLOBAL_VARIABLE_GUID, &global);
    if (nvs_vars_open(&o, argv[first], true, false, true, &v)) {
        for (i = 0; i < v.store->vars->len;) {
            Edk2Var *var = g_ptr_array_index(v.store->vars, i);

            if (qemu_uuid_is_equal(&var->guid, &global) &&
                nvs_vars_is_boot_entry(var->name)) {
                g_string_append_printf(deleted, "Deleted %s\n", var->name);
                g_ptr_array_remove_index(v.store->vars, i);
            } else {
                i++;
            }
        }
        ret = nvs_vars_commit(&v);
        /* Said once they are gone */
        if (ret == NVS_EXIT_OK) {
            fputs(deleted->str, stdout);
        }
    }
    nvs_vars_close(&v);
    return ret;
}

/* --format: ovmf-fd or json */
static bool nvs_vars_format_is_json(const NvsOpts *o)
{
    if (!o->format) {
        nvs_usage_error("--format ovmf-fd|json is missing");
    }
    if (!strcmp(o->format, "json")) {
        return true;
    }
    if (strcmp(o->format, "ovmf-fd")) {
        nvs_usage_error("--format must be 'ovmf-fd' or 'json', not '%s'",
                        o->format);
    }
    return false;
}

static int nvs_vars_export(const NvsCmd *cmd, int argc, char **argv)
{
    const char *own_values[256] = { NULL };
    g_autoptr(GByteArray) out = NULL;
    NvsOpts o = { 0 };
    Error *err = NULL;
    NvsVars v = { 0 };
    bool json;
    int first, ret = NVS_EXIT_ERROR;

    first = nvs_parse(cmd, argc, argv, "", own_values, NULL, &o);
    nvs_operands(cmd, argc, first, 0, 1);
    json = nvs_vars_format_is_json(&o);
    if (!nvs_vars_open(&o, argv[first], false, false, true, &v)) {
        nvs_vars_close(&v);
        return NVS_EXIT_ERROR;
    }
    if (json) {
        g_autoptr(UefiVarStore) q = edk2_varstore_to_qapi(v.store);
        Visitor *ov;
        QObject *obj = NULL;
        GString *str;

        ov = qobject_output_visitor_new(&obj);
        visit_type_UefiVarStore(ov, NULL, &q, &error_abort);
        visit_complete(ov, &obj);
        visit_free(ov);
        str = qobject_to_json_pretty(obj, true);
        g_string_append_c(str, '\n');
        qobject_unref(obj);
        out = g_byte_array_new_take((guint8 *)str->str, str->len);
        g_string_free(str, false);
    } else {
        out = edk2_varstore_serialize(v.store, &err);
        if (!out) {
            error_report_err(err);
        }
    }
    if (out && nvs_write_output(argc > first + 1 ? argv[first + 1] : NULL,
                                out->data, out->len)) {
        ret = NVS_EXIT_OK;
    }
    nvs_vars_close(&v);
    return ret;
}

/* The JSON variable store in @in, or NULL, reported */
static UefiVarStore *nvs_vars_parse_json(GByteArray *in, const char *file)
{
    g_autofree char *text = g_strndup((char *)in->data, in->len);
    UefiVarStore *q = NULL;
    QObject *obj;
    Visitor *iv;
    Error *err = NULL;

    if (strlen(text) != in->len) {
        error_report("'%s' is not JSON: it holds a NUL", file ?: "-");
        return NULL;
    }
    obj = qobject_from_json(text, &err);
    if (!obj) {
        error_reportf_err(err, "'%s' is not JSON: ", file ?: "-");
        return NULL;
    }
    iv = qobject_input_visitor_new(obj);
    visit_type_UefiVarStore(iv, NULL, &q, &err);
    visit_free(iv);
    qobject_unref(obj);
    if (!q) {
        error_reportf_err(err, "'%s' is not a JSON variable store: ",
                          file ?: "-");
    }
    return q;
}

static int nvs_vars_import(const NvsCmd *cmd, int argc, char **argv)
{
    const char *own_values[256] = { NULL };
    g_autoptr(GByteArray) in = NULL;
    NvsOpts o = { 0 };
    Error *err = NULL;
    NvsVars v = { 0 };
    const char *file;
    bool json;
    int first, ret = NVS_EXIT_ERROR;

    first = nvs_parse(cmd, argc, argv, "", own_values, NULL, &o);
    nvs_operands(cmd, argc, first, 0, 1);
    json = nvs_vars_format_is_json(&o);
    file = argc > first + 1 ? argv[first + 1] : NULL;
    in = nvs_read_input(file);
    if (!in) {
        return NVS_EXIT_ERROR;
    }
    if (json) {
        g_autoptr(UefiVarStore) q = nvs_vars_parse_json(in, file);

        /* Into the blob's store, or a new one laid out as OVMF's 4M */
        if (q && nvs_vars_open(&o, argv[first], true, true, true, &v)) {
            if (!v.store) {
                v.store = edk2_varstore_new();
            }
            if (!edk2_varstore_from_qapi(v.store, q, &err)) {
                error_reportf_err(err, "'%s': ", file ?: "-");
            } else {
                ret = nvs_vars_commit(&v);
            }
        }
    } else {
        v.store = edk2_varstore_parse(in->data, in->len, &err);
        if (!v.store) {
            error_reportf_err(err, "'%s' is not an edk2 variable store: ",
                              file ?: "-");
        } else {
            Edk2VarStore *store = g_steal_pointer(&v.store);

            if (nvs_vars_open(&o, argv[first], true, true, false, &v)) {
                v.store = store;
                ret = nvs_vars_commit(&v);
            } else {
                edk2_varstore_free(store);
            }
        }
    }
    nvs_vars_close(&v);
    return ret;
}

/* ---- Secure Boot keys --------------------------------------------------- */

#define EDK2_CERT_X509_GUID     "a5c059a1-94e4-4aa7-87b5-ab155c2bf072"
#define EDK2_CERT_SHA256_GUID   "c1c41626-504c-4092-aca9-41f936934328"
#define EDK2_SECURE_BOOT_ENABLE_GUID "f0a30bc7-af08-4556-99c4-001009c93a44"
#define EDK2_CUSTOM_MODE_GUID   "c076ec0c-7028-4399-a072-71ee5c448b9f"
/* The owner that OVMF's EnrollDefaultKeys gives its keys */
#define OVMF_ENROLL_DEFAULT_KEYS_GUID "a0baa8a3-041d-48a8-bc87-c36d121b5e3d"

/* EFI_SIGNATURE_LIST, and EFI_SIGNATURE_DATA's owner before the data */
#define SIGLIST_HEADER_LEN      28
#define SIGDATA_OWNER_LEN       16

/* Compare two EFI_TIMEs (year, month, day, hour, minute, second) */
static int nvs_vars_efi_time_cmp(const uint8_t *a, const uint8_t *b)
{
    int d = lduw_le_p(a) - lduw_le_p(b);

    return d ? d : memcmp(a + 2, b + 2, 5);
}

/* Append to @db a signature list of one signature, @owner's @data */
static void nvs_siglist_append(GByteArray *db, const char *type,
                               const QemuUUID *owner, const uint8_t *data,
                               size_t len)
{
    uint8_t h[SIGLIST_HEADER_LEN + SIGDATA_OWNER_LEN];
    QemuUUID t, le;

    qemu_uuid_parse(type, &t);
    le = qemu_uuid_bswap(t);
    memcpy(h, le.data, 16);
    stl_le_p(h + 16, sizeof(h) + len);
    stl_le_p(h + 20, 0);
    stl_le_p(h + 24, SIGDATA_OWNER_LEN + len);
    le = qemu_uuid_bswap(*owner);
    memcpy(h + SIGLIST_HEADER_LEN, le.data, 16);
    g_byte_array_append(db, h, sizeof(h));
    g_byte_array_append(db, data, len);
}

/* One EFI_SIGNATURE_LIST of a signature database */
typedef struct NvsSigList {
    QemuUUID type;
    size_t start;               /* where it starts in the database */
    size_t len;                 /* SignatureListSize */
    size_t first;               /* where its first signature starts */
    uint32_t sig_size;          /* SignatureSize, the owner included */
} NvsSigList;

/*
 * The signature list at *@pos of the database @db, of @len octets; *@pos
 * moves past it.  Returns false at the end of @db, or with *@bad set if
 * the list is malformed: shorter than its header, longer than what is
 * left, without a signature or with a size that is not a multiple of
 * its signatures'.
 */
static bool nvs_siglist_next(const uint8_t *db, size_t len, size_t *pos,
                             NvsSigList *l, bool *bad)
{
    uint32_t list, hdr;

    *bad = false;
    if (*pos == len) {
        return false;
    }
    if (len - *pos < SIGLIST_HEADER_LEN) {
        *bad = true;
        return false;
    }
    list = ldl_le_p(db + *pos + 16);
    hdr = ldl_le_p(db + *pos + 20);
    l->sig_size = ldl_le_p(db + *pos + 24);
    if (list < SIGLIST_HEADER_LEN || list > len - *pos ||
        hdr > list - SIGLIST_HEADER_LEN ||
        l->sig_size <= SIGDATA_OWNER_LEN ||
        list - SIGLIST_HEADER_LEN - hdr < l->sig_size ||
        (list - SIGLIST_HEADER_LEN - hdr) % l->sig_size) {
        *bad = true;
        return false;
    }
    memcpy(l->type.data, db + *pos, 16);
    l->type = qemu_uuid_bswap(l->type);
    l->start = *pos;
    l->len = list;
    l->first = *pos + SIGLIST_HEADER_LEN + hdr;
    *pos += list;
    return true;
}

static bool nvs_siglist_is_x509(const NvsSigList *l)
{
    QemuUUID x509;

    qemu_uuid_parse(EDK2_CERT_X509_GUID, &x509);
    return qemu_uuid_is_equal(&l->type, &x509);
}

/*
 * Whether the signature database @db holds the X.509 certificate @der;
 * a malformed database holds nothing more than its well-formed start
 */
static bool nvs_siglist_has_cert(const uint8_t *db, size_t len,
                                 const uint8_t *der, size_t der_len)
{
    NvsSigList l;
    size_t pos = 0, s;
    bool bad;

    while (nvs_siglist_next(db, len, &pos, &l, &bad)) {
        for (s = l.first; nvs_siglist_is_x509(&l) && s < l.start + l.len;
             s += l.sig_size) {
            if (l.sig_size - SIGDATA_OWNER_LEN == der_len &&
                !memcmp(db + s + SIGDATA_OWNER_LEN, der, der_len)) {
                return true;
            }
        }
    }
    return false;
}

/* What --pk, --kek or --db give: a certificate, or signature lists */
typedef struct NvsCert {
    uint8_t *der;               /* an X.509 certificate in DER, or NULL */
    size_t len;
    GByteArray *esl;            /* else EFI signature lists */
    /* the newest start of validity of its certificates; zero if none */
    uint8_t time[EDK2_TIME_LEN];
} NvsCert;

#ifdef CONFIG_GNUTLS
/*
 * @in as EFI signature lists, each X.509 certificate in them checked;
 * their newest start of validity into c->time
 */
static bool nvs_esl_load(const char *file, GByteArray *in, NvsCert *c)
{
    size_t pos = 0, s;
    int64_t newest = INT64_MIN;
    NvsSigList l;
    bool bad;

    while (nvs_siglist_next(in->data, in->len, &pos, &l, &bad)) {
        for (s = l.first; nvs_siglist_is_x509(&l) && s < l.start + l.len;
             s += l.sig_size) {
            g_autofree uint8_t *der = NULL;
            int64_t not_before;
            Error *err = NULL;
            size_t len;

            if (qcrypto_x509_convert_cert_der(in->data + s +
                                              SIGDATA_OWNER_LEN,
                                              l.sig_size - SIGDATA_OWNER_LEN,
                                              &der, &len, &not_before,
                                              &err) < 0) {
                error_reportf_err(err, "'%s': the signature at offset %zu: ",
                                  file, s);
                return false;
            }
            newest = MAX(newest, not_before);
        }
    }
    if (bad || !in->len) {
        error_report("'%s' is neither an X.509 certificate (PEM or DER) nor "
                     "EFI signature lists%s", file,
                     in->len ? "" : ": it is empty");
        return false;
    }
    if (newest != INT64_MIN) {
        nvs_vars_efi_time(newest, c->time);
    }
    c->esl = g_byte_array_ref(in);
    return true;
}
#endif

static bool nvs_cert_load(const char *file, NvsCert *c)
{
#ifdef CONFIG_GNUTLS
    g_autoptr(GByteArray) in = NULL;
    int64_t not_before;

    if (!file || !strcmp(file, "-")) {
        nvs_usage_error("vars enroll: a certificate must come from a file");
    }
    in = nvs_read_input(file);
    if (!in) {
        return false;
    }
    if (qcrypto_x509_convert_cert_der(in->data, in->len, &c->der, &c->len,
                                      &not_before, NULL) < 0) {
        return nvs_esl_load(file, in, c);
    }
    nvs_vars_efi_time(not_before, c->time);
    return true;
#else
    error_report("'%s': this qemu-nvstore reads no certificate (built "
                 "without gnutls)", file);
    return false;
#endif
}

/*
 * Add @cert, owned by @owner, to signature database @name of vendor
 * @vendor (replacing what it holds with @replace), as a time-based
 * authenticated variable; its time is the newest start of validity of
 * the certificates it was given (the current time if none has one).  A
 * certificate that the database holds is not added again; signature
 * lists are added as they are, but for lists of one certificate that
 * the database holds.
 */
static bool nvs_vars_add_cert(Edk2VarStore *s, const char *name,
                              const char *vendor, const QemuUUID *owner,
                              NvsCert *cert, bool replace)
{
    g_autoptr(GByteArray) db = g_byte_array_new();
    uint8_t time[EDK2_TIME_LEN];
    const uint8_t *old = NULL;
    size_t old_len = 0;
    QemuUUID guid;
    Error *err = NULL;
    int i;

    qemu_uuid_parse(vendor, &guid);
    i = edk2_varstore_find(s, name, &guid);
    memcpy(time, cert->time, EDK2_TIME_LEN);
    if (buffer_is_zero(time, EDK2_TIME_LEN)) {
        nvs_vars_now(time);
    }
    if (i >= 0) {
        Edk2Var *v = g_ptr_array_index(s->vars, i);

        if (nvs_vars_efi_time_cmp(v->time, time) > 0) {
            memcpy(time, v->time, EDK2_TIME_LEN);
        }
        if (!replace) {
            old = v->data;
            old_len = v->len;
            g_byte_array_append(db, v->data, v->len);
        }
    }
    if (cert->esl) {
        size_t pos = 0;
        NvsSigList l;
        bool bad;

        while (nvs_siglist_next(cert->esl->data, cert->esl->len, &pos, &l,
                                &bad)) {
            if (nvs_siglist_is_x509(&l) && l.first + l.sig_size ==
                l.start + l.len &&
                nvs_siglist_has_cert(old, old_len, cert->esl->data +
                                     l.first + SIGDATA_OWNER_LEN,
                                     l.sig_size - SIGDATA_OWNER_LEN)) {
                continue;
            }
            g_byte_array_append(db, cert->esl->data + l.start, l.len);
        }
    } else if (nvs_siglist_has_cert(old, old_len, cert->der, cert->len)) {
        return true;
    } else {
        nvs_siglist_append(db, EDK2_CERT_X509_GUID, owner, cert->der,
                           cert->len);
    }
    if (!edk2_varstore_set(s, name, &guid, EDK2_VAR_NON_VOLATILE |
                           EDK2_VAR_BOOTSERVICE_ACCESS |
                           EDK2_VAR_RUNTIME_ACCESS |
                           EDK2_VAR_TIME_BASED_AUTHENTICATED_WRITE_ACCESS,
                           time, db->data, db->len, &err)) {
        error_report_err(err);
        return false;
    }
    return true;
}

/*
 * Secure Boot on, as virt-fw-vars --secure-boot sets it: a dbx with
 * one entry that matches nothing if there is none, SecureBootEnable 1,
 * CustomMode 0
 */
static void nvs_vars_secure_boot(Edk2VarStore *s)
{
    static const uint8_t one = 1, zero;
    /* The SHA-256 of nothing */
    static const uint8_t empty_sha256[32] = {
        0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14,
        0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
        0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c,
        0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
    };
    QemuUUID guid, owner;

    qemu_uuid_parse(EDK2_IMAGE_SECURITY_DATABASE_GUID, &guid);
    if (edk2_varstore_find(s, "dbx", &guid) < 0) {
        g_autoptr(GByteArray) dbx = g_byte_array_new();
        uint8_t time[EDK2_TIME_LEN] = { 0xda, 0x07, 1, 1 };    /* 2010 */

        qemu_uuid_parse(OVMF_ENROLL_DEFAULT_KEYS_GUID, &owner);
        nvs_siglist_append(dbx, EDK2_CERT_SHA256_GUID, &owner, empty_sha256,
                           sizeof(empty_sha256));
        edk2_varstore_set(s, "dbx", &guid, EDK2_VAR_NON_VOLATILE |
                          EDK2_VAR_BOOTSERVICE_ACCESS |
                          EDK2_VAR_RUNTIME_ACCESS |
                          EDK2_VAR_TIME_BASED_AUTHENTICATED_WRITE_ACCESS,
                          time, dbx->data, dbx->len, &error_abort);
    }
    qemu_uuid_parse(EDK2_SECURE_BOOT_ENABLE_GUID, &guid);
    edk2_varstore_set(s, "SecureBootEnable", &guid, EDK2_VAR_NON_VOLATILE |
                      EDK2_VAR_BOOTSERVICE_ACCESS, NULL, &one, 1,
                      &error_abort);
    qemu_uuid_parse(EDK2_CUSTOM_MODE_GUID, &guid);
    edk2_varstore_set(s, "CustomMode", &guid, EDK2_VAR_NON_VOLATILE |
                      EDK2_VAR_BOOTSERVICE_ACCESS, NULL, &zero, 1,
                      &error_abort);
}

static void nvs_certs_free(NvsCert *certs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        g_free(certs[i].der);
        if (certs[i].esl) {
            g_byte_array_unref(certs[i].esl);
        }
    }
    g_free(certs);
}

/* PK, KEK, db and dbx of @from, replacing those of @s */
static void nvs_vars_keys_from(Edk2VarStore *s, Edk2VarStore *from)
{
    static const struct {
        const char *name;
        const char *vendor;
    } keys[] = {
        { "PK", EDK2_GLOBAL_VARIABLE_GUID },
        { "KEK", EDK2_GLOBAL_VARIABLE_GUID },
        { "db", EDK2_IMAGE_SECURITY_DATABASE_GUID },
        { "dbx", EDK2_IMAGE_SECURITY_DATABASE_GUID },
    };
    size_t k;

    for (k = 0; k < ARRAY_SIZE(keys); k++) {
        QemuUUID guid;
        Edk2Var *v;
        int i;

        qemu_uuid_parse(keys[k].vendor, &guid);
        i = edk2_varstore_find(from, keys[k].name, &guid);
        if (i >= 0) {
            v = g_ptr_array_index(from->vars, i);
            edk2_varstore_set(s, v->name, &v->guid, v->attr, v->time,
                              v->data, v->len, &error_abort);
        }
    }
}

static int nvs_vars_enroll(const NvsCmd *cmd, int argc, char **argv)
{
    const char *own_values[256] = { NULL };
    g_autoptr(Edk2VarStore) from = NULL;
    NvsOpts o = { 0 };
    NvsVars v = { 0 };
    QemuUUID owner;
    NvsCert *certs;
    size_t nkek, ndb, n = 0, i;
    bool ok = true;
    int first, ret = NVS_EXIT_ERROR;

    first = nvs_parse(cmd, argc, argv, "", own_values, NULL, &o);
    nvs_operands(cmd, argc, first, 0, 0);
    nkek = o.kek ? o.kek->len : 0;
    ndb = o.db ? o.db->len : 0;
    if (!o.pk && !nkek && !ndb && !o.keys_from && !o.secure_boot) {
        nvs_usage_error("vars enroll: nothing to enroll (--keys-from, --pk, "
                        "--kek, --db, --secure-boot)");
    }
    if (!nvs_vars_guid(o.owner ?: OVMF_ENROLL_DEFAULT_KEYS_GUID, &owner)) {
        return NVS_EXIT_ERROR;
    }
    /* Every key is read before the image is opened */
    if (o.keys_from) {
        g_autoptr(GByteArray) in = nvs_read_input(o.keys_from);
        Error *err = NULL;

        if (!in) {
            return NVS_EXIT_ERROR;
        }
        from = edk2_varstore_parse(in->data, in->len, &err);
        if (!from) {
            error_reportf_err(err, "'%s' is not an edk2 variable store: ",
                              o.keys_from);
            return NVS_EXIT_ERROR;
        }
    }
    certs = g_new0(NvsCert, 1 + nkek + ndb);
    if (o.pk) {
        ok = nvs_cert_load(o.pk, &certs[n++]);
    }
    for (i = 0; ok && i < nkek; i++) {
        ok = nvs_cert_load(g_ptr_array_index(o.kek, i), &certs[n++]);
    }
    for (i = 0; ok && i < ndb; i++) {
        ok = nvs_cert_load(g_ptr_array_index(o.db, i), &certs[n++]);
    }
    if (ok && nvs_vars_open(&o, argv[first], true, false, true, &v)) {
        n = 0;
        if (from) {
            nvs_vars_keys_from(v.store, from);
        }
        if (o.pk) {
            ok = nvs_vars_add_cert(v.store, "PK", EDK2_GLOBAL_VARIABLE_GUID,
                                   &owner, &certs[n++], true);
        }
        for (i = 0; ok && i < nkek; i++) {
            ok = nvs_vars_add_cert(v.store, "KEK", EDK2_GLOBAL_VARIABLE_GUID,
                                   &owner, &certs[n++], false);
        }
        for (i = 0; ok && i < ndb; i++) {
            ok = nvs_vars_add_cert(v.store, "db",
                                   EDK2_IMAGE_SECURITY_DATABASE_GUID,
                                   &owner, &certs[n++], false);
        }
        if (ok && o.secure_boot) {
            nvs_vars_secure_boot(v.store);
        }
        if (ok) {
            ret = nvs_vars_commit(&v);
        }
    }
    nvs_certs_free(certs, 1 + nkek + ndb);
    if (o.kek) {
        g_ptr_array_unref(o.kek);
    }
    if (o.db) {
        g_ptr_array_unref(o.db);
    }
    nvs_vars_close(&v);
    return ret;
}

static const NvsCmd nvs_vars_cmds[] = {
    {
        .name = "vars list", .run = nvs_vars_list,
        .synopsis = "vars list [--blob NAME] [--output=human|json] IMAGE",
        .help = "List the variables: name, vendor GUID (or its well-known "
                "name), attributes,\nsize of the data, time of "
                "time-authenticated variables.",
    }, {
        .name = "vars get", .run = nvs_vars_get,
        .synopsis = "vars get [--blob NAME] [-g GUID] [-o FILE] IMAGE VAR",
        .help = "Write the data of variable VAR (of vendor GUID, default "
                "EfiGlobalVariable)\nto FILE, or to standard output.",
    }, {
        .name = "vars set", .run = nvs_vars_set, .writes = true,
        .synopsis = "vars set [--blob NAME] [-g GUID] [-a ATTRS] [-i FILE] "
                    "IMAGE VAR",
        .help = "Set variable VAR to the contents of FILE (standard input "
                "without -i).\nATTRS: a number, or names separated by commas: "
                "nv, bs, rt, hw, aw, at, ap\n(default: nv,bs,rt).  A "
                "time-authenticated variable (at) gets the current\ntime.  "
                "The signature checks of authenticated variables are the "
                "firmware's:\nthis writes the store as its owner.",
    }, {
        .name = "vars delete", .run = nvs_vars_delete, .writes = true,
        .synopsis = "vars delete [--blob NAME] [-g GUID] IMAGE VAR...",
        .help = "Delete the variables named, all in one commit.",
    }, {
        .name = "vars delete-boot-entries",
        .run = nvs_vars_delete_boot_entries, .writes = true,
        .synopsis = "vars delete-boot-entries [--blob NAME] IMAGE",
        .help = "Delete Boot####, BootOrder and BootNext: the firmware "
                "writes its default\nboot options again at the next boot.  "
                "For a VM that no longer boots.",
    }, {
        .name = "vars enroll", .run = nvs_vars_enroll, .writes = true,
        .synopsis = "vars enroll [--blob NAME] [--keys-from STORE] "
                    "[--owner GUID] [--pk FILE]\n"
                    "            [--kek FILE]... [--db FILE]... "
                    "[--secure-boot] IMAGE",
        .help = "Enroll Secure Boot keys in one commit, as virt-fw-vars "
                "--set-pk, --add-kek\nand --add-db do.  --keys-from copies "
                "PK, KEK, db and dbx from another\nvariable store (a flash "
                "image).  A FILE is an X.509 certificate in PEM or\nDER, "
                "or EFI signature lists: --pk replaces the platform key; "
                "--kek and\n--db add to the key exchange keys and to the "
                "signature database (a\ncertificate already there is not "
                "added twice).  Each certificate is its own\nsignature "
                "list, owned by GUID (default: OVMF's EnrollDefaultKeys).\n"
                "--secure-boot also sets SecureBootEnable and clears "
                "CustomMode, and adds a\ndbx that matches nothing if there "
                "is none.",
    }, {
        .name = "vars export", .run = nvs_vars_export,
        .synopsis = "vars export --format ovmf-fd|json [--blob NAME] IMAGE "
                    "[FILE]",
        .help = "Write the variable store to FILE (standard output without "
                "it): as a flash\nimage (ovmf-fd, compacted) or as QEMU's "
                "JSON variable store (json).",
    }, {
        .name = "vars import", .run = nvs_vars_import, .writes = true,
        .synopsis = "vars import --format ovmf-fd|json [--blob NAME] IMAGE "
                    "[FILE]",
        .help = "Make the variables of FILE (standard input without it) "
                "those of the blob,\nin one commit.  ovmf-fd: a flash image, "
                "which becomes the blob, compacted;\njson: QEMU's JSON "
                "variable store, whose variables replace those of the\n"
                "blob's store (a new blob holds a store laid out as "
                "OVMF_VARS_4M.fd).",
    },
    { NULL }
};

int nvs_cmd_vars(const NvsCmd *cmd, int argc, char **argv)
{
    return nvs_run_subcommand(cmd, nvs_vars_cmds, argc, argv);
}
