# Pure-Python int8 kernels: the living spec. The viper and C tiers must produce the same
# bytes. Arithmetic is TFLite's reference integer kernels; argument blocks are in
# docs/capsule-format.md. Buffers: int8 arrays/memoryviews ('b'), int32 ('i'), float32 ('f').
# Kernels never allocate (but for the float I/O ops, whose floats MicroPython boxes) and
# never check sizes: the loader did that.
import struct
from array import array

_INT32_MIN = -2147483648
_INT32_MAX = 2147483647


def srdhm(a, b):
    # gemmlowp SaturatingRoundingDoublingHighMul: (a * b * 2) >> 32, rounded half away.
    if a == b == _INT32_MIN:
        return _INT32_MAX
    ab = a * b
    if ab >= 0:
        return (ab + 0x40000000) >> 31
    return -((0x3FFFFFFF - ab) >> 31)


def rdbp(x, exponent):
    # gemmlowp RoundingDivideByPOT: x / 2**exponent rounded to nearest, ties away from zero.
    mask = (1 << exponent) - 1
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if (x & mask) > threshold else 0)


def mbqm(x, multiplier, shift):
    # TFLite MultiplyByQuantizedMultiplier (double rounding); shift > 0 shifts left.
    if shift > 0:
        return srdhm(x << shift, multiplier)
    return rdbp(srdhm(x, multiplier), -shift)


def conv_2d(inp, filt, bias, mult, shift, out, args):
    (batches, in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w, s_h, s_w, d_h, d_w, pad_t,
     pad_l, in_off, out_off, lo, hi) = args
    filter_size = k_h * k_w * in_c
    o = 0
    for b in range(batches):
        for oy in range(out_h):
            y0 = oy * s_h - pad_t
            for ox in range(out_w):
                x0 = ox * s_w - pad_l
                for oc in range(out_c):
                    acc = 0
                    f_oc = oc * filter_size
                    for ky in range(k_h):
                        y = y0 + ky * d_h
                        if y < 0 or y >= in_h:
                            continue
                        for kx in range(k_w):
                            x = x0 + kx * d_w
                            if x < 0 or x >= in_w:
                                continue
                            i = ((b * in_h + y) * in_w + x) * in_c
                            f = f_oc + (ky * k_w + kx) * in_c
                            for c in range(in_c):
                                acc += (inp[i + c] + in_off) * filt[f + c]
                    if bias is not None:
                        acc += bias[oc]
                    acc = mbqm(acc, mult[oc], shift[oc]) + out_off
                    out[o] = lo if acc < lo else (hi if acc > hi else acc)
                    o += 1


def depthwise_conv_2d(inp, filt, bias, mult, shift, out, args):
    (batches, in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w, s_h, s_w, d_h, d_w, pad_t,
     pad_l, in_off, out_off, lo, hi, depth_mult) = args
    o = 0
    for b in range(batches):
        for oy in range(out_h):
            y0 = oy * s_h - pad_t
            for ox in range(out_w):
                x0 = ox * s_w - pad_l
                for ic in range(in_c):
                    for m in range(depth_mult):
                        oc = ic * depth_mult + m
                        acc = 0
                        for ky in range(k_h):
                            y = y0 + ky * d_h
                            if y < 0 or y >= in_h:
                                continue
                            for kx in range(k_w):
                                x = x0 + kx * d_w
                                if x < 0 or x >= in_w:
                                    continue
                                acc += ((inp[((b * in_h + y) * in_w + x) * in_c + ic] + in_off)
                                        * filt[(ky * k_w + kx) * out_c + oc])
                        if bias is not None:
                            acc += bias[oc]
                        acc = mbqm(acc, mult[oc], shift[oc]) + out_off
                        out[o] = lo if acc < lo else (hi if acc > hi else acc)
                        o += 1


def fully_connected(inp, filt, bias, mult, shift, out, args):
    batches, depth, out_c, in_off, f_off, out_off, lo, hi = args
    o = 0
    for b in range(batches):
        i0 = b * depth
        for oc in range(out_c):
            f0 = oc * depth
            acc = 0
            for d in range(depth):
                acc += (inp[i0 + d] + in_off) * (filt[f0 + d] + f_off)
            if bias is not None:
                acc += bias[oc]
            acc = mbqm(acc, mult[oc], shift[oc]) + out_off
            out[o] = lo if acc < lo else (hi if acc > hi else acc)
            o += 1


def _pool(inp, out, args, average):
    (batches, in_h, in_w, chans, out_h, out_w, f_h, f_w, s_h, s_w, pad_t, pad_l, lo,
     hi) = args
    o = 0
    for b in range(batches):
        for oy in range(out_h):
            y0 = oy * s_h - pad_t
            ky0 = -y0 if y0 < 0 else 0
            ky1 = in_h - y0 if in_h - y0 < f_h else f_h
            for ox in range(out_w):
                x0 = ox * s_w - pad_l
                kx0 = -x0 if x0 < 0 else 0
                kx1 = in_w - x0 if in_w - x0 < f_w else f_w
                for c in range(chans):
                    acc = 0 if average else -128
                    count = 0
                    for ky in range(ky0, ky1):
                        i = ((b * in_h + y0 + ky) * in_w + x0) * chans + c
                        for kx in range(kx0, kx1):
                            v = inp[i + kx * chans]
                            if average:
                                acc += v
                            elif v > acc:
                                acc = v
                            count += 1
                    if average:
                        # C integer division truncates toward zero; no taps gives 0.
                        if count == 0:
                            acc = 0
                        elif acc > 0:
                            acc = (acc + count // 2) // count
                        else:
                            acc = -((count // 2 - acc) // count)
                    out[o] = lo if acc < lo else (hi if acc > hi else acc)
                    o += 1


def average_pool_2d(inp, out, args):
    _pool(inp, out, args, True)


def max_pool_2d(inp, out, args):
    _pool(inp, out, args, False)


def add(a, b, out, args):
    size, off1, off2, out_off, left, m1, s1, m2, s2, mo, so, lo, hi = args
    for i in range(size):
        x = mbqm((a[i] + off1) << left, m1, s1) + mbqm((b[i] + off2) << left, m2, s2)
        x = mbqm(x, mo, so) + out_off
        out[i] = lo if x < lo else (hi if x > hi else x)


def reshape(inp, out, args):
    for i in range(args[0]):
        out[i] = inp[i]


# -- softmax: gemmlowp fixed point, as TFLite's reference quantized Softmax --------------

def _saturating_shl(x, exponent):
    limit = (1 << (31 - exponent)) - 1
    if x > limit:
        return _INT32_MAX
    if x < -limit:
        return _INT32_MIN
    return x << exponent


def _exp_on_interval(a):
    # exp(a) for a in [-1/4, 0), Q0.31 in and out: Taylor expansion around -1/8.
    x = a + (1 << 28)
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    poly = rdbp(srdhm(rdbp(x4, 2) + x3, 715827883) + x2, 1)
    return 1895147668 + srdhm(1895147668, x + poly)


_EXP_BARREL = ((24, 1672461947), (25, 1302514674), (26, 790015084), (27, 290630308),
               (28, 39332535), (29, 720401), (30, 242))


def exp_on_negative_values(a):
    # exp(a) for a <= 0; a is Q5.26, result Q0.31.
    quarter = 1 << 24
    a_mod = (a & (quarter - 1)) - quarter
    result = _exp_on_interval(_saturating_shl(a_mod, 5))
    remainder = a_mod - a
    for bit, multiplier in _EXP_BARREL:
        if remainder & (1 << bit):
            result = srdhm(result, multiplier)
    return _INT32_MAX if a == 0 else result


def _one_over_one_plus_x(a):
    # 1 / (1 + a) for a in [0, 1), Q0.31 in and out: Newton-Raphson in Q2.29.
    s = a + _INT32_MAX
    half_denominator = (s + 1) // 2 if s >= 0 else -((1 - s) // 2)
    x = 1515870810 + srdhm(half_denominator, -1010580540)
    for _ in range(3):
        x += _saturating_shl(srdhm(x, (1 << 29) - srdhm(half_denominator, x)), 2)
    return _saturating_shl(x, 1)


def softmax(inp, out, args):
    rows, depth, beta_mult, beta_shift, diff_min = args
    for r in range(rows):
        base = r * depth
        top = -128
        for c in range(depth):
            if inp[base + c] > top:
                top = inp[base + c]
        total = 0
        for c in range(depth):
            diff = inp[base + c] - top
            if diff >= diff_min:
                total += rdbp(exp_on_negative_values(srdhm(diff << beta_shift, beta_mult)), 12)
        # GetReciprocal: normalise the Q12.19 sum to (1, 2), then 1/x.
        headroom = 0
        while not (total << headroom) & 0x80000000:
            headroom += 1
        scale = _one_over_one_plus_x(((total << headroom) & 0xFFFFFFFF) - 0x80000000)
        exponent = 12 - headroom + 23
        for c in range(depth):
            diff = inp[base + c] - top
            if diff >= diff_min:
                e = exp_on_negative_values(srdhm(diff << beta_shift, beta_mult))
                v = rdbp(srdhm(scale, e), exponent) - 128
                out[base + c] = -128 if v < -128 else (127 if v > 127 else v)
            else:
                out[base + c] = -128


# -- float edges ------------------------------------------------------------------------

def _f32(bits):
    return struct.unpack("<f", struct.pack("<i", bits))[0]


def quantize(inp, out, args):
    mode, size, p2, p3, p4, p5 = args
    if mode == 1:
        for i in range(size):
            v = mbqm(inp[i] - p2, p4, p5) + p3
            out[i] = -128 if v < -128 else (127 if v > 127 else v)
        return
    zero_point, scale = p2, _f32(p3)
    rounded = array("f", [0.0])
    for i in range(size):
        # float32 division (double then rounded to float32 is the same), then std::round.
        rounded[0] = inp[i] / scale
        v = rounded[0]
        if not -2147483648.0 < v < 2147483648.0:
            v = 0.0 if v != v else (-2147483648.0 if v < 0 else 2147483647.0)
        q = int(v)
        if v - q >= 0.5:
            q += 1
        elif q - v >= 0.5:
            q -= 1
        q += zero_point
        out[i] = -128 if q < -128 else (127 if q > 127 else q)


def dequantize(inp, out, args):
    size, zero_point, bits = args
    scale = _f32(bits)
    for i in range(size):
        out[i] = scale * (inp[i] - zero_point)
