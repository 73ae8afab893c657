# Viper pooling, ADD and RESHAPE: the same bytes as kernels_py. The portability rules and the
# 15-bit-limb SaturatingRoundingDoublingHighMul are explained in kernels_viper.py.
import micropython

from . import kernels_py


@micropython.viper
def _pool(inp, out, args, average: int):
    ip = ptr8(inp)
    op = ptr8(out)
    batches = int(args[0])
    in_h = int(args[1])
    in_w = int(args[2])
    chans = int(args[3])
    out_h = int(args[4])
    out_w = int(args[5])
    f_h = int(args[6])
    f_w = int(args[7])
    s_h = int(args[8])
    s_w = int(args[9])
    pad_t = int(args[10])
    pad_l = int(args[11])
    lo = int(args[12])
    hi = int(args[13])
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
                count = 0
                if ky1 > ky0 and kx1 > kx0:
                    count = (ky1 - ky0) * (kx1 - kx0)
                half = count >> 1
                base = ((b * in_h + y0) * in_w + x0) * chans
                for c in range(chans):
                    acc = -128
                    if average:
                        acc = 0
                    for ky in range(ky0, ky1):
                        i = base + (ky * in_w + kx0) * chans + c
                        for _kx in range(kx0, kx1):
                            v = (int(ip[i]) ^ 128) - 128
                            if average:
                                acc += v
                            elif v > acc:
                                acc = v
                            i += chans
                    if average:
                        # C division truncates toward zero; no taps gives 0.
                        if count == 0:
                            acc = 0
                        elif acc > 0:
                            acc = (acc + half) // count
                        else:
                            acc = 0 - (half - acc) // count
                    op[o] = lo if acc < lo else (hi if acc > hi else acc)
                    o += 1


def average_pool_2d(inp, out, args):
    _pool(inp, out, args, 1)


def max_pool_2d(inp, out, args):
    _pool(inp, out, args, 0)


@micropython.viper
def add(a, b, out, args):
    ap = ptr8(a)
    bp = ptr8(b)
    op = ptr8(out)
    pa = ptr32(args)
    sign = 1
    sign <<= 31
    size = int(args[0])
    off1 = int(args[1]) - 128
    off2 = int(args[2]) - 128
    out_off = int(args[3])
    left = int(args[4])
    lo = int(args[11])
    hi = int(args[12])
    # Multipliers go through ptr32: on a board one of 2**30 or more would be a boxed int.
    m1 = int(pa[5])
    s1 = 0 - ((int(pa[6]) ^ sign) - sign)
    m2 = int(pa[7])
    s2 = 0 - ((int(pa[8]) ^ sign) - sign)
    mo = int(pa[9])
    so = 0 - ((int(pa[10]) ^ sign) - sign)
    # The loader keeps the three shifts in [-31, 0]: only the right shift of each
    # MultiplyByQuantizedMultiplierSmallerThanOneExp remains.
    mask1 = (1 << s1) - 1
    mask2 = (1 << s2) - 1
    mask_o = (1 << so) - 1
    ml1 = m1 & 0x7FFF
    mh1 = m1 >> 15
    ml2 = m2 & 0x7FFF
    mh2 = m2 >> 15
    mlo = mo & 0x7FFF
    mho = mo >> 15
    for i in range(size):
        x = ((int(ap[i]) ^ 128) + off1) << left
        al = x & 0x7FFF
        ah = x >> 15
        p1 = ah * ml1
        p2 = al * mh1
        q = 1 + (p1 >> 15) + (p2 >> 15) + (((al * ml1 >> 15) + (p1 & 0x7FFF)
                                             + (p2 & 0x7FFF)) >> 15)
        x = (ah * (mh1 >> 1) + (mh1 & 1) * (ah >> 1) + (q >> 1)
             + (((ah & mh1 & 1) + (q & 1)) >> 1))
        limit = mask1 >> 1
        if x < 0:
            limit += 1
        rem = x & mask1
        x >>= s1
        if rem > limit:
            x += 1

        y = ((int(bp[i]) ^ 128) + off2) << left
        al = y & 0x7FFF
        ah = y >> 15
        p1 = ah * ml2
        p2 = al * mh2
        q = 1 + (p1 >> 15) + (p2 >> 15) + (((al * ml2 >> 15) + (p1 & 0x7FFF)
                                             + (p2 & 0x7FFF)) >> 15)
        y = (ah * (mh2 >> 1) + (mh2 & 1) * (ah >> 1) + (q >> 1)
             + (((ah & mh2 & 1) + (q & 1)) >> 1))
        limit = mask2 >> 1
        if y < 0:
            limit += 1
        rem = y & mask2
        y >>= s2
        if rem > limit:
            y += 1

        x += y
        al = x & 0x7FFF
        ah = x >> 15
        p1 = ah * mlo
        p2 = al * mho
        q = 1 + (p1 >> 15) + (p2 >> 15) + (((al * mlo >> 15) + (p1 & 0x7FFF)
                                             + (p2 & 0x7FFF)) >> 15)
        x = (ah * (mho >> 1) + (mho & 1) * (ah >> 1) + (q >> 1)
             + (((ah & mho & 1) + (q & 1)) >> 1))
        limit = mask_o >> 1
        if x < 0:
            limit += 1
        rem = x & mask_o
        x >>= so
        if rem > limit:
            x += 1
        x += out_off
        op[i] = lo if x < lo else (hi if x > hi else x)


@micropython.viper
def reshape(inp, out, args):
    ip = ptr8(inp)
    op = ptr8(out)
    for i in range(int(args[0])):
        op[i] = ip[i]


@micropython.viper
def _requantize(ip: ptr8, op: ptr8, args):
    pa = ptr32(args)
    sign = 1
    sign <<= 31
    size = int(args[1])
    in_zp = int(args[2])
    out_zp = int(args[3])
    m = int(pa[4])
    s = (int(pa[5]) ^ sign) - sign
    ml = m & 0x7FFF
    mh = m >> 15
    left = s if s > 0 else 0
    right = 0 - s if s < 0 else 0
    mask = (1 << right) - 1
    for i in range(size):
        x = ((int(ip[i]) ^ 128) - 128 - in_zp) << left
        al = x & 0x7FFF
        ah = x >> 15
        p1 = ah * ml
        p2 = al * mh
        q = 1 + (p1 >> 15) + (p2 >> 15) + (((al * ml >> 15) + (p1 & 0x7FFF)
                                             + (p2 & 0x7FFF)) >> 15)
        x = (ah * (mh >> 1) + (mh & 1) * (ah >> 1) + (q >> 1)
             + (((ah & mh & 1) + (q & 1)) >> 1))
        limit = mask >> 1
        if x < 0:
            limit += 1
        rem = x & mask
        x >>= right
        if rem > limit:
            x += 1
        x += out_zp
        op[i] = -128 if x < -128 else (127 if x > 127 else x)


def quantize(inp, out, args):
    # int8 -> int8 requantization in viper; float32 -> int8 (a model's float input, once per
    # run) stays with the spec, since MicroPython floats are heap objects anyway.
    if args[0] == 1:
        _requantize(inp, out, args)
    else:
        kernels_py.quantize(inp, out, args)
