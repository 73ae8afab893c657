"""Lowering of TFLite's data-movement ops, and constant folding of them.

TRANSPOSE, STRIDED_SLICE, PAD, PADV2 and RESIZE_NEAREST_NEIGHBOR move bytes without arithmetic:
every output element is one input element or a pad value. They all become one capsule op,
GATHER, whose int32 tables (one per output dimension, padded to four) hold each output
coordinate's contribution to the input offset, or ``PAD_MARK``; TFLite Micro's index
arithmetic (strided-slice masks and clamping, resize rounding in float32) runs here, once.
SQUEEZE and EXPAND_DIMS become RESHAPE (a copy). CONCATENATION keeps its own capsule op with a
variable number of inputs.

When an op's data input is a constant (weights transposed or reshaped by a PyTorch export, a
padded constant), the op is computed here instead and its output becomes a constant: the
board never does work that can be done once.
"""

import math

import numpy as np

# A table entry meaning "pad here". Entries that are not PAD_MARK are >= 0 and, summed over
# the dimensions, stay below the input size (< 2**29), so a sum is negative exactly when one
# of its entries is PAD_MARK, and four PAD_MARKs still fit in int32.
PAD_MARK = -(1 << 29)
MAX_GATHER_INPUT = 1 << 29
GATHER_RANK = 4
_ITEM_SIZES = {"int8": 1, "uint8": 1, "int16": 2, "int32": 4, "float32": 4, "int64": 8}


def _strides(shape):
    strides = [1] * len(shape)
    for axis in range(len(shape) - 2, -1, -1):
        strides[axis] = strides[axis + 1] * shape[axis + 1]
    return strides


def gather_index(tables):
    """The flat input index of every output element (negative for padding)."""
    index = np.zeros((), np.int64)
    for axis, table in enumerate(tables):
        shape = [1] * len(tables)
        shape[axis] = len(table)
        index = index + np.asarray(table, np.int64).reshape(shape)
    return index


def apply_gather(data, tables, pad_value):
    """What GATHER computes, for any dtype: used to fold constants and by the tests."""
    index = gather_index(tables)
    flat = np.asarray(data).reshape(-1)
    values = flat[np.clip(index, 0, flat.size - 1)]
    return np.where(index >= 0, values, np.asarray(pad_value, flat.dtype)).astype(flat.dtype)


def nearest_neighbor(x, in_size, out_size, align_corners, half_pixel_centers):
    """TFLite Micro's GetNearestNeighbor, in float32 as its C++ computes it."""
    f32 = np.float32
    if align_corners and out_size > 1:
        scale = f32(in_size - 1) / f32(out_size - 1)
    else:
        scale = f32(in_size) / f32(out_size)
    value = (f32(x) + f32(0.5 if half_pixel_centers else 0.0)) * scale
    value = float(value)  # exact; adding 0.5 in double is exact too
    if align_corners:
        # TfLiteRound is std::round: halves away from zero.
        rounded = math.floor(value + 0.5) if value >= 0 else -math.floor(0.5 - value)
    else:
        rounded = math.floor(value)
    rounded = min(rounded, in_size - 1)
    return max(0, rounded) if half_pixel_centers else rounded


def _slice_bound(value, size, stride):
    if value < 0:
        value += size
    return min(max(value, 0), size) if stride > 0 else min(max(value, -1), size - 1)


class ShapeLowering:
    """Mixed into ``lower._Lowering``: ``_lower_<op>`` for the data-movement ops."""

    def _const(self, op, index, role, dtypes=("int32",)):
        t = self.t(index)
        if t.data is None:
            self.fail(op, f"the {role} tensor {t.name!r} is not a constant",
                      "TFLite Micro needs it constant too; freeze it in the export")
        if t.dtype not in dtypes:
            self.fail(op, f"the {role} tensor {t.name!r} is {t.dtype}, expected "
                      + " or ".join(dtypes))
        return t.data

    def _moved(self, op):
        """Input and output of a data-movement op; the input is int8 unless constant."""
        inp, out = self.t(op.inputs[0]), self.t(op.outputs[0])
        if inp.dtype != out.dtype:
            self.fail(op, f"input is {inp.dtype} but output is {out.dtype}")
        if inp.data is None and inp.dtype != "int8":
            self.fail(op, f"input tensor {inp.name!r} is {inp.dtype}, expected int8")
        return inp, out, tuple(inp.shape) or (1,)

    def _fold(self, op, values):
        out = self.t(op.outputs[0])
        self.model.tensors[op.outputs[0]].data = np.ascontiguousarray(
            np.asarray(values).reshape(out.shape or (1,)))

    def _expect_shape(self, op, out_dims):
        # Checked before any table is built: a damaged file's paddings or sizes (up to 2**31)
        # must not make the packager build tables of that length.
        out = self.t(op.outputs[0])
        if tuple(out.shape) != tuple(d for d in out_dims if d is not None):
            self.fail(op, f"output shape {out.shape} does not match the computed "
                      f"{[d for d in out_dims if d is not None]}")

    def _gather(self, op, out_dims, tables, pad_value):
        inp, out, shape = self._moved(op)
        self._expect_shape(op, out_dims)
        if inp.data is not None:
            self._fold(op, apply_gather(inp.data, tables, pad_value))
            return
        if len(tables) > GATHER_RANK:
            self.fail(op, f"rank {len(tables)} (capsules hold rank {GATHER_RANK} at most)")
        if inp.size >= MAX_GATHER_INPUT:
            self.fail(op, f"input of {inp.size} bytes is too large (at most "
                      f"{MAX_GATHER_INPUT - 1})")
        tables = [[0]] * (GATHER_RANK - len(tables)) + [list(t) for t in tables]
        dims = [len(t) for t in tables]
        g = self.graph
        table = g.constant(f"{out.name}/gather_table", [v for t in tables for v in t])
        self.emit(op, [g.tensor(op.inputs[0]), table], [g.tensor(op.outputs[0])],
                  [inp.size, *dims, int(pad_value)], name="GATHER")

    def _lower_transpose(self, op):
        _, _, shape = self._moved(op)
        perm = [int(p) for p in self._const(op, op.inputs[1], "perm").reshape(-1)]
        if sorted(perm) != list(range(len(shape))):
            self.fail(op, f"perm {perm} is not a permutation of the input's {len(shape)} "
                      "dimensions")
        strides = _strides(shape)
        tables = [[i * strides[p] for i in range(shape[p])] for p in perm]
        self._gather(op, [shape[p] for p in perm], tables, 0)

    def _lower_strided_slice(self, op):
        _, _, shape = self._moved(op)
        o = op.options
        if o["ellipsis_mask"] or o["new_axis_mask"]:
            self.fail(op, "ellipsis_mask and new_axis_mask are not supported (TFLite Micro "
                      "ignores them, so its result would not be the slice asked for)",
                      "let the converter resolve them (it does for constant slices)")
        if o["offset"]:
            self.fail(op, "the offset option is not supported (TFLite Micro ignores it)")
        begin, end, strides = (self._const(op, op.inputs[k], role).reshape(-1).tolist()
                               for k, role in ((1, "begin"), (2, "end"), (3, "strides")))
        if not len(begin) == len(end) == len(strides) == len(shape):
            self.fail(op, f"begin/end/strides have {len(begin)}/{len(end)}/{len(strides)} "
                      f"entries for a rank-{len(shape)} input")
        in_strides = _strides(shape)
        tables, dims = [], []
        for axis, size in enumerate(shape):
            stride, bit = strides[axis], 1 << axis
            if stride == 0:
                self.fail(op, f"stride 0 on axis {axis}")
            start = _slice_bound(begin[axis], size, stride)
            if o["begin_mask"] & bit:
                start = 0 if stride > 0 else size - 1
            if o["shrink_axis_mask"] & bit:
                stop = start if start >= size else start + 1
            else:
                stop = _slice_bound(end[axis], size, stride)
                if o["end_mask"] & bit:
                    stop = size if stride > 0 else -1
            # TFLite Micro's loop: from start while (stride > 0 ? i < stop : i > stop).
            index = range(start, stop, stride)
            if len(index) == 0 and o["shrink_axis_mask"] & bit and stride < 0:
                self.fail(op, f"axis {axis} is shrunk with a negative stride, which selects "
                          "nothing in TFLite Micro (it leaves the output unwritten)",
                          "use stride 1 on shrunk axes")
            if len(index) == 0:
                self.fail(op, f"axis {axis} of the slice is empty")
            tables.append([i * in_strides[axis] for i in index])
            dims.append(None if o["shrink_axis_mask"] & bit else len(index))
        self._gather(op, dims, tables, 0)

    def _pad(self, op, pad_value):
        _, _, shape = self._moved(op)
        paddings = self._const(op, op.inputs[1], "paddings").reshape(-1).tolist()
        if len(paddings) != 2 * len(shape):
            self.fail(op, f"{len(paddings)} padding values for a rank-{len(shape)} input")
        if min(paddings) < 0:
            self.fail(op, f"negative paddings {paddings} are not supported")
        self._expect_shape(op, [size + paddings[2 * axis] + paddings[2 * axis + 1]
                                for axis, size in enumerate(shape)])
        strides = _strides(shape)
        tables = []
        for axis, size in enumerate(shape):
            before, after = paddings[2 * axis], paddings[2 * axis + 1]
            tables.append([PAD_MARK] * before + [i * strides[axis] for i in range(size)]
                          + [PAD_MARK] * after)
        self._gather(op, [len(t) for t in tables], tables, pad_value)

    def _lower_pad(self, op):
        inp, out, _ = self._moved(op)
        # TFLite Micro pads int8 with the output zero point (PAD has no value input).
        self._pad(op, out.zero_point if inp.dtype in ("int8", "uint8") else 0)

    def _lower_padv2(self, op):
        inp, out, _ = self._moved(op)
        value = self._const(op, op.inputs[2], "constant_values", (inp.dtype,))
        if value.size != 1:
            self.fail(op, f"constant_values has {value.size} values, expected one")
        const = self.t(op.inputs[2])
        if inp.dtype == "int8" and (const.zero_point, np.float32(const.scale)) != (
                out.zero_point, np.float32(out.scale)):
            self.fail(op, "constant_values must have the output's scale and zero point "
                      "(TFLite Micro requires it)")
        self._pad(op, value.reshape(-1)[0])

    def _lower_resize_nearest_neighbor(self, op):
        _, out, shape = self._moved(op)
        if len(shape) != 4:
            self.fail(op, f"input must be 4-D (NHWC), is {shape}")
        size = self._const(op, op.inputs[1], "size").reshape(-1).tolist()
        if len(size) != 2 or min(size) < 1:
            self.fail(op, f"size must be two positive values, is {size}")
        n, h, w, c = shape
        self._expect_shape(op, [n, size[0], size[1], c])
        align, half = op.options["align_corners"], op.options["half_pixel_centers"]
        ys = [nearest_neighbor(y, h, size[0], align, half) for y in range(size[0])]
        xs = [nearest_neighbor(x, w, size[1], align, half) for x in range(size[1])]
        tables = [[b * h * w * c for b in range(n)], [y * w * c for y in ys],
                  [x * c for x in xs], list(range(c))]
        self._gather(op, [n, size[0], size[1], c], tables, 0)

    def _lower_reshape(self, op):
        inp, out = self.t(op.inputs[0]), self.t(op.outputs[0])
        if inp.dtype != out.dtype or inp.size != out.size:
            self.fail(op, f"reshape {inp.shape} -> {out.shape} changes the size or type")
        if inp.data is not None:
            self._fold(op, inp.data)
            return
        g = self.graph
        # Any dtype: a float32 model input may be reshaped before its QUANTIZE.
        nbytes = inp.size * _ITEM_SIZES[inp.dtype]
        self.emit(op, [g.tensor(op.inputs[0])], [g.tensor(op.outputs[0])], [nbytes],
                  name="RESHAPE")

    _lower_squeeze = _lower_reshape
    _lower_expand_dims = _lower_reshape

    def _lower_concatenation(self, op):
        out = self.t(op.outputs[0])
        ins = [self.t(i) for i in op.inputs]
        if op.options["activation"] != "NONE":
            self.fail(op, "a fused activation is not supported (nor by TFLite Micro)")
        rank = len(out.shape)
        axis = op.options["axis"] + (rank if op.options["axis"] < 0 else 0)
        if not 0 <= axis < rank:
            self.fail(op, f"axis {op.options['axis']} is outside the output's rank {rank}")
        for t in ins:
            if t.dtype != out.dtype or len(t.shape) != rank or any(
                    t.shape[k] != out.shape[k] for k in range(rank) if k != axis):
                self.fail(op, f"input {t.name!r} {t.dtype}{list(t.shape)} does not "
                          f"concatenate into {out.dtype}{list(out.shape)} on axis {axis}")
        if sum(t.shape[axis] for t in ins) != out.shape[axis]:
            self.fail(op, f"inputs do not add up to the output's {out.shape[axis]} on axis "
                      f"{axis}")
        if all(t.data is not None for t in ins):
            self._fold(op, np.concatenate([t.data for t in ins], axis=axis))
            return
        if out.dtype != "int8":
            self.fail(op, f"output is {out.dtype}, expected int8")
        for t in ins:
            if (t.zero_point, np.float32(t.scale)) != (
                    out.zero_point, np.float32(out.scale)):
                self.fail(op, f"input {t.name!r} has scale {t.scale} and zero point "
                          f"{t.zero_point}, the output {out.scale} and {out.zero_point}: "
                          "TFLite Micro's int8 CONCATENATION requires them equal",
                          "requantize the inputs to the output's scale before concatenating")
        outer = int(np.prod(out.shape[:axis], dtype=np.int64))
        inners = [int(np.prod(t.shape[axis:], dtype=np.int64)) for t in ins]
        g = self.graph
        # Equal quantization everywhere: concatenating is copying bytes.
        self.emit(op, [g.tensor(i) for i in op.inputs], [g.tensor(op.outputs[0])],
                  [outer, *inners], name="CONCATENATION")


# -- GATHER of a GATHER -------------------------------------------------------------------------

def _split(table, dims):
    out, pos = [], 0
    for d in dims:
        out.append(table[pos:pos + d])
        pos += d
    return out


def compose_gathers(first, second):
    """One GATHER doing ``second`` after ``first``, or None when the two do not compose.

    ``first``/``second`` are ``(tables, pad_value)`` with four tables each; ``second``'s
    entries are offsets into ``first``'s output. They compose when each of ``second``'s tables
    moves along its own subset of ``first``'s output dimensions (transposes, slices, pads and
    resizes of one another do), and the two pad values agree where both pad.
    """
    (ta, pad_a), (tb, pad_b) = first, second
    dims = [len(t) for t in ta]
    strides = _strides(dims)

    def coords(e):
        return [(e // strides[m]) % dims[m] for m in range(4)]

    moved = []
    for table in tb:
        axes = set()
        for e in table:
            if e != PAD_MARK:
                axes.update(m for m, c in enumerate(coords(e)) if c)
        moved.append(axes)
    if any(moved[i] & moved[j] for i in range(4) for j in range(i + 1, 4)):
        return None
    a_pads = any(PAD_MARK in t for t in ta)
    b_pads = any(PAD_MARK in t for t in tb)
    if a_pads and b_pads and pad_a != pad_b:
        return None
    fixed = [ta[m][0] for m in range(4) if not any(m in axes for axes in moved)]
    if PAD_MARK in fixed:
        return None
    tables = []
    for k, table in enumerate(tb):
        out = []
        for e in table:
            parts = [] if e == PAD_MARK else [ta[m][c] for m, c in enumerate(coords(e))
                                               if m in moved[k]]
            if e == PAD_MARK or PAD_MARK in parts:
                out.append(PAD_MARK)
            else:
                out.append(sum(parts) + (sum(fixed) if k == 0 else 0))
        tables.append(out)
    return tables, pad_b if b_pads else pad_a


def fuse_gathers(tensors, ops, io):
    """Replace each GATHER that only feeds another GATHER by their composition, in place;
    return the indices of tensors no op or model input/output uses any more."""
    uses = {}
    for op in ops:
        for i in op.inputs:
            uses[i] = uses.get(i, 0) + 1
    k = 0
    while k < len(ops):
        b = ops[k]
        producers = [a for a in ops if a.name == "GATHER" and a.outputs[0] == b.inputs[0]]
        if b.name != "GATHER" or not producers or uses.get(b.inputs[0]) != 1 \
                or b.inputs[0] in io:
            k += 1
            continue
        a = producers[0]
        fused = compose_gathers(*[
            (_split(np.frombuffer(tensors[op.inputs[1]].data, "<i4").tolist(),
                    op.params[1:5]), op.params[5]) for op in (a, b)])
        if fused is None:
            k += 1
            continue
        tables, pad = fused
        data = np.asarray([v for t in tables for v in t], "<i4")
        tensors[b.inputs[1]].data = data.tobytes()
        b.inputs = [a.inputs[0], b.inputs[1]]
        b.params = [a.params[0], *b.params[1:5], int(pad)]
        ops.remove(a)
        k = 0
    used = set(io)
    for op in ops:
        used.update(i for i in op.inputs + op.outputs if i is not None)
    return [i for i in range(len(tensors)) if i not in used]
