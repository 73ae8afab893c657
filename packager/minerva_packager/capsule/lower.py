"""Lower a parsed TFLite model to capsule tensors and ops with precomputed argument blocks.

Each ``_lower_<op>`` reproduces the checks and the set-up of the matching TFLite kernel's
Prepare, and emits the op's int32 argument block exactly as docs/capsule-format.md lists it.
"""

import numpy as np

from ..errors import PackagerError
from . import quant
from .container import OPS, CapsuleOp, CapsuleTensor
from .lower_math import MATH_TFLITE_OPS, MathLowering
from .lower_shape import ShapeLowering, fuse_gathers

# Capsule ops that no TFLite op of the same name lowers to.
_DEVICE_ONLY_OPS = ("GATHER", "LOOKUP", "BINARY", "QUANTIZE_INT16")
# TFLite ops the packager reads.
SUPPORTED_OPS = tuple(dict.fromkeys(
    [n for n in OPS if n not in _DEVICE_ONLY_OPS]
    + ["TRANSPOSE", "STRIDED_SLICE", "PAD", "PADV2", "SQUEEZE", "EXPAND_DIMS",
       "RESIZE_NEAREST_NEIGHBOR"] + list(MATH_TFLITE_OPS)))
# Inputs an op cannot do without (the rest are optional); ops not listed need one.
_MIN_INPUTS = {"CONV_2D": 2, "DEPTHWISE_CONV_2D": 2, "FULLY_CONNECTED": 2, "ADD": 2,
               "STRIDED_SLICE": 4, "TRANSPOSE": 2, "PAD": 2, "PADV2": 3,
               "RESIZE_NEAREST_NEIGHBOR": 2, "RESHAPE": 1, "SUB": 2, "MUL": 2, "MAXIMUM": 2,
               "MINIMUM": 2, "MEAN": 2}


class _Graph:
    """Capsule tensors being built, keyed by the TFLite tensor they came from."""

    def __init__(self, model):
        self.model = model
        self.tensors = []
        self.ops = []
        self._by_source = {}

    def tensor(self, source_index):
        if source_index in self._by_source:
            return self._by_source[source_index]
        t = self.model.tensors[source_index]
        if t.data is not None:
            storage, data = "weights", np.ascontiguousarray(t.data).tobytes()
        else:
            storage, data = ("arena" if t.dtype == "int8" else "own"), None
        ct = CapsuleTensor(t.name, t.dtype, t.shape or (1,), storage, data,
                           t.zero_point, t.scale)
        self.tensors.append(ct)
        index = len(self.tensors) - 1
        self._by_source[source_index] = index
        return index

    def constant(self, name, values, dtype="int32"):
        data = np.asarray(values, dtype={"int32": "<i4", "int8": "i1"}[dtype])
        self.tensors.append(CapsuleTensor(name, dtype, data.shape, "weights", data.tobytes(),
                                          0, 0.0))
        return len(self.tensors) - 1


class _Lowering(ShapeLowering, MathLowering):
    def __init__(self, model):
        self.model = model
        self.graph = _Graph(model)

    def fail(self, op, problem, hint="convert the model with int8 quantization"):
        raise PackagerError(f"{self.model.path}: op {op.name} (index {op.index}): {problem}",
                            hint)

    def t(self, index):
        return self.model.tensors[index]

    def need_dtype(self, op, index, dtypes, role):
        t = self.t(index)
        if t.dtype not in dtypes:
            self.fail(op, f"{role} tensor {t.name!r} is {t.dtype}, expected "
                      + " or ".join(dtypes))
        return t

    def need_per_tensor(self, op, index, role):
        t = self.t(index)
        if len(t.scales) != 1:
            self.fail(op, f"{role} tensor {t.name!r} must have one scale (has "
                      f"{len(t.scales)})")
        return t

    def emit(self, op, inputs, outputs, params, name=None):
        """Append capsule op ``name`` (default: the TFLite op's own name)."""
        name = name or op.name
        code, n_in, n_out, n_params = OPS[name]
        assert n_in is None or len(inputs) == n_in
        assert len(outputs) == n_out and (n_params is None or len(params) == n_params)
        self.graph.ops.append(CapsuleOp(name, inputs, outputs, [int(p) for p in params]))

    def emit_as(self, capsule_op, op, inputs, outputs, params):
        """Emit TFLite op ``op`` as capsule op ``capsule_op`` (e.g. LOGISTIC as LOOKUP)."""
        code, n_in, n_out, n_params = OPS[capsule_op]
        assert len(inputs) == n_in and len(outputs) == n_out and len(params) == n_params
        self.graph.ops.append(CapsuleOp(capsule_op, inputs, outputs, [int(p) for p in params]))

    def run(self):
        for op in self.model.ops:
            method = getattr(self, "_lower_" + op.name.lower(), None)
            if method is None:
                raise PackagerError(
                    f"{self.model.path}: op {op.name} (index {op.index}) is not supported",
                    "supported ops: " + ", ".join(SUPPORTED_OPS))
            need = _MIN_INPUTS.get(op.name, 1)
            if len(op.inputs) < need or any(i < 0 for i in op.inputs[:need]):
                self.fail(op, f"has {len(op.inputs)} inputs, needs at least {need}",
                          "re-export the model; the file looks damaged")
            method(op)
        return self.graph

    # -- convolutions and fully connected -------------------------------------------------

    def _filter_bias(self, op, out_c, per_channel_dim):
        filt = self.need_dtype(op, op.inputs[1], ("int8",), "filter")
        if filt.data is None:
            self.fail(op, "the filter is not a constant", "freeze the weights before export")
        if np.any(filt.zero_points != 0):
            self.fail(op, "the filter has a non-zero zero point (asymmetric int8 weights)")
        if len(filt.scales) not in (1, out_c):
            self.fail(op, f"filter has {len(filt.scales)} scales for {out_c} channels")
        if len(filt.scales) > 1 and filt.quantized_dimension != per_channel_dim:
            self.fail(op, f"per-channel filter quantized along dimension "
                      f"{filt.quantized_dimension}, expected {per_channel_dim}")
        bias = -1
        if len(op.inputs) > 2 and op.inputs[2] >= 0:
            b = self.need_dtype(op, op.inputs[2], ("int32",), "bias")
            if b.data is None or b.size != out_c:
                self.fail(op, f"bias must be a constant of {out_c} int32 values")
            bias = op.inputs[2]
        return filt, bias

    def _conv_like(self, op, depthwise):
        o = op.options
        inp = self.need_dtype(op, op.inputs[0], ("int8",), "input")
        out = self.need_dtype(op, op.outputs[0], ("int8",), "output")
        self.need_per_tensor(op, op.inputs[0], "input")
        if len(inp.shape) != 4 or len(out.shape) != 4:
            self.fail(op, "input and output must be 4-D (NHWC)")
        n, h, w, c = inp.shape
        on, oh, ow, oc = out.shape
        fshape = self.t(op.inputs[1]).shape
        if len(fshape) != 4:
            self.fail(op, "filter must be 4-D")
        if depthwise:
            _, kh, kw, foc = fshape
            if foc != oc or oc % c:
                self.fail(op, f"depthwise filter has {foc} channels for input {c} / output {oc}")
            depth_multiplier = oc // c
        else:
            foc, kh, kw, fc = fshape
            if foc != oc or fc != c:
                self.fail(op, f"filter {fshape} does not match input channels {c} and output "
                          f"channels {oc} (grouped convolutions are not supported)")
        filt, bias = self._filter_bias(op, oc, 3 if depthwise else 0)
        sh, sw, dh, dw = o["stride_h"], o["stride_w"], o["dilation_h"], o["dilation_w"]
        if min(sh, sw, dh, dw) < 1:
            self.fail(op, "strides and dilations must be >= 1")
        exp_h = quant.out_size(o["padding"], h, kh, sh, dh)
        exp_w = quant.out_size(o["padding"], w, kw, sw, dw)
        if (on, oh, ow) != (n, exp_h, exp_w):
            self.fail(op, f"output shape {out.shape} does not match {o['padding']} padding "
                      f"(expected [{n}, {exp_h}, {exp_w}, {oc}])")
        pad_top = quant.pad_before(sh, dh, h, kh, oh) if o["padding"] == "SAME" else 0
        pad_left = quant.pad_before(sw, dw, w, kw, ow) if o["padding"] == "SAME" else 0
        mults, shifts = quant.conv_multipliers(inp.scale, filt.scales, out.scale, oc)
        act_min, act_max = quant.activation_range(o["activation"], out.scale, out.zero_point)
        params = [n, h, w, c, oh, ow, oc, kh, kw, sh, sw, dh, dw, pad_top, pad_left,
                  -inp.zero_point, out.zero_point, act_min, act_max]
        if depthwise:
            params.append(depth_multiplier)
        self._emit_weighted(op, filt, bias, mults, shifts, params)

    def _emit_weighted(self, op, filt, bias, mults, shifts, params):
        g = self.graph
        inputs = [g.tensor(op.inputs[0]), g.tensor(op.inputs[1]),
                  g.tensor(bias) if bias >= 0 else None,
                  g.constant(f"{filt.name}/multiplier", mults),
                  g.constant(f"{filt.name}/shift", shifts)]
        self.emit(op, inputs, [g.tensor(op.outputs[0])], params)

    def _lower_conv_2d(self, op):
        self._conv_like(op, depthwise=False)

    def _lower_depthwise_conv_2d(self, op):
        self._conv_like(op, depthwise=True)

    def _lower_fully_connected(self, op):
        o = op.options
        if o.get("weights_format", 0) != 0:
            self.fail(op, "shuffled weights format is not supported")
        inp = self.need_dtype(op, op.inputs[0], ("int8",), "input")
        out = self.need_dtype(op, op.outputs[0], ("int8",), "output")
        self.need_per_tensor(op, op.inputs[0], "input")
        fshape = self.t(op.inputs[1]).shape
        if len(fshape) != 2:
            self.fail(op, f"filter must be 2-D, is {fshape}")
        out_c, depth = fshape
        if inp.size % depth:
            self.fail(op, f"input size {inp.size} is not a multiple of the filter depth {depth}")
        batches = inp.size // depth
        if out.size != batches * out_c:
            self.fail(op, f"output shape {out.shape} does not hold {batches}x{out_c} values")
        filt, bias = self._filter_bias(op, out_c, 0)
        mults, shifts = quant.fully_connected_multipliers(inp.scale, filt.scales, out.scale,
                                                          out_c)
        act_min, act_max = quant.activation_range(o["activation"], out.scale, out.zero_point)
        params = [batches, depth, out_c, -inp.zero_point, 0, out.zero_point, act_min, act_max]
        self._emit_weighted(op, filt, bias, mults, shifts, params)

    # -- element-wise and shape ops --------------------------------------------------------

    def _pool(self, op):
        o = op.options
        inp = self.need_dtype(op, op.inputs[0], ("int8",), "input")
        out = self.need_dtype(op, op.outputs[0], ("int8",), "output")
        if len(inp.shape) != 4 or len(out.shape) != 4:
            self.fail(op, "input and output must be 4-D (NHWC)")
        if (inp.scale, inp.zero_point) != (out.scale, out.zero_point):
            self.fail(op, "input and output quantization differ")
        n, h, w, c = inp.shape
        fh, fw, sh, sw = o["filter_h"], o["filter_w"], o["stride_h"], o["stride_w"]
        if min(fh, fw, sh, sw) < 1:
            self.fail(op, "filter sizes and strides must be >= 1")
        oh = quant.out_size(o["padding"], h, fh, sh, 1)
        ow = quant.out_size(o["padding"], w, fw, sw, 1)
        if tuple(out.shape) != (n, oh, ow, c):
            self.fail(op, f"output shape {out.shape} != expected {[n, oh, ow, c]}")
        pad_top = quant.pad_before(sh, 1, h, fh, oh) if o["padding"] == "SAME" else 0
        pad_left = quant.pad_before(sw, 1, w, fw, ow) if o["padding"] == "SAME" else 0
        act_min, act_max = quant.activation_range(o["activation"], out.scale, out.zero_point)
        g = self.graph
        self.emit(op, [g.tensor(op.inputs[0])], [g.tensor(op.outputs[0])],
                  [n, h, w, c, oh, ow, fh, fw, sh, sw, pad_top, pad_left, act_min, act_max])

    _lower_average_pool_2d = _pool
    _lower_max_pool_2d = _pool

    def _lower_add(self, op):
        a = self.need_dtype(op, op.inputs[0], ("int8",), "first input")
        b = self.need_dtype(op, op.inputs[1], ("int8",), "second input")
        out = self.need_dtype(op, op.outputs[0], ("int8",), "output")
        if a.shape != b.shape or a.size != out.size or a.data is not None \
                or b.data is not None:
            # Broadcasting or a constant operand: the general element-wise op.
            self._lower_binary(op)
            return
        p = quant.add_params(a.scale, b.scale, out.scale)
        act_min, act_max = quant.activation_range(op.options["activation"], out.scale,
                                                  out.zero_point)
        g = self.graph
        self.emit(op, [g.tensor(op.inputs[0]), g.tensor(op.inputs[1])],
                  [g.tensor(op.outputs[0])],
                  [a.size, -a.zero_point, -b.zero_point, out.zero_point, p["left_shift"],
                   p["input1_mult"], p["input1_shift"], p["input2_mult"], p["input2_shift"],
                   p["output_mult"], p["output_shift"], act_min, act_max])

    def _lower_softmax(self, op):
        inp = self.need_dtype(op, op.inputs[0], ("int8",), "input")
        out = self.need_dtype(op, op.outputs[0], ("int8",), "output")
        if out.zero_point != -128 or abs(out.scale - 1.0 / 256) > 1e-9:
            self.fail(op, "int8 softmax output must have scale 1/256 and zero point -128")
        depth = inp.shape[-1] if inp.shape else 1
        mult, left_shift, diff_min = quant.softmax_params(op.options["beta"], inp.scale)
        g = self.graph
        self.emit(op, [g.tensor(op.inputs[0])], [g.tensor(op.outputs[0])],
                  [inp.size // depth, depth, mult, left_shift, diff_min])

    def _lower_quantize(self, op):
        inp = self.need_dtype(op, op.inputs[0], ("float32", "int8", "int16"), "input")
        if inp.dtype == "int16":
            self._lower_quantize_int16(op)
            return
        out = self.need_dtype(op, op.outputs[0], ("int8",), "output")
        self.need_per_tensor(op, op.outputs[0], "output")
        if inp.dtype == "float32":
            params = [0, out.size, out.zero_point, quant.float32_bits(out.scale), 0, 0]
        else:
            mult, shift = quant.requantize_params(inp.scale, out.scale)
            params = [1, out.size, inp.zero_point, out.zero_point, mult, shift]
        g = self.graph
        self.emit(op, [g.tensor(op.inputs[0])], [g.tensor(op.outputs[0])], params)

    def _lower_dequantize(self, op):
        inp = self.need_dtype(op, op.inputs[0], ("int8",), "input")
        self.need_dtype(op, op.outputs[0], ("float32",), "output")
        self.need_per_tensor(op, op.inputs[0], "input")
        g = self.graph
        self.emit(op, [g.tensor(op.inputs[0])], [g.tensor(op.outputs[0])],
                  [inp.size, inp.zero_point, quant.float32_bits(inp.scale)])


def lower(model):
    """Lower a :class:`~minerva_packager.capsule.tflite_import.TfliteModel`.

    Returns ``(tensors, ops, inputs, outputs)`` in capsule terms (offsets not yet assigned).
    """
    graph = _Lowering(model).run()
    for index in model.inputs + model.outputs:
        t = model.tensors[index]
        if t.data is not None:
            raise PackagerError(f"{model.path}: model input/output {t.name!r} is a constant "
                                "(its ops were folded at pack time)",
                                "export a model whose output depends on its input")
        if t.dtype not in ("int8", "float32") and not (t.dtype == "int16"
                                                       and index in model.inputs):
            raise PackagerError(f"{model.path}: model input/output {t.name!r} is {t.dtype}",
                                "export with int8 (or float32, or int16 for an input) inputs "
                                "and outputs")
    inputs = [graph.tensor(i) for i in model.inputs]
    outputs = [graph.tensor(i) for i in model.outputs]
    unused = set(fuse_gathers(graph.tensors, graph.ops, inputs + outputs))
    # Drop the tensors fusion left unused and renumber the rest.
    keep = [i for i in range(len(graph.tensors)) if i not in unused]
    new_index = {old: new for new, old in enumerate(keep)}
    for op in graph.ops:
        op.inputs = [None if i is None else new_index[i] for i in op.inputs]
        op.outputs = [new_index[i] for i in op.outputs]
    tensors = [graph.tensors[i] for i in keep]
    return tensors, graph.ops, [new_index[i] for i in inputs], [new_index[i] for i in outputs]
