# Viper DEPTHWISE_CONV_2D with depth multiplier 1 and at least eight channels: the same bytes as
# kernels_py (the spec). Eight channels (lanes) per pass, each with its own accumulator in a
# stack slot; the two register locals (see viper_conv.py) are the input pointer ``x`` and the
# filter pointer ``s``, so a multiply-accumulate is two loads with constant offsets. The
# filter's taps for the eight channels are first copied into _SCRATCH as signed int32 (a
# ptr32 load is then the weight on a 32-bit board; on 64-bit ports it is zero-extended, which
# only changes the sums modulo 2**32, and viper_requant sign-extends them). A last group of
# fewer than eight channels is moved back to end at the last channel: the channels it
# computes twice get the same bytes twice.
import micropython
from micropython import const

from .viper_conv import _SCRATCH
from .viper_requant import ACCS, PARAMS, prepare, requant

_GROUP = const(8)  # viper_requant.GROUP
_CHUNK = const(64)  # viper_requant.CHUNK


def takes(args):
    """Whether depthwise_conv_2d here takes these arguments (depth multiplier 1, eight
    channels or more, a filter of at most 144 taps)."""
    return args[19] == 1 and args[3] >= _GROUP and args[7] * args[8] * 4 * _GROUP <= len(
        _SCRATCH)


def depthwise_conv_2d(ip, fp, bias, mp, sp, op, args):
    _depthwise(ip, ACCS, ip, fp, bias, mp, sp, op, args)


@micropython.viper
def _depthwise(x: ptr8, s: ptr32, ip: ptr8, fp: ptr8, bias, mp, sp, op, args):
    # x and s lead the parameters, given dummy values, so that they are the register locals.
    scratch = ptr32(_SCRATCH)
    accs = ptr32(ACCS)
    biases = ptr32(PARAMS)
    batches = int(args[0])
    in_h = int(args[1])
    in_w = int(args[2])
    chans = int(args[3])
    out_h = int(args[4])
    out_w = int(args[5])
    k_h = int(args[7])
    k_w = int(args[8])
    s_h = int(args[9])
    s_w = int(args[10])
    d_h = int(args[11])
    d_w = int(args[12])
    pad_t = int(args[13])
    pad_l = int(args[14])
    in_off = int(args[15]) - 128
    x_step = d_w * chans
    y_step = d_h * in_w * chans
    taps = k_h * k_w
    c0 = 0
    while c0 < chans:
        if c0 + _GROUP > chans:
            c0 = chans - _GROUP
        prepare(bias, mp, sp, c0, _GROUP)
        for t in range(taps):
            for k in range(_GROUP):
                scratch[t * _GROUP + k] = (int(fp[t * chans + c0 + k]) ^ 128) - 128
        o = c0
        cp = 0
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
                    a0 = int(biases[0])
                    a1 = int(biases[1])
                    a2 = int(biases[2])
                    a3 = int(biases[3])
                    a4 = int(biases[4])
                    a5 = int(biases[5])
                    a6 = int(biases[6])
                    a7 = int(biases[7])
                    i_row = ((b * in_h + y0 + ky0 * d_h) * in_w + x0 + kx0 * d_w) * chans + c0
                    s_row = int(scratch) + (ky0 * k_w + kx0) * (4 * _GROUP)
                    for _ky in range(ky0, ky1):
                        i = int(ip) + i_row
                        st = s_row
                        for _kx in range(kx0, kx1):
                            x = ptr8(i)
                            s = ptr32(st)
                            a0 = ((int(x[0]) ^ 128) + in_off) * int(s[0]) + a0
                            a1 = ((int(x[1]) ^ 128) + in_off) * int(s[1]) + a1
                            a2 = ((int(x[2]) ^ 128) + in_off) * int(s[2]) + a2
                            a3 = ((int(x[3]) ^ 128) + in_off) * int(s[3]) + a3
                            a4 = ((int(x[4]) ^ 128) + in_off) * int(s[4]) + a4
                            a5 = ((int(x[5]) ^ 128) + in_off) * int(s[5]) + a5
                            a6 = ((int(x[6]) ^ 128) + in_off) * int(s[6]) + a6
                            a7 = ((int(x[7]) ^ 128) + in_off) * int(s[7]) + a7
                            i += x_step
                            st += 4 * _GROUP
                        i_row += y_step
                        s_row += k_w * (4 * _GROUP)
                    at = ptr32(int(accs) + cp * (4 * _GROUP))
                    at[0] = a0
                    at[1] = a1
                    at[2] = a2
                    at[3] = a3
                    at[4] = a4
                    at[5] = a5
                    at[6] = a6
                    at[7] = a7
                    cp += 1
                    if cp == _CHUNK:
                        requant(0, 0, cp, _GROUP, op, o, chans, args, 16)
                        o += cp * chans
                        cp = 0
        if cp:
            requant(0, 0, cp, _GROUP, op, o, chans, args, 16)
        c0 += _GROUP
