// QUANTIZE (float32 -> int8, or int8 -> int8 requantization) and DEQUANTIZE.
#include "mnv_fixed.h"

static float f32_from_bits(int32_t bits) {
    union {
        int32_t i;
        float f;
    } u;
    u.i = bits;
    return u.f;
}

// std::round (half away from zero) of a float32 already inside int32's range.
static int32_t round_half_away(float v) {
    int32_t q = (int32_t)v;
    float frac = v - (float)q;
    if (frac >= 0.5f) {
        q++;
    } else if (frac <= -0.5f) {
        q--;
    }
    return q;
}

int mnv_quantize(const void *in, size_t in_len, int8_t *out, size_t out_len,
    const int32_t *args, size_t n_args) {
    if (n_args != 6) {
        return MNV_EARGS;
    }
    const int32_t mode = args[0];
    if (args[1] < 1 || (size_t)args[1] != in_len || (size_t)args[1] != out_len) {
        return MNV_ESHAPE;
    }
    if (mode == 1) {
        const int32_t s = args[5];
        if (s < MNV_MIN_SHIFT || s > MNV_MAX_SHIFT) {
            return MNV_ERANGE;
        }
        const int8_t *x = in;
        const uint32_t in_zp = (uint32_t)args[2];
        for (size_t i = 0; i < in_len; i++) {
            int32_t v = mnv_mbqm((int32_t)((uint32_t)(int32_t)x[i] - in_zp), args[4],
                s > 0 ? s : 0, s > 0 ? 0 : -s);
            out[i] = mnv_clamp((int64_t)v + args[3], -128, 127);
        }
        return MNV_OK;
    }
    if (mode != 0) {
        return MNV_ERANGE;
    }
    const float *x = in;
    const float scale = f32_from_bits(args[3]);
    const int32_t zero_point = args[2];
    for (size_t i = 0; i < in_len; i++) {
        const volatile float quotient = x[i] / scale;  // rounded to float32 here, whatever
        const float v = quotient;                      // the FPU's evaluation width
        int32_t q;
        if (v > -2147483648.0f && v < 2147483648.0f) {
            q = round_half_away(v);
        } else {
            q = v != v ? 0 : (v < 0 ? INT32_MIN : INT32_MAX);
        }
        out[i] = mnv_clamp((int64_t)q + zero_point, -128, 127);
    }
    return MNV_OK;
}

int mnv_dequantize(const int8_t *in, size_t in_len, float *out, size_t out_len,
    const int32_t *args, size_t n_args) {
    if (n_args != 3) {
        return MNV_EARGS;
    }
    if (args[0] < 1 || (size_t)args[0] != in_len || (size_t)args[0] != out_len) {
        return MNV_ESHAPE;
    }
    const uint32_t zero_point = (uint32_t)args[1];
    const float scale = f32_from_bits(args[2]);
    for (size_t i = 0; i < in_len; i++) {
        out[i] = scale * (float)(int32_t)((uint32_t)(int32_t)in[i] - zero_point);
    }
    return MNV_OK;
}
