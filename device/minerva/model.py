# A loaded capsule: one arena, weights in typed buffers, kernels bound once at load.
# run() loops over a prepared step list: no allocation, no checks, bounded loops.
import os
from array import array

from .capsule import SECTION_WEIGHTS, read_capsule_file
from .errors import CapsuleError
from .graph import ABSENT, ARENA, DTYPE_NAMES, FLOAT32, INT8, OPS, WEIGHTS
from .tiers import select_kernels

_TYPECODES = ("b", "B", "h", "i", "f")


def _zeros(dtype, nbytes):
    # array(typecode, bytes) is a raw copy on both MicroPython and CPython.
    return array(_TYPECODES[dtype], bytes(nbytes))


class Model:
    def __init__(self, cap, f, kernels=None):
        g = cap.graph
        self.name = cap.name
        self.meta = cap.meta
        self._graph = g
        self.kernels, self.tier = select_kernels(kernels, cap.name)
        self.arena = _zeros(INT8, g.arena_bytes)
        arena_view = memoryview(self.arena)
        w_off = cap.sections[SECTION_WEIGHTS][0]
        buffers = []
        for i, t in enumerate(g.tensors):
            if t.storage == ARENA:
                buffers.append(arena_view[t.offset:t.offset + t.nbytes])
            elif t.storage == WEIGHTS:
                buf = _zeros(t.dtype, t.nbytes)
                f.seek(w_off + t.offset)
                if f.readinto(buf) != t.nbytes:
                    raise CapsuleError("%s: truncated weights for tensor %d" % (cap.name, i))
                buffers.append(buf)
            else:
                buffers.append(_zeros(t.dtype, t.nbytes))
        self._check_shifts(g, buffers, cap.name)
        steps = []
        for op in g.ops:
            fn = getattr(self.kernels, OPS[op.code][0].lower())
            bufs = [None if i == ABSENT else buffers[i] for i in op.inputs]
            bufs += [buffers[o] for o in op.outputs]
            steps.append((len(bufs), fn, tuple(bufs), array("i", op.params)))
        self._steps = steps
        self.inputs = [buffers[i] for i in g.inputs]
        self.outputs = [buffers[i] for i in g.outputs]
        self._input_is_float = g.tensors[g.inputs[0]].dtype == FLOAT32
        self._input_sizes = [g.tensors[i].nbytes // (4 if g.tensors[i].dtype == FLOAT32
                                                     else 1) for i in g.inputs]

    @staticmethod
    def _check_shifts(g, buffers, name):
        # Multipliers and shifts are data, so they are checked once their bytes are in RAM.
        for op in g.ops:
            if op.code <= 3:
                mult, shift = buffers[op.inputs[3]], buffers[op.inputs[4]]
                for k in range(len(shift)):
                    if mult[k] < 0 or not -31 <= shift[k] <= 30:
                        raise CapsuleError("%s: op %s channel %d has multiplier %d shift %d "
                                           "out of range" % (name, OPS[op.code][0], k,
                                                             mult[k], shift[k]))

    def run(self, inp=None):
        # Copy ``inp`` (bytes-like int8 data, or float32 values for a float input) into the
        # input tensor, run every op, return the output tensor's buffer. The returned buffer
        # is preallocated and reused: its contents change on the next run(); copy it to keep.
        # With ``inp=None`` the input is whatever was written to ``model.inputs[0]``.
        if inp is not None:
            dst = self.inputs[0]
            n = self._input_sizes[0]
            if len(inp) != n:
                raise ValueError("input has %d values, the model takes %d" % (len(inp), n))
            if self._input_is_float:
                for i in range(n):
                    dst[i] = inp[i]
            else:
                # bytes index as 0..255; int8 sources are already signed.
                for i in range(n):
                    v = inp[i]
                    dst[i] = v - 256 if v > 127 else v
        for step in self._steps:
            n, fn, b, args = step
            if n == 6:
                fn(b[0], b[1], b[2], b[3], b[4], b[5], args)
            elif n == 2:
                fn(b[0], b[1], args)
            else:
                fn(b[0], b[1], b[2], args)
        return self.outputs[0]

    def info(self):
        g = self._graph
        meta = self.meta

        def spec(index, m):
            t = g.tensors[index]
            return {"name": m.get("name", ""), "dtype": DTYPE_NAMES[t.dtype],
                    "shape": list(t.dims), "scale": t.scale, "zero_point": t.zero_point}

        ins = meta.get("inputs", [{}] * len(g.inputs))
        outs = meta.get("outputs", [{}] * len(g.outputs))
        return {
            "name": meta.get("name", self.name),
            "version": meta.get("version", "?"),
            "inputs": [spec(i, m) for i, m in zip(g.inputs, ins)],
            "outputs": [spec(i, m) for i, m in zip(g.outputs, outs)],
            "ops": [OPS[op.code][0] for op in g.ops],
            "arena_bytes": g.arena_bytes,
            "kernels": self.tier,
        }


def _needed_bytes(g):
    total = g.arena_bytes
    for t in g.tensors:
        if t.storage != ARENA:
            total += t.nbytes
    return total


def load(path, kernels=None):
    # Verify and prepare the capsule at ``path``. Raises CapsuleError (naming the file) and
    # changes nothing if anything is wrong. ``kernels`` forces a tier: "natmod", "viper",
    # "python" (or "numpy" on CPython); the default picks the fastest available.
    try:
        size = os.stat(path)[6]
        f = open(path, "rb")
    except OSError as exc:
        raise CapsuleError("%s: cannot open (%s)" % (path, exc))
    try:
        cap = read_capsule_file(f, path, size)
        try:
            return Model(cap, f, kernels)
        except MemoryError:
            raise CapsuleError("%s: not enough RAM: the model needs %d bytes (arena %d)"
                               % (path, _needed_bytes(cap.graph), cap.graph.arena_bytes))
    finally:
        f.close()
