# Viper int8 kernels: the same bytes as kernels_py (the spec), compiled to machine code by
# MicroPython's viper emitter. For boards without a native module for their architecture.
#
# Portability rules, because viper ints are machine words (32-bit on boards, 64-bit on the
# unix port) and the same source must give the same bytes on both:
# - a value that is shifted right, masked, compared or divided stays inside int32; values
#   that only meet +, - and * may wrap transiently on a 32-bit board, which is harmless when
#   the final result fits in int32 (arithmetic modulo 2**32);
# - no literal of 2**30 or more (on a board it would not be a small int, and viper would
#   treat it as an object); 2**31 is built at run time as ``sign``;
# - ptr8 loads are unsigned: int8 = (u ^ 128) - 128; ptr32 loads are zero-extended on 64-bit
#   ports: int32 = (u ^ sign) - sign, which is the identity on a 32-bit board.
# SaturatingRoundingDoublingHighMul(a, m) is round_half_up(a * m / 2**31); it is computed
# from 15-bit limbs so that no partial product leaves int32. Its saturating case (a == m ==
# INT32_MIN) cannot occur in conv/FC/requantize (the loader rejects negative multipliers) nor
# in ADD (its operands stay far inside int32); softmax checks for it.
#
# Where TFLite's C is undefined (an accumulator outside int32, or ``acc << shift`` leaving
# int32, which only a hostile capsule makes), kernels_py computes with unbounded ints and this
# tier wraps: outputs may then differ from the spec, but stay clamped and in bounds.
#
# Speed notes (instruction counts under cachegrind on x64): viper keeps only the first two
# locals in registers, so the pointers are the first (typed) parameters; ``x[3]`` on a walking
# pointer costs far fewer instructions than ``x[i + 3]``; ``a[k] = a[k] + v`` fewer than
# ``a[k] += v`` on a pointer. The inner loop is about 30 x64 instructions per tap. The common
# cases go to the faster grouped kernels (viper_conv, viper_depthwise8, viper_fc, with
# viper_requant; what viper makes of Python on Thumb is explained in viper_conv.py); the
# kernels here take the rest (dilated or huge filters, deep fully connected inputs).
import micropython

from . import viper_conv, viper_fc
from .kernels_py import dequantize  # noqa: F401 (float output: MicroPython floats are boxed)
from .viper_depthwise import depthwise_conv_2d  # noqa: F401
from .viper_elementwise import add, average_pool_2d, max_pool_2d, quantize, reshape  # noqa: F401
from .viper_softmax import softmax  # noqa: F401


def conv_2d(ip, fp, bias, mp, sp, op, args):
    # Filters without horizontal dilation of up to 576 taps (all of KWS's and IC's) run
    # eight output channels at a time in viper_conv; the rest here.
    if viper_conv.takes(args):
        viper_conv.conv_2d(ip, fp, bias, mp, sp, op, args)
    else:
        _conv_2d(ip, fp, 0, ip, fp, bias, mp, sp, op, args)


# Viper keeps only its first locals in registers (two in code compiled by mpy-cross, r4 and
# r5 on Thumb; three when a board compiles the source), and parameters come first: the inner
# loop's two walking pointers and the input offset (read once per product) lead the
# parameter list, given dummy values, so that they live in registers rather than in the
# frame.
@micropython.viper
def _conv_2d(x: ptr8, w: ptr8, in_off: int, ip: ptr8, fp: ptr8, bias, mp: ptr32, sp: ptr32,
             op: ptr8, args):
    bp = mp
    has_bias = 0
    if bias:
        bp = ptr32(bias)
        has_bias = 1
    sign = 1
    sign <<= 31
    batches = int(args[0])
    in_h = int(args[1])
    in_w = int(args[2])
    in_c = int(args[3])
    out_h = int(args[4])
    out_w = int(args[5])
    out_c = int(args[6])
    k_h = int(args[7])
    k_w = int(args[8])
    s_h = int(args[9])
    s_w = int(args[10])
    d_h = int(args[11])
    d_w = int(args[12])
    pad_t = int(args[13])
    pad_l = int(args[14])
    in_off = int(args[15]) - 128
    out_off = int(args[16])
    lo = int(args[17])
    hi = int(args[18])
    f_size = k_h * k_w * in_c
    f_row = k_w * in_c
    x_step = d_w * in_c
    y_step = d_h * in_w * in_c
    o = 0
    for b in range(batches):
        for oy in range(out_h):
            y0 = oy * s_h - pad_t
            ky0 = 0
            while ky0 < k_h and y0 + ky0 * d_h < 0:
                ky0 += 1
            ky1 = k_h
            while ky1 > ky0 and y0 + (ky1 - 1) * d_h >= in_h:
                ky1 -= 1
            for ox in range(out_w):
                x0 = ox * s_w - pad_l
                kx0 = 0
                while kx0 < k_w and x0 + kx0 * d_w < 0:
                    kx0 += 1
                kx1 = k_w
                while kx1 > kx0 and x0 + (kx1 - 1) * d_w >= in_w:
                    kx1 -= 1
                # sum(x' * w) = sum(x' * (w ^ 128)) - 128 * sum(x') with x' = input + offset:
                # sum(x') over this window is shared by every output channel, and each tap
                # then costs one subtraction less.
                x_sum = 0
                # With no horizontal dilation the in-bounds taps of one filter row are one
                # contiguous run in both the NHWC input and the [OC, KH, KW, C] filter.
                run = (kx1 - kx0) * in_c
                i_first = ((b * in_h + y0 + ky0 * d_h) * in_w + x0 + kx0 * d_w) * in_c
                f_first = ky0 * f_row + kx0 * in_c
                for ky in range(ky0, ky1):
                    i = ((b * in_h + y0 + ky * d_h) * in_w + x0 + kx0 * d_w) * in_c
                    for _kx in range(kx0, kx1):
                        for c in range(in_c):
                            x_sum += int(ip[i + c]) ^ 128
                        i += x_step
                x_sum = (x_sum + in_off * (ky1 - ky0) * (kx1 - kx0) * in_c) << 7
                for oc in range(out_c):
                    acc = 0 - x_sum
                    i_row = i_first
                    f_row_at = oc * f_size + f_first
                    for _ky in range(ky0, ky1):
                        i = i_row
                        f = f_row_at
                        i_row += y_step
                        f_row_at += f_row
                        if d_w == 1:
                            # Walking pointers read with constant offsets: viper emits far
                            # fewer instructions for x[1] than for x[i + 1].
                            x = ptr8(int(ip) + i)
                            w = ptr8(int(fp) + f)
                            end = int(x) + run
                            end8 = end - 7
                            while int(x) < end8:
                                acc += (((int(x[0]) ^ 128) + in_off) * (int(w[0]) ^ 128)
                                        + ((int(x[1]) ^ 128) + in_off) * (int(w[1]) ^ 128)
                                        + ((int(x[2]) ^ 128) + in_off) * (int(w[2]) ^ 128)
                                        + ((int(x[3]) ^ 128) + in_off) * (int(w[3]) ^ 128)
                                        + ((int(x[4]) ^ 128) + in_off) * (int(w[4]) ^ 128)
                                        + ((int(x[5]) ^ 128) + in_off) * (int(w[5]) ^ 128)
                                        + ((int(x[6]) ^ 128) + in_off) * (int(w[6]) ^ 128)
                                        + ((int(x[7]) ^ 128) + in_off) * (int(w[7]) ^ 128))
                                x = ptr8(int(x) + 8)
                                w = ptr8(int(w) + 8)
                            if int(x) < end - 3:
                                acc += (((int(x[0]) ^ 128) + in_off) * (int(w[0]) ^ 128)
                                        + ((int(x[1]) ^ 128) + in_off) * (int(w[1]) ^ 128)
                                        + ((int(x[2]) ^ 128) + in_off) * (int(w[2]) ^ 128)
                                        + ((int(x[3]) ^ 128) + in_off) * (int(w[3]) ^ 128))
                                x = ptr8(int(x) + 4)
                                w = ptr8(int(w) + 4)
                            while int(x) < end:
                                acc += ((int(x[0]) ^ 128) + in_off) * (int(w[0]) ^ 128)
                                x = ptr8(int(x) + 1)
                                w = ptr8(int(w) + 1)
                        else:
                            for _kx in range(kx0, kx1):
                                for c in range(in_c):
                                    acc += (((int(ip[i + c]) ^ 128) + in_off)
                                            * (int(fp[f + c]) ^ 128))
                                i += x_step
                                f += in_c
                    if has_bias:
                        acc += (int(bp[oc]) ^ sign) - sign
                    # acc = MultiplyByQuantizedMultiplier(acc, mult[oc], shift[oc])
                    m = int(mp[oc])
                    s = (int(sp[oc]) ^ sign) - sign
                    if s > 0:
                        acc <<= s
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
                    if s < 0:
                        mask = (1 << -s) - 1
                        limit = mask >> 1
                        if acc < 0:
                            limit += 1
                        rem = acc & mask
                        acc >>= -s
                        if rem > limit:
                            acc += 1
                    acc += out_off
                    op[o] = lo if acc < lo else (hi if acc > hi else acc)
                    o += 1


def fully_connected(ip, fp, bias, mp, sp, op, args):
    if viper_fc.takes(args):
        viper_fc.fully_connected(ip, fp, bias, mp, sp, op, args)
    else:
        _fully_connected(ip, fp, 0, ip, fp, bias, mp, sp, op, args)


@micropython.viper
def _fully_connected(x: ptr8, w: ptr8, in_off: int, ip: ptr8, fp: ptr8, bias, mp: ptr32,
                     sp: ptr32, op: ptr8, args):
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
        # sum(x' * (w + f_off)) = sum(x' * (w ^ 128)) + (f_off - 128) * sum(x'), and sum(x')
        # over this input row is shared by every output channel.
        x_sum = 0
        row = ptr8(int(ip) + b * depth)
        for d in range(depth):
            x_sum += int(row[d]) ^ 128
        x_sum = (x_sum + in_off * depth) * f_off
        for oc in range(out_c):
            acc = x_sum
            # Walking pointers read with constant offsets (see conv_2d).
            x = row
            w = ptr8(int(fp) + oc * depth)
            end = int(x) + depth
            end8 = end - 7
            while int(x) < end8:
                acc += (((int(x[0]) ^ 128) + in_off) * (int(w[0]) ^ 128)
                        + ((int(x[1]) ^ 128) + in_off) * (int(w[1]) ^ 128)
                        + ((int(x[2]) ^ 128) + in_off) * (int(w[2]) ^ 128)
                        + ((int(x[3]) ^ 128) + in_off) * (int(w[3]) ^ 128)
                        + ((int(x[4]) ^ 128) + in_off) * (int(w[4]) ^ 128)
                        + ((int(x[5]) ^ 128) + in_off) * (int(w[5]) ^ 128)
                        + ((int(x[6]) ^ 128) + in_off) * (int(w[6]) ^ 128)
                        + ((int(x[7]) ^ 128) + in_off) * (int(w[7]) ^ 128))
                x = ptr8(int(x) + 8)
                w = ptr8(int(w) + 8)
            if int(x) < end - 3:
                acc += (((int(x[0]) ^ 128) + in_off) * (int(w[0]) ^ 128)
                        + ((int(x[1]) ^ 128) + in_off) * (int(w[1]) ^ 128)
                        + ((int(x[2]) ^ 128) + in_off) * (int(w[2]) ^ 128)
                        + ((int(x[3]) ^ 128) + in_off) * (int(w[3]) ^ 128))
                x = ptr8(int(x) + 4)
                w = ptr8(int(w) + 4)
            while int(x) < end:
                acc += ((int(x[0]) ^ 128) + in_off) * (int(w[0]) ^ 128)
                x = ptr8(int(x) + 1)
                w = ptr8(int(w) + 1)
            if has_bias:
                acc += (int(bp[oc]) ^ sign) - sign
            # acc = MultiplyByQuantizedMultiplier(acc, mult[oc], shift[oc])
            m = int(mp[oc])
            s = (int(sp[oc]) ^ sign) - sign
            if s > 0:
                acc <<= s
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
            if s < 0:
                mask = (1 << -s) - 1
                limit = mask >> 1
                if acc < 0:
                    limit += 1
                rem = acc & mask
                acc >>= -s
                if rem > limit:
                    acc += 1
            acc += out_off
            op[o] = lo if acc < lo else (hi if acc > hi else acc)
            o += 1
