/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * libFuzzer target for the nvstore directory decoder.
 *
 * Besides "no crash, no leak, no undefined behaviour", it checks the
 * property the format relies on to preserve what it does not understand:
 * the encoding is canonical, so every directory the decoder accepts
 * encodes back to exactly the same bytes.
 *
 * Built by project/fuzz.sh with clang, libFuzzer, AddressSanitizer and
 * UndefinedBehaviorSanitizer.  libFuzzer declares the entry point, so the
 * build disables -Wmissing-prototypes for this file.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "block/nvstore-dir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Error *err = NULL;
    NvstoreDir *dir = nvstore_dir_parse(data, size, &err);
    uint8_t *enc;
    size_t len;
    guint i;

    if (!dir) {
        if (!err || !*error_get_pretty(err)) {
            abort();        /* every rejection says why */
        }
        error_free(err);
        return 0;
    }
    enc = nvstore_dir_encode(dir, &len, &error_abort);
    if (len != size || memcmp(enc, data, size)) {
        abort();            /* not canonical */
    }
    g_free(enc);

    /* Exercise the accessors on what was decoded */
    for (i = 0; i < dir->entries->len; i++) {
        NvstoreEntry *e = g_ptr_array_index(dir->entries, i);

        if (nvstore_entry_check_usable(e, &err)) {
            nvstore_entry_data_size(e);
            nvstore_entry_get_attr(e, "x");
        } else {
            error_free(err);
            err = NULL;
        }
        if (nvstore_dir_lookup(dir, e->name) != e) {
            abort();
        }
        /* Sorted by name, each name once */
        if (i && strcmp(((NvstoreEntry *)g_ptr_array_index(dir->entries,
                                                           i - 1))->name,
                        e->name) >= 0) {
            abort();
        }
    }
    nvstore_dir_free(dir);
    return 0;
}
