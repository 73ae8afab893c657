# numpy int8 kernels for host-side simulation on CPython: vectorised, int64 arithmetic, the
# same bytes as kernels_py (the spec). On MicroPython ``import numpy`` fails with ImportError
# and tiers.py does not offer this tier.
#
# int64 holds every product the spec forms as long as the spec's own int32 assumptions hold
# (accumulators and ``acc << shift`` inside int32, as in TFLite's C kernels).
import numpy as np

from . import kernels_py

_INT32_MIN = -2147483648
_INT32_MAX = 2147483647


def _view(buf, dtype, count):
    # A numpy view of the first ``count`` items of an array/memoryview (no copy).
    return np.frombuffer(buf, dtype=dtype, count=count)


def _srdhm(a, b):
    # (a * b + 2**30) >> 31 is gemmlowp's rounding for both signs (see kernels_py.srdhm).
    return np.where((a == _INT32_MIN) & (b == _INT32_MIN), _INT32_MAX,
                    (a * b + (1 << 30)) >> 31)


def _rdbp(x, exponent):
    mask = (np.int64(1) << exponent) - 1
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + ((x & mask) > threshold)


def _mbqm(x, mult, shift):
    # MultiplyByQuantizedMultiplier with per-element (broadcast) multipliers and shifts.
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    return _rdbp(_srdhm(x << left, mult), right)


def _store(out, values, lo, hi):
    out_view = _view(out, np.int8, values.size)
    out_view[:] = np.clip(values, lo, hi).reshape(-1)


def _channel_params(bias, mult, shift, out_c):
    m = _view(mult, np.int32, out_c).astype(np.int64)
    s = _view(shift, np.int32, out_c).astype(np.int64)
    b = 0 if bias is None else _view(bias, np.int32, out_c).astype(np.int64)
    return b, m, s


def _taps(size_out, stride, pad, k, dilation, size_in):
    # Input coordinate of every (output position, tap), clipped into range, and which are real.
    pos = (np.arange(size_out) * stride - pad)[:, None] + np.arange(k)[None, :] * dilation
    valid = (pos >= 0) & (pos < size_in)
    return np.clip(pos, 0, size_in - 1), valid


def _windows(x, out_h, out_w, k_h, k_w, s_h, s_w, d_h, d_w, pad_t, pad_l):
    # x [B, H, W, C] -> windows [B, OH, OW, KH, KW, C] and the in-bounds mask [OH, OW, KH, KW].
    _, in_h, in_w, _ = x.shape
    ys, vy = _taps(out_h, s_h, pad_t, k_h, d_h, in_h)
    xs, vx = _taps(out_w, s_w, pad_l, k_w, d_w, in_w)
    win = x[:, ys[:, None, :, None], xs[None, :, None, :], :]
    valid = vy[:, None, :, None] & vx[None, :, None, :]
    return win, valid


def conv_2d(inp, filt, bias, mult, shift, out, args):
    (batches, in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w, s_h, s_w, d_h, d_w, pad_t,
     pad_l, in_off, out_off, lo, hi) = args
    x = _view(inp, np.int8, batches * in_h * in_w * in_c).reshape(batches, in_h, in_w, in_c)
    w = _view(filt, np.int8, out_c * k_h * k_w * in_c).astype(np.int64)
    win, valid = _windows(x.astype(np.int64) + in_off, out_h, out_w, k_h, k_w, s_h, s_w,
                          d_h, d_w, pad_t, pad_l)
    # Out-of-bounds taps contribute nothing: zero their (input + offset).
    win = win * valid[None, :, :, :, :, None]
    acc = win.reshape(batches * out_h * out_w, -1) @ w.reshape(out_c, -1).T
    b, m, s = _channel_params(bias, mult, shift, out_c)
    _store(out, _mbqm(acc + b, m, s) + out_off, lo, hi)


def depthwise_conv_2d(inp, filt, bias, mult, shift, out, args):
    (batches, in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w, s_h, s_w, d_h, d_w, pad_t,
     pad_l, in_off, out_off, lo, hi, depth_mult) = args
    x = _view(inp, np.int8, batches * in_h * in_w * in_c).reshape(batches, in_h, in_w, in_c)
    w = _view(filt, np.int8, k_h * k_w * out_c).astype(np.int64).reshape(k_h, k_w, out_c)
    win, valid = _windows(x.astype(np.int64) + in_off, out_h, out_w, k_h, k_w, s_h, s_w,
                          d_h, d_w, pad_t, pad_l)
    win = win * valid[None, :, :, :, :, None]
    # Output channel ic * depth_mult + m reads input channel ic.
    win = np.repeat(win, depth_mult, axis=-1)
    acc = np.einsum("bhwijo,ijo->bhwo", win, w)
    b, m, s = _channel_params(bias, mult, shift, out_c)
    _store(out, _mbqm(acc + b, m, s) + out_off, lo, hi)


def fully_connected(inp, filt, bias, mult, shift, out, args):
    batches, depth, out_c, in_off, f_off, out_off, lo, hi = args
    x = _view(inp, np.int8, batches * depth).astype(np.int64).reshape(batches, depth)
    w = _view(filt, np.int8, out_c * depth).astype(np.int64).reshape(out_c, depth)
    acc = (x + in_off) @ (w + f_off).T
    b, m, s = _channel_params(bias, mult, shift, out_c)
    _store(out, _mbqm(acc + b, m, s) + out_off, lo, hi)


def _pool(inp, out, args, average):
    (batches, in_h, in_w, chans, out_h, out_w, f_h, f_w, s_h, s_w, pad_t, pad_l, lo,
     hi) = args
    x = _view(inp, np.int8, batches * in_h * in_w * chans).astype(np.int64)
    win, valid = _windows(x.reshape(batches, in_h, in_w, chans), out_h, out_w, f_h, f_w,
                          s_h, s_w, 1, 1, pad_t, pad_l)
    mask = valid[None, :, :, :, :, None]
    if not average:
        _store(out, np.where(mask, win, -128).max(axis=(3, 4)), lo, hi)
        return
    total = np.where(mask, win, 0).sum(axis=(3, 4))
    count = valid.sum(axis=(2, 3))[None, :, :, None]
    half = count // 2
    safe = np.maximum(count, 1)
    # C division truncates toward zero; a window without taps gives 0.
    avg = np.where(total > 0, (total + half) // safe, -((half - total) // safe))
    _store(out, np.where(count == 0, 0, avg), lo, hi)


def average_pool_2d(inp, out, args):
    _pool(inp, out, args, True)


def max_pool_2d(inp, out, args):
    _pool(inp, out, args, False)


def add(a, b, out, args):
    size, off1, off2, out_off, left, m1, s1, m2, s2, mo, so, lo, hi = args
    x = _view(a, np.int8, size).astype(np.int64)
    y = _view(b, np.int8, size).astype(np.int64)
    total = (_mbqm((x + off1) << left, np.int64(m1), np.int64(s1))
             + _mbqm((y + off2) << left, np.int64(m2), np.int64(s2)))
    _store(out, _mbqm(total, np.int64(mo), np.int64(so)) + out_off, lo, hi)


def reshape(inp, out, args):
    n = args[0]
    _view(out, np.uint8, n)[:] = _view(inp, np.uint8, n)


# -- softmax: kernels_py's gemmlowp fixed point, element-wise over int64 arrays -------------

def _saturating_shl(x, exponent):
    limit = (1 << (31 - exponent)) - 1
    return np.where(x > limit, _INT32_MAX, np.where(x < -limit, _INT32_MIN, x << exponent))


def _exp_on_interval(a):
    x = a + (1 << 28)
    x2 = _srdhm(x, x)
    x3 = _srdhm(x2, x)
    x4 = _srdhm(x2, x2)
    poly = _rdbp(_srdhm(_rdbp(x4, 2) + x3, np.int64(715827883)) + x2, 1)
    return 1895147668 + _srdhm(np.int64(1895147668), x + poly)


def _exp_on_negative_values(a):
    quarter = 1 << 24
    a_mod = (a & (quarter - 1)) - quarter
    result = _exp_on_interval(_saturating_shl(a_mod, 5))
    remainder = a_mod - a
    for bit, multiplier in kernels_py._EXP_BARREL:
        result = np.where(remainder & (1 << bit), _srdhm(result, np.int64(multiplier)), result)
    return np.where(a == 0, _INT32_MAX, result)


def softmax(inp, out, args):
    rows, depth, beta_mult, beta_shift, diff_min = args
    x = _view(inp, np.int8, rows * depth).astype(np.int64).reshape(rows, depth)
    diff = x - np.maximum(x.max(axis=1, keepdims=True), -128)
    used = diff >= diff_min
    # Unused differences may be too large to scale; give them 0 (their exp is not used).
    scaled = _srdhm(np.where(used, diff, 0) << beta_shift, np.int64(beta_mult))
    exps = _exp_on_negative_values(scaled)
    totals = np.where(used, _rdbp(exps, 12), 0).sum(axis=1)
    result = np.full((rows, depth), -128, np.int64)
    for r in range(rows):
        # GetReciprocal once per row, with the spec's scalar fixed point.
        total = int(totals[r])
        headroom = 0
        while not (total << headroom) & 0x80000000:
            headroom += 1
        scale = kernels_py._one_over_one_plus_x(((total << headroom) & 0xFFFFFFFF) - 0x80000000)
        values = _rdbp(_srdhm(np.int64(scale), exps[r]), 12 - headroom + 23) - 128
        result[r] = np.where(used[r], np.clip(values, -128, 127), -128)
    _store(out, result, -128, 127)


# -- float edges: numpy float32 arithmetic is the spec's ------------------------------------

def quantize(inp, out, args):
    mode, size, p2, p3, p4, p5 = args
    if mode == 1:
        x = _view(inp, np.int8, size).astype(np.int64)
        _store(out, _mbqm(x - p2, np.int64(p4), np.int64(p5)) + p3, -128, 127)
        return
    scale = np.int32(p3).view(np.float32)
    with np.errstate(all="ignore"):
        v = _view(inp, np.float32, size) / scale
        # std::round (halves away from zero) of the float32 quotient, saturated to int32.
        rounded = np.where(np.isnan(v), 0.0,
                           np.clip(np.trunc(v.astype(np.float64) + np.copysign(0.5, v)),
                                   _INT32_MIN, _INT32_MAX))
    # trunc(v + 0.5) in float64 is exact for float32 v, so it equals the spec's round.
    _store(out, rounded.astype(np.int64) + p2, -128, 127)


def dequantize(inp, out, args):
    size, zero_point, bits = args
    scale = np.int32(bits).view(np.float32)
    x = _view(inp, np.int8, size).astype(np.int32) - zero_point
    # The spec multiplies in double and stores into a float32 array: same as float64 here.
    _view(out, np.float32, size)[:] = (np.float64(scale) * x).astype(np.float32)
