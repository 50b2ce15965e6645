/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * swtpm's state formats (include/qemu/swtpm-state.h): the blob header of
 * src/swtpm/swtpm_nvstore.c and the linear file of
 * src/swtpm/swtpm_nvstore_linear.c.
 *
 * A blob: a header, big endian { u8 version (2), u8 min_version (1),
 * u16 hdrsize (10), u16 flags, u32 totlen (header and TLVs) }, then TLVs
 * { u16 tag, u32 length, bytes }.  An unencrypted state is one TLV of
 * tag 1 (data).  A blob without a valid header is libtpms' data itself.
 *
 * A linear file: a header, little endian { u64 magic, u8 version (1),
 * u8 padding, u16 hdrsize (192), 15 x { u32 offset (0: unused), u32
 * data_length, u32 section_length } }; slot 0 holds permall, 1
 * volatilestate, 2 savestate; sections follow the header.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/bswap.h"
#include "qemu/host-utils.h"
#include "qemu/swtpm-state.h"

const char *const swtpm_state_names[SWTPM_STATE__MAX] = {
    [SWTPM_STATE_PERMALL] = "permall",
    [SWTPM_STATE_VOLATILE] = "volatilestate",
    [SWTPM_STATE_SAVESTATE] = "savestate",
};

#define BLOB_HEADER_VERSION     2
#define BLOB_HEADER_SIZE        10
#define BLOB_TLV_HEADER_SIZE    6
/* Encrypted state, encrypted migration data */
#define BLOB_FLAG_ENCRYPTED     0x01
#define BLOB_FLAG_MIG_ENCRYPTED 0x02
#define TAG_DATA                1
#define TAG_ENCRYPTED_DATA      2

bool swtpm_blob_unwrap(const uint8_t *data, size_t len,
                       const uint8_t **out, size_t *out_len, Error **errp)
{
    size_t pos;

    /* The checks of swtpm's SWTPM_NVRAM_CheckHeader() */
    if (len < BLOB_HEADER_SIZE || ldl_be_p(data + 6) != len ||
        data[1] > BLOB_HEADER_VERSION ||
        lduw_be_p(data + 2) != BLOB_HEADER_SIZE) {
        *out = data;
        *out_len = len;
        return true;
    }
    if (data[0] != BLOB_HEADER_VERSION) {
        error_setg(errp, "swtpm state of blob header version %u: only "
                   "version %u is known", data[0], BLOB_HEADER_VERSION);
        return false;
    }
    if (lduw_be_p(data + 4) & (BLOB_FLAG_ENCRYPTED |
                               BLOB_FLAG_MIG_ENCRYPTED)) {
        error_setg(errp, "The swtpm state is encrypted (swtpm --key or "
                   "--migration-key); decrypt it with swtpm first");
        return false;
    }
    for (pos = BLOB_HEADER_SIZE; pos < len;) {
        uint16_t tag;
        uint32_t tlen;

        if (len - pos < BLOB_TLV_HEADER_SIZE) {
            break;
        }
        tag = lduw_be_p(data + pos);
        tlen = ldl_be_p(data + pos + 2);
        pos += BLOB_TLV_HEADER_SIZE;
        if (tlen > len - pos) {
            error_setg(errp, "swtpm state: a TLV of %" PRIu32 " bytes at "
                       "offset %zu runs past its end (%zu bytes)", tlen,
                       pos - BLOB_TLV_HEADER_SIZE, len);
            return false;
        }
        if (tag == TAG_ENCRYPTED_DATA) {
            error_setg(errp, "The swtpm state is encrypted; decrypt it "
                       "with swtpm first");
            return false;
        }
        if (tag == TAG_DATA) {
            *out = data + pos;
            *out_len = tlen;
            return true;
        }
        pos += tlen;
    }
    error_setg(errp, "swtpm state: no data in it");
    return false;
}

GByteArray *swtpm_blob_wrap(const uint8_t *data, size_t len)
{
    size_t total = BLOB_HEADER_SIZE + BLOB_TLV_HEADER_SIZE + len;
    GByteArray *b = g_byte_array_sized_new(total);
    uint8_t hdr[BLOB_HEADER_SIZE + BLOB_TLV_HEADER_SIZE] = {
        BLOB_HEADER_VERSION, 1,
    };

    assert(total <= UINT32_MAX);
    stw_be_p(hdr + 2, BLOB_HEADER_SIZE);
    stw_be_p(hdr + 4, 0);
    stl_be_p(hdr + 6, total);
    stw_be_p(hdr + 10, TAG_DATA);
    stl_be_p(hdr + 12, len);
    g_byte_array_append(b, hdr, sizeof(hdr));
    g_byte_array_append(b, data, len);
    return b;
}

#define LINEAR_SLOT(i)          (12 + 12 * (i))

bool swtpm_linear_parse(const uint8_t *data, size_t len,
                        GBytes *states[SWTPM_STATE__MAX], Error **errp)
{
    uint64_t start[SWTPM_LINEAR_MAX_STATES], end[SWTPM_LINEAR_MAX_STATES];
    unsigned i, j;

    if (len < SWTPM_LINEAR_HDR_SIZE ||
        ldq_le_p(data) != SWTPM_LINEAR_MAGIC) {
        error_setg(errp, "Not a swtpm linear state file (no 'swtpmlin' "
                   "header)");
        return false;
    }
    if (data[8] > SWTPM_LINEAR_VERSION) {
        error_setg(errp, "swtpm linear state file of version %u: only "
                   "version %u is known", data[8], SWTPM_LINEAR_VERSION);
        return false;
    }
    for (i = 0; i < SWTPM_LINEAR_MAX_STATES; i++) {
        const uint8_t *s = data + LINEAR_SLOT(i);
        uint32_t offset = ldl_le_p(s);
        uint32_t dlen = ldl_le_p(s + 4);
        uint32_t slen = ldl_le_p(s + 8);

        start[i] = end[i] = 0;
        if (!offset) {
            continue;
        }
        if (i >= SWTPM_STATE__MAX) {
            error_setg(errp, "swtpm linear state file: slot %u is used; "
                       "swtpm uses slots 0 to %u", i, SWTPM_STATE__MAX - 1);
            return false;
        }
        if (offset < SWTPM_LINEAR_HDR_SIZE || dlen > slen ||
            (uint64_t)offset + dlen > len) {
            error_setg(errp, "swtpm linear state file: the %s state "
                       "(%" PRIu32 " bytes at offset %" PRIu32 ", section "
                       "of %" PRIu32 ") is not within the file (%zu bytes)",
                       swtpm_state_names[i], dlen, offset, slen, len);
            return false;
        }
        start[i] = offset;
        end[i] = (uint64_t)offset + dlen;
        for (j = 0; j < i; j++) {
            if (end[j] > start[j] && end[i] > start[i] &&
                start[i] < end[j] && start[j] < end[i]) {
                error_setg(errp, "swtpm linear state file: the %s and %s "
                           "states overlap", swtpm_state_names[j],
                           swtpm_state_names[i]);
                return false;
            }
        }
    }
    for (i = 0; i < SWTPM_STATE__MAX; i++) {
        states[i] = start[i] ? g_bytes_new(data + start[i],
                                           end[i] - start[i]) : NULL;
    }
    return true;
}

GByteArray *swtpm_linear_build(GBytes *const states[SWTPM_STATE__MAX])
{
    GByteArray *b = g_byte_array_new();
    uint8_t hdr[SWTPM_LINEAR_HDR_SIZE] = { 0 };
    unsigned i;

    stq_le_p(hdr, SWTPM_LINEAR_MAGIC);
    hdr[8] = SWTPM_LINEAR_VERSION;
    stw_le_p(hdr + 10, SWTPM_LINEAR_HDR_SIZE);
    g_byte_array_append(b, hdr, sizeof(hdr));
    for (i = 0; i < SWTPM_STATE__MAX; i++) {
        size_t len, section;
        const void *p;

        if (!states[i]) {
            continue;
        }
        p = g_bytes_get_data(states[i], &len);
        assert(len && len <= UINT32_MAX / 2);
        section = pow2ceil(len);
        stl_le_p(b->data + LINEAR_SLOT(i), b->len);
        stl_le_p(b->data + LINEAR_SLOT(i) + 4, len);
        stl_le_p(b->data + LINEAR_SLOT(i) + 8, section);
        g_byte_array_append(b, p, len);
        /* The rest of the section, zeroed */
        g_byte_array_set_size(b, b->len + section - len);
        memset(b->data + b->len - (section - len), 0, section - len);
    }
    return b;
}
