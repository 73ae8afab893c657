// DEPTHWISE_CONV_2D. Fast path (depth multiplier 1, input offset in [-128, 128], at most
// 65536 taps: every real model): eight channels at a time accumulate (in + offset) * filter
// over the window's in-bounds taps in registers. General path: output channels MNV_CHUNK at
// a time with per-channel accumulators on the stack and the input offset folded out as in
// conv.c.
#include "mnv_dot.h"
#include "mnv_fixed.h"

enum { B, IN_H, IN_W, IN_C, OUT_H, OUT_W, OUT_C, K_H, K_W, S_H, S_W, D_H, D_W, PAD_T, PAD_L,
       IN_OFF, OUT_OFF, ACT_LO, ACT_HI, DEPTH_MULT, N_ARGS };

static int dw_check(size_t in_len, size_t filt_len, const mnv_channels *ch, size_t out_len,
    const int32_t *a) {
    int32_t in_dims[4] = {a[B], a[IN_H], a[IN_W], a[IN_C]};
    int32_t f_dims[3] = {a[K_H], a[K_W], a[OUT_C]};
    int32_t out_dims[4] = {a[B], a[OUT_H], a[OUT_W], a[OUT_C]};
    int32_t oc_dims[2] = {a[IN_C], a[DEPTH_MULT]};
    if (!mnv_product_is(in_len, in_dims, 4) || !mnv_product_is(filt_len, f_dims, 3) ||
        !mnv_product_is(out_len, out_dims, 4) || a[OUT_C] < 1 ||
        !mnv_product_is((size_t)a[OUT_C], oc_dims, 2) || ch->count < (size_t)a[OUT_C]) {
        return MNV_ESHAPE;
    }
    if (!mnv_window_ok(a[IN_H], a[OUT_H], a[K_H], a[S_H], a[D_H], a[PAD_T]) ||
        !mnv_window_ok(a[IN_W], a[OUT_W], a[K_W], a[S_W], a[D_W], a[PAD_L]) ||
        !mnv_act_ok(a[ACT_LO], a[ACT_HI]) || !mnv_shifts_ok(ch->shift, a[OUT_C])) {
        return MNV_ERANGE;
    }
    return MNV_OK;
}

// acc[k] += (ip[k] + in_off) * fp[k], k < 8, over the window's in-bounds taps. The
// product fits in 16 bits (|x + in_off| <= 255, |f| <= 128), so SSE2 multiplies in 16-bit
// lanes and widens the products; the portable form keeps eight int32 accumulators.
static inline void dw_taps8(const int8_t *in_b, const int8_t *filt, const int32_t *a,
    int32_t y0, int32_t x0, int32_t ky0, int32_t ky1, int32_t kx0, int32_t kx1, size_t c,
    int32_t acc[8]) {
    const size_t chans_in = (size_t)a[IN_C];
#if defined(__SSE2__) && !defined(MNV_PORTABLE)
    const __m128i off = _mm_set1_epi16((int16_t)a[IN_OFF]);
    __m128i lo = _mm_setzero_si128(), hi = lo;
#else
    const int32_t in_off = a[IN_OFF];
#endif
    for (int32_t ky = ky0; ky < ky1; ky++) {
        const int8_t *row = in_b + (size_t)(y0 + ky * a[D_H]) * a[IN_W] * chans_in + c;
        const int8_t *frow = filt + (size_t)ky * a[K_W] * chans_in + c;
        for (int32_t kx = kx0; kx < kx1; kx++) {
            const int8_t *ip = row + (size_t)(x0 + kx * a[D_W]) * chans_in;
            const int8_t *fp = frow + (size_t)kx * chans_in;
#if defined(__SSE2__) && !defined(MNV_PORTABLE)
            const __m128i x = _mm_add_epi16(
                mnv_widen_lo(_mm_loadl_epi64((const __m128i *)ip)), off);
            const __m128i p = _mm_mullo_epi16(x,
                mnv_widen_lo(_mm_loadl_epi64((const __m128i *)fp)));
            lo = _mm_add_epi32(lo, _mm_srai_epi32(_mm_unpacklo_epi16(p, p), 16));
            hi = _mm_add_epi32(hi, _mm_srai_epi32(_mm_unpackhi_epi16(p, p), 16));
#else
            for (int k = 0; k < 8; k++) {
                acc[k] += (ip[k] + in_off) * fp[k];
            }
#endif
        }
    }
#if defined(__SSE2__) && !defined(MNV_PORTABLE)
    _mm_storeu_si128((__m128i *)acc, lo);
    _mm_storeu_si128((__m128i *)(acc + 4), hi);
#endif
}

#if defined(__ARM_ARCH_6M__) && !defined(MNV_PORTABLE)
#define DW_M0 1
// Cortex-M0/M0+ (RP2040) form of dw_fast, for 4-byte aligned input and filter, channel
// counts divisible by 4 and no horizontal dilation (dw_m0_fits): four channels at a time,
// each tap one word load of four inputs and one of four weights, lanes sign-extended by
// shifts, the four sums in r8-r11 and the input offset in r12 (ADD reaches high
// registers, MULS and the loads need the eight low ones, all taken by the row loop). One
// asm loop walks a window row: 33 cycles per tap and four channels.
static int dw_m0_fits(const int8_t *in, const int8_t *filt, const int32_t *a) {
    return a[D_W] == 1 && !(((uintptr_t)in | (uintptr_t)filt | (uint32_t)a[IN_C]) & 3u);
}

static void dw_fast_m0(const int8_t *in, const int8_t *filt, const mnv_channels *ch,
    int8_t *out, const int32_t *a) {
    const size_t chans_in = (size_t)a[IN_C];
    const size_t in_row = (size_t)a[D_H] * a[IN_W] * chans_in;
    const size_t f_row = (size_t)a[K_W] * chans_in;
    const int32_t in_off = a[IN_OFF];
    mnv_chan chans[MNV_CHUNK];
    mnv_act act;
    mnv_act_init(&act, a[OUT_OFF], a[ACT_LO], a[ACT_HI]);
    for (size_t c0 = 0; c0 < chans_in; c0 += MNV_CHUNK) {
        const size_t n = chans_in - c0 < MNV_CHUNK ? chans_in - c0 : MNV_CHUNK;
        for (size_t j = 0; j < n; j++) {
            mnv_load_chan(&chans[j], ch, c0 + j);
        }
        for (int32_t b = 0; b < a[B]; b++) {
            const int8_t *in_b = in + (size_t)b * a[IN_H] * a[IN_W] * chans_in;
            int8_t *o = out + (size_t)b * a[OUT_H] * a[OUT_W] * chans_in + c0;
            for (int32_t oy = 0; oy < a[OUT_H]; oy++) {
                const int32_t y0 = oy * a[S_H] - a[PAD_T];
                int32_t ky0, ky1;
                mnv_tap_range(y0, a[K_H], a[D_H], a[IN_H], &ky0, &ky1);
                for (int32_t ox = 0; ox < a[OUT_W]; ox++, o += chans_in) {
                    const int32_t x0 = ox * a[S_W] - a[PAD_L];
                    int32_t kx0, kx1;
                    mnv_tap_range(x0, a[K_W], 1, a[IN_W], &kx0, &kx1);
                    const int8_t *ipix = in_b + ((size_t)(y0 + ky0 * a[D_H]) * a[IN_W] +
                        (size_t)(x0 + kx0)) * chans_in + c0;
                    const int8_t *fpix = filt + ((size_t)ky0 * a[K_W] + (size_t)kx0) *
                        chans_in + c0;
                    for (size_t j = 0; j < n; j += 4) {
                        // Register variables hold only at the asm statements that use
                        // them: declared here, with no call between (r12 is call-clobbered).
                        register int32_t a0 __asm__("r8") = 0;
                        register int32_t a1 __asm__("r9") = 0;
                        register int32_t a2 __asm__("r10") = 0;
                        register int32_t a3 __asm__("r11") = 0;
                        const int8_t *ip = ipix + j, *fp = fpix + j;
                        for (int32_t ky = ky0; ky < ky1; ky++, ip += in_row, fp += f_row) {
                            const int8_t *x = ip, *w = fp;
                            int32_t taps = kx1 - kx0, xw, ww, t1, t2;
                            if (taps <= 0) {
                                continue;
                            }
                            register int32_t off __asm__("r12") = in_off;
                            __asm__ volatile (
                                ".syntax unified\n"
                                "1:\n\t"
                                "ldr %[xw], [%[x]]\n\t"
                                "ldr %[ww], [%[w]]\n\t"
                                "sxtb %[t1], %[xw]\n\t"
                                "add %[t1], %[off]\n\t"
                                "sxtb %[t2], %[ww]\n\t"
                                "muls %[t2], %[t1], %[t2]\n\t"
                                "add %[a0], %[t2]\n\t"
                                "lsls %[t1], %[xw], #16\n\t"
                                "asrs %[t1], %[t1], #24\n\t"
                                "add %[t1], %[off]\n\t"
                                "lsls %[t2], %[ww], #16\n\t"
                                "asrs %[t2], %[t2], #24\n\t"
                                "muls %[t2], %[t1], %[t2]\n\t"
                                "add %[a1], %[t2]\n\t"
                                "lsls %[t1], %[xw], #8\n\t"
                                "asrs %[t1], %[t1], #24\n\t"
                                "add %[t1], %[off]\n\t"
                                "lsls %[t2], %[ww], #8\n\t"
                                "asrs %[t2], %[t2], #24\n\t"
                                "muls %[t2], %[t1], %[t2]\n\t"
                                "add %[a2], %[t2]\n\t"
                                "asrs %[t1], %[xw], #24\n\t"
                                "add %[t1], %[off]\n\t"
                                "asrs %[t2], %[ww], #24\n\t"
                                "muls %[t2], %[t1], %[t2]\n\t"
                                "add %[a3], %[t2]\n\t"
                                "adds %[x], %[x], %[step]\n\t"
                                "adds %[w], %[w], %[step]\n\t"
                                "subs %[taps], %[taps], #1\n\t"
                                "bne 1b\n\t"
                                ".syntax divided\n"
                                : [a0] "+h" (a0), [a1] "+h" (a1), [a2] "+h" (a2),
                                  [a3] "+h" (a3), [x] "+l" (x), [w] "+l" (w),
                                  [taps] "+l" (taps), [xw] "=&l" (xw), [ww] "=&l" (ww),
                                  [t1] "=&l" (t1), [t2] "=&l" (t2)
                                : [step] "l" (chans_in), [off] "h" (off)
                                : "cc", "memory");
                        }
                        o[j] = mnv_requantize_act((uint32_t)a0, &chans[j], &act);
                        o[j + 1] = mnv_requantize_act((uint32_t)a1, &chans[j + 1], &act);
                        o[j + 2] = mnv_requantize_act((uint32_t)a2, &chans[j + 2], &act);
                        o[j + 3] = mnv_requantize_act((uint32_t)a3, &chans[j + 3], &act);
                    }
                }
            }
        }
    }
}
#else
#define DW_M0 0
#endif

// Channels [c, c + n), n < 8, of one output pixel: the last, partial group.
static void dw_taps_tail(const int8_t *in_b, const int8_t *filt, const int32_t *a,
    int32_t y0, int32_t x0, int32_t ky0, int32_t ky1, int32_t kx0, int32_t kx1, size_t c,
    int32_t n, int32_t acc[8]) {
    const size_t chans_in = (size_t)a[IN_C];
    for (int32_t ky = ky0; ky < ky1; ky++) {
        const int8_t *row = in_b + (size_t)(y0 + ky * a[D_H]) * a[IN_W] * chans_in + c;
        const int8_t *frow = filt + (size_t)ky * a[K_W] * chans_in + c;
        for (int32_t kx = kx0; kx < kx1; kx++) {
            const int8_t *ip = row + (size_t)(x0 + kx * a[D_W]) * chans_in;
            const int8_t *fp = frow + (size_t)kx * chans_in;
            for (int32_t k = 0; k < n; k++) {
                acc[k] += (ip[k] + a[IN_OFF]) * fp[k];
            }
        }
    }
}

static void dw_fast(const int8_t *in, const int8_t *filt, const mnv_channels *ch,
    int8_t *out, const int32_t *a) {
    const size_t chans_in = (size_t)a[IN_C];
    mnv_chan chans[MNV_CHUNK];
    for (size_t c0 = 0; c0 < chans_in; c0 += MNV_CHUNK) {
        const size_t n = chans_in - c0 < MNV_CHUNK ? chans_in - c0 : MNV_CHUNK;
        for (size_t j = 0; j < n; j++) {
            mnv_load_chan(&chans[j], ch, c0 + j);
        }
        for (int32_t b = 0; b < a[B]; b++) {
            const int8_t *in_b = in + (size_t)b * a[IN_H] * a[IN_W] * chans_in;
            for (int32_t oy = 0; oy < a[OUT_H]; oy++) {
                const int32_t y0 = oy * a[S_H] - a[PAD_T];
                int32_t ky0, ky1;
                mnv_tap_range(y0, a[K_H], a[D_H], a[IN_H], &ky0, &ky1);
                for (int32_t ox = 0; ox < a[OUT_W]; ox++) {
                    const int32_t x0 = ox * a[S_W] - a[PAD_L];
                    int32_t kx0, kx1;
                    mnv_tap_range(x0, a[K_W], a[D_W], a[IN_W], &kx0, &kx1);
                    int8_t *o = out + (((size_t)b * a[OUT_H] + oy) * a[OUT_W] + ox) * chans_in;
                    for (size_t j = 0; j < n; j += 8) {
                        const int32_t group = n - j < 8 ? (int32_t)(n - j) : 8;
                        int32_t acc[8];
                        {
                            // A loop, not an initializer: gcc makes that a memset call,
                            // which is a byte loop in the native module.
                            for (int k = 0; k < 8; k++) {
                                acc[k] = 0;
                            }
                            if (group == 8) {
                                dw_taps8(in_b, filt, a, y0, x0, ky0, ky1, kx0, kx1, c0 + j,
                                    acc);
                            } else {
                                dw_taps_tail(in_b, filt, a, y0, x0, ky0, ky1, kx0, kx1,
                                    c0 + j, group, acc);
                            }
                        }
                        for (int32_t k = 0; k < group; k++) {
                            o[c0 + j + k] = mnv_requantize((uint32_t)acc[k], &chans[j + k],
                                a[OUT_OFF], a[ACT_LO], a[ACT_HI]);
                        }
                    }
                }
            }
        }
    }
}

MNV_NOINLINE static void dw_general(const int8_t *in, const int8_t *filt,
    const mnv_channels *ch, int8_t *out, const int32_t *args) {
    const int32_t batches = args[B], in_h = args[IN_H], in_w = args[IN_W];
    const int32_t out_h = args[OUT_H], out_w = args[OUT_W], out_c = args[OUT_C];
    const int32_t k_h = args[K_H], k_w = args[K_W], s_h = args[S_H], s_w = args[S_W];
    const int32_t d_h = args[D_H], d_w = args[D_W], lo = args[ACT_LO], hi = args[ACT_HI];
    const int32_t out_off = args[OUT_OFF], depth_mult = args[DEPTH_MULT];
    const uint32_t in_off = (uint32_t)args[IN_OFF];
    const size_t in_c = (size_t)args[IN_C];
    mnv_chan chans[MNV_CHUNK];
    int32_t src[MNV_CHUNK];  // input channel of each output channel in the chunk
    uint32_t acc[MNV_CHUNK], fsum[MNV_CHUNK];

    for (int32_t oc0 = 0; oc0 < out_c; oc0 += MNV_CHUNK) {
        const int32_t n = out_c - oc0 < MNV_CHUNK ? out_c - oc0 : MNV_CHUNK;
        for (int32_t j = 0; j < n; j++) {
            mnv_load_chan(&chans[j], ch, (size_t)(oc0 + j));
            src[j] = (oc0 + j) / depth_mult;
            uint32_t s = 0;
            for (int32_t t = 0; t < k_h * k_w; t++) {
                s += (uint32_t)(int32_t)filt[(size_t)t * out_c + oc0 + j];
            }
            chans[j].offset += in_off * s;
        }
        for (int32_t b = 0; b < batches; b++) {
            for (int32_t oy = 0; oy < out_h; oy++) {
                const int32_t y0 = oy * s_h - args[PAD_T];
                int32_t ky0, ky1;
                mnv_tap_range(y0, k_h, d_h, in_h, &ky0, &ky1);
                for (int32_t ox = 0; ox < out_w; ox++) {
                    const int32_t x0 = ox * s_w - args[PAD_L];
                    int32_t kx0, kx1;
                    mnv_tap_range(x0, k_w, d_w, in_w, &kx0, &kx1);
                    const int inside = ky0 == 0 && ky1 == k_h && kx0 == 0 && kx1 == k_w;
                    for (int32_t j = 0; j < n; j++) {
                        acc[j] = 0;
                        fsum[j] = 0;
                    }
                    for (int32_t ky = ky0; ky < ky1; ky++) {
                        const size_t y = (size_t)(y0 + ky * d_h);
                        for (int32_t kx = kx0; kx < kx1; kx++) {
                            const size_t x = (size_t)(x0 + kx * d_w);
                            const int8_t *ip = in + (((size_t)b * in_h + y) * in_w + x) * in_c;
                            const int8_t *fp = filt + ((size_t)ky * k_w + kx) * out_c + oc0;
                            if (depth_mult == 1) {
                                ip += oc0;
                                for (int32_t j = 0; j < n; j++) {
                                    acc[j] += (uint32_t)(ip[j] * fp[j]);
                                }
                            } else {
                                for (int32_t j = 0; j < n; j++) {
                                    acc[j] += (uint32_t)(ip[src[j]] * fp[j]);
                                }
                            }
                            if (!inside) {
                                for (int32_t j = 0; j < n; j++) {
                                    fsum[j] += (uint32_t)(int32_t)fp[j];
                                }
                            }
                        }
                    }
                    int8_t *o = out + (((size_t)b * out_h + oy) * out_w + ox) * out_c + oc0;
                    for (int32_t j = 0; j < n; j++) {
                        uint32_t total = acc[j] + (inside ? chans[j].offset
                            : in_off * fsum[j] + (uint32_t)chans[j].bias);
                        int32_t v = mnv_mbqm((int32_t)total, chans[j].mult, chans[j].left,
                            chans[j].right);
                        o[j] = mnv_clamp((int64_t)v + out_off, lo, hi);
                    }
                }
            }
        }
    }
}

int mnv_depthwise_conv_2d(const int8_t *in, size_t in_len, const int8_t *filt,
    size_t filt_len, const mnv_channels *ch, int8_t *out, size_t out_len,
    const int32_t *args, size_t n_args) {
    if (n_args != N_ARGS) {
        return MNV_EARGS;
    }
    int rc = dw_check(in_len, filt_len, ch, out_len, args);
    if (rc != MNV_OK) {
        return rc;
    }
    if (args[DEPTH_MULT] == 1 && args[IN_OFF] >= -128 && args[IN_OFF] <= 128 &&
        (int64_t)args[K_H] * args[K_W] <= 65536) {
#if DW_M0
        if (dw_m0_fits(in, filt, args)) {
            dw_fast_m0(in, filt, ch, out, args);
            return MNV_OK;
        }
#endif
        dw_fast(in, filt, ch, out, args);
        return MNV_OK;
    }
    dw_general(in, filt, ch, out, args);
    return MNV_OK;
}
