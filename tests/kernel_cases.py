"""Generated kernel vectors for the C tier: realistic cases (as the packager's arithmetic would
set up a layer) and hostile-but-consistent ones (what a crafted capsule could ask for).

A case is a dict: ``name`` (``<op>_int8_<case>``), ``op`` (the kernel's name), ``inputs`` (the
kernel's buffer arguments before ``out``, each ``(typecode, values)`` or ``None`` for an
absent bias), ``out`` (``(typecode, count)``), ``args`` (the int32 argument block) and
``exact``: False where TFLite's int32 arithmetic would overflow, so that the pure-Python
reference (unbounded ints) and the C kernels (which wrap) may legitimately differ.
"""

import math
import struct

import numpy as np

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def quantize_multiplier(real):
    """TFLite's QuantizeMultiplier: real = mult * 2**(shift - 31), mult in [2**30, 2**31)."""
    if real == 0:
        return 0, 0
    q, shift = math.frexp(real)
    mult = round(q * 2**31)
    if mult == 2**31:
        mult //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return mult, shift


def _i8(rng, n, lo=-128, hi=127):
    return rng.integers(lo, hi + 1, size=n).tolist()


def _requant(rng, out_c, taps, per_channel=True):
    """mult/shift bringing an accumulator of ``taps`` random products to roughly +-64."""
    spread = math.sqrt(taps) * 74 * 74
    count = out_c if per_channel else 1
    pairs = [quantize_multiplier(64 / spread * float(rng.uniform(0.5, 2.0)))
             for _ in range(count)]
    if not per_channel:
        pairs *= out_c
    bias = rng.integers(-int(spread), int(spread) + 1, size=out_c).tolist()
    return bias, [m for m, _ in pairs], [s for _, s in pairs]


def _out_dim(in_size, k, stride, dil, pad_total):
    return (in_size + pad_total - dil * (k - 1) - 1) // stride + 1


def conv_case(name, rng, *, in_h, in_w, in_c, out_c, k_h, k_w, stride=(1, 1), dil=(1, 1),
              pad="same", batches=1, bias=True, depth_mult=None, act=(-128, 127),
              in_off=None, out_off=None, pads=None, out_hw=None, mult_shift=None, exact=True,
              inputs=None, filt=None):
    """A CONV_2D case, or DEPTHWISE_CONV_2D when ``depth_mult`` is given."""
    depthwise = depth_mult is not None
    if depthwise:
        out_c = in_c * depth_mult
    if pads is None:
        pads = []
        for size, k, s, d in ((in_h, k_h, stride[0], dil[0]), (in_w, k_w, stride[1], dil[1])):
            out = -(-size // s) if pad == "same" else _out_dim(size, k, s, d, 0)
            total = max((out - 1) * s + d * (k - 1) + 1 - size, 0) if pad == "same" else 0
            pads.append((total // 2, out))
        (pad_t, out_h), (pad_l, out_w) = pads
    else:
        pad_t, pad_l = pads
        out_h, out_w = out_hw
    taps = k_h * k_w * (1 if depthwise else in_c)
    b, m, s = _requant(rng, out_c, taps)
    if mult_shift is not None:
        m, s = [mult_shift[0]] * out_c, [mult_shift[1]] * out_c
    in_off = int(rng.integers(-127, 129)) if in_off is None else in_off
    out_off = int(rng.integers(-128, 128)) if out_off is None else out_off
    n_in = batches * in_h * in_w * in_c
    n_f = k_h * k_w * out_c * (1 if depthwise else in_c)
    args = [batches, in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w, stride[0], stride[1],
            dil[0], dil[1], pad_t, pad_l, in_off, out_off, act[0], act[1]]
    if depthwise:
        args.append(depth_mult)
    return {"name": name, "op": "depthwise_conv_2d" if depthwise else "conv_2d",
            "inputs": [("b", inputs(n_in) if inputs else _i8(rng, n_in)),
                       ("b", filt(n_f) if filt else _i8(rng, n_f, -127)),
                       ("i", b) if bias else None, ("i", m), ("i", s)],
            "out": ("b", batches * out_h * out_w * out_c), "args": args, "exact": exact}


def fc_case(name, rng, *, batches, depth, out_c, bias=True, f_off=0, act=(-128, 127),
            in_off=None, exact=True):
    b, m, s = _requant(rng, out_c, depth, per_channel=False)
    in_off = int(rng.integers(-127, 129)) if in_off is None else in_off
    args = [batches, depth, out_c, in_off, f_off, int(rng.integers(-128, 128)), *act]
    return {"name": name, "op": "fully_connected",
            "inputs": [("b", _i8(rng, batches * depth)), ("b", _i8(rng, out_c * depth, -127)),
                       ("i", b) if bias else None, ("i", m), ("i", s)],
            "out": ("b", batches * out_c), "args": args, "exact": exact}


def pool_case(name, rng, op, *, in_h, in_w, chans, f_h, f_w, stride, pad_t=0, pad_l=0,
              out_h=None, out_w=None, batches=1, act=(-128, 127)):
    out_h = out_h or _out_dim(in_h, f_h, stride, 1, 2 * pad_t)
    out_w = out_w or _out_dim(in_w, f_w, stride, 1, 2 * pad_l)
    args = [batches, in_h, in_w, chans, out_h, out_w, f_h, f_w, stride, stride, pad_t, pad_l,
            *act]
    return {"name": name, "op": op, "inputs": [("b", _i8(rng, batches * in_h * in_w * chans))],
            "out": ("b", batches * out_h * out_w * chans), "args": args, "exact": True}


def add_params(s1, s2, s_out, zp1, zp2, zp_out, act=(-128, 127)):
    """TFLite's Prepare for an int8 ADD (left shift 20)."""
    twice_max = 2 * max(s1, s2)
    m1, sh1 = quantize_multiplier(s1 / twice_max)
    m2, sh2 = quantize_multiplier(s2 / twice_max)
    mo, sho = quantize_multiplier(twice_max / ((1 << 20) * s_out))
    return [-zp1, -zp2, zp_out, 20, m1, sh1, m2, sh2, mo, sho, *act]


def softmax_params(beta, input_scale):
    """TFLite's Prepare for an int8 SOFTMAX: beta multiplier, left shift, diff_min."""
    real = min(beta * input_scale * 2 ** (31 - 5), 2**31 - 1.0)
    mult, shift = quantize_multiplier(real)
    radius = math.floor(((1 << 5) - 1) * 2 ** (31 - 5) / 2**shift)
    return mult, shift, -radius


def f32_bits(value):
    return struct.unpack("<i", struct.pack("<f", value))[0]


def realistic_cases(seed=0):
    """Small layers shaped like the shared models' (KWS DS-CNN, ResNet-8, FC autoencoder);
    names get ``_seed<N>`` appended for seeds other than 0."""
    rng = np.random.default_rng(seed)
    cases = _realistic(rng)
    if seed:
        for case in cases:
            case["name"] += f"_seed{seed}"
    return cases


def _realistic(rng):
    cases = [
        conv_case("conv_2d_int8_1x1", rng, in_h=5, in_w=4, in_c=16, out_c=8, k_h=1, k_w=1),
        conv_case("conv_2d_int8_3x3_same", rng, in_h=6, in_w=5, in_c=3, out_c=8, k_h=3, k_w=3),
        conv_case("conv_2d_int8_stride2", rng, in_h=9, in_w=8, in_c=4, out_c=6, k_h=3, k_w=3,
                  stride=(2, 2)),
        conv_case("conv_2d_int8_kws_first", rng, in_h=13, in_w=10, in_c=1, out_c=8, k_h=10,
                  k_w=4, stride=(2, 2), act=(-128, 127), out_off=-128),
        conv_case("conv_2d_int8_dilation2", rng, in_h=8, in_w=7, in_c=2, out_c=4, k_h=3, k_w=3,
                  dil=(2, 2)),
        conv_case("conv_2d_int8_valid_5x3", rng, in_h=7, in_w=6, in_c=3, out_c=5, k_h=5,
                  k_w=3, pad="valid"),
        conv_case("conv_2d_int8_no_bias", rng, in_h=4, in_w=4, in_c=5, out_c=3, k_h=3, k_w=3,
                  bias=False),
        conv_case("conv_2d_int8_batches2", rng, in_h=4, in_w=3, in_c=3, out_c=4, k_h=3, k_w=3,
                  batches=2),
        conv_case("conv_2d_int8_relu", rng, in_h=5, in_w=5, in_c=4, out_c=4, k_h=3, k_w=3,
                  act=(-20, 127), out_off=-20),
        conv_case("conv_2d_int8_70_channels", rng, in_h=3, in_w=3, in_c=4, out_c=70, k_h=1,
                  k_w=1),
        conv_case("depthwise_conv_2d_int8_3x3_same", rng, in_h=6, in_w=5, in_c=8, out_c=0,
                  k_h=3, k_w=3, depth_mult=1),
        conv_case("depthwise_conv_2d_int8_stride2", rng, in_h=9, in_w=7, in_c=4, out_c=0,
                  k_h=3, k_w=3, stride=(2, 2), depth_mult=1),
        conv_case("depthwise_conv_2d_int8_depth_mult2", rng, in_h=5, in_w=5, in_c=3, out_c=0,
                  k_h=3, k_w=3, depth_mult=2),
        conv_case("depthwise_conv_2d_int8_dilation2", rng, in_h=7, in_w=7, in_c=4, out_c=0,
                  k_h=3, k_w=3, dil=(2, 2), depth_mult=1),
        conv_case("depthwise_conv_2d_int8_70_channels", rng, in_h=4, in_w=3, in_c=70,
                  out_c=0, k_h=3, k_w=3, depth_mult=1),
        conv_case("depthwise_conv_2d_int8_no_bias", rng, in_h=6, in_w=4, in_c=5, out_c=0,
                  k_h=5, k_w=2, depth_mult=1, bias=False, pad="valid"),
        fc_case("fully_connected_int8_basic", rng, batches=1, depth=64, out_c=12),
        fc_case("fully_connected_int8_batches3", rng, batches=3, depth=20, out_c=7),
        fc_case("fully_connected_int8_filter_offset", rng, batches=2, depth=33, out_c=5,
                f_off=3),
        fc_case("fully_connected_int8_no_bias", rng, batches=1, depth=40, out_c=9, bias=False),
        fc_case("fully_connected_int8_depth1", rng, batches=2, depth=1, out_c=4),
        pool_case("average_pool_2d_int8_global", rng, "average_pool_2d", in_h=25, in_w=5,
                  chans=8, f_h=25, f_w=5, stride=1),
        pool_case("average_pool_2d_int8_2x2", rng, "average_pool_2d", in_h=6, in_w=6, chans=5,
                  f_h=2, f_w=2, stride=2),
        pool_case("average_pool_2d_int8_3x3_same", rng, "average_pool_2d", in_h=5, in_w=4,
                  chans=70, f_h=3, f_w=3, stride=1, pad_t=1, pad_l=1),
        pool_case("max_pool_2d_int8_2x2", rng, "max_pool_2d", in_h=6, in_w=6, chans=5, f_h=2,
                  f_w=2, stride=2),
        pool_case("max_pool_2d_int8_3x3_same", rng, "max_pool_2d", in_h=5, in_w=4, chans=6,
                  f_h=3, f_w=3, stride=1, pad_t=1, pad_l=1, act=(-50, 100)),
    ]
    for name, scales, zps, act in (
            ("add_int8_basic", (0.05, 0.02, 0.06), (3, -7, -2), (-128, 127)),
            ("add_int8_relu", (0.1, 0.1, 0.15), (-128, 20, -128), (-128, 127)),
            ("add_int8_skewed_scales", (0.5, 0.003, 0.4), (10, 0, 5), (-100, 90))):
        n = 300
        cases.append({"name": name, "op": "add",
                      "inputs": [("b", _i8(rng, n)), ("b", _i8(rng, n))], "out": ("b", n),
                      "args": [n, *add_params(*scales, *zps, act)], "exact": True})
    cases.append({"name": "reshape_int8_basic", "op": "reshape",
                  "inputs": [("b", _i8(rng, 77))], "out": ("b", 77), "args": [77],
                  "exact": True})
    for name, rows, depth, beta, scale, values in (
            ("softmax_int8_kws", 1, 12, 1.0, 0.16, None),
            ("softmax_int8_rows3", 3, 10, 1.0, 0.05, None),
            ("softmax_int8_wide", 2, 300, 1.0, 0.1, None),
            ("softmax_int8_beta2", 1, 40, 2.0, 0.25, None),
            ("softmax_int8_all_equal", 1, 50, 1.0, 0.1, [7] * 50),
            ("softmax_int8_one_hot", 1, 16, 1.0, 0.5, [127] + [-128] * 15)):
        mult, shift, diff_min = softmax_params(beta, scale)
        cases.append({"name": name, "op": "softmax",
                      "inputs": [("b", values or _i8(rng, rows * depth))],
                      "out": ("b", rows * depth), "args": [rows, depth, mult, shift, diff_min],
                      "exact": True})
    floats = [0.0, 0.5, -0.5, 1.5, -1.5, 2.5, 0.4999, 100.0, -100.0, 1e9, -1e9, 3.3, -7.25]
    floats += rng.normal(0, 30, size=80).astype(np.float32).tolist()
    cases.append({"name": "quantize_int8_from_float", "op": "quantize",
                  "inputs": [("f", floats)], "out": ("b", len(floats)),
                  "args": [0, len(floats), -3, f32_bits(0.25), 0, 0], "exact": True})
    m, s = quantize_multiplier(0.37 / 0.2)
    cases.append({"name": "quantize_int8_requantize", "op": "quantize",
                  "inputs": [("b", _i8(rng, 100))], "out": ("b", 100),
                  "args": [1, 100, 5, -9, m, s], "exact": True})
    cases.append({"name": "dequantize_int8_basic", "op": "dequantize",
                  "inputs": [("b", _i8(rng, 100))], "out": ("f", 100),
                  "args": [100, -17, f32_bits(0.0371)], "exact": True})
    return cases


def hostile_cases(seed=0):
    """Consistent with their buffers (so a loaded capsule could hold them) but extreme."""
    rng = np.random.default_rng(seed)
    lows = lambda n: [-128] * n  # noqa: E731 - INT8 extremes
    highs = lambda n: [127] * n  # noqa: E731
    cases = [
        conv_case("conv_2d_int8_1x1_input_huge_padding", rng, in_h=1, in_w=1, in_c=2, out_c=3,
                  k_h=3, k_w=3, pads=(1000, 1000), out_hw=(2, 2)),
        conv_case("conv_2d_int8_1x1_input_3x3_kernel", rng, in_h=1, in_w=1, in_c=1, out_c=2,
                  k_h=3, k_w=3),
        # A 1x1 filter with padding: the window is outside the input on the border (a 1x1
        # window is otherwise used in place; found by random_cases).
        conv_case("conv_2d_int8_1x1_padded", rng, in_h=3, in_w=3, in_c=5, out_c=6, k_h=1,
                  k_w=1, pads=(1, 2), out_hw=(5, 5)),
        conv_case("conv_2d_int8_stride_beyond_kernel", rng, in_h=11, in_w=12, in_c=2, out_c=3,
                  k_h=2, k_w=2, stride=(5, 6), pad="valid"),
        conv_case("conv_2d_int8_dilation_beyond_input", rng, in_h=4, in_w=4, in_c=2, out_c=2,
                  k_h=3, k_w=3, dil=(10, 10), pads=(2, 3), out_hw=(4, 4)),
        conv_case("conv_2d_int8_negative_padding", rng, in_h=6, in_w=6, in_c=1, out_c=2,
                  k_h=2, k_w=2, pads=(-2, -3), out_hw=(3, 2)),
        conv_case("conv_2d_int8_extremes_low", rng, in_h=3, in_w=3, in_c=8, out_c=2, k_h=3,
                  k_w=3, in_off=128, inputs=lows, filt=lows),
        conv_case("conv_2d_int8_extremes_high", rng, in_h=3, in_w=3, in_c=8, out_c=2, k_h=3,
                  k_w=3, in_off=-127, inputs=highs, filt=lows),
        conv_case("conv_2d_int8_mult_max_shift_min", rng, in_h=3, in_w=3, in_c=4, out_c=2,
                  k_h=3, k_w=3, mult_shift=(INT32_MAX, -31)),
        conv_case("conv_2d_int8_mult_min", rng, in_h=3, in_w=3, in_c=4, out_c=2, k_h=3, k_w=3,
                  mult_shift=(INT32_MIN, 0)),
        conv_case("conv_2d_int8_shift_max_overflows", rng, in_h=3, in_w=3, in_c=4, out_c=2,
                  k_h=3, k_w=3, mult_shift=(INT32_MAX, 30), exact=False),
        conv_case("conv_2d_int8_offset_overflows", rng, in_h=3, in_w=3, in_c=4, out_c=2,
                  k_h=3, k_w=3, in_off=INT32_MAX, out_off=INT32_MIN, exact=False),
        conv_case("depthwise_conv_2d_int8_huge_padding", rng, in_h=1, in_w=1, in_c=3, out_c=0,
                  k_h=3, k_w=3, depth_mult=2, pads=(-500, 700), out_hw=(3, 2)),
        conv_case("depthwise_conv_2d_int8_dilation_beyond_input", rng, in_h=3, in_w=2, in_c=4,
                  out_c=0, k_h=4, k_w=4, dil=(7, 9), depth_mult=1, pads=(1, 1),
                  out_hw=(3, 2)),
        conv_case("depthwise_conv_2d_int8_extremes", rng, in_h=4, in_w=4, in_c=3, out_c=0,
                  k_h=3, k_w=3, depth_mult=3, in_off=128, inputs=lows, filt=lows),
        conv_case("depthwise_conv_2d_int8_offset_overflows", rng, in_h=3, in_w=3, in_c=2,
                  out_c=0, k_h=3, k_w=3, depth_mult=1, in_off=INT32_MIN, exact=False),
        fc_case("fully_connected_int8_offset_overflows", rng, batches=1, depth=10, out_c=3,
                in_off=INT32_MAX, f_off=INT32_MAX, exact=False),
        pool_case("average_pool_2d_int8_window_outside", rng, "average_pool_2d", in_h=2,
                  in_w=2, chans=3, f_h=2, f_w=2, stride=1, pad_t=100, pad_l=-100, out_h=2,
                  out_w=2, act=(-10, 10)),
        pool_case("average_pool_2d_int8_filter_beyond_input", rng, "average_pool_2d", in_h=3,
                  in_w=2, chans=2, f_h=50, f_w=60, stride=7, pad_t=20, pad_l=30, out_h=3,
                  out_w=4),
        pool_case("max_pool_2d_int8_window_outside", rng, "max_pool_2d", in_h=2, in_w=2,
                  chans=3, f_h=2, f_w=2, stride=9, pad_t=3, pad_l=3, out_h=2, out_w=2),
    ]
    mult, shift, diff_min = softmax_params(1.0, 0.1)
    for name, depth, values, args in (
            ("softmax_int8_longest_row", 4095, [-128] * 4095, [mult, shift, diff_min]),
            ("softmax_int8_diff_min_zero", 20, None, [mult, shift, 0]),
            # The largest beta the limits allow: 255 << 23 is the widest shifted difference.
            ("softmax_int8_beta_extreme", 20, None, [INT32_MAX, 23, -255])):
        cases.append({"name": name, "op": "softmax",
                      "inputs": [("b", values or _i8(rng, depth))], "out": ("b", depth),
                      "args": [1, depth, *args], "exact": True})
    cases.append({"name": "add_int8_extremes", "op": "add",
                  "inputs": [("b", [-128, 127] * 20), ("b", [127, -128] * 20)], "out": ("b", 40),
                  "args": [40, 128, 128, 127, 20, INT32_MAX, 0, INT32_MAX, 0, INT32_MAX, 0,
                           -128, 127], "exact": True})
    specials = [float("nan"), float("inf"), float("-inf"), 3.4e38, -3.4e38, 1e-45, 2147483520.0,
                -2147483648.0, 0.49999997, -0.49999997]
    cases.append({"name": "quantize_int8_specials", "op": "quantize",
                  "inputs": [("f", specials)], "out": ("b", len(specials)),
                  "args": [0, len(specials), 100, f32_bits(1e-3), 0, 0], "exact": True})
    cases.append({"name": "quantize_int8_extreme_requantize", "op": "quantize",
                  "inputs": [("b", [-128, 127, 0, 5])], "out": ("b", 4),
                  "args": [1, 4, 127, -128, INT32_MAX, 30], "exact": False})
    cases.append({"name": "dequantize_int8_extremes", "op": "dequantize",
                  "inputs": [("b", [-128, 127, 0])], "out": ("f", 3),
                  "args": [3, 127, f32_bits(3.0e38)], "exact": True})
    return cases


def random_cases(seed, count):
    """``count`` random window-op, FC and ADD cases with random geometry (strides, dilations,
    paddings of either sign, channel counts around the kernels' 4- and 8-channel groups,
    filters past the conv patch size, input offsets outside int8) and random requantization,
    kept where TFLite's int32 arithmetic cannot overflow so that every case is exact."""
    rng = np.random.default_rng(seed)
    r = lambda lo, hi: int(rng.integers(lo, hi + 1))  # noqa: E731
    cases = []
    for i in range(count):
        kind = ("conv_2d", "depthwise_conv_2d", "average_pool_2d", "max_pool_2d",
                "fully_connected", "add", "softmax", "quantize")[i % 8]
        name = f"{kind}_int8_random_{seed}_{i}"
        in_off = r(-127, 128) if rng.random() < 0.8 else r(-400, 400)
        if kind in ("conv_2d", "depthwise_conv_2d"):
            big = kind == "conv_2d" and rng.random() < 0.15  # past the 640-byte patch
            k_h, k_w = (r(4, 5), r(4, 5)) if big else (r(1, 4), r(1, 4))
            in_c = r(28, 32) if big else r(1, 13)
            case = conv_case(name, rng, in_h=r(1, 7), in_w=r(1, 7), in_c=in_c,
                             out_c=r(1, 20), k_h=k_h, k_w=k_w, stride=(r(1, 4), r(1, 4)),
                             dil=(r(1, 3), r(1, 3)), pads=(r(-3, 6), r(-3, 6)),
                             out_hw=(r(1, 5), r(1, 5)), batches=r(1, 2),
                             bias=rng.random() < 0.8, in_off=in_off,
                             depth_mult=r(1, 3) if kind == "depthwise_conv_2d" else None)
        elif kind in ("average_pool_2d", "max_pool_2d"):
            lo = r(-128, 20)
            case = pool_case(name, rng, kind, in_h=r(1, 7), in_w=r(1, 7), chans=r(1, 20),
                             f_h=r(1, 5), f_w=r(1, 5), stride=r(1, 4), pad_t=r(-3, 5),
                             pad_l=r(-3, 5), out_h=r(1, 5), out_w=r(1, 5), batches=r(1, 2),
                             act=(lo, r(lo, 127)))
        elif kind == "fully_connected":
            case = fc_case(name, rng, batches=r(1, 3), depth=r(1, 70), out_c=r(1, 11),
                           bias=rng.random() < 0.8, f_off=0 if rng.random() < 0.7 else r(-5, 5),
                           in_off=in_off)
        elif kind == "softmax":
            rows, depth = r(1, 3), r(1, 60)
            mult, shift, diff_min = softmax_params(float(rng.uniform(0.1, 4.0)),
                                                   float(rng.uniform(0.01, 1.0)))
            case = {"name": name, "op": "softmax", "inputs": [("b", _i8(rng, rows * depth))],
                    "out": ("b", rows * depth), "args": [rows, depth, mult, shift, diff_min],
                    "exact": True}
        elif kind == "quantize":
            n = r(1, 40)
            mult, shift = quantize_multiplier(float(rng.uniform(0.01, 3.0)))
            case = {"name": name, "op": "quantize", "inputs": [("b", _i8(rng, n))],
                    "out": ("b", n), "args": [1, n, r(-128, 127), r(-128, 127), mult, shift],
                    "exact": True}
        else:
            n = r(1, 50)
            scales = [float(rng.uniform(0.01, 1.0)) for _ in range(3)]
            zps = [r(-128, 127) for _ in range(3)]
            case = {"name": name, "op": "add", "inputs": [("b", _i8(rng, n)), ("b", _i8(rng, n))],
                    "out": ("b", n), "args": [n, *add_params(*scales, *zps)], "exact": True}
        cases.append(case)
    return cases


def fast_path_cases(seed, count, max_bytes=None):
    """``count`` random cases inside the kernels' fast paths, where the per-arch forms (the
    Cortex-M0 asm of natmod/kernels) run: CONV_2D with a filter of at most 640 bytes and an
    input offset in [-127, 128]; DEPTHWISE_CONV_2D with depth multiplier 1, channels a
    multiple of 4 and no horizontal dilation; FULLY_CONNECTED without filter offset. The
    rest of the geometry (sizes, strides, vertical dilation, paddings of either sign, output
    channels around the 4-channel groups and 16-channel chunks, activation ranges) is random.
    ``max_bytes`` keeps cases whose buffers total at most that many bytes."""
    rng = np.random.default_rng(seed)
    r = lambda lo, hi: int(rng.integers(lo, hi + 1))  # noqa: E731
    cases = []
    while len(cases) < count:
        i = len(cases)
        kind = ("conv_2d", "depthwise_conv_2d", "fully_connected")[i % 3]
        name = f"{kind}_int8_fast_{seed}_{i}"
        lo = r(-128, 0) if rng.random() < 0.3 else -128
        act = (lo, r(max(lo, 0), 127) if rng.random() < 0.3 else 127)
        if kind == "fully_connected":
            # An input offset of 128 takes the unsigned-input rows up to 256 deep.
            shifted = rng.random() < 0.3
            case = fc_case(name, rng, batches=r(1, 2),
                           depth=r(1, 300) if shifted else r(1, 80), out_c=r(1, 21),
                           bias=rng.random() < 0.8, in_off=128 if shifted else r(-128, 128),
                           act=act)
        else:
            depthwise = kind == "depthwise_conv_2d"
            in_c = 4 * r(1, 5) if depthwise else r(1, 24)
            k_h, k_w = r(1, 4), r(1, 4)
            while not depthwise and k_h * k_w * in_c > 640:
                in_c //= 2
            case = conv_case(name, rng, in_h=r(1, 8), in_w=r(1, 8), in_c=in_c,
                             out_c=r(1, 21), k_h=k_h, k_w=k_w, stride=(r(1, 3), r(1, 3)),
                             dil=(r(1, 2), 1 if depthwise else r(1, 2)),
                             pads=(r(-2, 3), r(-2, 3)), out_hw=(r(1, 6), r(1, 6)),
                             batches=r(1, 2), bias=rng.random() < 0.8, act=act,
                             in_off=r(-128, 128) if depthwise else r(-127, 128),
                             depth_mult=1 if depthwise else None)
        size = sum(len(spec[1]) * (4 if spec[0] == "i" else 1)
                   for spec in case["inputs"] if spec is not None) + case["out"][1]
        if max_bytes is None or size <= max_bytes:
            cases.append(case)
    return cases
