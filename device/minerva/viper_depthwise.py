# Viper DEPTHWISE_CONV_2D: the same bytes as kernels_py. Portability rules and the 15-bit-limb
# SaturatingRoundingDoublingHighMul: see kernels_viper.py.
import micropython

from . import viper_depthwise8


def depthwise_conv_2d(inp, filt, bias, mult, shift, out, args):
    # Depth multiplier 1 and eight channels or more (KWS, MobileNets) in viper_depthwise8;
    # the rest here, one output channel at a time.
    if viper_depthwise8.takes(args):
        viper_depthwise8.depthwise_conv_2d(inp, filt, bias, mult, shift, out, args)
    else:
        _depthwise_any(inp, filt, bias, mult, shift, out, args)


@micropython.viper
def _depthwise_any(ip: ptr8, fp: ptr8, bias, mp: ptr32, sp: ptr32, op: ptr8, args):
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
    depth_mult = int(args[19])
    x_step = d_w * in_c
    y_step = d_h * in_w * in_c
    f_step = k_w * out_c
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
                taps_x = kx1 - kx0
                # First in-bounds tap of this window, in the input and in the filter.
                i_first = ((b * in_h + y0 + ky0 * d_h) * in_w + x0 + kx0 * d_w) * in_c
                f_first = (ky0 * k_w + kx0) * out_c
                ic = -1
                ic_next = 0
                for oc in range(out_c):
                    # out channel oc reads input channel oc // depth_mult
                    if ic_next == oc:
                        ic += 1
                        ic_next += depth_mult
                    acc = 0
                    i_row = i_first + ic
                    f_row = f_first + oc
                    for _ky in range(ky0, ky1):
                        i = i_row
                        f = f_row
                        for _kx in range(taps_x):
                            acc += ((int(ip[i]) ^ 128) + in_off) * ((int(fp[f]) ^ 128) - 128)
                            i += x_step
                            f += out_c
                        i_row += y_step
                        f_row += f_step
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
