# Pure-Python data-movement kernels: the spec of GATHER and CONCATENATION
# (docs/capsule-format.md) for the python tier, which imports this module only for models that
# use them (tiers.py). No arithmetic on values, only on offsets; the loader checked every
# table entry and size, so the kernels run without checks.


def gather(inp, table, out, args):
    # out[i0, i1, i2, i3] = inp[t0[i0] + t1[i1] + t2[i2] + t3[i3]], or the pad value where
    # that sum is negative (one of the entries is the pad mark).
    # One name at a time: unpacking five values would build a tuple on MicroPython.
    d0 = args[1]
    d1 = args[2]
    d2 = args[3]
    d3 = args[4]
    pad = args[5]
    b1 = d0
    b2 = b1 + d1
    b3 = b2 + d2
    o = 0
    for i0 in range(d0):
        a0 = table[i0]
        for i1 in range(d1):
            a1 = a0 + table[b1 + i1]
            for i2 in range(d2):
                a2 = a1 + table[b2 + i2]
                for i3 in range(b3, b3 + d3):
                    a = a2 + table[i3]
                    out[o] = inp[a] if a >= 0 else pad
                    o += 1


def concatenation(inputs, out, args):
    # ``inputs`` is a tuple of int8 buffers; args: outer, then each input's inner size. Each
    # of the ``outer`` rows of the output is the inputs' rows one after the other.
    outer = args[0]
    o = 0
    for row in range(outer):
        for k in range(len(inputs)):
            src = inputs[k]
            inner = args[k + 1]
            base = row * inner
            for j in range(base, base + inner):
                out[o] = src[j]
                o += 1
