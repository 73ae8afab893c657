// ADD (TFLite's int8 AddElementwise, no broadcasting) and RESHAPE (a copy).
#include "mnv_fixed.h"

enum { SIZE, OFF1, OFF2, OUT_OFF, LEFT, M1, S1, M2, S2, MO, SO, ACT_LO, ACT_HI, N_ARGS };

static int split_shift(int32_t s, int *left, int *right) {
    if (s < MNV_MIN_SHIFT || s > MNV_MAX_SHIFT) {
        return 0;
    }
    *left = s > 0 ? s : 0;
    *right = s > 0 ? 0 : -s;
    return 1;
}

int mnv_add(const int8_t *a, size_t a_len, const int8_t *b, size_t b_len, int8_t *out,
    size_t out_len, const int32_t *args, size_t n_args) {
    if (n_args != N_ARGS) {
        return MNV_EARGS;
    }
    const size_t size = (size_t)args[SIZE];
    if (args[SIZE] < 1 || size != a_len || size != b_len || size != out_len) {
        return MNV_ESHAPE;
    }
    int l1, r1, l2, r2, lo_, ro;
    if (!split_shift(args[S1], &l1, &r1) || !split_shift(args[S2], &l2, &r2) ||
        !split_shift(args[SO], &lo_, &ro) || args[LEFT] < 0 || args[LEFT] > MNV_MAX_ADD_LEFT_SHIFT ||
        args[M1] < 0 || args[M2] < 0 || args[MO] < 0 ||
        !mnv_act_ok(args[ACT_LO], args[ACT_HI])) {
        return MNV_ERANGE;
    }
    const int left = args[LEFT];
    const uint32_t off1 = (uint32_t)args[OFF1], off2 = (uint32_t)args[OFF2];
    const int32_t m1 = args[M1], m2 = args[M2], mo = args[MO], out_off = args[OUT_OFF];
    const int32_t lo = args[ACT_LO], hi = args[ACT_HI];
    // The first input is int8, so its rescaled value takes one of 256: tabulate it once
    // (1 KB of stack; a second table would not fit the budget of mnv_fixed.h).
    int32_t scaled1[256];
    for (int32_t x = -128; x < 128; x++) {
        scaled1[x + 128] = mnv_mbqm(mnv_shl((int32_t)((uint32_t)x + off1), left), m1, l1, r1);
    }
    // The second input's and the output's rescaling with their rounding masks precomputed.
    mnv_chan c2 = {0, 0, m2, l2, r2, (int32_t)((1u << r2) - 1u), 0};
    mnv_chan co = {0, 0, mo, lo_, ro, (int32_t)((1u << ro) - 1u), 0};
    c2.half = c2.mask >> 1;
    co.half = co.mask >> 1;
    mnv_act act;
    mnv_act_init(&act, out_off, lo, hi);
    for (size_t i = 0; i < size; i++) {
        const int32_t x2 = mnv_shl((int32_t)((uint32_t)(int32_t)b[i] + off2), left);
        const uint32_t sum = (uint32_t)scaled1[a[i] + 128] + (uint32_t)mnv_mbqm_chan(x2, &c2);
        out[i] = mnv_act_apply(mnv_mbqm_chan((int32_t)sum, &co), &act);
    }
    return MNV_OK;
}

int mnv_reshape(const int8_t *in, size_t in_len, int8_t *out, size_t out_len,
    const int32_t *args, size_t n_args) {
    if (n_args != 1) {
        return MNV_EARGS;
    }
    if (args[0] < 0 || (size_t)args[0] != in_len || (size_t)args[0] != out_len) {
        return MNV_ESHAPE;
    }
    if (in != out) {
        for (size_t i = 0; i < in_len; i++) {
            out[i] = in[i];
        }
    }
    return MNV_OK;
}
