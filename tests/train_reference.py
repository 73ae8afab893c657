"""numpy references for the training kernels (device/minerva/train_kernels.py) and random
seeded cases for them: ``CASES[kernel](rng)`` gives ``(args, buffers, outputs)``, where
``buffers`` maps a name to a float32 array, ``args`` are the kernel's other arguments and
``outputs`` maps the names of the buffers the kernel writes to their expected float64 values."""

import numpy as np

BIG = 3.0e38  # "no clamp" bound, inside float32's range


def _f32(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _clamp_bounds(rng):
    pick = rng.integers(0, 3)
    if pick == 0:
        return -BIG, BIG
    if pick == 1:
        return 0.0, BIG
    # float32-exact, as the trainer rounds its bounds: a clamped value stored as float32
    # must still equal the bound the mask compares with.
    return 0.0, float(np.float32(rng.uniform(0.5, 3.0)))


def fc_forward_ref(x, w, b, lo, hi):
    return np.clip(w.astype(np.float64) @ x + b, lo, hi)


def fc_backward_ref(x, w, dy, dw, db):
    x, w, dy = (a.astype(np.float64) for a in (x, w, dy))
    return dw + np.outer(dy, x), db + dy, w.T @ dy


def conv_geometry(rng):
    in_h, in_w = int(rng.integers(1, 7)), int(rng.integers(1, 7))
    in_c, out_c = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    k_h, k_w = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    s_h, s_w = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    d_h, d_w = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    same = bool(rng.integers(0, 2))
    eff_h, eff_w = (k_h - 1) * d_h + 1, (k_w - 1) * d_w + 1
    if same:
        out_h, out_w = -(-in_h // s_h), -(-in_w // s_w)
        pad_t = max((out_h - 1) * s_h + eff_h - in_h, 0) // 2
        pad_l = max((out_w - 1) * s_w + eff_w - in_w, 0) // 2
    else:
        if eff_h > in_h or eff_w > in_w:
            return conv_geometry(rng)
        out_h, out_w = (in_h - eff_h) // s_h + 1, (in_w - eff_w) // s_w + 1
        pad_t = pad_l = 0
    return (in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w, s_h, s_w, d_h, d_w, pad_t, pad_l)


def _conv_taps(args):
    """(output index, filter offset, input offset, in_c) for every valid tap, in order."""
    in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w, s_h, s_w, d_h, d_w, pad_t, pad_l = args
    for oy in range(out_h):
        for ox in range(out_w):
            for oc in range(out_c):
                o = (oy * out_w + ox) * out_c + oc
                for ky in range(k_h):
                    iy = oy * s_h - pad_t + ky * d_h
                    if not 0 <= iy < in_h:
                        continue
                    for kx in range(k_w):
                        ix = ox * s_w - pad_l + kx * d_w
                        if 0 <= ix < in_w:
                            yield o, oc, (ky * k_w + kx) * in_c, (iy * in_w + ix) * in_c


def conv_forward_ref(x, w, b, args, lo, hi):
    in_c, out_h, out_w, out_c, k_h, k_w = args[2:8]
    y = np.zeros(out_h * out_w * out_c)
    y += np.tile(b.astype(np.float64), out_h * out_w)
    w = w.astype(np.float64).reshape(out_c, k_h * k_w * in_c)
    for o, oc, f, i in _conv_taps(args):
        y[o] += w[oc, f:f + in_c] @ x[i:i + in_c]
    return np.clip(y, lo, hi)


def conv_backward_ref(x, w, dy, dw, db, args):
    in_h, in_w, in_c, _, _, out_c, k_h, k_w = args[:8]
    dw = dw.astype(np.float64).reshape(out_c, k_h * k_w * in_c).copy()
    db = db.astype(np.float64).copy()
    dx = np.zeros(in_h * in_w * in_c)
    w = w.astype(np.float64).reshape(out_c, k_h * k_w * in_c)
    for o, oc, f, i in _conv_taps(args):
        dw[oc, f:f + in_c] += dy[o] * x[i:i + in_c]
        dx[i:i + in_c] += dy[o] * w[oc, f:f + in_c]
    out_positions = len(dy) // out_c
    db += dy.astype(np.float64).reshape(out_positions, out_c).sum(axis=0)
    return dw.ravel(), db, dx


def softmax_xent_ref(logits, label):
    z = logits.astype(np.float64) - logits.max()
    p = np.exp(z) / np.exp(z).sum()
    grad = p.copy()
    grad[label] -= 1.0
    return -np.log(p[label]), grad


def mse_ref(y, target):
    d = y.astype(np.float64) - target
    return float(np.mean(d * d)), 2.0 * d / len(d)


def sgd_ref(w, g, v, lr, momentum, scale):
    v2 = momentum * v.astype(np.float64) + scale * g
    return w - lr * v2, v2


def case_fc_forward(rng):
    n_in, n_out = int(rng.integers(1, 70)), int(rng.integers(1, 40))
    x, w, b = _f32(rng, n_in), _f32(rng, n_out * n_in, scale=0.3), _f32(rng, n_out)
    lo, hi = _clamp_bounds(rng)
    y = np.zeros(n_out, np.float32)
    ref = fc_forward_ref(x, w.reshape(n_out, n_in), b, lo, hi)
    return [n_in, n_out, lo, hi], {"x": x, "w": w, "b": b, "y": y}, {"y": ref}


def case_fc_backward(rng):
    n_in, n_out = int(rng.integers(1, 70)), int(rng.integers(1, 40))
    x, w, dy = _f32(rng, n_in), _f32(rng, n_out * n_in), _f32(rng, n_out)
    dw, db = _f32(rng, n_out * n_in), _f32(rng, n_out)
    dw_ref, db_ref, dx_ref = fc_backward_ref(x, w.reshape(n_out, n_in), dy,
                                             dw.reshape(n_out, n_in), db)
    buffers = {"x": x, "w": w, "dy": dy, "dw": dw, "db": db, "dx": np.zeros(n_in, np.float32)}
    return [n_in, n_out], buffers, {"dw": dw_ref.ravel(), "db": db_ref, "dx": dx_ref}


def case_conv_forward(rng):
    args = conv_geometry(rng)
    in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w = args[:8]
    x, w = _f32(rng, in_h * in_w * in_c), _f32(rng, out_c * k_h * k_w * in_c, scale=0.3)
    b = _f32(rng, out_c)
    lo, hi = _clamp_bounds(rng)
    y = np.zeros(out_h * out_w * out_c, np.float32)
    return [list(args), lo, hi], {"x": x, "w": w, "b": b, "y": y}, \
        {"y": conv_forward_ref(x, w, b, args, lo, hi)}


def case_conv_backward(rng):
    args = conv_geometry(rng)
    in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w = args[:8]
    x, w = _f32(rng, in_h * in_w * in_c), _f32(rng, out_c * k_h * k_w * in_c)
    dy = _f32(rng, out_h * out_w * out_c)
    dw, db = _f32(rng, len(w)), _f32(rng, out_c)
    dw_ref, db_ref, dx_ref = conv_backward_ref(x, w, dy, dw, db, args)
    buffers = {"x": x, "w": w, "dy": dy, "dw": dw, "db": db,
               "dx": np.full(len(x), 7.0, np.float32)}  # stale values must be overwritten
    return [list(args)], buffers, {"dw": dw_ref, "db": db_ref, "dx": dx_ref}


def case_clamp_mask(rng):
    n = int(rng.integers(1, 60))
    lo, hi = _clamp_bounds(rng)
    y = np.clip(_f32(rng, n, scale=2.0), lo, hi).astype(np.float32)
    dy = _f32(rng, n)
    ref = np.where((y <= lo) | (y >= hi), 0.0, dy.astype(np.float64))
    return [n, lo, hi], {"y": y, "dy": dy}, {"dy": ref}


def case_softmax_xent(rng):
    n = int(rng.integers(2, 40))
    logits = _f32(rng, n, scale=float(rng.uniform(0.1, 20.0)))
    label = int(rng.integers(0, n))
    loss, grad = softmax_xent_ref(logits, label)
    return [label, n], {"logits": logits, "d": np.zeros(n, np.float32)}, \
        {"d": grad, "loss": np.array([loss])}


def case_mse(rng):
    n = int(rng.integers(1, 80))
    y, t = _f32(rng, n), _f32(rng, n)
    loss, grad = mse_ref(y, t)
    return [n], {"y": y, "t": t, "d": np.zeros(n, np.float32)}, \
        {"d": grad, "loss": np.array([loss])}


def case_sgd_momentum(rng):
    n = int(rng.integers(1, 100))
    w, g, v = _f32(rng, n), _f32(rng, n), _f32(rng, n)
    lr, momentum, scale = float(rng.uniform(0.001, 0.5)), float(rng.uniform(0, 0.99)), \
        float(1.0 / rng.integers(1, 9))
    w_ref, v_ref = sgd_ref(w, g, v, lr, momentum, scale)
    return [n, lr, momentum, scale], {"w": w, "g": g, "v": v}, \
        {"w": w_ref, "v": v_ref, "g": np.zeros(n)}


CASES = {"fc_forward": case_fc_forward, "fc_backward": case_fc_backward,
         "conv_forward": case_conv_forward, "conv_backward": case_conv_backward,
         "clamp_mask": case_clamp_mask, "softmax_xent": case_softmax_xent, "mse": case_mse,
         "sgd_momentum": case_sgd_momentum}

# How each kernel is called: buffer names and argument slots, in the kernel's order.
CALLS = {
    "fc_forward": "fc_forward(B['x'], B['w'], B['b'], B['y'], *A)",
    "fc_backward": "fc_backward(B['x'], B['w'], B['dy'], B['dw'], B['db'], B['dx'], *A)",
    "conv_forward": "conv_forward(B['x'], B['w'], B['b'], B['y'], A[0], A[1], A[2])",
    "conv_backward": "conv_backward(B['x'], B['w'], B['dy'], B['dw'], B['db'], B['dx'], A[0])",
    "clamp_mask": "clamp_mask(B['y'], B['dy'], *A)",
    "softmax_xent": "softmax_xent(B['logits'], A[0], B['d'], A[1])",
    "mse": "mse(B['y'], B['t'], B['d'], A[0])",
    "sgd_momentum": "sgd_momentum(B['w'], B['g'], B['v'], *A)",
}


def chain_spec(capsule, header):
    """The chain's layers as the trainer derives them (tests' own reading of the graph)."""
    layers = []
    for entry in header["layers"]:
        op = capsule.ops[entry["op"]]
        p = op.params
        out = capsule.tensors[op.outputs[0]]
        if op.name == "FULLY_CONNECTED":
            args, zp, lo, hi, out_c = None, p[5], p[6], p[7], p[2]
        else:
            args, zp, lo, hi, out_c = tuple(p[1:15]), p[16], p[17], p[18], p[6]
        n_w = capsule.tensors[op.inputs[1]].nbytes
        layers.append({"args": args, "n_in": capsule.tensors[op.inputs[0]].nbytes,
                       "n_out": out.nbytes, "out_c": out_c, "n_w": n_w,
                       "lo": float(np.float32((lo - zp) * out.scale)),
                       "hi": float(np.float32((hi - zp) * out.scale)),
                       "w": entry["weights"], "b": entry["bias"]})
    return layers


def chain_train_ref(layers, params, inputs, labels, lr, momentum, batch):
    """SGD with momentum over the chain, sample by sample (float64): returns the gradient
    accumulators after the first sample and the parameters after all of them."""
    params = params.astype(np.float64).copy()
    velocity, grads = np.zeros_like(params), np.zeros_like(params)
    first_grads, pending = None, 0
    for x, label in zip(inputs, labels):
        acts = [np.asarray(x, np.float64)]
        for layer in layers:
            w = params[layer["w"]:layer["w"] + layer["n_w"]]
            b = params[layer["b"]:layer["b"] + layer["out_c"]]
            if layer["args"] is None:
                y = fc_forward_ref(acts[-1], w.reshape(layer["n_out"], -1), b,
                                   layer["lo"], layer["hi"])
            else:
                y = conv_forward_ref(acts[-1], w, b, layer["args"], layer["lo"], layer["hi"])
            acts.append(y.astype(np.float32).astype(np.float64))
        _, dy = softmax_xent_ref(acts[-1], label)
        for j in range(len(layers) - 1, -1, -1):
            layer = layers[j]
            dy = np.where((acts[j + 1] <= layer["lo"]) | (acts[j + 1] >= layer["hi"]), 0.0, dy)
            w = params[layer["w"]:layer["w"] + layer["n_w"]]
            dw = grads[layer["w"]:layer["w"] + layer["n_w"]]
            db = grads[layer["b"]:layer["b"] + layer["out_c"]]
            if layer["args"] is None:
                dw2, db2, dx = fc_backward_ref(acts[j], w.reshape(layer["n_out"], -1), dy,
                                               dw.reshape(layer["n_out"], -1), db)
            else:
                dw2, db2, dx = conv_backward_ref(acts[j], w, dy, dw, db, layer["args"])
            grads[layer["w"]:layer["w"] + layer["n_w"]] = dw2.ravel()
            grads[layer["b"]:layer["b"] + layer["out_c"]] = db2
            dy = dx
        if first_grads is None:
            first_grads = grads.copy()
        pending += 1
        if pending == batch:
            velocity = momentum * velocity + grads / pending
            params -= lr * velocity
            grads[:] = 0.0
            pending = 0
    return first_grads, params
