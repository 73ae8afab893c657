// MEAN: TFLite's int8 QuantizedMeanOrSum over the input viewed as [k0, r0, k1, r1, k2]
// (kept, reduced, kept, reduced, kept), the 1 / count factor folded into mult and shift by
// the packager.
#include "mnv_fixed.h"
#include "mnv_math.h"

enum { K0, R0, K1, R1, K2, IN_ZP, OUT_ZP, MULT, SHIFT, N_ARGS };

#define MNV_MAX_MEAN_COUNT (1L << 23)

int mnv_mean(const int8_t *in, size_t in_len, int8_t *out, size_t out_len,
    const int32_t *args, size_t n_args) {
    if (n_args != N_ARGS) {
        return MNV_EARGS;
    }
    const int32_t kept[3] = {args[K0], args[K1], args[K2]};
    if (!mnv_product_is(in_len, args, 5) || !mnv_product_is(out_len, kept, 3)) {
        return MNV_ESHAPE;
    }
    const int64_t count = (int64_t)args[R0] * args[R1];
    const int32_t s = args[SHIFT];
    if (count > MNV_MAX_MEAN_COUNT || args[IN_ZP] < -128 || args[IN_ZP] > 127 ||
        args[OUT_ZP] < -128 || args[OUT_ZP] > 127 || args[MULT] < 0 || s < MNV_MIN_SHIFT || s > MNV_MAX_SHIFT ||
        (s > 0 && ((255 * count) << s) > INT32_MAX)) {
        return MNV_ERANGE;
    }
    const int32_t r0 = args[R0], r1 = args[R1], k1 = args[K1], k2 = args[K2];
    const int32_t correction = args[IN_ZP] * (int32_t)count;
    const int left = s > 0 ? s : 0, right = s > 0 ? 0 : -s;
    size_t o = 0;
    for (int32_t i = 0; i < args[K0]; i++) {
        for (int32_t j = 0; j < k1; j++) {
            for (int32_t c = 0; c < k2; c++) {
                int32_t total = 0;
                for (int32_t r = 0; r < r0; r++) {
                    const int8_t *p = in + (((size_t)i * r0 + r) * k1 + j) * r1 * k2 + c;
                    for (int32_t q = 0; q < r1; q++) {
                        total += p[(size_t)q * k2];
                    }
                }
                const int32_t v = mnv_mbqm(total - correction, args[MULT], left, right);
                out[o++] = mnv_clamp((int64_t)v + args[OUT_ZP], -128, 127);
            }
        }
    }
    return MNV_OK;
}
