/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * nvstore directory model: decode, encode and edit the directory of an
 * nvstore image.  The encoding is specified in docs/interop/nvstore.rst.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/bswap.h"
#include "crypto/der.h"
#include "block/nvstore-dir.h"

/* A piece of the input: the contents of a TLV, or a whole TLV */
typedef struct NvstoreSlice {
    const uint8_t *p;
    size_t n;
} NvstoreSlice;

typedef struct NvstoreParseCtx {
    const uint8_t *base;
    unsigned index;             /* of the entry being parsed */
} NvstoreParseCtx;

static int nvstore_capture(void *opaque, const uint8_t *value, size_t vlen,
                           Error **errp)
{
    NvstoreSlice *s = opaque;

    s->p = value;
    s->n = vlen;
    return 0;
}

/* The order of NvstoreDir.entries: by name, the unnamed entry first */
static gint nvstore_entry_cmp(gconstpointer a, gconstpointer b)
{
    const NvstoreEntry *x = *(NvstoreEntry *const *)a;
    const NvstoreEntry *y = *(NvstoreEntry *const *)b;

    return strcmp(x->name, y->name);
}

/*
 * Whether @dir has an entry named @name (NULL or "" for the unnamed
 * one); *@pos is its index, or where it would go
 */
static bool nvstore_dir_find(const NvstoreDir *dir, const char *name,
                             guint *pos)
{
    guint lo = 0, hi = dir->entries->len;

    name = name ?: "";

    while (lo < hi) {
        guint mid = lo + (hi - lo) / 2;
        const NvstoreEntry *e = g_ptr_array_index(dir->entries, mid);
        int r = strcmp(e->name, name);

        if (!r) {
            *pos = mid;
            return true;
        }
        if (r < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    *pos = lo;
    return false;
}

static size_t nvstore_offset_of(NvstoreParseCtx *ctx, const uint8_t *p)
{
    return p - ctx->base;
}

/* Fail the parse at @p: "at offset N: " and the message */
static void G_GNUC_PRINTF(4, 5)
nvstore_parse_error(NvstoreParseCtx *ctx, const uint8_t *p, Error **errp,
                    const char *fmt, ...)
{
    g_autofree char *msg = NULL;
    va_list ap;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    error_setg(errp, "at offset %zu: %s", nvstore_offset_of(ctx, p), msg);
}

/* Say where the DER decoder failed with *@errp: at @p, in @what */
static void nvstore_parse_where(NvstoreParseCtx *ctx, const uint8_t *p,
                                const char *what, Error **errp)
{
    error_prepend(errp, "at offset %zu: %s%s", nvstore_offset_of(ctx, p),
                  what ? what : "", what ? ": " : "");
}

static bool nvstore_valid_id(const uint8_t *s, size_t len)
{
    size_t i;

    if (len < 1 || len > NVSTORE_ID_MAX_LEN) {
        return false;
    }
    for (i = 0; i < len; i++) {
        if (s[i] < 0x21 || s[i] > 0x7e) {
            return false;
        }
    }
    return true;
}

static bool nvstore_check_id(const char *what, const char *s, Error **errp)
{
    if (!nvstore_valid_id((const uint8_t *)s, strlen(s))) {
        error_setg(errp, "Invalid %s '%s': it must have 1 to %d printable "
                   "ASCII characters other than space", what, s,
                   NVSTORE_ID_MAX_LEN);
        return false;
    }
    return true;
}

/* @s is valid UTF-8 */
static bool nvstore_valid_name(const uint8_t *s, size_t len)
{
    size_t i;

    if (len < 1 || len > NVSTORE_NAME_MAX_LEN) {
        return false;
    }
    for (i = 0; i < len; i++) {
        if (s[i] < 0x20 || s[i] == 0x7f) {
            return false;
        }
    }
    return true;
}

static bool nvstore_check_name(const char *name, Error **errp)
{
    size_t len = strlen(name);

    if (!g_utf8_validate(name, len, NULL) ||
        !nvstore_valid_name((const uint8_t *)name, len)) {
        error_setg(errp, "Invalid blob name '%s': it must be 1 to %d bytes "
                   "of UTF-8 without control characters", name,
                   NVSTORE_NAME_MAX_LEN);
        return false;
    }
    return true;
}

/*
 * The types this version defines.  An entry of one of them shares this
 * string instead of holding a copy: a node keeps an entry per blob, and
 * most blobs are of these types.
 */
static const char *const nvstore_known_types[] = {
    NVSTORE_BLOB_TYPE_TPM,
    NVSTORE_BLOB_TYPE_RAW,
};

static const char *nvstore_type_dup(const char *type, size_t len)
{
    size_t i;

    for (i = 0; i < ARRAY_SIZE(nvstore_known_types); i++) {
        if (strlen(nvstore_known_types[i]) == len &&
            !memcmp(nvstore_known_types[i], type, len)) {
            return nvstore_known_types[i];
        }
    }
    return g_strndup(type, len);
}

static void nvstore_type_free(const char *type)
{
    size_t i;

    for (i = 0; i < ARRAY_SIZE(nvstore_known_types); i++) {
        if (type == nvstore_known_types[i]) {
            return;
        }
    }
    g_free((char *)type);
}

static void nvstore_attr_free(gpointer p)
{
    NvstoreAttr *attr = p;

    g_free(attr->name);
    g_free(attr->value);
    g_free(attr);
}

/* Drop a directory's reference to an entry (NvstoreEntry.refs) */
static void nvstore_entry_unref(gpointer p)
{
    NvstoreEntry *e = p;

    assert(e->refs);
    if (--e->refs) {
        return;
    }
    nvstore_type_free(e->type);
    g_ptr_array_unref(e->attrs);
    g_free(e->data);
    g_free(e->sealed);
    if (e->raw) {
        g_free(e->raw->why);
        g_free(e->raw->enc);
        g_free(e->raw);
    }
    g_free(e);
}

/*
 * The attributes of every entry that has none: one empty array, shared
 * (most entries have none, and a node keeps an entry per blob).  Never
 * added to: nvstore_entry_own_attrs() first.
 */
static GPtrArray *nvstore_no_attrs(void)
{
    static GPtrArray *none;

    if (g_once_init_enter(&none)) {
        g_once_init_leave(&none,
                          g_ptr_array_new_with_free_func(nvstore_attr_free));
    }
    return g_ptr_array_ref(none);
}

/* @e's own array of attributes, to add to */
static GPtrArray *nvstore_entry_own_attrs(NvstoreEntry *e)
{
    if (!e->attrs->len) {
        /* Perhaps the shared one */
        g_ptr_array_unref(e->attrs);
        e->attrs = g_ptr_array_new_with_free_func(nvstore_attr_free);
    }
    return e->attrs;
}

/* The bytes of an entry whose name is @name_len bytes */
static size_t nvstore_entry_size(size_t name_len)
{
    return MAX(sizeof(NvstoreEntry),
               offsetof(NvstoreEntry, name) + name_len + 1);
}

/* A new entry named @name (@name_len bytes, "" for the unnamed one) */
static NvstoreEntry *nvstore_entry_new(const char *name, size_t name_len)
{
    NvstoreEntry *e = g_malloc0(nvstore_entry_size(name_len));

    memcpy(e->name, name, name_len);
    e->attrs = nvstore_no_attrs();
    e->refs = 1;
    return e;
}

const char *nvstore_entry_desc(NvstoreEntry *e)
{
    return e->name[0] ? e->name : "(unnamed)";
}

static NvstoreAttr *nvstore_find_attr(NvstoreEntry *e, const char *name)
{
    guint i;

    for (i = 0; i < e->attrs->len; i++) {
        NvstoreAttr *attr = g_ptr_array_index(e->attrs, i);

        if (!strcmp(attr->name, name)) {
            return attr;
        }
    }
    return NULL;
}

/* The attributes this version interprets: always mandatory */
static bool nvstore_attr_known(const char *name)
{
    return !strcmp(name, NVSTORE_ATTR_EXTENT) ||
           !strcmp(name, NVSTORE_ATTR_REALSIZE) ||
           !strcmp(name, NVSTORE_ATTR_SEALED);
}

/* Whether @e has known attribute @name */
static bool nvstore_attr_present(NvstoreEntry *e, const char *name)
{
    if (!strcmp(name, NVSTORE_ATTR_EXTENT)) {
        return e->has_extent;
    }
    if (!strcmp(name, NVSTORE_ATTR_REALSIZE)) {
        return e->has_realsize;
    }
    return e->sealed;
}

NvstoreDir *nvstore_dir_new(void)
{
    NvstoreDir *dir = g_new0(NvstoreDir, 1);

    dir->entries = g_ptr_array_new_with_free_func(nvstore_entry_unref);
    return dir;
}

static NvstoreEntry *nvstore_entry_copy(const NvstoreEntry *e)
{
    NvstoreEntry *c = g_memdup2(e, nvstore_entry_size(strlen(e->name)));
    guint i;

    c->refs = 1;
    c->type = nvstore_type_dup(e->type, strlen(e->type));
    c->attrs = e->attrs->len ?
               g_ptr_array_new_full(e->attrs->len, nvstore_attr_free) :
               nvstore_no_attrs();
    for (i = 0; i < e->attrs->len; i++) {
        const NvstoreAttr *a = g_ptr_array_index(e->attrs, i);
        NvstoreAttr *b = g_new0(NvstoreAttr, 1);

        b->name = g_strdup(a->name);
        b->value = a->value ? g_memdup2(a->value, a->value_len) : NULL;
        b->value_len = a->value_len;
        g_ptr_array_add(c->attrs, b);
    }
    c->data = e->data ? g_memdup2(e->data, e->data_len) : NULL;
    c->sealed = e->sealed ? g_memdup2(e->sealed, NVSTORE_SEAL_LEN) : NULL;
    if (e->raw) {
        c->raw = g_memdup2(e->raw, sizeof(*e->raw));
        c->raw->why = g_strdup(e->raw->why);
        c->raw->enc = g_memdup2(e->raw->enc, e->raw->len);
    }
    return c;
}

NvstoreDir *nvstore_dir_copy(const NvstoreDir *dir)
{
    NvstoreDir *copy = g_new0(NvstoreDir, 1);
    guint i;

    copy->entries = g_ptr_array_new_full(dir->entries->len,
                                         nvstore_entry_unref);
    for (i = 0; i < dir->entries->len; i++) {
        NvstoreEntry *e = g_ptr_array_index(dir->entries, i);

        assert(e->refs < UINT16_MAX);
        e->refs++;
        g_ptr_array_add(copy->entries, e);
    }
    return copy;
}

void nvstore_dir_free(NvstoreDir *dir)
{
    if (!dir) {
        return;
    }
    g_ptr_array_unref(dir->entries);
    g_free(dir);
}

/* ---- Decoding ---------------------------------------------------------- */

/*
 * The known attributes.  Their values are checked here; a bad value
 * makes the entry unusable (the message goes to *@why).
 */
static void nvstore_decode_extent(NvstoreEntry *e, NvstoreSlice v, char **why)
{
    const uint8_t *p = v.p;
    size_t n = v.n;
    NvstoreSlice seq, crc;
    NvstoreExtent ext;
    Error *err = NULL;

    if (qcrypto_der_decode_seq(&p, &n, nvstore_capture, &seq, &err) < 0 || n) {
        goto bad;
    }
    p = seq.p;
    n = seq.n;
    if (qcrypto_der_decode_uint64(&p, &n, &ext.offset, &err) < 0 ||
        qcrypto_der_decode_uint64(&p, &n, &ext.length, &err) < 0 ||
        qcrypto_der_decode_uint64(&p, &n, &ext.generation, &err) < 0 ||
        qcrypto_der_decode_octet_str(&p, &n, nvstore_capture, &crc, &err) < 0) {
        goto bad;
    }
    if (n || crc.n != 4) {
        goto bad;
    }
    if (ext.offset >= NVSTORE_EXTENT_LIMIT ||
        ext.length >= NVSTORE_EXTENT_LIMIT ||
        ext.generation >= NVSTORE_EXTENT_LIMIT) {
        *why = g_strdup("attribute 'extent' has a field out of range");
        return;
    }
    ext.crc32c = ldl_be_p(crc.p);
    e->extent = ext;
    e->has_extent = true;
    return;

bad:
    *why = g_strdup_printf("attribute 'extent' is not an Extent%s%s",
                           err ? ": " : "", err ? error_get_pretty(err) : "");
    error_free(err);
}

static void nvstore_decode_realsize(NvstoreEntry *e, NvstoreSlice v, char **why)
{
    const uint8_t *p = v.p;
    size_t n = v.n;
    NvstoreSlice s;

    if (qcrypto_der_decode_octet_str(&p, &n, nvstore_capture, &s, NULL) < 0 ||
        n || s.n != 8) {
        *why = g_strdup("attribute 'realsize' is not an OCTET STRING of "
                        "8 octets");
        return;
    }
    e->realsize = ldq_be_p(s.p);
    e->has_realsize = true;
}

static void nvstore_decode_sealed(NvstoreEntry *e, NvstoreSlice v, char **why)
{
    const uint8_t *p = v.p;
    size_t n = v.n;
    NvstoreSlice s;

    if (qcrypto_der_decode_octet_str(&p, &n, nvstore_capture, &s, NULL) < 0 ||
        n || s.n != NVSTORE_SEAL_LEN) {
        *why = g_strdup_printf("attribute 'sealed' is not an OCTET STRING "
                               "of %d octets", NVSTORE_SEAL_LEN);
        return;
    }
    e->sealed = g_memdup2(s.p, NVSTORE_SEAL_LEN);
}

/*
 * Note the space that an attribute 'extent' references, whether or not
 * the entry turns out usable: a writer must not overwrite the data of an
 * entry it cannot use either.  A second 'extent', or one that does not
 * decode, leaves that space unknown.
 */
static void nvstore_note_space(NvstoreEntry *e, bool mandatory,
                               NvstoreSlice value)
{
    NvstoreEntry tmp = { 0 };
    g_autofree char *why = NULL;

    if (!e->raw) {
        e->raw = g_new0(NvstoreRaw, 1);
    }
    if (mandatory && value.p && !e->raw->has_space &&
        !e->raw->space_unknown) {
        nvstore_decode_extent(&tmp, value, &why);
        if (!why) {
            e->raw->space = tmp.extent;
            e->raw->has_space = true;
            return;
        }
    }
    e->raw->has_space = false;
    e->raw->space_unknown = true;
}

/*
 * Parse the contents of one SET OF Attribute.  Structural errors fail the
 * whole directory; rule violations make the entry unusable (*@why).
 */
static bool nvstore_parse_attrs(NvstoreParseCtx *ctx, NvstoreEntry *e,
                                NvstoreSlice set, bool mandatory,
                                unsigned *count, char **why, Error **errp)
{
    ERRP_GUARD();
    const uint8_t *p = set.p;
    size_t n = set.n;
    NvstoreSlice prev = { NULL, 0 };

    while (n) {
        const uint8_t *start = p;
        NvstoreSlice whole, name, value = { NULL, 0 };

        if (++*count > NVSTORE_ENTRY_MAX_ATTRS) {
            nvstore_parse_error(ctx, start, errp, "more than %d attributes",
                                NVSTORE_ENTRY_MAX_ATTRS);
            return false;
        }
        if (qcrypto_der_peek_seq(p, n)) {
            NvstoreSlice seq;
            const uint8_t *q;
            size_t m;

            if (qcrypto_der_decode_seq(&p, &n, nvstore_capture, &seq,
                                       errp) < 0) {
                goto der_error;
            }
            q = seq.p;
            m = seq.n;
            if (qcrypto_der_decode_ia5_str(&q, &m, nvstore_capture, &name,
                                           errp) < 0) {
                nvstore_parse_where(ctx, q, "attribute name", errp);
                return false;
            }
            value.p = q;
            value.n = m;
            if (!m) {
                nvstore_parse_error(ctx, start, errp,
                                    "valued attribute without a value");
                return false;
            }
            /* Exactly one value, well-formed DER */
            if (qcrypto_der_decode_any(&q, &m, NVSTORE_ATTR_MAX_DEPTH,
                                       errp) < 0) {
                nvstore_parse_where(ctx, q, NULL, errp);
                return false;
            }
            if (m) {
                nvstore_parse_error(ctx, q, errp,
                                    "attribute has more than one value");
                return false;
            }
        } else if (qcrypto_der_decode_ia5_str(&p, &n, nvstore_capture, &name,
                                              errp) < 0) {
            goto der_error;
        }
        whole.p = start;
        whole.n = p - start;
        if (whole.n > NVSTORE_ATTR_MAX_SIZE) {
            nvstore_parse_error(ctx, start, errp,
                                "attribute larger than %" PRId64 " bytes",
                                NVSTORE_ATTR_MAX_SIZE);
            return false;
        }
        if (!nvstore_valid_id(name.p, name.n)) {
            nvstore_parse_error(ctx, start, errp, "invalid attribute name");
            return false;
        }
        if (prev.p && qcrypto_der_cmp(prev.p, prev.n, whole.p, whole.n) >= 0) {
            nvstore_parse_error(ctx, start, errp, "attributes not in ascending "
                                "order of their encodings (X.690 11.6)");
            return false;
        }
        prev = whole;

        if (name.n == strlen(NVSTORE_ATTR_EXTENT) &&
            !memcmp(name.p, NVSTORE_ATTR_EXTENT, name.n)) {
            nvstore_note_space(e, mandatory, value);
        }
        if (*why) {
            continue;       /* already unusable: only check the structure */
        }
        {
            g_autofree char *aname = g_strndup((const char *)name.p, name.n);
            bool known = nvstore_attr_known(aname);

            if ((known && nvstore_attr_present(e, aname)) ||
                nvstore_find_attr(e, aname)) {
                *why = g_strdup_printf("attribute '%s' appears twice", aname);
            } else if (known && !mandatory) {
                *why = g_strdup_printf("attribute '%s' must be mandatory",
                                       aname);
            } else if (known && !value.p) {
                *why = g_strdup_printf("attribute '%s' needs a value", aname);
            } else if (!strcmp(aname, NVSTORE_ATTR_EXTENT)) {
                nvstore_decode_extent(e, value, why);
            } else if (!strcmp(aname, NVSTORE_ATTR_REALSIZE)) {
                nvstore_decode_realsize(e, value, why);
            } else if (!strcmp(aname, NVSTORE_ATTR_SEALED)) {
                nvstore_decode_sealed(e, value, why);
            } else if (mandatory) {
                *why = g_strdup_printf("unknown mandatory attribute '%s'",
                                       aname);
            } else {
                NvstoreAttr *attr = g_new0(NvstoreAttr, 1);

                attr->name = g_steal_pointer(&aname);
                attr->value = value.p ? g_memdup2(value.p, value.n) : NULL;
                attr->value_len = value.n;
                g_ptr_array_add(nvstore_entry_own_attrs(e), attr);
            }
        }
    }
    return true;

der_error:
    nvstore_parse_where(ctx, p, "attribute", errp);
    return false;
}

/* Parse the contents of the NVRAM SEQUENCE of an entry into @e */
static bool nvstore_parse_nvram(NvstoreParseCtx *ctx, NvstoreEntry *e,
                                NvstoreSlice nvram, Error **errp)
{
    ERRP_GUARD();
    NvstoreSlice type, mand, opt, data;
    g_autofree char *why = NULL;
    unsigned count = 0;
    const uint8_t *q;
    size_t m;

    q = nvram.p;
    m = nvram.n;
    if (qcrypto_der_decode_ia5_str(&q, &m, nvstore_capture, &type, errp) < 0) {
        nvstore_parse_where(ctx, q, "type", errp);
        return false;
    }
    if (!nvstore_valid_id(type.p, type.n)) {
        nvstore_parse_error(ctx, type.p, errp, "invalid blob type");
        return false;
    }
    e->type = nvstore_type_dup((const char *)type.p, type.n);
    if (qcrypto_der_decode_set(&q, &m, nvstore_capture, &mand, errp) < 0) {
        nvstore_parse_where(ctx, q, "mandatory attributes", errp);
        return false;
    }
    if (!nvstore_parse_attrs(ctx, e, mand, true, &count, &why, errp)) {
        return false;
    }
    if (qcrypto_der_decode_set(&q, &m, nvstore_capture, &opt, errp) < 0) {
        nvstore_parse_where(ctx, q, "optional attributes", errp);
        return false;
    }
    if (!nvstore_parse_attrs(ctx, e, opt, false, &count, &why, errp)) {
        return false;
    }
    if (qcrypto_der_decode_octet_str(&q, &m, nvstore_capture, &data,
                                     errp) < 0) {
        nvstore_parse_where(ctx, q, "data", errp);
        return false;
    }
    if (m) {
        nvstore_parse_error(ctx, q, errp,
                            "unexpected data after the nvram data");
        return false;
    }

    if (!why && e->has_extent && data.n) {
        why = g_strdup("it has both an extent and inline data");
    }
    if (!why && !strcmp(e->type, NVSTORE_BLOB_TYPE_TPM) && !e->has_realsize) {
        why = g_strdup("type 'tpm' requires attribute 'realsize'");
    }
    if (!why && e->has_realsize &&
        e->realsize > (e->has_extent ? e->extent.length : data.n)) {
        why = g_strdup("realsize exceeds the data");
    }
    if (why) {
        /* Keep the entry as it is; drop what was decoded of it */
        e->has_extent = e->has_realsize = false;
        g_clear_pointer(&e->sealed, g_free);
        g_ptr_array_set_size(e->attrs, 0);
        if (!e->raw) {
            e->raw = g_new0(NvstoreRaw, 1);
        }
        e->raw->why = g_steal_pointer(&why);
    } else {
        /* Only an unusable entry keeps what nvstore_note_space() saw */
        g_clear_pointer(&e->raw, g_free);
        e->data = g_memdup2(data.p, data.n);
        e->data_len = data.n;
    }
    return true;
}

/* Parse the contents of one Entry SEQUENCE: a new entry, or NULL */
static NvstoreEntry *nvstore_parse_entry(NvstoreParseCtx *ctx,
                                         NvstoreSlice c, Error **errp)
{
    ERRP_GUARD();
    const uint8_t *p = c.p;
    size_t n = c.n;
    NvstoreSlice nvram, name = { (const uint8_t *)"", 0 };
    NvstoreEntry *e;
    const uint8_t *q;

    if (qcrypto_der_decode_seq(&p, &n, nvstore_capture, &nvram, errp) < 0) {
        nvstore_parse_where(ctx, p, "nvram", errp);
        return NULL;
    }
    if (n) {
        q = p;
        if (qcrypto_der_decode_utf8_str(&p, &n, nvstore_capture, &name,
                                        errp) < 0) {
            nvstore_parse_where(ctx, q, "name", errp);
            return NULL;
        }
        if (!nvstore_valid_name(name.p, name.n)) {
            nvstore_parse_error(ctx, q, errp, "invalid blob name");
            return NULL;
        }
        if (n) {
            nvstore_parse_error(ctx, p, errp,
                                "unexpected data after the name");
            return NULL;
        }
    }
    e = nvstore_entry_new((const char *)name.p, name.n);
    if (!nvstore_parse_nvram(ctx, e, nvram, errp)) {
        nvstore_entry_unref(e);
        return NULL;
    }
    return e;
}

NvstoreDir *nvstore_dir_parse(const uint8_t *buf, size_t len, Error **errp)
{
    ERRP_GUARD();
    g_autoptr(NvstoreDir) dir = nvstore_dir_new();
    /* The names so far, for the first duplicate in the directory's order */
    g_autoptr(GHashTable) names = g_hash_table_new(g_str_hash, g_str_equal);
    NvstoreParseCtx ctx = { .base = buf };
    const uint8_t *p = buf;
    size_t n = len;
    NvstoreSlice prev = { NULL, 0 };

    if (len > NVSTORE_DIR_MAX_SIZE) {
        error_setg(errp, "Directory of %zu bytes, more than the limit "
                   "of %" PRId64, len, NVSTORE_DIR_MAX_SIZE);
        return NULL;
    }
    if (qcrypto_der_decode_set_indefinite(&p, &n, errp) < 0) {
        error_prepend(errp, "Directory at offset 0: ");
        return NULL;
    }
    for (ctx.index = 0; !qcrypto_der_decode_eoc(&p, &n); ctx.index++) {
        const uint8_t *start = p;
        NvstoreEntry *e;
        NvstoreSlice c;

        if (!n) {
            error_setg(errp, "Directory truncated at offset %zu: "
                       "no end-of-contents", nvstore_offset_of(&ctx, p));
            return NULL;
        }
        if (ctx.index == NVSTORE_DIR_MAX_ENTRIES) {
            error_setg(errp, "Directory of more than %d entries",
                       NVSTORE_DIR_MAX_ENTRIES);
            return NULL;
        }
        if (qcrypto_der_decode_seq(&p, &n, nvstore_capture, &c, errp) < 0) {
            error_prepend(errp, "Directory entry #%u at offset "
                          "%zu: ", ctx.index, nvstore_offset_of(&ctx, start));
            return NULL;
        }
        e = nvstore_parse_entry(&ctx, c, errp);
        if (!e) {
            error_prepend(errp, "Directory entry #%u ", ctx.index);
            return NULL;
        }
        g_ptr_array_add(dir->entries, e);
        if (prev.p && qcrypto_der_cmp(prev.p, prev.n, start, p - start) >= 0) {
            error_setg(errp, "Directory entry #%u at offset %zu: "
                       "entries not in ascending order of their encodings "
                       "(X.690 11.6)", ctx.index,
                       nvstore_offset_of(&ctx, start));
            return NULL;
        }
        prev.p = start;
        prev.n = p - start;
        if (!g_hash_table_add(names, e->name)) {
            error_setg(errp, "Directory entry #%u: duplicate blob "
                       "name '%s'", ctx.index, nvstore_entry_desc(e));
            return NULL;
        }
        if (e->raw) {
            e->raw->enc = g_memdup2(start, p - start);
            e->raw->len = p - start;
        }
    }
    if (n) {
        error_setg(errp, "Directory followed by %zu bytes of trailing data at "
                   "offset %zu", n, nvstore_offset_of(&ctx, p));
        return NULL;
    }
    /* Entries come in the order of their encodings; keep them by name */
    g_ptr_array_sort(dir->entries, nvstore_entry_cmp);
    return g_steal_pointer(&dir);
}

size_t nvstore_dir_measure(const uint8_t *buf, size_t len, size_t *need)
{
    size_t pos = 2;

    *need = 0;
    if (len < 2 || buf[0] != 0x31 || buf[1] != 0x80) {
        return 0;
    }
    /* Only the framing: nvstore_dir_parse() checks the rest */
    while (pos <= NVSTORE_DIR_MAX_SIZE) {
        uint64_t vlen;
        size_t hdr, k;

        if (pos > len || len - pos < 2) {
            *need = pos + 2;
            return 0;
        }
        if (buf[pos] == 0 && buf[pos + 1] == 0) {
            return pos + 2;
        }
        if (buf[pos] != 0x30) {
            return 0;
        }
        if (buf[pos + 1] < 0x80) {
            vlen = buf[pos + 1];
            hdr = 2;
        } else {
            hdr = 2 + (buf[pos + 1] & 0x7f);
            if (hdr == 2 || hdr > 2 + sizeof(uint32_t)) {
                return 0;
            }
            if (len - pos < hdr) {
                *need = pos + hdr;
                return 0;
            }
            for (vlen = 0, k = 2; k < hdr; k++) {
                vlen = vlen << 8 | buf[pos + k];
            }
        }
        if (vlen > NVSTORE_DIR_MAX_SIZE) {
            return 0;
        }
        pos += hdr + vlen;
    }
    return 0;
}

/* ---- Encoding ---------------------------------------------------------- */

typedef struct NvstoreEncoded {
    uint8_t *p;
    size_t n;
} NvstoreEncoded;

static NvstoreEncoded nvstore_encode_flush(QCryptoEncodeContext *ctx)
{
    NvstoreEncoded enc;

    enc.n = qcrypto_der_encode_ctx_buffer_len(ctx);
    enc.p = g_malloc(enc.n);
    qcrypto_der_encode_ctx_flush_and_free(ctx, enc.p);
    return enc;
}

static void nvstore_encoded_clear(gpointer p)
{
    g_free(((NvstoreEncoded *)p)->p);
}

static NvstoreEncoded nvstore_encode_attr(const char *name,
                                          const uint8_t *value,
                                          size_t value_len)
{
    QCryptoEncodeContext *ctx = qcrypto_der_encode_ctx_new();

    if (value) {
        qcrypto_der_encode_seq_begin(ctx);
        qcrypto_der_encode_ia5_str(ctx, name, strlen(name));
        qcrypto_der_encode_raw(ctx, value, value_len);
        qcrypto_der_encode_seq_end(ctx);
    } else {
        qcrypto_der_encode_ia5_str(ctx, name, strlen(name));
    }
    return nvstore_encode_flush(ctx);
}

/* Add the @n encodings of @set to @ctx; they must outlive @ctx */
static void nvstore_encode_elements(QCryptoEncodeContext *ctx,
                                    const NvstoreEncoded *set, guint n)
{
    guint i;

    for (i = 0; i < n; i++) {
        qcrypto_der_encode_raw(ctx, set[i].p, set[i].n);
    }
}

/*
 * A known attribute: begin its Attribute SEQUENCE in a new context, for
 * the caller to encode the value into; nvstore_encode_known_end() ends it
 */
static QCryptoEncodeContext *nvstore_encode_known_begin(const char *name)
{
    QCryptoEncodeContext *ctx = qcrypto_der_encode_ctx_new();

    qcrypto_der_encode_seq_begin(ctx);
    qcrypto_der_encode_ia5_str(ctx, name, strlen(name));
    return ctx;
}

static NvstoreEncoded nvstore_encode_known_end(QCryptoEncodeContext *ctx)
{
    qcrypto_der_encode_seq_end(ctx);
    return nvstore_encode_flush(ctx);
}

/*
 * One entry.  A commit encodes every entry of the directory, so this
 * allocates little: each known attribute is encoded in one context with
 * its value, and the attributes' encodings sit in arrays of their own
 * size.
 */
static NvstoreEncoded nvstore_encode_entry(NvstoreEntry *e)
{
    NvstoreEncoded mand[3];
    g_autofree NvstoreEncoded *opt = NULL;
    QCryptoEncodeContext *ctx;
    NvstoreEncoded out;
    uint8_t crc[4], realsize[8];
    guint nmand = 0, i;

    if (e->raw) {
        return (NvstoreEncoded) { g_memdup2(e->raw->enc, e->raw->len),
                                  e->raw->len };
    }

    if (e->has_extent) {
        stl_be_p(crc, e->extent.crc32c);
        ctx = nvstore_encode_known_begin(NVSTORE_ATTR_EXTENT);
        qcrypto_der_encode_seq_begin(ctx);
        qcrypto_der_encode_uint64(ctx, e->extent.offset);
        qcrypto_der_encode_uint64(ctx, e->extent.length);
        qcrypto_der_encode_uint64(ctx, e->extent.generation);
        qcrypto_der_encode_octet_str(ctx, crc, sizeof(crc));
        qcrypto_der_encode_seq_end(ctx);
        mand[nmand++] = nvstore_encode_known_end(ctx);
    }
    if (e->has_realsize) {
        stq_be_p(realsize, e->realsize);
        ctx = nvstore_encode_known_begin(NVSTORE_ATTR_REALSIZE);
        qcrypto_der_encode_octet_str(ctx, realsize, sizeof(realsize));
        mand[nmand++] = nvstore_encode_known_end(ctx);
    }
    if (e->sealed) {
        ctx = nvstore_encode_known_begin(NVSTORE_ATTR_SEALED);
        qcrypto_der_encode_octet_str(ctx, e->sealed, NVSTORE_SEAL_LEN);
        mand[nmand++] = nvstore_encode_known_end(ctx);
    }
    if (e->attrs->len) {
        opt = g_new(NvstoreEncoded, e->attrs->len);
    }
    for (i = 0; i < e->attrs->len; i++) {
        NvstoreAttr *a = g_ptr_array_index(e->attrs, i);

        opt[i] = nvstore_encode_attr(a->name, a->value, a->value_len);
    }

    ctx = qcrypto_der_encode_ctx_new();
    qcrypto_der_encode_seq_begin(ctx);
    qcrypto_der_encode_seq_begin(ctx);
    qcrypto_der_encode_ia5_str(ctx, e->type, strlen(e->type));
    qcrypto_der_encode_set_begin(ctx);
    nvstore_encode_elements(ctx, mand, nmand);
    qcrypto_der_encode_set_end(ctx);
    qcrypto_der_encode_set_begin(ctx);
    nvstore_encode_elements(ctx, opt, e->attrs->len);
    qcrypto_der_encode_set_end(ctx);
    qcrypto_der_encode_octet_str(ctx, e->data, e->data_len);
    qcrypto_der_encode_seq_end(ctx);
    if (e->name[0]) {
        qcrypto_der_encode_utf8_str(ctx, e->name, strlen(e->name));
    }
    qcrypto_der_encode_seq_end(ctx);
    out = nvstore_encode_flush(ctx);
    for (i = 0; i < nmand; i++) {
        g_free(mand[i].p);
    }
    for (i = 0; i < e->attrs->len; i++) {
        g_free(opt[i].p);
    }
    return out;
}

uint8_t *nvstore_dir_encode(NvstoreDir *dir, size_t *len, Error **errp)
{
    g_autoptr(GArray) entries = g_array_new(false, false,
                                            sizeof(NvstoreEncoded));
    QCryptoEncodeContext *ctx;
    NvstoreEncoded out;
    guint i;

    g_array_set_clear_func(entries, nvstore_encoded_clear);
    for (i = 0; i < dir->entries->len; i++) {
        NvstoreEncoded enc =
            nvstore_encode_entry(g_ptr_array_index(dir->entries, i));

        g_array_append_val(entries, enc);
    }
    ctx = qcrypto_der_encode_ctx_new();
    qcrypto_der_encode_set_indefinite_begin(ctx);
    nvstore_encode_elements(ctx, &g_array_index(entries, NvstoreEncoded, 0),
                            entries->len);
    qcrypto_der_encode_set_end(ctx);
    if (qcrypto_der_encode_ctx_buffer_len(ctx) > NVSTORE_DIR_MAX_SIZE) {
        error_setg(errp, "The directory would be %zu bytes, more than "
                   "the limit of %" PRId64,
                   qcrypto_der_encode_ctx_buffer_len(ctx),
                   NVSTORE_DIR_MAX_SIZE);
        out = nvstore_encode_flush(ctx);
        g_free(out.p);
        return NULL;
    }
    out = nvstore_encode_flush(ctx);
    *len = out.n;
    return out.p;
}

/* ---- Editing ----------------------------------------------------------- */

NvstoreEntry *nvstore_dir_lookup(NvstoreDir *dir, const char *name)
{
    guint pos;

    if (!nvstore_dir_find(dir, name, &pos)) {
        return NULL;
    }
    return g_ptr_array_index(dir->entries, pos);
}

NvstoreEntry *nvstore_dir_lookup_mut(NvstoreDir *dir, const char *name)
{
    NvstoreEntry *e;
    guint pos;

    if (!nvstore_dir_find(dir, name, &pos)) {
        return NULL;
    }
    e = g_ptr_array_index(dir->entries, pos);
    if (e->refs > 1) {
        /* Shared with another directory: take a copy of our own */
        e->refs--;
        e = nvstore_entry_copy(e);
        dir->entries->pdata[pos] = e;
    }
    return e;
}

bool nvstore_check_name_type(const char *name, const char *type,
                             Error **errp)
{
    return (!name || nvstore_check_name(name, errp)) &&
           (!type || nvstore_check_id("blob type", type, errp));
}

NvstoreEntry *nvstore_dir_add(NvstoreDir *dir, const char *name,
                              const char *type, Error **errp)
{
    NvstoreEntry *e;
    guint pos;

    if (!nvstore_check_name_type(name, type, errp)) {
        return NULL;
    }
    if (nvstore_dir_find(dir, name, &pos)) {
        error_setg(errp, "A blob named '%s' exists already",
                   name ? name : "(unnamed)");
        return NULL;
    }
    if (dir->entries->len >= NVSTORE_DIR_MAX_ENTRIES) {
        error_setg(errp, "The directory has the maximum number of blobs, %d",
                   NVSTORE_DIR_MAX_ENTRIES);
        return NULL;
    }
    e = nvstore_entry_new(name ? name : "", name ? strlen(name) : 0);
    e->type = nvstore_type_dup(type, strlen(type));
    g_ptr_array_insert(dir->entries, pos, e);
    return e;
}

bool nvstore_dir_delete(NvstoreDir *dir, const char *name, Error **errp)
{
    guint pos;

    if (!nvstore_dir_find(dir, name, &pos)) {
        error_setg(errp, "No blob named '%s'", name ? name : "(unnamed)");
        return false;
    }
    g_ptr_array_remove_index(dir->entries, pos);
    return true;
}

bool nvstore_entry_check_usable(NvstoreEntry *e, Error **errp)
{
    if (e->raw) {
        error_setg(errp, "Blob '%s' cannot be used by this version of QEMU: "
                   "%s", nvstore_entry_desc(e), e->raw->why);
        return false;
    }
    return true;
}

uint64_t nvstore_entry_data_size(NvstoreEntry *e)
{
    assert(!e->raw);
    return e->has_extent ? e->extent.length : e->data_len;
}

bool nvstore_entry_set_inline(NvstoreEntry *e, const uint8_t *data,
                              size_t len, Error **errp)
{
    assert(e->refs == 1);
    if (!nvstore_entry_check_usable(e, errp)) {
        return false;
    }
    if (e->has_realsize && e->realsize > len) {
        error_setg(errp, "Blob '%s': realsize %" PRIu64 " exceeds the new "
                   "data size %zu", nvstore_entry_desc(e), e->realsize, len);
        return false;
    }
    g_free(e->data);
    e->data = g_memdup2(data, len);
    e->data_len = len;
    e->has_extent = false;
    g_clear_pointer(&e->sealed, g_free);
    return true;
}

bool nvstore_entry_set_extent(NvstoreEntry *e, const NvstoreExtent *extent,
                              Error **errp)
{
    assert(e->refs == 1);
    if (!nvstore_entry_check_usable(e, errp)) {
        return false;
    }
    if (extent->offset >= NVSTORE_EXTENT_LIMIT ||
        extent->length >= NVSTORE_EXTENT_LIMIT ||
        extent->generation >= NVSTORE_EXTENT_LIMIT) {
        error_setg(errp, "Blob '%s': extent field out of range",
                   nvstore_entry_desc(e));
        return false;
    }
    if (e->has_realsize && e->realsize > extent->length) {
        error_setg(errp, "Blob '%s': realsize %" PRIu64 " exceeds the new "
                   "data size %" PRIu64, nvstore_entry_desc(e), e->realsize,
                   extent->length);
        return false;
    }
    g_free(e->data);
    e->data = NULL;
    e->data_len = 0;
    e->extent = *extent;
    e->has_extent = true;
    g_clear_pointer(&e->sealed, g_free);
    return true;
}

bool nvstore_entry_set_realsize(NvstoreEntry *e, uint64_t realsize,
                                Error **errp)
{
    assert(e->refs == 1);
    if (!nvstore_entry_check_usable(e, errp)) {
        return false;
    }
    if (realsize > nvstore_entry_data_size(e)) {
        error_setg(errp, "Blob '%s': realsize %" PRIu64 " exceeds the data "
                   "size %" PRIu64, nvstore_entry_desc(e), realsize,
                   nvstore_entry_data_size(e));
        return false;
    }
    e->realsize = realsize;
    e->has_realsize = true;
    return true;
}

void nvstore_entry_set_sealed(NvstoreEntry *e,
                              const uint8_t sealed[NVSTORE_SEAL_LEN])
{
    assert(e->refs == 1);
    assert(!e->raw);
    g_free(e->sealed);
    e->sealed = g_memdup2(sealed, NVSTORE_SEAL_LEN);
}

const NvstoreAttr *nvstore_entry_get_attr(NvstoreEntry *e, const char *name)
{
    return nvstore_find_attr(e, name);
}

bool nvstore_entry_set_attr(NvstoreEntry *e, const char *name,
                            const uint8_t *value, size_t value_len,
                            Error **errp)
{
    ERRP_GUARD();
    NvstoreAttr *attr;
    NvstoreEncoded enc;

    assert(e->refs == 1);
    if (!nvstore_entry_check_usable(e, errp) ||
        !nvstore_check_id("attribute name", name, errp)) {
        return false;
    }
    if (nvstore_attr_known(name)) {
        error_setg(errp, "Attribute '%s' is managed by nvstore", name);
        return false;
    }
    if (value) {
        const uint8_t *p = value;
        size_t n = value_len;

        if (qcrypto_der_decode_any(&p, &n, NVSTORE_ATTR_MAX_DEPTH,
                                   errp) < 0) {
            error_prepend(errp, "Attribute '%s': at offset %zu: ", name,
                          p - value);
            return false;
        }
        if (n) {
            error_setg(errp, "Attribute '%s': the value must be a single "
                       "DER encoding", name);
            return false;
        }
    }
    enc = nvstore_encode_attr(name, value, value_len);
    g_free(enc.p);
    if (enc.n > NVSTORE_ATTR_MAX_SIZE) {
        error_setg(errp, "Attribute '%s' is larger than %" PRId64 " bytes",
                   name, NVSTORE_ATTR_MAX_SIZE);
        return false;
    }
    attr = nvstore_find_attr(e, name);
    if (!attr) {
        if (e->attrs->len + e->has_extent + e->has_realsize +
            !!e->sealed >=
            NVSTORE_ENTRY_MAX_ATTRS) {
            error_setg(errp, "Blob '%s' has the maximum number of "
                       "attributes, %d", nvstore_entry_desc(e),
                       NVSTORE_ENTRY_MAX_ATTRS);
            return false;
        }
        attr = g_new0(NvstoreAttr, 1);
        attr->name = g_strdup(name);
        g_ptr_array_add(nvstore_entry_own_attrs(e), attr);
    }
    g_free(attr->value);
    attr->value = value ? g_memdup2(value, value_len) : NULL;
    attr->value_len = value ? value_len : 0;
    return true;
}

bool nvstore_entry_del_attr(NvstoreEntry *e, const char *name)
{
    NvstoreAttr *attr = nvstore_find_attr(e, name);

    assert(e->refs == 1);
    if (!attr || e->raw) {
        return false;
    }
    g_ptr_array_remove(e->attrs, attr);
    return true;
}
