"""Lowering of the math ops: int8 unary ops to LOOKUP tables, binary element-wise ops with
broadcasting to BINARY, MEAN, and int16 -> int8 QUANTIZE (docs/capsule-format.md, opcodes
20-23). A mixin of :class:`minerva_packager.capsule.lower._Lowering`.
"""

import numpy as np

from . import lut, quant

# The TFLite ops lowered here (the capsule op they become is in parentheses in the docs).
MATH_TFLITE_OPS = ("MUL", "SUB", "MAXIMUM", "MINIMUM", "LOGISTIC", "TANH", "HARD_SWISH",
                   "LEAKY_RELU", "RELU", "RELU6", "ABS", "MEAN")
BINARY_KINDS = {"ADD": 0, "SUB": 1, "MUL": 2, "MAXIMUM": 3, "MINIMUM": 4}
# MUL's product of two offset int8 values is at most 65025 in magnitude; shifted left by
# more than 15 it would leave int32 (undefined behaviour in TFLite's C).
_MUL_MAX_SHIFT = 15
_MEAN_MAX_COUNT = 1 << 23


def _f32(x):
    return np.float32(x)


def sub_params(scale1, scale2, output_scale):
    """SUB's int8 rescaling. TFLite Micro's SUB Prepare is written in float32 (ADD's in
    double), but the reference build gives ADD's double-precision multipliers wherever the
    two differ (test_math_ops.py::test_sub_multipliers_are_adds), so SUB uses ADD's."""
    return quant.add_params(scale1, scale2, output_scale)


def broadcast_strides(shape, out_shape):
    """Element strides of ``shape`` read along the 4-D ``out_shape`` (0 where broadcast)."""
    dims = [1] * (4 - len(shape)) + list(shape)
    strides = [0] * 4
    step = 1
    for k in range(3, -1, -1):
        strides[k] = step if dims[k] == out_shape[k] and dims[k] > 1 else 0
        step *= dims[k]
    return strides


def mean_blocks(shape, axes):
    """The input viewed as ``[k0, r0, k1, r1, k2]`` (kept, reduced, kept, reduced, kept), or
    None when the reduced axes need more blocks than that."""
    blocks = []
    for k, d in enumerate(shape):
        if d == 1:
            continue
        reduced = k in axes
        if blocks and blocks[-1][1] == reduced:
            blocks[-1][0] *= d
        else:
            blocks.append([d, reduced])
    if blocks and blocks[0][1]:
        blocks.insert(0, [1, False])
    sizes = [b[0] for b in blocks]
    if len(sizes) > 5:
        return None
    return sizes + [1] * (5 - len(sizes))


def mean_multiplier(input_scale, output_scale, count):
    """MEAN's multiplier and shift with TFLite's 1 / count folded in (QuantizedMeanOrSum)."""
    mult, shift = quant.quantize_multiplier(float(_f32(input_scale)) / float(_f32(output_scale)))
    extra = min(count.bit_length() - 1, 32, 31 + shift)
    return (mult << extra) // count, shift - extra


class MathLowering:
    """``_lower_<op>`` for the math ops; mixed into the main lowering class."""

    # -- int8 unary ops: a 256-byte table -------------------------------------------------

    def _unary_io(self, op):
        inp = self.need_dtype(op, op.inputs[0], ("int8",), "input")
        out = self.need_dtype(op, op.outputs[0], ("int8",), "output")
        self.need_per_tensor(op, op.inputs[0], "input")
        self.need_per_tensor(op, op.outputs[0], "output")
        if inp.size != out.size:
            self.fail(op, f"input {inp.shape} and output {out.shape} sizes differ")
        if inp.data is not None:
            self.fail(op, f"{op.name} of a constant tensor is not supported")
        return inp, out

    def _emit_lookup(self, op, make_table):
        inp, out = self._unary_io(op)
        try:
            table = make_table(inp, out)
        except lut.UnsupportedQuantization as exc:
            self.fail(op, f"quantization not supported: {exc}")
        g = self.graph
        t = g.constant(f"{self.t(op.outputs[0]).name}/lookup", table, "int8")
        self.emit_as("LOOKUP", op, [g.tensor(op.inputs[0]), t], [g.tensor(op.outputs[0])],
                     [inp.size])

    def _lower_logistic(self, op):
        out = self.t(op.outputs[0])
        if out.dtype == "int8" and out.zero_point != -128:
            # TFLite Micro's Prepare refuses any other output zero point.
            self.fail(op, f"int8 LOGISTIC output zero point must be -128, is {out.zero_point}")
        self._emit_lookup(op, lambda i, o: lut.logistic_table(i.scale, i.zero_point))

    def _lower_tanh(self, op):
        self._emit_lookup(op, lambda i, o: lut.tanh_table(i.scale, i.zero_point))

    def _lower_hard_swish(self, op):
        self._emit_lookup(op, lambda i, o: lut.hard_swish_table(i.scale, i.zero_point,
                                                                o.scale, o.zero_point))

    def _lower_leaky_relu(self, op):
        alpha = op.options.get("alpha", 0.0)
        self._emit_lookup(op, lambda i, o: lut.leaky_relu_table(i.scale, i.zero_point,
                                                                o.scale, o.zero_point, alpha))

    def _lower_relu(self, op):
        self._emit_lookup(op, lambda i, o: lut.relu_table(i.scale, i.zero_point, o.scale,
                                                          o.zero_point))

    def _lower_relu6(self, op):
        self._emit_lookup(op, lambda i, o: lut.relu6_table(i.scale, i.zero_point))

    def _lower_abs(self, op):
        self._emit_lookup(op, lambda i, o: lut.abs_table(i.scale, i.zero_point, o.scale,
                                                         o.zero_point))

    # -- binary element-wise ops with broadcasting ---------------------------------------

    def _lower_mul(self, op):
        self._lower_binary(op)

    def _lower_sub(self, op):
        self._lower_binary(op)

    def _lower_maximum(self, op):
        self._lower_binary(op)

    def _lower_minimum(self, op):
        self._lower_binary(op)

    def _binary_params(self, op, a, b, out):
        name = op.name
        act = op.options.get("activation", "NONE")
        lo, hi = quant.activation_range(act, out.scale, out.zero_point)
        arith = [0] * 10
        if name in ("ADD", "SUB"):
            p = (quant.add_params if name == "ADD" else sub_params)(a.scale, b.scale, out.scale)
            shifts = (p["input1_shift"], p["input2_shift"], p["output_shift"])
            if max(shifts) > 0:
                # QuantizeMultiplierSmallerThanOneExp: TFLite Micro aborts in Prepare.
                self.fail(op, f"a rescaling multiplier is 1 or more (scales {a.scale}, "
                          f"{b.scale} -> {out.scale})")
            arith = [-a.zero_point, -b.zero_point, out.zero_point, p["left_shift"],
                     p["input1_mult"], p["input1_shift"], p["input2_mult"],
                     p["input2_shift"], p["output_mult"], p["output_shift"]]
        elif name == "MUL":
            real = float(_f32(a.scale)) * float(_f32(b.scale)) / float(_f32(out.scale))
            mult, shift = quant.quantize_multiplier(real)
            if shift > _MUL_MAX_SHIFT:
                self.fail(op, f"output scale {out.scale} is too small for the input scales "
                          "(the product would overflow int32 in TFLite Micro)")
            arith = [-a.zero_point, -b.zero_point, out.zero_point, 0, 0, 0, 0, 0, mult, shift]
        return arith + [lo, hi]

    def _lower_binary(self, op):
        a = self.need_dtype(op, op.inputs[0], ("int8",), "first input")
        b = self.need_dtype(op, op.inputs[1], ("int8",), "second input")
        out = self.need_dtype(op, op.outputs[0], ("int8",), "output")
        for index, role in ((op.inputs[0], "first input"), (op.inputs[1], "second input"),
                            (op.outputs[0], "output")):
            self.need_per_tensor(op, index, role)
        if max(len(a.shape), len(b.shape), len(out.shape)) > 4:
            self.fail(op, "tensors of rank above 4 are not supported")
        try:
            shape = tuple(np.broadcast_shapes(tuple(a.shape), tuple(b.shape)))
        except ValueError:
            self.fail(op, f"shapes {a.shape} and {b.shape} do not broadcast")
        if tuple(out.shape) != shape and int(np.prod(shape)) != out.size:
            self.fail(op, f"output shape {out.shape} is not the broadcast shape {shape}")
        out4 = [1] * (4 - len(shape)) + list(shape)
        params = [BINARY_KINDS[op.name], *out4, *broadcast_strides(a.shape, out4),
                  *broadcast_strides(b.shape, out4), *self._binary_params(op, a, b, out)]
        if a.data is not None and b.data is not None:
            self._fold_binary(op, a, b, out, params)
            return
        g = self.graph
        self.emit_as("BINARY", op, [g.tensor(op.inputs[0]), g.tensor(op.inputs[1])],
                     [g.tensor(op.outputs[0])], params)

    def _fold_binary(self, op, a, b, out, params):
        # Both operands constant: compute the output once here with the device's spec
        # kernel; later ops read it as a constant.
        from array import array

        from minerva.math_py import binary

        if op.outputs[0] in self.model.outputs:
            self.fail(op, "a model output computed from constants only is not supported")
        result = array("b", bytes(out.size))
        binary(array("b", a.data.astype(np.int8).tobytes()),
               array("b", b.data.astype(np.int8).tobytes()), result, params)
        out.data = np.frombuffer(result.tobytes(), np.int8).reshape(out.shape or (1,)).copy()

    # -- MEAN ------------------------------------------------------------------------------

    def _lower_mean(self, op):
        inp = self.need_dtype(op, op.inputs[0], ("int8",), "input")
        out = self.need_dtype(op, op.outputs[0], ("int8",), "output")
        self.need_per_tensor(op, op.inputs[0], "input")
        self.need_per_tensor(op, op.outputs[0], "output")
        axis = self.t(op.inputs[1])
        if axis.data is None or axis.dtype != "int32":
            self.fail(op, "the axes must be an int32 constant")
        if inp.data is not None:
            self.fail(op, "MEAN of a constant tensor is not supported")
        rank = len(inp.shape)
        axes = set()
        for a in np.asarray(axis.data).ravel().tolist():
            if not -rank <= a < rank:
                self.fail(op, f"axis {a} is outside the input's rank {rank}")
            axes.add(a % rank)
        blocks = mean_blocks(inp.shape, axes)
        if blocks is None:
            self.fail(op, f"reducing axes {sorted(axes)} of {inp.shape} is not supported",
                      "reduce adjacent axes")
        k0, r0, k1, r1, k2 = blocks
        count = r0 * r1
        if k0 * k1 * k2 != out.size:
            self.fail(op, f"output shape {out.shape} does not match the reduction of "
                      f"{inp.shape} over {sorted(axes)}")
        if count > _MEAN_MAX_COUNT:
            self.fail(op, f"MEAN over {count} values (at most {_MEAN_MAX_COUNT})")
        mult, shift = mean_multiplier(inp.scale, out.scale, count)
        if shift > 0 and (255 * count) << shift >= 1 << 31:
            self.fail(op, "input scale / output scale is too large (int32 overflow in "
                      "TFLite Micro)")
        g = self.graph
        self.emit_as("MEAN", op, [g.tensor(op.inputs[0])], [g.tensor(op.outputs[0])],
                     [k0, r0, k1, r1, k2, inp.zero_point, out.zero_point, mult, shift])

    # -- QUANTIZE int16 -> int8 -----------------------------------------------------------

    def _lower_quantize_int16(self, op):
        inp = self.need_per_tensor(op, op.inputs[0], "input")
        out = self.need_dtype(op, op.outputs[0], ("int8",), "output")
        self.need_per_tensor(op, op.outputs[0], "output")
        mult, shift = quant.requantize_params(inp.scale, out.scale)
        if shift > 15:
            self.fail(op, "input scale / output scale is 2**15 or more (int32 overflow in "
                      "TFLite Micro)")
        g = self.graph
        self.emit_as("QUANTIZE_INT16", op, [g.tensor(op.inputs[0])], [g.tensor(op.outputs[0])],
                     [out.size, inp.zero_point, out.zero_point, mult, shift])
