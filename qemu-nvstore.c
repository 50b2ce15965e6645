/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * qemu-nvstore: the blobs of an nvstore image, managed without a running
 * VM (docs/tools/qemu-nvstore.rst).  A sibling of qemu-img: the block
 * layer runs in-process, the image is opened (and locked) as qemu-img
 * opens it, and every change is one atomic commit through the device API
 * (include/block/nvstore.h).
 *
 * This file: the blob commands, and what every command shares (options,
 * opening the image, files).  The UEFI variable commands are in
 * qemu-nvstore-vars.c.
 */

#include "qemu/osdep.h"
#include <getopt.h>
#include "qemu/help-texts.h"
#include "qemu-version.h"
#include "qapi/error.h"
#include "qobject/qdict.h"
#include "qobject/qjson.h"
#include "qobject/qlist.h"
#include "qobject/qstring.h"
#include "qemu/config-file.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "qemu/module.h"
#include "qemu/option.h"
#include "qemu/sockets.h"
#include "qom/object_interfaces.h"
#include "system/block-backend.h"
#include "block/block_int.h"
#include "block/nvstore.h"
#include "crypto/init.h"
#include "trace/control.h"
#include "qemu-nvstore.h"

#define QEMU_NVSTORE_VERSION "qemu-nvstore version " QEMU_FULL_VERSION \
                             "\n" QEMU_COPYRIGHT "\n"

/* The default type of a blob that put creates */
#define NVS_DEFAULT_TYPE    "raw"

static QemuOptsList nvs_source_opts = {
    .name = "source",
    .implied_opt_name = "file",
    .head = QTAILQ_HEAD_INITIALIZER(nvs_source_opts.head),
    .desc = {
        { }
    },
};

void nvs_usage_error(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    error_vreport(fmt, ap);
    va_end(ap);
    error_printf("Try 'qemu-nvstore --help' for more information\n");
    exit(NVS_EXIT_ERROR);
}

static void nvs_cmd_help(const NvsCmd *cmd)
{
    printf("usage: qemu-nvstore %s\n\n%s\n", cmd->synopsis, cmd->help);
}

/* The format of the image at @path that holds the nvstore image */
static const char *nvs_probe(const char *path)
{
    static const char qcow2_magic[] = { 'Q', 'F', 'I', '\xfb' };
    char buf[8] = { 0 };
    int fd = qemu_open_old(path, O_RDONLY);

    if (fd < 0) {
        return "raw";
    }
    if (read(fd, buf, sizeof(buf)) < 0) {
        memset(buf, 0, sizeof(buf));
    }
    close(fd);
    return memcmp(buf, qcow2_magic, sizeof(qcow2_magic)) ? "raw" : "qcow2";
}

BlockBackend *nvs_open(const NvsOpts *o, const char *image, bool writable)
{
    QDict *options;
    BlockBackend *blk;
    Error *err = NULL;

    if (o->image_opts) {
        QemuOpts *opts = qemu_opts_parse_noisily(&nvs_source_opts, image,
                                                 true);

        if (!opts) {
            return NULL;
        }
        options = qemu_opts_to_qdict(opts, NULL);
        qemu_opts_del(opts);
        if (!qdict_haskey(options, "driver")) {
            qdict_put_str(options, "driver", "nvstore");
        }
    } else {
        const char *fmt = o->fmt ?: nvs_probe(image);

        options = qdict_new();
        qdict_put_str(options, "driver", "nvstore");
        if (!strcmp(fmt, "raw") || !strcmp(fmt, "nvstore")) {
            qdict_put_str(options, "file.filename", image);
        } else {
            qdict_put_str(options, "file.driver", fmt);
            qdict_put_str(options, "file.file.filename", image);
        }
    }
    if (o->secret) {
        qdict_put_str(options, "encrypt.key-secret", o->secret);
    }
    if (o->force_share) {
        qdict_put_bool(options, BDRV_OPT_FORCE_SHARE, true);
    }
    blk = blk_new_open(NULL, NULL, options, writable ? BDRV_O_RDWR : 0,
                       &err);
    if (!blk) {
        error_reportf_err(err, "Could not open '%s': ", image);
    }
    return blk;
}

/* ---- Reading and writing files ------------------------------------------ */

GByteArray *nvs_read_input(const char *path)
{
    bool is_stdin = !path || !strcmp(path, "-");
    int fd = is_stdin ? STDIN_FILENO : qemu_open_old(path, O_RDONLY);
    GByteArray *b;

    if (fd < 0) {
        error_report("Could not open '%s': %s", path, strerror(errno));
        return NULL;
    }
    b = g_byte_array_new();
    for (;;) {
        uint8_t chunk[65536];
        ssize_t n = read(fd, chunk, sizeof(chunk));

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            error_report("Could not read '%s': %s",
                         is_stdin ? "standard input" : path, strerror(errno));
            g_byte_array_unref(b);
            b = NULL;
            break;
        }
        if (!n) {
            break;
        }
        g_byte_array_append(b, chunk, n);
    }
    if (!is_stdin) {
        close(fd);
    }
    return b;
}

bool nvs_write_output(const char *path, const uint8_t *data, size_t len)
{
    bool is_stdout = !path || !strcmp(path, "-");
    int fd = is_stdout ? STDOUT_FILENO :
             qemu_create(path, O_WRONLY | O_TRUNC, 0666, NULL);
    size_t done = 0;

    if (fd < 0) {
        error_report("Could not create '%s': %s", path, strerror(errno));
        return false;
    }
    while (done < len) {
        ssize_t n = write(fd, data + done, len - done);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            break;
        }
        done += n;
    }
    if (done < len || (!is_stdout && close(fd) < 0)) {
        error_report("Could not write '%s': %s",
                     is_stdout ? "standard output" : path, strerror(errno));
        if (!is_stdout && done < len) {
            close(fd);
        }
        return false;
    }
    return true;
}

/* ---- Options ------------------------------------------------------------- */

enum {
    NVS_OPT_OBJECT = 256,
    NVS_OPT_IMAGE_OPTS,
    NVS_OPT_KEY_SECRET,
    NVS_OPT_OUTPUT,
    NVS_OPT_BLOB,
    NVS_OPT_FORMAT,
    NVS_OPT_PK,
    NVS_OPT_KEK,
    NVS_OPT_DB,
    NVS_OPT_OWNER,
    NVS_OPT_KEYS_FROM,
    NVS_OPT_SECURE_BOOT,
    NVS_OPT_PCR_BANKS,
    NVS_OPT_CA_CERT,
    NVS_OPT_CA_KEY,
    NVS_OPT_PLATFORM_CERT,
    NVS_OPT_LOCK_NVRAM,
    NVS_OPT_OVERWRITE,
};

/* Long option @c of @options is not one of @cmd's */
static void G_NORETURN nvs_not_an_option(const NvsCmd *cmd,
                                         const struct option *options, int c)
{
    while (options->val != c) {
        options++;
    }
    nvs_usage_error("%s: unknown option '--%s'", cmd->name, options->name);
}

int nvs_parse(const NvsCmd *cmd, int argc, char **argv, const char *own,
              const char **own_values, GPtrArray *repeated, NvsOpts *o)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "object", required_argument, NULL, NVS_OPT_OBJECT },
        { "image-opts", no_argument, NULL, NVS_OPT_IMAGE_OPTS },
        { "key-secret", required_argument, NULL, NVS_OPT_KEY_SECRET },
        { "force-share", no_argument, NULL, 'U' },
        { "output", required_argument, NULL, NVS_OPT_OUTPUT },
        { "blob", required_argument, NULL, NVS_OPT_BLOB },
        { "format", required_argument, NULL, NVS_OPT_FORMAT },
        { "pk", required_argument, NULL, NVS_OPT_PK },
        { "kek", required_argument, NULL, NVS_OPT_KEK },
        { "db", required_argument, NULL, NVS_OPT_DB },
        { "owner", required_argument, NULL, NVS_OPT_OWNER },
        { "keys-from", required_argument, NULL, NVS_OPT_KEYS_FROM },
        { "secure-boot", no_argument, NULL, NVS_OPT_SECURE_BOOT },
        { "pcr-banks", required_argument, NULL, NVS_OPT_PCR_BANKS },
        { "ca-cert", required_argument, NULL, NVS_OPT_CA_CERT },
        { "ca-key", required_argument, NULL, NVS_OPT_CA_KEY },
        { "platform-cert", required_argument, NULL, NVS_OPT_PLATFORM_CERT },
        { "lock-nvram", no_argument, NULL, NVS_OPT_LOCK_NVRAM },
        { "overwrite", no_argument, NULL, NVS_OPT_OVERWRITE },
        { NULL, 0, NULL, 0 }
    };
    g_autofree char *shortopts = g_strdup_printf(":hf:U%s", own);
    int c;

    while ((c = getopt_long(argc, argv, shortopts, long_options,
                            NULL)) != -1) {
        switch (c) {
        case 'h':
            nvs_cmd_help(cmd);
            exit(NVS_EXIT_OK);
        case ':':
            nvs_usage_error("%s: option '%s' needs an argument", cmd->name,
                            argv[optind - 1]);
        case '?':
            nvs_usage_error("%s: unknown option '%s'", cmd->name,
                            argv[optind - 1]);
        case 'f':
            o->fmt = optarg;
            break;
        case 'U':
            o->force_share = true;
            break;
        case NVS_OPT_OBJECT:
            user_creatable_process_cmdline(optarg);
            break;
        case NVS_OPT_IMAGE_OPTS:
            o->image_opts = true;
            break;
        case NVS_OPT_KEY_SECRET:
            o->secret = optarg;
            break;
        case NVS_OPT_OUTPUT:
            if (!strcmp(optarg, "json")) {
                o->json = true;
            } else if (!strcmp(optarg, "human")) {
                o->json = false;
            } else {
                nvs_usage_error("--output must be 'human' or 'json', not "
                                "'%s'", optarg);
            }
            break;
        case NVS_OPT_BLOB:
            if (strncmp(cmd->name, "vars ", 5)) {
                nvs_not_an_option(cmd, long_options, c);
            }
            o->blob = optarg;
            break;
        case NVS_OPT_FORMAT:
            if (strncmp(cmd->name, "vars ", 5) &&
                strcmp(cmd->name, "tpm export") &&
                strcmp(cmd->name, "tpm import")) {
                nvs_not_an_option(cmd, long_options, c);
            }
            o->format = optarg;
            break;
        case NVS_OPT_PCR_BANKS:
        case NVS_OPT_CA_CERT:
        case NVS_OPT_CA_KEY:
        case NVS_OPT_PLATFORM_CERT:
        case NVS_OPT_LOCK_NVRAM:
        case NVS_OPT_OVERWRITE:
            if (strcmp(cmd->name, "tpm setup")) {
                nvs_not_an_option(cmd, long_options, c);
            }
            if (c == NVS_OPT_PCR_BANKS) {
                o->pcr_banks = optarg;
            } else if (c == NVS_OPT_CA_CERT) {
                o->ca_cert = optarg;
            } else if (c == NVS_OPT_CA_KEY) {
                o->ca_key = optarg;
            } else if (c == NVS_OPT_PLATFORM_CERT) {
                o->platform_cert = optarg;
            } else if (c == NVS_OPT_LOCK_NVRAM) {
                o->lock_nvram = true;
            } else {
                o->overwrite = true;
            }
            break;
        case NVS_OPT_PK:
        case NVS_OPT_KEK:
        case NVS_OPT_DB:
        case NVS_OPT_OWNER:
        case NVS_OPT_KEYS_FROM:
        case NVS_OPT_SECURE_BOOT:
            if (strcmp(cmd->name, "vars enroll")) {
                nvs_not_an_option(cmd, long_options, c);
            }
            if (c == NVS_OPT_PK) {
                o->pk = optarg;
            } else if (c == NVS_OPT_KEK || c == NVS_OPT_DB) {
                GPtrArray **a = c == NVS_OPT_KEK ? &o->kek : &o->db;

                if (!*a) {
                    *a = g_ptr_array_new();
                }
                g_ptr_array_add(*a, optarg);
            } else if (c == NVS_OPT_OWNER) {
                o->owner = optarg;
            } else if (c == NVS_OPT_KEYS_FROM) {
                o->keys_from = optarg;
            } else {
                o->secure_boot = true;
            }
            break;
        default:
            if (repeated && c == 'c') {
                g_ptr_array_add(repeated, optarg);
            } else {
                own_values[c] = optarg;
            }
            break;
        }
    }
    if (o->image_opts && o->fmt) {
        nvs_usage_error("--image-opts and -f exclude each other");
    }
    if (o->force_share && cmd->writes) {
        nvs_usage_error("%s writes: -U (force-share) is for commands that "
                        "only read", cmd->name);
    }
    if (o->fmt && strcmp(o->fmt, "raw") && strcmp(o->fmt, "nvstore") &&
        strcmp(o->fmt, "qcow2")) {
        nvs_usage_error("-f %s: the nvstore image is in a file (raw) or "
                        "in a qcow2 image; use --image-opts for others",
                        o->fmt);
    }
    return optind;
}

void nvs_operands(const NvsCmd *cmd, int argc, int first, int min, int max)
{
    int n = argc - first;

    if (n < 1) {
        nvs_usage_error("%s: the image is missing", cmd->name);
    }
    if (n - 1 < min || (max >= 0 && n - 1 > max)) {
        nvs_usage_error("%s: wrong number of operands; usage: qemu-nvstore "
                        "%s", cmd->name, cmd->synopsis);
    }
}

/* ---- Commits --------------------------------------------------------- */

/* The updates of one commit, and what they point to */
typedef struct NvsCommit {
    GArray *updates;                /* NvstoreBlobUpdate */
    GPtrArray *keep;                /* freed with the commit */
} NvsCommit;

static void nvs_commit_init(NvsCommit *c)
{
    c->updates = g_array_new(false, true, sizeof(NvstoreBlobUpdate));
    c->keep = g_ptr_array_new_with_free_func(g_free);
}

static void nvs_commit_clear(NvsCommit *c)
{
    g_array_unref(c->updates);
    g_ptr_array_unref(c->keep);
}

static const char *nvs_keep(NvsCommit *c, char *s)
{
    g_ptr_array_add(c->keep, s);
    return s;
}

/* Put the contents of @file (standard input for NULL) into blob @name */
static bool nvs_add_put(BlockBackend *blk, NvsCommit *c, const char *name,
                        const char *type, const char *file)
{
    NvstoreBlobUpdate u = { .name = name };
    NvstoreBlobInfo info;
    GByteArray *data;
    Error *err = NULL;
    int ret;

    ret = nvstore_blob_get_info(blk, name, &info, &err);
    if (ret < 0 && ret != -ENOENT) {
        error_report_err(err);
        return false;
    }
    error_free(err);
    if (ret == 0) {
        /* An existing blob keeps its type; -t must name it */
        u.type = nvs_keep(c, g_strdup(type ?: info.type));
        nvstore_blob_info_clear(&info);
    } else {
        u.type = type ?: NVS_DEFAULT_TYPE;
    }
    data = nvs_read_input(file);
    if (!data) {
        return false;
    }
    u.len = data->len;
    u.data = (uint8_t *)nvs_keep(c, (char *)g_byte_array_free(data, false));
    g_array_append_val(c->updates, u);
    return true;
}

static void nvs_add_delete(NvsCommit *c, const char *name)
{
    NvstoreBlobUpdate u = { .name = name, .remove = true };

    g_array_append_val(c->updates, u);
}

/*
 * Rename blob @old to @new in the commit: @new gets its type, contents,
 * realsize and attributes, and @old goes, atomically
 */
static bool nvs_add_rename(BlockBackend *blk, NvsCommit *c, const char *old,
                           const char *new)
{
    NvstoreBlobUpdate u = { .name = new };
    g_autofree NvstoreBlobAttr *attrs = NULL;
    NvstoreBlobInfo info = { 0 };
    uint8_t *data = NULL;
    Error *err = NULL;
    size_t i, n;
    int ret;

    ret = nvstore_blob_get_info(blk, new, &info, NULL);
    if (ret != -ENOENT) {
        if (ret == 0) {
            nvstore_blob_info_clear(&info);
        }
        error_report("Cannot rename '%s' to '%s': a blob named '%s' exists",
                     old, new, new);
        return false;
    }
    if (nvstore_blob_get_info(blk, old, &info, &err) < 0 ||
        nvstore_blob_read(blk, old, &data, &u.len, &err) < 0) {
        error_reportf_err(err, "Cannot rename '%s': ", old);
        if (info.type) {
            nvstore_blob_info_clear(&info);
        }
        return false;
    }
    u.type = nvs_keep(c, g_strdup(info.type));
    u.data = (uint8_t *)nvs_keep(c, (char *)data);
    u.has_realsize = info.has_realsize;
    u.realsize = info.realsize;
    n = g_strv_length(info.attrs);
    attrs = g_new0(NvstoreBlobAttr, n);
    for (i = 0; i < n; i++) {
        uint8_t *value;

        attrs[i].name = nvs_keep(c, g_strdup(info.attrs[i]));
        if (nvstore_blob_get_attr(blk, old, info.attrs[i], &value,
                                  &attrs[i].len, &err) < 0) {
            error_reportf_err(err, "Cannot rename '%s': ", old);
            nvstore_blob_info_clear(&info);
            return false;
        }
        attrs[i].value = (uint8_t *)nvs_keep(c, (char *)value);
    }
    nvstore_blob_info_clear(&info);
    u.attrs = attrs;
    u.nb_attrs = n;
    nvs_keep(c, (char *)g_steal_pointer(&attrs));
    g_array_append_val(c->updates, u);
    nvs_add_delete(c, old);
    return true;
}

static int nvs_commit_run(BlockBackend *blk, NvsCommit *c)
{
    Error *err = NULL;

    if (nvstore_blob_commit(blk, (NvstoreBlobUpdate *)c->updates->data,
                            c->updates->len, &err) < 0) {
        error_report_err(err);
        return NVS_EXIT_ERROR;
    }
    return NVS_EXIT_OK;
}

/* Parse one operation of 'commit -c' into @c */
static bool nvs_add_op(BlockBackend *blk, NvsCommit *c, const char *op)
{
    g_autoptr(GError) gerr = NULL;
    gchar **argv;
    gint argc;

    if (!g_shell_parse_argv(op, &argc, &argv, &gerr)) {
        error_report("Operation '%s': %s", op,
                     g_error_matches(gerr, G_SHELL_ERROR,
                                     G_SHELL_ERROR_EMPTY_STRING) ?
                     "empty" : "its quotes do not match");
        return false;
    }
    g_ptr_array_add(c->keep, argv);     /* the array; its strings below */
    for (int i = 0; i < argc; i++) {
        g_ptr_array_add(c->keep, argv[i]);
    }
    if (!strcmp(argv[0], "put") && (argc == 3 || argc == 4)) {
        return nvs_add_put(blk, c, argv[1], argc == 4 ? argv[3] : NULL,
                           argv[2]);
    }
    if (!strcmp(argv[0], "delete") && argc == 2) {
        nvs_add_delete(c, argv[1]);
        return true;
    }
    if (!strcmp(argv[0], "rename") && argc == 3) {
        return nvs_add_rename(blk, c, argv[1], argv[2]);
    }
    error_report("Operation '%s': not one of 'put NAME FILE [TYPE]', "
                 "'delete NAME', 'rename OLD NEW'", op);
    return false;
}

/* ---- Commands ------------------------------------------------------------ */

/* One blob, as list and verify show it */
static QDict *nvs_blob_qdict(BlockBackend *blk, const char *name,
                             bool *intact)
{
    QDict *d = qdict_new();
    NvstoreBlobInfo info;
    g_autofree uint8_t *data = NULL;
    Error *err = NULL;
    size_t len;

    qdict_put_str(d, "name", name);
    if (nvstore_blob_get_info(blk, name, &info, &err) < 0) {
        /* This version cannot use it (an unknown mandatory attribute) */
        qdict_put_bool(d, "usable", false);
        qdict_put_str(d, "error", error_get_pretty(err));
        error_free(err);
        *intact = true;
        return d;
    }
    qdict_put_bool(d, "usable", true);
    qdict_put_str(d, "type", info.type);
    qdict_put_int(d, "size", info.size);
    if (info.has_realsize) {
        qdict_put_int(d, "realsize", info.realsize);
    }
    qdict_put_int(d, "generation", info.generation);
    qdict_put_bool(d, "encrypted", info.encrypted);
    {
        QList *attrs = qlist_new();

        for (char **a = info.attrs; *a; a++) {
            qlist_append_str(attrs, *a);
        }
        qdict_put(d, "attributes", attrs);
    }
    nvstore_blob_info_clear(&info);
    *intact = nvstore_blob_read(blk, name, &data, &len, &err) >= 0;
    qdict_put_bool(d, "intact", *intact);
    if (!*intact) {
        qdict_put_str(d, "error", error_get_pretty(err));
        error_free(err);
    }
    return d;
}

void nvs_print_json(QObject *obj)
{
    GString *json = qobject_to_json_pretty(obj, true);

    printf("%s\n", json->str);
    g_string_free(json, true);
}

/* list and verify: every blob; returns whether all read back intact */
static int nvs_list_or_verify(const NvsCmd *cmd, int argc, char **argv,
                              bool verify)
{
    const char *own_values[256] = { NULL };
    NvsOpts o = { 0 };
    g_auto(GStrv) names = NULL;
    g_autoptr(QList) blobs = qlist_new();
    BlockBackend *blk;
    Error *err = NULL;
    int first, damaged = 0;

    first = nvs_parse(cmd, argc, argv, "", own_values, NULL, &o);
    nvs_operands(cmd, argc, first, 0, 0);
    blk = nvs_open(&o, argv[first], false);
    if (!blk) {
        return NVS_EXIT_ERROR;
    }
    names = nvstore_blob_list(blk, &err);
    if (!names) {
        error_report_err(err);
        blk_unref(blk);
        return NVS_EXIT_ERROR;
    }
    if (!o.json && !verify) {
        printf("%-32s %-8s %10s %10s %-9s %-6s %s\n", "NAME", "TYPE",
               "SIZE", "GENERATION", "ENCRYPTED", "INTACT", "ATTRIBUTES");
    }
    for (char **n = names; *n; n++) {
        bool intact;
        QDict *d = nvs_blob_qdict(blk, *n, &intact);

        damaged += !intact;
        if (!o.json && verify) {
            printf("%s: %s\n", *n, intact ?
                   (qdict_get_bool(d, "usable") ? "ok" :
                    "not checked: this version cannot use it") :
                   qdict_get_str(d, "error"));
        } else if (!o.json && !qdict_get_bool(d, "usable")) {
            printf("%-32s %s\n", *n, qdict_get_str(d, "error"));
        } else if (!o.json) {
            QList *l = qdict_get_qlist(d, "attributes");
            g_autoptr(GString) s = g_string_new(NULL);
            QListEntry *e;

            QLIST_FOREACH_ENTRY(l, e) {
                g_string_append_printf(s, "%s%s", s->len ? "," : "",
                                       qstring_get_str(
                                           qobject_to(QString, e->value)));
            }
            printf("%-32s %-8s %10" PRId64 " %10" PRId64 " %-9s %-6s %s\n",
                   *n, qdict_get_str(d, "type"), qdict_get_int(d, "size"),
                   qdict_get_int(d, "generation"),
                   qdict_get_bool(d, "encrypted") ? "yes" : "no",
                   intact ? "yes" : "NO", s->len ? s->str : "-");
        }
        qlist_append(blobs, d);
    }
    if (o.json) {
        nvs_print_json(QOBJECT(blobs));
    } else if (verify) {
        printf("%zu blobs, %d damaged\n", (size_t)g_strv_length(names),
               damaged);
    }
    blk_unref(blk);
    return verify && damaged ? NVS_EXIT_DAMAGED : NVS_EXIT_OK;
}

static int nvs_cmd_list(const NvsCmd *cmd, int argc, char **argv)
{
    return nvs_list_or_verify(cmd, argc, argv, false);
}

static int nvs_cmd_verify(const NvsCmd *cmd, int argc, char **argv)
{
    return nvs_list_or_verify(cmd, argc, argv, true);
}

static int nvs_cmd_get(const NvsCmd *cmd, int argc, char **argv)
{
    const char *own_values[256] = { NULL };
    g_autofree uint8_t *data = NULL;
    NvsOpts o = { 0 };
    BlockBackend *blk;
    Error *err = NULL;
    size_t len;
    int first, ret;

    first = nvs_parse(cmd, argc, argv, "o:", own_values, NULL, &o);
    nvs_operands(cmd, argc, first, 1, 1);
    blk = nvs_open(&o, argv[first], false);
    if (!blk) {
        return NVS_EXIT_ERROR;
    }
    ret = nvstore_blob_read(blk, argv[first + 1], &data, &len, &err);
    blk_unref(blk);
    if (ret < 0) {
        error_report_err(err);
        return NVS_EXIT_ERROR;
    }
    return nvs_write_output(own_values['o'], data, len) ? NVS_EXIT_OK :
                                                          NVS_EXIT_ERROR;
}

/* put, delete, rename and commit: one commit each */
static int nvs_cmd_change(const NvsCmd *cmd, int argc, char **argv)
{
    const char *own_values[256] = { NULL };
    g_autoptr(GPtrArray) ops = g_ptr_array_new();
    NvsOpts o = { 0 };
    NvsCommit c;
    BlockBackend *blk;
    bool ok = true;
    int first, ret;

    if (!strcmp(cmd->name, "put")) {
        first = nvs_parse(cmd, argc, argv, "t:i:", own_values, NULL, &o);
        nvs_operands(cmd, argc, first, 1, 1);
    } else if (!strcmp(cmd->name, "delete")) {
        first = nvs_parse(cmd, argc, argv, "", own_values, NULL, &o);
        nvs_operands(cmd, argc, first, 1, -1);
    } else if (!strcmp(cmd->name, "rename")) {
        first = nvs_parse(cmd, argc, argv, "", own_values, NULL, &o);
        nvs_operands(cmd, argc, first, 2, 2);
    } else {
        first = nvs_parse(cmd, argc, argv, "c:", own_values, ops, &o);
        nvs_operands(cmd, argc, first, 0, 0);
        if (!ops->len) {
            nvs_usage_error("commit: no operation (-c) given");
        }
    }
    blk = nvs_open(&o, argv[first], true);
    if (!blk) {
        return NVS_EXIT_ERROR;
    }
    nvs_commit_init(&c);
    if (!strcmp(cmd->name, "put")) {
        ok = nvs_add_put(blk, &c, argv[first + 1], own_values['t'],
                         own_values['i']);
    } else if (!strcmp(cmd->name, "delete")) {
        for (int i = first + 1; i < argc; i++) {
            nvs_add_delete(&c, argv[i]);
        }
    } else if (!strcmp(cmd->name, "rename")) {
        ok = nvs_add_rename(blk, &c, argv[first + 1], argv[first + 2]);
    } else {
        for (guint i = 0; ok && i < ops->len; i++) {
            ok = nvs_add_op(blk, &c, g_ptr_array_index(ops, i));
        }
    }
    ret = ok ? nvs_commit_run(blk, &c) : NVS_EXIT_ERROR;
    nvs_commit_clear(&c);
    blk_unref(blk);
    return ret;
}

int nvs_run_subcommand(const NvsCmd *cmd, const NvsCmd *subcmds, int argc,
                       char **argv)
{
    size_t prefix = strlen(cmd->name) + 1;
    const NvsCmd *c;

    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        printf("usage: qemu-nvstore %s\n\n%s\n\nSubcommands:\n",
               cmd->synopsis, cmd->help);
        for (c = subcmds; c->name; c++) {
            printf("  %s\n", c->synopsis);
        }
        return argc < 2 ? NVS_EXIT_ERROR : NVS_EXIT_OK;
    }
    for (c = subcmds; c->name; c++) {
        if (!strcmp(argv[1], c->name + prefix)) {
            return c->run(c, argc - 1, argv + 1);
        }
    }
    nvs_usage_error("%s: unknown subcommand '%s'", cmd->name, argv[1]);
}

static const NvsCmd nvs_cmds[] = {
    {
        .name = "list", .run = nvs_cmd_list,
        .synopsis = "list [--output=human|json] IMAGE",
        .help = "List the blobs of IMAGE: name, type, size, the generation "
                "of the commit that\nwrote the contents, whether they are "
                "encrypted, whether they read back\nintact (every blob is "
                "read), optional attributes.  A blob that this version\n"
                "cannot use is listed with the reason.",
    }, {
        .name = "get", .run = nvs_cmd_get,
        .synopsis = "get [-o FILE] IMAGE NAME",
        .help = "Write the contents of blob NAME to FILE (created or "
                "truncated), or to\nstandard output.  Fails if the blob "
                "does not read back intact.",
    }, {
        .name = "put", .run = nvs_cmd_change, .writes = true,
        .synopsis = "put [-t TYPE] [-i FILE] IMAGE NAME",
        .help = "Make the contents of FILE (standard input without -i) the "
                "contents of blob\nNAME, in one commit.  A new blob has "
                "TYPE (default: raw); an existing one\nkeeps its type and "
                "attributes, and -t, if given, must name its type.",
    }, {
        .name = "delete", .run = nvs_cmd_change, .writes = true,
        .synopsis = "delete IMAGE NAME...",
        .help = "Delete the blobs named, all in one commit.",
    }, {
        .name = "rename", .run = nvs_cmd_change, .writes = true,
        .synopsis = "rename IMAGE OLD NEW",
        .help = "Rename blob OLD to NEW, with its type, contents and "
                "attributes, in one\ncommit.  Fails if a blob NEW exists.",
    }, {
        .name = "commit", .run = nvs_cmd_change, .writes = true,
        .synopsis = "commit -c OPERATION [-c OPERATION...] IMAGE",
        .help = "Apply the operations, in one commit: all of them or none.  "
                "An OPERATION is\n'put NAME FILE [TYPE]', 'delete NAME' or "
                "'rename OLD NEW', quoted as a shell\nwould quote it.",
    }, {
        .name = "verify", .run = nvs_cmd_verify,
        .synopsis = "verify [--output=human|json] IMAGE",
        .help = "Read every blob and check it (checksum, and "
                "authentication in an encrypted\nimage).  Exit status 2 if "
                "any does not read back intact; the output says\nwhich.",
    }, {
        .name = "vars", .run = nvs_cmd_vars,
        .synopsis = "vars SUBCOMMAND [OPTIONS] IMAGE [OPERANDS]",
        .help = "The UEFI variables of the edk2 variable store in a blob "
                "(default: uefi-vars).\n'qemu-nvstore vars --help' lists "
                "the subcommands.",
    }, {
        .name = "tpm", .run = nvs_cmd_tpm,
        .synopsis = "tpm SUBCOMMAND [OPTIONS] IMAGE [OPERANDS]",
        .help = "The state of the TPM that -tpmdev libtpms keeps in the "
                "image: inspect it,\nmove it to and from swtpm, reset or "
                "provision it.  'qemu-nvstore tpm --help'\nlists the "
                "subcommands.",
    },
    { NULL }
};

static void nvs_help(void)
{
    const NvsCmd *cmd;

    printf("qemu-nvstore version " QEMU_FULL_VERSION "\n"
           "usage: qemu-nvstore [--help | --version] [-T TRACE]\n"
           "       qemu-nvstore COMMAND [OPTIONS] IMAGE [OPERANDS]\n"
           "\n"
           "Manage the blobs of an nvstore image without a running VM.\n"
           "Every change is one atomic commit.  'qemu-nvstore COMMAND "
           "--help' describes a command.\n"
           "\n"
           "Commands:\n");
    for (cmd = nvs_cmds; cmd->name; cmd++) {
        printf("  %s\n", cmd->synopsis);
    }
    printf("\n"
           "Options of every command:\n"
           "  --object OBJDEF     define a QEMU object (a secret, say)\n"
           "  --image-opts        IMAGE is an option string "
           "(driver=nvstore,...)\n"
           "  -f FMT              the format of the image that holds the "
           "nvstore image:\n"
           "                      raw (a plain nvstore file), qcow2; "
           "default: probed\n"
           "  --key-secret ID     the secret object that opens an "
           "encrypted nvstore image\n"
           "  -U, --force-share   open the image read-only even if "
           "another process uses it\n"
           "                      (commands that only read)\n"
           "\n"
           "Exit status: 0 on success; 1 if the command failed (the image "
           "is unchanged);\n"
           "2 if verify found a blob that does not read back intact.\n"
           "\n"
           QEMU_HELP_BOTTOM "\n");
}

int main(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { "trace", required_argument, NULL, 'T' },
        { NULL, 0, NULL, 0 }
    };
    const NvsCmd *cmd;
    int c;

#ifdef CONFIG_POSIX
    signal(SIGPIPE, SIG_IGN);
#endif
    socket_init();
    error_init(argv[0]);
    module_call_init(MODULE_INIT_TRACE);
    qemu_init_exec_dir(argv[0]);
    qemu_init_main_loop(&error_fatal);
    qcrypto_init(&error_fatal);
    module_call_init(MODULE_INIT_QOM);
    bdrv_init();
    qemu_add_opts(&nvs_source_opts);
    qemu_add_opts(&qemu_trace_opts);

    while ((c = getopt_long(argc, argv, "+:hVT:", long_options,
                            NULL)) != -1) {
        switch (c) {
        case 'h':
            nvs_help();
            return NVS_EXIT_OK;
        case 'V':
            printf(QEMU_NVSTORE_VERSION);
            return NVS_EXIT_OK;
        case 'T':
            trace_opt_parse(optarg);
            break;
        case ':':
            nvs_usage_error("Option '%s' needs an argument",
                            argv[optind - 1]);
        default:
            nvs_usage_error("Unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc) {
        nvs_usage_error("No command given");
    }
    if (!trace_init_backends()) {
        return NVS_EXIT_ERROR;
    }
    trace_init_file();
    qemu_set_log(LOG_TRACE, &error_fatal);

    for (cmd = nvs_cmds; cmd->name; cmd++) {
        if (!strcmp(argv[optind], cmd->name)) {
            argc -= optind;
            argv += optind;
            qemu_reset_optind();
            return cmd->run(cmd, argc, argv);
        }
    }
    nvs_usage_error("Unknown command '%s'", argv[optind]);
}
