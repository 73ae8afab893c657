# Viper GATHER and CONCATENATION: the same bytes as shape_py (the spec). The portability rules
# are in kernels_viper.py; here only table entries are signed (the pad mark), so ptr32 loads
# of them are sign-extended with ``(u ^ sign) - sign``; every size is positive.
import micropython


@micropython.viper
def _gather(ip: ptr8, tp: ptr32, op: ptr8, args):
    sign = 1
    sign <<= 31
    pa = ptr32(args)
    d0 = pa[1]
    d1 = pa[2]
    d2 = pa[3]
    d3 = pa[4]
    pad = (pa[5] ^ sign) - sign
    b1 = d0
    b2 = b1 + d1
    b3 = b2 + d2
    e3 = b3 + d3
    o = 0
    for i0 in range(d0):
        a0 = (tp[i0] ^ sign) - sign
        for i1 in range(b1, b2):
            a1 = a0 + ((tp[i1] ^ sign) - sign)
            for i2 in range(b2, b3):
                a2 = a1 + ((tp[i2] ^ sign) - sign)
                for i3 in range(b3, e3):
                    a = a2 + ((tp[i3] ^ sign) - sign)
                    if a >= 0:
                        op[o] = ip[a]
                    else:
                        op[o] = pad
                    o += 1


def gather(inp, table, out, args):
    _gather(inp, table, out, args)


@micropython.viper
def _copy_rows(inp, out, args, k: int):
    # Input ``k``'s rows into their column range of every output row.
    sp = ptr8(inp)
    dp = ptr8(out)
    pa = ptr32(args)
    n = int(len(args))
    offset = 0
    total = 0
    for j in range(1, n):
        if j <= k:
            offset += pa[j]
        total += pa[j]
    inner = pa[k + 1]
    s = 0
    d = offset
    for _row in range(pa[0]):
        for j in range(inner):
            dp[d + j] = sp[s + j]
        s += inner
        d += total


def concatenation(inputs, out, args):
    for k in range(len(inputs)):
        _copy_rows(inputs[k], out, args, k)
