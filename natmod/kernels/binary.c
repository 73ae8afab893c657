// BINARY: TFLite's int8 ADD, SUB, MUL, MAXIMUM and MINIMUM with broadcasting. The output is
// walked in order over 4 dims; each input is read at sum(index_k * stride_k) (stride 0 along
// a broadcast dim). The checks bound every value so no int32 arithmetic overflows.
#include "mnv_fixed.h"
#include "mnv_math.h"

enum { KIND, D0, A0 = 5, B0 = 9, OFF_A = 13, OFF_B, OUT_OFF, LEFT, MA, SA, MB, SB, MO, SO,
    ACT_LO, ACT_HI, N_ARGS };
enum { K_ADD, K_SUB, K_MUL, K_MAX, K_MIN };

#define MNV_MAX_DIM 0x3FFFFFFF

// Every element a stride pattern reaches lies inside the buffer.
static int strides_ok(const int32_t *dims, const int32_t *strides, size_t len) {
    int64_t reach = 0;
    for (int k = 0; k < 4; k++) {
        if (strides[k] < 0 || (size_t)strides[k] > len) {
            return 0;
        }
        reach += (int64_t)(dims[k] - 1) * strides[k];
    }
    return reach < (int64_t)len;
}

static int shift_in(int32_t s, int32_t lo, int32_t hi) {
    return lo <= s && s <= hi;
}

static int args_ok(const int32_t *args) {
    const int32_t kind = args[KIND];
    if (kind < K_ADD || kind > K_MIN || !mnv_act_ok(args[ACT_LO], args[ACT_HI])) {
        return 0;
    }
    // Offsets are negated int8 zero points, so (x + offset) stays in [-255, 255].
    if (!shift_in(args[OFF_A], -127, 128) || !shift_in(args[OFF_B], -127, 128) ||
        !shift_in(args[OUT_OFF], -128, 127) || args[MA] < 0 || args[MB] < 0 || args[MO] < 0) {
        return 0;
    }
    if (kind == K_ADD || kind == K_SUB) {
        return shift_in(args[LEFT], 0, MNV_MAX_ADD_LEFT_SHIFT) &&
            shift_in(args[SA], MNV_MIN_SHIFT, 0) && shift_in(args[SB], MNV_MIN_SHIFT, 0) &&
            shift_in(args[SO], MNV_MIN_SHIFT, 0);
    }
    // MUL: |product| <= 65025 and 65025 << 15 < 2**31.
    return kind != K_MUL || shift_in(args[SO], MNV_MIN_SHIFT, MNV_MAX_MUL_SHIFT);
}

// The value of one output element before clamping.
static inline int32_t combine(int32_t kind, int32_t x, int32_t y, const int32_t *args) {
    switch (kind) {
        case K_MAX:
            return x > y ? x : y;
        case K_MIN:
            return x < y ? x : y;
        case K_MUL: {
            const int32_t s = args[SO];
            return mnv_mbqm((x + args[OFF_A]) * (y + args[OFF_B]), args[MO], s > 0 ? s : 0,
                s > 0 ? 0 : -s) + args[OUT_OFF];
        }
        default: {
            const int left = args[LEFT];
            const int32_t sx = mnv_mbqm((x + args[OFF_A]) * (1 << left), args[MA], 0, -args[SA]);
            const int32_t sy = mnv_mbqm((y + args[OFF_B]) * (1 << left), args[MB], 0, -args[SB]);
            return mnv_mbqm(kind == K_ADD ? sx + sy : sx - sy, args[MO], 0, -args[SO]) +
                args[OUT_OFF];
        }
    }
}

int mnv_binary(const int8_t *a, size_t a_len, const int8_t *b, size_t b_len, int8_t *out,
    size_t out_len, const int32_t *args, size_t n_args) {
    if (n_args != N_ARGS) {
        return MNV_EARGS;
    }
    const int32_t *dims = args + D0;
    for (int k = 0; k < 4; k++) {
        if (dims[k] > MNV_MAX_DIM) {
            return MNV_ESHAPE;
        }
    }
    if (!mnv_product_is(out_len, dims, 4) || !strides_ok(dims, args + A0, a_len) ||
        !strides_ok(dims, args + B0, b_len)) {
        return MNV_ESHAPE;
    }
    if (!args_ok(args)) {
        return MNV_ERANGE;
    }
    const int32_t kind = args[KIND], lo = args[ACT_LO], hi = args[ACT_HI];
    const int32_t *sa = args + A0, *sb = args + B0;
    size_t o = 0;
    for (int32_t i0 = 0; i0 < dims[0]; i0++) {
        for (int32_t i1 = 0; i1 < dims[1]; i1++) {
            for (int32_t i2 = 0; i2 < dims[2]; i2++) {
                size_t ia = (size_t)i0 * sa[0] + (size_t)i1 * sa[1] + (size_t)i2 * sa[2];
                size_t ib = (size_t)i0 * sb[0] + (size_t)i1 * sb[1] + (size_t)i2 * sb[2];
                for (int32_t i3 = 0; i3 < dims[3]; i3++) {
                    out[o++] = mnv_clamp(combine(kind, a[ia], b[ib], args), lo, hi);
                    ia += (size_t)sa[3];
                    ib += (size_t)sb[3];
                }
            }
        }
    }
    return MNV_OK;
}
