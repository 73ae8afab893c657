// The math ops (docs/capsule-format.md opcodes 20-23) in plain C: LOOKUP, BINARY with
// broadcasting, MEAN and QUANTIZE_INT16. Same conventions as mnv_kernels.h: caller buffers
// with their element counts, the op's int32 argument block checked against them first
// (MNV_E* and no write on a mismatch), no allocation, no MicroPython headers.
#ifndef MNV_MATH_H
#define MNV_MATH_H

#include "mnv_kernels.h"

// out[i] = table[in[i] + 128]; table_len must be 256.
int mnv_lookup(const int8_t *in, size_t in_len, const int8_t *table, size_t table_len,
    int8_t *out, size_t out_len, const int32_t *args, size_t n_args);
// ADD / SUB / MUL / MAXIMUM / MINIMUM over 4 output dims with per-input strides.
int mnv_binary(const int8_t *a, size_t a_len, const int8_t *b, size_t b_len, int8_t *out,
    size_t out_len, const int32_t *args, size_t n_args);
int mnv_mean(const int8_t *in, size_t in_len, int8_t *out, size_t out_len,
    const int32_t *args, size_t n_args);
// in_len counts int16 elements.
int mnv_quantize_int16(const int16_t *in, size_t in_len, int8_t *out, size_t out_len,
    const int32_t *args, size_t n_args);

#endif
