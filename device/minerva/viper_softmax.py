# Viper int8 SOFTMAX: kernels_py's gemmlowp fixed point, the same bytes, allocation-free on a
# 32-bit board. The fixed-point values reach 2**31, which a board boxes into a heap integer
# whenever one crosses a function call; so operands and results of the shared helpers travel
# through the int32 scratch array _R, and constants of 2**30 or more (not viper literals on a
# 32-bit port) live in _K. Portability rules: see kernels_viper.py.
from array import array

import micropython

_K = array("i", (1895147668, 1515870810, -1010580540, 715827883,
                 # exp(-1/4), exp(-1/2), exp(-1), ... exp(-16) in Q0.31, bits 24..30
                 1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242))
_R = array("i", (0, 0, 0, 0))  # srdhm operands/result, exp in/out, beta multiplier


@micropython.viper
def _srdhm():
    # _R[0] = SaturatingRoundingDoublingHighMul(_R[0], _R[1]), both signs (15-bit limbs).
    r = ptr32(_R)
    sign = 1
    sign <<= 31
    a = (int(r[0]) ^ sign) - sign
    m = (int(r[1]) ^ sign) - sign
    if a == m and a == 0 - sign:
        r[0] = sign - 1
        return
    al = a & 0x7FFF
    ah = a >> 15
    ml = m & 0x7FFF
    mh = m >> 15
    p1 = ah * ml
    p2 = al * mh
    q = 1 + (p1 >> 15) + (p2 >> 15) + (((al * ml >> 15) + (p1 & 0x7FFF) + (p2 & 0x7FFF)) >> 15)
    r[0] = (ah * (mh >> 1) + (mh & 1) * (ah >> 1) + (q >> 1)
            + (((ah & mh & 1) + (q & 1)) >> 1))


@micropython.viper
def _exp_on_negative_values():
    # _R[2] = exp(_R[2]) for _R[2] <= 0, Q5.26 in, Q0.31 out; clobbers _R[0:2].
    r = ptr32(_R)
    k = ptr32(_K)
    sign = 1
    sign <<= 31
    a = (int(r[2]) ^ sign) - sign
    if a == 0:
        r[2] = sign - 1
        return
    quarter = 1 << 24
    a_mod = (a & (quarter - 1)) - quarter
    # exp on [-1/4, 0): a_mod << 5 cannot saturate, a_mod being in [-2**24, 0).
    x = (a_mod << 5) + (1 << 28)
    r[0] = x
    r[1] = x
    _srdhm()
    x2 = (int(r[0]) ^ sign) - sign
    r[0] = x2
    r[1] = x
    _srdhm()
    x3 = (int(r[0]) ^ sign) - sign
    r[0] = x2
    r[1] = x2
    _srdhm()
    x4 = (int(r[0]) ^ sign) - sign
    # RoundingDivideByPOT(x4, 2) + x3
    t = (x4 >> 2) + x3
    if (x4 & 3) > (2 if x4 < 0 else 1):
        t += 1
    r[0] = t
    r[1] = k[3]
    _srdhm()
    t = ((int(r[0]) ^ sign) - sign) + x2
    # RoundingDivideByPOT(t, 1)
    poly = t >> 1
    if (t & 1) > (1 if t < 0 else 0):
        poly += 1
    r[0] = k[0]
    r[1] = x + poly
    _srdhm()
    result = int(k[0]) + ((int(r[0]) ^ sign) - sign)
    remainder = a_mod - a
    bit = quarter
    for j in range(7):
        if remainder & bit:
            r[0] = result
            r[1] = k[4 + j]
            _srdhm()
            result = (int(r[0]) ^ sign) - sign
        bit <<= 1
    r[2] = result


@micropython.viper
def _scaled_exp(diff: int, beta_shift: int) -> int:
    # _R[2] = exp(srdhm(diff << beta_shift, _R[3])); the result stays in _R (no boxing).
    r = ptr32(_R)
    r[0] = diff << beta_shift
    r[1] = r[3]
    _srdhm()
    r[2] = r[0]
    _exp_on_negative_values()
    return 0


@micropython.viper
def _reciprocal(total: int) -> int:
    # GetReciprocal of the row sum (Q12.19): _R[2] = 1 / (1 + x) in Q0.31, x the sum
    # normalised to [1, 2) minus 1; returns the headroom used.
    r = ptr32(_R)
    k = ptr32(_K)
    sign = 1
    sign <<= 31
    bit30 = 1 << 29
    bit30 += bit30
    t = total
    headroom = 1
    while (t >> 30) == 0:
        t <<= 1
        headroom += 1
    a = (t - bit30) << 1
    # one_over_one_plus_x_for_x_in_0_1: Newton-Raphson in Q2.29.
    half_den = (a >> 1) + bit30
    r[0] = half_den
    r[1] = k[2]
    _srdhm()
    x = int(k[1]) + ((int(r[0]) ^ sign) - sign)
    for _ in range(3):
        r[0] = half_den
        r[1] = x
        _srdhm()
        r[1] = (1 << 29) - ((int(r[0]) ^ sign) - sign)
        r[0] = x
        _srdhm()
        step = (int(r[0]) ^ sign) - sign
        limit = (1 << 29) - 1
        if step > limit:
            x += sign - 1
        elif step < 0 - limit:
            x += 0 - sign
        else:
            x += step << 2
    limit = bit30 - 1
    if x > limit:
        x = sign - 1
    elif x < 0 - limit:
        x = 0 - sign
    else:
        x <<= 1
    r[2] = x
    return headroom


@micropython.viper
def softmax(ip: ptr8, op: ptr8, args):
    pa = ptr32(args)
    r = ptr32(_R)
    sign = 1
    sign <<= 31
    rows = int(args[0])
    depth = int(args[1])
    r[3] = pa[2]
    beta_shift = int(args[3])
    diff_min = int(args[4])
    for row in range(rows):
        base = row * depth
        top = -128
        for c in range(depth):
            v = (int(ip[base + c]) ^ 128) - 128
            if v > top:
                top = v
        total = 0
        for c in range(depth):
            diff = (int(ip[base + c]) ^ 128) - 128 - top
            if diff >= diff_min:
                _scaled_exp(diff, beta_shift)
                e = (int(r[2]) ^ sign) - sign
                # RoundingDivideByPOT(e, 12)
                total += e >> 12
                if (e & 0xFFF) > (0x800 if e < 0 else 0x7FF):
                    total += 1
        headroom = int(_reciprocal(total))
        scale = (int(r[2]) ^ sign) - sign
        exponent = 35 - headroom
        mask = (1 << exponent) - 1
        for c in range(depth):
            diff = (int(ip[base + c]) ^ 128) - 128 - top
            v = -128
            if diff >= diff_min:
                _scaled_exp(diff, beta_shift)
                r[0] = scale
                r[1] = r[2]
                _srdhm()
                p = (int(r[0]) ^ sign) - sign
                # RoundingDivideByPOT(p, exponent); p >= 0, and p / 2**exponent < 1/2 when
                # exponent >= 32 (only a row sum of 2**30 or more gives one).
                if exponent < 32:
                    v = (p >> exponent) - 128
                    if (p & mask) > (mask >> 1):
                        v += 1
                if v > 127:
                    v = 127
            op[base + c] = v
