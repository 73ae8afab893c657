// Float32 training kernels in plain C (docs/training.md): the C twins of the pure-Python spec
// in minerva/train_kernels.py, with the same layouts (FC weights [out, in]; CONV_2D NHWC,
// batch 1, weights [out_c, k_h, k_w, in_c]). Each checks its sizes against the buffers' and
// returns MNV_ESHAPE (writing nothing) on a mismatch. Sums are in float, as a board's
// single-precision MicroPython computes them. No allocation, no libc, no MicroPython headers.
#ifndef MNV_TRAIN_H
#define MNV_TRAIN_H

#include <stddef.h>
#include <stdint.h>

// y = clamp(W x + b, lo, hi)
int mnv_fc_forward(const float *x, size_t x_len, const float *w, size_t w_len,
    const float *b, size_t b_len, float *y, size_t y_len, float lo, float hi);
// dw += dy x^T, db += dy, dx = W^T dy (dx may be NULL)
int mnv_fc_backward(const float *x, size_t x_len, const float *w, size_t w_len,
    const float *dy, size_t dy_len, float *dw, size_t dw_len, float *db, size_t db_len,
    float *dx, size_t dx_len);
// args: in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w, s_h, s_w, d_h, d_w, pad_t, pad_l
int mnv_conv_forward(const float *x, size_t x_len, const float *w, size_t w_len,
    const float *b, size_t b_len, float *y, size_t y_len, const int32_t *args, size_t n_args,
    float lo, float hi);
int mnv_conv_backward(const float *x, size_t x_len, const float *w, size_t w_len,
    const float *dy, size_t dy_len, float *dw, size_t dw_len, float *db, size_t db_len,
    float *dx, size_t dx_len, const int32_t *args, size_t n_args);
// dy[k] = 0 where y[k] <= lo or y[k] >= hi (the first n values)
int mnv_clamp_mask(const float *y, size_t y_len, float *dy, size_t dy_len, size_t n,
    float lo, float hi);
// v = momentum v + scale g; w -= lr v; g = 0 (the first n values)
int mnv_sgd_momentum(float *w, size_t w_len, float *g, size_t g_len, float *v, size_t v_len,
    size_t n, float lr, float momentum, float scale);

#endif
