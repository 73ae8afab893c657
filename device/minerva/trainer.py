# On-device fine-tuning of a capsule's trainable chain, following its TRAIN_SCHEDULE
# (docs/training.md). Imported only when training is used. Set-up checks everything and
# allocates everything; an iteration then only runs the compiled steps.
import gc
import json
import os
import struct
from array import array

from . import train_kernels as K
from .capsule import SECTION_GRAPH, SECTION_TRAIN_SCHEDULE, SECTION_WEIGHTS, verified_sections
from .errors import CapsuleError
from .graph import FLOAT32, parse_graph
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
_FREE = const(4)
_PAGE_OUT = const(2)
_PAGE_IN = const(3)
STEP_OPS = ("compute", "recompute", "page_out", "page_in", "free")
_MAX_LAYERS = const(16)


def _section(f, sections, kind, name, label):
    off, n, _ = sections[kind]
    f.seek(off)
    data = f.read(n)
    if len(data) != n:
        raise CapsuleError("%s: truncated %s" % (name, label))
    return off, data


def _f32(value):
    return struct.unpack("<f", struct.pack("<f", value))[0]


def _floats(count):
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


def _check(cond, name, what):
    if not cond:
        raise CapsuleError("%s: TRAIN: %s" % (name, what))


def chain_layers(g, header, floats, name):
    # One tuple per chain op: (op index, conv, n_in, n_out, args, lo, hi, clamped, weights
    # offset, bias offset), checked against the graph; and the loss.
    t = g.tensors
    _check(header.get("format") == "minerva-train" and header.get("version") == 1, name,
           "unknown format or version (update minerva on the board)")
    loss = header.get("loss")
    _check(loss in ("cross_entropy", "mse"), name, "unknown loss %r" % (loss,))
    entries = header.get("layers")
    _check(isinstance(entries, list) and 1 <= len(entries) <= _MAX_LAYERS, name,
           "1 to %d layers needed" % _MAX_LAYERS)
    _check(header.get("floats") == floats, name, "%r floats declared, %d present"
           % (header.get("floats"), floats))
    layers = []
    for k, e in enumerate(entries):
        i, w_at, b_at = e.get("op"), e.get("weights"), e.get("bias")
        _check(type(i) is int and type(w_at) is int and type(b_at) is int, name,
               "layer %d: op, weights and bias must be integers" % k)
        _check(0 <= i < len(g.ops) and (k == 0 or i == layers[-1][0] + 1), name,
               "layer %d: op %d is not the next op of the chain" % (k, i))
        op = g.ops[i]
        p = op.params
        _check(op.code in (_FC, _CONV) and op.inputs[2] != 0xFFFF, name,
               "op %d is not a FULLY_CONNECTED or CONV_2D with a bias" % i)
        _check(k == 0 or op.inputs[0] == g.ops[i - 1].outputs[0], name,
               "op %d does not read op %d's output" % (i, i - 1))
        n_in, n_out = t[op.inputs[0]].nbytes, t[op.outputs[0]].nbytes
        if op.code == _FC:
            _check(p[0] == 1 and p[4] == 0 and n_in == p[1] and n_out == p[2], name,
                   "op %d: batch 1, symmetric weights and matching sizes needed" % i)
            args, zp, lo, hi, out_c = None, p[5], p[6], p[7], p[2]
        else:
            args = array("i", p[1:15])
            _check(p[0] == 1 and n_in == p[1] * p[2] * p[3] and n_out == p[4] * p[5] * p[6],
                   name, "op %d: batch 1 and matching sizes needed" % i)
            zp, lo, hi, out_c = p[16], p[17], p[18], p[6]
        n_w = t[op.inputs[1]].nbytes
        _check(t[op.inputs[2]].nbytes == 4 * out_c and
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
        _check(len(after) == 1 and after[0].code == _SOFTMAX and
               after[0].inputs[0] == last.outputs[0], name,
               "cross-entropy needs the chain followed by one SOFTMAX")
    else:
        _check(not after and last.outputs[0] in g.outputs, name,
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
    _check(document.get("format") == "minerva-train-schedule" and
           document.get("version") == 1, name, "TRAIN_SCHEDULE format unknown")
    _check(document.get("chain_ops") == [layer[0] for layer in layers] and
           len(document.get("tensors", ())) == len(sizes), name,
           "TRAIN_SCHEDULE was planned for another chain")
    held, placed, paged, computed, program = {}, [], {}, set(), []
    scratch = arena = 0
    for step in document.get("steps", ()):
        op, node = step.get("op"), step.get("node")
        _check(op in STEP_OPS and type(node) is int and 0 <= node < len(sizes), name,
               "bad step %r" % (step,))
        code = STEP_OPS.index(op)
        where = -1
        if code < 2 or code == _PAGE_IN:
            _check(node not in held, name, "step %r: tensor already in RAM" % (step,))
            if code < 2:
                _check((code == 0) == (node not in computed) and (code == 0 or node < count),
                       name, "step %r: compute first, recompute only forward tensors"
                       % (step,))
                for src in node_inputs(count, node):
                    _check(src in held, name, "step %r needs tensor %d in RAM" % (step, src))
                computed.add(node)
            else:
                _check(node in paged, name, "step %r: never paged out" % (step,))
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
            _check(node in held, name, "step %r: tensor not in RAM" % (step,))
            where = held[node][0]
            if code == _PAGE_OUT and node not in paged:
                paged[node] = scratch
                scratch += 4 * sizes[node]
            elif code == _FREE:
                placed.remove(held.pop(node))
        program.append((code, node, where, paged.get(node, 0)))
    _check(len(computed) == len(sizes), name, "TRAIN_SCHEDULE does not compute every tensor")
    return program, arena, scratch


def train_kernels(tier=None):
    # (module, tier): the C kernels where the native module has them (builds with a hardware
    # FPU), else the pure-Python spec; tier "python" forces the spec.
    if tier != "python":
        try:
            import minerva_nat

            if hasattr(minerva_nat, "fc_backward"):
                return minerva_nat, "natmod"
        except ImportError:
            pass
        if tier == "natmod":
            raise CapsuleError("no native training kernels on this board (a float build of "
                               "minerva_nat is needed); use kernels='python'")
    return K, "python"


class Trainer:
    def __init__(self, model, path, scratch="/capsules/train.scratch", measure=False,
                 kernels=None):
        self.model, self.path, self.measure = model, path, measure
        self.k, self.tier = train_kernels(kernels)
        with open(path, "rb") as f:
            sections = verified_sections(f, path, os.stat(path)[6])
            header, data_at, floats = read_train(f, path, sections)
            # The three largest buffers first, while the heap is least cut up (parsing the
            # graph and the schedule scatters small objects over it).
            gc.collect()
            self.params = _floats(floats)
            self.velocity, self.grads = _floats(floats), _floats(floats)
            g = parse_graph(_section(f, sections, SECTION_GRAPH, path, "GRAPH")[1], path,
                            sections[SECTION_WEIGHTS][1])
            layers, self.loss_kind = chain_layers(g, header, floats, path)
            document = json.loads(_section(f, sections, SECTION_TRAIN_SCHEDULE, path,
                                           "TRAIN_SCHEDULE")[1])
            program, arena_floats, scratch_bytes = compile_steps(document, layers, path)
            self.planned = document.get("predicted", {})
            opt = header.get("optimizer", {})
            self.lr, self.momentum, self.batch = opt.get("lr"), opt.get("momentum"), \
                opt.get("batch")
            _check(opt.get("name") == "sgd" and self.lr > 0 and 0 <= self.momentum < 1 and
                   type(self.batch) is int and self.batch >= 1, path, "bad optimizer")
            first = g.ops[layers[0][0]].inputs[0]
            self.boundary_scale = g.tensors[first].scale
            self.boundary_zp = g.tensors[first].zero_point
            del g, document, header, sections
            gc.collect()
            f.seek(data_at)
            f.readinto(self.params)
        self.boundary = _floats(layers[0][2])
        self.target = _floats(layers[-1][3]) if self.loss_kind == "mse" else None
        self.arena = _floats(arena_floats)
        self.arena_bytes, self.scratch_bytes = 4 * arena_floats, scratch_bytes
        pv, gv, av = memoryview(self.params), memoryview(self.grads), memoryview(self.arena)
        self.layers = [(args, n_in, n_out, lo, hi, True,
                        pv[w:w + n_w], pv[b:b + out_c], gv[w:w + n_w], gv[b:b + out_c])
                       for i, args, n_in, n_out, n_w, out_c, lo, hi, w, b in layers]
        sizes = node_sizes(layers)
        views = {}  # one view per (slot, size): the program's steps share them
        for _, node, at, _ in program:
            if sizes[node] and (at, sizes[node]) not in views:
                views[(at, sizes[node])] = av[at:at + sizes[node]]
        self.program = [(code, node, views.get((at, sizes[node])), pos)
                        for code, node, at, pos in program]
        del views
        self.head = model._steps[:layers[0][0]]
        self.boundary_q = model._steps[layers[0][0]][2][0]
        self.current = [None] * len(sizes)
        self.scratch = None
        if scratch_bytes:
            self.scratch = open(scratch, "w+b")
        self.samples = self.pending = self.epochs = 0
        self.loss = 0.0
        self.paged_bytes = 0
        self.peak_heap = 0

    def close(self):
        if self.scratch is not None:
            self.scratch.close()
            self.scratch = None

    def _head(self, x):
        m = self.model
        if len(m.inputs) == 1:
            m.set_input(0, x)
        else:
            for k in range(len(m.inputs)):
                m.set_input(k, x[k])
        f = m._file
        for n, fn, b, args, page, pos in self.head:
            if page is not None:
                f.seek(pos)
                f.readinto(page)
            if n == 6:
                fn(b[0], b[1], b[2], b[3], b[4], b[5], args)
            elif n == 2:
                fn(b[0], b[1], args)
            else:
                fn(b[0], b[1], b[2], args)
        q, out, s, zp = self.boundary_q, self.boundary, self.boundary_scale, self.boundary_zp
        for k in range(len(out)):
            out[k] = (q[k] - zp) * s

    def learn(self, x, label):
        # One sample: forward, loss, backward as the schedule says; the weights move every
        # ``batch`` samples. ``label``: a class (cross-entropy) or target values (MSE).
        count = len(self.layers)
        if self.target is None:
            if not 0 <= label < self.layers[-1][2]:
                raise ValueError("label %r is not a class of this model" % (label,))
        else:
            if len(label) != len(self.target):
                raise ValueError("target has %d values, the model gives %d"
                                 % (len(label), len(self.target)))
            for k in range(len(self.target)):
                self.target[k] = label[k]
        self._head(x)
        cur, f = self.current, self.scratch
        for code, node, view, pos in self.program:
            if code == _PAGE_OUT:
                f.seek(pos)
                f.write(view)
                self.paged_bytes += 4 * len(view)
            elif code == _PAGE_IN:
                f.seek(pos)
                f.readinto(view)
                cur[node] = view
            elif code < 2:
                cur[node] = view
                self._compute(count, node, view, label)
            if self.measure:
                gc.collect()
                self.peak_heap = max(self.peak_heap, gc.mem_alloc())
        self.samples += 1
        self.pending += 1
        if self.pending == self.batch:
            self.step()
        return self.loss

    def _compute(self, count, node, out, label):
        cur = self.current
        if node == count:
            if self.target is None:
                self.loss = K.softmax_xent(cur[count - 1], label, out, len(out))
            else:
                self.loss = K.mse(cur[count - 1], self.target, out, len(out))
            return
        j = node if node < count else 2 * count - node
        args, n_in, n_out, lo, hi, clamped, w, b, dw, db = self.layers[j]
        x = cur[j - 1] if j else self.boundary
        if node < count:
            if args is None:
                self.k.fc_forward(x, w, b, out, n_in, n_out, lo, hi)
            else:
                self.k.conv_forward(x, w, b, out, args, lo, hi)
            return
        dy = cur[count] if j == count - 1 else cur[node - 1]
        if clamped:
            self.k.clamp_mask(cur[j], dy, n_out, lo, hi)
        if args is None:
            self.k.fc_backward(x, w, dy, dw, db, out, n_in, n_out)
        else:
            self.k.conv_backward(x, w, dy, dw, db, out, args)

    def step(self):
        # Apply the accumulated gradients (their mean over the samples since the last step).
        if self.pending:
            self.k.sgd_momentum(self.params, self.grads, self.velocity, len(self.params), self.lr,
                           self.momentum, 1.0 / self.pending)
            self.pending = 0

    def train(self, samples, labels, epochs=1):
        # ``epochs`` passes over the samples in order; returns the mean loss of the last one.
        total = 0.0
        for _ in range(epochs):
            total = 0.0
            for k in range(len(samples)):
                total += self.learn(samples[k], labels[k])
            self.step()
            self.epochs += 1
        return total / len(samples) if samples else 0.0


class FileSamples:
    # Fixed-size samples stored back to back in a file, read one at a time into one buffer
    # (so a board trains on more samples than its heap holds). train() takes it as a sequence.
    def __init__(self, path, size):
        self.file = open(path, "rb")
        self.buf = bytearray(size)
        self.count = os.stat(path)[6] // size

    def __len__(self):
        return self.count

    def __getitem__(self, index):
        if not 0 <= index < self.count:
            raise IndexError(index)
        self.file.seek(index * len(self.buf))
        self.file.readinto(self.buf)
        return self.buf
