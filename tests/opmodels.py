"""A catalogue of small generated int8 ``.tflite`` models covering every op and option of
capsule format v1 (docs/capsule-format.md).

Each model is described once as a float network with seeded random weights (:class:`Net`),
written as float32 and run in TFLite on random inputs to calibrate every activation's range,
then written again as int8 with post-training quantization the way the TFLite converter does
it (asymmetric int8 activations, symmetric int8 weights per tensor or per channel, int32 bias
at ``input_scale * weight_scale``). Outputs therefore use most of the int8 range instead of
saturating.

Use::

    model = build_op_model("conv_same_s1_perchannel", seed=0)
    model.tflite                      # bytes
    for inputs in model.inputs(count=4, seed=1):   # one array per model input
        ...

``OP_MODELS`` maps each name to a function ``(seed) -> GeneratedModel``.
"""

import warnings

import numpy as np
import pytest

from minerva_packager.capsule.tflite_writer import (
    TfliteBuilder,
    activation_quantization,
    quantize_bias,
    quantize_weights,
    symmetric_scales,
)

CALIBRATION_SAMPLES = 48


class _Node:
    def __init__(self, kind, inputs, output, **params):
        self.kind = kind
        self.inputs = inputs
        self.output = output
        self.params = params


def _out_size(padding, size, kernel, stride, dilation):
    effective = (kernel - 1) * dilation + 1
    if padding == "SAME":
        return (size + stride - 1) // stride
    return (size - effective + stride) // stride


def _pair(value):
    return (value, value) if isinstance(value, int) else tuple(value)


class Net:
    """A small float network, written as float32 to calibrate and as int8 to test."""

    def __init__(self, seed, float_input=False, float_output=False):
        self.rng = np.random.default_rng(seed)
        self.shapes = []
        self.nodes = []
        self.inputs = []
        self.input_spread = {}
        self.fixed_quant = {}
        self.range_override = {}
        self.float_input = float_input
        self.float_output = float_output

    # -- graph description -------------------------------------------------------------------

    def _value(self, shape):
        self.shapes.append(tuple(shape))
        return len(self.shapes) - 1

    def input(self, shape, spread=1.0):
        """A model input whose float values are normal with deviation ``spread``."""
        value = self._value(shape)
        self.inputs.append(value)
        self.input_spread[value] = spread
        return value

    def _weights(self, shape, fan_in, gain=1.0):
        return (self.rng.normal(0.0, gain / np.sqrt(fan_in), shape)).astype(np.float32)

    def _bias(self, out_c, bias):
        return self.rng.normal(0.0, 0.3, out_c).astype(np.float32) if bias else None

    def conv2d(self, x, out_c, kernel, stride=1, dilation=1, padding="SAME", activation="NONE",
               bias=True, per_channel=True, gain=1.0, out_range=None):
        n, h, w, c = self.shapes[x]
        (kh, kw), (sh, sw), (dh, dw) = _pair(kernel), _pair(stride), _pair(dilation)
        weights = self._weights((out_c, kh, kw, c), kh * kw * c, gain)
        out = self._value((n, _out_size(padding, h, kh, sh, dh),
                           _out_size(padding, w, kw, sw, dw), out_c))
        self.nodes.append(_Node("CONV_2D", [x], out, weights=weights,
                                bias=self._bias(out_c, bias), channel_axis=0,
                                per_channel=per_channel,
                                options=dict(padding=padding, stride=(sh, sw),
                                             dilation=(dh, dw), activation=activation)))
        self._override(out, out_range)
        return out

    def depthwise_conv2d(self, x, depth_multiplier, kernel, stride=1, dilation=1,
                         padding="SAME", activation="NONE", bias=True, per_channel=True,
                         gain=1.0, out_range=None):
        n, h, w, c = self.shapes[x]
        (kh, kw), (sh, sw), (dh, dw) = _pair(kernel), _pair(stride), _pair(dilation)
        out_c = c * depth_multiplier
        weights = self._weights((1, kh, kw, out_c), kh * kw, gain)
        out = self._value((n, _out_size(padding, h, kh, sh, dh),
                           _out_size(padding, w, kw, sw, dw), out_c))
        self.nodes.append(_Node("DEPTHWISE_CONV_2D", [x], out, weights=weights,
                                bias=self._bias(out_c, bias), channel_axis=3,
                                per_channel=per_channel,
                                options=dict(padding=padding, stride=(sh, sw),
                                             dilation=(dh, dw), activation=activation,
                                             depth_multiplier=depth_multiplier)))
        self._override(out, out_range)
        return out

    def fully_connected(self, x, out_c, bias=True, per_channel=False, activation="NONE",
                        keep_num_dims=False, depth=None, gain=1.0, out_range=None):
        shape = self.shapes[x]
        depth = depth or shape[-1]
        batches = int(np.prod(shape)) // depth
        weights = self._weights((out_c, depth), depth, gain)
        out_shape = (*shape[:-1], out_c) if keep_num_dims else (batches, out_c)
        out = self._value(out_shape)
        self.nodes.append(_Node("FULLY_CONNECTED", [x], out, weights=weights,
                                bias=self._bias(out_c, bias), channel_axis=0,
                                per_channel=per_channel,
                                options=dict(activation=activation,
                                             keep_num_dims=keep_num_dims)))
        self._override(out, out_range)
        return out

    def pool(self, kind, x, filter_size, stride=1, padding="VALID", activation="NONE"):
        n, h, w, c = self.shapes[x]
        (fh, fw), (sh, sw) = _pair(filter_size), _pair(stride)
        out = self._value((n, _out_size(padding, h, fh, sh, 1),
                           _out_size(padding, w, fw, sw, 1), c))
        self.nodes.append(_Node(kind, [x], out,
                                options=dict(filter_size=(fh, fw), stride=(sh, sw),
                                             padding=padding, activation=activation)))
        self.fixed_quant[out] = ("same", x)
        return out

    def add(self, a, b, activation="NONE", out_range=None):
        out = self._value(self.shapes[a])
        self.nodes.append(_Node("ADD", [a, b], out, options=dict(activation=activation)))
        self._override(out, out_range)
        return out

    def reshape(self, x, shape):
        out = self._value(shape)
        self.nodes.append(_Node("RESHAPE", [x], out, options=dict(new_shape=tuple(shape))))
        self.fixed_quant[out] = ("same", x)
        return out

    def softmax(self, x, beta=1.0):
        out = self._value(self.shapes[x])
        self.nodes.append(_Node("SOFTMAX", [x], out, options=dict(beta=beta)))
        self.fixed_quant[out] = ("fixed", (1.0 / 256.0, -128))
        return out

    def requantize(self, x, scale_factor, zero_point_shift):
        """An int8 -> int8 QUANTIZE to a new scale (the float network passes ``x`` through)."""
        out = self._value(self.shapes[x])
        self.nodes.append(_Node("REQUANTIZE", [x], out))
        self.fixed_quant[out] = ("requantize", (x, scale_factor, zero_point_shift))
        return out

    # -- data-movement ops: the output keeps the input's quantization, as the converter
    # writes them (TFLite Micro copies bytes whatever the quantization says).

    def _moved(self, kind, x, out_shape, consts=(), same=True, inputs=None, **options):
        out = self._value(out_shape)
        self.nodes.append(_Node(kind, inputs or [x], out, consts=list(consts),
                                options=options))
        if same:
            self.fixed_quant[out] = ("same", x)
        return out

    def transpose(self, x, perm):
        shape = self.shapes[x]
        return self._moved("TRANSPOSE", x, [shape[p] for p in perm], [("int32", perm)])

    def strided_slice(self, x, begin, end, strides, begin_mask=0, end_mask=0,
                      shrink_axis_mask=0):
        # The output shape by numpy's slicing, which is TensorFlow's semantics.
        index = []
        for axis in range(len(begin)):
            if shrink_axis_mask >> axis & 1:
                index.append(begin[axis])
            else:
                index.append(slice(None if begin_mask >> axis & 1 else begin[axis],
                                   None if end_mask >> axis & 1 else end[axis], strides[axis]))
        out_shape = np.zeros(self.shapes[x])[tuple(index)].shape
        return self._moved("STRIDED_SLICE", x, out_shape,
                           [("int32", begin), ("int32", end), ("int32", strides)],
                           begin_mask=begin_mask, end_mask=end_mask,
                           shrink_axis_mask=shrink_axis_mask)

    def pad(self, x, paddings, value=None):
        out_shape = [d + a + b for d, (a, b) in zip(self.shapes[x], paddings)]
        if value is None:
            return self._moved("PAD", x, out_shape, [("int32", paddings)])
        return self._moved("PADV2", x, out_shape, [("int32", paddings), ("pad_value", value)])

    def squeeze(self, x, dims=()):
        shape = self.shapes[x]
        out_shape = [d for k, d in enumerate(shape)
                     if not (d == 1 and (not dims or k in dims or k - len(shape) in dims))]
        return self._moved("SQUEEZE", x, out_shape, squeeze_dims=list(dims))

    def expand_dims(self, x, axis):
        shape = list(self.shapes[x])
        shape.insert(axis if axis >= 0 else len(shape) + 1 + axis, 1)
        return self._moved("EXPAND_DIMS", x, shape, [("int32", [axis])])

    def resize_nearest(self, x, size, align_corners=False, half_pixel_centers=False):
        n, _, _, c = self.shapes[x]
        return self._moved("RESIZE_NEAREST_NEIGHBOR", x, (n, size[0], size[1], c),
                           [("int32", list(size))], align_corners=align_corners,
                           half_pixel_centers=half_pixel_centers)

    def concatenate(self, xs, axis):
        """CONCATENATION; the output takes the first input's quantization."""
        shape = list(self.shapes[xs[0]])
        shape[axis] = sum(self.shapes[x][axis] for x in xs)
        return self._moved("CONCATENATION", xs[0], shape, inputs=list(xs), axis=axis)

    # -- math ops: calibrated like any activation, but LOGISTIC, whose int8 output TFLite
    # fixes at scale 1/256 and zero point -128.

    def _math(self, kind, inputs, out_shape, consts=(), **options):
        out = self._value(out_shape)
        self.nodes.append(_Node(kind, list(inputs), out, consts=list(consts), options=options))
        return out

    def mul(self, a, b):
        shape = np.broadcast_shapes(self.shapes[a], self.shapes[b])
        return self._math("MUL", [a, b], shape)

    def hard_swish(self, x):
        return self._math("HARD_SWISH", [x], self.shapes[x])

    def relu6(self, x):
        return self._math("RELU6", [x], self.shapes[x])

    def logistic(self, x):
        out = self._math("LOGISTIC", [x], self.shapes[x])
        self.fixed_quant[out] = ("fixed", (1.0 / 256.0, -128))
        return out

    def mean(self, x, axes, keep_dims=True):
        shape = [1 if k in axes else d for k, d in enumerate(self.shapes[x])]
        if not keep_dims:
            shape = [d for k, d in enumerate(shape) if k not in axes]
        return self._math("MEAN", [x], shape, [("int32", list(axes))], keep_dims=keep_dims)

    def _override(self, value, out_range):
        if out_range is not None:
            self.range_override[value] = out_range

    # -- writing -----------------------------------------------------------------------------

    def float_inputs(self, rng, count):
        """``count`` lists of float32 inputs drawn from the inputs' distributions."""
        return [[(rng.normal(0.0, self.input_spread[v], self.shapes[v])).astype(np.float32)
                 for v in self.inputs] for _ in range(count)]

    def _float_model(self):
        b = TfliteBuilder("minerva tests: float twin for calibration")
        tensors = {}
        for v in self.inputs:
            tensors[v] = b.tensor(f"input{v}", self.shapes[v], "float32")
        for k, node in enumerate(self.nodes):
            if node.kind == "REQUANTIZE":
                tensors[node.output] = tensors[node.inputs[0]]
                continue
            ins = [tensors[v] for v in node.inputs]
            if "weights" in node.params:
                w = node.params["weights"]
                ins.append(b.tensor(f"w{k}", w.shape, "float32", data=w))
                # TFLite's float convolutions need a bias (conv.cc checks has_bias; the
                # optimized depthwise kernel crashes without one), so an absent one is zeros.
                bias = node.params["bias"]
                if bias is None:
                    bias = np.zeros(w.shape[node.params["channel_axis"]], np.float32)
                ins.append(b.tensor(f"b{k}", bias.shape, "float32", data=bias))
            ins += _constants(b, k, node, "float32")
            out = b.tensor(f"t{node.output}", self.shapes[node.output], "float32")
            tensors[node.output] = out
            b.op(node.kind, _drop_absent_conv_bias(node.kind, ins), [out],
                 **node.params.get("options", {}))
        outputs = [tensors[self.nodes[-1].output]]
        return b.build([tensors[v] for v in self.inputs], outputs), tensors

    def calibrate(self, rng):
        """Observed ``(min, max)`` of every value over random float inputs."""
        litert = pytest.importorskip("ai_edge_litert.interpreter",
                                     reason="ai-edge-litert calibrates the generated models "
                                            "(pip install -e '.[test]')")
        model, tensors = self._float_model()
        with warnings.catch_warnings():
            # It warns that keeping every tensor costs memory: these models are tiny.
            warnings.simplefilter("ignore", UserWarning)
            it = litert.Interpreter(
                model_content=model, experimental_preserve_all_tensors=True,
                experimental_op_resolver_type=litert.OpResolverType.BUILTIN_REF)
        it.allocate_tensors()
        details = it.get_input_details()
        low = {v: np.inf for v in tensors}
        high = {v: -np.inf for v in tensors}
        for sample in self.float_inputs(rng, CALIBRATION_SAMPLES):
            for d, x in zip(details, sample):
                it.set_tensor(d["index"], x)
            it.invoke()
            for v, t in tensors.items():
                values = it.get_tensor(t)
                low[v] = min(low[v], float(values.min()))
                high[v] = max(high[v], float(values.max()))
        return {v: (low[v], high[v]) for v in tensors}

    def quantization(self, ranges):
        """``{value: (scale, zero_point)}`` for every value, in graph order."""
        quant = {}
        for v in range(len(self.shapes)):
            rule = self.fixed_quant.get(v)
            if rule is None:
                quant[v] = activation_quantization(*self.range_override.get(v, ranges[v]))
            elif rule[0] == "same":
                quant[v] = quant[rule[1]]
            elif rule[0] == "fixed":
                quant[v] = rule[1]
            else:
                source, factor, shift = rule[1]
                scale, zero_point = quant[source]
                quant[v] = (float(np.float32(scale * factor)),
                            int(np.clip(zero_point + shift, -128, 127)))
        return quant

    def int8_model(self, quant):
        b = TfliteBuilder("minerva tests: generated int8 model")
        tensors = {}
        model_inputs = []
        for v in self.inputs:
            scale, zero_point = quant[v]
            tensors[v] = b.tensor(f"input{v}", self.shapes[v], "int8", scale=scale,
                                  zero_point=zero_point)
            if self.float_input:
                raw = b.tensor(f"input{v}_float", self.shapes[v], "float32")
                b.op("QUANTIZE", [raw], [tensors[v]])
                model_inputs.append(raw)
            else:
                model_inputs.append(tensors[v])
        for k, node in enumerate(self.nodes):
            scale, zero_point = quant[node.output]
            out = b.tensor(f"t{node.output}", self.shapes[node.output], "int8", scale=scale,
                           zero_point=zero_point)
            tensors[node.output] = out
            ins = [tensors[v] for v in node.inputs]
            if node.kind == "REQUANTIZE":
                b.op("QUANTIZE", ins, [out])
                continue
            if "weights" in node.params:
                ins += self._quantized_weights(b, k, node, quant[node.inputs[0]][0])
            ins += _constants(b, k, node, "int8", (scale, zero_point))
            if node.kind == "RESHAPE":
                shape = node.params["options"]["new_shape"]
                ins.append(b.tensor(f"shape{k}", [len(shape)], "int32", data=shape))
            b.op(node.kind, _drop_absent_conv_bias(node.kind, ins), [out],
                 **node.params.get("options", {}))
        last = tensors[self.nodes[-1].output]
        if self.float_output:
            result = b.tensor("output_float", b.shape(last), "float32")
            b.op("DEQUANTIZE", [last], [result])
            last = result
        return b.build(model_inputs, [last])

    @staticmethod
    def _quantized_weights(b, k, node, input_scale):
        w, axis = node.params["weights"], node.params["channel_axis"]
        per_channel = node.params["per_channel"]
        scales = symmetric_scales(w, axis if per_channel else None)
        filt = b.tensor(f"w{k}", w.shape, "int8", data=quantize_weights(w, scales, axis),
                        scale=scales, zero_point=0, quantized_dimension=axis if per_channel else 0)
        out_c = w.shape[axis]
        bias = node.params["bias"]
        if bias is None:
            return [filt, None]
        bias_q, bias_scales = quantize_bias(bias, input_scale, scales)
        return [filt, b.tensor(f"b{k}", [out_c], "int32", data=bias_q, scale=bias_scales,
                               zero_point=0)]


def _constants(b, k, node, dtype, quant=None):
    """The constant inputs of a data-movement op: int32 index tensors, and PADV2's pad value
    (float32 in the float twin, int8 at the output's quantization in the int8 model)."""
    tensors = []
    for j, (kind, data) in enumerate(node.params.get("consts", ())):
        if kind != "pad_value":
            tensors.append(b.tensor(f"c{k}_{j}", np.shape(data), kind, data=data))
        elif dtype == "float32":
            tensors.append(b.tensor(f"c{k}_{j}", [1], "float32", data=[data]))
        else:
            scale, zero_point = quant
            q = int(np.clip(np.round(data / scale) + zero_point, -128, 127))
            tensors.append(b.tensor(f"c{k}_{j}", [1], "int8", data=[q], scale=scale,
                                    zero_point=zero_point))
    return tensors


def _drop_absent_conv_bias(kind, inputs):
    """TFLite's convolutions take 2 inputs when there is no bias and reject an absent (-1)
    third one; FULLY_CONNECTED takes -1, which is what the converter writes for it."""
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D") and inputs[-1] is None:
        return inputs[:-1]
    return inputs


class GeneratedModel:
    """An int8 model written from a :class:`Net`, with matching input generators."""

    def __init__(self, name, net, tflite, quant):
        self.name = name
        self.net = net
        self.tflite = tflite
        self.quant = quant

    @property
    def has_absent_conv_bias(self):
        """Whether a CONV_2D or DEPTHWISE_CONV_2D has no bias (which TFLite cannot run as is:
        see ``reference.with_zero_conv_biases``)."""
        return any(n.kind in ("CONV_2D", "DEPTHWISE_CONV_2D") and n.params["bias"] is None
                   for n in self.net.nodes)

    def count(self, kind):
        """How many ops of ``kind`` the model has."""
        return sum(n.kind == kind for n in self.net.nodes)

    def inputs(self, count, seed=0):
        """``count`` realistic input lists, then one of uniformly random int8 (int8 models)."""
        rng = np.random.default_rng(seed)
        samples = self.net.float_inputs(rng, count)
        if self.net.float_input:
            return samples
        quantized = [[self._quantize(v, x) for v, x in zip(self.net.inputs, sample)]
                     for sample in samples]
        extreme = [rng.integers(-128, 128, self.net.shapes[v]).astype(np.int8)
                   for v in self.net.inputs]
        return quantized + [extreme]

    def _quantize(self, value, x):
        scale, zero_point = self.quant[value]
        return np.clip(np.round(x / scale) + zero_point, -128, 127).astype(np.int8)


def finish(name, net, seed):
    """Calibrate ``net`` and write it as int8."""
    ranges = net.calibrate(np.random.default_rng(seed + 1000))
    quant = net.quantization(ranges)
    return GeneratedModel(name, net, net.int8_model(quant), quant)


# -- the catalogue ---------------------------------------------------------------------------

def _conv(name, **kwargs):
    input_shape = kwargs.pop("input_shape", (1, 8, 8, 3))
    out_c = kwargs.pop("out_c", 4)
    kernel = kwargs.pop("kernel", 3)

    def build(seed):
        net = Net(seed)
        net.conv2d(net.input(input_shape), out_c, kernel, **kwargs)
        return finish(name, net, seed)
    return build


def _depthwise(name, **kwargs):
    input_shape = kwargs.pop("input_shape", (1, 9, 7, 3))
    depth_multiplier = kwargs.pop("depth_multiplier", 1)
    kernel = kwargs.pop("kernel", 3)

    def build(seed):
        net = Net(seed)
        net.depthwise_conv2d(net.input(input_shape), depth_multiplier, kernel, **kwargs)
        return finish(name, net, seed)
    return build


def _fully_connected(name, input_shape, out_c, **kwargs):
    def build(seed):
        net = Net(seed)
        net.fully_connected(net.input(input_shape), out_c, **kwargs)
        return finish(name, net, seed)
    return build


def _pool(name, kind, input_shape=(1, 9, 8, 3), **kwargs):
    def build(seed):
        net = Net(seed)
        net.pool(kind, net.input(input_shape), **kwargs)
        return finish(name, net, seed)
    return build


def _add(name, spreads, **kwargs):
    def build(seed):
        net = Net(seed)
        a = net.input((1, 4, 4, 3), spread=spreads[0])
        b = net.input((1, 4, 4, 3), spread=spreads[1])
        net.add(a, b, **kwargs)
        return finish(name, net, seed)
    return build


def _add_branches(seed):
    """One input through two convolutions of different gain, then ADD: the residual shape
    real networks have, with both ADD inputs computed in the model."""
    net = Net(seed)
    x = net.input((1, 5, 5, 4))
    a = net.conv2d(x, 4, 1, padding="VALID", gain=0.5)
    b = net.conv2d(x, 4, 3, gain=3.0, activation="RELU")
    net.add(a, b)
    return finish("add_branches", net, seed)


def _reshape(seed):
    net = Net(seed)
    net.reshape(net.input((1, 3, 4, 2)), (1, 24))
    return finish("reshape_4d_to_2d", net, seed)


def _softmax(name, shape, beta, spread):
    def build(seed):
        net = Net(seed)
        net.softmax(net.input(shape, spread=spread), beta=beta)
        return finish(name, net, seed)
    return build


def _quantize_float_input(seed):
    net = Net(seed, float_input=True)
    net.fully_connected(net.input((1, 12), spread=2.0), 6, per_channel=True)
    return finish("quantize_float_input", net, seed)


def _requantize(name, factor, shift):
    def build(seed):
        net = Net(seed)
        net.requantize(net.input((1, 5, 7)), factor, shift)
        return finish(name, net, seed)
    return build


def _dequantize_output(seed):
    net = Net(seed, float_output=True)
    net.fully_connected(net.input((1, 10)), 7, activation="RELU")
    return finish("dequantize_output", net, seed)


def _chain(seed):
    """float -> QUANTIZE -> conv -> dw conv -> max pool -> conv + skip ADD -> avg pool ->
    RESHAPE -> FC -> SOFTMAX -> DEQUANTIZE: every op kind in one graph."""
    net = Net(seed, float_input=True, float_output=True)
    x = net.input((1, 10, 10, 2))
    x = net.conv2d(x, 6, 3, activation="RELU")
    x = net.depthwise_conv2d(x, 2, 3, stride=2, activation="RELU6", gain=2.0)
    x = net.pool("MAX_POOL_2D", x, 2, stride=1, padding="SAME")
    y = net.conv2d(x, 12, 1, padding="VALID", per_channel=False)
    y = net.requantize(y, 1.25, 3)
    x = net.add(x, y, activation="RELU")
    x = net.pool("AVERAGE_POOL_2D", x, (5, 5), stride=5)
    x = net.reshape(x, (1, 12))
    x = net.fully_connected(x, 8, per_channel=True)
    net.softmax(x, beta=1.0)
    return finish("chain", net, seed)


def _moved(name, shape, make):
    """One data-movement op, ``make(net, x)``, on an input of ``shape``."""
    def build(seed):
        net = Net(seed)
        make(net, net.input(shape))
        return finish(name, net, seed)
    return build


def _concat(name, shapes, axis):
    """TFLite Micro's int8 CONCATENATION requires every input at the output's scale (the
    converter writes them so), so all inputs share the first one's quantization."""
    def build(seed):
        net = Net(seed)
        xs = [net.input(shape, spread=1.0) for shape in shapes]
        for x in xs[1:]:
            net.fixed_quant[x] = ("same", xs[0])
        net.concatenate(xs, axis)
        return finish(name, net, seed)
    return build


def _conv_then_transpose(seed):
    """A conv whose NHWC output is transposed to NCHW and sliced, as exports feeding a
    PyTorch-style head do."""
    net = Net(seed)
    x = net.conv2d(net.input((1, 6, 5, 3)), 4, 3, activation="RELU")
    x = net.transpose(x, (0, 3, 1, 2))
    net.strided_slice(x, (0, 1, 0, 1), (1, 4, 6, 5), (1, 1, 2, 2))
    return finish("conv_transpose_slice", net, seed)


SHAPE_MODELS = {
    # TRANSPOSE (GATHER): ranks 2-4, every kind of permutation.
    "transpose_nchw_to_nhwc": _moved("transpose_nchw_to_nhwc", (1, 3, 5, 4),
                                     lambda n, x: n.transpose(x, (0, 2, 3, 1))),
    "transpose_4d_3120": _moved("transpose_4d_3120", (2, 3, 4, 5),
                                lambda n, x: n.transpose(x, (3, 1, 2, 0))),
    "transpose_3d_021": _moved("transpose_3d_021", (2, 5, 3),
                               lambda n, x: n.transpose(x, (0, 2, 1))),
    "transpose_2d": _moved("transpose_2d", (7, 5), lambda n, x: n.transpose(x, (1, 0))),
    # STRIDED_SLICE (GATHER): strides, negative indices and strides, masks, shrink.
    "strided_slice_strides": _moved(
        "strided_slice_strides", (1, 7, 9, 5),
        lambda n, x: n.strided_slice(x, (0, 1, 0, 1), (1, 7, 9, 5), (1, 2, 3, 2))),
    "strided_slice_negative_masks": _moved(
        "strided_slice_negative_masks", (1, 8, 6, 4),
        lambda n, x: n.strided_slice(x, (0, -3, 4, 0), (1, -1, 0, 3), (1, 1, 1, 1),
                                     begin_mask=0b0100, end_mask=0b0100)),
    "strided_slice_reverse": _moved(
        "strided_slice_reverse", (1, 6, 5, 3),
        lambda n, x: n.strided_slice(x, (0, 5, -1, 2), (1, 0, 0, 0), (1, -2, -1, -1),
                                     end_mask=0b1100)),
    "strided_slice_shrink": _moved(
        "strided_slice_shrink", (1, 5, 6, 3),
        lambda n, x: n.strided_slice(x, (0, 2, 0, 0), (1, 3, 6, 3), (1, 1, 1, 1),
                                     shrink_axis_mask=0b0011)),
    "strided_slice_1d": _moved("strided_slice_1d", (20,),
                               lambda n, x: n.strided_slice(x, (3,), (17,), (3,))),
    "strided_slice_3d_clamped": _moved(
        "strided_slice_3d_clamped", (3, 7, 4),
        lambda n, x: n.strided_slice(x, (-9, 2, 1), (9, 100, 3), (2, 2, 1))),
    # PAD and PADV2 (GATHER): ranks 2-4, every axis, the pad value.
    "pad_4d_hw": _moved("pad_4d_hw", (1, 5, 4, 3),
                        lambda n, x: n.pad(x, ((0, 0), (1, 2), (2, 1), (0, 0)))),
    "pad_3d_every_axis": _moved("pad_3d_every_axis", (2, 3, 5),
                                lambda n, x: n.pad(x, ((1, 0), (0, 2), (3, 1)))),
    "pad_2d": _moved("pad_2d", (3, 4), lambda n, x: n.pad(x, ((1, 1), (2, 0)))),
    "padv2_4d_value": _moved("padv2_4d_value", (1, 4, 4, 2),
                             lambda n, x: n.pad(x, ((0, 0), (1, 1), (1, 1), (0, 3)), 0.5)),
    "padv2_batch_channels": _moved(
        "padv2_batch_channels", (1, 3, 3, 5),
        lambda n, x: n.pad(x, ((0, 1), (0, 0), (2, 0), (1, 1)), -1.0)),
    # SQUEEZE and EXPAND_DIMS (RESHAPE).
    "squeeze_all": _moved("squeeze_all", (1, 1, 6, 1), lambda n, x: n.squeeze(x)),
    "squeeze_dims": _moved("squeeze_dims", (1, 4, 1, 3), lambda n, x: n.squeeze(x, (2,))),
    "expand_dims_middle": _moved("expand_dims_middle", (3, 5),
                                 lambda n, x: n.expand_dims(x, 1)),
    "expand_dims_last": _moved("expand_dims_last", (2, 3, 4),
                               lambda n, x: n.expand_dims(x, -1)),
    # RESIZE_NEAREST_NEIGHBOR (GATHER): up and down, align_corners, half_pixel_centers.
    "resize_nearest_2x": _moved("resize_nearest_2x", (1, 3, 4, 2),
                                lambda n, x: n.resize_nearest(x, (6, 8))),
    "resize_nearest_align_corners": _moved(
        "resize_nearest_align_corners", (1, 5, 4, 3),
        lambda n, x: n.resize_nearest(x, (9, 7), align_corners=True)),
    "resize_nearest_half_pixel": _moved(
        "resize_nearest_half_pixel", (1, 4, 5, 2),
        lambda n, x: n.resize_nearest(x, (7, 3), half_pixel_centers=True)),
    "resize_nearest_odd_batch2": _moved("resize_nearest_odd_batch2", (2, 3, 3, 1),
                                        lambda n, x: n.resize_nearest(x, (5, 10))),
    "resize_nearest_down_align": _moved(
        "resize_nearest_down_align", (1, 9, 7, 2),
        lambda n, x: n.resize_nearest(x, (4, 3), align_corners=True)),
    # CONCATENATION: 2-4 inputs, every axis, different input scales (copied as bytes).
    "concat_channels_3_inputs": _concat("concat_channels_3_inputs",
                                        [(1, 4, 4, 3), (1, 4, 4, 5), (1, 4, 4, 1)], 3),
    "concat_axis1": _concat("concat_axis1", [(1, 3, 4, 2), (1, 5, 4, 2)], 1),
    "concat_axis0_2d": _concat("concat_axis0_2d", [(2, 6), (3, 6)], 0),
    "concat_negative_axis_4_inputs": _concat(
        "concat_negative_axis_4_inputs", [(2, 3), (2, 4), (2, 1), (2, 2)], -1),
    "conv_transpose_slice": _conv_then_transpose,
}


OP_MODELS = {
    # CONV_2D: padding, strides, dilation, per-channel/per-tensor, bias, fused activation.
    "conv_same_s1_perchannel": _conv("conv_same_s1_perchannel"),
    "conv_valid_s2_pertensor_relu": _conv(
        "conv_valid_s2_pertensor_relu", stride=2, padding="VALID", per_channel=False,
        activation="RELU", out_range=(-3.0, 3.0), input_shape=(1, 9, 9, 3)),
    "conv_same_s2_nobias_relu6": _conv(
        "conv_same_s2_nobias_relu6", stride=2, bias=False, activation="RELU6", gain=4.0,
        out_range=(-2.0, 8.0)),
    "conv_valid_dilation2": _conv("conv_valid_dilation2", dilation=2, padding="VALID",
                                  input_shape=(1, 10, 9, 2)),
    "conv_same_dilation2_s1": _conv("conv_same_dilation2_s1", dilation=2, out_c=3),
    "conv_same_kernel3x2_stride2x1": _conv(
        "conv_same_kernel3x2_stride2x1", kernel=(3, 2), stride=(2, 1),
        input_shape=(1, 7, 6, 4), out_c=5),
    "conv_1x1_batch2_pertensor_nobias": _conv(
        "conv_1x1_batch2_pertensor_nobias", kernel=1, padding="VALID", per_channel=False,
        bias=False, input_shape=(2, 4, 5, 6), out_c=3),
    # DEPTHWISE_CONV_2D: depth multiplier 1 and 2, strides, dilation.
    "depthwise_dm1_same_relu": _depthwise("depthwise_dm1_same_relu", activation="RELU"),
    "depthwise_dm2_valid_s2_pertensor": _depthwise(
        "depthwise_dm2_valid_s2_pertensor", depth_multiplier=2, stride=2, padding="VALID",
        per_channel=False),
    "depthwise_dm2_dilation2_relu6_nobias": _depthwise(
        "depthwise_dm2_dilation2_relu6_nobias", depth_multiplier=2, dilation=2,
        activation="RELU6", bias=False, gain=4.0, out_range=(-1.0, 7.0)),
    # FULLY_CONNECTED: per-tensor/per-channel, batches, keep_num_dims, 4-D input.
    "fc_pertensor": _fully_connected("fc_pertensor", (1, 16), 8),
    "fc_perchannel_relu": _fully_connected("fc_perchannel_relu", (1, 20), 10, per_channel=True,
                                           activation="RELU", out_range=(-2.0, 4.0)),
    "fc_batch3_nobias": _fully_connected("fc_batch3_nobias", (3, 10), 5, bias=False),
    "fc_keep_num_dims": _fully_connected("fc_keep_num_dims", (2, 3, 8), 4, keep_num_dims=True,
                                         per_channel=True),
    "fc_4d_input_relu6": _fully_connected("fc_4d_input_relu6", (1, 2, 2, 4), 6,
                                          activation="RELU6", gain=5.0,
                                          out_range=(-1.0, 7.5), depth=16),
    # AVERAGE_POOL_2D and MAX_POOL_2D: padding (partial windows at SAME edges), strides.
    "avgpool_valid_2x2_s2": _pool("avgpool_valid_2x2_s2", "AVERAGE_POOL_2D", filter_size=2,
                                  stride=2),
    "avgpool_same_3x3_s2": _pool("avgpool_same_3x3_s2", "AVERAGE_POOL_2D", filter_size=3,
                                 stride=2, padding="SAME"),
    "avgpool_same_3x2_s1_relu": _pool("avgpool_same_3x2_s1_relu", "AVERAGE_POOL_2D",
                                      filter_size=(3, 2), stride=1, padding="SAME",
                                      activation="RELU"),
    "maxpool_valid_3x3_s1": _pool("maxpool_valid_3x3_s1", "MAX_POOL_2D", filter_size=3),
    "maxpool_same_2x2_s2": _pool("maxpool_same_2x2_s2", "MAX_POOL_2D", filter_size=2,
                                 stride=2, padding="SAME"),
    "maxpool_same_3x3_s2_relu6": _pool("maxpool_same_3x3_s2_relu6", "MAX_POOL_2D",
                                       input_shape=(1, 7, 7, 2), filter_size=3, stride=2,
                                       padding="SAME", activation="RELU6"),
    # ADD: different input scales, fused RELU.
    "add_different_scales": _add("add_different_scales", (1.0, 4.0)),
    "add_relu": _add("add_relu", (2.0, 0.5), activation="RELU", out_range=(-1.0, 4.0)),
    "add_branches": _add_branches,
    # RESHAPE, SOFTMAX.
    "reshape_4d_to_2d": _reshape,
    "softmax_beta1": _softmax("softmax_beta1", (1, 10), 1.0, 2.0),
    "softmax_beta0_5_rows2": _softmax("softmax_beta0_5_rows2", (2, 6), 0.5, 4.0),
    # QUANTIZE (float32 -> int8, int8 -> int8 both ways) and DEQUANTIZE (int8 -> float32).
    "quantize_float_input": _quantize_float_input,
    "requantize_wider": _requantize("requantize_wider", 2.5, -20),
    "requantize_narrower": _requantize("requantize_narrower", 0.6, 10),
    "dequantize_output": _dequantize_output,
    # Everything together.
    "chain": _chain,
    **SHAPE_MODELS,
}


def build_op_model(name, seed=0):
    """The catalogue model ``name`` built with ``seed``."""
    return OP_MODELS[name](seed)
