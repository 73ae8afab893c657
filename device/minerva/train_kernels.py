# Float32 training kernels, pure Python: the spec the native ones must equal (docs/training.md).
# Buffers are array("f") or memoryview slices of one; sizes come from arguments the trainer
# checked at set-up, and every loop is bounded by them. Nothing here allocates a buffer.
# Layouts as in the int8 graph: FC weights [out, in]; CONV_2D NHWC (batch 1), weights
# [out_c, k_h, k_w, in_c].
import math


def fc_forward(x, w, b, y, n_in, n_out, lo, hi):
    # y = clamp(W x + b, lo, hi)
    for o in range(n_out):
        acc = b[o]
        w0 = o * n_in
        for i in range(n_in):
            acc += w[w0 + i] * x[i]
        y[o] = lo if acc < lo else (hi if acc > hi else acc)


def fc_backward(x, w, dy, dw, db, dx, n_in, n_out):
    # dw += dy x^T, db += dy; dx = W^T dy (dx None: the chain's first op needs no dx).
    for o in range(n_out):
        g = dy[o]
        db[o] += g
        w0 = o * n_in
        for i in range(n_in):
            dw[w0 + i] += g * x[i]
    if dx is None:
        return
    for i in range(n_in):
        acc = 0.0
        for o in range(n_out):
            acc += w[o * n_in + i] * dy[o]
        dx[i] = acc


def conv_forward(x, w, b, y, args, lo, hi):
    in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w, s_h, s_w, d_h, d_w, pad_t, pad_l = args
    fsize = k_h * k_w * in_c
    o = 0
    for oy in range(out_h):
        y0 = oy * s_h - pad_t
        for ox in range(out_w):
            x0 = ox * s_w - pad_l
            for oc in range(out_c):
                acc = b[oc]
                f_oc = oc * fsize
                for ky in range(k_h):
                    iy = y0 + ky * d_h
                    if iy < 0 or iy >= in_h:
                        continue
                    for kx in range(k_w):
                        ix = x0 + kx * d_w
                        if ix < 0 or ix >= in_w:
                            continue
                        i = (iy * in_w + ix) * in_c
                        f = f_oc + (ky * k_w + kx) * in_c
                        for c in range(in_c):
                            acc += x[i + c] * w[f + c]
                y[o] = lo if acc < lo else (hi if acc > hi else acc)
                o += 1


def conv_backward(x, w, dy, dw, db, dx, args):
    # The transpose of conv_forward's taps: every (output, tap) pair adds to dw and dx.
    in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w, s_h, s_w, d_h, d_w, pad_t, pad_l = args
    fsize = k_h * k_w * in_c
    if dx is not None:
        for i in range(in_h * in_w * in_c):
            dx[i] = 0.0
    o = 0
    for oy in range(out_h):
        y0 = oy * s_h - pad_t
        for ox in range(out_w):
            x0 = ox * s_w - pad_l
            for oc in range(out_c):
                g = dy[o]
                o += 1
                db[oc] += g
                f_oc = oc * fsize
                for ky in range(k_h):
                    iy = y0 + ky * d_h
                    if iy < 0 or iy >= in_h:
                        continue
                    for kx in range(k_w):
                        ix = x0 + kx * d_w
                        if ix < 0 or ix >= in_w:
                            continue
                        i = (iy * in_w + ix) * in_c
                        f = f_oc + (ky * k_w + kx) * in_c
                        for c in range(in_c):
                            dw[f + c] += g * x[i + c]
                            if dx is not None:
                                dx[i + c] += g * w[f + c]


def clamp_mask(y, dy, n, lo, hi):
    # The fused activation's gradient: zero where the forward output sat on a clamp bound.
    for k in range(n):
        v = y[k]
        if v <= lo or v >= hi:
            dy[k] = 0.0


def softmax_xent(logits, label, dlogits, n):
    # Returns -log p[label]; dlogits = softmax(logits) - onehot(label).
    top = logits[0]
    for k in range(1, n):
        if logits[k] > top:
            top = logits[k]
    total = 0.0
    for k in range(n):
        e = math.exp(logits[k] - top)
        dlogits[k] = e
        total += e
    loss = math.log(total) - (logits[label] - top)
    for k in range(n):
        dlogits[k] /= total
    dlogits[label] -= 1.0
    return loss


def mse(y, target, dy, n):
    # Returns mean((y - t)^2); dy = 2 (y - t) / n. ``target`` is a float buffer of n values.
    loss = 0.0
    for k in range(n):
        d = y[k] - target[k]
        loss += d * d
        dy[k] = 2.0 * d / n
    return loss / n


def sgd_momentum(w, g, v, n, lr, momentum, scale):
    # v = momentum v + scale g; w -= lr v; the accumulator g is cleared for the next batch.
    for k in range(n):
        m = momentum * v[k] + scale * g[k]
        v[k] = m
        w[k] -= lr * m
        g[k] = 0.0
