"""Random one-op int8 ``.tflite`` models, for kernels_py against TFLite Micro.

``MODELS[op](rng)`` returns ``(tflite bytes, [input arrays])`` for one op with a random geometry
(the same distributions as tests/geometries.py: channels 1..300 crossing every block size, every
stride, dilation, padding, depth multiplier and fused activation) and random quantization:
per-tensor or per-channel weights, input and output scales over several decades, any zero
point. Scales are drawn so outputs spread over int8 rather than all clamping. The packager
computes multipliers and shifts from them, so these models test ``minerva pack`` too.
"""

import numpy as np
from geometries import MAX_ELEMENTS, MAX_MACS, _axis, _channels, _r, _window

from minerva_packager.capsule.tflite_writer import TfliteBuilder

ACTIVATIONS = ("NONE", "NONE", "RELU", "RELU6", "RELU_N1_TO_1")


def _scale(rng, lo, hi):
    return float(np.float32(10.0 ** rng.uniform(lo, hi)))


def _zp(rng):
    return _r(rng, -128, 127)


def _int8_input(rng, shape):
    return rng.integers(-128, 128, shape).astype(np.int8)


def _weighted(rng, kind):
    """CONV_2D, DEPTHWISE_CONV_2D or FULLY_CONNECTED with a random geometry."""
    b = TfliteBuilder("minerva tests: random geometry")
    in_scale = _scale(rng, -3, 0)
    batches = 1 if rng.random() < 0.85 else 2
    act = str(rng.choice(ACTIVATIONS))
    if kind == "FULLY_CONNECTED":
        out_c = _channels(rng)
        depth = _channels(rng, 640) if rng.random() < 0.7 else _r(rng, 1, 640)
        while batches * depth * out_c > MAX_MACS:
            depth = max(1, depth // 2)
        in_shape, w_shape, out_shape, axis = (batches, depth), (out_c, depth), \
            (batches, out_c), 0
        fan_in, options = depth, {"activation": act}
    else:
        depthwise = kind == "DEPTHWISE_CONV_2D"
        in_c = _channels(rng, 150 if depthwise else 300)
        depth_mult = 1 if not depthwise or rng.random() < 0.7 else _r(rng, 2, 4)
        out_c = in_c * depth_mult if depthwise else _channels(rng)
        padding = "SAME" if rng.random() < 0.6 else "VALID"
        while True:
            (in_h, k_h, s_h, d_h), (in_w, k_w, s_w, d_w) = _window(rng), _window(rng)
            per_out = out_c * k_h * k_w * (1 if depthwise else in_c) * batches
            if per_out > MAX_MACS:
                k_h = k_w = 1
                per_out = out_c * (1 if depthwise else in_c) * batches
            h, w = _axis(padding, in_h, k_h, s_h, d_h), _axis(padding, in_w, k_w, s_w, d_w)
            if h and w and (h[0] * w[0] * per_out <= MAX_MACS or h[0] == w[0] == 1):
                break
        in_shape = (batches, in_h, in_w, in_c)
        out_shape = (batches, h[0], w[0], out_c)
        w_shape = (1, k_h, k_w, out_c) if depthwise else (out_c, k_h, k_w, in_c)
        axis = 3 if depthwise else 0
        fan_in = k_h * k_w * (1 if depthwise else in_c)
        options = {"padding": padding, "stride": (s_h, s_w), "dilation": (d_h, d_w),
                   "activation": act}
        if depthwise:
            options["depth_multiplier"] = depth_mult
    per_channel = rng.random() < 0.6
    w_scales = np.float32(10.0 ** rng.uniform(-3, -1, out_c if per_channel else 1))
    weights = rng.integers(-127, 128, w_shape).astype(np.int8)
    out_scale = float(np.float32(in_scale * float(np.mean(w_scales)) * 128 * np.sqrt(fan_in)
                                 / 40 * 10.0 ** rng.uniform(-0.7, 0.7)))
    x = b.tensor("x", in_shape, "int8", scale=in_scale, zero_point=_zp(rng))
    filt = b.tensor("w", w_shape, "int8", data=weights, scale=w_scales, zero_point=0,
                    quantized_dimension=axis if per_channel else 0)
    inputs = [x, filt]
    if rng.random() < 0.85:
        bias_scales = np.float32(in_scale) * w_scales
        bias = rng.integers(-(1 << 16), 1 << 16, out_c)
        inputs.append(b.tensor("b", [out_c], "int32", data=bias, scale=bias_scales,
                               zero_point=0))
    elif kind == "FULLY_CONNECTED":
        inputs.append(None)
    y = b.tensor("y", out_shape, "int8", scale=out_scale, zero_point=_zp(rng))
    b.op(kind, inputs, [y], **options)
    return b.build([x], [y]), [_int8_input(rng, in_shape)]


def _pool(rng, kind):
    b = TfliteBuilder("minerva tests: random geometry")
    batches = 1 if rng.random() < 0.85 else 2
    chans = _channels(rng)
    padding = "SAME" if rng.random() < 0.5 else "VALID"
    while True:
        in_h, in_w = _r(rng, 1, 12), _r(rng, 1, 12)
        f_h, f_w = _r(rng, 1, 5), _r(rng, 1, 5)
        if rng.random() < 0.1:
            f_h, f_w, padding = in_h, in_w, "VALID"
        s_h, s_w = _r(rng, 1, 3), _r(rng, 1, 3)
        h, w = _axis(padding, in_h, f_h, s_h, 1), _axis(padding, in_w, f_w, s_w, 1)
        if h and w and batches * h[0] * w[0] * chans * f_h * f_w <= MAX_MACS:
            break
    scale, zp = _scale(rng, -3, 0), _zp(rng)
    in_shape = (batches, in_h, in_w, chans)
    x = b.tensor("x", in_shape, "int8", scale=scale, zero_point=zp)
    y = b.tensor("y", (batches, h[0], w[0], chans), "int8", scale=scale, zero_point=zp)
    b.op(kind, [x], [y], padding=padding, stride=(s_h, s_w), filter_size=(f_h, f_w),
         activation=str(rng.choice(ACTIVATIONS)))
    return b.build([x], [y]), [_int8_input(rng, in_shape)]


def _shape(rng):
    rank = _r(rng, 1, 4)
    dims = [1] * rank
    budget = _r(rng, 1, MAX_ELEMENTS)
    for k in range(rank):
        dims[k] = _r(rng, 1, max(1, int(budget ** (1 / rank)) * 2))
    dims[-1] = _channels(rng) if np.prod(dims[:-1]) * 300 <= MAX_ELEMENTS else dims[-1]
    return tuple(dims)


def add(rng):
    b = TfliteBuilder("minerva tests: random geometry")
    shape = _shape(rng)
    s1 = _scale(rng, -3, 0)
    s2 = float(np.float32(s1 * 10.0 ** rng.uniform(-2, 2)))
    out = float(np.float32(max(s1, s2) * rng.uniform(0.6, 3)))
    x1 = b.tensor("a", shape, "int8", scale=s1, zero_point=_zp(rng))
    x2 = b.tensor("b", shape, "int8", scale=s2, zero_point=_zp(rng))
    y = b.tensor("y", shape, "int8", scale=out, zero_point=_zp(rng))
    b.op("ADD", [x1, x2], [y], activation=str(rng.choice(ACTIVATIONS)))
    return b.build([x1, x2], [y]), [_int8_input(rng, shape), _int8_input(rng, shape)]


def reshape(rng):
    b = TfliteBuilder("minerva tests: random geometry")
    shape = _shape(rng)
    size = int(np.prod(shape))
    new_shape = [1, size] if rng.random() < 0.5 else [size]
    scale, zp = _scale(rng, -3, 0), _zp(rng)
    x = b.tensor("x", shape, "int8", scale=scale, zero_point=zp)
    y = b.tensor("y", new_shape, "int8", scale=scale, zero_point=zp)
    s = b.tensor("shape", [len(new_shape)], "int32", data=new_shape)
    b.op("RESHAPE", [x, s], [y], new_shape=new_shape)
    return b.build([x], [y]), [_int8_input(rng, shape)]


def softmax(rng):
    b = TfliteBuilder("minerva tests: random geometry")
    depth = _channels(rng)
    rows = _r(rng, 1, max(1, min(6, MAX_ELEMENTS // depth)))
    shape = (rows, depth)
    x = b.tensor("x", shape, "int8", scale=_scale(rng, -3, 0), zero_point=_zp(rng))
    y = b.tensor("y", shape, "int8", scale=1 / 256, zero_point=-128)
    b.op("SOFTMAX", [x], [y], beta=float(np.float32(rng.uniform(0.05, 4.0))))
    spread = int(rng.choice([2, 16, 128]))
    values = rng.integers(-spread, spread, shape).clip(-128, 127).astype(np.int8)
    return b.build([x], [y]), [values]


def quantize(rng):
    b = TfliteBuilder("minerva tests: random geometry")
    shape = _shape(rng)
    y = b.tensor("y", shape, "int8", scale=_scale(rng, -3, 0), zero_point=_zp(rng))
    if rng.random() < 0.5:
        x = b.tensor("x", shape, "int8", scale=_scale(rng, -3, 0), zero_point=_zp(rng))
        b.op("QUANTIZE", [x], [y])
        return b.build([x], [y]), [_int8_input(rng, shape)]
    x = b.tensor("x", shape, "float32")
    b.op("QUANTIZE", [x], [y])
    values = np.float32(rng.normal(0, 10.0 ** rng.uniform(-3, 1), shape))
    return b.build([x], [y]), [values]


def dequantize(rng):
    b = TfliteBuilder("minerva tests: random geometry")
    shape = _shape(rng)
    x = b.tensor("x", shape, "int8", scale=_scale(rng, -6, 2), zero_point=_zp(rng))
    y = b.tensor("y", shape, "float32")
    b.op("DEQUANTIZE", [x], [y])
    return b.build([x], [y]), [_int8_input(rng, shape)]


MODELS = {
    "conv_2d": lambda rng: _weighted(rng, "CONV_2D"),
    "depthwise_conv_2d": lambda rng: _weighted(rng, "DEPTHWISE_CONV_2D"),
    "fully_connected": lambda rng: _weighted(rng, "FULLY_CONNECTED"),
    "average_pool_2d": lambda rng: _pool(rng, "AVERAGE_POOL_2D"),
    "max_pool_2d": lambda rng: _pool(rng, "MAX_POOL_2D"),
    "add": add,
    "reshape": reshape,
    "softmax": softmax,
    "quantize": quantize,
    "dequantize": dequantize,
}
