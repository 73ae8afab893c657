"""What TFLite computes in its kernels' Prepare, done once on the host.

Every function here reproduces the float arithmetic of TFLite's reference Prepare step exactly
(float32 where TFLite multiplies floats, float64 where it widens first), because a multiplier
that differs in its last bit changes output bytes. The device then does no floating point.
"""

import math

import numpy as np

INT8_MIN, INT8_MAX = -128, 127


def _round_half_away(x):
    """C's std::round: halves round away from zero (Python's round() is banker's)."""
    return math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)


def quantize_multiplier(real_multiplier):
    """TFLite's QuantizeMultiplier (double rounding build): ``real = m * 2**(shift - 31)``.

    Returns ``(m, shift)`` with ``m`` in ``[2**30, 2**31)`` (or 0) and ``shift`` positive for a
    left shift.
    """
    real_multiplier = float(real_multiplier)
    if real_multiplier == 0.0:
        return 0, 0
    q, shift = math.frexp(real_multiplier)
    q_fixed = _round_half_away(q * (1 << 31))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return int(q_fixed), int(shift)


def _f32(x):
    return float(np.float32(x))


def conv_multipliers(input_scale, filter_scales, output_scale, out_channels):
    """Per-channel (multiplier, shift) lists as CONV_2D / DEPTHWISE_CONV_2D compute them.

    ``PopulateConvolutionQuantizationParams``: ``double(input_scale) * double(filter_scale) /
    double(output_scale)`` per channel; a per-tensor filter repeats its one scale.
    """
    scales = list(filter_scales)
    if len(scales) == 1:
        scales = scales * out_channels
    mults, shifts = [], []
    for s in scales:
        m, sh = quantize_multiplier(_f32(input_scale) * _f32(s) / _f32(output_scale))
        mults.append(m)
        shifts.append(sh)
    return mults, shifts


def fully_connected_multipliers(input_scale, filter_scales, output_scale, out_channels):
    """(multiplier, shift) lists as FULLY_CONNECTED computes them.

    Per-tensor FC uses ``GetQuantizedConvolutionMultipler``, which multiplies the two scales in
    float32 before widening; per-channel FC widens each scale first, as CONV_2D does.
    """
    scales = list(filter_scales)
    if len(scales) > 1:
        return conv_multipliers(input_scale, scales, output_scale, out_channels)
    product = float(np.float32(input_scale) * np.float32(scales[0]))
    m, sh = quantize_multiplier(product / _f32(output_scale))
    return [m] * out_channels, [sh] * out_channels


def activation_range(activation, output_scale, output_zero_point):
    """CalculateActivationRangeQuantized for an int8 output; ``activation`` is the fused
    activation name: NONE, RELU, RELU6 or RELU_N1_TO_1."""

    def quantize(value):
        # float32 division, then std::round, as TFLite's Quantize helper.
        with np.errstate(over="ignore"):
            q = np.float32(value) / np.float32(output_scale)
        # A scale so small the quotient overflows float32 saturates (the clamp to int8 that
        # follows gives the same range as any huge value would).
        q = min(max(float(q), -2.0 ** 31), 2.0 ** 31 - 1)
        return int(output_zero_point) + int(_round_half_away(q))

    if activation == "NONE":
        return INT8_MIN, INT8_MAX
    if activation == "RELU":
        return max(INT8_MIN, quantize(0.0)), INT8_MAX
    if activation == "RELU6":
        return max(INT8_MIN, quantize(0.0)), min(INT8_MAX, quantize(6.0))
    if activation == "RELU_N1_TO_1":
        return max(INT8_MIN, quantize(-1.0)), min(INT8_MAX, quantize(1.0))
    from ..errors import PackagerError

    raise PackagerError(f"fused activation {activation} is not supported",
                        "use NONE, RELU, RELU6 or RELU_N1_TO_1")


def add_params(scale1, scale2, output_scale):
    """ADD's int8 rescaling (left_shift 20): returns a dict of multipliers and shifts."""
    left_shift = 20
    twice_max = 2.0 * float(max(np.float32(scale1), np.float32(scale2)))
    real1 = _f32(scale1) / twice_max
    real2 = _f32(scale2) / twice_max
    real_out = twice_max / ((1 << left_shift) * _f32(output_scale))
    m1, s1 = quantize_multiplier(real1)
    m2, s2 = quantize_multiplier(real2)
    mo, so = quantize_multiplier(real_out)
    return {"left_shift": left_shift, "input1_mult": m1, "input1_shift": s1,
            "input2_mult": m2, "input2_shift": s2, "output_mult": mo, "output_shift": so}


SOFTMAX_SCALED_DIFF_INTEGER_BITS = 5


def softmax_params(beta, input_scale):
    """PreprocessSoftmaxScaling and CalculateInputRadius for int8 softmax.

    Returns ``(input_beta_multiplier, input_beta_left_shift, diff_min)``.
    """
    bits = SOFTMAX_SCALED_DIFF_INTEGER_BITS
    real = min(_f32(beta) * _f32(input_scale) * (1 << (31 - bits)), (1 << 31) - 1.0)
    if not real > 1.0:
        # TFLite's QuantizeMultiplierGreaterThanOne asserts here.
        from ..errors import PackagerError

        raise PackagerError(f"softmax beta {beta} x input scale {input_scale} is too small "
                            "(TFLite needs beta * scale > 2**-26)", "check the model's softmax")
    mult, left_shift = quantize_multiplier(real)
    radius = math.floor(1.0 * ((1 << bits) - 1) * (1 << (31 - bits)) / (1 << left_shift))
    return mult, left_shift, -int(radius)


def requantize_params(input_scale, output_scale):
    """QUANTIZE int8 -> int8: ``double(input_scale) / double(output_scale)``."""
    return quantize_multiplier(_f32(input_scale) / _f32(output_scale))


def float32_bits(value):
    """The IEEE-754 bits of ``float32(value)`` as a signed int32 (how a capsule stores it)."""
    return int(np.array([value], dtype="<f4").view("<i4")[0])


def out_size(padding, in_size, filter_size, stride, dilation):
    """TFLite's ComputeOutSize for SAME or VALID padding."""
    effective = (filter_size - 1) * dilation + 1
    if padding == "SAME":
        return (in_size + stride - 1) // stride
    return (in_size + stride - effective) // stride


def pad_before(stride, dilation, in_size, filter_size, out_size_):
    """TFLite's ComputePadding: padding before the first row/column (never negative)."""
    effective = (filter_size - 1) * dilation + 1
    pad = ((out_size_ - 1) * stride + effective - in_size) // 2
    return max(pad, 0)
