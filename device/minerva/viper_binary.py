# Viper BINARY (ADD, SUB, MUL, MAXIMUM, MINIMUM with broadcasting): the same bytes as
# math_py.binary (the spec). The portability rules and the 15-bit-limb
# SaturatingRoundingDoublingHighMul are explained in kernels_viper.py; graph_math.py bounds
# every argument so no value here leaves int32.
from array import array

import micropython


@micropython.viper
def _minmax(ap: ptr8, bp: ptr8, op: ptr8, args):
    kind = int(args[0])
    d0 = int(args[1])
    d1 = int(args[2])
    d2 = int(args[3])
    d3 = int(args[4])
    a0 = int(args[5])
    a1 = int(args[6])
    a2 = int(args[7])
    a3 = int(args[8])
    b0 = int(args[9])
    b1 = int(args[10])
    b2 = int(args[11])
    b3 = int(args[12])
    lo = int(args[23])
    hi = int(args[24])
    o = 0
    for i0 in range(d0):
        for i1 in range(d1):
            for i2 in range(d2):
                ia = i0 * a0 + i1 * a1 + i2 * a2
                ib = i0 * b0 + i1 * b1 + i2 * b2
                for _ in range(d3):
                    x = (int(ap[ia]) ^ 128) - 128
                    y = (int(bp[ib]) ^ 128) - 128
                    if kind == 3:
                        v = x if x > y else y
                    else:
                        v = x if x < y else y
                    op[o] = lo if v < lo else (hi if v > hi else v)
                    ia += a3
                    ib += b3
                    o += 1


@micropython.viper
def _mul(ap: ptr8, bp: ptr8, op: ptr8, args):
    pa = ptr32(args)
    sign = 1
    sign <<= 31
    d0 = int(args[1])
    d1 = int(args[2])
    d2 = int(args[3])
    d3 = int(args[4])
    a0 = int(args[5])
    a1 = int(args[6])
    a2 = int(args[7])
    a3 = int(args[8])
    b0 = int(args[9])
    b1 = int(args[10])
    b2 = int(args[11])
    b3 = int(args[12])
    off_a = int(args[13])
    off_b = int(args[14])
    out_off = int(args[15])
    m = int(pa[21])
    s = (int(pa[22]) ^ sign) - sign
    lo = int(args[23])
    hi = int(args[24])
    ml = m & 0x7FFF
    mh = m >> 15
    left = s if s > 0 else 0
    right = 0 - s if s < 0 else 0
    mask = (1 << right) - 1
    o = 0
    for i0 in range(d0):
        for i1 in range(d1):
            for i2 in range(d2):
                ia = i0 * a0 + i1 * a1 + i2 * a2
                ib = i0 * b0 + i1 * b1 + i2 * b2
                for _ in range(d3):
                    x = (((int(ap[ia]) ^ 128) - 128 + off_a)
                         * ((int(bp[ib]) ^ 128) - 128 + off_b)) << left
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
                    op[o] = lo if x < lo else (hi if x > hi else x)
                    ia += a3
                    ib += b3
                    o += 1


# ADD and SUB rescale each input with one MultiplyByQuantizedMultiplier of its int8 value:
# per call both rescalings are tabulated for all 256 values (allocated once, at import).
_TABLES = array("i", bytes(4 * 512))


@micropython.viper
def _fill_tables(args):
    # _TABLES[256 * j + (v + 128)] = MBQM((v + offset_j) << left_shift, mult_j, shift_j).
    pa = ptr32(args)
    t = ptr32(_TABLES)
    sign = 1
    sign <<= 31
    left = int(args[16])
    for j in range(2):
        off = int(args[13 + j])
        m = int(pa[17 + 2 * j])
        # The loader keeps these shifts in [-31, 0]: only the right shift remains.
        right = 0 - ((int(pa[18 + 2 * j]) ^ sign) - sign)
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
def _add_sub(ap: ptr8, bp: ptr8, op: ptr8, args):
    pa = ptr32(args)
    ta = ptr32(_TABLES)
    tb = ptr32(int(ta) + 1024)
    sign = 1
    sign <<= 31
    subtract = int(args[0]) == 1
    d0 = int(args[1])
    d1 = int(args[2])
    d2 = int(args[3])
    d3 = int(args[4])
    a0 = int(args[5])
    a1 = int(args[6])
    a2 = int(args[7])
    a3 = int(args[8])
    b0 = int(args[9])
    b1 = int(args[10])
    b2 = int(args[11])
    b3 = int(args[12])
    out_off = int(args[15])
    m = int(pa[21])
    right = 0 - ((int(pa[22]) ^ sign) - sign)
    lo = int(args[23])
    hi = int(args[24])
    mask = (1 << right) - 1
    ml = m & 0x7FFF
    mh = m >> 15
    o = 0
    for i0 in range(d0):
        for i1 in range(d1):
            for i2 in range(d2):
                ia = i0 * a0 + i1 * a1 + i2 * a2
                ib = i0 * b0 + i1 * b1 + i2 * b2
                for _ in range(d3):
                    x = (int(ta[int(ap[ia]) ^ 128]) ^ sign) - sign
                    y = (int(tb[int(bp[ib]) ^ 128]) ^ sign) - sign
                    x = x - y if subtract else x + y
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
                    op[o] = lo if x < lo else (hi if x > hi else x)
                    ia += a3
                    ib += b3
                    o += 1


def binary(a, b, out, args):
    kind = args[0]
    if kind >= 3:
        _minmax(a, b, out, args)
    elif kind == 2:
        _mul(a, b, out, args)
    else:
        _fill_tables(args)
        _add_sub(a, b, out, args)
