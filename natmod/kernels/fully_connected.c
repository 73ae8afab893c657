// FULLY_CONNECTED. Offsets are folded out of the dot product (mod 2**32):
//   sum (x + xo)(f + fo) = sum x f + xo sum f + fo sum x + depth xo fo.
// When the filter offset is 0 and the input offset fits (every real model), the offset is
// applied inside mnv_dot4 instead, four output channels at a time. An input offset of 128
// (the input's zero point is -128, as after a RELU) is applied once per input row instead,
// where the scalar cores have mnv_dot4_u8: the row is copied as x + 128 (0..255) into
// a stack buffer, which saves the Cortex-M0 one instruction per four products.
#include "mnv_dot.h"
#include "mnv_fixed.h"

// mnv_mbqm with the shift split by its sign at each output instead of into a struct of
// precomputed values first: on a Cortex-M0 that struct lived on the stack (~40 cycles per
// output of stores and reloads).
static inline int8_t fc_requantize(uint32_t acc, int32_t mult, int32_t shift, const mnv_act *t) {
    if (shift > 0) {
        return mnv_act_apply(mnv_srdhm(mnv_shl((int32_t)acc, shift), mult), t);
    }
    return mnv_act_apply(mnv_rdbp(mnv_srdhm((int32_t)acc, mult), -shift), t);
}

enum { B, DEPTH, OUT_C, IN_OFF, F_OFF, OUT_OFF, ACT_LO, ACT_HI, N_ARGS };

// Rows up to this long take the x + 128 copy (bytes of stack).
#define U8_ROW 256

#if MNV_DOT4_U8
// A 4-byte word that may alias the int8 rows (the copy goes a word at a time when it can).
typedef uint32_t mnv_word __attribute__((may_alias));

// row = x + 128 as unsigned bytes (x ^ 0x80).
static void to_unsigned(mnv_word *row, const int8_t *x, size_t n) {
    size_t i = 0;
    if (((uintptr_t)x & 3) == 0) {
        const mnv_word *words = (const mnv_word *)(const void *)x;
        for (; i + 4 <= n; i += 4) {
            row[i / 4] = words[i / 4] ^ 0x80808080u;
        }
    }
    for (; i < n; i++) {
        ((uint8_t *)row)[i] = (uint8_t)((uint8_t)x[i] ^ 0x80u);
    }
}
#endif

int mnv_fully_connected(const int8_t *in, size_t in_len, const int8_t *filt, size_t filt_len,
    const mnv_channels *ch, int8_t *out, size_t out_len, const int32_t *args, size_t n_args) {
    if (n_args != N_ARGS) {
        return MNV_EARGS;
    }
    int32_t in_dims[2] = {args[B], args[DEPTH]};
    int32_t f_dims[2] = {args[OUT_C], args[DEPTH]};
    int32_t out_dims[2] = {args[B], args[OUT_C]};
    if (!mnv_product_is(in_len, in_dims, 2) || !mnv_product_is(filt_len, f_dims, 2) ||
        !mnv_product_is(out_len, out_dims, 2) || ch->count < (size_t)args[OUT_C]) {
        return MNV_ESHAPE;
    }
    if (!mnv_act_ok(args[ACT_LO], args[ACT_HI]) || !mnv_shifts_ok(ch->shift, args[OUT_C])) {
        return MNV_ERANGE;
    }
    const size_t depth = (size_t)args[DEPTH];
    const int32_t out_c = args[OUT_C], lo = args[ACT_LO], hi = args[ACT_HI];
    const int32_t out_off = args[OUT_OFF];
    const uint32_t in_off = (uint32_t)args[IN_OFF], f_off = (uint32_t)args[F_OFF];
    mnv_chan c;

    if (args[F_OFF] == 0 && args[IN_OFF] >= -128 && args[IN_OFF] <= 128) {
        uint32_t acc[4];
        const int32_t *bias = ch->bias;
        mnv_act act;
        mnv_act_init(&act, out_off, lo, hi);
        for (int32_t b = 0; b < args[B]; b++) {
            const int8_t *x = in + (size_t)b * depth;
            int8_t *o = out + (size_t)b * out_c;
#if MNV_DOT4_U8
            mnv_word row_words[U8_ROW / 4];
            uint8_t *row = (uint8_t *)row_words;
            const int shifted = args[IN_OFF] == 128 && depth <= U8_ROW;
            if (shifted) {
                to_unsigned(row_words, x, depth);
            }
#endif
            for (int32_t oc = 0; oc < out_c; oc += 4) {
                const int32_t group = out_c - oc < 4 ? out_c - oc : 4;
                const int8_t *f = filt + (size_t)oc * depth;
#if MNV_DOT4_U8
                if (group == 4 && shifted) {
                    mnv_dot4_u8(row, f, depth, depth, acc);
                } else
#endif
                if (group == 4) {
                    mnv_dot4(x, args[IN_OFF], f, depth, depth, acc);
                } else {
                    for (int32_t k = 0; k < group; k++) {
                        acc[k] = mnv_dot1(x, args[IN_OFF], f + (size_t)k * depth, depth);
                    }
                }
                for (int32_t k = 0; k < group; k++) {
                    const int32_t j = oc + k;
                    o[j] = fc_requantize(acc[k] + (bias ? (uint32_t)bias[j] : 0u), ch->mult[j],
                        ch->shift[j], &act);
                }
            }
        }
        return MNV_OK;
    }
    for (int32_t b = 0; b < args[B]; b++) {
        const int8_t *x = in + (size_t)b * depth;
        const uint32_t base = f_off * mnv_sum_i8(x, depth) + (uint32_t)depth * in_off * f_off;
        for (int32_t oc = 0; oc < out_c; oc++) {
            const int8_t *f = filt + (size_t)oc * depth;
            uint32_t acc = base + mnv_dot_i8(x, f, depth);
            if (in_off) {
                acc += in_off * mnv_sum_i8(f, depth);
            }
            mnv_load_chan(&c, ch, (size_t)oc);
            acc += (uint32_t)c.bias;
            int32_t v = mnv_mbqm((int32_t)acc, c.mult, c.left, c.right);
            out[(size_t)b * out_c + oc] = mnv_clamp((int64_t)v + out_off, lo, hi);
        }
    }
    return MNV_OK;
}
