// SOFTMAX: TFLite's reference quantized softmax in gemmlowp fixed point (scaled differences
// Q5.26, exponentials Q0.31, their sum Q12.19), int8 output offset by -128.
#include "mnv_fixed.h"

enum { ROWS, DEPTH, BETA_MULT, BETA_SHIFT, DIFF_MIN, N_ARGS };

static int32_t saturating_shl(int32_t x, int exponent) {
    const int32_t limit = (int32_t)((1u << (31 - exponent)) - 1u);
    if (x > limit) {
        return INT32_MAX;
    }
    if (x < -limit) {
        return INT32_MIN;
    }
    return mnv_shl(x, exponent);
}

static int32_t wrap_add(int32_t a, int32_t b) {
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

// exp(a) for a in [-1/4, 0): Taylor expansion around -1/8, Q0.31 in and out.
static int32_t exp_on_interval(int32_t a) {
    const int32_t x = a + (1 << 28);
    const int32_t x2 = mnv_srdhm(x, x);
    const int32_t x3 = mnv_srdhm(x2, x);
    const int32_t x4 = mnv_srdhm(x2, x2);
    const int32_t poly = mnv_rdbp(
        wrap_add(mnv_srdhm(wrap_add(mnv_rdbp(x4, 2), x3), 715827883), x2), 1);
    return wrap_add(1895147668, mnv_srdhm(1895147668, wrap_add(x, poly)));
}

// exp(a) for a <= 0; a is Q5.26, the result Q0.31.
static int32_t exp_on_negative_values(int32_t a) {
    static const int32_t barrel[7] = {1672461947, 1302514674, 790015084, 290630308,
                                      39332535, 720401, 242};
    const int32_t quarter = 1 << 24;
    const int32_t a_mod = (a & (quarter - 1)) - quarter;
    int32_t result = exp_on_interval(saturating_shl(a_mod, 5));
    const uint32_t remainder = (uint32_t)a_mod - (uint32_t)a;
    for (int bit = 24; bit <= 30; bit++) {
        if (remainder & (1u << bit)) {
            result = mnv_srdhm(result, barrel[bit - 24]);
        }
    }
    return a == 0 ? INT32_MAX : result;
}

// 1 / (1 + a) for a in [0, 1): Newton-Raphson in Q2.29, Q0.31 in and out.
static int32_t one_over_one_plus_x(int32_t a) {
    const int32_t half_denominator = (int32_t)(((int64_t)a + INT32_MAX + 1) >> 1);
    int32_t x = wrap_add(1515870810, mnv_srdhm(half_denominator, -1010580540));
    for (int i = 0; i < 3; i++) {
        int32_t err = (int32_t)((uint32_t)(1 << 29) - (uint32_t)mnv_srdhm(half_denominator, x));
        x = wrap_add(x, saturating_shl(mnv_srdhm(x, err), 2));
    }
    return saturating_shl(x, 1);
}

// RoundingDivideByPOT for exponents up to 62 (the softmax output uses up to 34).
static int32_t rdbp_wide(int32_t x, int e) {
    const int64_t mask = (int64_t)((1ULL << e) - 1);
    const int64_t threshold = (mask >> 1) + (x < 0);
    return (int32_t)(((int64_t)x >> e) + (((int64_t)x & mask) > threshold));
}

static int32_t scaled_exp(int32_t diff, int32_t beta_mult, int beta_shift) {
    return exp_on_negative_values(mnv_srdhm(mnv_shl(diff, beta_shift), beta_mult));
}

int mnv_softmax(const int8_t *in, size_t in_len, int8_t *out, size_t out_len,
    const int32_t *args, size_t n_args) {
    if (n_args != N_ARGS) {
        return MNV_EARGS;
    }
    int32_t dims[2] = {args[ROWS], args[DEPTH]};
    if (!mnv_product_is(in_len, dims, 2) || !mnv_product_is(out_len, dims, 2)) {
        return MNV_ESHAPE;
    }
    if (args[DEPTH] > MNV_MAX_SOFTMAX_DEPTH || args[BETA_SHIFT] < 0 || args[BETA_SHIFT] > 31 ||
        args[BETA_MULT] < 0 || args[DIFF_MIN] > 0) {
        return MNV_ERANGE;
    }
    // The differences that are exponentiated (>= diff_min, and never below -255) are shifted
    // left by beta_shift in int32: as the loader, refuse a shift that would overflow.
    const int64_t widest = -(int64_t)args[DIFF_MIN] < 255 ? -(int64_t)args[DIFF_MIN] : 255;
    if ((widest << args[BETA_SHIFT]) > INT32_MAX) {
        return MNV_ERANGE;
    }
    const size_t depth = (size_t)args[DEPTH];
    const int32_t beta_mult = args[BETA_MULT], diff_min = args[DIFF_MIN];
    const int beta_shift = args[BETA_SHIFT];
    for (int32_t r = 0; r < args[ROWS]; r++) {
        const int8_t *x = in + (size_t)r * depth;
        int8_t *y = out + (size_t)r * depth;
        int32_t top = -128;
        for (size_t c = 0; c < depth; c++) {
            top = x[c] > top ? x[c] : top;
        }
        int32_t total = 0;
        for (size_t c = 0; c < depth; c++) {
            const int32_t diff = x[c] - top;
            if (diff >= diff_min) {
                total += mnv_rdbp(scaled_exp(diff, beta_mult, beta_shift), 12);
            }
        }
        if (total <= 0) {
            // Only a positive diff_min skips every element: all outputs are the minimum.
            for (size_t c = 0; c < depth; c++) {
                y[c] = -128;
            }
            continue;
        }
        // GetReciprocal: normalise the sum to [1, 2) and take 1/x.
        int headroom = 0;
        while (!(((uint32_t)total << headroom) & 0x80000000u)) {
            headroom++;
        }
        const int32_t scale = one_over_one_plus_x(
            (int32_t)(((uint32_t)total << headroom) - 0x80000000u));
        const int exponent = 12 - headroom + 23;
        for (size_t c = 0; c < depth; c++) {
            const int32_t diff = x[c] - top;
            int32_t v = -128;
            if (diff >= diff_min) {
                v = rdbp_wide(mnv_srdhm(scale, scaled_exp(diff, beta_mult, beta_shift)),
                    exponent) - 128;
            }
            y[c] = mnv_clamp(v, -128, 127);
        }
    }
    return MNV_OK;
}
