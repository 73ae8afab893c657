# On-device fine-tuning of a capsule's trainable chain, following its TRAIN_SCHEDULE
# (docs/training.md). Imported only when training is used. Set-up checks everything and
# allocates everything; an iteration then only runs the compiled steps.
import gc
import json
import os

from . import train_kernels as K
from .capsule import SECTION_GRAPH, SECTION_TRAIN_SCHEDULE, SECTION_WEIGHTS, verified_sections
from .errors import CapsuleError
from .graph import parse_graph
from .train_setup import (PAGE_IN, PAGE_OUT, chain_layers, check_train, compile_steps,
                          float_buffer, node_sizes, read_section, read_train)



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
            self.params = float_buffer(floats)
            self.velocity, self.grads = float_buffer(floats), float_buffer(floats)
            g = parse_graph(read_section(f, sections, SECTION_GRAPH, path, "GRAPH")[1], path,
                            sections[SECTION_WEIGHTS][1])
            layers, self.loss_kind = chain_layers(g, header, floats, path)
            document = json.loads(read_section(f, sections, SECTION_TRAIN_SCHEDULE, path,
                                           "TRAIN_SCHEDULE")[1])
            program, arena_floats, scratch_bytes = compile_steps(document, layers, path)
            self.planned = document.get("predicted", {})
            opt = header.get("optimizer", {})
            self.lr, self.momentum, self.batch = opt.get("lr"), opt.get("momentum"), \
                opt.get("batch")
            check_train(opt.get("name") == "sgd" and self.lr > 0 and 0 <= self.momentum < 1 and
                   type(self.batch) is int and self.batch >= 1, path, "bad optimizer")
            first = g.ops[layers[0][0]].inputs[0]
            self.boundary_scale = g.tensors[first].scale
            self.boundary_zp = g.tensors[first].zero_point
            del g, document, header, sections
            gc.collect()
            f.seek(data_at)
            f.readinto(self.params)
        self.boundary = float_buffer(layers[0][2])
        self.target = float_buffer(layers[-1][3]) if self.loss_kind == "mse" else None
        self.arena = float_buffer(arena_floats)
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
            if code == PAGE_OUT:
                f.seek(pos)
                f.write(view)
                self.paged_bytes += 4 * len(view)
            elif code == PAGE_IN:
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
