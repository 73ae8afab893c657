# Viper LOOKUP, MEAN and QUANTIZE_INT16 (BINARY is in viper_binary.py): the same bytes as
# math_py (the spec); the viper tier's kernels for the math ops, imported by tiers.py only
# for a model that uses one (viper code costs RAM when it compiles). The portability rules
# and the 15-bit-limb SaturatingRoundingDoublingHighMul are explained in kernels_viper.py;
# graph_math.py bounds every argument so no value here leaves int32.
import micropython

from .viper_binary import binary  # noqa: F401


@micropython.viper
def lookup(inp, table, out, args):
    ip = ptr8(inp)
    tp = ptr8(table)
    op = ptr8(out)
    # ptr8 loads are unsigned: u ^ 128 is the int8 value + 128.
    for i in range(int(args[0])):
        op[i] = tp[ip[i] ^ 128]


@micropython.viper
def mean(inp, out, args):
    ip = ptr8(inp)
    op = ptr8(out)
    pa = ptr32(args)
    sign = 1
    sign <<= 31
    k0 = int(args[0])
    r0 = int(args[1])
    k1 = int(args[2])
    r1 = int(args[3])
    k2 = int(args[4])
    out_zp = int(args[6])
    m = int(pa[7])
    s = (int(pa[8]) ^ sign) - sign
    correction = int(args[5]) * r0 * r1
    ml = m & 0x7FFF
    mh = m >> 15
    left = s if s > 0 else 0
    right = 0 - s if s < 0 else 0
    mask = (1 << right) - 1
    o = 0
    for i in range(k0):
        for j in range(k1):
            for c in range(k2):
                total = 0
                for r in range(r0):
                    idx = ((i * r0 + r) * k1 + j) * r1 * k2 + c
                    for _ in range(r1):
                        total += (int(ip[idx]) ^ 128) - 128
                        idx += k2
                x = (total - correction) << left
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
                op[o] = -128 if x < -128 else (127 if x > 127 else x)
                o += 1


@micropython.viper
def quantize_int16(inp, out, args):
    ip = ptr16(inp)
    op = ptr8(out)
    pa = ptr32(args)
    sign = 1
    sign <<= 31
    size = int(args[0])
    in_zp = int(args[1])
    out_zp = int(args[2])
    m = int(pa[3])
    s = (int(pa[4]) ^ sign) - sign
    ml = m & 0x7FFF
    mh = m >> 15
    left = s if s > 0 else 0
    right = 0 - s if s < 0 else 0
    mask = (1 << right) - 1
    for i in range(size):
        # ptr16 loads are unsigned too.
        x = ((int(ip[i]) ^ 0x8000) - 0x8000 - in_zp) << left
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
