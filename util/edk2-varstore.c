/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * edk2's non-volatile UEFI variable store: parse, edit, write back
 * compacted (include/qemu/edk2-varstore.h).
 *
 * The flash, as OVMF lays it out:
 *
 *   firmware volume header (EFI_FIRMWARE_VOLUME_HEADER, 0x48 octets),
 *     file system GUID EFI_SYSTEM_NV_DATA_FV_GUID, signature "_FVH",
 *     a 16-bit checksum that makes the header's words sum to 0
 *   variable store header (VARIABLE_STORE_HEADER, 28 octets),
 *     gEfiAuthenticatedVariableGuid, size, format 0x5a, state 0xfe
 *   variables (AUTHENTICATED_VARIABLE_HEADER, 60 octets, the name in
 *     UCS-2 with its terminating NUL, the data), each at a multiple of
 *     4, up to the first header without start id 0x55aa
 *   erased space (0xff) to the end of the variable store
 *   the working block of the fault-tolerant writes
 *     (EFI_FAULT_TOLERANT_WORKING_BLOCK_HEADER, 32 octets, then its
 *     write records), at a 4 KiB boundary past the store
 *   the spare area
 *
 * All integers are little-endian; GUIDs are stored as EFI_GUID, their
 * first three fields little-endian.
 */

#include "qemu/osdep.h"
#include <zlib.h>
#include "qapi/error.h"
#include "qemu/bswap.h"
#include "qemu/cutils.h"
#include "qemu/edk2-varstore.h"

#define FV_HEADER_LEN           0x48
#define FV_SIGNATURE            0x4856465f      /* "_FVH" */
#define VARSTORE_HEADER_LEN     28
#define VARSTORE_FORMATTED      0x5a
#define VARSTORE_HEALTHY        0xfe
#define VAR_HEADER_LEN          60
#define VAR_START_ID            0x55aa
#define VAR_ALIGN               4
#define FTW_HEADER_LEN          32
#define FTW_ALIGN               0x1000

/* Variable states: bits cleared as a variable goes through its life */
#define VAR_IN_DELETED_TRANSITION 0xfe
#define VAR_DELETED             0xfd
#define VAR_HEADER_VALID_ONLY   0x7f
#define VAR_ADDED               0x3f

#define NV_DATA_FV_GUID         "fff12b8d-7696-4c8b-a985-2747075b4f50"
#define AUTH_VARIABLE_GUID      "aaf32c78-947b-439a-a180-2e144ec37792"
#define FTW_WORKING_BLOCK_GUID  "9e58292b-7c68-497d-a0ce-6500fd9f1b95"

/* OVMF_VARS_4M.fd: the firmware volume is the whole flash */
#define OVMF_4M_VARSTORE_SIZE   0x3ffb8         /* to 0x40000 */
#define OVMF_4M_FTW             0x41000
#define OVMF_4M_FTW_SIZE        0x1000
#define OVMF_4M_BLOCK_SIZE      0x1000

static const struct {
    const char *guid;
    const char *name;
} edk2_guids[] = {
    { EDK2_GLOBAL_VARIABLE_GUID, "EfiGlobalVariable" },
    { EDK2_IMAGE_SECURITY_DATABASE_GUID, "EfiImageSecurityDatabase" },
    { "f0a30bc7-af08-4556-99c4-001009c93a44", "EfiSecureBootEnableDisable" },
    { "c076ec0c-7028-4399-a072-71ee5c448b9f", "EfiCustomModeEnable" },
    { "eb704011-1402-11d3-8e77-00a0c969723b", "MtcVendor" },
    { "4c19049f-4137-4dd3-9c10-8b97a83ffdfa", "EfiMemoryTypeInformation" },
    { "4b47d616-a8d6-4552-9d44-ccad2e0f4cf9", "IScsiConfig" },
    { "d9bee56e-75dc-49d9-b4d7-b534210f637a", "EfiCertDb" },
    { "fd2340d0-3dab-4349-a6c7-3b4f12b48eae", "EfiTlsCaCertificate" },
    { "59324945-ec44-4c0d-b1cd-9db139df070c", "EfiIScsiInitiatorNameProtocol" },
    { "9fb9a8a1-2f4a-43a6-889c-d0f7b6c47ad5",
      "EfiDhcp6ServiceBindingProtocol" },
    { "5b446ed1-e30b-4faa-871a-3654eca36080", "EfiIp4Config2Protocol" },
    { "937fe521-95ae-4d1a-8929-48bcd90ad31a", "EfiIp6ConfigProtocol" },
    { "77fa9abd-0359-4d32-bd60-28f4e78f784b", "MicrosoftVendor" },
    { "a0baa8a3-041d-48a8-bc87-c36d121b5e3d", "OvmfEnrollDefaultKeys" },
    { "605dab50-e046-4300-abb6-3dd810dd8b23", "Shim" },
};

/* ---- GUIDs -------------------------------------------------------------- */

/* An EFI_GUID at @p into @guid (RFC 4122 byte order), and back */
static void guid_from_efi(QemuUUID *guid, const uint8_t *p)
{
    memcpy(guid->data, p, sizeof(guid->data));
    *guid = qemu_uuid_bswap(*guid);
}

static void guid_to_efi(uint8_t *p, const QemuUUID *guid)
{
    QemuUUID le = qemu_uuid_bswap(*guid);

    memcpy(p, le.data, sizeof(le.data));
}

static bool guid_is(const uint8_t *p, const char *str)
{
    QemuUUID a, b;

    guid_from_efi(&a, p);
    qemu_uuid_parse(str, &b);
    return qemu_uuid_is_equal(&a, &b);
}

const char *edk2_guid_name(const QemuUUID *guid)
{
    size_t i;

    for (i = 0; i < ARRAY_SIZE(edk2_guids); i++) {
        QemuUUID g;

        qemu_uuid_parse(edk2_guids[i].guid, &g);
        if (qemu_uuid_is_equal(&g, guid)) {
            return edk2_guids[i].name;
        }
    }
    return NULL;
}

bool edk2_guid_parse(const char *str, QemuUUID *guid, Error **errp)
{
    size_t i;

    for (i = 0; i < ARRAY_SIZE(edk2_guids); i++) {
        if (!g_ascii_strcasecmp(str, edk2_guids[i].name)) {
            qemu_uuid_parse(edk2_guids[i].guid, guid);
            return true;
        }
    }
    if (qemu_uuid_parse(str, guid) < 0) {
        error_setg(errp, "'%s' is neither a GUID nor the name of a "
                   "well-known one", str);
        return false;
    }
    return true;
}

/* ---- Names -------------------------------------------------------------- */

/*
 * The UCS-2 name at @p, @size octets with its terminating NUL, as
 * UTF-8; NULL with @errp set if it is not one
 */
static char *name_from_ucs2(const uint8_t *p, size_t size, Error **errp)
{
    g_autofree gunichar2 *u = NULL;
    size_t n = size / 2, i;
    char *name;

    if (size < 4 || size % 2) {
        error_setg(errp, "name of %zu octets", size);
        return NULL;
    }
    u = g_new(gunichar2, n);
    for (i = 0; i < n; i++) {
        u[i] = lduw_le_p(p + 2 * i);
        if (!u[i] && i != n - 1) {
            error_setg(errp, "a NUL inside the name");
            return NULL;
        }
        if (u[i] >= 0xd800 && u[i] <= 0xdfff) {
            error_setg(errp, "name not in UCS-2 (a surrogate)");
            return NULL;
        }
    }
    if (u[n - 1]) {
        error_setg(errp, "name without its terminating NUL");
        return NULL;
    }
    name = g_utf16_to_utf8(u, n - 1, NULL, NULL, NULL);
    if (!name) {
        error_setg(errp, "name not in UCS-2");
    }
    return name;
}

/*
 * @name in UCS-2, little-endian, with its terminating NUL; its size in
 * *@size.  NULL with @errp set if it is empty or not in UCS-2.
 */
static uint8_t *name_to_ucs2(const char *name, size_t *size, Error **errp)
{
    g_autofree gunichar2 *u = NULL;
    uint8_t *p;
    glong n, i;

    u = g_utf8_to_utf16(name, -1, NULL, &n, NULL);
    if (!u || !n) {
        error_setg(errp, "'%s' is not a variable name: %s", name,
                   u ? "empty" : "not in UTF-8");
        return NULL;
    }
    for (i = 0; i < n; i++) {
        if (u[i] >= 0xd800 && u[i] <= 0xdfff) {
            error_setg(errp, "'%s' is not a variable name: a character "
                       "beyond UCS-2", name);
            return NULL;
        }
    }
    *size = 2 * (n + 1);
    p = g_malloc0(*size);
    for (i = 0; i < n; i++) {
        stw_le_p(p + 2 * i, u[i]);
    }
    return p;
}

/* ---- Variables ---------------------------------------------------------- */

static void edk2_var_free(gpointer p)
{
    Edk2Var *v = p;

    g_free(v->name);
    g_free(v->data);
    g_free(v);
}

void edk2_varstore_free(Edk2VarStore *s)
{
    if (s) {
        if (s->image) {
            g_byte_array_unref(s->image);
        }
        if (s->vars) {
            g_ptr_array_unref(s->vars);
        }
        g_free(s);
    }
}

int edk2_varstore_find(Edk2VarStore *s, const char *name,
                       const QemuUUID *guid)
{
    guint i;

    for (i = 0; i < s->vars->len; i++) {
        Edk2Var *v = g_ptr_array_index(s->vars, i);

        if (!strcmp(v->name, name) && qemu_uuid_is_equal(&v->guid, guid)) {
            return i;
        }
    }
    return -1;
}

bool edk2_varstore_set(Edk2VarStore *s, const char *name,
                       const QemuUUID *guid, uint32_t attr,
                       const uint8_t *time, const uint8_t *data, size_t len,
                       Error **errp)
{
    g_autofree uint8_t *ucs2 = NULL;
    size_t size;
    int i = edk2_varstore_find(s, name, guid);
    Edk2Var *v;

    ucs2 = name_to_ucs2(name, &size, errp);
    if (!ucs2) {
        return false;
    }
    if (attr & ~EDK2_VAR_ATTR_MASK) {
        error_setg(errp, "Variable '%s': unknown attributes 0x%" PRIx32,
                   name, attr & ~EDK2_VAR_ATTR_MASK);
        return false;
    }
    if (i < 0) {
        v = g_new0(Edk2Var, 1);
        v->name = g_strdup(name);
        v->guid = *guid;
        g_ptr_array_add(s->vars, v);
    } else {
        v = g_ptr_array_index(s->vars, i);
        g_free(v->data);
    }
    v->attr = attr;
    memset(v->time, 0, sizeof(v->time));
    if (time) {
        memcpy(v->time, time, sizeof(v->time));
    }
    v->data = g_memdup2(data, len);
    v->len = len;
    return true;
}

bool edk2_varstore_delete(Edk2VarStore *s, const char *name,
                          const QemuUUID *guid)
{
    int i = edk2_varstore_find(s, name, guid);

    if (i < 0) {
        return false;
    }
    g_ptr_array_remove_index(s->vars, i);
    return true;
}

/* ---- Parsing ------------------------------------------------------------ */

static bool parse_fv(const uint8_t *buf, size_t len, size_t *fv_len,
                     size_t *hlen, Error **errp)
{
    uint16_t sum = 0;
    uint64_t vlen;
    size_t i;

    if (len < FV_HEADER_LEN) {
        error_setg(errp, "%zu octets are too few for a firmware volume", len);
        return false;
    }
    if (ldl_le_p(buf + 40) != FV_SIGNATURE) {
        error_setg(errp, "No firmware volume (signature '_FVH') at offset 0");
        return false;
    }
    if (!guid_is(buf + 16, NV_DATA_FV_GUID)) {
        error_setg(errp, "The firmware volume is not a variable store (file "
                   "system GUID not EFI_SYSTEM_NV_DATA_FV_GUID)");
        return false;
    }
    vlen = ldq_le_p(buf + 32);
    *hlen = lduw_le_p(buf + 48);
    if (vlen > len || vlen < FV_HEADER_LEN) {
        error_setg(errp, "The firmware volume's length 0x%" PRIx64 " is not "
                   "within the %zu octets given", vlen, len);
        return false;
    }
    if (*hlen < FV_HEADER_LEN || *hlen % 8 ||
        *hlen + VARSTORE_HEADER_LEN > vlen) {
        error_setg(errp, "The firmware volume's header length 0x%zx is "
                   "invalid", *hlen);
        return false;
    }
    for (i = 0; i < *hlen; i += 2) {
        sum += lduw_le_p(buf + i);
    }
    if (sum) {
        error_setg(errp, "The firmware volume header's checksum is wrong");
        return false;
    }
    *fv_len = vlen;
    return true;
}

/*
 * The working block of the fault-tolerant writes: the first 4 KiB
 * boundary at or past @from, within the volume, that holds its header
 * with a valid checksum; 0 if there is none
 */
static size_t find_ftw(const uint8_t *buf, size_t fv_len, size_t from,
                       size_t *size)
{
    size_t off;

    for (off = ROUND_UP(from, FTW_ALIGN); off + FTW_HEADER_LEN <= fv_len;
         off += FTW_ALIGN) {
        uint8_t h[FTW_HEADER_LEN];
        uint64_t qsize;

        if (!guid_is(buf + off, FTW_WORKING_BLOCK_GUID)) {
            continue;
        }
        memcpy(h, buf + off, sizeof(h));
        memset(h + 16, 0xff, 5);    /* Crc, WorkingBlockValid/Invalid */
        qsize = ldq_le_p(buf + off + 24);
        if (crc32(0, h, sizeof(h)) != ldl_le_p(buf + off + 16) ||
            qsize > fv_len - off - FTW_HEADER_LEN) {
            continue;
        }
        *size = FTW_HEADER_LEN + qsize;
        return off;
    }
    return 0;
}

/* An empty working block of @size octets at @p */
static void ftw_init(uint8_t *p, size_t size)
{
    QemuUUID g;
    uint32_t crc;

    memset(p, 0xff, size);
    qemu_uuid_parse(FTW_WORKING_BLOCK_GUID, &g);
    guid_to_efi(p, &g);
    stq_le_p(p + 24, size - FTW_HEADER_LEN);
    crc = crc32(0, p, FTW_HEADER_LEN);
    stl_le_p(p + 16, crc);
    p[20] = 0xfe;                   /* WorkingBlockValid = 0 */
}

Edk2VarStore *edk2_varstore_parse(const uint8_t *buf, size_t len,
                                  Error **errp)
{
    g_autoptr(Edk2VarStore) s = g_new0(Edk2VarStore, 1);
    g_autoptr(GPtrArray) transition = g_ptr_array_new();
    size_t fv_len, hlen, pos, ftw_size = 0;
    uint32_t size;
    guint i;

    s->vars = g_ptr_array_new_with_free_func(edk2_var_free);
    if (!parse_fv(buf, len, &fv_len, &hlen, errp)) {
        return NULL;
    }
    if (!guid_is(buf + hlen, AUTH_VARIABLE_GUID)) {
        error_setg(errp, "The variable store is not an authenticated one "
                   "(gEfiAuthenticatedVariableGuid)");
        return NULL;
    }
    size = ldl_le_p(buf + hlen + 16);
    if (buf[hlen + 20] != VARSTORE_FORMATTED ||
        buf[hlen + 21] != VARSTORE_HEALTHY) {
        error_setg(errp, "The variable store is not formatted and healthy "
                   "(format 0x%02x, state 0x%02x)", buf[hlen + 20],
                   buf[hlen + 21]);
        return NULL;
    }
    if (size < VARSTORE_HEADER_LEN || size > fv_len - hlen) {
        error_setg(errp, "The variable store's size 0x%" PRIx32 " does not "
                   "fit in its firmware volume", size);
        return NULL;
    }
    s->start = ROUND_UP(hlen + VARSTORE_HEADER_LEN, VAR_ALIGN);
    s->end = hlen + size;
    if (s->start > s->end) {
        error_setg(errp, "The variable store's size 0x%" PRIx32 " leaves no "
                   "room for variables", size);
        return NULL;
    }
    s->ftw = find_ftw(buf, fv_len, s->end, &ftw_size);
    s->ftw_size = ftw_size;

    for (pos = s->start; pos + VAR_HEADER_LEN <= s->end;) {
        const uint8_t *h = buf + pos;
        uint32_t nsize, dsize;
        uint8_t state = h[2];
        Error *err = NULL;
        Edk2Var *v;

        if (lduw_le_p(h) != VAR_START_ID) {
            break;
        }
        nsize = ldl_le_p(h + 36);
        dsize = ldl_le_p(h + 40);
        if (nsize > s->end - pos - VAR_HEADER_LEN ||
            dsize > s->end - pos - VAR_HEADER_LEN - nsize) {
            error_setg(errp, "The variable at offset 0x%zx extends past the "
                       "end of the store", pos);
            return NULL;
        }
        if (state != VAR_ADDED &&
            state != (VAR_ADDED & VAR_IN_DELETED_TRANSITION)) {
            /* Deleted, or its header alone was written: none */
            if (state != VAR_HEADER_VALID_ONLY &&
                state != (VAR_ADDED & VAR_DELETED) &&
                state != (VAR_ADDED & VAR_DELETED &
                          VAR_IN_DELETED_TRANSITION)) {
                error_setg(errp, "The variable at offset 0x%zx has the "
                           "invalid state 0x%02x", pos, state);
                return NULL;
            }
            pos = ROUND_UP(pos + VAR_HEADER_LEN + nsize + dsize, VAR_ALIGN);
            continue;
        }
        v = g_new0(Edk2Var, 1);
        v->name = name_from_ucs2(h + VAR_HEADER_LEN, nsize, &err);
        if (!v->name) {
            error_propagate_prepend(errp, err, "The variable at offset "
                                    "0x%zx: ", pos);
            g_free(v);
            return NULL;
        }
        v->attr = ldl_le_p(h + 4);
        v->count = ldq_le_p(h + 8);
        memcpy(v->time, h + 16, EDK2_TIME_LEN);
        v->pkidx = ldl_le_p(h + 32);
        guid_from_efi(&v->guid, h + 44);
        v->data = g_memdup2(h + VAR_HEADER_LEN + nsize, dsize);
        v->len = dsize;
        if (state != VAR_ADDED) {
            g_ptr_array_add(transition, v);
        }
        g_ptr_array_add(s->vars, v);
        pos = ROUND_UP(pos + VAR_HEADER_LEN + nsize + dsize, VAR_ALIGN);
    }

    /*
     * A variable whose deletion began while its new copy was written:
     * the old copy if the new one did not make it, else the new one
     */
    for (i = 0; i < transition->len; i++) {
        Edk2Var *old = g_ptr_array_index(transition, i);
        guint j;

        for (j = 0; j < s->vars->len; j++) {
            Edk2Var *v = g_ptr_array_index(s->vars, j);

            if (v != old && !strcmp(v->name, old->name) &&
                qemu_uuid_is_equal(&v->guid, &old->guid)) {
                g_ptr_array_remove(s->vars, old);
                break;
            }
        }
    }
    for (i = 0; i < s->vars->len; i++) {
        Edk2Var *v = g_ptr_array_index(s->vars, i);

        if (edk2_varstore_find(s, v->name, &v->guid) != i) {
            g_autofree char *g = qemu_uuid_unparse_strdup(&v->guid);

            error_setg(errp, "The variable store holds variable '%s' of "
                       "vendor %s twice", v->name, g);
            return NULL;
        }
    }
    s->image = g_byte_array_sized_new(len);
    g_byte_array_append(s->image, buf, len);
    return g_steal_pointer(&s);
}

/* ---- A new store, and writing ------------------------------------------- */

Edk2VarStore *edk2_varstore_new(void)
{
    Edk2VarStore *s = g_new0(Edk2VarStore, 1);
    uint8_t *p;
    QemuUUID g;
    uint16_t sum = 0;
    size_t i;

    s->vars = g_ptr_array_new_with_free_func(edk2_var_free);
    s->image = g_byte_array_sized_new(EDK2_VARSTORE_4M_SIZE);
    g_byte_array_set_size(s->image, EDK2_VARSTORE_4M_SIZE);
    p = s->image->data;
    memset(p, 0xff, EDK2_VARSTORE_4M_SIZE);

    /* The firmware volume: the whole flash, in 4 KiB blocks */
    memset(p, 0, FV_HEADER_LEN);
    qemu_uuid_parse(NV_DATA_FV_GUID, &g);
    guid_to_efi(p + 16, &g);
    stq_le_p(p + 32, EDK2_VARSTORE_4M_SIZE);
    stl_le_p(p + 40, FV_SIGNATURE);
    stl_le_p(p + 44, 0x0004feff);   /* EFI_FVB2 attributes, as OVMF's */
    stw_le_p(p + 48, FV_HEADER_LEN);
    p[55] = 2;                      /* revision */
    stl_le_p(p + 56, EDK2_VARSTORE_4M_SIZE / OVMF_4M_BLOCK_SIZE);
    stl_le_p(p + 60, OVMF_4M_BLOCK_SIZE);
    for (i = 0; i < FV_HEADER_LEN; i += 2) {
        sum += lduw_le_p(p + i);
    }
    stw_le_p(p + 50, -sum);

    /* The variable store */
    memset(p + FV_HEADER_LEN, 0, VARSTORE_HEADER_LEN);
    qemu_uuid_parse(AUTH_VARIABLE_GUID, &g);
    guid_to_efi(p + FV_HEADER_LEN, &g);
    stl_le_p(p + FV_HEADER_LEN + 16, OVMF_4M_VARSTORE_SIZE);
    p[FV_HEADER_LEN + 20] = VARSTORE_FORMATTED;
    p[FV_HEADER_LEN + 21] = VARSTORE_HEALTHY;
    s->start = FV_HEADER_LEN + VARSTORE_HEADER_LEN;
    s->end = FV_HEADER_LEN + OVMF_4M_VARSTORE_SIZE;

    s->ftw = OVMF_4M_FTW;
    s->ftw_size = OVMF_4M_FTW_SIZE;
    ftw_init(p + s->ftw, s->ftw_size);
    return s;
}

GByteArray *edk2_varstore_serialize(Edk2VarStore *s, Error **errp)
{
    g_autoptr(GByteArray) out = g_byte_array_sized_new(s->image->len);
    size_t pos = s->start;
    guint i;

    g_byte_array_append(out, s->image->data, s->image->len);
    memset(out->data + s->start, 0xff, s->end - s->start);
    for (i = 0; i < s->vars->len; i++) {
        Edk2Var *v = g_ptr_array_index(s->vars, i);
        g_autofree uint8_t *name = NULL;
        size_t nsize, need;
        uint8_t *h;

        name = name_to_ucs2(v->name, &nsize, errp);
        if (!name) {
            return NULL;
        }
        need = VAR_HEADER_LEN + nsize + v->len;
        if (need > s->end - pos) {
            error_setg(errp, "The variables do not fit in the variable "
                       "store (%zu octets): variable '%s' would end at "
                       "offset 0x%zx", s->end - s->start, v->name,
                       pos + need);
            return NULL;
        }
        h = out->data + pos;
        stw_le_p(h, VAR_START_ID);
        h[2] = VAR_ADDED;
        h[3] = 0;
        stl_le_p(h + 4, v->attr);
        stq_le_p(h + 8, v->count);
        memcpy(h + 16, v->time, EDK2_TIME_LEN);
        stl_le_p(h + 32, v->pkidx);
        stl_le_p(h + 36, nsize);
        stl_le_p(h + 40, v->len);
        guid_to_efi(h + 44, &v->guid);
        memcpy(h + VAR_HEADER_LEN, name, nsize);
        if (v->len) {
            memcpy(h + VAR_HEADER_LEN + nsize, v->data, v->len);
        }
        pos = ROUND_UP(pos + need, VAR_ALIGN);
        pos = MIN(pos, s->end);
    }
    /*
     * No fault-tolerant write may replay an older copy of the store
     * over this one: its working block starts empty
     */
    if (s->ftw) {
        ftw_init(out->data + s->ftw, s->ftw_size);
    }
    return g_steal_pointer(&out);
}

/* ---- QEMU's JSON variable store (qapi/uefi.json) ------------------------ */

static bool time_is_zero(const uint8_t *time)
{
    return buffer_is_zero(time, EDK2_TIME_LEN);
}

/* @len octets at @p as lowercase hexadecimal digits, as the JSON has it */
static char *to_hex(const uint8_t *p, size_t len)
{
    return g_string_free(qemu_hexdump_line(NULL, p, len, 0, 0), false);
}

UefiVarStore *edk2_varstore_to_qapi(Edk2VarStore *s)
{
    UefiVarStore *q = g_new0(UefiVarStore, 1);
    UefiVariableList **tail = &q->variables;
    guint i;

    q->version = 2;
    for (i = 0; i < s->vars->len; i++) {
        Edk2Var *v = g_ptr_array_index(s->vars, i);
        UefiVariable *u = g_new0(UefiVariable, 1);

        u->guid = qemu_uuid_unparse_strdup(&v->guid);
        u->name = g_strdup(v->name);
        u->attr = v->attr;
        u->data = to_hex(v->data, v->len);
        if (!time_is_zero(v->time)) {
            u->time = to_hex(v->time, EDK2_TIME_LEN);
        }
        QAPI_LIST_APPEND(tail, u);
    }
    return q;
}

/* The hexadecimal string @hex into *@out; NULL with @errp set if not */
static uint8_t *parse_hex(const char *hex, size_t *len, Error **errp)
{
    size_t n = strlen(hex), i;
    g_autofree uint8_t *b = NULL;

    if (n % 2) {
        error_setg(errp, "an odd number of hexadecimal digits");
        return NULL;
    }
    b = g_malloc(n / 2 + 1);
    for (i = 0; i < n / 2; i++) {
        int hi = g_ascii_xdigit_value(hex[2 * i]);
        int lo = g_ascii_xdigit_value(hex[2 * i + 1]);

        if (hi < 0 || lo < 0) {
            error_setg(errp, "'%c%c' is not a hexadecimal octet",
                       hex[2 * i], hex[2 * i + 1]);
            return NULL;
        }
        b[i] = hi << 4 | lo;
    }
    *len = n / 2;
    return g_steal_pointer(&b);
}

/* Add variable @u of a JSON store to @s */
static bool var_from_qapi(Edk2VarStore *s, UefiVariable *u, Error **errp)
{
    g_autofree uint8_t *data = NULL, *time = NULL;
    size_t len, tlen;
    QemuUUID guid;

    if (qemu_uuid_parse(u->guid, &guid) < 0) {
        error_setg(errp, "'%s' is not a GUID", u->guid);
        return false;
    }
    if (u->attr < 0 || u->attr > UINT32_MAX) {
        error_setg(errp, "attributes %" PRId64 " out of range", u->attr);
        return false;
    }
    data = parse_hex(u->data, &len, errp);
    if (!data) {
        error_prepend(errp, "data: ");
        return false;
    }
    if (u->time) {
        time = parse_hex(u->time, &tlen, errp);
        if (!time) {
            error_prepend(errp, "time: ");
            return false;
        }
        if (tlen != EDK2_TIME_LEN) {
            error_setg(errp, "time of %zu octets, not %d", tlen,
                       EDK2_TIME_LEN);
            return false;
        }
    }
    if (edk2_varstore_find(s, u->name, &guid) >= 0) {
        error_setg(errp, "given twice");
        return false;
    }
    return edk2_varstore_set(s, u->name, &guid, u->attr, time, data, len,
                             errp);
}

bool edk2_varstore_from_qapi(Edk2VarStore *s, UefiVarStore *q, Error **errp)
{
    g_autoptr(GPtrArray) vars = NULL;
    UefiVariableList *l;

    if (q->version != 2) {
        error_setg(errp, "Version %" PRId64 " of the JSON variable store; "
                   "this version reads version 2", q->version);
        return false;
    }
    vars = s->vars;
    s->vars = g_ptr_array_new_with_free_func(edk2_var_free);
    for (l = q->variables; l; l = l->next) {
        Error *err = NULL;

        if (!var_from_qapi(s, l->value, &err)) {
            error_propagate_prepend(errp, err, "Variable '%s': ",
                                    l->value->name);
            g_ptr_array_unref(s->vars);
            s->vars = g_steal_pointer(&vars);
            return false;
        }
    }
    return true;
}
