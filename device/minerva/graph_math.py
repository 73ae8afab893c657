# Load-time checks of the math ops (opcodes 20-23, docs/capsule-format.md): every size,
# stride, zero point, multiplier and shift is bounded so that each kernel tier stays inside
# its buffers and inside int32 (where they would wrap differently) whatever the capsule says.
try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

from .errors import CapsuleError

LOOKUP = const(20)
BINARY = const(21)
MEAN = const(22)
QUANTIZE_INT16 = const(23)

# BINARY kinds
ADD = const(0)
SUB = const(1)
MUL = const(2)
MAXIMUM = const(3)
MINIMUM = const(4)
KINDS = ("ADD", "SUB", "MUL", "MAXIMUM", "MINIMUM")

_INT8 = const(0)
_INT16 = const(2)
_INT32_MAX = const(0x7FFFFFFF)
_MAX_DIM = const(0x3FFFFFFF)
# MEAN sums at most 2**23 int8 values, so the sum minus zero_point * count stays in int32.
_MAX_MEAN_COUNT = const(0x800000)
# Shared with the C (natmod/kernels/mnv_limits.h; tests/test_limits.py checks they agree).
_MIN_SHIFT = const(-31)
_MAX_SHIFT = const(30)
_MAX_MUL_SHIFT = const(15)
_MAX_QUANTIZE_INT16_SHIFT = const(15)


def _bad(name, what):
    raise CapsuleError("%s: %s" % (name, what))


def _tensor(name, label, tensors, index, dtype, role, writes=False):
    if index >= len(tensors):
        _bad(name, "%s: %s tensor index %d out of range" % (label, role, index))
    t = tensors[index]
    if t.dtype != dtype:
        _bad(name, "%s: %s tensor %d has dtype %d, expected %d"
             % (label, role, index, t.dtype, dtype))
    if writes and t.storage == 1:
        _bad(name, "%s: writes into weights tensor %d" % (label, index))
    return t


def _within(name, label, what, value, lo, hi):
    if not lo <= value <= hi:
        _bad(name, "%s: %s %d is outside [%d, %d]" % (label, what, value, lo, hi))


def _product(values):
    n = 1
    for v in values:
        n *= v
    return n


def check(name, op, tensors, label):
    p = op.params
    ins, outs = op.inputs, op.outputs
    if op.code == LOOKUP:
        inp = _tensor(name, label, tensors, ins[0], _INT8, "input")
        table = _tensor(name, label, tensors, ins[1], _INT8, "table")
        out = _tensor(name, label, tensors, outs[0], _INT8, "output", True)
        if table.nbytes != 256 or p[0] < 1 or p[0] != inp.nbytes or p[0] != out.nbytes:
            _bad(name, "%s: size %d, table %d bytes do not match the tensors"
                 % (label, p[0], table.nbytes))
    elif op.code == BINARY:
        _check_binary(name, label, p, tensors, ins, outs)
    elif op.code == MEAN:
        inp = _tensor(name, label, tensors, ins[0], _INT8, "input")
        out = _tensor(name, label, tensors, outs[0], _INT8, "output", True)
        for v in p[0:5]:
            _within(name, label, "size", v, 1, _MAX_DIM)
        if _product(p[0:5]) != inp.nbytes or p[0] * p[2] * p[4] != out.nbytes:
            _bad(name, "%s: sizes %r do not match the tensors" % (label, p[0:5]))
        count = p[1] * p[3]
        _within(name, label, "reduced count", count, 1, _MAX_MEAN_COUNT)
        _within(name, label, "input zero point", p[5], -128, 127)
        _within(name, label, "output zero point", p[6], -128, 127)
        _within(name, label, "multiplier", p[7], 0, _INT32_MAX)
        _within(name, label, "shift", p[8], _MIN_SHIFT, _MAX_SHIFT)
        if p[8] > 0 and (255 * count) << p[8] > _INT32_MAX:
            _bad(name, "%s: shift %d overflows int32 for %d values" % (label, p[8], count))
    elif op.code == QUANTIZE_INT16:
        inp = _tensor(name, label, tensors, ins[0], _INT16, "input")
        out = _tensor(name, label, tensors, outs[0], _INT8, "output", True)
        if p[0] < 1 or 2 * p[0] != inp.nbytes or p[0] != out.nbytes:
            _bad(name, "%s: size %d does not match the tensors" % (label, p[0]))
        _within(name, label, "input zero point", p[1], -32768, 32767)
        _within(name, label, "output zero point", p[2], -128, 127)
        _within(name, label, "multiplier", p[3], 0, _INT32_MAX)
        # 65535 << 15 is the largest left-shifted difference that stays in int32.
        _within(name, label, "shift", p[4], _MIN_SHIFT, _MAX_QUANTIZE_INT16_SHIFT)


def _check_binary(name, label, p, tensors, ins, outs):
    a = _tensor(name, label, tensors, ins[0], _INT8, "first input")
    b = _tensor(name, label, tensors, ins[1], _INT8, "second input")
    out = _tensor(name, label, tensors, outs[0], _INT8, "output", True)
    kind = p[0]
    _within(name, label, "kind", kind, 0, 4)
    dims = p[1:5]
    for d in dims:
        _within(name, label, "dim", d, 1, _MAX_DIM)
    if _product(dims) != out.nbytes:
        _bad(name, "%s: dims %r do not match the output's %d bytes" % (label, dims, out.nbytes))
    for strides, t, role in ((p[5:9], a, "first"), (p[9:13], b, "second")):
        reach = 0
        for d, s in zip(dims, strides):
            _within(name, label, role + " input stride", s, 0, t.nbytes)
            reach += (d - 1) * s
        if reach >= t.nbytes:
            _bad(name, "%s: %s input strides reach element %d of %d"
                 % (label, role, reach, t.nbytes))
    # Offsets are negated int8 zero points, so (x + offset) stays in [-255, 255].
    _within(name, label, "first input offset", p[13], -127, 128)
    _within(name, label, "second input offset", p[14], -127, 128)
    _within(name, label, "output offset", p[15], -128, 127)
    for m in (p[17], p[19], p[21]):
        _within(name, label, "multiplier", m, 0, _INT32_MAX)
    if kind == ADD or kind == SUB:
        _within(name, label, "left shift", p[16], 0, 20)
        for s in (p[18], p[20], p[22]):
            _within(name, label, "shift", s, _MIN_SHIFT, 0)
    elif kind == MUL:
        # |(a + off) * (b + off)| <= 65025, and 65025 << 15 < 2**31.
        _within(name, label, "shift", p[22], _MIN_SHIFT, _MAX_MUL_SHIFT)
    if not -128 <= p[23] <= p[24] <= 127:
        _bad(name, "%s: activation range [%d, %d] is not within int8" % (label, p[23], p[24]))
