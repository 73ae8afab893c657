// AVERAGE_POOL_2D and MAX_POOL_2D over NHWC, channels innermost so the tap loop is contiguous.
#include "mnv_fixed.h"

enum { B, IN_H, IN_W, CHANS, OUT_H, OUT_W, F_H, F_W, S_H, S_W, PAD_T, PAD_L, ACT_LO, ACT_HI,
       N_ARGS };

static int pool_check(size_t in_len, size_t out_len, const int32_t *a, size_t n_args) {
    if (n_args != N_ARGS) {
        return MNV_EARGS;
    }
    int32_t in_dims[4] = {a[B], a[IN_H], a[IN_W], a[CHANS]};
    int32_t out_dims[4] = {a[B], a[OUT_H], a[OUT_W], a[CHANS]};
    if (!mnv_product_is(in_len, in_dims, 4) || !mnv_product_is(out_len, out_dims, 4)) {
        return MNV_ESHAPE;
    }
    if (!mnv_window_ok(a[IN_H], a[OUT_H], a[F_H], a[S_H], 1, a[PAD_T]) ||
        !mnv_window_ok(a[IN_W], a[OUT_W], a[F_W], a[S_W], 1, a[PAD_L]) ||
        !mnv_act_ok(a[ACT_LO], a[ACT_HI])) {
        return MNV_ERANGE;
    }
    // The int32 sum of one window's taps (at most 128 each) must not overflow.
    int64_t taps_h = a[F_H] < a[IN_H] ? a[F_H] : a[IN_H];
    int64_t taps_w = a[F_W] < a[IN_W] ? a[F_W] : a[IN_W];
    return taps_h * taps_w < MNV_MAX_POOL_TAPS ? MNV_OK : MNV_ERANGE;
}

static int pool(const int8_t *in, size_t in_len, int8_t *out, size_t out_len,
    const int32_t *args, size_t n_args, int average) {
    int rc = pool_check(in_len, out_len, args, n_args);
    if (rc != MNV_OK) {
        return rc;
    }
    const int32_t in_h = args[IN_H], in_w = args[IN_W], out_h = args[OUT_H];
    const int32_t out_w = args[OUT_W], f_h = args[F_H], f_w = args[F_W];
    const int32_t lo = args[ACT_LO], hi = args[ACT_HI];
    const size_t chans = (size_t)args[CHANS];
    int32_t acc[MNV_CHUNK];

    for (int32_t b = 0; b < args[B]; b++) {
        for (int32_t oy = 0; oy < out_h; oy++) {
            const int32_t y0 = oy * args[S_H] - args[PAD_T];
            int32_t ky0, ky1;
            mnv_tap_range(y0, f_h, 1, in_h, &ky0, &ky1);
            for (int32_t ox = 0; ox < out_w; ox++) {
                const int32_t x0 = ox * args[S_W] - args[PAD_L];
                int32_t kx0, kx1;
                mnv_tap_range(x0, f_w, 1, in_w, &kx0, &kx1);
                const int32_t count = (ky1 - ky0) * (kx1 - kx0);
                int8_t *o = out + (((size_t)b * out_h + oy) * out_w + ox) * chans;
                for (size_t c0 = 0; c0 < chans; c0 += MNV_CHUNK) {
                    const size_t n = chans - c0 < MNV_CHUNK ? chans - c0 : MNV_CHUNK;
                    for (size_t j = 0; j < n; j++) {
                        acc[j] = average ? 0 : -128;
                    }
                    for (int32_t ky = ky0; ky < ky1; ky++) {
                        const size_t row = ((size_t)b * in_h + (size_t)(y0 + ky)) * in_w;
                        for (int32_t kx = kx0; kx < kx1; kx++) {
                            const int8_t *ip = in + (row + (size_t)(x0 + kx)) * chans + c0;
                            if (average) {
                                for (size_t j = 0; j < n; j++) {
                                    acc[j] += ip[j];
                                }
                            } else {
                                for (size_t j = 0; j < n; j++) {
                                    acc[j] = ip[j] > acc[j] ? ip[j] : acc[j];
                                }
                            }
                        }
                    }
                    for (size_t j = 0; j < n; j++) {
                        int32_t v = acc[j];
                        if (average) {
                            // C division truncates toward zero, as TFLite's; no taps gives 0.
                            v = count == 0 ? 0 : (v > 0 ? (v + count / 2) / count
                                : (v - count / 2) / count);
                        }
                        o[c0 + j] = mnv_clamp(v, lo, hi);
                    }
                }
            }
        }
    }
    return MNV_OK;
}

int mnv_average_pool_2d(const int8_t *in, size_t in_len, int8_t *out, size_t out_len,
    const int32_t *args, size_t n_args) {
    return pool(in, in_len, out, out_len, args, n_args, 1);
}

int mnv_max_pool_2d(const int8_t *in, size_t in_len, int8_t *out, size_t out_len,
    const int32_t *args, size_t n_args) {
    return pool(in, in_len, out, out_len, args, n_args, 0);
}
