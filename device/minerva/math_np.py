# numpy forms of the math ops (opcodes 20-23): the same bytes as math_py (the spec), for
# host-side simulation on CPython; the numpy tier's kernels for them.
import numpy as np

from .kernels_np import _mbqm, _store, _view



def lookup(inp, table, out, args):
    size = args[0]
    t = _view(table, np.int8, 256)
    _view(out, np.int8, size)[:] = t[_view(inp, np.int8, size).astype(np.intp) + 128]


def _gather(buf, dims, strides):
    # The input's values at every output position (stride 0 repeats along a dim).
    index = np.zeros(dims, np.int64)
    for k in range(4):
        shape = [1, 1, 1, 1]
        shape[k] = dims[k]
        index = index + (np.arange(dims[k], dtype=np.int64) * strides[k]).reshape(shape)
    count = int(index.max()) + 1
    return _view(buf, np.int8, count).astype(np.int64)[index.reshape(-1)]


def binary(a, b, out, args):
    kind = args[0]
    dims = list(args[1:5])
    x = _gather(a, dims, args[5:9])
    y = _gather(b, dims, args[9:13])
    off_a, off_b, out_off, left = args[13], args[14], args[15], args[16]
    if kind == 3:
        v = np.maximum(x, y)
    elif kind == 4:
        v = np.minimum(x, y)
    elif kind == 2:
        v = _mbqm((x + off_a) * (y + off_b), args[21], args[22]) + out_off
    else:
        sx = _mbqm((x + off_a) << left, args[17], args[18])
        sy = _mbqm((y + off_b) << left, args[19], args[20])
        v = _mbqm(sx + sy if kind == 0 else sx - sy, args[21], args[22]) + out_off
    _store(out, v, args[23], args[24])


def mean(inp, out, args):
    k0, r0, k1, r1, k2, in_zp, out_zp, mult, shift = args
    x = _view(inp, np.int8, k0 * r0 * k1 * r1 * k2).astype(np.int64)
    total = x.reshape(k0, r0, k1, r1, k2).sum(axis=(1, 3))
    _store(out, _mbqm(total - in_zp * r0 * r1, mult, shift) + out_zp, -128, 127)


def quantize_int16(inp, out, args):
    size, in_zp, out_zp, mult, shift = args
    x = _view(inp, np.int16, size).astype(np.int64)
    _store(out, _mbqm(x - in_zp, mult, shift) + out_zp, -128, 127)
