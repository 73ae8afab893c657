"""Random geometries and quantizations for the math kernels, for differential tier testing.

``GENERATORS = {kernel name: fn(rng) -> case}`` with a case in the format of
tests/test_kernels_tiers.py: ``(kernel name, [(typecode, values) ...], args, (out_typecode,
out_len))``, where ``values`` fill the kernel's input buffers in order and ``args`` is the
op's argument block (docs/capsule-format.md, opcodes 20-23). Every case is one the device's
load-time checks accept (device/minerva/graph_math.py), so every tier must give the same
bytes. Shapes have 1 to 300 channels, odd and even sizes and broadcasting patterns; totals
stay under a few thousand elements so one case runs in a few ms in pure Python.
Quantizations are drawn from realistic scales through the packager's own set-up code, with
extremes (zero and full-range multipliers, the shift limits, zero points at -128 and 127)
mixed in.
"""

import numpy as np

from minerva_packager.capsule import lut, quant
from minerva_packager.capsule.lower_math import mean_multiplier, sub_params

INT32_MAX = (1 << 31) - 1
MAX_ELEMENTS = 2400


def _int8(rng, n):
    return rng.integers(-128, 128, n).tolist()


def _zero_point(rng):
    return int(rng.choice([-128, 127, 0, int(rng.integers(-128, 128))], p=[.15, .15, .1, .6]))


def _scale(rng, lo=-4.0, hi=1.5):
    return float(np.float32(10 ** rng.uniform(lo, hi)))


def _act_range(rng):
    choice = rng.integers(0, 4)
    if choice == 0:
        return -128, 127
    # As fused activations make them: a floor at or below the zero point, a ceiling above it
    # (an occasional narrow or high window too).
    if rng.random() < 0.2:
        lo = int(rng.integers(-128, 128))
        return lo, int(rng.integers(lo, 128))
    lo = int(rng.integers(-128, 1))
    return (lo, 127) if choice == 1 else (lo, int(rng.integers(0, 128)))


def _channels(rng):
    return int(rng.choice([1, 2, 3, 7, 8, 16, 63, 64, 65, 128, 300,
                           int(rng.integers(1, 301))]))


# -- LOOKUP -------------------------------------------------------------------------------

def _real_table(rng):
    op = rng.integers(0, 7)
    s_in, zp_in, s_out, zp_out = _scale(rng), _zero_point(rng), _scale(rng), _zero_point(rng)
    try:
        if op == 0:
            return lut.logistic_table(s_in, zp_in)
        if op == 1:
            return lut.tanh_table(s_in, zp_in)
        if op == 2:
            return lut.hard_swish_table(s_in, zp_in, max(s_out, s_in / 100), zp_out)
        if op == 3:
            return lut.leaky_relu_table(s_in, zp_in, s_out, zp_out, float(rng.uniform(-2, 2)))
        if op == 4:
            return lut.relu_table(s_in, zp_in, s_out, zp_out)
        if op == 6:
            return lut.abs_table(s_in, zp_in, s_out, zp_out)
        return lut.relu6_table(s_in, zp_in)
    except lut.UnsupportedQuantization:
        return _int8(rng, 256)


def lookup_case(rng):
    size = int(rng.choice([1, 2, 255, 256, 257, int(rng.integers(1, MAX_ELEMENTS))]))
    table = _real_table(rng) if rng.random() < 0.5 else _int8(rng, 256)
    return "lookup", [("b", _int8(rng, size)), ("b", table)], [size], ("b", size)


# -- BINARY -------------------------------------------------------------------------------

def _out_dims(rng):
    while True:
        dims = [int(rng.choice([1, 1, 2, 3, int(rng.integers(1, 9))])) for _ in range(3)]
        dims.append(_channels(rng))
        if int(np.prod(dims)) <= MAX_ELEMENTS:
            return dims


def _operand(rng, dims):
    # Which output dims this operand has (the others broadcast): all, per-channel only,
    # none (a scalar), or a random subset.
    pattern = rng.integers(0, 4)
    if pattern == 0:
        keep = [True] * 4
    elif pattern == 1:
        keep = [False, False, False, True]
    elif pattern == 2:
        keep = [False] * 4
    else:
        keep = [bool(rng.random() < 0.5) for _ in range(4)]
    shape = [d if k else 1 for d, k in zip(dims, keep)]
    strides, step = [0] * 4, 1
    for k in range(3, -1, -1):
        strides[k] = step if shape[k] > 1 else 0
        step *= shape[k]
    return step, strides


def _add_sub_arith(rng, kind):
    make = quant.add_params if kind == 0 else sub_params
    for _ in range(20):
        s1, s2 = _scale(rng), _scale(rng)
        if rng.random() < 0.7:  # as in real models: the two inputs' scales within 10x
            s2 = float(np.float32(s1 * 10 ** rng.uniform(-1, 1)))
        # Mostly an output scale that spreads the sum over int8, sometimes one that squeezes it.
        wide = rng.random() < 0.25
        so = float(np.float32(max(s1, s2) * 10 ** rng.uniform(-0.5, 2.5 if wide else 0.5)))
        p = make(s1, s2, so)
        if max(p["input1_shift"], p["input2_shift"], p["output_shift"]) <= 0:
            break
    arith = [-_zero_point(rng), -_zero_point(rng), _zero_point(rng), p["left_shift"],
             p["input1_mult"], p["input1_shift"], p["input2_mult"], p["input2_shift"],
             p["output_mult"], p["output_shift"]]
    if rng.random() < 0.15:
        # Extremes the loader accepts: multipliers 0 and 2**31 - 1, shifts 0 and -31.
        arith[4 + 2 * int(rng.integers(0, 3))] = int(rng.choice([0, 1, INT32_MAX]))
        arith[5 + 2 * int(rng.integers(0, 3))] = int(rng.choice([0, -31]))
        arith[3] = int(rng.choice([0, 20]))
    return arith


def _mul_arith(rng):
    if rng.random() < 0.15:
        mult, shift = int(rng.choice([0, 1, 1 << 30, INT32_MAX])), int(rng.choice([-31, 0, 15]))
    else:
        # Products of two int8 values reach 2**16: mostly a multiplier that maps them onto
        # int8, sometimes any in the range the loader accepts.
        wide = rng.random() < 0.25
        mult, shift = quant.quantize_multiplier(10 ** (rng.uniform(-6, 4.4) if wide
                                                        else rng.uniform(-3.8, -1.5)))
    return [-_zero_point(rng), -_zero_point(rng), _zero_point(rng), 0, 0, 0, 0, 0, mult, shift]


def binary_case(rng):
    kind = int(rng.integers(0, 5))
    dims = _out_dims(rng)
    a_len, a_strides = _operand(rng, dims)
    b_len, b_strides = _operand(rng, dims)
    if kind <= 1:
        arith = _add_sub_arith(rng, kind)
    elif kind == 2:
        arith = _mul_arith(rng)
    else:
        arith = [0] * 10
    args = [kind, *dims, *a_strides, *b_strides, *arith, *_act_range(rng)]
    size = int(np.prod(dims))
    return "binary", [("b", _int8(rng, a_len)), ("b", _int8(rng, b_len))], args, ("b", size)


# -- MEAN -----------------------------------------------------------------------------------

def mean_case(rng):
    while True:
        k0, r0, k1, r1 = (int(rng.choice([1, 1, 2, 3, int(rng.integers(1, 10))]))
                          for _ in range(4))
        if rng.random() < 0.4:
            r0 = int(rng.integers(1, 50))  # global average pool: H * W values per channel
        k2 = 1 if rng.random() < 0.5 else _channels(rng)
        if k0 * r0 * k1 * r1 * k2 <= MAX_ELEMENTS:
            break
    count = r0 * r1
    if rng.random() < 0.15:
        mult, shift = int(rng.choice([0, 1, INT32_MAX])), int(rng.choice([-31, -10, 0]))
    else:
        s_in = _scale(rng)
        mult, shift = mean_multiplier(s_in, s_in * 10 ** rng.uniform(-1.0, 0.3), count)
    while shift > 0 and (255 * count) << shift > INT32_MAX:
        shift -= 1
    # Means of uniform int8 data sit near zero: moderate zero points keep outputs spread.
    zps = [_zero_point(rng) if rng.random() < 0.2 else int(rng.integers(-40, 40))
           for _ in range(2)]
    args = [k0, r0, k1, r1, k2, *zps, mult, shift]
    return "mean", [("b", _int8(rng, k0 * r0 * k1 * r1 * k2))], args, ("b", k0 * k1 * k2)


# -- QUANTIZE_INT16 ------------------------------------------------------------------------------

def quantize_int16_case(rng):
    size = int(rng.integers(1, MAX_ELEMENTS))
    values = rng.integers(-32768, 32768, size)
    if rng.random() < 0.7:
        values = values // int(rng.choice([1, 16, 256]))
    if rng.random() < 0.15:
        mult, shift = int(rng.choice([0, 1, INT32_MAX])), int(rng.choice([-31, 0, 15]))
    else:
        s_in = _scale(rng, -6, -1)
        mult, shift = quant.requantize_params(s_in, s_in * 10 ** rng.uniform(-0.5, 4.0))
        shift = min(shift, 15)
    in_zp = int(rng.choice([0, -32768, 32767, int(rng.integers(-400, 400))], p=[.5, .1, .1, .3]))
    args = [size, in_zp, _zero_point(rng), mult, shift]
    return "quantize_int16", [("h", values.tolist())], args, ("b", size)


GENERATORS = {
    "lookup": lookup_case,
    "binary": binary_case,
    "mean": mean_case,
    "quantize_int16": quantize_int16_case,
}
