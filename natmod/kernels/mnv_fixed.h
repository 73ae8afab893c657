// Fixed-point helpers shared by the kernels (gemmlowp / TFLite semantics) and the argument
// checks. Internal to natmod/kernels.
#ifndef MNV_FIXED_H
#define MNV_FIXED_H

#include "mnv_kernels.h"
#include "mnv_limits.h"

// Output channels handled per pass: their requantization values live on the stack, which
// is small on a microcontroller (4 KB in all on an RP2040), so kernels keep their frames
// under MNV_STACK_BUDGET bytes (tests/test_native_kernels.py checks the armv6m build).
#define MNV_CHUNK 16
#define MNV_STACK_BUDGET 1280

// Keeps a rarely taken general path from adding its frame to the fast path's.
#define MNV_NOINLINE __attribute__((noinline))

// SaturatingRoundingDoublingHighMul: (a * b * 2) / 2**32, rounded half away from zero.
static inline int32_t mnv_srdhm(int32_t a, int32_t b) {
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
#if defined(__ARM_ARCH_6M__) && !defined(MNV_PORTABLE)
    // Cortex-M0 multiplies only 32 x 32 -> 32; gcc calls a 64 x 64 helper or spills. The
    // product from 16-bit halves (each partial product fits 32 bits) with add-with-carry,
    // ~25 cycles. With either nudge, truncating (ab + nudge) / 2**31 toward zero equals
    // flooring (ab + 2**30) / 2**31 (for ab < 0, trunc(t / m) = floor((t + m - 1) / m) and
    // t + m - 1 = ab + 2**30), so the result is bits 31..62 of ab + 2**30.
    int32_t lo, t1, t2;
    __asm__ (
        ".syntax unified\n\t"
        "uxth %[t1], %[a]\n\t"        // t1 = al
        "asrs %[a], %[a], #16\n\t"    // a = ah
        "uxth %[t2], %[b]\n\t"        // t2 = bl
        "asrs %[b], %[b], #16\n\t"    // b = bh
        "movs %[lo], %[t1]\n\t"
        "muls %[lo], %[t2], %[lo]\n\t"  // lo = al * bl (unsigned)
        "muls %[t1], %[b], %[t1]\n\t"   // t1 = al * bh
        "muls %[b], %[a], %[b]\n\t"     // b = ah * bh: the high word
        "muls %[a], %[t2], %[a]\n\t"    // a = ah * bl
        "lsls %[t2], %[t1], #16\n\t"
        "asrs %[t1], %[t1], #16\n\t"
        "adds %[lo], %[lo], %[t2]\n\t"
        "adcs %[b], %[t1]\n\t"
        "lsls %[t2], %[a], #16\n\t"
        "asrs %[a], %[a], #16\n\t"
        "adds %[lo], %[lo], %[t2]\n\t"
        "adcs %[b], %[a]\n\t"
        "movs %[t2], #1\n\t"
        "lsls %[t2], %[t2], #30\n\t"
        "movs %[a], #0\n\t"
        "adds %[lo], %[lo], %[t2]\n\t"
        "adcs %[b], %[a]\n\t"
        "lsrs %[lo], %[lo], #31\n\t"
        "lsls %[b], %[b], #1\n\t"
        "orrs %[b], %[lo]\n\t"
        ".syntax divided\n"
        : [a] "+l" (a), [b] "+l" (b), [lo] "=&l" (lo), [t1] "=&l" (t1), [t2] "=&l" (t2)
        :
        : "cc");
    return b;
#else
    // (ab + nudge) / 2**31 truncating toward zero, written without a branch on the sign
    // (it is data-dependent and would mispredict half the time).
    const int64_t ab = (int64_t)a * b;
    const int64_t t = ab + (ab >= 0 ? (1LL << 30) : 1 - (1LL << 30));
    return (int32_t)((t + (t < 0 ? (1LL << 31) - 1 : 0)) >> 31);
#endif
}

// RoundingDivideByPOT: x / 2**e rounded to nearest, ties away from zero; e in [0, 31].
static inline int32_t mnv_rdbp(int32_t x, int e) {
    int32_t mask = (int32_t)((1u << e) - 1u);
    int32_t threshold = (mask >> 1) + (x < 0);
    return (x >> e) + ((x & mask) > threshold);
}

static inline int32_t mnv_shl(int32_t x, int n) {
    return (int32_t)((uint32_t)x << n);
}

// MultiplyByQuantizedMultiplier with the shift split into left >= 0 and right >= 0.
static inline int32_t mnv_mbqm(int32_t x, int32_t mult, int left, int right) {
    return mnv_rdbp(mnv_srdhm(mnv_shl(x, left), mult), right);
}

static inline int8_t mnv_clamp(int64_t v, int32_t lo, int32_t hi) {
    return (int8_t)(v < lo ? lo : (v > hi ? hi : v));
}

// Requantization values of one output channel, precomputed once per call.
typedef struct {
    uint32_t offset;  // bias + input_offset * sum(filter), for windows with every tap inside
    int32_t bias;
    int32_t mult;
    int32_t left;
    int32_t right;
    int32_t mask;     // RoundingDivideByPOT's remainder mask and threshold for `right`
    int32_t half;
} mnv_chan;

static inline void mnv_load_chan(mnv_chan *c, const mnv_channels *ch, size_t oc) {
    const int32_t s = ch->shift[oc];
    c->bias = ch->bias ? ch->bias[oc] : 0;
    c->mult = ch->mult[oc];
    c->left = s > 0 ? s : 0;
    c->right = s > 0 ? 0 : -s;
    c->offset = (uint32_t)c->bias;
    c->mask = (int32_t)((1u << c->right) - 1u);
    c->half = c->mask >> 1;
}

// clamp(MBQM(acc + bias) + out_off): mnv_mbqm with the per-channel parts precomputed.
static inline int8_t mnv_requantize(uint32_t acc, const mnv_chan *c, int32_t out_off,
    int32_t lo, int32_t hi) {
    const int32_t x = mnv_srdhm(mnv_shl((int32_t)(acc + (uint32_t)c->bias), c->left), c->mult);
    const int32_t v = (x >> c->right) + ((x & c->mask) > c->half + (x < 0));
    // Saturated outputs are common and data-dependent: clamp without branches.
    int64_t r = (int64_t)v + out_off;
    r = r < lo ? lo : r;
    r = r > hi ? hi : r;
    return (int8_t)r;
}

// clamp(v + out_off, lo, hi) in 32-bit compares (int64 costs a Cortex-M0 a dozen more
// cycles per output): v is compared with the bounds lo - out_off and hi - out_off,
// precomputed once per call and saturated to int32, so the sum is formed only when it lands
// in [lo, hi] (and then fits).
typedef struct {
    int32_t out_off, lo, hi, v_lo, v_hi;
} mnv_act;

static inline void mnv_act_init(mnv_act *t, int32_t out_off, int32_t lo, int32_t hi) {
    const int64_t v_lo = (int64_t)lo - out_off, v_hi = (int64_t)hi - out_off;
    t->out_off = out_off;
    t->lo = lo;
    t->hi = hi;
    t->v_lo = v_lo < INT32_MIN ? INT32_MIN : (int32_t)v_lo;
    t->v_hi = v_hi > INT32_MAX ? INT32_MAX : (int32_t)v_hi;
}

static inline int8_t mnv_act_apply(int32_t v, const mnv_act *t) {
    if (v < t->v_lo) {
        return (int8_t)t->lo;
    }
    if (v > t->v_hi) {
        return (int8_t)t->hi;
    }
    return (int8_t)(v + t->out_off);
}

// mnv_mbqm(x, c->mult, c->left, c->right) with the rounding mask precomputed.
static inline int32_t mnv_mbqm_chan(int32_t x, const mnv_chan *c) {
    const int32_t y = mnv_srdhm(mnv_shl(x, c->left), c->mult);
    return (y >> c->right) + ((y & c->mask) > c->half + (y < 0));
}

// mnv_requantize with the clamp of mnv_act_apply.
static inline int8_t mnv_requantize_act(uint32_t acc, const mnv_chan *c, const mnv_act *t) {
    const int32_t x = mnv_srdhm(mnv_shl((int32_t)(acc + (uint32_t)c->bias), c->left), c->mult);
    return mnv_act_apply((x >> c->right) + ((x & c->mask) > c->half + (x < 0)), t);
}

// Dot product of int8 vectors, modulo 2**32. The inner loop sums at most 65536 products
// (each below 2**14 in magnitude), so its int32 never overflows; it is the hot loop of
// conv and fully connected and vectorizes.
static inline uint32_t mnv_dot_i8(const int8_t *a, const int8_t *b, size_t n) {
    uint32_t total = 0;
    while (n) {
        size_t m = n < 65536 ? n : 65536;
        int32_t s = 0;
        for (size_t i = 0; i < m; i++) {
            s += a[i] * b[i];
        }
        total += (uint32_t)s;
        a += m;
        b += m;
        n -= m;
    }
    return total;
}

static inline uint32_t mnv_sum_i8(const int8_t *a, size_t n) {
    uint32_t total = 0;
    for (size_t i = 0; i < n; i++) {
        total += (uint32_t)(int32_t)a[i];
    }
    return total;
}

int mnv_product_is(size_t expected, const int32_t *dims, int n);
int mnv_shifts_ok(const int32_t *shift, size_t n);
int mnv_act_ok(int32_t lo, int32_t hi);
int mnv_window_ok(int32_t in, int32_t out, int32_t k, int32_t stride, int32_t dil, int32_t pad);
void mnv_tap_range(int32_t origin, int32_t k, int32_t dil, int32_t in, int32_t *k0,
    int32_t *k1);

#endif
