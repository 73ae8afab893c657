"""Random geometries for every device kernel, for the differential tests across tiers.

``GENERATORS[kernel](rng)`` returns one case ``(kernel, [(typecode, values) ...], args,
(out_typecode, out_len))`` -- the tuple tests/test_kernels_tiers.py uses -- with a geometry
TFLite could produce: channel counts from 1 to 300 (weighted towards the block sizes the
kernels use: 4, 8, 16 and 64 channels, the C conv patch of 640 bytes), odd and even sizes,
every stride, dilation, padding and depth multiplier, per-tensor and per-channel requantization,
extreme multipliers and shifts, and random activation ranges. Cases stay inside what TFLite's
int32 arithmetic defines (no accumulator, nor ``acc << shift``, leaves int32), so every tier must
give exactly the spec's bytes. Sizes are bounded so a case runs in milliseconds in pure Python.

``case_rng(seed, kernel, index)`` makes case ``index`` reproducible on its own.
"""

import zlib

import numpy as np

from minerva_packager.capsule import quant

INT32_MAX = (1 << 31) - 1
# Where kernels change strategy: C groups of 4 and 8 channels, 16-byte SIMD chunks, viper's
# 64-channel depthwise blocks, and a few past each.
BOUNDARY_CHANNELS = (1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129,
                     191, 192, 193, 255, 256, 257, 299, 300)
MAX_MACS = 40_000
MAX_ELEMENTS = 4_000


def case_rng(seed, kernel, index):
    return np.random.default_rng([seed, zlib.crc32(kernel.encode()), index])


def _r(rng, lo, hi):
    return int(rng.integers(lo, hi + 1))


def _channels(rng, hi=300):
    pick = rng.random()
    if pick < 0.4:
        c = int(rng.choice(BOUNDARY_CHANNELS))
    elif pick < 0.7:
        c = _r(rng, 1, 16)
    else:
        c = _r(rng, 1, 300)
    return max(1, min(c, hi))


def _int8(rng, n):
    return rng.integers(-128, 128, n).tolist()


def _act(rng):
    # Full range, a RELU-like floor, a RELU6-like window, or any window inside int8.
    pick = rng.random()
    if pick < 0.5:
        return -128, 127
    lo = _r(rng, -128, 60)
    if pick < 0.7:
        return lo, 127
    return lo, _r(rng, lo, 127)


def _requant(rng, channels, fan_in, bias_bound=65536):
    """(multipliers, shifts) per channel: per-tensor (all equal) or per-channel; mostly
    TFLite-like (m in [2**30, 2**31), a shift that spreads outputs), sometimes extreme."""
    max_acc = fan_in * 255 * 128 + bias_bound  # |acc| bound for int8 data and our biases
    # The largest left shift that keeps acc << shift inside int32.
    max_left = max(0, min(30, 30 - int(max_acc).bit_length()))
    base = -int(round(6.5 + 0.5 * np.log2(max(fan_in, 1))))
    per_channel = rng.random() < 0.6
    n = channels if per_channel else 1
    mults = rng.integers(1 << 30, 1 << 31, n).tolist()
    shifts = np.clip(base + rng.integers(-2, 3, n), -31, max_left).tolist()
    if rng.random() < 0.2:  # extremes: the multiplier's and the shift's whole ranges
        for k in range(n):
            if rng.random() < 0.5:
                mults[k] = int(rng.choice([0, 1, 2, 1 << 30, INT32_MAX, INT32_MAX - 1,
                                           int(rng.integers(0, 1 << 31))]))
            if rng.random() < 0.5:
                shifts[k] = _r(rng, -31, max_left)
    if not per_channel:
        mults, shifts = mults * channels, shifts * channels
    return [int(m) for m in mults], [int(s) for s in shifts]


def _window(rng, size_hi=12):
    """(in size, kernel, stride, dilation) along one axis."""
    return _r(rng, 1, size_hi), _r(rng, 1, 5), _r(rng, 1, 3), 1 if rng.random() < 0.6 \
        else _r(rng, 2, 3)


def _axis(padding, in_size, kernel, stride, dilation):
    out = quant.out_size(padding, in_size, kernel, stride, dilation)
    if out < 1:
        return None
    pad = quant.pad_before(stride, dilation, in_size, kernel, out) if padding == "SAME" else 0
    return out, pad


def _conv_like(rng, depthwise):
    batches = 1 if rng.random() < 0.85 else 2
    in_c = _channels(rng, 150 if depthwise else 300)
    depth_mult = 1
    if depthwise:
        depth_mult = 1 if rng.random() < 0.7 else _r(rng, 2, 4)
        out_c = in_c * depth_mult
    else:
        out_c = _channels(rng)
    padding = "SAME" if rng.random() < 0.6 else "VALID"
    # The viper tier's grouped kernels take filters up to a size: 576 taps for a conv, 144
    # for a depthwise conv (12 x 12); a few cases sit on either side of that edge.
    edge = None
    if rng.random() < 0.05:
        if depthwise:
            edge = [(12, 12), (13, 12), (12, 13)][_r(rng, 0, 2)]
            depth_mult, out_c = 1, in_c
        else:
            in_c, edge = [(64, (3, 3)), (576, (1, 1)), (577, (1, 1)), (32, (3, 6)),
                          (65, (3, 3)), (48, (4, 3))][_r(rng, 0, 5)]
    while True:
        (in_h, k_h, s_h, d_h), (in_w, k_w, s_w, d_w) = _window(rng), _window(rng)
        if rng.random() < 0.3:
            k_h = k_w = _r(rng, 1, 3)
        if edge:
            (k_h, k_w), d_w, batches = edge, 1, 1
            in_h, in_w = _r(rng, max(1, k_h - 2), k_h + 2), _r(rng, max(1, k_w - 2), k_w + 2)
            h, w = _axis(padding, in_h, k_h, s_h, d_h), _axis(padding, in_w, k_w, s_w, d_w)
            if h is None or w is None:
                continue
            # Fewer channels rather than a smaller image, which would move off the edge.
            taps = k_h * k_w * (1 if depthwise else in_c)
            out_c = max(1, min(out_c, MAX_MACS // (taps * h[0] * w[0])))
            in_c = out_c if depthwise else in_c
            break
        per_out = out_c * k_h * k_w * (1 if depthwise else in_c) * batches
        if per_out > MAX_MACS:
            k_h = k_w = 1
            per_out = out_c * (1 if depthwise else in_c) * batches
        h, w = _axis(padding, in_h, k_h, s_h, d_h), _axis(padding, in_w, k_w, s_w, d_w)
        if h is None or w is None:
            continue
        if h[0] * w[0] * per_out <= MAX_MACS or (h[0] == w[0] == 1):
            break
        # Too much work: shrink the image and try again.
        in_h, in_w = max(1, in_h // 2), max(1, in_w // 2)
    (out_h, pad_t), (out_w, pad_l) = h, w
    fan_in = k_h * k_w * (1 if depthwise else in_c)
    # Biases mostly as models have them, sometimes large enough that accumulators pass
    # 2**20 and 2**23, where the viper requantization changes method.
    bias_bound = 65536 if rng.random() < 0.8 else 1 << _r(rng, 20, 27)
    mults, shifts = _requant(rng, out_c, fan_in, bias_bound)
    lo, hi = _act(rng)
    args = [batches, in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w, s_h, s_w, d_h, d_w,
            pad_t, pad_l, _r(rng, -127, 128), _r(rng, -128, 127), lo, hi]
    if depthwise:
        args.append(depth_mult)
    f_count = k_h * k_w * out_c * (1 if depthwise else in_c)
    bias = rng.integers(-bias_bound, bias_bound, out_c).tolist() if rng.random() < 0.85 \
        else None
    bufs = [("b", _int8(rng, batches * in_h * in_w * in_c)), ("b", _int8(rng, f_count)),
            ("i", bias), ("i", mults), ("i", shifts)]
    kernel = "depthwise_conv_2d" if depthwise else "conv_2d"
    return kernel, bufs, args, ("b", batches * out_h * out_w * out_c)


def conv_2d(rng):
    return _conv_like(rng, depthwise=False)


def depthwise_conv_2d(rng):
    return _conv_like(rng, depthwise=True)


def fully_connected(rng):
    batches = _r(rng, 1, 4) if rng.random() < 0.3 else 1
    out_c = _channels(rng)
    depth = _channels(rng, 640) if rng.random() < 0.7 else _r(rng, 1, 640)
    if rng.random() < 0.05:  # the viper tier's fast path takes depths up to 1,152
        depth, out_c = _r(rng, 1150, 1155), min(out_c, 30)
    while batches * depth * out_c > MAX_MACS:
        depth = max(1, depth // 2)
    f_off = 0 if rng.random() < 0.8 else _r(rng, -127, 128)
    mults, shifts = _requant(rng, out_c, depth * (2 if f_off else 1))
    lo, hi = _act(rng)
    args = [batches, depth, out_c, _r(rng, -127, 128), f_off, _r(rng, -128, 127), lo, hi]
    bias = rng.integers(-65536, 65536, out_c).tolist() if rng.random() < 0.85 else None
    bufs = [("b", _int8(rng, batches * depth)), ("b", _int8(rng, out_c * depth)),
            ("i", bias), ("i", mults), ("i", shifts)]
    return "fully_connected", bufs, args, ("b", batches * out_c)


def _pool(rng, kernel):
    batches = 1 if rng.random() < 0.85 else 2
    chans = _channels(rng)
    padding = "SAME" if rng.random() < 0.5 else "VALID"
    while True:
        in_h, in_w = _r(rng, 1, 12), _r(rng, 1, 12)
        f_h, f_w = _r(rng, 1, 5), _r(rng, 1, 5)
        if rng.random() < 0.1:  # global pooling, as models end
            f_h, f_w, padding = in_h, in_w, "VALID"
        s_h, s_w = _r(rng, 1, 3), _r(rng, 1, 3)
        h, w = _axis(padding, in_h, f_h, s_h, 1), _axis(padding, in_w, f_w, s_w, 1)
        if h and w and batches * h[0] * w[0] * chans * f_h * f_w <= MAX_MACS:
            break
    (out_h, pad_t), (out_w, pad_l) = h, w
    lo, hi = _act(rng)
    args = [batches, in_h, in_w, chans, out_h, out_w, f_h, f_w, s_h, s_w, pad_t, pad_l, lo, hi]
    return kernel, [("b", _int8(rng, batches * in_h * in_w * chans))], args, \
        ("b", batches * out_h * out_w * chans)


def average_pool_2d(rng):
    return _pool(rng, "average_pool_2d")


def max_pool_2d(rng):
    return _pool(rng, "max_pool_2d")


def _scale(rng, lo=-6, hi=1):
    return float(np.float32(10.0 ** rng.uniform(lo, hi)))


def add(rng):
    size = _r(rng, 1, MAX_ELEMENTS)
    s1, s2 = _scale(rng), _scale(rng)
    if rng.random() < 0.3:  # the scales TFLite models mostly have: within a factor of 4
        s2 = float(np.float32(s1 * rng.uniform(0.25, 4)))
    out_scale = float(np.float32(max(s1, s2) * rng.uniform(0.5, 4)))
    p = quant.add_params(s1, s2, out_scale)
    lo, hi = _act(rng)
    args = [size, _r(rng, -127, 128), _r(rng, -127, 128), _r(rng, -128, 127), p["left_shift"],
            p["input1_mult"], p["input1_shift"], p["input2_mult"], p["input2_shift"],
            p["output_mult"], p["output_shift"], lo, hi]
    return "add", [("b", _int8(rng, size)), ("b", _int8(rng, size))], args, ("b", size)


def reshape(rng):
    size = _r(rng, 1, MAX_ELEMENTS)
    return "reshape", [("b", _int8(rng, size))], [size], ("b", size)


def softmax(rng):
    depth = _channels(rng) if rng.random() < 0.9 else _r(rng, 300, 4095)
    rows = _r(rng, 1, max(1, min(6, MAX_ELEMENTS // depth)))
    beta = float(rng.uniform(0.05, 4.0))
    mult, shift, diff_min = quant.softmax_params(beta, _scale(rng, -3, 0))
    spread = int(rng.choice([2, 16, 128]))
    values = rng.integers(-spread, spread, rows * depth).clip(-128, 127).tolist()
    return "softmax", [("b", values)], [rows, depth, mult, shift, diff_min], \
        ("b", rows * depth)


def quantize(rng):
    size = _r(rng, 1, MAX_ELEMENTS // 2)
    if rng.random() < 0.5:  # int8 -> int8 requantization
        mult, shift = quant.requantize_params(_scale(rng, -3, 1), _scale(rng, -3, 1))
        args = [1, size, _r(rng, -128, 127), _r(rng, -128, 127), mult, shift]
        return "quantize", [("b", _int8(rng, size))], args, ("b", size)
    scale = _scale(rng, -4, 1)
    zero_point = _r(rng, -128, 127)
    xs = rng.normal(0, scale * float(rng.choice([1, 50, 500])), size)
    # Exact halves of the scale (rounding ties) and values far outside int8.
    ties = (rng.integers(-200, 200, size) + 0.5) * scale
    xs = np.where(rng.random(size) < 0.2, ties, xs)
    xs = np.where(rng.random(size) < 0.02, rng.choice([-1e9, 1e9], size), xs)
    values = np.float32(xs).tolist()
    args = [0, size, zero_point, quant.float32_bits(scale), 0, 0]
    return "quantize", [("f", values)], args, ("b", size)


def dequantize(rng):
    size = _r(rng, 1, MAX_ELEMENTS // 2)
    args = [size, _r(rng, -128, 127), quant.float32_bits(_scale(rng, -6, 2))]
    return "dequantize", [("b", _int8(rng, size))], args, ("f", size)


GENERATORS = {f.__name__: f for f in (conv_2d, depthwise_conv_2d, fully_connected,
                                      average_pool_2d, max_pool_2d, add, reshape, softmax,
                                      quantize, dequantize)}
