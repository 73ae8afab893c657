"""Random geometries for the data-movement ops, for differential tests across kernel tiers.

``GENERATORS = {kernel name: fn(rng) -> case}``, where a case is the tuple format of
tests/test_kernels_tiers.py: ``(kernel name, [(typecode, values) ...], args, (out_typecode,
out_len))``. One exception, because CONCATENATION takes any number of inputs: its kernel
receives them as one tuple, so its case has a single buffer entry ``("tuple", [(typecode,
values) ...])``; :func:`kernel_call_args` turns any case into the kernel's positional
arguments.

Geometries are what the packager emits for real TFLite ops (transpose, strided slice, pad,
resize, concatenation), random in shape (channel counts 1..300, odd and even sizes, every
option) with at most ``MAX_ELEMENTS`` elements per buffer, so one case takes a few ms in the
pure-Python kernels.

``MODEL_GENERATORS = {TFLite op: fn(rng) -> (tflite bytes, [input shapes])}`` gives random
single-op int8 models of the same geometries, for whole-model tests against TFLite Micro.
"""

from array import array

import numpy as np

from minerva_packager.capsule.lower_shape import PAD_MARK, nearest_neighbor
from minerva_packager.capsule.tflite_writer import TfliteBuilder

MAX_ELEMENTS = 3000


def _dims(rng, rank, limit=MAX_ELEMENTS):
    """``rank`` dims, the last a channel count in 1..300, product at most ``limit``."""
    while True:
        channels = int(rng.choice([1, 2, 3, 8, 16, 17, 64, 100, 255, 300]))
        dims = [int(rng.integers(1, 8)) for _ in range(rank - 1)] + [channels]
        if rng.random() < 0.3:
            dims[-1] = int(rng.integers(1, 12))
        if int(np.prod(dims)) <= limit:
            return dims


def _strides(shape):
    out = [1] * len(shape)
    for k in range(len(shape) - 2, -1, -1):
        out[k] = out[k + 1] * shape[k + 1]
    return out


def _int8(rng, n):
    return rng.integers(-128, 128, n).tolist()


def _gather_case(rng, in_size, tables, pad):
    tables = [[0]] * (4 - len(tables)) + [list(t) for t in tables]
    dims = [len(t) for t in tables]
    args = [in_size, *dims, pad]
    flat = [v for t in tables for v in t]
    return "gather", [("b", _int8(rng, in_size)), ("i", flat)], args, \
        ("b", int(np.prod(dims)))


def _transpose_tables(rng, shape=None):
    shape = shape or _dims(rng, int(rng.integers(1, 5)))
    perm = rng.permutation(len(shape)).tolist()
    st = _strides(shape)
    return shape, [[i * st[p] for i in range(shape[p])] for p in perm], 0


def _slice_tables(rng, shape=None):
    shape = shape or _dims(rng, int(rng.integers(1, 5)))
    st = _strides(shape)
    tables = []
    for axis, size in enumerate(shape):
        stride = int(rng.choice([-3, -2, -1, 1, 1, 2, 3]))
        start = int(rng.integers(0, size))
        index = list(range(start, -1 if stride < 0 else size, stride))
        index = index[:max(1, int(rng.integers(1, len(index) + 1)))]
        tables.append([i * st[axis] for i in index])
    return shape, tables, 0


def _pad_tables(rng, shape=None):
    shape = shape or _dims(rng, int(rng.integers(1, 5)), MAX_ELEMENTS // 4)
    st = _strides(shape)
    tables = []
    for axis, size in enumerate(shape):
        before, after = int(rng.integers(0, 4)), int(rng.integers(0, 4))
        tables.append([PAD_MARK] * before + [i * st[axis] for i in range(size)]
                      + [PAD_MARK] * after)
    return shape, tables, int(rng.integers(-128, 128))


def _resize_tables(rng, shape=None):
    n, h, w = int(rng.integers(1, 3)), int(rng.integers(1, 8)), int(rng.integers(1, 8))
    c = _dims(rng, 1, 300)[0]
    oh, ow = int(rng.integers(1, 12)), int(rng.integers(1, 12))
    if shape is not None:
        n, h, w, c = shape
    while n * oh * ow * c > MAX_ELEMENTS:
        c = max(1, c // 2) if shape is None else c
        oh, ow = max(1, oh // 2), max(1, ow // 2)
    align, half = bool(rng.integers(0, 2)), bool(rng.integers(0, 2))
    ys = [nearest_neighbor(y, h, oh, align, half) for y in range(oh)]
    xs = [nearest_neighbor(x, w, ow, align, half) for x in range(ow)]
    return [n, h, w, c], [[b * h * w * c for b in range(n)], [y * w * c for y in ys],
                          [x * c for x in xs], list(range(c))], 0


def gather_tables(rng, shape=None):
    """``(input shape, tables, pad value)`` of a random transpose, slice, pad or resize (of
    ``shape`` if given)."""
    makers = [_transpose_tables, _slice_tables, _pad_tables]
    if shape is None or len(shape) == 4:
        makers.append(_resize_tables)
    return makers[int(rng.integers(0, len(makers)))](rng, shape)


def gather_geometry(rng):
    """A GATHER case: a random transpose, slice, pad or resize geometry."""
    shape, tables, pad = gather_tables(rng)
    return _gather_case(rng, int(np.prod(shape)), tables, pad)


def concatenation_geometry(rng):
    """A CONCATENATION case: 1-5 inputs of one outer size and their own inner sizes."""
    count = int(rng.integers(1, 6))
    outer = int(rng.integers(1, 9))
    inners = [int(rng.choice([1, 2, 3, 5, 8, 17, 64, 100, 300])) for _ in range(count)]
    while outer * sum(inners) > MAX_ELEMENTS:
        outer = max(1, outer // 2)
        inners = [max(1, v // 2) for v in inners]
    inputs = [("b", _int8(rng, outer * v)) for v in inners]
    return "concatenation", [("tuple", inputs)], [outer, *inners], \
        ("b", outer * sum(inners))


GENERATORS = {"gather": gather_geometry, "concatenation": concatenation_geometry}


def kernel_call_args(case, make_buffer=lambda t, v: array(t, v)):
    """The kernel's arguments for ``case`` (output buffer and args block included)."""
    _, bufs, args, (out_type, out_len) = case
    ins = [tuple(make_buffer(t, v) for t, v in values) if kind == "tuple"
           else (None if values is None else make_buffer(kind, values))
           for kind, values in bufs]
    out = array(out_type, bytes(4 * out_len if out_type in "if" else out_len))
    return [*ins, out, array("i", args)]


# -- random single-op int8 models --------------------------------------------------------------

def _quant(rng):
    return float(np.float32(rng.uniform(0.005, 0.2))), int(rng.integers(-128, 128))


def _single_op(op, shape, out_shape, consts, rng, extra_inputs=(), **options):
    b = TfliteBuilder("minerva tests: random shape-op geometry")
    scale, zp = _quant(rng)
    xs = [b.tensor(f"x{k}", s, "int8", scale=scale, zero_point=zp)
          for k, s in enumerate([shape, *extra_inputs])]
    ins = list(xs[:1])
    for k, (dtype, data) in enumerate(consts):
        if dtype == "pad_value":
            ins.append(b.tensor(f"c{k}", [1], "int8", data=[data], scale=scale,
                                zero_point=zp))
        else:
            ins.append(b.tensor(f"c{k}", np.shape(data), dtype, data=data))
    ins += xs[1:]
    y = b.tensor("y", out_shape, "int8", scale=scale, zero_point=zp)
    b.op(op, ins, [y], **options)
    return b.build(xs, [y]), [shape, *extra_inputs]


def random_transpose(rng):
    shape = _dims(rng, int(rng.integers(1, 5)))
    perm = rng.permutation(len(shape)).tolist()
    return _single_op("TRANSPOSE", shape, [shape[p] for p in perm], [("int32", perm)], rng)


def random_strided_slice(rng):
    while True:
        shape = _dims(rng, int(rng.integers(1, 5)))
        begin, end, strides, index = [], [], [], []
        masks = {"begin_mask": 0, "end_mask": 0, "shrink_axis_mask": 0}
        for axis, size in enumerate(shape):
            stride = int(rng.choice([-3, -2, -1, 1, 1, 1, 2, 3]))
            b0 = int(rng.integers(-size - 2, size + 3))
            e0 = int(rng.integers(-size - 2, size + 3))
            bm, em = rng.random() < 0.25, rng.random() < 0.25
            if rng.random() < 0.2:
                b0 = int(rng.integers(-size, size))
                masks["shrink_axis_mask"] |= 1 << axis
                index.append(b0)
                stride = 1
            else:
                index.append(slice(None if bm else b0, None if em else e0, stride))
                masks["begin_mask"] |= bm << axis
                masks["end_mask"] |= em << axis
            begin.append(b0)
            end.append(e0)
            strides.append(stride)
        # numpy slicing is TensorFlow's semantics: it gives the output shape.
        out_shape = np.zeros(shape)[tuple(index)].shape
        if all(out_shape) and out_shape:
            return _single_op("STRIDED_SLICE", shape, out_shape,
                              [("int32", begin), ("int32", end), ("int32", strides)], rng,
                              **masks)


def _random_pad(rng, v2):
    shape = _dims(rng, int(rng.integers(1, 5)), MAX_ELEMENTS // 4)
    pads = [[int(rng.integers(0, 4)), int(rng.integers(0, 4))] for _ in shape]
    out = [d + a + b for d, (a, b) in zip(shape, pads)]
    consts = [("int32", pads)] + ([("pad_value", int(rng.integers(-128, 128)))] if v2 else [])
    return _single_op("PADV2" if v2 else "PAD", shape, out, consts, rng)


def random_resize_nearest(rng):
    n, h, w = int(rng.integers(1, 3)), int(rng.integers(1, 8)), int(rng.integers(1, 8))
    c = _dims(rng, 1, 300)[0]
    oh, ow = int(rng.integers(1, 12)), int(rng.integers(1, 12))
    while n * max(h * w, oh * ow) * c > MAX_ELEMENTS:
        c = max(1, c // 2)
    return _single_op("RESIZE_NEAREST_NEIGHBOR", [n, h, w, c], [n, oh, ow, c],
                      [("int32", [oh, ow])], rng, align_corners=bool(rng.integers(0, 2)),
                      half_pixel_centers=bool(rng.integers(0, 2)))


def random_concatenation(rng):
    rank = int(rng.integers(1, 5))
    count = int(rng.integers(2, 6))
    base = _dims(rng, rank, MAX_ELEMENTS // 6)
    axis = int(rng.integers(0, rank))
    shapes = []
    for _ in range(count):
        s = list(base)
        s[axis] = int(rng.integers(1, 6))
        shapes.append(s)
    out = list(base)
    out[axis] = sum(s[axis] for s in shapes)
    option_axis = axis - rank if rng.random() < 0.5 else axis
    return _single_op("CONCATENATION", shapes[0], out, [], rng, extra_inputs=shapes[1:],
                      axis=option_axis)


def random_squeeze_or_expand(rng):
    shape = _dims(rng, int(rng.integers(1, 4)))
    if rng.random() < 0.5:
        axis = int(rng.integers(-len(shape) - 1, len(shape) + 1))
        out = list(shape)
        out.insert(axis if axis >= 0 else len(shape) + 1 + axis, 1)
        return _single_op("EXPAND_DIMS", shape, out, [("int32", [axis])], rng)
    shape[-1] = max(shape[-1], 2)  # squeezing everything would leave a rank-0 output
    with_ones = list(shape)
    for _ in range(int(rng.integers(1, 3))):
        with_ones.insert(int(rng.integers(0, len(with_ones) + 1)), 1)
    with_ones = with_ones[:3] + [with_ones[-1]] if len(with_ones) > 4 else with_ones
    out = [d for d in with_ones if d != 1]
    return _single_op("SQUEEZE", with_ones, out, [], rng)


def random_chain(rng):
    """Two to four data-movement ops in a row (which the packager fuses into fewer GATHERs
    where they compose), all at one quantization."""
    b = TfliteBuilder("minerva tests: random chain of data-movement ops")
    scale, zp = _quant(rng)
    shape = _dims(rng, int(rng.integers(1, 5)), MAX_ELEMENTS // 8)
    x = b.tensor("x", shape, "int8", scale=scale, zero_point=zp)
    t = x
    for k in range(int(rng.integers(2, 5))):
        kind = int(rng.integers(0, 4 if len(shape) == 4 else 3))
        if kind == 0:
            perm = rng.permutation(len(shape)).tolist()
            out, ins, op, options = [shape[p] for p in perm], [("int32", perm)], "TRANSPOSE", {}
        elif kind == 1:
            pads = [[int(rng.integers(0, 3)), int(rng.integers(0, 3))] for _ in shape]
            out = [d + p + q for d, (p, q) in zip(shape, pads)]
            ins, op, options = [("int32", pads)], "PAD", {}
            if rng.random() < 0.5:
                ins.append(("pad_value", int(rng.integers(-128, 128))))
                op = "PADV2"
        elif kind == 2:
            begin, end, strides, index = [], [], [], []
            for size in shape:
                stride = int(rng.choice([-2, -1, 1, 1, 2]))
                start = int(rng.integers(0, size))
                stop = int(rng.integers(-1, start)) if stride < 0 else \
                    int(rng.integers(start + 1, size + 1))
                begin.append(start)
                end.append(stop)
                strides.append(stride)
                index.append(slice(start, None if stop < 0 else stop, stride))
            out = list(np.zeros(shape)[tuple(index)].shape)
            ins = [("int32", begin), ("int32", end), ("int32", strides)]
            op, options = "STRIDED_SLICE", {"end_mask": sum(1 << a for a, e in enumerate(end)
                                                           if e < 0)}
        else:
            size = [int(rng.integers(1, 9)), int(rng.integers(1, 9))]
            out, ins = [shape[0], *size, shape[3]], [("int32", size)]
            op = "RESIZE_NEAREST_NEIGHBOR"
            options = {"align_corners": bool(rng.integers(0, 2)),
                       "half_pixel_centers": bool(rng.integers(0, 2))}
        if int(np.prod(out)) > MAX_ELEMENTS:
            continue
        consts = []
        for j, (dtype, data) in enumerate(ins):
            if dtype == "pad_value":
                consts.append(b.tensor(f"c{k}_{j}", [1], "int8", data=[data], scale=scale,
                                       zero_point=zp))
            else:
                consts.append(b.tensor(f"c{k}_{j}", np.shape(data), dtype, data=data))
        y = b.tensor(f"t{k}", out, "int8", scale=scale, zero_point=zp)
        b.op(op, [t, *consts], [y], **options)
        t, shape = y, out
    if t == x:
        return random_chain(rng)
    return b.build([x], [t]), [list(b.shape(x))]


MODEL_GENERATORS = {
    "TRANSPOSE": random_transpose,
    "STRIDED_SLICE": random_strided_slice,
    "PAD": lambda rng: _random_pad(rng, False),
    "PADV2": lambda rng: _random_pad(rng, True),
    "RESIZE_NEAREST_NEIGHBOR": random_resize_nearest,
    "CONCATENATION": random_concatenation,
    "SQUEEZE_OR_EXPAND_DIMS": random_squeeze_or_expand,
    "CHAIN": random_chain,
}
