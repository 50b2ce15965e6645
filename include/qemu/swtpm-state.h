/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The formats in which swtpm keeps a TPM's state: its blob header (the
 * same in every backend) and its linear file (swtpm's file:// backend,
 * "swtpmlin"), as swtpm 0.7 and later write and read them.
 */

#ifndef QEMU_SWTPM_STATE_H
#define QEMU_SWTPM_STATE_H

/* The states of a TPM, in the order of the linear file's slots */
typedef enum SwtpmState {
    SWTPM_STATE_PERMALL,
    SWTPM_STATE_VOLATILE,
    SWTPM_STATE_SAVESTATE,
    SWTPM_STATE__MAX,
} SwtpmState;

/* "permall", "volatilestate", "savestate": libtpms' names of the states */
extern const char *const swtpm_state_names[SWTPM_STATE__MAX];

/* The magic of a linear file, little endian ("swtpmlin") */
#define SWTPM_LINEAR_MAGIC      0x737774706d6c696eULL
#define SWTPM_LINEAR_VERSION    1
#define SWTPM_LINEAR_HDR_SIZE   192
#define SWTPM_LINEAR_MAX_STATES 15

/**
 * swtpm_blob_unwrap:
 * @data: a state as swtpm stores it
 * @len: its length
 * @out: set to libtpms' data (in @data)
 * @out_len: set to its length
 * @errp: pointer to a NULL-initialized error object
 *
 * libtpms' data from a state that swtpm stored: after its header and
 * in its data TLV, or all of @data if it has no valid header (as swtpm
 * reads it).  A state that swtpm encrypted is refused.
 *
 * Returns: true on success, false on error.
 */
bool swtpm_blob_unwrap(const uint8_t *data, size_t len,
                       const uint8_t **out, size_t *out_len, Error **errp);

/**
 * swtpm_blob_wrap:
 * @data: libtpms' data
 * @len: its length
 *
 * Returns: @data as swtpm stores an unencrypted state: its header
 * (version 2) and one data TLV.
 */
GByteArray *swtpm_blob_wrap(const uint8_t *data, size_t len);

/**
 * swtpm_linear_parse:
 * @data: a linear file
 * @len: its length
 * @states: set to the contents of each state (NULL for a state the file
 *          does not hold); free with g_bytes_unref()
 * @errp: pointer to a NULL-initialized error object
 *
 * Read the states of a linear file.  Fails on a file that is not one,
 * of a later version, with a section outside the file or overlapping
 * another or the header, or a state in a slot swtpm does not use.
 *
 * Returns: true on success, false on error (@states untouched).
 */
bool swtpm_linear_parse(const uint8_t *data, size_t len,
                        GBytes *states[SWTPM_STATE__MAX], Error **errp);

/**
 * swtpm_linear_build:
 * @states: the contents of each state, or NULL for none
 *
 * Returns: a linear file that holds @states, laid out as swtpm lays one
 * out when it stores them in this order: each in a section whose size is
 * the next power of two.
 */
GByteArray *swtpm_linear_build(GBytes *const states[SWTPM_STATE__MAX]);

#endif /* QEMU_SWTPM_STATE_H */
