# A checksum of process memory for tests and benchmarks (the `memsum`
# command): page by page, a Fletcher-style sum over the page's 32-bit
# words (a = 1 + sum w, b = sum of the running a, both mod 2**64), the
# pages folded with FNV-1a's multiply. The per-page sum runs in viper in
# the guest (a Python loop over 1024 words would cost ~1 ms a page); the
# host has the same function in plain Python. Linear in the words, so the
# host can compute it in closed form for pattern pages (tests/guest).

from kernel_py.arch.x86.native import VIPER, micropython

MASK64 = (1 << 64) - 1
FNV_PRIME = 0x100000001B3
FNV_OFFSET = 0xCBF29CE484222325
WORDS = 1024

if VIPER:
    @micropython.viper
    def page_csum(buf) -> uint:
        p = ptr32(buf)
        a = uint(1)
        b = uint(0)
        i = 0
        while i < 1024:
            a += uint(p[i])
            b += a
            i += 1
        return (b << 32) ^ a
else:
    def page_csum(buf):
        words = memoryview(buf).cast("I")
        a, b = 1, 0
        for w in words:
            a += w
            b += a
        a &= MASK64
        b &= MASK64
        return ((b << 32) & MASK64) ^ a


def fold(h, c):
    return ((h ^ c) * FNV_PRIME) & MASK64


def pattern_page_csum(stamp, byte):
    """page_csum of a pattern page: every byte `byte`, the first 8 bytes
    the little-endian 64-bit `stamp` (closed form, for the host)."""
    w = [stamp & 0xFFFFFFFF, stamp >> 32]
    c = byte * 0x01010101
    n = WORDS
    a = 1 + w[0] + w[1] + c * (n - 2)
    # b = sum_{j} a_j = n + sum_i (n - i) * w_i
    b = n + n * w[0] + (n - 1) * w[1] + c * ((n - 2) * (n - 1) // 2)
    return (((b & MASK64) << 32) & MASK64) ^ (a & MASK64)


def pattern_stamp(seed, va):
    return ((seed & 0xFFFFFF) << 40) | (va >> 12)


def pattern_byte(seed, va):
    return (seed + (va >> 12) * 7) & 0xFF


def pattern_memsum(start, length, seed):
    """What `memsum` prints for a range `pattern` filled with `seed` (host
    side: the tests and the soak check swapped pages against it)."""
    h = FNV_OFFSET
    for va in range(start, start + length, 4096):
        h = fold(h, pattern_page_csum(pattern_stamp(seed, va), pattern_byte(seed, va)))
    return "0x%016x" % h
