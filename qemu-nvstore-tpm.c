/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * qemu-nvstore tpm: the state of the TPM that the libtpms backend
 * (-tpmdev libtpms) keeps in an nvstore image, in blobs named as swtpm
 * names its state files ("tpm2-00.permall").  Inspected and provisioned
 * by libtpms run in-process (qemu-nvstore-tpm2.c), moved to and from
 * swtpm's state directory and linear file (util/swtpm-state.c).  Every
 * change is one commit.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qobject/qdict.h"
#include "qobject/qjson.h"
#include "qobject/qlist.h"
#include "qobject/qstring.h"
#include "qemu/bswap.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"
#include "qemu/swtpm-state.h"
#include "block/nvstore.h"
#ifdef CONFIG_LIBTPMS
#include <libtpms/tpm_library.h>
#include "qemu-nvstore-tpm2.h"
#endif
#ifdef CONFIG_GNUTLS
#include "crypto/tpm-ek-cert.h"
#endif
#include "qemu-nvstore.h"

/* The blob names of a TPM 2.0's and a TPM 1.2's states */
#define NVS_TPM2_PREFIX         "tpm2-00."
#define NVS_TPM12_PREFIX        "tpm-00."

/* libtpms' TPM 2.0 permanent state: u16 version, u32 magic */
#define NVS_TPM2_PERMALL_MAGIC  0xab364723

/* The EKs and their certificates (TCG EK Credential Profile 2.0, 2.2.1) */
#define NVS_EK_RSA_HANDLE       0x81010001
#define NVS_EK_ECC_HANDLE       0x81010002
#define NVS_EK_RSA_CERT_INDEX   0x01c00002
#define NVS_EK_ECC_CERT_INDEX   0x01c0000a
/* And the platform certificate's, where swtpm_setup writes it */
#define NVS_PLATFORM_CERT_INDEX 0x01c08000

/* What swtpm_setup defines the EK certificates' indices with */
#define NVS_EK_CERT_NV_ATTRS \
    (TPMA_NV_PLATFORMCREATE | TPMA_NV_NO_DA | TPMA_NV_AUTHREAD | \
     TPMA_NV_OWNERREAD | TPMA_NV_PPREAD | TPMA_NV_PPWRITE)

/* The TPM's identity in its EK certificates, as swtpm_setup gives it */
#define NVS_EK_CERT_MANUFACTURER "id:00001014"
#define NVS_EK_CERT_MODEL       "swtpm"

/* The TPM state of an image */
typedef struct NvsTpmState {
    /* "tpm2-00." or "tpm-00."; NULL if the image holds no TPM state */
    const char *prefix;
    /* libtpms' data of each state, NULL for none */
    GBytes *states[SWTPM_STATE__MAX];
    /* The names of every TPM blob of the image */
    GPtrArray *names;
} NvsTpmState;

static void nvs_tpm_state_clear(NvsTpmState *s)
{
    int i;

    for (i = 0; i < SWTPM_STATE__MAX; i++) {
        g_clear_pointer(&s->states[i], g_bytes_unref);
    }
    g_clear_pointer(&s->names, g_ptr_array_unref);
}

/* Whether @name is the name of a TPM state blob, and of which version */
static const char *nvs_tpm_prefix_of(const char *name)
{
    if (g_str_has_prefix(name, NVS_TPM2_PREFIX)) {
        return NVS_TPM2_PREFIX;
    }
    if (g_str_has_prefix(name, NVS_TPM12_PREFIX)) {
        return NVS_TPM12_PREFIX;
    }
    return NULL;
}

static const char *nvs_tpm_version_str(const char *prefix)
{
    return !strcmp(prefix, NVS_TPM2_PREFIX) ? "2.0" : "1.2";
}

/* Read the TPM state of the image @blk into @s */
static bool nvs_tpm_read(BlockBackend *blk, NvsTpmState *s)
{
    g_auto(GStrv) names = NULL;
    Error *err = NULL;
    int i;

    memset(s, 0, sizeof(*s));
    s->names = g_ptr_array_new_with_free_func(g_free);
    names = nvstore_blob_list(blk, &err);
    if (!names) {
        error_report_err(err);
        return false;
    }
    for (i = 0; names[i]; i++) {
        const char *prefix = nvs_tpm_prefix_of(names[i]);

        if (!prefix) {
            continue;
        }
        if (s->prefix && strcmp(s->prefix, prefix)) {
            error_report("The image holds the states of a TPM 1.2 and of a "
                         "TPM 2.0; 'tpm reset' deletes both");
            return false;
        }
        s->prefix = prefix;
        g_ptr_array_add(s->names, g_strdup(names[i]));
    }
    for (i = 0; s->prefix && i < SWTPM_STATE__MAX; i++) {
        g_autofree char *name = g_strconcat(s->prefix, swtpm_state_names[i],
                                            NULL);
        NvstoreBlobInfo info;
        uint8_t *data;
        size_t len;
        int ret;

        ret = nvstore_blob_get_info(blk, name, &info, &err);
        if (ret == -ENOENT) {
            error_free(err);
            err = NULL;
            continue;
        }
        if (ret < 0) {
            error_report_err(err);
            return false;
        }
        if (strcmp(info.type, NVSTORE_BLOB_TYPE_TPM)) {
            error_report("Blob '%s' has type '%s', not '%s'", name,
                         info.type, NVSTORE_BLOB_TYPE_TPM);
            nvstore_blob_info_clear(&info);
            return false;
        }
        if (nvstore_blob_read(blk, name, &data, &len, &err) < 0) {
            error_report_err(err);
            nvstore_blob_info_clear(&info);
            return false;
        }
        if (info.has_realsize) {
            len = MIN(len, info.realsize);
        }
        nvstore_blob_info_clear(&info);
        s->states[i] = g_bytes_new_take(data, len);
    }
    return true;
}

/*
 * Commit @states (of a TPM of blob prefix @prefix) as the image's TPM
 * state, deleting every other TPM blob of @old; one commit
 */
static int nvs_tpm_commit(BlockBackend *blk, const NvsTpmState *old,
                          const char *prefix, GBytes *const *states)
{
    g_autoptr(GArray) updates = g_array_new(false, true,
                                            sizeof(NvstoreBlobUpdate));
    g_autoptr(GPtrArray) keep = g_ptr_array_new_with_free_func(g_free);
    Error *err = NULL;
    guint i, j;

    for (i = 0; states && i < SWTPM_STATE__MAX; i++) {
        char *name;
        size_t len;
        NvstoreBlobUpdate u = { .type = NVSTORE_BLOB_TYPE_TPM };

        if (!states[i]) {
            continue;
        }
        name = g_strconcat(prefix, swtpm_state_names[i], NULL);
        g_ptr_array_add(keep, name);
        u.name = name;
        u.data = g_bytes_get_data(states[i], &len);
        u.len = len;
        g_array_append_val(updates, u);
    }
    for (i = 0; i < old->names->len; i++) {
        const char *name = g_ptr_array_index(old->names, i);
        NvstoreBlobUpdate u = { .name = name, .remove = true };

        for (j = 0; j < updates->len; j++) {
            if (!strcmp(g_array_index(updates, NvstoreBlobUpdate, j).name,
                        name)) {
                break;
            }
        }
        if (j == updates->len) {
            g_array_append_val(updates, u);
        }
    }
    if (!updates->len) {
        return NVS_EXIT_OK;
    }
    if (nvstore_blob_commit(blk, (NvstoreBlobUpdate *)updates->data,
                            updates->len, &err) < 0) {
        error_report_err(err);
        return NVS_EXIT_ERROR;
    }
    return NVS_EXIT_OK;
}

/* Whether @data is libtpms' permanent state of a TPM 2.0 */
static bool nvs_tpm_is_tpm2_permall(const uint8_t *data, size_t len)
{
    return len >= 6 && ldl_be_p(data + 2) == NVS_TPM2_PERMALL_MAGIC;
}

/* ---- swtpm's formats ----------------------------------------------------- */

static bool nvs_tpm_format(const NvsOpts *o, bool *linear)
{
    if (!o->format) {
        error_report("--format swtpm-dir or --format swtpm-linear is "
                     "needed");
        return false;
    }
    if (strcmp(o->format, "swtpm-dir") && strcmp(o->format, "swtpm-linear")) {
        error_report("--format must be 'swtpm-dir' or 'swtpm-linear', not "
                     "'%s'", o->format);
        return false;
    }
    *linear = !strcmp(o->format, "swtpm-linear");
    return true;
}

/*
 * Lock @path against swtpm, which takes an fcntl() write lock on it
 * while it uses the state: a write lock to write the state (@path
 * created if need be), a read lock to read it (none if @path does not
 * exist: no swtpm holds it).  Fails if a swtpm is using it.  Returns the
 * descriptor that holds the lock, INT_MAX for no lock, -1 on failure.
 */
static int nvs_tpm_lock(const char *path, const char *what, bool write)
{
    int fd = write ? qemu_open_old(path, O_RDWR | O_CREAT, 0640) :
                     qemu_open_old(path, O_RDONLY);
    int ret;

    if (fd < 0 && !write && errno == ENOENT) {
        return INT_MAX;
    }
    if (fd < 0) {
        error_report("Could not open '%s': %s", path, strerror(errno));
        return -1;
    }
    ret = qemu_lock_fd(fd, 0, 0, write);
    if (ret < 0) {
        error_report("%s is in use (by swtpm?): %s", what, strerror(-ret));
        close(fd);
        return -1;
    }
    return fd;
}

static void nvs_tpm_unlock(int fd)
{
    if (fd >= 0 && fd != INT_MAX) {
        qemu_unlock_fd(fd, 0, 0);
        close(fd);
    }
}

/* Write @data to @path atomically, as swtpm writes its state files */
static bool nvs_tpm_write_file(const char *path, const void *data,
                               size_t len)
{
    g_autoptr(GError) gerr = NULL;
    struct stat st;

    /* A block device (swtpm's linear backend on a volume): in place */
    if (!stat(path, &st) && S_ISBLK(st.st_mode)) {
        return nvs_write_output(path, data, len);
    }
    if (!g_file_set_contents_full(path, data, len,
                                  G_FILE_SET_CONTENTS_CONSISTENT |
                                  G_FILE_SET_CONTENTS_DURABLE, 0640,
                                  &gerr)) {
        error_report("Could not write '%s': %s", path, gerr->message);
        return false;
    }
    return true;
}

/*
 * Read the state files of directory @dir: into @states, of @prefix
 * (NULL if it holds none)
 */
static bool nvs_tpm_read_dir_files(const char *dir, GBytes **states,
                                   const char **prefix)
{
    static const char *const prefixes[] = {
        NVS_TPM2_PREFIX, NVS_TPM12_PREFIX
    };
    size_t p;
    int i;

    *prefix = NULL;
    for (p = 0; p < ARRAY_SIZE(prefixes); p++) {
        for (i = 0; i < SWTPM_STATE__MAX; i++) {
            g_autofree char *path = g_strdup_printf(
                "%s/%s%s", dir, prefixes[p], swtpm_state_names[i]);
            g_autoptr(GError) gerr = NULL;
            const uint8_t *data;
            size_t len;
            gchar *contents;
            gsize clen;
            Error *err = NULL;

            if (!g_file_get_contents(path, &contents, &clen, &gerr)) {
                if (g_error_matches(gerr, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
                    continue;
                }
                error_report("Could not read '%s': %s", path, gerr->message);
                return false;
            }
            if (*prefix && *prefix != prefixes[p]) {
                g_free(contents);
                error_report("'%s' holds the states of a TPM 1.2 and of a "
                             "TPM 2.0", dir);
                return false;
            }
            *prefix = prefixes[p];
            if (!swtpm_blob_unwrap((uint8_t *)contents, clen, &data, &len,
                                   &err)) {
                error_reportf_err(err, "'%s': ", path);
                g_free(contents);
                return false;
            }
            states[i] = g_bytes_new(data, len);
            g_free(contents);
        }
    }
    return true;
}

/* @s's states as swtpm stores them: each wrapped in its blob header */
static GBytes *nvs_tpm_wrap(GBytes *state)
{
    size_t len;
    const uint8_t *d = g_bytes_get_data(state, &len);

    return g_byte_array_free_to_bytes(swtpm_blob_wrap(d, len));
}

/* Write the TPM 2.0 state @s to swtpm's linear file @dest */
static bool nvs_tpm_write_linear(const NvsTpmState *s, const char *dest)
{
    GBytes *wrapped[SWTPM_STATE__MAX] = { NULL };
    g_autoptr(GByteArray) file = NULL;
    bool ok;
    int lock, i;

    if (strcmp(s->prefix, NVS_TPM2_PREFIX)) {
        error_report("swtpm-linear holds a TPM 2.0's state; this is a "
                     "TPM 1.2's (use swtpm-dir)");
        return false;
    }
    for (i = 0; i < SWTPM_STATE__MAX; i++) {
        wrapped[i] = s->states[i] ? nvs_tpm_wrap(s->states[i]) : NULL;
    }
    file = swtpm_linear_build(wrapped);
    for (i = 0; i < SWTPM_STATE__MAX; i++) {
        g_clear_pointer(&wrapped[i], g_bytes_unref);
    }
    lock = nvs_tpm_lock(dest, dest, true);
    ok = lock >= 0 && nvs_tpm_write_file(dest, file->data, file->len);
    nvs_tpm_unlock(lock);
    return ok;
}

/*
 * Write the state @s into swtpm's state directory @dest: every state
 * file of the TPM, the volatile one too, is replaced or deleted
 */
static bool nvs_tpm_write_dir(const NvsTpmState *s, const char *dest)
{
    g_autofree char *lockpath = g_strdup_printf("%s/.lock", dest);
    bool ok = true;
    int lock, i;

    if (g_mkdir_with_parents(dest, 0750) < 0) {
        error_report("Could not create '%s': %s", dest, strerror(errno));
        return false;
    }
    lock = nvs_tpm_lock(lockpath, dest, true);
    if (lock < 0) {
        return false;
    }
    /* The states it does not hold first, the permanent state last */
    for (i = SWTPM_STATE__MAX - 1; ok && i >= 0; i--) {
        g_autofree char *path = g_strdup_printf("%s/%s%s", dest, s->prefix,
                                                swtpm_state_names[i]);
        g_autoptr(GBytes) w = NULL;
        size_t len;
        const void *d;

        if (!s->states[i]) {
            if (unlink(path) < 0 && errno != ENOENT) {
                error_report("Could not delete '%s': %s", path,
                             strerror(errno));
                ok = false;
            }
            continue;
        }
        w = nvs_tpm_wrap(s->states[i]);
        d = g_bytes_get_data(w, &len);
        ok = nvs_tpm_write_file(path, d, len);
    }
    nvs_tpm_unlock(lock);
    return ok;
}

/* Read swtpm's state directory @dir, as nvs_tpm_read_dir_files() */
static bool nvs_tpm_read_dir(const char *dir, GBytes **states,
                             const char **prefix)
{
    g_autofree char *lockpath = g_strdup_printf("%s/.lock", dir);
    bool ok;
    int lock;

    if (!g_file_test(dir, G_FILE_TEST_IS_DIR)) {
        error_report("'%s' is not a directory", dir);
        return false;
    }
    lock = nvs_tpm_lock(lockpath, dir, false);
    ok = lock >= 0 && nvs_tpm_read_dir_files(dir, states, prefix);
    nvs_tpm_unlock(lock);
    return ok;
}

/* Read swtpm's linear file @file: into @states, of a TPM 2.0 (@prefix) */
static bool nvs_tpm_read_linear(const char *file, GBytes **states,
                                const char **prefix)
{
    GBytes *wrapped[SWTPM_STATE__MAX] = { NULL };
    g_autoptr(GByteArray) in = NULL;
    Error *err = NULL;
    int lock, i;

    lock = nvs_tpm_lock(file, file, false);
    in = lock >= 0 ? nvs_read_input(file) : NULL;
    nvs_tpm_unlock(lock);
    if (!in) {
        return false;
    }
    if (!swtpm_linear_parse(in->data, in->len, wrapped, &err)) {
        error_reportf_err(err, "'%s': ", file);
        return false;
    }
    for (i = 0; i < SWTPM_STATE__MAX; i++) {
        const uint8_t *d;
        size_t len;

        if (!wrapped[i]) {
            continue;
        }
        if (!err && swtpm_blob_unwrap(g_bytes_get_data(wrapped[i], NULL),
                                      g_bytes_get_size(wrapped[i]), &d,
                                      &len, &err)) {
            states[i] = g_bytes_new(d, len);
        }
        g_bytes_unref(wrapped[i]);
    }
    if (err) {
        error_reportf_err(err, "'%s': ", file);
        return false;
    }
    *prefix = NVS_TPM2_PREFIX;
    return true;
}

static int nvs_tpm_export(const NvsCmd *cmd, int argc, char **argv)
{
    const char *own_values[256] = { NULL };
    NvsOpts o = { 0 };
    NvsTpmState s;
    BlockBackend *blk;
    const char *dest;
    bool linear, ok = false;
    int first, i;

    first = nvs_parse(cmd, argc, argv, "", own_values, NULL, &o);
    nvs_operands(cmd, argc, first, 1, 1);
    if (!nvs_tpm_format(&o, &linear)) {
        return NVS_EXIT_ERROR;
    }
    dest = argv[first + 1];
    blk = nvs_open(&o, argv[first], false);
    if (!blk) {
        return NVS_EXIT_ERROR;
    }
    if (!nvs_tpm_read(blk, &s)) {
        goto out;
    }
    if (!s.states[SWTPM_STATE_PERMALL]) {
        error_report("The image holds no TPM state");
        goto out;
    }
    ok = linear ? nvs_tpm_write_linear(&s, dest) : nvs_tpm_write_dir(&s, dest);
    if (ok) {
        for (i = 0; i < SWTPM_STATE__MAX; i++) {
            if (s.states[i]) {
                printf("exported %s%s: %zu bytes\n", s.prefix,
                       swtpm_state_names[i], g_bytes_get_size(s.states[i]));
            }
        }
    }
out:
    nvs_tpm_state_clear(&s);
    blk_unref(blk);
    return ok ? NVS_EXIT_OK : NVS_EXIT_ERROR;
}

static int nvs_tpm_import(const NvsCmd *cmd, int argc, char **argv)
{
    const char *own_values[256] = { NULL };
    GBytes *states[SWTPM_STATE__MAX] = { NULL };
    NvsOpts o = { 0 };
    NvsTpmState s = { 0 };
    BlockBackend *blk = NULL;
    const char *src, *prefix = NULL;
    const uint8_t *permall;
    size_t len;
    bool linear;
    int first, i, ret = NVS_EXIT_ERROR;

    first = nvs_parse(cmd, argc, argv, "", own_values, NULL, &o);
    nvs_operands(cmd, argc, first, 1, 1);
    if (!nvs_tpm_format(&o, &linear)) {
        return NVS_EXIT_ERROR;
    }
    src = argv[first + 1];
    if (!(linear ? nvs_tpm_read_linear(src, states, &prefix) :
                   nvs_tpm_read_dir(src, states, &prefix))) {
        goto out;
    }
    if (!states[SWTPM_STATE_PERMALL]) {
        error_report("'%s' holds no TPM state (no permall)", src);
        goto out;
    }
    permall = g_bytes_get_data(states[SWTPM_STATE_PERMALL], &len);
    if (!strcmp(prefix, NVS_TPM2_PREFIX) &&
        !nvs_tpm_is_tpm2_permall(permall, len)) {
        error_report("'%s': the permanent state is not a TPM 2.0's as "
                     "libtpms writes it (encrypted by swtpm --key?)", src);
        goto out;
    }
    /* A TPM starts without a volatile state, as after a power cycle */
    if (states[SWTPM_STATE_VOLATILE]) {
        printf("not imported: %svolatilestate (the TPM starts as after a "
               "power cycle)\n", prefix);
        g_clear_pointer(&states[SWTPM_STATE_VOLATILE], g_bytes_unref);
    }

    blk = nvs_open(&o, argv[first], true);
    if (!blk || !nvs_tpm_read(blk, &s)) {
        goto out;
    }
    if (s.prefix && strcmp(s.prefix, prefix)) {
        error_report("The image holds a TPM %s's state, '%s' a TPM %s's; "
                     "'tpm reset' deletes the image's first",
                     nvs_tpm_version_str(s.prefix), src,
                     nvs_tpm_version_str(prefix));
        goto out;
    }
    ret = nvs_tpm_commit(blk, &s, prefix, states);
    if (ret == NVS_EXIT_OK) {
        for (i = 0; i < SWTPM_STATE__MAX; i++) {
            if (states[i]) {
                printf("imported %s%s: %zu bytes\n", prefix,
                       swtpm_state_names[i], g_bytes_get_size(states[i]));
            }
        }
    }
out:
    for (i = 0; i < SWTPM_STATE__MAX; i++) {
        g_clear_pointer(&states[i], g_bytes_unref);
    }
    if (s.names) {
        nvs_tpm_state_clear(&s);
    }
    blk_unref(blk);
    return ret;
}

static int nvs_tpm_reset(const NvsCmd *cmd, int argc, char **argv)
{
    const char *own_values[256] = { NULL };
    NvsOpts o = { 0 };
    NvsTpmState s;
    BlockBackend *blk;
    int first, ret = NVS_EXIT_ERROR;
    guint i;

    first = nvs_parse(cmd, argc, argv, "", own_values, NULL, &o);
    nvs_operands(cmd, argc, first, 0, 0);
    blk = nvs_open(&o, argv[first], true);
    if (!blk) {
        return NVS_EXIT_ERROR;
    }
    if (nvs_tpm_read(blk, &s)) {
        ret = nvs_tpm_commit(blk, &s, NULL, NULL);
        if (ret == NVS_EXIT_OK) {
            for (i = 0; i < s.names->len; i++) {
                printf("deleted %s\n",
                       (char *)g_ptr_array_index(s.names, i));
            }
            if (!s.names->len) {
                printf("The image holds no TPM state\n");
            }
        }
    }
    nvs_tpm_state_clear(&s);
    blk_unref(blk);
    return ret;
}

/* ---- What libtpms tells: info and setup -------------------------------- */

#ifdef CONFIG_LIBTPMS

/* qdict_put_str() of @s, which is freed */
static void nvs_put_take(QDict *d, const char *key, char *s)
{
    qdict_put_str(d, key, s);
    g_free(s);
}

static char *nvs_hex(GBytes *b)
{
    size_t len, i;
    const uint8_t *p = b ? g_bytes_get_data(b, &len) : NULL;
    GString *s = g_string_new(NULL);

    for (i = 0; p && i < len; i++) {
        g_string_append_printf(s, "%02x", p[i]);
    }
    return g_string_free(s, false);
}

/* TPMA_NV as tpm2-tools' tpm2_nvreadpublic writes it */
static char *nvs_nv_attr_str(uint32_t attr)
{
    static const char *const names[32] = {
        [0] = "ppwrite", [1] = "ownerwrite", [2] = "authwrite",
        [3] = "policywrite", [10] = "policy_delete", [11] = "writelocked",
        [12] = "writeall", [13] = "writedefine", [14] = "write_stclear",
        [15] = "globallock", [16] = "ppread", [17] = "ownerread",
        [18] = "authread", [19] = "policyread", [25] = "no_da",
        [26] = "orderly", [27] = "clear_stclear", [28] = "readlocked",
        [29] = "written", [30] = "platformcreate", [31] = "read_stclear",
    };
    static const char *const nt[16] = {
        [1] = "counter", [2] = "bits", [4] = "extend", [8] = "pin_fail",
        [9] = "pin_pass",
    };
    unsigned kind = (attr & TPMA_NV_TPM_NT_MASK) >> TPMA_NV_TPM_NT_SHIFT;
    GString *s = g_string_new(NULL);
    int i;

    for (i = 0; i < 32; i++) {
        if (!(attr & (1u << i)) ||
            (i >= TPMA_NV_TPM_NT_SHIFT && i < TPMA_NV_TPM_NT_SHIFT + 4)) {
            continue;
        }
        g_string_append_printf(s, "%s%s", s->len ? "|" : "",
                               names[i] ?: "reserved");
        if (i == 3 && kind) {
            g_string_append_printf(s, "|nt=%s", nt[kind] ?: "reserved");
        }
    }
    if (kind && !(attr & 0xf)) {
        g_string_append_printf(s, "%snt=%s", s->len ? "|" : "",
                               nt[kind] ?: "reserved");
    }
    return g_string_free(s, false);
}

static const char *nvs_key_type_str(uint16_t type)
{
    switch (type) {
    case TPM2_ALG_RSA:
        return "rsa";
    case TPM2_ALG_ECC:
        return "ecc";
    case TPM2_ALG_KEYEDHASH:
        return "keyedhash";
    case TPM2_ALG_SYMCIPHER:
        return "symcipher";
    default:
        return "unknown";
    }
}

/* What an NV index that holds an EK certificate is for, or NULL */
static const char *nvs_ek_cert_index_str(uint32_t index)
{
    switch (index) {
    case 0x01c00002:
        return "EK certificate, RSA 2048";
    case 0x01c0000a:
        return "EK certificate, ECC NIST P-256";
    case 0x01c00012:
        return "EK certificate, RSA 2048 (high range)";
    case 0x01c00014:
        return "EK certificate, ECC NIST P-256 (high range)";
    case 0x01c00016:
        return "EK certificate, ECC NIST P-384";
    case 0x01c00018:
        return "EK certificate, ECC NIST P-521";
    case 0x01c0001c:
        return "EK certificate, RSA 3072";
    case 0x01c0001e:
        return "EK certificate, RSA 4096";
    case 0x01c08000:
        return "platform certificate";
    default:
        return NULL;
    }
}

/* The manufacturer's four characters, printable */
static char *nvs_tpm_manufacturer_str(uint32_t m)
{
    char s[5];
    int i;

    for (i = 0; i < 4; i++) {
        char c = m >> (24 - 8 * i);

        s[i] = g_ascii_isprint(c) ? c : ' ';
    }
    s[4] = 0;
    return g_strdup(g_strchomp(s));
}

/* libtpms' runtime profile (libtpms 0.10 and later), or NULL */
static char *nvs_tpm_profile(void)
{
    /* TPMLIB_INFO_RUNTIME_PROFILE of libtpms 0.10; earlier ones ignore it */
    char *json = TPMLIB_GetInfo(1 << 5);
    QObject *obj = json ? qobject_from_json(json, NULL) : NULL;
    QDict *d = qobject_to(QDict, obj);
    QDict *p = d ? qdict_get_qdict(d, "RuntimeProfile") : NULL;
    char *name = g_strdup(p ? qdict_get_try_str(p, "Name") : NULL);

    qobject_unref(obj);
    free(json);
    return name;
}

/* info of a TPM 2.0's state: @d gets what libtpms says of it */
static bool nvs_tpm2_describe(GBytes *permall, QDict *d)
{
    g_autoptr(GArray) persistent = NULL;
    g_autoptr(GArray) indices = NULL;
    g_autoptr(GArray) banks = NULL;
    g_autofree char *profile = NULL;
    QList *list;
    Error *err = NULL;
    static const uint32_t props[] = {
        TPM2_PT_MANUFACTURER, TPM2_PT_LEVEL, TPM2_PT_REVISION,
        TPM2_PT_FIRMWARE_VERSION_1, TPM2_PT_FIRMWARE_VERSION_2,
    };
    uint32_t v[ARRAY_SIZE(props)];
    NvsTpm2 *t;
    guint i;

    t = nvs_tpm2_start(g_bytes_get_data(permall, NULL),
                       g_bytes_get_size(permall), &err);
    if (!t) {
        error_report_err(err);
        return false;
    }
    for (i = 0; i < ARRAY_SIZE(props); i++) {
        if (!nvs_tpm2_get_property(t, props[i], &v[i], &err)) {
            goto fail;
        }
    }
    banks = nvs_tpm2_get_pcr_banks(t, &err);
    persistent = banks ? nvs_tpm2_get_handles(t, TPM2_HT_PERSISTENT, &err)
                       : NULL;
    indices = persistent ? nvs_tpm2_get_handles(t, TPM2_HT_NV_INDEX, &err)
                         : NULL;
    if (!indices) {
        goto fail;
    }
    nvs_put_take(d, "manufacturer", nvs_tpm_manufacturer_str(v[0]));
    nvs_put_take(d, "spec",
                 g_strdup_printf("2.0, level %u, revision %u.%02u", v[1],
                                 v[2] / 100, v[2] % 100));
    nvs_put_take(d, "firmware-version",
                 g_strdup_printf("%08x.%08x", v[3], v[4]));
    profile = nvs_tpm_profile();
    if (profile) {
        qdict_put_str(d, "profile", profile);
    }

    list = qlist_new();
    for (i = 0; i < banks->len; i++) {
        NvsTpm2PcrBank *b = &g_array_index(banks, NvsTpm2PcrBank, i);

        if (b->pcrs) {
            const char *name = nvs_tpm2_hash_name(b->hash);

            qlist_append_str(list, name ?: "unknown");
        }
    }
    qdict_put(d, "pcr-banks", list);

    list = qlist_new();
    for (i = 0; i < persistent->len; i++) {
        uint32_t h = g_array_index(persistent, uint32_t, i);
        QDict *k = qdict_new();
        NvsTpm2Public pub;

        nvs_put_take(k, "handle", g_strdup_printf("0x%08x", h));
        if (!nvs_tpm2_read_public(t, h, &pub, &err)) {
            qobject_unref(k);
            qobject_unref(list);
            goto fail;
        }
        qdict_put_str(k, "type", nvs_key_type_str(pub.type));
        if (pub.type == TPM2_ALG_RSA) {
            qdict_put_int(k, "key-bits", pub.key_bits);
        } else if (pub.type == TPM2_ALG_ECC) {
            qdict_put_str(k, "curve",
                          pub.curve == TPM2_ECC_NIST_P256 ? "nist-p256" :
                          pub.curve == TPM2_ECC_NIST_P384 ? "nist-p384" :
                          "other");
        }
        nvs_put_take(k, "name", nvs_hex(pub.name));
        nvs_tpm2_public_clear(&pub);
        qlist_append(list, k);
    }
    qdict_put(d, "persistent-handles", list);

    list = qlist_new();
    for (i = 0; i < indices->len; i++) {
        uint32_t index = g_array_index(indices, uint32_t, i);
        const char *what = nvs_ek_cert_index_str(index);
        QDict *n = qdict_new();
        NvsTpm2NvPublic pub;

        if (!nvs_tpm2_nv_read_public(t, index, &pub, &err)) {
            qobject_unref(n);
            qobject_unref(list);
            goto fail;
        }
        nvs_put_take(n, "index", g_strdup_printf("0x%08x", index));
        nvs_put_take(n, "attributes", nvs_nv_attr_str(pub.attributes));
        qdict_put_int(n, "size", pub.size);
        nvs_put_take(n, "name", nvs_hex(pub.name));
        if (what) {
            qdict_put_str(n, "holds", what);
        }
        g_bytes_unref(pub.name);
        qlist_append(list, n);
    }
    qdict_put(d, "nv-indices", list);
    nvs_tpm2_abandon(t);
    return true;

fail:
    error_report_err(err);
    nvs_tpm2_abandon(t);
    return false;
}
#endif /* CONFIG_LIBTPMS */

/* Print info's @d as people read it */
static void nvs_tpm_info_print(QDict *d)
{
    const QListEntry *e;
    QList *l;

    if (!qdict_haskey(d, "version")) {
        printf("no TPM state: the next start makes a new TPM\n");
        return;
    }
    printf("TPM version: %s\n", qdict_get_str(d, "version"));
    printf("manufactured: %s\n",
           qdict_get_bool(d, "manufactured") ? "yes" : "no");
    if (qdict_haskey(d, "state-format")) {
        printf("state format: libtpms permanent state, version %" PRId64
               "\n", qdict_get_int(d, "state-format"));
    }
    QLIST_FOREACH_ENTRY(qdict_get_qlist(d, "blobs"), e) {
        QDict *b = qobject_to(QDict, qlist_entry_obj(e));

        printf("blob: %s, %" PRId64 " bytes\n", qdict_get_str(b, "name"),
               qdict_get_int(b, "size"));
    }
    if (!qdict_haskey(d, "manufacturer")) {
        return;
    }
    printf("manufacturer: %s\n", qdict_get_str(d, "manufacturer"));
    printf("specification: %s\n", qdict_get_str(d, "spec"));
    printf("firmware version: %s\n", qdict_get_str(d, "firmware-version"));
    printf("profile: %s\n", qdict_get_try_str(d, "profile") ?: "none");
    printf("PCR banks:");
    QLIST_FOREACH_ENTRY(qdict_get_qlist(d, "pcr-banks"), e) {
        printf(" %s", qstring_get_str(qobject_to(QString,
                                                 qlist_entry_obj(e))));
    }
    printf("\n");
    l = qdict_get_qlist(d, "persistent-handles");
    printf("persistent handles:%s\n", qlist_empty(l) ? " none" : "");
    QLIST_FOREACH_ENTRY(l, e) {
        QDict *k = qobject_to(QDict, qlist_entry_obj(e));
        g_autofree char *detail = NULL;

        if (qdict_haskey(k, "key-bits")) {
            detail = g_strdup_printf(" %" PRId64,
                                     qdict_get_int(k, "key-bits"));
        } else if (qdict_haskey(k, "curve")) {
            detail = g_strdup_printf(" %s", qdict_get_str(k, "curve"));
        }
        printf("  %s  %s%s  name %s\n", qdict_get_str(k, "handle"),
               qdict_get_str(k, "type"), detail ?: "",
               qdict_get_str(k, "name"));
    }
    l = qdict_get_qlist(d, "nv-indices");
    printf("NV indices:%s\n", qlist_empty(l) ? " none" : "");
    QLIST_FOREACH_ENTRY(l, e) {
        QDict *n = qobject_to(QDict, qlist_entry_obj(e));
        const char *holds = qdict_get_try_str(n, "holds");

        printf("  %s  %5" PRId64 " bytes  %s%s%s%s\n",
               qdict_get_str(n, "index"), qdict_get_int(n, "size"),
               qdict_get_str(n, "attributes"), holds ? "  (" : "",
               holds ?: "", holds ? ")" : "");
    }
}

static int nvs_tpm_info(const NvsCmd *cmd, int argc, char **argv)
{
    const char *own_values[256] = { NULL };
    g_autoptr(QDict) d = qdict_new();
    NvsOpts o = { 0 };
    NvsTpmState s;
    BlockBackend *blk;
    QList *blobs;
    int first, ret = NVS_EXIT_ERROR;
    guint i;

    first = nvs_parse(cmd, argc, argv, "", own_values, NULL, &o);
    nvs_operands(cmd, argc, first, 0, 0);
    blk = nvs_open(&o, argv[first], false);
    if (!blk) {
        return NVS_EXIT_ERROR;
    }
    if (!nvs_tpm_read(blk, &s)) {
        goto out;
    }
    if (s.prefix) {
        GBytes *permall = s.states[SWTPM_STATE_PERMALL];

        qdict_put_str(d, "version", nvs_tpm_version_str(s.prefix));
        qdict_put_bool(d, "manufactured", permall != NULL);
        blobs = qlist_new();
        for (i = 0; i < SWTPM_STATE__MAX; i++) {
            g_autofree char *name = g_strconcat(s.prefix,
                                                swtpm_state_names[i], NULL);
            QDict *b;

            if (!s.states[i]) {
                continue;
            }
            b = qdict_new();
            qdict_put_str(b, "name", name);
            qdict_put_int(b, "size", g_bytes_get_size(s.states[i]));
            qlist_append(blobs, b);
        }
        qdict_put(d, "blobs", blobs);
        if (permall && !strcmp(s.prefix, NVS_TPM2_PREFIX)) {
            if (!nvs_tpm_is_tpm2_permall(g_bytes_get_data(permall, NULL),
                                         g_bytes_get_size(permall))) {
                error_report("Blob '%spermall' is not a TPM 2.0's permanent "
                             "state as libtpms writes it", s.prefix);
                goto out;
            }
            qdict_put_int(d, "state-format",
                          lduw_be_p(g_bytes_get_data(permall, NULL)));
#ifdef CONFIG_LIBTPMS
            if (!nvs_tpm2_describe(permall, d)) {
                goto out;
            }
#else
            warn_report("Built without libtpms: only the blobs are shown");
#endif
        }
    }
    if (o.json) {
        nvs_print_json(QOBJECT(d));
    } else {
        nvs_tpm_info_print(d);
    }
    ret = NVS_EXIT_OK;
out:
    nvs_tpm_state_clear(&s);
    blk_unref(blk);
    return ret;
}

/* ---- setup ------------------------------------------------------------- */

#ifdef CONFIG_LIBTPMS

/* An EK that setup creates */
typedef struct NvsTpmEK {
    uint16_t alg;
    const char *what;
    uint32_t handle;
    uint32_t cert_index;
} NvsTpmEK;

static const NvsTpmEK nvs_tpm_eks[] = {
    { TPM2_ALG_RSA, "RSA 2048", NVS_EK_RSA_HANDLE, NVS_EK_RSA_CERT_INDEX },
    { TPM2_ALG_ECC, "ECC NIST P-256", NVS_EK_ECC_HANDLE,
      NVS_EK_ECC_CERT_INDEX },
};

/*
 * The CA that signs the EK certificates (its files' contents), and what
 * else setup's options ask of the certificates
 */
typedef struct NvsTpmCA {
    GByteArray *cert;
    GByteArray *key;
    /* Write-lock their NV indices */
    bool lock;
    /* The platform certificate's manufacturer, model, version; or NULL */
    char **platform;
} NvsTpmCA;

#ifdef CONFIG_GNUTLS
/* Write certificate @der to NV index @index as swtpm_setup writes it */
static bool nvs_tpm_write_cert(NvsTpm2 *t, uint32_t index, const char *what,
                               const uint8_t *der, size_t len, bool lock,
                               Error **errp)
{
    if (!nvs_tpm2_nv_define_write(t, index,
                                  NVS_EK_CERT_NV_ATTRS |
                                  (lock ? TPMA_NV_WRITEDEFINE : 0),
                                  der, len, errp)) {
        return false;
    }
    if (lock && !nvs_tpm2_nv_write_lock(t, index, errp)) {
        return false;
    }
    printf("%s in NV index 0x%08x, %zu bytes%s\n", what, index, len,
           lock ? ", write-locked" : "");
    return true;
}

/*
 * Sign the certificate of EK @ek (public area @pub) with @ca and write it
 * to its NV index; and for the RSA EK, the platform certificate if @ca
 * asks for one
 */
static bool nvs_tpm_ek_cert(NvsTpm2 *t, const NvsTpmEK *ek,
                            const NvsTpm2Public *pub, const NvsTpmCA *ca,
                            Error **errp)
{
    g_autofree char *what = NULL;
    g_autofree char *version = NULL;
    g_autofree uint8_t *der = NULL;
    uint32_t level, revision, fw;
    size_t der_len;
    QCryptoTPMEKCert c = {
        .ecc = ek->alg == TPM2_ALG_ECC,
        .manufacturer = NVS_EK_CERT_MANUFACTURER,
        .model = NVS_EK_CERT_MODEL,
        .spec_family = "2.0",
        .ca_cert = ca->cert->data,
        .ca_cert_len = ca->cert->len,
        .ca_key = ca->key->data,
        .ca_key_len = ca->key->len,
    };

    if (!nvs_tpm2_get_property(t, TPM2_PT_LEVEL, &level, errp) ||
        !nvs_tpm2_get_property(t, TPM2_PT_REVISION, &revision, errp) ||
        !nvs_tpm2_get_property(t, TPM2_PT_FIRMWARE_VERSION_1, &fw, errp)) {
        return false;
    }
    version = g_strdup_printf("id:%08X", fw);
    c.version = version;
    c.spec_level = level;
    c.spec_revision = revision;
    if (c.ecc) {
        c.ecc_x = g_bytes_get_data(pub->ecc_x, &c.ecc_x_len);
        c.ecc_y = g_bytes_get_data(pub->ecc_y, &c.ecc_y_len);
    } else {
        c.rsa_n = g_bytes_get_data(pub->rsa_n, &c.rsa_n_len);
        c.rsa_e = pub->rsa_e ?: 65537;
    }
    what = g_strdup_printf("EK certificate (%s)", ek->what);
    if (qcrypto_tpm_ek_cert_create(&c, &der, &der_len, errp) < 0 ||
        !nvs_tpm_write_cert(t, ek->cert_index, what, der, der_len, ca->lock,
                            errp)) {
        return false;
    }
    if (ek->alg != TPM2_ALG_RSA || !ca->platform) {
        return true;
    }
    g_clear_pointer(&der, g_free);
    c.platform = true;
    c.platform_manufacturer = ca->platform[0];
    c.platform_model = ca->platform[1];
    c.platform_version = ca->platform[2];
    return qcrypto_tpm_ek_cert_create(&c, &der, &der_len, errp) == 0 &&
           nvs_tpm_write_cert(t, NVS_PLATFORM_CERT_INDEX,
                              "Platform certificate", der, der_len,
                              ca->lock, errp);
}
#endif

/*
 * Manufacture a TPM 2.0 and provision it: its EKs, their certificates if
 * @ca, its PCR banks (@banks, @nb_banks of them).  Returns its permanent
 * state.
 */
static GBytes *nvs_tpm_manufacture(const NvsTpmCA *ca,
                                   const uint16_t *banks, size_t nb_banks,
                                   Error **errp)
{
    g_autoptr(GArray) got = NULL;
    NvsTpm2 *t;
    size_t i, j;

    t = nvs_tpm2_start(NULL, 0, errp);
    if (!t) {
        return NULL;
    }
    for (i = 0; i < ARRAY_SIZE(nvs_tpm_eks); i++) {
        const NvsTpmEK *ek = &nvs_tpm_eks[i];
        NvsTpm2Public pub;
        bool ok;

        if (!nvs_tpm2_create_ek(t, ek->alg, ek->handle, &pub, errp)) {
            goto fail;
        }
        printf("EK (%s) at persistent handle 0x%08x\n", ek->what,
               ek->handle);
        ok = true;
#ifdef CONFIG_GNUTLS
        if (ca->cert) {
            ok = nvs_tpm_ek_cert(t, ek, &pub, ca, errp);
        }
#endif
        nvs_tpm2_public_clear(&pub);
        if (!ok) {
            goto fail;
        }
    }
    if (!nvs_tpm2_pcr_allocate(t, banks, nb_banks, errp) ||
        !nvs_tpm2_restart(t, errp)) {
        goto fail;
    }
    /* Check that the allocation took effect */
    got = nvs_tpm2_get_pcr_banks(t, errp);
    if (!got) {
        goto fail;
    }
    for (i = 0; i < got->len; i++) {
        NvsTpm2PcrBank *b = &g_array_index(got, NvsTpm2PcrBank, i);
        bool want = false;

        for (j = 0; j < nb_banks; j++) {
            want |= banks[j] == b->hash;
        }
        if (want != (b->pcrs != 0)) {
            error_setg(errp, "PCR bank %s is %sallocated after "
                       "TPM2_PCR_Allocate",
                       nvs_tpm2_hash_name(b->hash) ?: "(unknown)",
                       want ? "not " : "");
            goto fail;
        }
    }
    printf("PCR banks:");
    for (j = 0; j < nb_banks; j++) {
        printf(" %s", nvs_tpm2_hash_name(banks[j]));
    }
    printf("\n");
    return nvs_tpm2_stop(t, errp);

fail:
    nvs_tpm2_abandon(t);
    return NULL;
}

static int nvs_tpm_setup(const NvsCmd *cmd, int argc, char **argv)
{
    const char *own_values[256] = { NULL };
    GBytes *states[SWTPM_STATE__MAX] = { NULL };
    g_auto(GStrv) bank_names = NULL;
    g_autofree uint16_t *banks = NULL;
    NvsTpmCA ca = { NULL };
    NvsOpts o = { 0 };
    NvsTpmState s = { 0 };
    BlockBackend *blk = NULL;
    Error *err = NULL;
    size_t nb_banks, i;
    int first, ret = NVS_EXIT_ERROR;

    first = nvs_parse(cmd, argc, argv, "", own_values, NULL, &o);
    nvs_operands(cmd, argc, first, 0, 0);
    if (!o.ca_cert != !o.ca_key) {
        nvs_usage_error("tpm setup: --ca-cert and --ca-key go together");
    }
    if (o.lock_nvram && !o.ca_cert) {
        nvs_usage_error("tpm setup: --lock-nvram locks the EK certificates' "
                        "indices; it needs --ca-cert and --ca-key");
    }
    if (o.platform_cert) {
        ca.platform = g_strsplit(o.platform_cert, ",", 3);
        if (!o.ca_cert || g_strv_length(ca.platform) != 3 ||
            !*ca.platform[0] || !*ca.platform[1] || !*ca.platform[2]) {
            g_strfreev(ca.platform);
            nvs_usage_error("tpm setup: --platform-cert takes "
                            "MANUFACTURER,MODEL,VERSION, and needs "
                            "--ca-cert and --ca-key");
        }
    }
    bank_names = g_strsplit(o.pcr_banks ?: "sha256", ",", -1);
    nb_banks = g_strv_length(bank_names);
    banks = g_new0(uint16_t, nb_banks);
    for (i = 0; i < nb_banks; i++) {
        banks[i] = nvs_tpm2_hash_by_name(bank_names[i]);
        if (!banks[i]) {
            break;
        }
    }
    if (!nb_banks || i < nb_banks) {
        char bad[32];

        /* Nothing allocated left behind, for the leak checkers */
        g_strlcpy(bad, nb_banks ? bank_names[i] : "", sizeof(bad));
        g_clear_pointer(&bank_names, g_strfreev);
        g_clear_pointer(&banks, g_free);
        g_clear_pointer(&ca.platform, g_strfreev);
        nvs_usage_error("tpm setup: --pcr-banks: unknown PCR bank '%s' "
                        "(sha1, sha256, sha384, sha512, sm3_256)", bad);
    }
#ifndef CONFIG_GNUTLS
    if (o.ca_cert) {
        error_report("Built without GnuTLS: no EK certificates");
        goto out;
    }
#endif
    if (o.ca_cert) {
        ca.cert = nvs_read_input(o.ca_cert);
        ca.key = ca.cert ? nvs_read_input(o.ca_key) : NULL;
        if (!ca.key) {
            goto out;
        }
#ifdef CONFIG_GNUTLS
        if (qcrypto_tpm_ek_ca_check(ca.cert->data, ca.cert->len,
                                    ca.key->data, ca.key->len, &err) < 0) {
            error_reportf_err(err, "tpm setup: ");
            goto out;
        }
#endif
    }

    blk = nvs_open(&o, argv[first], true);
    if (!blk || !nvs_tpm_read(blk, &s)) {
        goto out;
    }
    if (s.names->len && !o.overwrite) {
        error_report("The image holds a TPM %s's state; --overwrite "
                     "replaces it", nvs_tpm_version_str(s.prefix));
        goto out;
    }
    ca.lock = o.lock_nvram;
    states[SWTPM_STATE_PERMALL] = nvs_tpm_manufacture(&ca, banks, nb_banks,
                                                      &err);
    if (!states[SWTPM_STATE_PERMALL]) {
        error_reportf_err(err, "tpm setup: ");
        goto out;
    }
    ret = nvs_tpm_commit(blk, &s, NVS_TPM2_PREFIX, states);
    if (ret == NVS_EXIT_OK) {
        printf("TPM 2.0 manufactured: %s%s, %zu bytes\n", NVS_TPM2_PREFIX,
               swtpm_state_names[SWTPM_STATE_PERMALL],
               g_bytes_get_size(states[SWTPM_STATE_PERMALL]));
    }
out:
    g_clear_pointer(&states[SWTPM_STATE_PERMALL], g_bytes_unref);
    if (ca.cert) {
        g_byte_array_unref(ca.cert);
    }
    if (ca.key) {
        g_byte_array_unref(ca.key);
    }
    g_strfreev(ca.platform);
    if (s.names) {
        nvs_tpm_state_clear(&s);
    }
    blk_unref(blk);
    return ret;
}
#endif /* CONFIG_LIBTPMS */

/* ---- The subcommands ---------------------------------------------------- */

static const NvsCmd nvs_tpm_cmds[] = {
    {
        .name = "tpm info", .run = nvs_tpm_info,
        .synopsis = "tpm info [--output=human|json] IMAGE",
        .help = "Show the TPM state of IMAGE: the TPM's version, its blobs, "
                "and for a TPM 2.0,\nwhat libtpms reports running it: "
                "manufacturer, specification, firmware\nversion, profile, "
                "PCR banks, persistent handles (type, name) and NV\n"
                "indices (attributes, size, and which hold EK "
                "certificates).  Nothing is\nwritten.",
    }, {
        .name = "tpm export", .run = nvs_tpm_export,
        .synopsis = "tpm export --format swtpm-dir|swtpm-linear IMAGE DEST",
        .help = "Write the TPM state of IMAGE as swtpm keeps it: into "
                "directory DEST\n(swtpm --tpmstate dir=DEST; created if "
                "need be; other state files\nthere are deleted), or into "
                "the linear file DEST (swtpm --tpmstate\n"
                "backend-uri=file://DEST; a TPM 2.0 only).  Fails while "
                "a swtpm holds DEST.",
    }, {
        .name = "tpm import", .run = nvs_tpm_import, .writes = true,
        .synopsis = "tpm import --format swtpm-dir|swtpm-linear IMAGE SRC",
        .help = "Make the TPM state in swtpm's directory or linear file SRC "
                "the TPM state of\nIMAGE, in one commit.  swtpm's "
                "volatile state is not imported: the TPM\nstarts as after "
                "a power cycle.  State that swtpm encrypted is refused.",
    }, {
        .name = "tpm reset", .run = nvs_tpm_reset, .writes = true,
        .synopsis = "tpm reset IMAGE",
        .help = "Delete the TPM state of IMAGE, in one commit: the next "
                "start makes a new\nTPM, with new seeds and keys.",
#ifdef CONFIG_LIBTPMS
    }, {
        .name = "tpm setup", .run = nvs_tpm_setup, .writes = true,
        .synopsis = "tpm setup [--pcr-banks BANK[,BANK...]] "
                    "[--ca-cert FILE --ca-key FILE]\n"
                    "            [--platform-cert MANUFACTURER,MODEL,VERSION] "
                    "[--lock-nvram]\n"
                    "            [--overwrite] IMAGE",
        .help = "Manufacture a new TPM 2.0, as swtpm_setup does: an RSA "
                "2048 EK at persistent\nhandle 0x81010001 and an ECC NIST "
                "P-256 EK at 0x81010002 (the TCG default\ntemplates), the "
                "PCR banks of --pcr-banks (default: sha256) allocated.  "
                "With\n--ca-cert and --ca-key (PEM or DER), EK "
                "certificates signed by that CA in\nNV indices 0x01c00002 "
                "and 0x01c0000a, and with --platform-cert a platform\n"
                "certificate in 0x01c08000; --lock-nvram write-locks them "
                "for good.\n--overwrite replaces a TPM state that the image "
                "holds.  One commit.",
#endif
    },
    { NULL }
};

int nvs_cmd_tpm(const NvsCmd *cmd, int argc, char **argv)
{
    return nvs_run_subcommand(cmd, nvs_tpm_cmds, argc, argv);
}
