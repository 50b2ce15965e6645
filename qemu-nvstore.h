/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * qemu-nvstore: what its command files share (qemu-nvstore.c, the blob
 * commands, options and opening the image; qemu-nvstore-vars.c, the UEFI
 * variable commands).
 */

#ifndef QEMU_NVSTORE_H
#define QEMU_NVSTORE_H

#include "system/block-backend.h"

/* Exit status (the manual page's "Exit status") */
#define NVS_EXIT_OK         0
#define NVS_EXIT_ERROR      1   /* failed; the image was not changed */
#define NVS_EXIT_DAMAGED    2   /* verify: a blob does not read back */

/* Options that every command takes */
typedef struct NvsOpts {
    const char *fmt;
    const char *secret;
    bool image_opts;
    bool force_share;
    bool json;
    /* vars: the blob that holds the variable store, and --format */
    const char *blob;
    const char *format;
    /* vars enroll: the certificates' files, their owner, --secure-boot */
    const char *pk;
    GPtrArray *kek;
    GPtrArray *db;
    const char *owner;
    const char *keys_from;
    bool secure_boot;
    /* tpm setup */
    const char *pcr_banks;
    const char *ca_cert;
    const char *ca_key;
    const char *platform_cert;
    bool lock_nvram;
    bool overwrite;
} NvsOpts;

typedef struct NvsCmd {
    const char *name;
    int (*run)(const struct NvsCmd *cmd, int argc, char **argv);
    /* Writes: opened read-write, one commit */
    bool writes;
    const char *synopsis;
    const char *help;
} NvsCmd;

/* Report a usage error, and exit with NVS_EXIT_ERROR */
void G_NORETURN G_GNUC_PRINTF(1, 2) nvs_usage_error(const char *fmt, ...);

/*
 * Parse the options of @cmd: the common ones and those of @own (short
 * options, getopt syntax; their values in @own_values, indexed by the
 * option character; with @repeated, option 'c' is collected there).
 * Returns the index of the image's operand.
 */
int nvs_parse(const NvsCmd *cmd, int argc, char **argv, const char *own,
              const char **own_values, GPtrArray *repeated, NvsOpts *o);

/*
 * The image is argv[@first]; between @min and @max operands follow
 * (@max -1: any number)
 */
void nvs_operands(const NvsCmd *cmd, int argc, int first, int min, int max);

/* Open the nvstore image @image; NULL, reported, on failure */
BlockBackend *nvs_open(const NvsOpts *o, const char *image, bool writable);

/* The contents of @path, or of standard input for NULL or "-" */
GByteArray *nvs_read_input(const char *path);

/* Write @data to @path (created or truncated), or to standard output */
bool nvs_write_output(const char *path, const uint8_t *data, size_t len);

/* Print @obj as JSON, pretty */
void nvs_print_json(QObject *obj);

/*
 * Run the subcommand of @cmd (a command with subcommands, such as
 * "vars") that argv[1] names, one of @subcmds (named "CMD SUBCMD",
 * terminated by an entry whose name is NULL); with --help or none, list
 * them
 */
int nvs_run_subcommand(const NvsCmd *cmd, const NvsCmd *subcmds, int argc,
                       char **argv);

/* The vars commands (qemu-nvstore-vars.c) */
int nvs_cmd_vars(const NvsCmd *cmd, int argc, char **argv);

/* The tpm commands (qemu-nvstore-tpm.c) */
int nvs_cmd_tpm(const NvsCmd *cmd, int argc, char **argv);

#endif /* QEMU_NVSTORE_H */
