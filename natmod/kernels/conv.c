// CONV_2D. Fast path (every real model): each output pixel's window is gathered once into a
// contiguous patch on the stack (taps outside the input set to -input_offset, which
// contributes zero), or used in place for a 1xN filter, and four output channels at a time
// take their dot products with it (mnv_dot.h). General path (a filter larger than the patch
// or an input offset outside int8's range): the offset is folded out of the inner loop,
//   sum (in + off) * f == sum in * f + off * sum f   (mod 2**32),
// with `off * sum f + bias` precomputed per output channel for windows inside the input.
#include "mnv_dot.h"
#include "mnv_fixed.h"

#define MNV_PATCH 640  // bytes: the largest k_h * k_w * in_c the fast path gathers

enum { B, IN_H, IN_W, IN_C, OUT_H, OUT_W, OUT_C, K_H, K_W, S_H, S_W, D_H, D_W, PAD_T, PAD_L,
       IN_OFF, OUT_OFF, ACT_LO, ACT_HI, N_ARGS };

static int conv_check(size_t in_len, size_t filt_len, const mnv_channels *ch, size_t out_len,
    const int32_t *a) {
    int32_t in_dims[4] = {a[B], a[IN_H], a[IN_W], a[IN_C]};
    int32_t f_dims[4] = {a[OUT_C], a[K_H], a[K_W], a[IN_C]};
    int32_t out_dims[4] = {a[B], a[OUT_H], a[OUT_W], a[OUT_C]};
    if (!mnv_product_is(in_len, in_dims, 4) || !mnv_product_is(filt_len, f_dims, 4) ||
        !mnv_product_is(out_len, out_dims, 4) || ch->count < (size_t)a[OUT_C]) {
        return MNV_ESHAPE;
    }
    if (!mnv_window_ok(a[IN_H], a[OUT_H], a[K_H], a[S_H], a[D_H], a[PAD_T]) ||
        !mnv_window_ok(a[IN_W], a[OUT_W], a[K_W], a[S_W], a[D_W], a[PAD_L]) ||
        !mnv_act_ok(a[ACT_LO], a[ACT_HI]) || !mnv_shifts_ok(ch->shift, a[OUT_C])) {
        return MNV_ERANGE;
    }
    return MNV_OK;
}

MNV_NOINLINE static void conv_general(const int8_t *in, const int8_t *filt,
    const mnv_channels *ch, int8_t *out, const int32_t *args) {
    const int32_t batches = args[B], in_h = args[IN_H], in_w = args[IN_W];
    const int32_t out_h = args[OUT_H], out_w = args[OUT_W], out_c = args[OUT_C];
    const int32_t k_h = args[K_H], k_w = args[K_W], s_h = args[S_H], s_w = args[S_W];
    const int32_t d_h = args[D_H], d_w = args[D_W], lo = args[ACT_LO], hi = args[ACT_HI];
    const int32_t out_off = args[OUT_OFF];
    const uint32_t in_off = (uint32_t)args[IN_OFF];
    const size_t in_c = (size_t)args[IN_C];
    const size_t row_len = (size_t)k_w * in_c, filter_size = (size_t)k_h * row_len;
    mnv_chan chans[MNV_CHUNK];

    for (int32_t oc0 = 0; oc0 < out_c; oc0 += MNV_CHUNK) {
        const int32_t n = out_c - oc0 < MNV_CHUNK ? out_c - oc0 : MNV_CHUNK;
        for (int32_t j = 0; j < n; j++) {
            mnv_load_chan(&chans[j], ch, (size_t)(oc0 + j));
            chans[j].offset += in_off * mnv_sum_i8(filt + (size_t)(oc0 + j) * filter_size,
                filter_size);
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
                    int8_t *o = out + (((size_t)b * out_h + oy) * out_w + ox) * out_c + oc0;
                    for (int32_t j = 0; j < n; j++) {
                        const int8_t *f = filt + (size_t)(oc0 + j) * filter_size;
                        uint32_t acc = 0, fsum = 0;
                        for (int32_t ky = ky0; ky < ky1; ky++) {
                            const size_t y = (size_t)(y0 + ky * d_h);
                            const int8_t *irow = in + ((size_t)b * in_h + y) * in_w * in_c;
                            const int8_t *frow = f + (size_t)ky * row_len;
                            if (d_w == 1) {
                                const int8_t *ip = irow + (size_t)(x0 + kx0) * in_c;
                                const size_t len = (size_t)(kx1 - kx0) * in_c;
                                acc += mnv_dot_i8(ip, frow + (size_t)kx0 * in_c, len);
                                if (!inside) {
                                    fsum += mnv_sum_i8(frow + (size_t)kx0 * in_c, len);
                                }
                                continue;
                            }
                            for (int32_t kx = kx0; kx < kx1; kx++) {
                                const int8_t *ip = irow + (size_t)(x0 + kx * d_w) * in_c;
                                const int8_t *fp = frow + (size_t)kx * in_c;
                                acc += mnv_dot_i8(ip, fp, in_c);
                                if (!inside) {
                                    fsum += mnv_sum_i8(fp, in_c);
                                }
                            }
                        }
                        acc += inside ? chans[j].offset : in_off * fsum + (uint32_t)chans[j].bias;
                        int32_t v = mnv_mbqm((int32_t)acc, chans[j].mult, chans[j].left,
                            chans[j].right);
                        o[j] = mnv_clamp((int64_t)v + out_off, lo, hi);
                    }
                }
            }
        }
    }
}

// Copy the window at (y0, x0) into patch, [k_h][k_w][in_c], taps outside the input = pad.
static void gather(int8_t *patch, const int8_t *in_b, int32_t y0, int32_t x0,
    const int32_t *a, int32_t ky0, int32_t ky1, int32_t kx0, int32_t kx1, int8_t pad) {
    const size_t in_c = (size_t)a[IN_C], row_len = (size_t)a[K_W] * in_c;
    for (int32_t ky = 0; ky < a[K_H]; ky++) {
        int8_t *dst = patch + (size_t)ky * row_len;
        size_t lead = row_len, mid = 0;
        if (ky >= ky0 && ky < ky1) {
            lead = (size_t)kx0 * in_c;
            mid = (size_t)(kx1 - kx0) * in_c;
        }
        for (size_t i = 0; i < lead; i++) {
            dst[i] = pad;
        }
        const int8_t *row = in_b + (size_t)(y0 + ky * a[D_H]) * a[IN_W] * in_c;
        if (a[D_W] == 1) {
            const int8_t *src = row + (size_t)(x0 + kx0) * in_c;
            for (size_t i = 0; i < mid; i++) {
                dst[lead + i] = src[i];
            }
        } else {
            for (int32_t kx = kx0; mid && kx < kx1; kx++) {
                const int8_t *src = row + (size_t)(x0 + kx * a[D_W]) * in_c;
                for (size_t c = 0; c < in_c; c++) {
                    dst[(size_t)kx * in_c + c] = src[c];
                }
            }
        }
        for (size_t i = lead + mid; i < row_len; i++) {
            dst[i] = pad;
        }
    }
}

#if defined(__ARM_ARCH_6M__) && !defined(MNV_PORTABLE)
#define CONV_M0 1
// Requantization values of one output channel, in four words (mnv_chan's seven would put
// the frame, with the 640-byte patch, over MNV_STACK_BUDGET).
typedef struct {
    int32_t bias;  // with the input offset folded in
    int32_t mult;
    int32_t left;
    int32_t right;
} conv_chan;

static inline int8_t conv_requantize(uint32_t acc, const conv_chan *c, const mnv_act *act) {
    const int32_t x = mnv_srdhm(mnv_shl((int32_t)(acc + (uint32_t)c->bias), c->left), c->mult);
    const int32_t mask = (int32_t)((1u << c->right) - 1u);
    return mnv_act_apply((x >> c->right) + ((x & mask) > (mask >> 1) + (x < 0)), act);
}
// Cortex-M0/M0+ (RP2040) form of the fast path. Output channels MNV_CHUNK at a time, their
// requantization values loaded once per chunk (not once per pixel), with the input offset
// folded into the bias: sum (x + off) * f == sum x * f + off * sum f (mod 2**32), which
// also holds for gathered windows, whose outside taps are -off. Four channels share each
// input byte in mnv_dot.h's Cortex-M0 loop without its offset add.
static void conv_fast_m0(const int8_t *in, const int8_t *filt, const mnv_channels *ch,
    int8_t *out, const int32_t *a) {
    const int32_t in_off = a[IN_OFF];
    const int32_t in_h = a[IN_H], in_w = a[IN_W], out_c = a[OUT_C];
    const int32_t k_h = a[K_H], k_w = a[K_W];
    const size_t in_c = (size_t)a[IN_C];
    const size_t filter_size = (size_t)k_h * k_w * in_c;
    int8_t patch[MNV_PATCH];
    conv_chan chans[MNV_CHUNK];
    mnv_act act;
    mnv_act_init(&act, a[OUT_OFF], a[ACT_LO], a[ACT_HI]);

    for (int32_t oc0 = 0; oc0 < out_c; oc0 += MNV_CHUNK) {
        const int32_t n = out_c - oc0 < MNV_CHUNK ? out_c - oc0 : MNV_CHUNK;
        const int8_t *f_chunk = filt + (size_t)oc0 * filter_size;
        for (int32_t j = 0; j < n; j++) {
            const size_t oc = (size_t)(oc0 + j);
            const int32_t shift = ch->shift[oc];
            chans[j].bias = (int32_t)((uint32_t)(ch->bias ? ch->bias[oc] : 0) +
                (uint32_t)in_off * mnv_sum_i8(f_chunk + (size_t)j * filter_size, filter_size));
            chans[j].mult = ch->mult[oc];
            chans[j].left = shift > 0 ? shift : 0;
            chans[j].right = shift > 0 ? 0 : -shift;
        }
        for (int32_t b = 0; b < a[B]; b++) {
            const int8_t *in_b = in + (size_t)b * in_h * in_w * in_c;
            for (int32_t oy = 0; oy < a[OUT_H]; oy++) {
                const int32_t y0 = oy * a[S_H] - a[PAD_T];
                int32_t ky0, ky1;
                mnv_tap_range(y0, k_h, a[D_H], in_h, &ky0, &ky1);
                for (int32_t ox = 0; ox < a[OUT_W]; ox++) {
                    const int32_t x0 = ox * a[S_W] - a[PAD_L];
                    int32_t kx0, kx1;
                    mnv_tap_range(x0, k_w, a[D_W], in_w, &kx0, &kx1);
                    const int8_t *window = patch;
                    if (ky0 == 0 && ky1 == k_h && kx0 == 0 && kx1 == k_w && k_h == 1 &&
                        a[D_W] == 1) {
                        window = in_b + ((size_t)y0 * in_w + (size_t)x0) * in_c;
                    } else {
                        gather(patch, in_b, y0, x0, a, ky0, ky1, kx0, kx1, (int8_t)-in_off);
                    }
                    int8_t *o = out + (((size_t)b * a[OUT_H] + oy) * a[OUT_W] + ox) * out_c +
                        oc0;
                    int32_t j = 0;
                    for (; j + 4 <= n; j += 4) {
                        uint32_t acc[4];
                        MNV_DOT4_PLAIN(window, f_chunk + (size_t)j * filter_size, filter_size,
                            filter_size, acc);
                        o[j] = conv_requantize(acc[0], &chans[j], &act);
                        o[j + 1] = conv_requantize(acc[1], &chans[j + 1], &act);
                        o[j + 2] = conv_requantize(acc[2], &chans[j + 2], &act);
                        o[j + 3] = conv_requantize(acc[3], &chans[j + 3], &act);
                    }
                    for (; j < n; j++) {
                        const uint32_t acc = mnv_dot_i8(window, f_chunk + (size_t)j *
                            filter_size, filter_size);
                        o[j] = conv_requantize(acc, &chans[j], &act);
                    }
                }
            }
        }
    }
}
#else
#define CONV_M0 0
// The fast path: see the top of the file.
static void conv_fast(const int8_t *in, const int8_t *filt, const mnv_channels *ch,
    int8_t *out, const int32_t *args) {
    const int32_t in_off = args[IN_OFF];
    const size_t in_c = (size_t)args[IN_C];
    const size_t filter_size = (size_t)args[K_H] * args[K_W] * in_c;
    const int32_t in_h = args[IN_H], in_w = args[IN_W], out_h = args[OUT_H];
    const int32_t out_w = args[OUT_W], out_c = args[OUT_C], k_h = args[K_H], k_w = args[K_W];
    const int32_t out_off = args[OUT_OFF], lo = args[ACT_LO], hi = args[ACT_HI];
    int8_t patch[MNV_PATCH];
    uint32_t acc[4];
    mnv_chan c[4];  // loaded per group: cheaper than gathering the window once per chunk

    for (int32_t b = 0; b < args[B]; b++) {
        const int8_t *in_b = in + (size_t)b * in_h * in_w * in_c;
        for (int32_t oy = 0; oy < out_h; oy++) {
            const int32_t y0 = oy * args[S_H] - args[PAD_T];
            int32_t ky0, ky1;
            mnv_tap_range(y0, k_h, args[D_H], in_h, &ky0, &ky1);
            for (int32_t ox = 0; ox < out_w; ox++) {
                const int32_t x0 = ox * args[S_W] - args[PAD_L];
                int32_t kx0, kx1;
                mnv_tap_range(x0, k_w, args[D_W], in_w, &kx0, &kx1);
                const int8_t *window = patch;
                const int inside = ky0 == 0 && ky1 == k_h && kx0 == 0 && kx1 == k_w;
                if (inside && k_h == 1 && args[D_W] == 1) {
                    window = in_b + ((size_t)y0 * in_w + (size_t)x0) * in_c;
                } else {
                    gather(patch, in_b, y0, x0, args, ky0, ky1, kx0, kx1, (int8_t)-in_off);
                }
                int8_t *o = out + (((size_t)b * out_h + oy) * out_w + ox) * out_c;
                for (int32_t oc = 0; oc < out_c; oc += 4) {
                    const int32_t group = out_c - oc < 4 ? out_c - oc : 4;
                    const int8_t *f = filt + (size_t)oc * filter_size;
                    if (group == 4) {
                        mnv_dot4(window, in_off, f, filter_size, filter_size, acc);
                    } else {
                        for (int32_t k = 0; k < group; k++) {
                            acc[k] = mnv_dot1(window, in_off, f + (size_t)k * filter_size,
                                filter_size);
                        }
                    }
                    for (int32_t k = 0; k < group; k++) {
                        mnv_load_chan(&c[k], ch, (size_t)(oc + k));
                        o[oc + k] = mnv_requantize(acc[k], &c[k], out_off, lo, hi);
                    }
                }
            }
        }
    }
}

#endif

int mnv_conv_2d(const int8_t *in, size_t in_len, const int8_t *filt, size_t filt_len,
    const mnv_channels *ch, int8_t *out, size_t out_len, const int32_t *args, size_t n_args) {
    if (n_args != N_ARGS) {
        return MNV_EARGS;
    }
    int rc = conv_check(in_len, filt_len, ch, out_len, args);
    if (rc != MNV_OK) {
        return rc;
    }
    const int32_t in_off = args[IN_OFF];
    const size_t in_c = (size_t)args[IN_C];
    const size_t filter_size = (size_t)args[K_H] * args[K_W] * in_c;
    if (filter_size > MNV_PATCH || in_off < -127 || in_off > 128) {
        conv_general(in, filt, ch, out, args);
        return MNV_OK;
    }
#if CONV_M0
    conv_fast_m0(in, filt, ch, out, args);
#else
    conv_fast(in, filt, ch, out, args);
#endif
    return MNV_OK;
}
