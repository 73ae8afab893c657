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
_WORDS = const(8)  # one record per lane
# Words 0..7: the lanes' biases, which the kernels start their accumulators from. Then lane
# k's record at 8 + 8 * k: the multiplier in limbs of 10, 10 and 11 bits, half of the right
# shift's divisor (or 0), 1 if it shifts right, the right shift, the left shift, multiplier.
PARAMS = array("i", bytes(4 * (GROUP + _WORDS * GROUP)))
# Accumulators of CHUNK pixels x GROUP lanes, pixel-major.
ACCS = array("i", bytes(4 * CHUNK * GROUP))


@micropython.viper
def prepare(bias, mp: ptr32, sp: ptr32, oc0: int, n: int):
    """Fill the biases and records of lanes 0..n-1 from output channels oc0.. (once per
    group); lanes past n get bias 0."""
    r = ptr32(PARAMS)
    sign = 1
    sign <<= 31
    for k in range(GROUP):
        r[k] = 0
    for k in range(n):
        oc = oc0 + k
        if bias:
            r[k] = int(ptr32(bias)[oc])
        m = int(mp[oc])
        sh = (int(sp[oc]) ^ sign) - sign
        rs = 0 - sh if sh < 0 else 0
        j = GROUP + k * _WORDS
        r[j] = m & 1023
        r[j + 1] = (m >> 10) & 1023
        r[j + 2] = m >> 20
        r[j + 3] = 1 << (rs - 1) if rs > 0 else 0
        r[j + 4] = 1 if rs > 0 else 0
        r[j + 5] = rs
        r[j + 6] = sh if sh > 0 else 0
        r[j + 7] = m


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
        r = ptr32(base + 4 * (GROUP + k * _WORDS))
        ai = k
        oi = o + k
        for _p in range(count):
            # ptr32 loads are zero-extended on 64-bit ports: sign-extend (the kernels
            # stored the sum, bias included, modulo 2**32).
            v = ((int(accs[ai]) ^ sign) - sign) << int(r[6])
            if (v + 1048575) >> 21 == 0:
                # -2**20 < v <= 2**20: t = floor(v * m / 2**20) from the multiplier's three
                # limbs (no product leaves int32), and 2**30 / 2**20 = 1024 rounds SRDHM.
                # Then the rounding right shift, ties away from zero: add half, less one
                # when v < 0 and it shifts ((v >> 31) & 1); no overflow as |v| <= 2**20.
                t = int(r[0]) * v
                t = (t >> 10) + int(r[1]) * v
                v = ((t >> 10) + int(r[2]) * v + 1024) >> 11
                v = (v + int(r[3]) - ((v >> 31) & int(r[4]))) >> int(r[5])
            else:
                m = int(r[7])
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
                rs = int(r[5])
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
