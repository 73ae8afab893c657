// Ed25519 verification from RFC 8032's arithmetic: the field GF(2^255 - 19), the twisted
// Edwards curve -x^2 + y^2 = 1 + d x^2 y^2 in extended coordinates, and SHA-512.
//
// Field elements are 16 limbs of 16 bits (uint16_t, little-endian). The Cortex-M0+ of the
// RP2040 has a 32 x 32 -> 32 multiply and no 64-bit one: with 16-bit limbs every partial
// product fits that instruction, and the sums need only 64-bit additions (ADDS/ADCS), never
// a call to __aeabi_lmul. The usual 10 x 25.5-bit limbs would need a 64-bit product each,
// four multiplies and a call on that core. The same C runs on x64 and Cortex-M4F unchanged.
//
// A stored element is "normalized": each limb below 2^16, so its value is below 2^256 but not
// necessarily below p; only freeze() reduces fully. Verification handles public data only, so
// nothing here needs to run in constant time.
#include "mnv_ed25519.h"

#include "mnv_sha512.h"

typedef uint16_t fe[16];

typedef struct {
    fe x, y, z, t;  // x/z, y/z, and t/z = (x/z)(y/z)
} point;

typedef struct {
    fe y_minus_x, y_plus_x, t_2d, z_2;  // an addend prepared for point_add
} cached;

// p = 2^255 - 19; 4p, limb by limb, with every limb above 2^16: a + 4p - b never goes
// negative in any limb.
static const uint16_t FIELD_P[16] = {
    0xffed, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff,
    0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0x7fff};
#define FOUR_P_LIMB0 0x1ffb4u
#define FOUR_P_LIMB 0x1fffeu

// d = -121665/121666, 2d, sqrt(-1) = 2^((p-1)/4), the base point B (RFC 8032 5.1) with
// y = 4/5 and x even, and the group order L = 2^252 + 27742317777372353535851937790883648493.
static const uint16_t CURVE_D[16] = {
    0x78a3, 0x1359, 0x4dca, 0x75eb, 0xd8ab, 0x4141, 0x0a4d, 0x0070,
    0xe898, 0x7779, 0x4079, 0x8cc7, 0xfe73, 0x2b6f, 0x6cee, 0x5203};
static const uint16_t CURVE_2D[16] = {
    0xf159, 0x26b2, 0x9b94, 0xebd6, 0xb156, 0x8283, 0x149a, 0x00e0,
    0xd130, 0xeef3, 0x80f2, 0x198e, 0xfce7, 0x56df, 0xd9dc, 0x2406};
static const uint16_t SQRT_M1[16] = {
    0xa0b0, 0x4a0e, 0x1b27, 0xc4ee, 0xe478, 0xad2f, 0x1806, 0x2f43,
    0xd7a7, 0x3dfb, 0x0099, 0x2b4d, 0xdf0b, 0x4fc1, 0x2480, 0x2b83};
static const uint16_t BASE_X[16] = {
    0xd51a, 0x8f25, 0x2d60, 0xc956, 0xa7b2, 0x9525, 0xc760, 0x692c,
    0xdc5c, 0xfdd6, 0xe231, 0xc0a4, 0x53fe, 0xcd6e, 0x36d3, 0x2169};
static const uint16_t BASE_Y[16] = {
    0x6658, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666,
    0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666};
static const uint16_t BASE_T[16] = {
    0xdda3, 0xa5b7, 0x8ab3, 0x6dde, 0x52f5, 0x7751, 0x9f80, 0x20f0,
    0xe37d, 0x64ab, 0x4e8e, 0x66ea, 0x7665, 0xd78b, 0x5f0f, 0x6787};
static const uint16_t ORDER_L[16] = {
    0xd3ed, 0x5cf5, 0x631a, 0x5812, 0x9cd6, 0xa2f7, 0xf9de, 0x14de,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x1000};

// -- 256-bit integers as 16 limbs -------------------------------------------------------------

static void limbs_copy(uint16_t *r, const uint16_t *a) {
    for (int i = 0; i < 16; i++) {
        r[i] = a[i];
    }
}

static void limbs_from_bytes(uint16_t *r, const uint8_t *s) {
    for (int i = 0; i < 16; i++) {
        r[i] = (uint16_t)(s[2 * i] | (s[2 * i + 1] << 8));
    }
}

static void limbs_to_bytes(uint8_t *s, const uint16_t *a) {
    for (int i = 0; i < 16; i++) {
        s[2 * i] = (uint8_t)a[i];
        s[2 * i + 1] = (uint8_t)(a[i] >> 8);
    }
}

// a -= m when a >= m (both normalized); returns whether it subtracted.
static int limbs_subtract_if_not_below(uint16_t *a, const uint16_t *m) {
    uint16_t diff[16];
    uint32_t borrow = 0;
    for (int i = 0; i < 16; i++) {
        const uint32_t d = (uint32_t)a[i] - m[i] - borrow;  // wraps when negative
        diff[i] = (uint16_t)d;
        borrow = d >> 31;
    }
    if (borrow) {
        return 0;
    }
    limbs_copy(a, diff);
    return 1;
}

// -- the field GF(p) --------------------------------------------------------------------------

// t (limbs below 2^16) plus carry * 2^256, normalized into r: 2^256 = 2p + 38 = 38 (mod p).
// carry < 2^26 keeps 38 * carry within 32 bits; the second time round carry is at most 1,
// and the value left is then below 2^22 + 38, so the loop ends.
static void fe_wrap_store(uint16_t *r, uint32_t *t, uint32_t carry) {
    while (carry) {
        carry *= 38;
        for (int i = 0; carry && i < 16; i++) {
            carry += t[i];
            t[i] = carry & 0xffff;
            carry >>= 16;
        }
    }
    for (int i = 0; i < 16; i++) {
        r[i] = (uint16_t)t[i];
    }
}

// t with limbs below 2^18, normalized into r.
static void fe_carry_store(uint16_t *r, uint32_t *t) {
    uint32_t carry = 0;
    for (int i = 0; i < 16; i++) {
        carry += t[i];
        t[i] = carry & 0xffff;
        carry >>= 16;
    }
    fe_wrap_store(r, t, carry);
}

static void fe_add(uint16_t *r, const uint16_t *a, const uint16_t *b) {
    uint32_t t[16];
    for (int i = 0; i < 16; i++) {
        t[i] = (uint32_t)a[i] + b[i];
    }
    fe_carry_store(r, t);
}

// a - b + 4p: every limb of 4p exceeds 2^16 - 1 >= b's, so no limb goes negative.
static void fe_sub(uint16_t *r, const uint16_t *a, const uint16_t *b) {
    uint32_t t[16];
    for (int i = 0; i < 16; i++) {
        t[i] = (uint32_t)a[i] + (i ? FOUR_P_LIMB : FOUR_P_LIMB0) - b[i];
    }
    fe_carry_store(r, t);
}

// The product's columns k and k + 16 are folded together, since 2^256 = 38 (mod p): limb k
// of the result is column k plus 38 times column k + 16, each column a sum of partial
// products below 2^32 (16 limbs of at most 16 bits), so a folded column is below
// 39 * 16 * 2^32 < 2^42 and the running carry out of limb 15 below 2^26. The loops stay
// rolled: fully unrolled (measured on the emulated Pico) verification took 15.5 M cycles
// instead of 24.3 M but 7.5 KB more code, which a native module loads into the Pico's heap.
static void fe_mul(uint16_t *r, const uint16_t *a, const uint16_t *b) {
    uint32_t t[16];
    uint64_t acc = 0;
    for (int k = 0; k < 16; k++) {
        uint64_t low = 0, high = 0;
        for (int i = 0; i <= k; i++) {
            low += (uint32_t)a[i] * b[k - i];
        }
        for (int i = k + 1; i < 16; i++) {
            high += (uint32_t)a[i] * b[k + 16 - i];
        }
        acc += low + (high << 5) + (high << 2) + (high << 1);
        t[k] = (uint32_t)acc & 0xffff;
        acc >>= 16;
    }
    fe_wrap_store(r, t, (uint32_t)acc);
}

// a^2: each cross product a_i a_j (i < j) once, doubled, and the squares a_i^2 added.
static void fe_square(uint16_t *r, const uint16_t *a) {
    uint32_t t[16];
    uint64_t acc = 0;
    for (int k = 0; k < 16; k++) {
        uint64_t low = 0, high = 0;
        for (int i = 0; i < k - i; i++) {
            low += (uint32_t)a[i] * a[k - i];
        }
        for (int i = k + 1; i < k + 16 - i; i++) {
            high += (uint32_t)a[i] * a[k + 16 - i];
        }
        low <<= 1;
        high <<= 1;
        if (!(k & 1)) {
            low += (uint32_t)a[k >> 1] * a[k >> 1];
            high += (uint32_t)a[(k >> 1) + 8] * a[(k >> 1) + 8];
        }
        acc += low + (high << 5) + (high << 2) + (high << 1);
        t[k] = (uint32_t)acc & 0xffff;
        acc >>= 16;
    }
    fe_wrap_store(r, t, (uint32_t)acc);
}

static void fe_square_times(uint16_t *r, const uint16_t *a, int times) {
    fe_square(r, a);
    while (--times) {
        fe_square(r, r);
    }
}

// The canonical 32-byte encoding of a mod p (a normalized value is below 2^256 = 2p + 38,
// so two subtractions of p at most).
static void fe_freeze(uint8_t *s, const uint16_t *a) {
    fe v;
    limbs_copy(v, a);
    if (limbs_subtract_if_not_below(v, FIELD_P)) {
        limbs_subtract_if_not_below(v, FIELD_P);
    }
    limbs_to_bytes(s, v);
}

static int fe_equal(const uint16_t *a, const uint16_t *b) {
    uint8_t sa[32], sb[32];
    fe_freeze(sa, a);
    fe_freeze(sb, b);
    int diff = 0;
    for (int i = 0; i < 32; i++) {
        diff |= sa[i] ^ sb[i];
    }
    return diff == 0;
}

static int fe_is_zero(const uint16_t *a) {
    static const uint16_t zero[16] = {0};
    return fe_equal(a, zero);
}

static int fe_is_odd(const uint16_t *a) {
    uint8_t s[32];
    fe_freeze(s, a);
    return s[0] & 1;
}

// z^(2^250 - 1) into r, and z^11 into z11, by squarings and 11 multiplications:
// z^(2^5 - 1) from z^2, z^9, z^11, z^22; then z^(2^n - 1) for n = 10, 20, 40, 50, 100, 200,
// 250, each as z^(2^m - 1) squared m times times z^(2^(n-m) - 1).
static void fe_pow_2_250_minus_1(uint16_t *r, uint16_t *z11, const uint16_t *z) {
    fe t0, t1, t2;
    fe_square(t0, z);              // 2
    fe_square_times(t1, t0, 2);    // 8
    fe_mul(t1, t1, z);             // 9
    fe_mul(z11, t0, t1);           // 11
    fe_square(t0, z11);            // 22
    fe_mul(t0, t0, t1);            // 31 = 2^5 - 1
    fe_square_times(t1, t0, 5);
    fe_mul(t1, t1, t0);            // 2^10 - 1
    fe_square_times(t2, t1, 10);
    fe_mul(t2, t2, t1);            // 2^20 - 1
    fe_square_times(t0, t2, 20);
    fe_mul(t0, t0, t2);            // 2^40 - 1
    fe_square_times(t0, t0, 10);
    fe_mul(t0, t0, t1);            // 2^50 - 1
    fe_square_times(t1, t0, 50);
    fe_mul(t1, t1, t0);            // 2^100 - 1
    fe_square_times(t2, t1, 100);
    fe_mul(t2, t2, t1);            // 2^200 - 1
    fe_square_times(t2, t2, 50);
    fe_mul(r, t2, t0);             // 2^250 - 1
}

// r = 1/z = z^(p - 2) = z^((2^250 - 1) * 2^5 + 11).
static void fe_invert(uint16_t *r, const uint16_t *z) {
    fe t, z11;
    fe_pow_2_250_minus_1(t, z11, z);
    fe_square_times(t, t, 5);
    fe_mul(r, t, z11);
}

// r = z^((p - 5) / 8) = z^((2^250 - 1) * 4 + 1).
static void fe_pow_p_minus_5_over_8(uint16_t *r, const uint16_t *z) {
    fe t, z11;
    fe_pow_2_250_minus_1(t, z11, z);
    fe_square_times(t, t, 2);
    fe_mul(r, t, z);
}

// -- the curve --------------------------------------------------------------------------------

// RFC 8032 5.1.3: the point a 32-byte string encodes; 0 on success, -1 when it encodes none
// (y not below p, x^2 with no square root, or x = 0 with the sign bit set).
static int point_decode(point *p, const uint8_t *s) {
    const int sign = s[31] >> 7;
    fe u, v, v3, check;
    limbs_from_bytes(p->y, s);
    p->y[15] &= 0x7fff;
    fe one = {1};
    // Canonical y only: y - p borrowing means y < p.
    limbs_copy(u, p->y);
    if (limbs_subtract_if_not_below(u, FIELD_P)) {
        return -1;
    }
    fe_square(u, p->y);
    fe_mul(v, u, CURVE_D);
    fe_sub(u, u, one);          // u = y^2 - 1
    fe_add(v, v, one);          // v = d y^2 + 1
    // x = u v^3 (u v^7)^((p-5)/8), a square root of u/v if there is one.
    fe_square(v3, v);
    fe_mul(v3, v3, v);          // v^3
    fe_square(p->x, v3);
    fe_mul(p->x, p->x, v);      // v^7
    fe_mul(p->x, p->x, u);      // u v^7
    fe_pow_p_minus_5_over_8(p->x, p->x);
    fe_mul(p->x, p->x, v3);
    fe_mul(p->x, p->x, u);
    fe_square(check, p->x);
    fe_mul(check, check, v);    // v x^2
    if (!fe_equal(check, u)) {
        fe_add(check, check, u);
        if (!fe_is_zero(check)) {
            return -1;          // v x^2 is neither u nor -u: u/v is no square
        }
        fe_mul(p->x, p->x, SQRT_M1);
    }
    if (fe_is_zero(p->x) && sign) {
        return -1;
    }
    if (fe_is_odd(p->x) != sign) {
        static const uint16_t zero[16] = {0};
        fe_sub(p->x, zero, p->x);
    }
    limbs_copy(p->z, one);
    fe_mul(p->t, p->x, p->y);
    return 0;
}

static void point_to_cached(cached *c, const point *p) {
    fe_sub(c->y_minus_x, p->y, p->x);
    fe_add(c->y_plus_x, p->y, p->x);
    fe_mul(c->t_2d, p->t, CURVE_2D);
    fe_add(c->z_2, p->z, p->z);
}

// r = p + q (r may be p): the extended-coordinates addition for a = -1 (Hisil, Wong, Carter,
// Dawson 2008), complete on this curve, 8 multiplications with q prepared.
static void point_add(point *r, const point *p, const cached *q) {
    fe a, b, c, d, e;
    fe_sub(a, p->y, p->x);
    fe_mul(a, a, q->y_minus_x);     // A = (Y1 - X1)(Y2 - X2)
    fe_add(b, p->y, p->x);
    fe_mul(b, b, q->y_plus_x);      // B = (Y1 + X1)(Y2 + X2)
    fe_mul(c, p->t, q->t_2d);       // C = 2d T1 T2
    fe_mul(d, p->z, q->z_2);        // D = 2 Z1 Z2
    fe_sub(e, b, a);                // E = B - A
    fe_add(b, b, a);                // H = B + A
    fe_sub(a, d, c);                // F = D - C
    fe_add(d, d, c);                // G = D + C
    fe_mul(r->x, e, a);             // E F
    fe_mul(r->y, d, b);             // G H
    fe_mul(r->t, e, b);             // E H
    fe_mul(r->z, a, d);             // F G
}

// r = 2p (r may be p) with a = -1: with A = X^2, B = Y^2, C = 2Z^2, E = 2XY, G = B - A,
// F = C - G, H = A + B: X3 = E F, Y3 = G H, T3 = E H, Z3 = F G (the HWCD doubling with
// F and H negated, which negates all four coordinates and so names the same point).
static void point_double(point *r, const point *p) {
    fe a, b, c, e, h;
    fe_square(a, p->x);
    fe_square(b, p->y);
    fe_square(c, p->z);
    fe_add(c, c, c);                // C
    fe_add(e, p->x, p->y);
    fe_square(e, e);
    fe_add(h, a, b);                // H = A + B
    fe_sub(e, e, h);                // E = (X + Y)^2 - A - B
    fe_sub(b, b, a);                // G = B - A
    fe_sub(c, c, b);                // F = C - G
    fe_mul(r->x, e, c);
    fe_mul(r->y, b, h);
    fe_mul(r->t, e, h);
    fe_mul(r->z, c, b);
}

// -- scalars ----------------------------------------------------------------------------------

// k = the 512-bit little-endian digest mod L, by binary long division (512 shift-and-subtract
// steps: a few hundred microseconds on a Cortex-M0+, against ~100 ms for the points).
static void scalar_reduce(uint8_t *k, const uint8_t *digest) {
    fe r = {0};
    for (int bit = 511; bit >= 0; bit--) {
        uint32_t carry = (digest[bit >> 3] >> (bit & 7)) & 1;
        for (int i = 0; i < 16; i++) {  // r = 2r + bit; r < L < 2^253, so this fits
            carry |= (uint32_t)r[i] << 1;
            r[i] = (uint16_t)carry;
            carry >>= 16;
        }
        limbs_subtract_if_not_below(r, ORDER_L);
    }
    limbs_to_bytes(k, r);
}

static int scalar_is_canonical(const uint8_t *s) {
    fe v;
    limbs_from_bytes(v, s);
    return !limbs_subtract_if_not_below(v, ORDER_L);
}

static int bit_of(const uint8_t *scalar, int i) {
    return (scalar[i >> 3] >> (i & 7)) & 1;
}

// k = SHA-512(R || A || message) mod L. This and equation_holds are kept out of line so that
// the hash state and the points never share one stack frame: the deepest call chain stays
// at 1.3 KB on Cortex-M0 (gcc -fstack-usage; the Pico's MicroPython has a small C stack).
__attribute__((noinline)) static void challenge(uint8_t *k, const uint8_t *r,
    const uint8_t *public_key, const uint8_t *message, size_t message_len) {
    mnv_sha512 h;
    uint8_t digest[64];
    mnv_sha512_init(&h);
    mnv_sha512_update(&h, r, 32);
    mnv_sha512_update(&h, public_key, 32);
    mnv_sha512_update(&h, message, message_len);
    mnv_sha512_final(&h, digest);
    scalar_reduce(k, digest);
}

// -- verification (RFC 8032 5.1.7) ------------------------------------------------------------

// [s]B - [k]A in one pass over the bits of both scalars (Shamir's trick: 253 doublings and
// about 190 additions), encoded and compared with R's bytes, as the RFC's step 3 allows
// ("sufficient, but not required" to skip the cofactor).
__attribute__((noinline)) static int equation_holds(const point *minus_a, const uint8_t *s,
    const uint8_t *k, const uint8_t *r_bytes) {
    cached base, minus_key, both;
    point acc;
    limbs_copy(acc.x, BASE_X);
    limbs_copy(acc.y, BASE_Y);
    limbs_copy(acc.t, BASE_T);
    fe one = {1};
    limbs_copy(acc.z, one);
    point_to_cached(&base, &acc);
    point_to_cached(&minus_key, minus_a);
    point_add(&acc, minus_a, &base);
    point_to_cached(&both, &acc);
    static const uint16_t zero[16] = {0};
    limbs_copy(acc.x, zero);
    limbs_copy(acc.y, one);
    limbs_copy(acc.z, one);
    limbs_copy(acc.t, zero);
    for (int i = 252; i >= 0; i--) {  // s and k are below L < 2^253
        point_double(&acc, &acc);
        const int sb = bit_of(s, i), kb = bit_of(k, i);
        if (sb || kb) {
            point_add(&acc, &acc, sb && kb ? &both : sb ? &base : &minus_key);
        }
    }
    fe zi;
    uint8_t encoded[32];
    fe_invert(zi, acc.z);
    fe_mul(acc.x, acc.x, zi);
    fe_mul(acc.y, acc.y, zi);
    fe_freeze(encoded, acc.y);
    encoded[31] |= (uint8_t)(fe_is_odd(acc.x) << 7);
    int diff = 0;
    for (int i = 0; i < 32; i++) {
        diff |= encoded[i] ^ r_bytes[i];
    }
    return diff == 0;
}

int mnv_ed25519_verify(const uint8_t *public_key, const uint8_t *message, size_t message_len,
    const uint8_t *signature) {
    const uint8_t *r_bytes = signature, *s = signature + 32;
    uint8_t k[32];
    point p;
    if (!scalar_is_canonical(s)) {
        return MNV_ED25519_BAD_S;
    }
    if (point_decode(&p, r_bytes)) {  // decoded only to refuse; the check compares bytes
        return MNV_ED25519_BAD_R;
    }
    if (point_decode(&p, public_key)) {
        return MNV_ED25519_BAD_KEY;
    }
    static const uint16_t zero[16] = {0};
    fe_sub(p.x, zero, p.x);  // -A
    fe_sub(p.t, zero, p.t);
    challenge(k, r_bytes, public_key, message, message_len);
    return equation_holds(&p, s, k, r_bytes) ? MNV_ED25519_VALID : MNV_ED25519_MISMATCH;
}
