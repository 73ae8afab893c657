"""256-entry tables for int8 -> int8 unary ops, computed by TFLite Micro's own arithmetic.

An int8 op whose output depends only on one int8 input value is, whatever its arithmetic, a
table of 256 bytes. Each ``*_table`` function here reproduces, for every input value, the
integer arithmetic TFLite Micro's int8 kernel performs (gemmlowp fixed point, int16
saturation and wrap-around where the kernel works in int16), after the float set-up its
Prepare step performs. The sources write some of that set-up in float32 (``in_scale /
out_scale`` before widening to double), but the reference build (the tflite-micro package)
agrees with the double-precision quotient of the float32 scales wherever the two differ
(tests/test_math_ops.py pins such quantizations for RELU and ABS; LEAKY_RELU and HARD_SWISH
agree too), so ratios here are computed in double from the float32 scales. The
device then only looks values up (the LOOKUP op), so every kernel tier is bit-exact by
construction. A quantization for which TFLite Micro's C would shift by an out-of-range amount
(undefined behaviour) raises :class:`UnsupportedQuantization` instead of guessing.

Tables are lists of 256 ints, entry ``k`` for the int8 input ``k - 128``.
"""

import math

import numpy as np

from minerva.kernels_py import _exp_on_interval, _saturating_shl, mbqm, rdbp, srdhm

from . import quant

INT32_MAX = 2147483647
INT32_MIN = -2147483648
INPUTS = range(-128, 128)


class UnsupportedQuantization(ValueError):
    """TFLite Micro's arithmetic is undefined (or its Prepare fails) for these parameters."""


def _f32(x):
    # A scale as the model stores it (float32), as a Python float: arithmetic is double.
    return float(np.float32(x))


def _clamp8(v):
    return -128 if v < -128 else (127 if v > 127 else v)


# -- gemmlowp fixed point on int32 raw values --------------------------------------------

# SaturatingRoundingMultiplyByPOT and exp on [-1/4, 0) are the device spec's own (softmax
# uses them); the barrel of exponents below differs (it takes any integer bit count).


_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
               (2, 39332535), (3, 720401), (4, 242))


def exp_on_negative_values(a, integer_bits):
    """gemmlowp exp(a) for a <= 0 given with ``integer_bits`` integer bits; Q0.31 result."""
    fractional = 31 - integer_bits
    quarter = 1 << (fractional - 2)
    a_mod = (a & (quarter - 1)) - quarter
    result = _exp_on_interval(_saturating_shl(a_mod, integer_bits))
    remainder = a_mod - a
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent and remainder & (1 << (fractional + exponent)):
            result = srdhm(result, multiplier)
    return INT32_MAX if a == 0 else result


def _newton_reciprocal(a):
    # 1 / (1 + a) for a in [0, 1) as gemmlowp's Newton-Raphson, in Q2.29; returns x where
    # x ~= 2 / (1 + a) (three iterations from 48/17 - 32/17 * half_denominator).
    total = a + INT32_MAX
    half_denominator = (total + 1) // 2 if total >= 0 else -((1 - total) // 2)
    x = 1515870810 + srdhm(half_denominator, -1010580540)
    for _ in range(3):
        x += _saturating_shl(srdhm(x, (1 << 29) - srdhm(half_denominator, x)), 2)
    return x


def logistic_fixed(a, integer_bits):
    """gemmlowp::logistic of a raw fixed-point value; Q0.31 result."""
    if a == 0:
        return 1 << 30
    magnitude = a if a > 0 else -a
    positive = _saturating_shl(_newton_reciprocal(
        exp_on_negative_values(-magnitude, integer_bits)), 1)
    return positive if a > 0 else INT32_MAX - positive


def tanh_fixed(a, integer_bits):
    """gemmlowp::tanh of a raw fixed-point value; Q0.31 result."""
    if a == 0:
        return 0
    negative = a if a < 0 else -a
    # ExactMulByPot<1> reinterprets the raw value with one more integer bit.
    t = _saturating_shl(_newton_reciprocal(
        exp_on_negative_values(negative, integer_bits + 1)) - (1 << 29), 2)
    return -t if a < 0 else t


# -- LOGISTIC and TANH: 4 integer bits in, radius test first -----------------------------

def _sigmoid_input(input_scale):
    # Prepare: frexp(double(scale) * 2**27), multiplier rounded from q * 2**31; the radius
    # beyond which the output saturates (CalculateInputRadius in double).
    q, left_shift = math.frexp(_f32(input_scale) * (1 << 27))
    if not q:
        raise UnsupportedQuantization("input scale is zero")
    if left_shift < 0 or left_shift > 40:
        # CalculateInputRadius shifts 1LL by a negative amount (undefined) below 2**-27.
        raise UnsupportedQuantization(f"input scale {input_scale} is outside [2**-28, 2**13]")
    multiplier = quant._round_half_away(q * (1 << 31))
    radius = math.floor(1.0 * 15 * (1 << 27) / (1 << left_shift))
    return multiplier, left_shift, radius


def logistic_table(input_scale, input_zero_point):
    """LOGISTIC int8 (output scale 1/256, zero point -128 by TFLite's rule)."""
    mult, shift, radius = _sigmoid_input(input_scale)
    table = []
    for x in INPUTS:
        v = x - input_zero_point
        if v <= -radius:
            table.append(-128)
        elif v >= radius:
            table.append(127)
        else:
            out = logistic_fixed(mbqm(v, mult, shift), 4)
            table.append(_clamp8(rdbp(out, 23) - 128))
    return table


def tanh_table(input_scale, input_zero_point):
    """TANH int8: the kernel writes Q0.7 values and ignores the output quantization."""
    mult, shift, radius = _sigmoid_input(input_scale)
    table = []
    for x in INPUTS:
        v = x - input_zero_point
        if v <= -radius:
            table.append(-128)
        elif v >= radius:
            table.append(127)
        else:
            table.append(_clamp8(rdbp(tanh_fixed(mbqm(v, mult, shift), 4), 24)))
    return table


# -- HARD_SWISH: int16 fixed point with saturation and wrap-around ------------------------

def _wrap16(v):
    return ((v + 32768) & 0xFFFF) - 32768


def _trunc_div(a, b):
    q = abs(a) // b
    return q if a >= 0 else -q


def _srdhm16(a, b):
    if a == b == -32768:
        return 32767
    ab = a * b
    nudge = (1 << 14) if ab >= 0 else 1 - (1 << 14)
    return _wrap16(_trunc_div(ab + nudge, 1 << 15))


def _doubling_high_mul16(a, b):
    # TFLite's non-rounding SaturatingDoublingHighMul.
    if a == b == -32768:
        return 32767
    return _wrap16(_trunc_div(a * b, 1 << 15))


def _rdbp16(x, exponent):
    # gemmlowp RoundingDivideByPOT on int16: the mask is (1 << exponent) - 1 cast to int16.
    mask = _wrap16((1 << exponent) - 1)
    threshold = _wrap16((mask >> 1) + (1 if x < 0 else 0))
    return _wrap16((x >> exponent) + (1 if (x & mask) > threshold else 0))


def _saturating_shl16(v, amount):
    v <<= amount
    return -32768 if v < -32768 else (32767 if v > 32767 else v)


def _int16_multiplier(real):
    m, shift = quant.quantize_multiplier(real)
    # DownScaleInt32ToInt16Multiplier
    if m >= INT32_MAX - (1 << 15):
        return 32767, shift
    return (m + (1 << 15)) >> 16, shift


def hard_swish_table(input_scale, input_zero_point, output_scale, output_zero_point):
    """HARD_SWISH int8, TFLite's reference int16 fixed-point kernel."""
    hires_scale = _f32(input_scale) / 128.0
    out_mult, out_exp = _int16_multiplier(hires_scale / _f32(output_scale))
    relu_mult, relu_exp = _int16_multiplier(hires_scale / (3.0 / 32768.0))
    if out_exp > 0:
        # TFLite Micro's Prepare fails here (TF_LITE_ENSURE(output_multiplier_exponent <= 0)).
        raise UnsupportedQuantization("output scale is smaller than input scale / 128")
    if out_exp < -31 or not -31 <= relu_exp <= 31:
        raise UnsupportedQuantization("scale ratio needs a shift past 31 bits")
    table = []
    for x in INPUTS:
        hires = _wrap16(_wrap16(x - input_zero_point) * 128)
        preshift = _srdhm16(hires, out_mult)
        relu = hires
        if relu_exp > 0:
            relu = _saturating_shl16(relu, relu_exp - 1)
        relu = _srdhm16(relu, relu_mult)
        if relu_exp > 0:
            relu = _saturating_shl16(relu, 1)
        if relu_exp < 0:
            relu = _rdbp16(relu, -relu_exp)
        relu = _wrap16((relu + (1 << 15)) >> 1)
        out = _rdbp16(_doubling_high_mul16(relu, preshift), -out_exp)
        table.append(_clamp8(_wrap16(out + output_zero_point)))
    return table


# -- LEAKY_RELU, RELU, RELU6, ABS ---------------------------------------------------------------

def _checked_multiplier(real):
    m, shift = quant.quantize_multiplier(real)
    # 255 << shift must stay inside int32 (TFLite's C would overflow, undefined behaviour).
    if shift > 22:
        raise UnsupportedQuantization("input scale / output scale is 2**22 or more")
    return m, shift


def leaky_relu_table(input_scale, input_zero_point, output_scale, output_zero_point, alpha):
    """LEAKY_RELU int8; a negative alpha is applied as a sign on a positive multiplier."""
    alpha_real = _f32(input_scale) * _f32(alpha) / _f32(output_scale)
    alpha_mult, alpha_shift = _checked_multiplier(alpha_real)
    id_mult, id_shift = _checked_multiplier(_f32(input_scale) / _f32(output_scale))
    table = []
    for x in INPUTS:
        v = x - input_zero_point
        if v >= 0:
            out = output_zero_point + mbqm(v, id_mult, id_shift)
        else:
            scaled = mbqm(v, abs(alpha_mult), alpha_shift)
            out = output_zero_point + (-scaled if alpha_mult < 0 else scaled)
        table.append(_clamp8(out))
    return table


def relu_table(input_scale, input_zero_point, output_scale, output_zero_point):
    """RELU int8: requantize to the output scale, clamp below at the output zero point."""
    mult, shift = _checked_multiplier(_f32(input_scale) / _f32(output_scale))
    low = max(-128, output_zero_point)
    table = []
    for x in INPUTS:
        out = output_zero_point + mbqm(x - input_zero_point, mult, shift)
        table.append(min(127, max(low, out)))
    return table


def abs_table(input_scale, input_zero_point, output_scale, output_zero_point):
    """ABS int8: |x - zero_point|, requantized only when the two scales differ."""
    if _f32(input_scale) == _f32(output_scale):
        return [_clamp8(abs(x - input_zero_point) + output_zero_point) for x in INPUTS]
    mult, shift = _checked_multiplier(_f32(input_scale) / _f32(output_scale))
    return [_clamp8(mbqm(abs(x - input_zero_point), mult, shift) + output_zero_point)
            for x in INPUTS]


def relu6_table(input_scale, input_zero_point):
    """RELU6 int8: TFLite Micro clamps the raw input to [zero, six] on the input's scale and
    does not requantize (the output quantization is ignored)."""
    six = quant._round_half_away(6.0 / _f32(input_scale)) + input_zero_point
    six = _clamp8(six)
    return [six if x > six else (input_zero_point if x < input_zero_point else x)
            for x in INPUTS]
