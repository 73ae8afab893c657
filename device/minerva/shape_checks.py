# Load-time checks for the data-movement ops, GATHER and CONCATENATION (docs/capsule-format.md):
# with these, their kernels cannot index outside their buffers whatever the capsule says.
try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

from .errors import CapsuleError

# A GATHER table entry meaning "pad here"; every other entry is >= 0 and the largest entries
# of the four tables sum to less than the input size (< 2**29), so an output element's offset
# sum is negative exactly when it is padding, and four PAD_MARKs still fit in int32.
PAD_MARK = const(-0x20000000)
MAX_GATHER_INPUT = const(0x20000000)
INT8 = const(0)
INT32 = const(3)


def check_gather(p, ins, outs, tensor, bad):
    # params: in_nbytes, d0, d1, d2, d3, pad_value.
    if not 1 <= p[0] < MAX_GATHER_INPUT:
        bad("input size %d is not in [1, 2**29)" % p[0])
    count = 1
    for d in p[1:5]:
        if not 1 <= d < MAX_GATHER_INPUT:
            bad("output dimension %d is not in [1, 2**29)" % d)
        count *= d
    if not -128 <= p[5] <= 127:
        bad("pad value %d is not int8" % p[5])
    tensor(ins[0], INT8, p[0], "input")
    tensor(ins[1], INT32, 4 * (p[1] + p[2] + p[3] + p[4]), "table")
    tensor(outs[0], INT8, count, "output")


def check_gather_table(table, p, name, k):
    # The table's values, once its bytes are in RAM (it is a weights tensor, so they never
    # change after this).
    in_n = p[0]
    pos = 0
    total = 0
    for d in p[1:5]:
        top = 0
        for i in range(pos, pos + d):
            v = table[i]
            if v == PAD_MARK:
                continue
            if v < 0 or v >= in_n:
                raise CapsuleError("%s: op %d (GATHER): table entry %d is %d, outside the "
                                   "%d-byte input" % (name, k, i, v, in_n))
            if v > top:
                top = v
        total += top
        pos += d
    if total >= in_n:
        raise CapsuleError("%s: op %d (GATHER): table reaches offset %d of a %d-byte input"
                           % (name, k, total, in_n))


def check_concatenation(p, ins, outs, tensor, bad):
    # params: outer, then one inner size per input (its axis dimension times the trailing
    # dimensions); the output's inner size is their sum.
    if len(p) != len(ins) + 1 or not ins:
        bad("%d params for %d inputs (expected inputs + 1)" % (len(p), len(ins)))
    for v in p:
        if v < 1:
            bad("sizes must be >= 1, got %r" % (p,))
    inner = 0
    for k in range(len(ins)):
        tensor(ins[k], INT8, p[0] * p[k + 1], "input")
        inner += p[k + 1]
    tensor(outs[0], INT8, p[0] * inner, "output")
