/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * crc32c() and iov_crc32c(): the test vectors of RFC 3720 (iSCSI), and,
 * on x86-64 hosts with SSE4.2, the same results from the CRC32
 * instruction as from the table for every length and alignment.
 */

#include "qemu/osdep.h"
#include "qemu/crc32c.h"
#include "qemu/iov.h"
#if defined(__x86_64__) && defined(CONFIG_CPUID_H)
#include "host/cpuinfo.h"
#define HAVE_SSE4_2_PATH
#endif

/* RFC 3720, B.4: CRC-32C of 32-byte buffers, as stored (little endian) */
static void test_rfc3720(void)
{
    uint8_t buf[32];
    int i;

    memset(buf, 0, sizeof(buf));
    g_assert_cmphex(crc32c(0xffffffff, buf, 32), ==, 0x8a9136aa);
    memset(buf, 0xff, sizeof(buf));
    g_assert_cmphex(crc32c(0xffffffff, buf, 32), ==, 0x62a8ab43);
    for (i = 0; i < 32; i++) {
        buf[i] = i;
    }
    g_assert_cmphex(crc32c(0xffffffff, buf, 32), ==, 0x46dd794e);
    for (i = 0; i < 32; i++) {
        buf[i] = 31 - i;
    }
    g_assert_cmphex(crc32c(0xffffffff, buf, 32), ==, 0x113fdb5c);
    g_assert_cmphex(crc32c(0xffffffff, (const uint8_t *)"123456789", 9), ==,
                    0xe3069283);
    g_assert_cmphex(crc32c(0xffffffff, buf, 0), ==, 0);
}

/* A bit at a time, from the polynomial: independent of both paths */
static uint32_t crc32c_bitwise(const uint8_t *data, size_t len)
{
    uint32_t crc = 0xffffffff;
    int k;

    while (len--) {
        crc ^= *data++;
        for (k = 0; k < 8; k++) {
            crc = (crc >> 1) ^ (crc & 1 ? 0x82f63b78 : 0);
        }
    }
    return crc ^ 0xffffffff;
}

static void check_all(const uint8_t *buf)
{
    unsigned off, len;

    for (off = 0; off < 16; off++) {
        for (len = 0; len <= 300; len++) {
            g_assert_cmphex(crc32c(0xffffffff, buf + off, len), ==,
                            crc32c_bitwise(buf + off, len));
        }
    }
}

static void test_lengths_and_alignments(void)
{
    g_autofree uint8_t *buf = g_malloc(400);
    GRand *rand = g_rand_new_with_seed(0x6e7673);
    int i;

    for (i = 0; i < 400; i++) {
        buf[i] = g_rand_int(rand);
    }
    g_rand_free(rand);

    check_all(buf);
#ifdef HAVE_SSE4_2_PATH
    if (cpuinfo & CPUINFO_SSE4_2) {
        /* Again without the CRC32 instruction: the table */
        unsigned saved = cpuinfo;

        cpuinfo &= ~CPUINFO_SSE4_2;
        check_all(buf);
        cpuinfo = saved;
    } else {
        g_test_message("no SSE4.2 on this host: the table path only");
    }
#endif
}

/* iov_crc32c() over any split equals crc32c() over the whole */
static void test_iov(void)
{
    uint8_t buf[100];
    struct iovec iov[3];
    unsigned a, b;

    for (a = 0; a < sizeof(buf); a++) {
        buf[a] = a * 7;
    }
    for (a = 0; a <= sizeof(buf); a += 9) {
        for (b = a; b <= sizeof(buf); b += 13) {
            iov[0] = (struct iovec) { buf, a };
            iov[1] = (struct iovec) { buf + a, b - a };
            iov[2] = (struct iovec) { buf + b, sizeof(buf) - b };
            g_assert_cmphex(iov_crc32c(0xffffffff, iov, 3), ==,
                            crc32c(0xffffffff, buf, sizeof(buf)));
        }
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/crc32c/rfc3720", test_rfc3720);
    g_test_add_func("/crc32c/lengths-and-alignments",
                    test_lengths_and_alignments);
    g_test_add_func("/crc32c/iov", test_iov);
    return g_test_run();
}
