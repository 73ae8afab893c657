# Viper pooling, ADD and RESHAPE: the same bytes as kernels_py. The portability rules and the
# 15-bit-limb SaturatingRoundingDoublingHighMul are explained in kernels_viper.py.
from array import array

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


# ADD rescales each input with one MultiplyByQuantizedMultiplier, which depends only on the
# int8 value: per call, both rescalings are tabulated for all 256 values (allocated once, at
# import), and each element then costs two lookups and the output rescaling.
_TABLES = array("i", bytes(4 * 512))


@micropython.viper
def _fill_tables(args):
    # _TABLES[256 * j + (v + 128)] = MBQM((v + offset_j) << left_shift, mult_j, shift_j).
    pa = ptr32(args)
    t = ptr32(_TABLES)
    sign = 1
    sign <<= 31
    left = int(args[4])
    for j in range(2):
        off = int(args[1 + j])
        # Multipliers go through ptr32: on a board one of 2**30 or more would be boxed.
        m = int(pa[5 + 2 * j])
        # The loader keeps the shift in [-31, 0]: only the right shift remains.
        right = 0 - ((int(pa[6 + 2 * j]) ^ sign) - sign)
        mask = (1 << right) - 1
        ml = m & 0x7FFF
        mh = m >> 15
        for k in range(256):
            x = (k - 128 + off) << left
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
            t[256 * j + k] = x


@micropython.viper
def _add_tabulated(ap: ptr8, bp: ptr8, op: ptr8, args):
    pa = ptr32(args)
    t = ptr32(_TABLES)
    t2 = ptr32(int(t) + 1024)
    sign = 1
    sign <<= 31
    size = int(args[0])
    out_off = int(args[3])
    lo = int(args[11])
    hi = int(args[12])
    m = int(pa[9])
    right = 0 - ((int(pa[10]) ^ sign) - sign)
    mask = (1 << right) - 1
    ml = m & 0x7FFF
    mh = m >> 15
    for i in range(size):
        x = (((int(t[int(ap[i]) ^ 128]) ^ sign) - sign)
             + ((int(t2[int(bp[i]) ^ 128]) ^ sign) - sign))
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
        x += out_off
        op[i] = lo if x < lo else (hi if x > hi else x)


def add(a, b, out, args):
    _fill_tables(args)
    _add_tabulated(a, b, out, args)


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
