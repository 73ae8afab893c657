# A loaded capsule: one arena, weights in typed buffers, kernels bound once at load.
# run() loops over a prepared step list: no allocation, no checks, bounded loops.
import sys
from array import array

from .capsule import SECTION_WEIGHTS
from .errors import CapsuleError, UnsupportedError
from .graph import (ABSENT, ARENA, DTYPE_NAMES, FLOAT32, GATHER, INT8, INT16, OPS, VARIABLE,
                    WEIGHTS)
from .memory import collect, new_buffer
from .tiers import bind, native_arch, select_kernels


class _Slicer:
    def __getitem__(self, i):
        return i


# ``dst[:] = src`` would make a slice object per call; run() must allocate nothing.
_WHOLE = _Slicer()[:]
_CPYTHON = sys.implementation.name != "micropython"
# Inputs run() copies itself into a plan's single int8 input.
_RAW = (bytes, bytearray)


# Tiers whose kernels take weights as raw pointers, so they run on bytes used in place.
_POINTER_TIERS = ("natmod", "viper")


class Model:
    def __init__(self, cap, f, kernels=None, paged=None, arena=None, ready=None):
        g = cap.graph
        self.name = cap.name
        # Class names (`minerva pack --labels`), one per output value, or None.
        self.labels = cap.meta.get("labels")
        self.kernels, self.tier = kernels if isinstance(kernels, tuple) else \
            select_kernels(kernels, cap.name)
        # Bound first: weights are used in place (from a flash store) only when every op's
        # kernel reads them through pointers; the pure-Python spec needs typed arrays.
        inplace = getattr(f, "view", None)
        if inplace is not None and any(
                bind(self.kernels, self.tier, OPS[op.code][0].lower(), cap.name)[1]
                not in _POINTER_TIERS for op in g.ops):
            raise UnsupportedError("%s: weights used in place need the natmod or viper "
                                   "kernels for every op (this load has %s); load the "
                                   "capsule's file instead" % (cap.name, self.tier))
        self.in_place = inplace is not None
        paged = {} if inplace is not None else _paged_slots(g, cap.paged, paged)
        if paged:
            # Paged: loaded at the heap's limit. The parse's garbage (the GRAPH bytes) is
            # gathered before the model's many small buffers (without it AD packed for the
            # Pico missed the unix port's Pico-sized heap by a few hundred bytes).
            collect()
        self.paged = sorted(paged)
        # Planned slots live inside the arena; a forced paged=True without a plan shares one
        # page buffer appended to the arena, so there is still a single large allocation.
        page_bytes = max([g.tensors[i].nbytes for i, s in paged.items() if s < 0] + [0])
        # A larger arena is one shared with another model that runs at other times.
        if arena is None or len(arena) < g.arena_bytes + page_bytes:
            arena = None
            collect()
            arena = new_buffer(INT8, g.arena_bytes + page_bytes)
        self.arena = arena
        arena_view = memoryview(arena)
        w_off = cap.sections[SECTION_WEIGHTS][0]
        ready = ready or {}
        buffers = [None] * len(g.tensors)
        for i, t in enumerate(g.tensors):
            pre = ready.get(i)
            if pre is not None and pre[0] == t.dtype and pre[1] == t.nbytes and i not in paged \
                    and t.storage != ARENA and (t.storage != WEIGHTS or pre[2] == t.offset):
                buffers[i] = pre[3]
            elif t.storage == ARENA:
                buffers[i] = arena_view[t.offset:t.offset + t.nbytes]
            elif i in paged:
                slot = paged[i] if paged[i] >= 0 else g.arena_bytes
                buffers[i] = arena_view[slot:slot + t.nbytes]
            elif t.storage == WEIGHTS and inplace is not None:
                buffers[i] = inplace[w_off + t.offset:w_off + t.offset + t.nbytes]
            elif t.storage == WEIGHTS:
                buf = new_buffer(t.dtype, t.nbytes)
                f.seek(w_off + t.offset)
                if f.readinto(buf) != t.nbytes:
                    raise CapsuleError("%s: truncated weights for tensor %d" % (cap.name, i))
                buffers[i] = buf
            else:
                buffers[i] = new_buffer(t.dtype, t.nbytes)
        self._check_data(g, buffers, cap.name)
        # Ops whose kernel comes from a slower tier than self.tier: {op name: tier}.
        self.fallbacks = {}
        for op in g.ops:
            tier = bind(self.kernels, self.tier, OPS[op.code][0].lower(), cap.name)[1]
            if tier != self.tier:
                self.fallbacks[OPS[op.code][0]] = tier
        # The natmod tier runs the whole model in one call when it can (plan.py); otherwise
        # run() loops over steps, one kernel call each.
        plan = None
        if self.tier == "natmod" and not paged and not self.fallbacks:
            from .plan import build_plan

            plan = build_plan(g, self.kernels, arena, inplace, w_off, buffers)
        if plan is not None:
            # A plan runs int8 ops only, so its inputs are int8: run() copies a single one
            # itself when it has this many bytes (kept in the tuple: one more attribute would
            # grow the instance's dict at the load's peak).
            plan = plan + ((g.tensors[g.inputs[0]].nbytes if len(g.inputs) == 1 else -1),)
        self._plan = plan
        steps = [] if plan is None else None
        for op in g.ops if plan is None else ():
            fn = bind(self.kernels, self.tier, OPS[op.code][0].lower(), cap.name)[0]
            bufs = [None if i == ABSENT else buffers[i] for i in op.inputs]
            if OPS[op.code][1] == VARIABLE:
                # Any number of inputs: the kernel takes them as one tuple, built here once so
                # that run() stays on its two-buffer path and allocates nothing.
                bufs = [tuple(bufs)]
            bufs += [buffers[o] for o in op.outputs]
            # A paged filter is read into the shared page buffer just before its op runs.
            page = op.inputs[1] if op.code <= 3 and op.inputs[1] in paged else -1
            steps.append((len(bufs), fn, tuple(bufs), array("i", op.params),
                          buffers[page] if page >= 0 else None,
                          w_off + g.tensors[page].offset if page >= 0 else 0))
        self._loop = steps
        self._file = f if paged else None
        self.inputs = [buffers[i] for i in g.inputs]
        self.outputs = [buffers[i] for i in g.outputs]
        # META is read once, into info(): kept whole it would be a third of a small model's
        # heap (1.5 KB of AD's 5.3 KB on a Pico, weights in place).
        self._info = self._describe(g, cap.meta)
        self._input_is_float = [g.tensors[i].dtype == FLOAT32 for i in g.inputs]
        self._input_is_int16 = [g.tensors[i].dtype == INT16 for i in g.inputs]
        self._input_sizes = [g.tensors[i].nbytes // (4 if g.tensors[i].dtype == FLOAT32
                                                     else 1) for i in g.inputs]
        for k, i in enumerate(g.inputs):
            if g.tensors[i].dtype == INT16:
                self._input_sizes[k] = g.tensors[i].nbytes // 2

    def close(self):
        # Only a model with paged weights holds its capsule file open.
        if self._file is not None:
            self._file.close()
            self._file = None

    @staticmethod
    def _check_data(g, buffers, name):
        # Multipliers, shifts, biases and gather tables are data, so they are checked once
        # their bytes are in RAM. The largest accumulator a weighted op can form (every input
        # and weight at its extreme), shifted left by a positive shift, must fit int32 as
        # TFLite's C assumes; past it tiers would wrap differently, so it is refused here.
        for index, op in enumerate(g.ops):
            if op.code == GATHER:
                from .shape_checks import check_gather_table

                check_gather_table(_int32s(buffers[op.inputs[1]]), op.params, name, index)
            if op.code > 3:
                continue
            p = op.params
            mult, shift = _int32s(buffers[op.inputs[3]]), _int32s(buffers[op.inputs[4]])
            bias = _int32s(buffers[op.inputs[2]]) if op.inputs[2] != ABSENT else None
            if op.code == 3:
                fan_in, w_max = p[1], 128 + abs(p[4])
            else:
                fan_in, w_max = p[7] * p[8] * (p[3] if op.code == 1 else 1), 128
            worst = fan_in * 256 * w_max
            for k in range(len(shift)):
                s = shift[k]
                if mult[k] < 0 or not -31 <= s <= 30:
                    raise CapsuleError("%s: op %s channel %d has multiplier %d shift %d "
                                       "out of range" % (name, OPS[op.code][0], k,
                                                         mult[k], s))
                reach = (worst + (abs(bias[k]) if bias is not None else 0)) << (s if s > 0
                                                                                  else 0)
                if reach > 0x7FFFFFFF:
                    raise CapsuleError("%s: op %s channel %d: its accumulator could reach %d "
                                       "(shift %d), past int32; requantize the model with "
                                       "smaller scales" % (name, OPS[op.code][0], k, reach, s))

    def set_input(self, index, values):
        # Copy ``values`` (bytes-like int8 data, or float32 values for a float input) into
        # model input ``index``.
        dst = self.inputs[index]
        n = self._input_sizes[index]
        if self._input_is_int16[index]:
            _set_int16(dst, values, n, index)
            return
        if len(values) != n:
            raise ValueError("input %d has %d values, the model takes %d"
                             % (index, len(values), n))
        # One slice copy: a per-value Python loop took 14.9 ms of a 337 ms KWS inference on
        # a Pico. It copies raw bytes, so bytes (0..255) land as the same int8 bit patterns.
        try:
            dst[_WHOLE] = values
            return
        except (TypeError, ValueError, NotImplementedError):
            pass
        if _CPYTHON and isinstance(values, (bytes, bytearray, memoryview, array)) \
                and memoryview(values).nbytes == memoryview(dst).nbytes:
            # CPython's memoryview wants equal formats on both sides; bytes are bytes.
            memoryview(dst).cast("B")[:] = memoryview(values).cast("B")
            return
        # A list of numbers, or a float input given as bytes: value by value.
        if self._input_is_float[index]:
            for i in range(n):
                dst[i] = values[i]
        else:
            for i in range(n):
                v = values[i]
                dst[i] = v - 256 if v > 127 else v

    def run(self, inp=None):
        # Copy ``inp`` into the input tensor (a sequence of them for a model with several
        # inputs), run every op, return the output tensor's buffer. The returned buffer is
        # preallocated and reused: its contents change on the next run(); copy it to keep.
        # With ``inp=None`` the inputs are whatever was written to ``model.inputs``.
        # The plan path keeps this frame small enough for the C stack: MicroPython puts a
        # larger one (more than 11 words) on the heap for the call and frees it after, and on
        # the Pico that per-call allocation was measured to cost AD up to ~200,000 cycles
        # (none with gc.disable()).
        plan = self._plan
        if inp is not None:
            if plan is not None and type(inp) in _RAW and len(inp) == plan[2]:
                self.inputs[0][_WHOLE] = inp
            elif len(self.inputs) == 1:
                self.set_input(0, inp)
            else:
                self._set_inputs(inp)
        if plan is None:
            return self._run_steps()
        self.kernels.run_plan(plan[0], plan[1])
        return self.outputs[0]

    def _set_inputs(self, inp):
        for k in range(len(self.inputs)):
            self.set_input(k, inp[k])

    @property
    def _steps(self):
        # The per-op steps: the trainer runs a model's head op by op and reads its
        # requantization buffers. A plan model rebuilds them from its table the first time.
        if self._loop is None:
            from .plan import plan_steps

            self._loop = plan_steps(self.kernels, self._plan[0], self._plan[1])
        return self._loop

    def _run_steps(self):
        f = self._file
        for step in self._loop:
            n, fn, b, args, page, pos = step
            if page is not None:
                f.seek(pos)
                f.readinto(page)
            if n == 6:
                fn(b[0], b[1], b[2], b[3], b[4], b[5], args)
            elif n == 2:
                fn(b[0], b[1], args)
            else:
                fn(b[0], b[1], b[2], args)
        return self.outputs[0]

    def info(self):
        # name, version, I/O shapes and quantization, ops, arena bytes, kernel tier.
        return self._info

    def _describe(self, g, meta):
        # Computed once at load so the parsed graph need not stay in RAM after it.

        def spec(index, m):
            t = g.tensors[index]
            return {"name": m.get("name", ""), "dtype": DTYPE_NAMES[t.dtype],
                    "shape": list(t.dims), "scale": t.scale, "zero_point": t.zero_point}

        # One entry per graph input and output, whatever META lists (it only names them).
        ins = meta.get("inputs", [])
        outs = meta.get("outputs", [])
        ins = [ins[k] if k < len(ins) else {} for k in range(len(g.inputs))]
        outs = [outs[k] if k < len(outs) else {} for k in range(len(g.outputs))]
        return {
            "name": meta.get("name", self.name),
            "version": meta.get("version", "?"),
            "inputs": [spec(i, m) for i, m in zip(g.inputs, ins)],
            "outputs": [spec(i, m) for i, m in zip(g.outputs, outs)],
            "ops": [OPS[op.code][0] for op in g.ops],
            "arena_bytes": g.arena_bytes,
            "labels": self.labels,
            "paged": len(self.paged),
            "kernels": self.tier,
            "fallbacks": self.fallbacks,
            "arch": native_arch()[0],
        }


def _set_int16(dst, values, n, index):
    # An int16 input takes n int values, or 2 * n bytes (little-endian, as a .bin file holds
    # them).
    if isinstance(values, (bytes, bytearray, memoryview)) and len(values) == 2 * n:
        for i in range(n):
            v = (values[2 * i] & 255) | ((values[2 * i + 1] & 255) << 8)
            dst[i] = v - 65536 if v > 32767 else v
        return
    if len(values) != n:
        raise ValueError("input %d has %d values, the model takes %d int16 values"
                         % (index, len(values), n))
    for i in range(n):
        dst[i] = values[i]


def _int32s(buf):
    # int32 values of a weights buffer: bytes used in place are read as a typed copy (at load
    # only; the kernels read the bytes themselves).
    return array("i", bytearray(buf)) if isinstance(buf, memoryview) else buf


def _paged_slots(g, planned, forced):
    # {filter tensor: arena slot, or -1 for the shared page buffer}. ``forced`` None follows
    # the capsule's plan; True pages every filter; False keeps every weight in RAM.
    if forced is None:
        return planned
    if not forced:
        return {}
    slots = {}
    for op in g.ops:
        if op.code <= 3:
            slots[op.inputs[1]] = planned.get(op.inputs[1], -1)
    return slots
