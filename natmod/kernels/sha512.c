// SHA-512, FIPS 180-4 sections 4.1.3, 4.2.3, 5.1.2, 6.4. The message schedule is kept as a
// rolling window of 16 words (128 bytes of stack rather than 640).
#include "mnv_sha512.h"

// H(0) (5.3.5) and K (4.2.3): the first 64 bits of the fractional parts of the square roots of
// the first 8 primes and of the cube roots of the first 80 primes.
static const uint64_t INITIAL[8] = {
    0x6a09e667f3bcc908ull, 0xbb67ae8584caa73bull, 0x3c6ef372fe94f82bull,
    0xa54ff53a5f1d36f1ull, 0x510e527fade682d1ull, 0x9b05688c2b3e6c1full,
    0x1f83d9abfb41bd6bull, 0x5be0cd19137e2179ull,
};

static const uint64_t ROUND[80] = {
    0x428a2f98d728ae22ull, 0x7137449123ef65cdull, 0xb5c0fbcfec4d3b2full,
    0xe9b5dba58189dbbcull, 0x3956c25bf348b538ull, 0x59f111f1b605d019ull,
    0x923f82a4af194f9bull, 0xab1c5ed5da6d8118ull, 0xd807aa98a3030242ull,
    0x12835b0145706fbeull, 0x243185be4ee4b28cull, 0x550c7dc3d5ffb4e2ull,
    0x72be5d74f27b896full, 0x80deb1fe3b1696b1ull, 0x9bdc06a725c71235ull,
    0xc19bf174cf692694ull, 0xe49b69c19ef14ad2ull, 0xefbe4786384f25e3ull,
    0x0fc19dc68b8cd5b5ull, 0x240ca1cc77ac9c65ull, 0x2de92c6f592b0275ull,
    0x4a7484aa6ea6e483ull, 0x5cb0a9dcbd41fbd4ull, 0x76f988da831153b5ull,
    0x983e5152ee66dfabull, 0xa831c66d2db43210ull, 0xb00327c898fb213full,
    0xbf597fc7beef0ee4ull, 0xc6e00bf33da88fc2ull, 0xd5a79147930aa725ull,
    0x06ca6351e003826full, 0x142929670a0e6e70ull, 0x27b70a8546d22ffcull,
    0x2e1b21385c26c926ull, 0x4d2c6dfc5ac42aedull, 0x53380d139d95b3dfull,
    0x650a73548baf63deull, 0x766a0abb3c77b2a8ull, 0x81c2c92e47edaee6ull,
    0x92722c851482353bull, 0xa2bfe8a14cf10364ull, 0xa81a664bbc423001ull,
    0xc24b8b70d0f89791ull, 0xc76c51a30654be30ull, 0xd192e819d6ef5218ull,
    0xd69906245565a910ull, 0xf40e35855771202aull, 0x106aa07032bbd1b8ull,
    0x19a4c116b8d2d0c8ull, 0x1e376c085141ab53ull, 0x2748774cdf8eeb99ull,
    0x34b0bcb5e19b48a8ull, 0x391c0cb3c5c95a63ull, 0x4ed8aa4ae3418acbull,
    0x5b9cca4f7763e373ull, 0x682e6ff3d6b2b8a3ull, 0x748f82ee5defb2fcull,
    0x78a5636f43172f60ull, 0x84c87814a1f0ab72ull, 0x8cc702081a6439ecull,
    0x90befffa23631e28ull, 0xa4506cebde82bde9ull, 0xbef9a3f7b2c67915ull,
    0xc67178f2e372532bull, 0xca273eceea26619cull, 0xd186b8c721c0c207ull,
    0xeada7dd6cde0eb1eull, 0xf57d4f7fee6ed178ull, 0x06f067aa72176fbaull,
    0x0a637dc5a2c898a6ull, 0x113f9804bef90daeull, 0x1b710b35131c471bull,
    0x28db77f523047d84ull, 0x32caab7b40c72493ull, 0x3c9ebe0a15c9bebcull,
    0x431d67c49c100d4cull, 0x4cc5d4becb3e42b6ull, 0x597f299cfc657e2aull,
    0x5fcb6fab3ad6faecull, 0x6c44198c4a475817ull,
};

// A macro, not a function, so that every shift count is a constant: a variable 64-bit shift
// would call libgcc's __aeabi_llsr on armv6m, which a native module cannot link.
#define ROTR(x, n) (((x) >> (n)) | ((x) << (64 - (n))))

static uint64_t load_big_endian(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

static void compress(uint64_t state[8], const uint8_t block[128]) {
    uint64_t w[16];
    uint64_t v[8];
    for (int i = 0; i < 16; i++) {
        w[i] = load_big_endian(block + 8 * i);
    }
    for (int i = 0; i < 8; i++) {
        v[i] = state[i];
    }
    for (int t = 0; t < 80; t++) {
        if (t >= 16) {
            // W[t] = s1(W[t-2]) + W[t-7] + s0(W[t-15]) + W[t-16], indices taken mod 16.
            const uint64_t w15 = w[(t + 1) & 15], w2 = w[(t + 14) & 15];
            const uint64_t s0 = ROTR(w15, 1) ^ ROTR(w15, 8) ^ (w15 >> 7);
            const uint64_t s1 = ROTR(w2, 19) ^ ROTR(w2, 61) ^ (w2 >> 6);
            w[t & 15] += s0 + w[(t + 9) & 15] + s1;
        }
        const uint64_t e = v[4], a = v[0];
        const uint64_t t1 = v[7] + (ROTR(e, 14) ^ ROTR(e, 18) ^ ROTR(e, 41))
            + ((e & v[5]) ^ (~e & v[6])) + ROUND[t] + w[t & 15];
        const uint64_t t2 = (ROTR(a, 28) ^ ROTR(a, 34) ^ ROTR(a, 39))
            + ((a & v[1]) ^ (a & v[2]) ^ (v[1] & v[2]));
        v[7] = v[6];
        v[6] = v[5];
        v[5] = v[4];
        v[4] = v[3] + t1;
        v[3] = v[2];
        v[2] = v[1];
        v[1] = v[0];
        v[0] = t1 + t2;
    }
    for (int i = 0; i < 8; i++) {
        state[i] += v[i];
    }
}

void mnv_sha512_init(mnv_sha512 *h) {
    for (int i = 0; i < 8; i++) {
        h->state[i] = INITIAL[i];
    }
    h->total = 0;
}

void mnv_sha512_update(mnv_sha512 *h, const uint8_t *data, size_t len) {
    size_t used = (size_t)(h->total & 127);
    h->total += len;
    while (len) {
        h->block[used++] = *data++;
        len--;
        if (used == 128) {
            compress(h->state, h->block);
            used = 0;
        }
    }
}

void mnv_sha512_final(mnv_sha512 *h, uint8_t digest[64]) {
    // Padding (5.1.2): 0x80, zeros, then the length in bits as a 128-bit big-endian number.
    uint64_t bits = h->total << 3;
    const uint64_t high_bits = h->total >> 61;
    size_t used = (size_t)(h->total & 127);
    h->block[used++] = 0x80;
    if (used > 112) {
        while (used < 128) {
            h->block[used++] = 0;
        }
        compress(h->state, h->block);
        used = 0;
    }
    while (used < 112) {
        h->block[used++] = 0;
    }
    for (int i = 0; i < 8; i++) {
        h->block[112 + i] = i == 7 ? (uint8_t)high_bits : 0;
        h->block[127 - i] = (uint8_t)bits;
        bits >>= 8;
    }
    compress(h->state, h->block);
    for (int i = 0; i < 8; i++) {
        uint64_t s = h->state[i];
        for (int j = 7; j >= 0; j--) {
            digest[8 * i + j] = (uint8_t)s;
            s >>= 8;
        }
    }
}
