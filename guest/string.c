/* memcpy, memmove, memset and memcmp: the compiler's and MicroPython's
 * calls, and the copies behind every hw.mem(...)[:] = ... (zeroing a fresh
 * page for a fault, copying one for COW, the GC clearing what it
 * allocates), and the comparisons behind every bytes/memoryview == (a
 * page table compared with a zero page: string0.c's byte loop took ~38,000
 * guest instructions a 4 KiB table, measured with -icount).
 *
 * Why not shared/libc/string0.c's (its versions are renamed string0_* in
 * the Makefile; its other functions stay): they move 4 bytes per loop
 * iteration, and 1 byte per iteration when either pointer is not 4-byte
 * aligned. Under TCG each iteration is a pass through a translated block,
 * so a 4 KiB page took 4.1 us to copy and 9.4 us to fill from an unaligned
 * bytes object (measured from the python REPL, TCG). Here the bulk moves
 * 64 bytes per iteration in 8-byte words (eight loads/stores per block,
 * no SSE: the kernel is built -mno-sse), once both pointers are 8-byte
 * aligned; a copy whose pointers differ in alignment moves 8-byte words
 * with unaligned loads (x86 allows them, SDM Vol. 1 4.1.1). RAM only: no
 * device memory is reached through these. */
#include <stddef.h>
#include <stdint.h>

typedef uint64_t __attribute__((may_alias, aligned(1))) u64_unaligned;

void *memcpy(void *dst, const void *src, size_t n) {
    uint8_t *d = dst;
    const uint8_t *s = src;
    while (n && ((uintptr_t)d & 7)) {
        *d++ = *s++;
        n--;
    }
    uint64_t *dw = (uint64_t *)d;
    const u64_unaligned *sw = (const u64_unaligned *)s;
    for (; n >= 64; n -= 64, dw += 8, sw += 8) {
        uint64_t a = sw[0], b = sw[1], c = sw[2], e = sw[3];
        uint64_t f = sw[4], g = sw[5], h = sw[6], i = sw[7];
        dw[0] = a; dw[1] = b; dw[2] = c; dw[3] = e;
        dw[4] = f; dw[5] = g; dw[6] = h; dw[7] = i;
    }
    for (; n >= 8; n -= 8) {
        *dw++ = *sw++;
    }
    d = (uint8_t *)dw;
    s = (const uint8_t *)sw;
    while (n--) {
        *d++ = *s++;
    }
    return dst;
}

void *memmove(void *dst, const void *src, size_t n) {
    uint8_t *d = dst;
    const uint8_t *s = src;
    if (d <= s || d >= s + n) {
        return memcpy(dst, src, n);     /* copying forwards never overwrites what is still to read */
    }
    while (n && ((uintptr_t)(d + n) & 7)) {     /* overlapping, dst above: backwards */
        n--;
        d[n] = s[n];
    }
    for (; n >= 8; n -= 8) {
        *(uint64_t *)(d + n - 8) = *(const u64_unaligned *)(s + n - 8);
    }
    while (n) {
        n--;
        d[n] = s[n];
    }
    return dst;
}

void *memset(void *p, int c, size_t n) {
    uint8_t *d = p;
    while (n && ((uintptr_t)d & 7)) {
        *d++ = (uint8_t)c;
        n--;
    }
    uint64_t v = (uint8_t)c * 0x0101010101010101ull;
    uint64_t *dw = (uint64_t *)d;
    for (; n >= 64; n -= 64, dw += 8) {
        dw[0] = v; dw[1] = v; dw[2] = v; dw[3] = v;
        dw[4] = v; dw[5] = v; dw[6] = v; dw[7] = v;
    }
    for (; n >= 8; n -= 8) {
        *dw++ = v;
    }
    d = (uint8_t *)dw;
    while (n--) {
        *d++ = (uint8_t)c;
    }
    return p;
}

int memcmp(const void *a, const void *b, size_t n) {
    const uint8_t *p = a, *q = b;
    /* 8-byte words (unaligned loads are allowed) while they are equal, 64
     * bytes a step; the first word that differs, and the tail, by bytes:
     * the result is the first differing byte's, as C requires */
    for (; n >= 64; n -= 64, p += 64, q += 64) {
        const u64_unaligned *x = (const u64_unaligned *)p, *y = (const u64_unaligned *)q;
        if ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]) |
            (x[4] ^ y[4]) | (x[5] ^ y[5]) | (x[6] ^ y[6]) | (x[7] ^ y[7])) {
            break;
        }
    }
    for (; n >= 8 && *(const u64_unaligned *)p == *(const u64_unaligned *)q; n -= 8, p += 8, q += 8) {
    }
    for (; n; n--, p++, q++) {
        if (*p != *q) {
            return *p - *q;
        }
    }
    return 0;
}
