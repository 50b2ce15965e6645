/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * QEMU Crypto: zeroing memory that held secrets, before it is freed
 */

#ifndef QCRYPTO_MEMWIPE_H
#define QCRYPTO_MEMWIPE_H

/**
 * qcrypto_memwipe:
 * @p: the memory to zero
 * @n: its length, in bytes
 *
 * Zero @n bytes at @p, which held key material or plaintext, before the
 * memory is freed or reused.  Unlike memset(), the stores are kept even
 * when the compiler sees that nothing reads @p again (it must assume
 * that the empty asm statement does).
 */
static inline void qcrypto_memwipe(void *p, size_t n)
{
    if (n) {
        memset(p, 0, n);
        asm volatile("" : : "r"(p) : "memory");
    }
}

/**
 * qcrypto_memwipe_free:
 * @p: memory from g_malloc(), or NULL
 * @n: its length, in bytes
 *
 * Zero @n bytes at @p, then g_free() it.
 */
static inline void qcrypto_memwipe_free(void *p, size_t n)
{
    if (p) {
        qcrypto_memwipe(p, n);
        g_free(p);
    }
}

#endif /* QCRYPTO_MEMWIPE_H */
