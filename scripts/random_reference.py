#!/usr/bin/env python3
"""Independent reference for mixprec's generator (`mixprec-chacha8-v1`).

Recomputes the first words and normal samples of a seed from the definition
in crates/tensor/src/random.rs: key = four SplitMix64 outputs of the seed
(little-endian), ChaCha with 8 rounds in djb's layout (64-bit block counter,
64-bit stream number), Box-Muller on pairs of u64s. Normals use Python's libm,
so they agree with mixprec's to about 1e-15, not bit for bit.

    python3 scripts/random_reference.py [SEED]
"""
import math
import struct
import sys

M32, M64 = (1 << 32) - 1, (1 << 64) - 1


def key_of(seed):
    state, key = seed, b""
    for _ in range(4):
        state = (state + 0x9E3779B97F4A7C15) & M64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        key += struct.pack("<Q", z ^ (z >> 31))
    return key


def chacha_block(key, counter, stream, rounds):
    rotl = lambda x, n: ((x << n) | (x >> (32 - n))) & M32
    s = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574, *struct.unpack("<8I", key),
         counter & M32, counter >> 32, stream & M32, stream >> 32]
    w = s[:]

    def quarter(a, b, c, d):
        w[a] = (w[a] + w[b]) & M32; w[d] = rotl(w[d] ^ w[a], 16)
        w[c] = (w[c] + w[d]) & M32; w[b] = rotl(w[b] ^ w[c], 12)
        w[a] = (w[a] + w[b]) & M32; w[d] = rotl(w[d] ^ w[a], 8)
        w[c] = (w[c] + w[d]) & M32; w[b] = rotl(w[b] ^ w[c], 7)

    for _ in range(rounds // 2):
        quarter(0, 4, 8, 12); quarter(1, 5, 9, 13); quarter(2, 6, 10, 14); quarter(3, 7, 11, 15)
        quarter(0, 5, 10, 15); quarter(1, 6, 11, 12); quarter(2, 7, 8, 13); quarter(3, 4, 9, 14)
    return [(a + b) & M32 for a, b in zip(w, s)]


def main():
    # djb's ChaCha20 vector for the all-zero key and nonce checks the block function.
    zero = b"".join(struct.pack("<I", x) for x in chacha_block(bytes(32), 0, 0, 20))
    assert zero.hex().startswith("76b8e0ada0f13d90405d6ae55386bd28"), "ChaCha block function is wrong"
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    key = key_of(seed)
    words = [w for block in range(2) for w in chacha_block(key, block, 0, 8)]
    print("first words:", words[:4])
    for i in range(0, 16, 4):
        x1 = words[i] | words[i + 1] << 32
        x2 = words[i + 2] | words[i + 3] << 32
        r = math.sqrt(-2.0 * math.log(((x1 >> 11) + 1) * 2.0**-53))
        theta = 2.0 * math.pi * ((x2 >> 11) * 2.0**-53)
        print("normal pair:", repr(r * math.cos(theta)), repr(r * math.sin(theta)))


if __name__ == "__main__":
    main()
