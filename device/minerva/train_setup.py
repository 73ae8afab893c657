# On-device training, set-up part (docs/training.md): read the TRAIN section, check the chain
# against the graph, and compile the TRAIN_SCHEDULE into steps with arena slots and scratch
# file offsets. Everything here runs once, before the first iteration.
import json
import struct
from array import array

from .capsule import SECTION_TRAIN_SCHEDULE
from .errors import CapsuleError
from .graph import FLOAT32
from .memory import new_buffer

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

SECTION_TRAIN = const(20)
_CONV = const(1)
_FC = const(3)
_SOFTMAX = const(8)
FREE = const(4)
PAGE_OUT = const(2)
PAGE_IN = const(3)
STEP_OPS = ("compute", "recompute", "page_out", "page_in", "free")
_MAX_LAYERS = const(16)


def read_section(f, sections, kind, name, label):
    off, n, _ = sections[kind]
    f.seek(off)
    data = f.read(n)
    if len(data) != n:
        raise CapsuleError("%s: truncated %s" % (name, label))
    return off, data


def _f32(value):
    return struct.unpack("<f", struct.pack("<f", value))[0]


def float_buffer(count):
    buf = new_buffer(FLOAT32, 4 * count)
    for k in range(count):
        buf[k] = 0.0
    return buf


def read_train(f, name, sections):
    # (TRAIN header dict, file offset of its float32 data, data floats available).
    if SECTION_TRAIN not in sections or SECTION_TRAIN_SCHEDULE not in sections:
        raise CapsuleError("%s: not trainable (no TRAIN or TRAIN_SCHEDULE section); pack it "
                           "with minerva pack --trainable last:K --board NAME" % name)
    off, n, _ = sections[SECTION_TRAIN]
    f.seek(off)
    head = f.read(8)
    if n < 8 or head[:4] != b"MNVT":
        raise CapsuleError("%s: TRAIN section is not a minerva-train section" % name)
    size = struct.unpack("<I", head[4:])[0]
    start = 8 + size + (-(8 + size) % 16)
    if start > n:
        raise CapsuleError("%s: TRAIN header (%d bytes) runs past the section" % (name, size))
    try:
        header = json.loads(f.read(size))
    except ValueError:
        raise CapsuleError("%s: TRAIN header is not JSON" % name)
    return header, off + start, (n - start) // 4


def check_train(cond, name, what):
    if not cond:
        raise CapsuleError("%s: TRAIN: %s" % (name, what))


def chain_layers(g, header, floats, name):
    # One tuple per chain op: (op index, conv, n_in, n_out, args, lo, hi, clamped, weights
    # offset, bias offset), checked against the graph; and the loss.
    t = g.tensors
    check_train(header.get("format") == "minerva-train" and header.get("version") == 1, name,
           "unknown format or version (update minerva on the board)")
    loss = header.get("loss")
    check_train(loss in ("cross_entropy", "mse"), name, "unknown loss %r" % (loss,))
    entries = header.get("layers")
    check_train(isinstance(entries, list) and 1 <= len(entries) <= _MAX_LAYERS, name,
           "1 to %d layers needed" % _MAX_LAYERS)
    check_train(header.get("floats") == floats, name, "%r floats declared, %d present"
           % (header.get("floats"), floats))
    layers = []
    for k, e in enumerate(entries):
        i, w_at, b_at = e.get("op"), e.get("weights"), e.get("bias")
        check_train(type(i) is int and type(w_at) is int and type(b_at) is int, name,
               "layer %d: op, weights and bias must be integers" % k)
        check_train(0 <= i < len(g.ops) and (k == 0 or i == layers[-1][0] + 1), name,
               "layer %d: op %d is not the next op of the chain" % (k, i))
        op = g.ops[i]
        p = op.params
        check_train(op.code in (_FC, _CONV) and op.inputs[2] != 0xFFFF, name,
               "op %d is not a FULLY_CONNECTED or CONV_2D with a bias" % i)
        check_train(k == 0 or op.inputs[0] == g.ops[i - 1].outputs[0], name,
               "op %d does not read op %d's output" % (i, i - 1))
        n_in, n_out = t[op.inputs[0]].nbytes, t[op.outputs[0]].nbytes
        if op.code == _FC:
            check_train(p[0] == 1 and p[4] == 0 and n_in == p[1] and n_out == p[2], name,
                   "op %d: batch 1, symmetric weights and matching sizes needed" % i)
            args, zp, lo, hi, out_c = None, p[5], p[6], p[7], p[2]
        else:
            args = array("i", p[1:15])
            check_train(p[0] == 1 and n_in == p[1] * p[2] * p[3] and n_out == p[4] * p[5] * p[6],
                   name, "op %d: batch 1 and matching sizes needed" % i)
            zp, lo, hi, out_c = p[16], p[17], p[18], p[6]
        n_w = t[op.inputs[1]].nbytes
        check_train(t[op.inputs[2]].nbytes == 4 * out_c and
               0 <= w_at and w_at + n_w <= floats and 0 <= b_at and b_at + out_c <= floats,
               name, "layer %d: weights or bias outside the data" % k)
        s = t[op.outputs[0]].scale
        # The int8 op's clamp (its fused activation, or the int8 range): the float forward
        # saturates where the deployed model does, and its gradient stops there.
        lo_f, hi_f = _f32((lo - zp) * s), _f32((hi - zp) * s)
        layers.append((i, args, n_in, n_out, n_w, out_c, lo_f, hi_f, w_at, b_at))
    last = g.ops[layers[-1][0]]
    after = g.ops[layers[-1][0] + 1:]
    if loss == "cross_entropy":
        check_train(len(after) == 1 and after[0].code == _SOFTMAX and
               after[0].inputs[0] == last.outputs[0], name,
               "cross-entropy needs the chain followed by one SOFTMAX")
    else:
        check_train(not after and last.outputs[0] in g.outputs, name,
               "MSE needs the chain to end the model")
    return layers, loss


def node_sizes(layers):
    # Floats of each schedule node: forward outputs, the loss gradient, input gradients.
    count = len(layers)
    sizes = [layer[3] for layer in layers] + [layers[-1][3]]
    for j in range(count - 1, -1, -1):
        sizes.append(layers[j][2] if j else 0)
    return sizes


def node_inputs(count, node):
    # The nodes a computation of ``node`` reads (edges of the chain's training graph).
    if node < count:
        return (node - 1,) if node else ()
    if node == count:
        return (count - 1,)
    j = 2 * count - node
    return ((count if j == count - 1 else node - 1), j) + ((j - 1,) if j else ())


def compile_steps(document, layers, name):
    # Replay the steps (checking every dependency), place each tensor first-fit in one float
    # arena and each paged tensor in the scratch file: [(op, node, start, file offset)],
    # arena floats, scratch bytes.
    count = len(layers)
    sizes = node_sizes(layers)
    check_train(document.get("format") == "minerva-train-schedule" and
           document.get("version") == 1, name, "TRAIN_SCHEDULE format unknown")
    check_train(document.get("chain_ops") == [layer[0] for layer in layers] and
           len(document.get("tensors", ())) == len(sizes), name,
           "TRAIN_SCHEDULE was planned for another chain")
    held, placed, paged, computed, program = {}, [], {}, set(), []
    scratch = arena = 0
    for step in document.get("steps", ()):
        op, node = step.get("op"), step.get("node")
        check_train(op in STEP_OPS and type(node) is int and 0 <= node < len(sizes), name,
               "bad step %r" % (step,))
        code = STEP_OPS.index(op)
        where = -1
        if code < 2 or code == PAGE_IN:
            check_train(node not in held, name, "step %r: tensor already in RAM" % (step,))
            if code < 2:
                check_train((code == 0) == (node not in computed) and (code == 0 or node < count),
                       name, "step %r: compute first, recompute only forward tensors"
                       % (step,))
                for src in node_inputs(count, node):
                    check_train(src in held, name, "step %r needs tensor %d in RAM" % (step, src))
                computed.add(node)
            else:
                check_train(node in paged, name, "step %r: never paged out" % (step,))
            start = 0
            for a, b in sorted(placed):
                if start + sizes[node] <= a:
                    break
                start = max(start, b)
            held[node] = (start, start + sizes[node])
            placed.append(held[node])
            arena = max(arena, start + sizes[node])
            where = start
        else:
            check_train(node in held, name, "step %r: tensor not in RAM" % (step,))
            where = held[node][0]
            if code == PAGE_OUT and node not in paged:
                paged[node] = scratch
                scratch += 4 * sizes[node]
            elif code == FREE:
                placed.remove(held.pop(node))
        program.append((code, node, where, paged.get(node, 0)))
    check_train(len(computed) == len(sizes), name, "TRAIN_SCHEDULE does not compute every tensor")
    return program, arena, scratch
