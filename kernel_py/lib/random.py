# Random bytes for getrandom, AT_RANDOM and /dev/urandom: xoshiro256**
# (Blackman and Vigna), seeded at boot from the TSC and the RTC. Good
# statistics, NOT cryptographic: this kernel has no entropy pool (Linux's
# drivers/char/random.c mixes interrupt timings into ChaCha20). Say so
# wherever it matters.

M64 = (1 << 64) - 1


def rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & M64


def splitmix64(x):
    x = (x + 0x9E3779B97F4A7C15) & M64
    z = x
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return x, z ^ (z >> 31)


class Random:
    def __init__(self, seed):
        s = []
        x = seed & M64
        for _ in range(4):
            x, z = splitmix64(x)
            s.append(z)
        self.s = s

    def next64(self):
        s = self.s
        result = (rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result

    def get_bytes(self, n):
        out = bytearray(n)
        i = 0
        while i < n:
            v = self.next64()
            for j in range(min(8, n - i)):
                out[i + j] = (v >> (8 * j)) & 0xFF
            i += 8
        return bytes(out)
