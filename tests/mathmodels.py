"""Generated one-op ``.tflite`` models for the math ops, with chosen quantization.

Unlike ``opmodels`` (float networks calibrated then quantized), these set every scale and
zero point directly, so tests can sweep random and extreme quantizations. Each builder returns
``(tflite bytes, [input dtype ...], [input shape ...])``; :func:`random_inputs` draws inputs.

:func:`random_math_model` draws one random model of a given kind from a seed; it is what the
random-geometry tests run against TFLite Micro, and ``describe`` gives a one-line repro.
"""

import numpy as np

from minerva_packager.capsule.tflite_writer import TfliteBuilder

UNARY_OPS = ("LOGISTIC", "TANH", "HARD_SWISH", "LEAKY_RELU", "RELU", "RELU6", "ABS")
BINARY_OPS = ("ADD", "SUB", "MUL", "MAXIMUM", "MINIMUM")
ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")


def _f32(x):
    return float(np.float32(x))


def unary_model(op, shape, in_q, out_q, alpha=0.2):
    b = TfliteBuilder()
    x = b.tensor("x", shape, "int8", scale=in_q[0], zero_point=in_q[1])
    y = b.tensor("y", shape, "int8", scale=out_q[0], zero_point=out_q[1])
    b.op(op, [x], [y], **({"alpha": alpha} if op == "LEAKY_RELU" else {}))
    return b.build([x], [y]), ["int8"], [shape]


def binary_model(op, shape_a, shape_b, qa, qb, qo, activation="NONE", const_b=None,
                 const_a=None):
    """``const_a``/``const_b``: int8 values making that operand a constant."""
    b = TfliteBuilder()
    out_shape = tuple(np.broadcast_shapes(tuple(shape_a), tuple(shape_b)))
    a = b.tensor("a", shape_a, "int8", scale=qa[0], zero_point=qa[1], data=const_a)
    c = b.tensor("b", shape_b, "int8", scale=qb[0], zero_point=qb[1], data=const_b)
    y = b.tensor("y", out_shape, "int8", scale=qo[0], zero_point=qo[1])
    options = {"activation": activation} if op in ("ADD", "SUB", "MUL") else {}
    b.op(op, [a, c], [y], **options)
    inputs = [t for t, k in ((a, const_a), (c, const_b)) if k is None]
    shapes = [s for s, k in ((shape_a, const_a), (shape_b, const_b)) if k is None]
    if not inputs:
        # Both constant: the result feeds an ADD with a live input, so the model has one.
        z = b.tensor("z", out_shape, "int8", scale=qo[0], zero_point=qo[1])
        w = b.tensor("w", out_shape, "int8", scale=qo[0], zero_point=qo[1])
        b.op("ADD", [z, y], [w])
        return b.build([z], [w]), ["int8"], [out_shape]
    return b.build(inputs, [y]), ["int8"] * len(inputs), shapes


def mean_model(shape, axes, keep_dims, in_q, out_q):
    b = TfliteBuilder()
    x = b.tensor("x", shape, "int8", scale=in_q[0], zero_point=in_q[1])
    rank = len(shape)
    resolved = {a % rank for a in axes}
    if keep_dims:
        out_shape = [1 if k in resolved else d for k, d in enumerate(shape)]
    else:
        out_shape = [d for k, d in enumerate(shape) if k not in resolved] or [1]
    ax = b.tensor("axes", [len(axes)], "int32", data=np.asarray(axes, np.int32))
    y = b.tensor("y", out_shape, "int8", scale=out_q[0], zero_point=out_q[1])
    b.op("MEAN", [x, ax], [y], keep_dims=keep_dims)
    return b.build([x], [y]), ["int8"], [shape]


def quantize16_model(shape, in_q, out_q):
    b = TfliteBuilder()
    x = b.tensor("x", shape, "int16", scale=in_q[0], zero_point=in_q[1])
    y = b.tensor("y", shape, "int8", scale=out_q[0], zero_point=out_q[1])
    b.op("QUANTIZE", [x], [y])
    return b.build([x], [y]), ["int16"], [shape]


def random_inputs(dtypes, shapes, rng, count=2):
    """``count`` cases, each a list of arrays (int8 over the full range; int16 mostly small
    with some extremes)."""
    cases = []
    for _ in range(count):
        xs = []
        for dtype, shape in zip(dtypes, shapes):
            if dtype == "int16":
                v = rng.integers(-3000, 3000, shape)
                flat = v.reshape(-1)
                flat[: max(1, flat.size // 8)] = rng.integers(-32768, 32768,
                                                              max(1, flat.size // 8))
                xs.append(v.astype(np.int16))
            else:
                xs.append(rng.integers(-128, 128, shape).astype(np.int8))
        cases.append(xs)
    return cases


# -- random models ---------------------------------------------------------------------------

def _scale(rng, lo=-3.0, hi=1.0):
    return _f32(10 ** rng.uniform(lo, hi))


def _zp(rng):
    return int(rng.choice([-128, 127, 0, int(rng.integers(-128, 128))], p=[.1, .1, .2, .6]))


def _shape(rng, max_elems=600):
    rank = int(rng.integers(1, 5))
    while True:
        shape = [int(rng.choice([1, 2, 3, int(rng.integers(1, 9))])) for _ in range(rank)]
        shape[-1] = int(rng.integers(1, 301))
        if int(np.prod(shape)) <= max_elems:
            return shape


def _broadcast_pair(rng, shape):
    # The second operand's shape: same, per-channel [1,..,1,C], a scalar, or a random
    # pattern of 1s; sometimes swapped so the first operand broadcasts.
    pattern = rng.integers(0, 4)
    if pattern == 0:
        other = list(shape)
    elif pattern == 1:
        other = [1] * (len(shape) - 1) + [shape[-1]]
    elif pattern == 2:
        other = [1]
    else:
        other = [d if rng.random() < 0.5 else 1 for d in shape]
    if rng.random() < 0.3 and len(other) > 1:
        other = other[1:]  # lower rank, right-aligned
    return (other, list(shape)) if rng.random() < 0.25 else (list(shape), other)


def random_math_model(kind, seed):
    """``(description, tflite bytes, dtypes, shapes)`` for op ``kind`` drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    if kind in UNARY_OPS:
        shape = _shape(rng)
        in_q = (_scale(rng, -3.5, 1.5), _zp(rng))
        out_q = (_scale(rng, -3.5, 1.5), _zp(rng))
        if kind == "LOGISTIC":
            out_q = (1 / 256, -128)
        elif kind == "TANH":
            out_q = (1 / 128, 0)
        elif kind == "HARD_SWISH":
            # TFLite Micro's Prepare needs output scale >= input scale / 128.
            out_q = (_f32(in_q[0] * 10 ** rng.uniform(-1.9, 1.0)), out_q[1])
        if kind == "ABS" and rng.random() < 0.3:
            out_q = (in_q[0], out_q[1])  # equal scales: TFLite Micro skips the rescaling
        alpha = float(rng.choice([0.2, 0.01, rng.uniform(-2, 2)]))
        desc = f"unary_model({kind!r}, {shape}, {in_q}, {out_q}, alpha={alpha})"
        return (desc, *unary_model(kind, shape, in_q, out_q, alpha))
    if kind in BINARY_OPS:
        shape = _shape(rng, 400)
        sa, sb = _broadcast_pair(rng, shape)
        qa, qb = (_scale(rng), _zp(rng)), (_scale(rng), _zp(rng))
        if kind in ("ADD", "SUB"):
            qo = (_f32(max(qa[0], qb[0]) * 10 ** rng.uniform(-0.5, 1.5)), _zp(rng))
        elif kind == "MUL":
            qo = (_f32(qa[0] * qb[0] * 10 ** rng.uniform(0.5, 3.0)), _zp(rng))
        else:
            qo = (_scale(rng), _zp(rng))
        act = str(rng.choice(ACTIVATIONS)) if kind in ("ADD", "SUB", "MUL") else "NONE"
        const = int(rng.integers(0, 6))  # 0: second operand constant, 1: first, else none
        cb = rng.integers(-128, 128, sb).tolist() if const == 0 else None
        ca = rng.integers(-128, 128, sa).tolist() if const == 1 else None
        desc = (f"binary_model({kind!r}, {sa}, {sb}, {qa}, {qb}, {qo}, {act!r}, "
                f"const_b={cb}, const_a={ca})")
        return (desc, *binary_model(kind, sa, sb, qa, qb, qo, act, cb, ca))
    if kind == "MEAN":
        rank = int(rng.integers(1, 5))
        shape = [int(rng.integers(1, 9)) for _ in range(rank)]
        shape[-1] = int(rng.integers(1, 40))
        if rank == 4 and rng.random() < 0.5:
            axes = [1, 2]  # global average pool
        else:
            axes = sorted(set(int(a) for a in rng.integers(-rank, rank,
                                                            int(rng.integers(1, rank + 1)))))
        in_q = (_scale(rng), _zp(rng))
        out_q = (_f32(in_q[0] * 10 ** rng.uniform(-1, 1)), _zp(rng))
        keep = bool(rng.random() < 0.6)
        desc = f"mean_model({shape}, {axes}, {keep}, {in_q}, {out_q})"
        return (desc, *mean_model(shape, axes, keep, in_q, out_q))
    if kind == "QUANTIZE_INT16":
        shape = _shape(rng)
        in_q = (_scale(rng, -5, -1), int(rng.choice([0, 0, int(rng.integers(-300, 300))])))
        out_q = (_f32(in_q[0] * 10 ** rng.uniform(0.5, 3.5)), _zp(rng))
        desc = f"quantize16_model({shape}, {in_q}, {out_q})"
        return (desc, *quantize16_model(shape, in_q, out_q))
    raise ValueError(kind)
