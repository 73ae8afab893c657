// The hot loop of CONV_2D and FULLY_CONNECTED: four dot products sharing one input vector,
//   out[k] = sum_i (x[i] + x_off) * f[k * stride + i]   (mod 2**32), k = 0..3,
// for x_off in [-128, 128], so that x + x_off fits an int16 and each product fits in
// 16 bits (|product| <= 255 * 128). Internal to natmod/kernels.
//
// Three forms with the same result: SSE2 (every x64 host; pmaddwd does eight 16-bit
// multiplies and pairwise adds per instruction), the Armv7E-M DSP extension (Cortex-M4/M7:
// SMLAD does two per instruction), both wrapping like the uint32 arithmetic of the portable
// C used everywhere else (Cortex-M0, Xtensa). Build with -DMNV_PORTABLE to test the portable
// form on a host that has one of the others.
#ifndef MNV_DOT_H
#define MNV_DOT_H

#include <stddef.h>
#include <stdint.h>

#if defined(__SSE2__) && !defined(MNV_PORTABLE)
#include <emmintrin.h>

static inline __m128i mnv_widen_lo(__m128i v) {
    return _mm_srai_epi16(_mm_unpacklo_epi8(v, v), 8);
}

static inline __m128i mnv_widen_hi(__m128i v) {
    return _mm_srai_epi16(_mm_unpackhi_epi8(v, v), 8);
}

static inline void mnv_dot4(const int8_t *x, int32_t x_off, const int8_t *f, size_t stride,
    size_t n, uint32_t out[4]) {
    const __m128i off = _mm_set1_epi16((int16_t)x_off);
    __m128i acc0 = _mm_setzero_si128(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m128i xv = _mm_loadu_si128((const __m128i *)(x + i));
        const __m128i xl = _mm_add_epi16(mnv_widen_lo(xv), off);
        const __m128i xh = _mm_add_epi16(mnv_widen_hi(xv), off);
        __m128i fv = _mm_loadu_si128((const __m128i *)(f + i));
        acc0 = _mm_add_epi32(acc0, _mm_add_epi32(_mm_madd_epi16(xl, mnv_widen_lo(fv)),
            _mm_madd_epi16(xh, mnv_widen_hi(fv))));
        fv = _mm_loadu_si128((const __m128i *)(f + stride + i));
        acc1 = _mm_add_epi32(acc1, _mm_add_epi32(_mm_madd_epi16(xl, mnv_widen_lo(fv)),
            _mm_madd_epi16(xh, mnv_widen_hi(fv))));
        fv = _mm_loadu_si128((const __m128i *)(f + 2 * stride + i));
        acc2 = _mm_add_epi32(acc2, _mm_add_epi32(_mm_madd_epi16(xl, mnv_widen_lo(fv)),
            _mm_madd_epi16(xh, mnv_widen_hi(fv))));
        fv = _mm_loadu_si128((const __m128i *)(f + 3 * stride + i));
        acc3 = _mm_add_epi32(acc3, _mm_add_epi32(_mm_madd_epi16(xl, mnv_widen_lo(fv)),
            _mm_madd_epi16(xh, mnv_widen_hi(fv))));
    }
    if (i + 8 <= n) {
        const __m128i xl = _mm_add_epi16(
            mnv_widen_lo(_mm_loadl_epi64((const __m128i *)(x + i))), off);
        acc0 = _mm_add_epi32(acc0, _mm_madd_epi16(xl,
            mnv_widen_lo(_mm_loadl_epi64((const __m128i *)(f + i)))));
        acc1 = _mm_add_epi32(acc1, _mm_madd_epi16(xl,
            mnv_widen_lo(_mm_loadl_epi64((const __m128i *)(f + stride + i)))));
        acc2 = _mm_add_epi32(acc2, _mm_madd_epi16(xl,
            mnv_widen_lo(_mm_loadl_epi64((const __m128i *)(f + 2 * stride + i)))));
        acc3 = _mm_add_epi32(acc3, _mm_madd_epi16(xl,
            mnv_widen_lo(_mm_loadl_epi64((const __m128i *)(f + 3 * stride + i)))));
        i += 8;
    }
    // Transpose-add the four accumulators into one vector of four sums.
    const __m128i t0 = _mm_add_epi32(_mm_unpacklo_epi32(acc0, acc1),
        _mm_unpackhi_epi32(acc0, acc1));
    const __m128i t1 = _mm_add_epi32(_mm_unpacklo_epi32(acc2, acc3),
        _mm_unpackhi_epi32(acc2, acc3));
    _mm_storeu_si128((__m128i *)out, _mm_add_epi32(_mm_unpacklo_epi64(t0, t1),
        _mm_unpackhi_epi64(t0, t1)));
    for (; i < n; i++) {
        const int32_t xi = x[i] + x_off;
        out[0] += (uint32_t)(xi * f[i]);
        out[1] += (uint32_t)(xi * f[stride + i]);
        out[2] += (uint32_t)(xi * f[2 * stride + i]);
        out[3] += (uint32_t)(xi * f[3 * stride + i]);
    }
}

#elif defined(__ARM_FEATURE_SIMD32) && !defined(MNV_PORTABLE)
#include <arm_acle.h>

static inline uint32_t mnv_load4(const int8_t *p) {
    uint32_t v;
    __builtin_memcpy(&v, p, 4);  // an unaligned LDR, which Armv7-M allows
    return v;
}

// Bytes 0 and 2 (even) and bytes 1 and 3 (odd) of f, each sign-extended to 16 bits.
#define MNV_EVEN(v) __sxtb16((int8x4_t)(v))
#define MNV_ODD(v) __sxtb16((int8x4_t)((v) >> 8 | (v) << 24))

static inline void mnv_dot4(const int8_t *x, int32_t x_off, const int8_t *f, size_t stride,
    size_t n, uint32_t out[4]) {
    const int16x2_t off = (int16x2_t)(((uint32_t)(uint16_t)x_off << 16) | (uint16_t)x_off);
    const int8_t *f1 = f + stride, *f2 = f1 + stride, *f3 = f2 + stride;
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint32_t xv = mnv_load4(x + i);
        const int16x2_t xe = __sadd16(MNV_EVEN(xv), off), xo = __sadd16(MNV_ODD(xv), off);
        uint32_t fv = mnv_load4(f + i);
        a0 = __smlad(xo, MNV_ODD(fv), __smlad(xe, MNV_EVEN(fv), a0));
        fv = mnv_load4(f1 + i);
        a1 = __smlad(xo, MNV_ODD(fv), __smlad(xe, MNV_EVEN(fv), a1));
        fv = mnv_load4(f2 + i);
        a2 = __smlad(xo, MNV_ODD(fv), __smlad(xe, MNV_EVEN(fv), a2));
        fv = mnv_load4(f3 + i);
        a3 = __smlad(xo, MNV_ODD(fv), __smlad(xe, MNV_EVEN(fv), a3));
    }
    out[0] = (uint32_t)a0;
    out[1] = (uint32_t)a1;
    out[2] = (uint32_t)a2;
    out[3] = (uint32_t)a3;
    for (; i < n; i++) {
        const int32_t xi = x[i] + x_off;
        out[0] += (uint32_t)(xi * f[i]);
        out[1] += (uint32_t)(xi * f1[i]);
        out[2] += (uint32_t)(xi * f2[i]);
        out[3] += (uint32_t)(xi * f3[i]);
    }
}

#undef MNV_EVEN
#undef MNV_ODD

#elif defined(__ARM_ARCH_6M__) && !defined(MNV_PORTABLE)

// Cortex-M0/M0+ (RP2040): no SIMD, 8 low registers for loads and multiplies. One input byte
// (plus the offset) feeds four single-cycle MULS; the four sums live in high registers,
// which ADD reaches, so the six pointers/indices and two temporaries fill r0-r7 with no
// spill. The index counts down to 0 and every load is LDRSB [base, index]. The loop is
// unrolled four times (one taken branch per 16 products instead of per 4) and entered at
// the copy that matches (n - 1) mod 4, so any n needs no remainder loop. Sums wrap modulo
// 2**32 like the portable form.
//
// MNV_DOT4_M0_BODY(LOAD_X) is that loop, the four copies being one step text; LOAD_X puts
// the step's input value in xv: a signed byte plus the offset (mnv_dot4), or an unsigned byte
// that already holds it (mnv_dot4_u8: x + 128 as 0..255, one instruction less per four
// products).
#define MNV_DOT4_M0_STEP(LOAD_X) \
    LOAD_X \
    "ldrsb %[wv], [%[f0], %[i]]\n\t" \
    "muls %[wv], %[xv], %[wv]\n\t" \
    "add %[a0], %[wv]\n\t" \
    "ldrsb %[wv], [%[f1], %[i]]\n\t" \
    "muls %[wv], %[xv], %[wv]\n\t" \
    "add %[a1], %[wv]\n\t" \
    "ldrsb %[wv], [%[f2], %[i]]\n\t" \
    "muls %[wv], %[xv], %[wv]\n\t" \
    "add %[a2], %[wv]\n\t" \
    "ldrsb %[wv], [%[f3], %[i]]\n\t" \
    "muls %[wv], %[xv], %[wv]\n\t" \
    "add %[a3], %[wv]\n\t" \
    "subs %[i], #1\n\t"

// Copy k (1..4) handles the indices i with i mod 4 == 4 - k; bit 1 of i goes to the carry
// and bit 0 to the sign.
#define MNV_DOT4_M0_BODY(LOAD_X) \
    ".syntax unified\n\t" \
    "lsls %[xv], %[i], #31\n\t" \
    "bcc 5f\n\t" \
    "bmi 1f\n\t" \
    "b 2f\n" \
    "5:\n\t" \
    "bmi 3f\n\t" \
    "b 4f\n" \
    "1:\n\t" \
    MNV_DOT4_M0_STEP(LOAD_X) \
    "2:\n\t" \
    MNV_DOT4_M0_STEP(LOAD_X) \
    "3:\n\t" \
    MNV_DOT4_M0_STEP(LOAD_X) \
    "4:\n\t" \
    MNV_DOT4_M0_STEP(LOAD_X) \
    "bpl 1b\n\t" \
    ".syntax divided\n"

#define MNV_LOAD_X_PLUS_OFFSET "ldrsb %[xv], [%[x], %[i]]\n\tadd %[xv], %[off]\n\t"
#define MNV_LOAD_X "ldrsb %[xv], [%[x], %[i]]\n\t"
#define MNV_LOAD_X_UNSIGNED "ldrb %[xv], [%[x], %[i]]\n\t"

#define MNV_DOT4_M0(NAME, X_TYPE, LOAD_X) \
    static inline void NAME(const X_TYPE *x, int32_t x_off, const int8_t *f, size_t stride, \
        size_t n, uint32_t out[4]) { \
        register uint32_t a0 __asm__("r8") = 0; \
        register uint32_t a1 __asm__("r9") = 0; \
        register uint32_t a2 __asm__("r10") = 0; \
        register uint32_t a3 __asm__("r11") = 0; \
        register int32_t off __asm__("r12") = x_off; \
        const int8_t *f1 = f + stride, *f2 = f1 + stride, *f3 = f2 + stride; \
        int32_t i = (int32_t)n - 1; \
        int32_t xv, wv; \
        if (n) { \
            __asm__ volatile (MNV_DOT4_M0_BODY(LOAD_X) \
                : [a0] "+h" (a0), [a1] "+h" (a1), [a2] "+h" (a2), [a3] "+h" (a3), \
                  [i] "+l" (i), [xv] "=&l" (xv), [wv] "=&l" (wv) \
                : [x] "l" (x), [f0] "l" (f), [f1] "l" (f1), [f2] "l" (f2), [f3] "l" (f3), \
                  [off] "h" (off) \
                : "cc", "memory"); \
        } \
        out[0] = a0; \
        out[1] = a1; \
        out[2] = a2; \
        out[3] = a3; \
    }

MNV_DOT4_M0(mnv_dot4, int8_t, MNV_LOAD_X_PLUS_OFFSET)

// mnv_dot4 with no offset (conv.c folds it into the bias instead).
MNV_DOT4_M0(mnv_dot4_m0_plain, int8_t, MNV_LOAD_X)
#define MNV_DOT4_PLAIN(x, f, stride, n, out) mnv_dot4_m0_plain((x), 0, (f), (stride), (n), (out))

// out[k] = sum_i xu[i] * f[k * stride + i] (mod 2**32) for unsigned input bytes: the input
// with an offset of 128 stored as x + 128 (see MNV_DOT4_U8).
#define MNV_DOT4_U8 1
MNV_DOT4_M0(mnv_dot4_u8_m0, uint8_t, MNV_LOAD_X_UNSIGNED)

static inline void mnv_dot4_u8(const uint8_t *xu, const int8_t *f, size_t stride, size_t n,
    uint32_t out[4]) {
    mnv_dot4_u8_m0(xu, 0, f, stride, n, out);
}

#else

// One loop for both portable forms: the input is signed bytes xs plus x_off, or unsigned
// bytes xu that already hold it (mnv_dot4_u8); inlined with one of them NULL, the test folds
// away. |input * f| < 2**15, so at most 65536 products per int32 partial sum.
static inline void mnv_dot4_scalar(const int8_t *xs, const uint8_t *xu, int32_t x_off,
    const int8_t *f, size_t stride, size_t n, uint32_t out[4]) {
    const int8_t *f1 = f + stride, *f2 = f1 + stride, *f3 = f2 + stride;
    out[0] = out[1] = out[2] = out[3] = 0;
    while (n) {
        const size_t m = n < 65536 ? n : 65536;
        int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (size_t i = 0; i < m; i++) {
            const int32_t xi = xu ? (int32_t)xu[i] : xs[i] + x_off;
            s0 += xi * f[i];
            s1 += xi * f1[i];
            s2 += xi * f2[i];
            s3 += xi * f3[i];
        }
        out[0] += (uint32_t)s0;
        out[1] += (uint32_t)s1;
        out[2] += (uint32_t)s2;
        out[3] += (uint32_t)s3;
        if (xu) {
            xu += m;
        } else {
            xs += m;
        }
        f += m;
        f1 += m;
        f2 += m;
        f3 += m;
        n -= m;
    }
}

static inline void mnv_dot4(const int8_t *x, int32_t x_off, const int8_t *f, size_t stride,
    size_t n, uint32_t out[4]) {
    mnv_dot4_scalar(x, NULL, x_off, f, stride, n, out);
}

// The portable form of the Cortex-M0's unsigned-input loop, so that host builds test the
// kernels' use of it.
#define MNV_DOT4_U8 1
static inline void mnv_dot4_u8(const uint8_t *xu, const int8_t *f, size_t stride, size_t n,
    uint32_t out[4]) {
    mnv_dot4_scalar(NULL, xu, 0, f, stride, n, out);
}

#endif

// mnv_dot4 of an input whose offset is applied elsewhere: its own loop only where an add
// costs an instruction per four products.
#ifndef MNV_DOT4_PLAIN
#define MNV_DOT4_PLAIN(x, f, stride, n, out) mnv_dot4((x), 0, (f), (stride), (n), (out))
#endif

// The SIMD forms add the offset at no cost; only the scalar ones have mnv_dot4_u8.
#ifndef MNV_DOT4_U8
#define MNV_DOT4_U8 0
#endif

// One row: the same arithmetic for a single filter.
static inline uint32_t mnv_dot1(const int8_t *x, int32_t x_off, const int8_t *f, size_t n) {
    uint32_t total = 0;
    while (n) {
        const size_t m = n < 65536 ? n : 65536;
        int32_t s = 0;
        for (size_t i = 0; i < m; i++) {
            s += (x[i] + x_off) * f[i];
        }
        total += (uint32_t)s;
        x += m;
        f += m;
        n -= m;
    }
    return total;
}

#endif
