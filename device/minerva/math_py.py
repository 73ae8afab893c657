# Pure-Python spec of the math ops (opcodes 20-23, docs/capsule-format.md): LOOKUP, BINARY,
# MEAN and QUANTIZE_INT16, the python tier's kernels for them (tiers.py imports this module
# only for a model that uses one). No allocation, no checks: graph_math.py bounded every
# argument at load.
from .kernels_py import mbqm


def lookup(inp, table, out, args):
    # out = table[in + 128]: any int8 -> int8 function, tabulated by the packager.
    for i in range(args[0]):
        out[i] = table[inp[i] + 128]


def _binary_value(kind, x, y, args):
    # One output value of BINARY before clamping; kinds as graph_math.KINDS.
    if kind == 3:
        return x if x > y else y
    if kind == 4:
        return x if x < y else y
    if kind == 2:
        return mbqm((x + args[13]) * (y + args[14]), args[21], args[22]) + args[15]
    left = args[16]
    sx = mbqm((x + args[13]) << left, args[17], args[18])
    sy = mbqm((y + args[14]) << left, args[19], args[20])
    return mbqm(sx + sy if kind == 0 else sx - sy, args[21], args[22]) + args[15]


def binary(a, b, out, args):
    # Element-wise ADD / SUB / MUL / MAXIMUM / MINIMUM over 4 output dims; each input is
    # read at sum(index_k * stride_k), stride 0 along a broadcast dim.
    kind, d0, d1, d2, d3 = args[0], args[1], args[2], args[3], args[4]
    a0, a1, a2, a3 = args[5], args[6], args[7], args[8]
    b0, b1, b2, b3 = args[9], args[10], args[11], args[12]
    lo, hi = args[23], args[24]
    o = 0
    for i0 in range(d0):
        for i1 in range(d1):
            for i2 in range(d2):
                ia = i0 * a0 + i1 * a1 + i2 * a2
                ib = i0 * b0 + i1 * b1 + i2 * b2
                for _ in range(d3):
                    v = _binary_value(kind, a[ia], b[ib], args)
                    out[o] = lo if v < lo else (hi if v > hi else v)
                    ia += a3
                    ib += b3
                    o += 1


def mean(inp, out, args):
    # TFLite's int8 QuantizedMeanOrSum over the input viewed as [k0, r0, k1, r1, k2]: the
    # sum over r0 and r1 for each output, minus zero_point * count, rescaled (the
    # 1 / count factor is folded into mult and shift on the host).
    k0, r0, k1, r1, k2, in_zp, out_zp, mult, shift = args
    correction = in_zp * r0 * r1
    o = 0
    for i in range(k0):
        for j in range(k1):
            for c in range(k2):
                total = 0
                for x in range(r0):
                    base = ((i * r0 + x) * k1 + j) * r1 * k2 + c
                    for y in range(r1):
                        total += inp[base + y * k2]
                v = mbqm(total - correction, mult, shift) + out_zp
                out[o] = -128 if v < -128 else (127 if v > 127 else v)
                o += 1


def quantize_int16(inp, out, args):
    # TFLite's Requantize int16 -> int8.
    size, in_zp, out_zp, mult, shift = args
    for i in range(size):
        v = mbqm(inp[i] - in_zp, mult, shift) + out_zp
        out[i] = -128 if v < -128 else (127 if v > 127 else v)
