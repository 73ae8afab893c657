// Minerva int8 kernels in plain C: the C tier of docs/capsule-format.md.
//
// Every kernel takes caller buffers with their element counts and the op's int32 argument
// block, checks that the block is consistent with the buffers, and only then computes; on
// a mismatch it returns a negative MNV_E* code and writes nothing. Arithmetic is that of
// TFLite's reference integer kernels, to the bit. Where TFLite's int32 arithmetic would
// overflow (possible only with arguments no real model has), these kernels wrap modulo
// 2**32 instead of invoking undefined behaviour. No allocation, no globals, no libc beyond
// <stdint.h>/<stddef.h>, no MicroPython headers: the same files build the native module
// and the host sanitizer driver.
#ifndef MNV_KERNELS_H
#define MNV_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#define MNV_OK 0
#define MNV_EARGS (-1)   // wrong number of arguments
#define MNV_ESHAPE (-2)  // argument block disagrees with a buffer's length, or a dim < 1
#define MNV_ERANGE (-3)  // a value out of its range (shift, activation range, geometry)

// Per-output-channel quantization: `count` entries each; bias may be NULL.
typedef struct {
    const int32_t *bias;
    const int32_t *mult;
    const int32_t *shift;
    size_t count;
} mnv_channels;

int mnv_conv_2d(const int8_t *in, size_t in_len, const int8_t *filt, size_t filt_len,
    const mnv_channels *ch, int8_t *out, size_t out_len, const int32_t *args, size_t n_args);
int mnv_depthwise_conv_2d(const int8_t *in, size_t in_len, const int8_t *filt,
    size_t filt_len, const mnv_channels *ch, int8_t *out, size_t out_len,
    const int32_t *args, size_t n_args);
int mnv_fully_connected(const int8_t *in, size_t in_len, const int8_t *filt, size_t filt_len,
    const mnv_channels *ch, int8_t *out, size_t out_len, const int32_t *args, size_t n_args);
int mnv_average_pool_2d(const int8_t *in, size_t in_len, int8_t *out, size_t out_len,
    const int32_t *args, size_t n_args);
int mnv_max_pool_2d(const int8_t *in, size_t in_len, int8_t *out, size_t out_len,
    const int32_t *args, size_t n_args);
int mnv_add(const int8_t *a, size_t a_len, const int8_t *b, size_t b_len, int8_t *out,
    size_t out_len, const int32_t *args, size_t n_args);
int mnv_reshape(const int8_t *in, size_t in_len, int8_t *out, size_t out_len,
    const int32_t *args, size_t n_args);
int mnv_softmax(const int8_t *in, size_t in_len, int8_t *out, size_t out_len,
    const int32_t *args, size_t n_args);
// GATHER: out[i0,i1,i2,i3] = in[t0[i0] + t1[i1] + t2[i2] + t3[i3]], or the pad value where
// an entry is the pad mark; the tables are concatenated in `table` (int32 entries).
int mnv_gather(const int8_t *in, size_t in_len, const int32_t *table, size_t table_len,
    int8_t *out, size_t out_len, const int32_t *args, size_t n_args);
// CONCATENATION, one input at a time: copies input `k` into its columns of the output (with
// out NULL only checks). mnv_concatenation checks all `count` inputs, then copies them.
int mnv_concatenation_part(const int8_t *in, size_t in_len, int8_t *out, size_t out_len,
    const int32_t *args, size_t n_args, size_t k);
int mnv_concatenation(const int8_t *const *inputs, const size_t *in_lens, size_t count,
    int8_t *out, size_t out_len, const int32_t *args, size_t n_args);
// The two float kernels (quantize.c) are the only ones using floating point; natmod/Makefile
// leaves them out of builds for cores that cannot divide floats in hardware.
// QUANTIZE mode 0 reads float32 input (in_len counts floats), mode 1 int8 input.
int mnv_quantize(const void *in, size_t in_len, int8_t *out, size_t out_len,
    const int32_t *args, size_t n_args);
int mnv_dequantize(const int8_t *in, size_t in_len, float *out, size_t out_len,
    const int32_t *args, size_t n_args);

#endif
