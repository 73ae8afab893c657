# The natmod tier's run plan: every op of a model as one flat int32 table that
# minerva_nat.run_plan runs in a single call (natmod/kernels/mnv_plan.h has the format), as
# TFLite Micro's interpreter loops over its nodes in C. It replaces the per-op Python loop's
# step tuples, argument arrays and buffer views: a call per op cost ~11,000 cycles on a Pico.
# Built at load after every check; the C side checks the table again before running it.
from array import array

from .graph import ABSENT, ARENA, INT32, OPS, WEIGHTS
from .memory import new_buffer

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

# The limits the C runner assumes (natmod/kernels/mnv_limits.h; tests/test_limits.py checks).
_PLAN_MAX_PARAMS = const(25)
_PLAN_OPERAND_WORDS = const(3)
# Ops a plan runs: weighted, pooling, ADD, RESHAPE, SOFTMAX, GATHER and the math ops but
# QUANTIZE_INT16. A model with any other (CONCATENATION, the float edge ops) keeps the loop.
_PLANNED = (1, 2, 3, 4, 5, 6, 7, 8, 11, 20, 21, 22)


def build_plan(g, kernels, arena, inplace, weights_at, buffers):
    # (table, regions) for ``g``'s ops, or None when this model cannot run as one plan.
    # Region 0 is the arena, region 1 the capsule's bytes when its weights are used in place
    # (``weights_at``: where its WEIGHTS section starts), then one per weights buffer.
    if getattr(kernels, "run_plan", None) is None:
        return None
    words = 0
    for op in g.ops:
        if op.code not in _PLANNED or len(op.params) > _PLAN_MAX_PARAMS:
            return None
        words += 2 + len(op.params) + _PLAN_OPERAND_WORDS * (len(op.inputs) + len(op.outputs))
    table = new_buffer(INT32, 4 * words)
    regions = [arena, inplace if inplace is not None else b""]
    at = 0
    for op in g.ops:
        table[at] = op.code
        table[at + 1] = len(op.params)
        at += 2
        for p in op.params:
            table[at] = p
            at += 1
        for i in op.inputs + op.outputs:
            region = offset = size = 0
            if i == ABSENT:
                region = -1
            else:
                t = g.tensors[i]
                size = t.nbytes
                if t.storage == ARENA:
                    offset = t.offset
                elif t.storage == WEIGHTS and inplace is not None:
                    region, offset = 1, weights_at + t.offset
                else:
                    region = len(regions)
                    regions.append(buffers[i])
            table[at] = region
            table[at + 1] = offset
            table[at + 2] = size
            at += _PLAN_OPERAND_WORDS
    return table, tuple(regions)


def plan_steps(kernels, table, regions):
    # The step tuples run() loops over without a plan, rebuilt from one (views into the same
    # buffers, so the kernels read and write what the plan's ops do).
    steps = []
    at = 0
    while at < len(table):
        code, n_params = table[at], table[at + 1]
        params = array("i", table[at + 2:at + 2 + n_params])
        at += 2 + n_params
        bufs = []
        for _ in range(OPS[code][1] + OPS[code][2]):
            region, offset, size = table[at], table[at + 1], table[at + 2]
            at += _PLAN_OPERAND_WORDS
            if region < 0:
                bufs.append(None)
            elif region >= 2:
                bufs.append(regions[region])  # a weights buffer of its own, used whole
            else:
                bufs.append(memoryview(regions[region])[offset:offset + size])
        steps.append((len(bufs), getattr(kernels, OPS[code][0].lower()), tuple(bufs), params,
                      None, 0))
    return steps
