// LOOKUP: any int8 -> int8 function as a 256-byte table computed by the packager
// (LOGISTIC, TANH, HARD_SWISH, LEAKY_RELU, RELU, RELU6), and QUANTIZE_INT16 (TFLite's
// Requantize from int16 to int8).
#include "mnv_fixed.h"
#include "mnv_math.h"

int mnv_lookup(const int8_t *in, size_t in_len, const int8_t *table, size_t table_len,
    int8_t *out, size_t out_len, const int32_t *args, size_t n_args) {
    if (n_args != 1) {
        return MNV_EARGS;
    }
    if (table_len != 256 || args[0] < 1 || (size_t)args[0] != in_len ||
        (size_t)args[0] != out_len) {
        return MNV_ESHAPE;
    }
    for (size_t i = 0; i < in_len; i++) {
        out[i] = table[(uint8_t)in[i] ^ 128u];
    }
    return MNV_OK;
}

enum { Q_SIZE, Q_IN_ZP, Q_OUT_ZP, Q_MULT, Q_SHIFT, Q_N_ARGS };

int mnv_quantize_int16(const int16_t *in, size_t in_len, int8_t *out, size_t out_len,
    const int32_t *args, size_t n_args) {
    if (n_args != Q_N_ARGS) {
        return MNV_EARGS;
    }
    if (args[Q_SIZE] < 1 || (size_t)args[Q_SIZE] != in_len || (size_t)args[Q_SIZE] != out_len) {
        return MNV_ESHAPE;
    }
    const int32_t in_zp = args[Q_IN_ZP], out_zp = args[Q_OUT_ZP], s = args[Q_SHIFT];
    // |x - in_zp| <= 65535, and 65535 << 15 stays in int32.
    if (in_zp < -32768 || in_zp > 32767 || out_zp < -128 || out_zp > 127 ||
        args[Q_MULT] < 0 || s < MNV_MIN_SHIFT || s > MNV_MAX_QUANTIZE_INT16_SHIFT) {
        return MNV_ERANGE;
    }
    const int left = s > 0 ? s : 0, right = s > 0 ? 0 : -s;
    for (size_t i = 0; i < in_len; i++) {
        const int32_t v = mnv_mbqm((int32_t)in[i] - in_zp, args[Q_MULT], left, right);
        out[i] = mnv_clamp((int64_t)v + out_zp, -128, 127);
    }
    return MNV_OK;
}
