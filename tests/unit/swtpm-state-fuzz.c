/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * libFuzzer target for swtpm's state formats (util/swtpm-state.c), as
 * qemu-nvstore tpm import reads them: the input is a linear file, or, if
 * it is not one, a blob.
 *
 * Besides "no crash, no leak, no undefined behaviour", every input is
 * refused with a message or read within its bounds, and a linear file
 * read is written back (swtpm_linear_build()) to one that reads the
 * same states.
 *
 * Built by project/fuzz.sh with clang, libFuzzer, AddressSanitizer and
 * UndefinedBehaviorSanitizer.  libFuzzer declares the entry point, so the
 * build disables -Wmissing-prototypes for this file.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/swtpm-state.h"

static void refused(Error *err)
{
    if (!err || !*error_get_pretty(err)) {
        abort();            /* every refusal says why */
    }
    error_free(err);
}

static void check_blob(const uint8_t *data, size_t len)
{
    Error *err = NULL;
    const uint8_t *out;
    size_t out_len;

    if (swtpm_blob_unwrap(data, len, &out, &out_len, &err)) {
        if (out < data || out_len > len || out + out_len > data + len) {
            abort();
        }
    } else {
        refused(err);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    GBytes *states[SWTPM_STATE__MAX] = { NULL };
    GBytes *again[SWTPM_STATE__MAX] = { NULL };
    GByteArray *f;
    Error *err = NULL;
    int i;

    if (!swtpm_linear_parse(data, size, states, &err)) {
        refused(err);
        check_blob(data, size);
        return 0;
    }
    for (i = 0; i < SWTPM_STATE__MAX; i++) {
        if (states[i]) {
            check_blob(g_bytes_get_data(states[i], NULL),
                       g_bytes_get_size(states[i]));
            /* The builder takes states, never empty ones */
            if (!g_bytes_get_size(states[i])) {
                g_clear_pointer(&states[i], g_bytes_unref);
            }
        }
    }
    f = swtpm_linear_build(states);
    if (!swtpm_linear_parse(f->data, f->len, again, &error_abort)) {
        abort();
    }
    for (i = 0; i < SWTPM_STATE__MAX; i++) {
        if (!states[i] != !again[i] ||
            (states[i] && !g_bytes_equal(states[i], again[i]))) {
            abort();
        }
        g_clear_pointer(&states[i], g_bytes_unref);
        g_clear_pointer(&again[i], g_bytes_unref);
    }
    g_byte_array_unref(f);
    return 0;
}
