# Viper CONV_2D for filters without horizontal dilation: the same bytes as kernels_py (the
# spec). Portability rules and the 15-bit-limb SaturatingRoundingDoublingHighMul: see
# kernels_viper.py, which keeps the general kernel for what this one does not take.
#
# Why it is shaped like this (viper for Thumb, read from py/emitnative.c and mpy-cross
# -march=armv6m output): only the first two locals live in registers (r4, r5; r6 holds the
# qstr table in .mpy code), every other local is a stack slot, every binary operation moves
# its left operand into r1, and a load goes to r0. So the cheapest multiply-accumulate is
# ``a = int(s[k]) * v + a`` with ``s`` and ``v`` the two register locals: one byte load with a
# constant offset, one multiply and a load and store of ``a`` (8 instructions, 11 cycles on a
# Cortex-M0+; KWS's 1x1 convolutions take 19.7 cycles per MAC in all, 41.3 with the
# per-channel dot product of kernels_viper). Eight output channels share each input byte
# ``v``: their filters are first interleaved into _SCRATCH (byte t * 8 + k is tap t of
# channel k, as w + 128, unsigned, so a byte load needs no sign fix), the accumulators start
# from the biases, and sum(x' * (w + 128)) - 128 * sum(x') goes to viper_requant, 64 pixels
# at a time.
import micropython
from micropython import const

from .viper_requant import ACCS, PARAMS, prepare, requant

_GROUP = const(8)  # viper_requant.GROUP
_CHUNK = const(64)  # viper_requant.CHUNK
_SCRATCH_BYTES = const(4608)
_SCRATCH = bytearray(_SCRATCH_BYTES)


def takes(args):
    """Whether conv_2d here takes a conv with these arguments (no horizontal dilation, a
    filter of at most 576 taps, as IC's 3x3x64)."""
    return args[12] == 1 and args[7] * args[8] * args[3] * _GROUP <= _SCRATCH_BYTES


def conv_2d(ip, fp, bias, mp, sp, op, args):
    _conv_2d(0, ip, ip, fp, bias, mp, sp, op, args)


@micropython.viper
def _conv_2d(v: int, s: ptr8, ip: ptr8, fp: ptr8, bias, mp, sp, op, args):
    # v (the current input value) and s (the walking interleaved-filter pointer) lead the
    # parameters, given dummy values, so that they are the two register locals.
    scratch = ptr8(_SCRATCH)
    accs = ptr32(ACCS)
    biases = ptr32(PARAMS)
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
    pad_t = int(args[13])
    pad_l = int(args[14])
    in_off = int(args[15]) - 128
    f_size = k_h * k_w * in_c
    s_step = k_w * in_c * _GROUP
    y_step = d_h * in_w * in_c
    oc0 = 0
    while oc0 < out_c:
        n = out_c - oc0
        if n > _GROUP:
            n = _GROUP
        # Channels past out_c (a last, partial group) get weight 0 (stored as 128).
        for k in range(_GROUP):
            t = k
            f = (oc0 + k) * f_size
            for c in range(f_size):
                scratch[t] = (int(fp[f + c]) ^ 128) if k < n else 128
                t += _GROUP
        prepare(bias, mp, sp, oc0, n)
        o = oc0
        cp = 0
        for b in range(batches):
            for oy in range(out_h):
                y0 = oy * s_h - pad_t
                ky0 = 0
                ky1 = k_h
                if y0 < 0 or y0 + (k_h - 1) * d_h >= in_h:
                    while ky0 < k_h and y0 + ky0 * d_h < 0:
                        ky0 += 1
                    while ky1 > ky0 and y0 + (ky1 - 1) * d_h >= in_h:
                        ky1 -= 1
                for ox in range(out_w):
                    x0 = ox * s_w - pad_l
                    kx0 = 0
                    kx1 = k_w
                    # (Most windows are inside the input; the bounds loops cost ~100 cycles.)
                    if x0 < 0 or x0 + k_w > in_w:
                        while kx0 < k_w and x0 + kx0 < 0:
                            kx0 += 1
                        while kx1 > kx0 and x0 + kx1 - 1 >= in_w:
                            kx1 -= 1
                    # The in-bounds taps of one filter row are one run in the input.
                    run = (kx1 - kx0) * in_c
                    i_row = ((b * in_h + y0 + ky0 * d_h) * in_w + x0 + kx0) * in_c
                    s_row = int(scratch) + (ky0 * k_w + kx0) * in_c * _GROUP
                    xs = 0
                    # Accumulators start from the biases (modulo 2**32 on 64-bit ports,
                    # which the requantization's sign extension undoes).
                    a0 = int(biases[0])
                    a1 = int(biases[1])
                    a2 = int(biases[2])
                    a3 = int(biases[3])
                    a4 = int(biases[4])
                    a5 = int(biases[5])
                    a6 = int(biases[6])
                    a7 = int(biases[7])
                    for _ky in range(ky0, ky1):
                        x = ptr8(int(ip) + i_row)
                        s = ptr8(s_row)
                        end = int(x) + run
                        end4 = end - 3
                        while int(x) < end4:
                            v = (int(x[0]) ^ 128) + in_off
                            xs = xs + v
                            a0 = int(s[0]) * v + a0
                            a1 = int(s[1]) * v + a1
                            a2 = int(s[2]) * v + a2
                            a3 = int(s[3]) * v + a3
                            a4 = int(s[4]) * v + a4
                            a5 = int(s[5]) * v + a5
                            a6 = int(s[6]) * v + a6
                            a7 = int(s[7]) * v + a7
                            v = (int(x[1]) ^ 128) + in_off
                            xs = xs + v
                            a0 = int(s[8]) * v + a0
                            a1 = int(s[9]) * v + a1
                            a2 = int(s[10]) * v + a2
                            a3 = int(s[11]) * v + a3
                            a4 = int(s[12]) * v + a4
                            a5 = int(s[13]) * v + a5
                            a6 = int(s[14]) * v + a6
                            a7 = int(s[15]) * v + a7
                            v = (int(x[2]) ^ 128) + in_off
                            xs = xs + v
                            a0 = int(s[16]) * v + a0
                            a1 = int(s[17]) * v + a1
                            a2 = int(s[18]) * v + a2
                            a3 = int(s[19]) * v + a3
                            a4 = int(s[20]) * v + a4
                            a5 = int(s[21]) * v + a5
                            a6 = int(s[22]) * v + a6
                            a7 = int(s[23]) * v + a7
                            v = (int(x[3]) ^ 128) + in_off
                            xs = xs + v
                            a0 = int(s[24]) * v + a0
                            a1 = int(s[25]) * v + a1
                            a2 = int(s[26]) * v + a2
                            a3 = int(s[27]) * v + a3
                            a4 = int(s[28]) * v + a4
                            a5 = int(s[29]) * v + a5
                            a6 = int(s[30]) * v + a6
                            a7 = int(s[31]) * v + a7
                            x = ptr8(int(x) + 4)
                            s = ptr8(int(s) + 32)
                        while int(x) < end:
                            v = (int(x[0]) ^ 128) + in_off
                            xs = xs + v
                            a0 = int(s[0]) * v + a0
                            a1 = int(s[1]) * v + a1
                            a2 = int(s[2]) * v + a2
                            a3 = int(s[3]) * v + a3
                            a4 = int(s[4]) * v + a4
                            a5 = int(s[5]) * v + a5
                            a6 = int(s[6]) * v + a6
                            a7 = int(s[7]) * v + a7
                            x = ptr8(int(x) + 1)
                            s = ptr8(int(s) + 8)
                        i_row += y_step
                        s_row += s_step
                    # a_k - 128 * sum(x') for this pixel, into the requantization chunk.
                    xs <<= 7
                    at = ptr32(int(accs) + cp * (4 * _GROUP))
                    at[0] = a0 - xs
                    at[1] = a1 - xs
                    at[2] = a2 - xs
                    at[3] = a3 - xs
                    at[4] = a4 - xs
                    at[5] = a5 - xs
                    at[6] = a6 - xs
                    at[7] = a7 - xs
                    cp += 1
                    if cp == _CHUNK:
                        requant(0, 0, cp, n, op, o, out_c, args, 16)
                        o += cp * out_c
                        cp = 0
        if cp:
            requant(0, 0, cp, n, op, o, out_c, args, 16)
        oc0 += _GROUP
