// Float32 training kernels (mnv_train.h); the spec is minerva/train_kernels.py.
#include "mnv_kernels.h"
#include "mnv_train.h"

static float clamp(float v, float lo, float hi) {
    return v < lo ? lo : (v > hi ? hi : v);
}

int mnv_fc_forward(const float *x, size_t x_len, const float *w, size_t w_len,
    const float *b, size_t b_len, float *y, size_t y_len, float lo, float hi) {
    const size_t n_in = x_len, n_out = y_len;
    if (n_in == 0 || n_out == 0 || b_len != n_out || w_len / n_in != n_out ||
        w_len % n_in != 0) {
        return MNV_ESHAPE;
    }
    for (size_t o = 0; o < n_out; o++) {
        const float *row = w + o * n_in;
        float acc = b[o];
        for (size_t i = 0; i < n_in; i++) {
            acc += row[i] * x[i];
        }
        y[o] = clamp(acc, lo, hi);
    }
    return MNV_OK;
}

int mnv_fc_backward(const float *x, size_t x_len, const float *w, size_t w_len,
    const float *dy, size_t dy_len, float *dw, size_t dw_len, float *db, size_t db_len,
    float *dx, size_t dx_len) {
    const size_t n_in = x_len, n_out = dy_len;
    if (n_in == 0 || n_out == 0 || db_len != n_out || w_len != dw_len ||
        w_len / n_in != n_out || w_len % n_in != 0 || (dx != NULL && dx_len != n_in)) {
        return MNV_ESHAPE;
    }
    for (size_t o = 0; o < n_out; o++) {
        const float g = dy[o];
        float *row = dw + o * n_in;
        db[o] += g;
        for (size_t i = 0; i < n_in; i++) {
            row[i] += g * x[i];
        }
    }
    if (dx != NULL) {
        for (size_t i = 0; i < n_in; i++) {
            float acc = 0.0f;
            for (size_t o = 0; o < n_out; o++) {
                acc += w[o * n_in + i] * dy[o];
            }
            dx[i] = acc;
        }
    }
    return MNV_OK;
}

typedef struct {
    int32_t in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w, s_h, s_w, d_h, d_w, pad_t, pad_l;
} conv_geometry;

// Reads and checks the geometry: every dim >= 1, pads >= 0, and the buffers' lengths.
static int conv_args(conv_geometry *g, const int32_t *args, size_t n_args, size_t x_len,
    size_t w_len, size_t b_len, size_t y_len) {
    if (n_args != 14) {
        return MNV_EARGS;
    }
    g->in_h = args[0], g->in_w = args[1], g->in_c = args[2], g->out_h = args[3];
    g->out_w = args[4], g->out_c = args[5], g->k_h = args[6], g->k_w = args[7];
    g->s_h = args[8], g->s_w = args[9], g->d_h = args[10], g->d_w = args[11];
    g->pad_t = args[12], g->pad_l = args[13];
    for (size_t k = 0; k < 12; k++) {
        if (args[k] < 1 || args[k] > 0xFFFF) {
            return MNV_ERANGE;
        }
    }
    if (g->pad_t < 0 || g->pad_l < 0 || g->pad_t > 0xFFFF || g->pad_l > 0xFFFF) {
        return MNV_ERANGE;
    }
    // Every coordinate the loops form stays far inside int32.
    if ((uint64_t)g->out_h * g->s_h + (uint64_t)g->k_h * g->d_h + g->pad_t > 0x3FFFFFFF ||
        (uint64_t)g->out_w * g->s_w + (uint64_t)g->k_w * g->d_w + g->pad_l > 0x3FFFFFFF) {
        return MNV_ERANGE;
    }
    const uint64_t in = (uint64_t)g->in_h * g->in_w * g->in_c;
    const uint64_t out = (uint64_t)g->out_h * g->out_w * g->out_c;
    const uint64_t filt = (uint64_t)g->out_c * g->k_h * g->k_w * g->in_c;
    if (in != x_len || out != y_len || filt != w_len || (uint64_t)g->out_c != b_len) {
        return MNV_ESHAPE;
    }
    return MNV_OK;
}

int mnv_conv_forward(const float *x, size_t x_len, const float *w, size_t w_len,
    const float *b, size_t b_len, float *y, size_t y_len, const int32_t *args, size_t n_args,
    float lo, float hi) {
    conv_geometry g;
    int rc = conv_args(&g, args, n_args, x_len, w_len, b_len, y_len);
    if (rc != MNV_OK) {
        return rc;
    }
    const int32_t fsize = g.k_h * g.k_w * g.in_c;
    size_t o = 0;
    for (int32_t oy = 0; oy < g.out_h; oy++) {
        const int32_t y0 = oy * g.s_h - g.pad_t;
        for (int32_t ox = 0; ox < g.out_w; ox++) {
            const int32_t x0 = ox * g.s_w - g.pad_l;
            for (int32_t oc = 0; oc < g.out_c; oc++) {
                float acc = b[oc];
                for (int32_t ky = 0; ky < g.k_h; ky++) {
                    const int32_t iy = y0 + ky * g.d_h;
                    if (iy < 0 || iy >= g.in_h) {
                        continue;
                    }
                    for (int32_t kx = 0; kx < g.k_w; kx++) {
                        const int32_t ix = x0 + kx * g.d_w;
                        if (ix < 0 || ix >= g.in_w) {
                            continue;
                        }
                        const float *xi = x + (size_t)(iy * g.in_w + ix) * g.in_c;
                        const float *f = w + (size_t)oc * fsize + (ky * g.k_w + kx) * g.in_c;
                        for (int32_t c = 0; c < g.in_c; c++) {
                            acc += xi[c] * f[c];
                        }
                    }
                }
                y[o++] = clamp(acc, lo, hi);
            }
        }
    }
    return MNV_OK;
}

int mnv_conv_backward(const float *x, size_t x_len, const float *w, size_t w_len,
    const float *dy, size_t dy_len, float *dw, size_t dw_len, float *db, size_t db_len,
    float *dx, size_t dx_len, const int32_t *args, size_t n_args) {
    conv_geometry g;
    int rc = conv_args(&g, args, n_args, x_len, w_len, db_len, dy_len);
    if (rc != MNV_OK) {
        return rc;
    }
    if (dw_len != w_len || (dx != NULL && dx_len != x_len)) {
        return MNV_ESHAPE;
    }
    if (dx != NULL) {
        for (size_t i = 0; i < dx_len; i++) {
            dx[i] = 0.0f;
        }
    }
    const int32_t fsize = g.k_h * g.k_w * g.in_c;
    size_t o = 0;
    for (int32_t oy = 0; oy < g.out_h; oy++) {
        const int32_t y0 = oy * g.s_h - g.pad_t;
        for (int32_t ox = 0; ox < g.out_w; ox++) {
            const int32_t x0 = ox * g.s_w - g.pad_l;
            for (int32_t oc = 0; oc < g.out_c; oc++) {
                const float grad = dy[o++];
                db[oc] += grad;
                for (int32_t ky = 0; ky < g.k_h; ky++) {
                    const int32_t iy = y0 + ky * g.d_h;
                    if (iy < 0 || iy >= g.in_h) {
                        continue;
                    }
                    for (int32_t kx = 0; kx < g.k_w; kx++) {
                        const int32_t ix = x0 + kx * g.d_w;
                        if (ix < 0 || ix >= g.in_w) {
                            continue;
                        }
                        const size_t i = (size_t)(iy * g.in_w + ix) * g.in_c;
                        const size_t f = (size_t)oc * fsize + (ky * g.k_w + kx) * g.in_c;
                        for (int32_t c = 0; c < g.in_c; c++) {
                            dw[f + c] += grad * x[i + c];
                            if (dx != NULL) {
                                dx[i + c] += grad * w[f + c];
                            }
                        }
                    }
                }
            }
        }
    }
    return MNV_OK;
}

int mnv_clamp_mask(const float *y, size_t y_len, float *dy, size_t dy_len, size_t n,
    float lo, float hi) {
    if (n > y_len || n > dy_len) {
        return MNV_ESHAPE;
    }
    for (size_t k = 0; k < n; k++) {
        if (y[k] <= lo || y[k] >= hi) {
            dy[k] = 0.0f;
        }
    }
    return MNV_OK;
}

int mnv_sgd_momentum(float *w, size_t w_len, float *g, size_t g_len, float *v, size_t v_len,
    size_t n, float lr, float momentum, float scale) {
    if (n > w_len || n > g_len || n > v_len) {
        return MNV_ESHAPE;
    }
    for (size_t k = 0; k < n; k++) {
        const float m = momentum * v[k] + scale * g[k];
        v[k] = m;
        w[k] -= lr * m;
        g[k] = 0.0f;
    }
    return MNV_OK;
}
