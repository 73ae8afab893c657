# GRAPH section: tensor table and ops, and every check "Checks at load" in
# docs/capsule-format.md lists. After parse_graph() succeeds, kernels can run blind.
import struct
from collections import namedtuple

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

from .errors import CapsuleError, UnsupportedError

INT8 = const(0)
UINT8 = const(1)
INT16 = const(2)
INT32 = const(3)
FLOAT32 = const(4)
DTYPE_SIZES = (1, 1, 2, 4, 4)
DTYPE_NAMES = ("int8", "uint8", "int16", "int32", "float32")

ARENA = const(0)
WEIGHTS = const(1)
OWN = const(2)

ABSENT = const(0xFFFF)
# The limits every kernel assumes: the same names and values as natmod/kernels/mnv_limits.h
# (tests/test_limits.py checks), so whatever loads runs in every tier.
_MAX_COORD = const(0x3FFFFFFF)
_MAX_POOL_TAPS = const(0x800000)
_MAX_SOFTMAX_DEPTH = const(4095)
_MIN_SHIFT = const(-31)
_MAX_SHIFT = const(30)
_MAX_ADD_LEFT_SHIFT = const(20)
# Zero points as TFLite's int8 quantization makes them; offsets are their negations. Within
# these, no tier's arithmetic leaves int32 (ADD, requantize) or needs more than int8 + 1 bit.
_MIN_ZERO_POINT = const(-128)
_MAX_ZERO_POINT = const(127)
# A requantize (int8 -> int8 QUANTIZE) shifts |x - zp| <= 255 left: 2**23 * 255 < 2**31.
_MAX_REQUANTIZE_SHIFT = const(23)
_TENSOR_SIZE = const(36)

GATHER = const(11)
CONCATENATION = const(12)
# A count that varies per op record (CONCATENATION: any number of inputs, one param more).
VARIABLE = const(-1)

# opcode: (name, inputs, outputs, params)
OPS = {
    1: ("CONV_2D", 5, 1, 19),
    2: ("DEPTHWISE_CONV_2D", 5, 1, 20),
    3: ("FULLY_CONNECTED", 5, 1, 8),
    4: ("AVERAGE_POOL_2D", 1, 1, 14),
    5: ("MAX_POOL_2D", 1, 1, 14),
    6: ("ADD", 2, 1, 13),
    7: ("RESHAPE", 1, 1, 1),
    8: ("SOFTMAX", 1, 1, 5),
    9: ("QUANTIZE", 1, 1, 6),
    10: ("DEQUANTIZE", 1, 1, 3),
    11: ("GATHER", 2, 1, 6),
    12: ("CONCATENATION", VARIABLE, 1, VARIABLE),
    # The math ops; their checks live in graph_math.py, imported only for a capsule that
    # has one (RAM on a small board).
    20: ("LOOKUP", 2, 1, 1),
    21: ("BINARY", 2, 1, 25),
    22: ("MEAN", 1, 1, 9),
    23: ("QUANTIZE_INT16", 1, 1, 5),
}


# Named tuples, not classes: a tuple costs a third of an instance's RAM on MicroPython (an
# instance keeps a dict of its attributes), which is 12 KB on a 57-tensor model.
Tensor = namedtuple("Tensor", ("dtype", "storage", "offset", "nbytes", "zero_point", "scale",
                               "dims"))
Op = namedtuple("Op", ("code", "inputs", "outputs", "params"))


class Graph:
    pass


def _bad(name, what):
    raise CapsuleError("%s: %s" % (name, what))


def parse_graph(buf, name, weights_len):
    if len(buf) < 16:
        _bad(name, "GRAPH section too short")
    n_tensors, n_ops, n_in, n_out, arena_bytes, _ = struct.unpack_from("<HHHHII", buf, 0)
    pos = 16 + 2 * (n_in + n_out)
    pos += -pos % 4
    if pos + _TENSOR_SIZE * n_tensors > len(buf):
        _bad(name, "GRAPH tensor table runs past the section")
    if n_in < 1 or n_out < 1:
        _bad(name, "GRAPH has %d inputs and %d outputs (needs at least one of each)"
             % (n_in, n_out))
    io = struct.unpack_from("<%dH" % (n_in + n_out), buf, 16)
    tensors = []
    for i in range(n_tensors):
        dtype, rank, storage, _, offset, nbytes, zp, scale = struct.unpack_from(
            "<BBBBIIif", buf, pos)
        dims = struct.unpack_from("<4I", buf, pos + 20)[:rank] if rank <= 4 else ()
        pos += _TENSOR_SIZE
        if dtype > FLOAT32 or rank > 4 or storage > OWN:
            _bad(name, "tensor %d: bad dtype %d, rank %d or storage %d"
                 % (i, dtype, rank, storage))
        count = 1
        for d in dims:
            count *= d
        if count * DTYPE_SIZES[dtype] != nbytes or nbytes == 0:
            _bad(name, "tensor %d: %d bytes does not match dims %r" % (i, nbytes, dims))
        if storage == ARENA and (dtype != INT8 or offset + nbytes > arena_bytes):
            _bad(name, "tensor %d: arena tensor at %d+%d outside the %d-byte arena or not int8"
                 % (i, offset, nbytes, arena_bytes))
        if storage == WEIGHTS and (offset % 16 or offset + nbytes > weights_len):
            _bad(name, "tensor %d: weights at %d+%d outside the %d-byte WEIGHTS section"
                 % (i, offset, nbytes, weights_len))
        tensors.append(Tensor(dtype, storage, offset, nbytes, zp, scale, dims))
    extent = 0
    for t in tensors:
        if t.storage == ARENA and t.offset + t.nbytes > extent:
            extent = t.offset + t.nbytes
    if arena_bytes < extent:
        _bad(name, "arena_bytes %d is smaller than the plan's extent %d" % (arena_bytes, extent))
    for t in io:
        if t >= n_tensors or tensors[t].storage == WEIGHTS:
            _bad(name, "model input/output tensor %d is not an activation" % t)
    ops = []
    for k in range(n_ops):
        if pos + 4 > len(buf):
            _bad(name, "GRAPH op %d runs past the section" % k)
        code, ni, no, np_ = struct.unpack_from("<BBBB", buf, pos)
        spec = OPS.get(code)
        if spec is None:
            raise UnsupportedError("%s: op %d has unknown opcode %d; update minerva on the board"
                                   % (name, k, code))
        if spec[1] == VARIABLE and ni >= 1 and no == spec[2] and np_ == ni + 1:
            pass
        elif (ni, no, np_) != spec[1:]:
            _bad(name, "op %d (%s) has %d inputs, %d outputs, %d params; expected %r"
                 % (k, spec[0], ni, no, np_, spec[1:]))
        if pos + 4 + 2 * (ni + no) > len(buf):
            _bad(name, "GRAPH op %d tensor indices run past the section" % k)
        idx = struct.unpack_from("<%dH" % (ni + no), buf, pos + 4)
        pos += 4 + 2 * (ni + no)
        pos += -pos % 4
        if pos + 4 * np_ > len(buf):
            _bad(name, "GRAPH op %d params run past the section" % k)
        params = struct.unpack_from("<%di" % np_, buf, pos)
        pos += 4 * np_
        op = Op(code, idx[:ni], idx[ni:], params)
        _check_op(name, k, op, tensors)
        ops.append(op)
    if pos != len(buf):
        _bad(name, "GRAPH has %d trailing bytes" % (len(buf) - pos))
    # Every activation is written (by the caller or an earlier op) before an op reads it, and
    # every output is written: no tier ever reads memory whose contents depend on the heap.
    written = set(io[:n_in])
    for k, op in enumerate(ops):
        for i in op.inputs:
            if i != ABSENT and tensors[i].storage != WEIGHTS and i not in written:
                _bad(name, "op %d (%s) reads tensor %d before anything writes it"
                     % (k, OPS[op.code][0], i))
        for o in op.outputs:
            written.add(o)
    for o in io[n_in:]:
        if o not in written:
            _bad(name, "model output tensor %d is never written" % o)
    g = Graph()
    g.extent = extent
    g.tensors = tensors
    g.ops = ops
    g.inputs = io[:n_in]
    g.outputs = io[n_in:]
    g.arena_bytes = arena_bytes
    return g


def _check_op(name, k, op, tensors):
    label = "op %d (%s)" % (k, OPS[op.code][0])
    n = len(tensors)

    def tensor(i, dtype, nbytes, role, optional=False):
        if i == ABSENT and optional:
            return
        if i >= n:
            _bad(name, "%s: %s tensor index %d out of range" % (label, role, i))
        t = tensors[i]
        if t.dtype != dtype or t.nbytes != nbytes:
            _bad(name, "%s: %s tensor %d is %s[%d bytes], params need %s[%d bytes]"
                 % (label, role, i, DTYPE_NAMES[t.dtype], t.nbytes, DTYPE_NAMES[dtype], nbytes))
        if role == "output" and t.storage == WEIGHTS:
            _bad(name, "%s: writes into weights tensor %d" % (label, i))

    def positive(values):
        for v in values:
            if v < 1:
                _bad(name, "%s: sizes, strides and dilations must be >= 1, got %r"
                     % (label, op.params))

    def act_range(lo, hi):
        if not -128 <= lo <= hi <= 127:
            _bad(name, "%s: activation range [%d, %d] is not within int8" % (label, lo, hi))

    def window(in_size, out_size, stride, taps, dilation, pad):
        # Every size and the furthest input coordinate a window reaches must stay far inside
        # int32 (the C kernels index with them).
        for v in (in_size, stride, dilation, pad):
            if v > _MAX_COORD:
                _bad(name, "%s: window geometry reaches past 2**30" % label)
        if (out_size - 1) * stride + (taps - 1) * dilation > _MAX_COORD:
            _bad(name, "%s: window geometry reaches past 2**30" % label)

    def zero_points(*offsets_and_signs):
        # Pairs (value, sign): an input offset is -zero_point (sign -1), an output offset the
        # zero point itself (sign 1).
        for k in range(0, len(offsets_and_signs), 2):
            zp = offsets_and_signs[k] * offsets_and_signs[k + 1]
            if not _MIN_ZERO_POINT <= zp <= _MAX_ZERO_POINT:
                _bad(name, "%s: zero point %d is outside int8" % (label, zp))

    def float_scale(bits):
        scale = struct.unpack("<f", struct.pack("<i", bits))[0]
        # Rejects 0, negatives, infinities and NaN (which fails every comparison).
        if not 0.0 < scale < 3.5e38:
            _bad(name, "%s: scale %r is not a positive finite float" % (label, scale))

    p = op.params
    ins, outs = op.inputs, op.outputs
    if op.code in (1, 2):
        window(p[1], p[4], p[9], p[7], p[11], p[13])
        window(p[2], p[5], p[10], p[8], p[12], p[14])
        zero_points(p[15], -1, p[16], 1)
        positive(p[0:13])
        b, h, w, c, oh, ow, oc, kh, kw = p[0:9]
        if p[13] < 0 or p[14] < 0:
            _bad(name, "%s: negative padding" % label)
        if op.code == 2:
            positive(p[19:20])
            if c * p[19] != oc:
                _bad(name, "%s: %d channels x depth multiplier %d != %d"
                     % (label, c, p[19], oc))
        tensor(ins[0], INT8, b * h * w * c, "input")
        tensor(ins[1], INT8, oc * kh * kw * (c if op.code == 1 else 1), "filter")
        tensor(ins[2], INT32, 4 * oc, "bias", True)
        tensor(ins[3], INT32, 4 * oc, "multiplier")
        tensor(ins[4], INT32, 4 * oc, "shift")
        tensor(outs[0], INT8, b * oh * ow * oc, "output")
        act_range(p[17], p[18])
    elif op.code == 3:
        positive(p[0:3])
        zero_points(p[3], -1, p[4], -1, p[5], 1)
        b, d, oc = p[0:3]
        tensor(ins[0], INT8, b * d, "input")
        tensor(ins[1], INT8, oc * d, "filter")
        tensor(ins[2], INT32, 4 * oc, "bias", True)
        tensor(ins[3], INT32, 4 * oc, "multiplier")
        tensor(ins[4], INT32, 4 * oc, "shift")
        tensor(outs[0], INT8, b * oc, "output")
        act_range(p[6], p[7])
    elif op.code in (4, 5):
        positive(p[0:10])
        window(p[1], p[4], p[8], p[6], 1, p[10])
        window(p[2], p[5], p[9], p[7], 1, p[11])
        if p[6] * p[7] >= _MAX_POOL_TAPS:
            _bad(name, "%s: a %dx%d pooling window is too large" % (label, p[6], p[7]))
        if p[10] < 0 or p[11] < 0:
            _bad(name, "%s: negative padding" % label)
        b, h, w, c, oh, ow = p[0:6]
        tensor(ins[0], INT8, b * h * w * c, "input")
        tensor(outs[0], INT8, b * oh * ow * c, "output")
        act_range(p[12], p[13])
    elif op.code == 6:
        positive(p[0:1])
        tensor(ins[0], INT8, p[0], "input")
        tensor(ins[1], INT8, p[0], "input")
        tensor(outs[0], INT8, p[0], "output")
        zero_points(p[1], -1, p[2], -1, p[3], 1)
        if not 0 <= p[4] <= _MAX_ADD_LEFT_SHIFT or not (
                _MIN_SHIFT <= p[6] <= 0 and _MIN_SHIFT <= p[8] <= 0 and _MIN_SHIFT <= p[10] <= 0):
            _bad(name, "%s: shifts out of range" % label)
        if p[5] < 0 or p[7] < 0 or p[9] < 0:
            _bad(name, "%s: negative multiplier" % label)
        act_range(p[11], p[12])
    elif op.code == 7:
        if ins[0] >= n or outs[0] >= n:
            _bad(name, "%s: tensor index out of range" % label)
        dtype = tensors[ins[0]].dtype
        tensor(ins[0], dtype, p[0], "input")
        tensor(outs[0], dtype, p[0], "output")
    elif op.code == 8:
        positive(p[0:2])
        tensor(ins[0], INT8, p[0] * p[1], "input")
        tensor(outs[0], INT8, p[0] * p[1], "output")
        if not 0 <= p[3] <= 31 or p[2] < 0 or p[4] > 0:
            _bad(name, "%s: softmax scaling out of range" % label)
        # Differences down to diff_min (at most 255 below the row's top) are shifted left by
        # beta_shift in int32, as TFLite's C does: they must fit.
        if (-p[4] if -p[4] < 255 else 255) << p[3] > 0x7FFFFFFF:
            _bad(name, "%s: softmax beta shift %d overflows int32 for differences down to %d"
                 % (label, p[3], p[4]))
        if p[1] > _MAX_SOFTMAX_DEPTH:
            # TFLite's Q12.19 sum of exponentials would overflow past 4095 classes.
            _bad(name, "%s: softmax over %d classes (at most %d)"
                 % (label, p[1], _MAX_SOFTMAX_DEPTH))
    elif op.code == 9:
        positive(p[1:2])
        if p[0] == 0:
            tensor(ins[0], FLOAT32, 4 * p[1], "input")
            zero_points(p[2], 1)
            float_scale(p[3])
        elif p[0] == 1:
            tensor(ins[0], INT8, p[1], "input")
            zero_points(p[2], 1, p[3], 1)
            if p[4] < 0 or not _MIN_SHIFT <= p[5] <= _MAX_REQUANTIZE_SHIFT:
                _bad(name, "%s: requantize multiplier out of range" % label)
        else:
            _bad(name, "%s: unknown mode %d" % (label, p[0]))
        tensor(outs[0], INT8, p[1], "output")
    elif op.code == 10:
        positive(p[0:1])
        zero_points(p[1], 1)
        float_scale(p[2])
        tensor(ins[0], INT8, p[0], "input")
        tensor(outs[0], FLOAT32, 4 * p[0], "output")
    elif op.code in (GATHER, CONCATENATION):
        # Imported here: a model without these ops does not pay the RAM for their checks.
        from .shape_checks import check_concatenation, check_gather

        def bad(what):
            _bad(name, "%s: %s" % (label, what))

        (check_gather if op.code == GATHER else check_concatenation)(p, ins, outs, tensor, bad)
        if op.code == GATHER and tensors[ins[1]].storage != WEIGHTS:
            # Its values are checked once at load, so they must not change afterwards.
            bad("table tensor %d is not a constant" % ins[1])
    elif op.code >= 20:
        from .graph_math import check

        check(name, op, tensors, label)
    for i in ins:
        if i != ABSENT and tensors[i].storage == ARENA:
            for o in outs:
                a, b = tensors[i], tensors[o]
                if b.storage == ARENA and a.offset < b.offset + b.nbytes \
                        and b.offset < a.offset + a.nbytes:
                    _bad(name, "%s: input %d and output %d overlap in the arena" % (label, i, o))


def check_residency(g, paged, name):
    # ``paged``: [[filter tensor, arena slot offset], ...] from the RESIDENCY section. Each
    # slot must lie in the arena and clear of the activations its ops read and write, and the
    # arena must be exactly as large as the plan needs.
    extent = g.extent
    slots = {}
    for entry in paged:
        if not isinstance(entry, list) or len(entry) != 2:
            _bad(name, "RESIDENCY entry %r is not [tensor, offset]" % (entry,))
        t, off = entry
        users = [op for op in g.ops if op.code <= 3 and op.inputs[1] == t]
        if not users or t in slots:
            _bad(name, "RESIDENCY pages tensor %r, which is not a conv/fc filter" % (t,))
        size = g.tensors[t].nbytes
        if not 0 <= off <= g.arena_bytes - size:
            _bad(name, "RESIDENCY slot for tensor %d at %d+%d is outside the arena"
                 % (t, off, size))
        for op in users:
            for i in op.inputs + op.outputs:
                a = g.tensors[i] if i != ABSENT else None
                if a is not None and a.storage == ARENA and a.offset < off + size \
                        and off < a.offset + a.nbytes:
                    _bad(name, "RESIDENCY slot for tensor %d overlaps tensor %d" % (t, i))
        slots[t] = off
        if off + size > extent:
            extent = off + size
    if g.arena_bytes != extent:
        _bad(name, "arena_bytes %d does not match the plan's extent %d" % (g.arena_bytes, extent))
    return slots
