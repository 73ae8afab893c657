# Viper FULLY_CONNECTED for inputs of up to 1,152 values: the same bytes as kernels_py (the
# spec). Portability rules and the 15-bit-limb SaturatingRoundingDoublingHighMul: see
# kernels_viper.py, which keeps the general kernel for deeper inputs.
#
# Each input row is first written to _SCRATCH as x' = x + input offset in int32, so the two
# register locals (see viper_conv.py) are the walking filter and x' pointers and a
# multiply-accumulate is two loads with constant offsets, one multiply and the accumulator's
# load and store: sum(x' * (w + f)) = sum(x' * (w + 128)) + (f - 128) * sum(x'), and
# w + 128 is the unsigned byte ^ 128. On 64-bit ports the ptr32 loads of negative x' are
# zero-extended; the sum is right modulo 2**32, and a ptr32 store and load (_SLOT) brings it
# back to int32 before the requantization.
from array import array

import micropython
from micropython import const

from .viper_conv import _SCRATCH

_SCRATCH_WORDS = const(1152)  # len(_SCRATCH) // 4
_SLOT = array("i", [0])


def takes(args):
    """Whether fully_connected here takes these arguments (depth <= 1,152)."""
    return args[1] <= _SCRATCH_WORDS


def fully_connected(ip, fp, bias, mp, sp, op, args):
    _fully_connected(ip, _SLOT, ip, fp, bias, mp, sp, op, args)


@micropython.viper
def _fully_connected(w: ptr8, xv: ptr32, ip: ptr8, fp: ptr8, bias, mp: ptr32, sp: ptr32,
                     op: ptr8, args):
    # w and xv lead the parameters, given dummy values, so that they are the register locals.
    xs = ptr32(_SCRATCH)
    slot = ptr32(_SLOT)
    bp = mp
    has_bias = 0
    if bias:
        bp = ptr32(bias)
        has_bias = 1
    sign = 1
    sign <<= 31
    batches = int(args[0])
    depth = int(args[1])
    out_c = int(args[2])
    in_off = int(args[3]) - 128
    f_off = int(args[4]) - 128
    out_off = int(args[5])
    lo = int(args[6])
    hi = int(args[7])
    o = 0
    for b in range(batches):
        row = ptr8(int(ip) + b * depth)
        x_sum = 0
        for d in range(depth):
            v = (int(row[d]) ^ 128) + in_off
            xs[d] = v
            x_sum += v
        x_sum *= f_off
        end = int(xs) + 4 * depth
        end8 = end - 28
        for oc in range(out_c):
            acc = x_sum
            if has_bias:
                acc += (int(bp[oc]) ^ sign) - sign
            w = ptr8(int(fp) + oc * depth)
            xv = xs
            while int(xv) < end8:
                acc = (int(w[0]) ^ 128) * int(xv[0]) + acc
                acc = (int(w[1]) ^ 128) * int(xv[1]) + acc
                acc = (int(w[2]) ^ 128) * int(xv[2]) + acc
                acc = (int(w[3]) ^ 128) * int(xv[3]) + acc
                acc = (int(w[4]) ^ 128) * int(xv[4]) + acc
                acc = (int(w[5]) ^ 128) * int(xv[5]) + acc
                acc = (int(w[6]) ^ 128) * int(xv[6]) + acc
                acc = (int(w[7]) ^ 128) * int(xv[7]) + acc
                w = ptr8(int(w) + 8)
                xv = ptr32(int(xv) + 32)
            while int(xv) < end:
                acc = (int(w[0]) ^ 128) * int(xv[0]) + acc
                w = ptr8(int(w) + 1)
                xv = ptr32(int(xv) + 4)
            slot[0] = acc
            acc = (int(slot[0]) ^ sign) - sign
            # acc = MultiplyByQuantizedMultiplier(acc, mult[oc], shift[oc]), as viper_requant
            m = int(mp[oc])
            sh = (int(sp[oc]) ^ sign) - sign
            rs = 0
            if sh > 0:
                acc <<= sh
            else:
                rs = 0 - sh
            if (acc + 1048575) >> 21 == 0:
                t = (m & 1023) * acc
                t = (t >> 10) + ((m >> 10) & 1023) * acc
                acc = ((t >> 10) + (m >> 20) * acc + 1024) >> 11
                if rs > 0:
                    acc = (acc + (1 << (rs - 1)) - ((acc >> 31) & 1)) >> rs
            else:
                al = acc & 0x7FFF
                ah = acc >> 15
                ml = m & 0x7FFF
                mh = m >> 15
                p1 = ah * ml
                p2 = al * mh
                q = 1 + (p1 >> 15) + (p2 >> 15) + (
                    ((al * ml >> 15) + (p1 & 0x7FFF) + (p2 & 0x7FFF)) >> 15)
                acc = (ah * (mh >> 1) + (mh & 1) * (ah >> 1) + (q >> 1)
                       + (((ah & mh & 1) + (q & 1)) >> 1))
                if rs > 0:
                    mask = (1 << rs) - 1
                    limit = mask >> 1
                    if acc < 0:
                        limit += 1
                    rem = acc & mask
                    acc >>= rs
                    if rem > limit:
                        acc += 1
            acc += out_off
            op[o] = lo if acc < lo else (hi if acc > hi else acc)
            o += 1
