# Viper requantization of int32 accumulators to int8 (TFLite MultiplyByQuantizedMultiplier,
# output offset, activation clamp) for the grouped viper kernels (viper_conv.py,
# viper_depthwise.py): the same bytes as kernels_py.mbqm. Portability rules and the
# 15-bit-limb SaturatingRoundingDoublingHighMul of the general case: see kernels_viper.py.
#
# Why a separate pass: viper keeps only two locals in registers (see viper_conv.py), which the
# kernels' inner loops need for their data pointers; here they are the accumulator ``v`` and
# the channel's parameter record ``r``, so each of the ~10 parameter reads is one load with a
# constant offset (~110 cycles an output on a Cortex-M0+ against ~390 inline).
from array import array

import micropython
from micropython import const

GROUP = const(8)  # channels (lanes) per pass
CHUNK = const(64)  # pixels per requantization call
_WORDS = const(16)  # one record per lane, 16 words
# Record of lane k: bias, the multiplier's four 8-bit limbs, left shift, right shift, half
# (1 << (right shift - 1), or 0), multiplier, 1 if right shift.
PARAMS = array("i", bytes(4 * _WORDS * GROUP))
# Accumulators of CHUNK pixels x GROUP lanes, pixel-major.
ACCS = array("i", bytes(4 * CHUNK * GROUP))


@micropython.viper
def prepare(bias, mp: ptr32, sp: ptr32, oc0: int, n: int):
    """Fill the records of lanes 0..n-1 from output channels oc0.. (once per group)."""
    r = ptr32(PARAMS)
    sign = 1
    sign <<= 31
    for k in range(n):
        oc = oc0 + k
        b = 0
        if bias:
            b = (int(ptr32(bias)[oc]) ^ sign) - sign
        m = int(mp[oc])
        sh = (int(sp[oc]) ^ sign) - sign
        j = k * _WORDS
        r[j] = b
        r[j + 1] = m & 255
        r[j + 2] = (m >> 8) & 255
        r[j + 3] = (m >> 16) & 255
        r[j + 4] = m >> 24
        r[j + 5] = sh if sh > 0 else 0
        rs = 0 - sh if sh < 0 else 0
        r[j + 6] = rs
        r[j + 7] = 1 << (rs - 1) if rs > 0 else 0
        r[j + 8] = m
        r[j + 9] = 1 if rs > 0 else 0


@micropython.viper
def requant(v: int, r: ptr32, count: int, n: int, out, o: int, stride: int, args: ptr32,
            qa: int):
    """out[o + p * stride + k] for the first ``count`` pixels of ACCS and lanes k < n, with
    the output offset and clamp at args[qa], args[qa + 1], args[qa + 2]."""
    accs = ptr32(ACCS)
    base = int(ptr32(PARAMS))
    dst = ptr8(out)
    sign = 1
    sign <<= 31
    out_off = (int(args[qa]) ^ sign) - sign
    lo = (int(args[qa + 1]) ^ sign) - sign
    hi = (int(args[qa + 2]) ^ sign) - sign
    for k in range(n):
        r = ptr32(base + k * (4 * _WORDS))
        ai = k
        oi = o + k
        for _p in range(count):
            # ptr32 loads are zero-extended on 64-bit ports: sign-extend.
            v = ((int(accs[ai]) ^ sign) - sign) + ((int(r[0]) ^ sign) - sign)
            v = v << int(r[5])
            if (v + 8388608) >> 24 == 0:
                # |v| <= 2**23: t = floor(v * m / 2**24) from four 8-bit limbs of m (no
                # product leaves int32), and 2**30 / 2**24 = 64 rounds SRDHM. Then the
                # rounding right shift, ties away from zero: add half, less one when v < 0
                # and rs > 0 ((v >> 31) & 1); no overflow as |v| < 2**23.
                t = int(r[1]) * v
                t = (t >> 8) + int(r[2]) * v
                t = (t >> 8) + int(r[3]) * v
                v = ((t >> 8) + int(r[4]) * v + 64) >> 7
                v = (v + int(r[7]) - ((v >> 31) & int(r[9]))) >> int(r[6])
            else:
                m = int(r[8])
                al = v & 0x7FFF
                ah = v >> 15
                ml = m & 0x7FFF
                mh = m >> 15
                p1 = ah * ml
                p2 = al * mh
                q = 1 + (p1 >> 15) + (p2 >> 15) + (
                    ((al * ml >> 15) + (p1 & 0x7FFF) + (p2 & 0x7FFF)) >> 15)
                v = (ah * (mh >> 1) + (mh & 1) * (ah >> 1) + (q >> 1)
                     + (((ah & mh & 1) + (q & 1)) >> 1))
                rs = int(r[6])
                if rs > 0:
                    mask = (1 << rs) - 1
                    limit = mask >> 1
                    if v < 0:
                        limit += 1
                    rem = v & mask
                    v >>= rs
                    if rem > limit:
                        v += 1
            v += out_off
            if v < lo:
                v = lo
            if v > hi:
                v = hi
            dst[oi] = v
            ai += GROUP
            oi += stride
