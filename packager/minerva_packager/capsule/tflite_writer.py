"""Write small ``.tflite`` flatbuffers from numpy arrays (no TensorFlow needed).

Tests and examples need int8 models whose every op and option is chosen on purpose; the TFLite
converter needs TensorFlow and decides quantization itself. This module writes the flatbuffer
directly with the ``tflite`` package's generated builder functions::

    b = TfliteBuilder()
    x = b.tensor("x", [1, 8], "int8", scale=0.05, zero_point=-3)
    w = b.tensor("w", [4, 8], "int8", data=weights, scale=w_scales, quantized_dimension=0)
    bias = b.tensor("b", [4], "int32", data=bias_q, scale=0.05 * w_scales)
    y = b.tensor("y", [1, 4], "int8", scale=0.1, zero_point=0)
    b.op("FULLY_CONNECTED", [x, w, bias], [y], activation="RELU")
    model_bytes = b.build(inputs=[x], outputs=[y])

Tensors are referred to by the index :meth:`TfliteBuilder.tensor` returns; ``None`` in an op's
inputs is an absent optional input (e.g. a convolution without bias). Constant data is stored
16-byte aligned, as the TFLite converter does, so int32 biases can be read in place.

Supported ops and options (the ones ``docs/capsule-format.md`` covers):

=====================  ===============================================================
op                     options (default)
=====================  ===============================================================
CONV_2D                padding ("SAME"), stride (1), dilation (1), activation ("NONE")
DEPTHWISE_CONV_2D      as CONV_2D, plus depth_multiplier (1)
FULLY_CONNECTED        activation ("NONE"), keep_num_dims (False)
AVERAGE_POOL_2D        padding ("VALID"), stride (1), filter_size (required), activation
MAX_POOL_2D            as AVERAGE_POOL_2D
ADD                    activation ("NONE")
RESHAPE                new_shape (the output tensor's shape)
SOFTMAX                beta (1.0)
QUANTIZE, DEQUANTIZE   none
MUL, SUB               activation ("NONE")
MAXIMUM, MINIMUM       none
LOGISTIC, TANH         none
RELU, RELU6, ABS       none
HARD_SWISH             none
LEAKY_RELU             alpha (0.2)
MEAN                   keep_dims (False); the axes are the second input (an int32 constant)
=====================  ===============================================================

``stride``, ``dilation`` and ``filter_size`` take an int (both axes) or an ``(h, w)`` pair;
``activation`` is ``"NONE"``, ``"RELU"``, ``"RELU_N1_TO_1"`` or ``"RELU6"``.
"""

import flatbuffers
import numpy as np
import tflite

from ..errors import PackagerError

_TENSOR_TYPES = {
    "float32": (tflite.TensorType.FLOAT32, "<f4"),
    "int32": (tflite.TensorType.INT32, "<i4"),
    "int8": (tflite.TensorType.INT8, "i1"),
    "uint8": (tflite.TensorType.UINT8, "u1"),
    "int16": (tflite.TensorType.INT16, "<i2"),
    "int64": (tflite.TensorType.INT64, "<i8"),
}

# The operator versions the TFLite converter writes for int8 kernels; an interpreter accepts a
# model whose version is at most the newest it registers, and these are old enough for all.
_OP_VERSIONS = {
    "CONV_2D": 3,
    "DEPTHWISE_CONV_2D": 3,
    "FULLY_CONNECTED": 4,
    "AVERAGE_POOL_2D": 2,
    "MAX_POOL_2D": 2,
    "ADD": 2,
    "RESHAPE": 1,
    "SOFTMAX": 2,
    "QUANTIZE": 2,
    "DEQUANTIZE": 2,
    "TRANSPOSE": 2,
    "STRIDED_SLICE": 2,
    "PAD": 2,
    "PADV2": 2,
    "SQUEEZE": 1,
    "EXPAND_DIMS": 1,
    "RESIZE_NEAREST_NEIGHBOR": 2,
    "CONCATENATION": 2,
    # math ops (ops-math)
    "MUL": 2,
    "SUB": 2,
    "MAXIMUM": 2,
    "MINIMUM": 2,
    "LOGISTIC": 2,
    "TANH": 2,
    "RELU": 2,
    "RELU6": 2,
    "HARD_SWISH": 1,
    "LEAKY_RELU": 2,
    "MEAN": 2,
    "ABS": 2,
}

_PADDINGS = {"SAME": tflite.Padding.SAME, "VALID": tflite.Padding.VALID}
_ACTIVATIONS = {
    "NONE": tflite.ActivationFunctionType.NONE,
    "RELU": tflite.ActivationFunctionType.RELU,
    "RELU_N1_TO_1": tflite.ActivationFunctionType.RELU_N1_TO_1,
    "RELU6": tflite.ActivationFunctionType.RELU6,
}
_ALLOWED_OPTIONS = {
    "CONV_2D": {"padding", "stride", "dilation", "activation"},
    "DEPTHWISE_CONV_2D": {"padding", "stride", "dilation", "activation", "depth_multiplier"},
    "FULLY_CONNECTED": {"activation", "keep_num_dims"},
    "AVERAGE_POOL_2D": {"padding", "stride", "filter_size", "activation"},
    "MAX_POOL_2D": {"padding", "stride", "filter_size", "activation"},
    "ADD": {"activation"},
    "RESHAPE": {"new_shape"},
    "SOFTMAX": {"beta"},
    "QUANTIZE": set(),
    "DEQUANTIZE": set(),
    "TRANSPOSE": set(),
    "STRIDED_SLICE": {"begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask",
                      "shrink_axis_mask", "offset"},
    "PAD": set(),
    "PADV2": set(),
    "SQUEEZE": {"squeeze_dims"},
    "EXPAND_DIMS": set(),
    "RESIZE_NEAREST_NEIGHBOR": {"align_corners", "half_pixel_centers"},
    "CONCATENATION": {"axis", "activation"},
    # math ops (ops-math)
    "MUL": {"activation"},
    "SUB": {"activation"},
    "MAXIMUM": set(),
    "MINIMUM": set(),
    "LOGISTIC": set(),
    "TANH": set(),
    "RELU": set(),
    "RELU6": set(),
    "HARD_SWISH": set(),
    "LEAKY_RELU": {"alpha"},
    "MEAN": {"keep_dims"},
    "ABS": set(),
}
_BUFFER_ALIGNMENT = 16


def _pair(value, what):
    if isinstance(value, int):
        return value, value
    pair = tuple(int(v) for v in value)
    if len(pair) != 2:
        raise PackagerError(f"{what} must be an int or an (h, w) pair, not {value!r}",
                            "pass e.g. stride=2 or stride=(2, 1)")
    return pair


class _Tensor:
    def __init__(self, name, shape, dtype, buffer, scales, zero_points, quantized_dimension):
        self.name = name
        self.shape = shape
        self.dtype = dtype
        self.buffer = buffer
        self.scales = scales
        self.zero_points = zero_points
        self.quantized_dimension = quantized_dimension


class _Op:
    def __init__(self, name, inputs, outputs, options):
        self.name = name
        self.inputs = inputs
        self.outputs = outputs
        self.options = options


class TfliteBuilder:
    """Collects tensors and ops of one subgraph, then writes the model with :meth:`build`."""

    def __init__(self, description="minerva_packager.tflite_writer"):
        self.description = description
        self._tensors = []
        self._ops = []
        # Buffer 0 is the empty buffer every non-constant tensor points at (TFLite convention).
        self._buffers = [b""]

    def tensor(self, name, shape, dtype="int8", data=None, scale=None, zero_point=0,
               quantized_dimension=0):
        """Add a tensor and return its index.

        ``data`` (any array-like, cast to ``dtype``) makes it a constant. ``scale`` is a float
        (per-tensor) or a sequence (per-channel along ``quantized_dimension``); ``zero_point``
        is an int or a sequence of the same length. ``scale=None`` leaves it unquantized (a
        float32 tensor).
        """
        if dtype not in _TENSOR_TYPES:
            raise PackagerError(f"tensor {name!r}: dtype {dtype!r} is not supported",
                                "use one of " + ", ".join(_TENSOR_TYPES))
        shape = tuple(int(d) for d in shape)
        buffer = 0
        if data is not None:
            array = np.asarray(data).astype(_TENSOR_TYPES[dtype][1])
            if array.size != int(np.prod(shape, dtype=np.int64)):
                raise PackagerError(f"tensor {name!r}: {array.size} values for shape {shape}",
                                    "give data with as many values as the shape holds")
            self._buffers.append(array.tobytes())
            buffer = len(self._buffers) - 1
        scales = zero_points = None
        if scale is not None:
            scales = np.atleast_1d(np.asarray(scale, np.float32))
            zero_points = np.atleast_1d(np.asarray(zero_point, np.int64))
            if zero_points.size == 1 and scales.size > 1:
                zero_points = np.repeat(zero_points, scales.size)
            if zero_points.size != scales.size:
                raise PackagerError(f"tensor {name!r}: {scales.size} scales but "
                                    f"{zero_points.size} zero points",
                                    "give one zero point per scale")
            if scales.size > 1 and shape[quantized_dimension] != scales.size:
                raise PackagerError(f"tensor {name!r}: {scales.size} scales for dimension "
                                    f"{quantized_dimension} of size "
                                    f"{shape[quantized_dimension]}",
                                    "give one scale per channel")
        self._tensors.append(_Tensor(name, shape, dtype, buffer, scales, zero_points,
                                     quantized_dimension))
        return len(self._tensors) - 1

    def shape(self, index):
        """The shape of tensor ``index``."""
        return self._tensors[index].shape

    def op(self, opname, inputs, outputs, **options):
        """Add operator ``opname`` reading ``inputs`` and writing ``outputs`` (tensor indices).

        Options are those in the module docstring; unknown ones are rejected so a typo does not
        silently build a different model.
        """
        if opname not in _ALLOWED_OPTIONS:
            raise PackagerError(f"op {opname} is not supported by the writer",
                                "supported: " + ", ".join(_ALLOWED_OPTIONS))
        unknown = set(options) - _ALLOWED_OPTIONS[opname]
        if unknown:
            raise PackagerError(f"op {opname}: unknown options {sorted(unknown)}",
                                "allowed: " + ", ".join(sorted(_ALLOWED_OPTIONS[opname])))
        for index in [*inputs, *outputs]:
            if index is not None and not 0 <= index < len(self._tensors):
                raise PackagerError(f"op {opname}: tensor index {index} does not exist",
                                    "use the indices tensor() returned")
        self._ops.append(_Op(opname, list(inputs), list(outputs), options))
        return len(self._ops) - 1

    # -- serialisation -----------------------------------------------------------------------

    def build(self, inputs, outputs):
        """Return the model as ``.tflite`` bytes with the given subgraph inputs and outputs."""
        b = flatbuffers.Builder(1024)
        op_names = list(dict.fromkeys(op.name for op in self._ops))
        buffers = [self._write_buffer(b, data) for data in self._buffers]
        tensors = [self._write_tensor(b, t) for t in self._tensors]
        operators = [self._write_operator(b, op, op_names.index(op.name)) for op in self._ops]
        codes = [self._write_operator_code(b, name) for name in op_names]

        subgraph_inputs = b.CreateNumpyVector(np.asarray(inputs, np.int32))
        subgraph_outputs = b.CreateNumpyVector(np.asarray(outputs, np.int32))
        tensor_vector = _offset_vector(b, tflite.SubGraphStartTensorsVector, tensors)
        operator_vector = _offset_vector(b, tflite.SubGraphStartOperatorsVector, operators)
        name = b.CreateString("main")
        tflite.SubGraphStart(b)
        tflite.SubGraphAddTensors(b, tensor_vector)
        tflite.SubGraphAddInputs(b, subgraph_inputs)
        tflite.SubGraphAddOutputs(b, subgraph_outputs)
        tflite.SubGraphAddOperators(b, operator_vector)
        tflite.SubGraphAddName(b, name)
        subgraph = tflite.SubGraphEnd(b)

        subgraph_vector = _offset_vector(b, tflite.ModelStartSubgraphsVector, [subgraph])
        code_vector = _offset_vector(b, tflite.ModelStartOperatorCodesVector, codes)
        buffer_vector = _offset_vector(b, tflite.ModelStartBuffersVector, buffers)
        description = b.CreateString(self.description)
        tflite.ModelStart(b)
        tflite.ModelAddVersion(b, 3)
        tflite.ModelAddOperatorCodes(b, code_vector)
        tflite.ModelAddSubgraphs(b, subgraph_vector)
        tflite.ModelAddDescription(b, description)
        tflite.ModelAddBuffers(b, buffer_vector)
        b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
        return bytes(b.Output())

    @staticmethod
    def _write_buffer(b, data):
        data_vector = None
        if data:
            b.StartVector(1, len(data), _BUFFER_ALIGNMENT)
            b.head = b.head - len(data)
            b.Bytes[b.head:b.head + len(data)] = data
            data_vector = b.EndVector()
        tflite.BufferStart(b)
        if data_vector is not None:
            tflite.BufferAddData(b, data_vector)
        return tflite.BufferEnd(b)

    @staticmethod
    def _write_tensor(b, t):
        quantization = None
        if t.scales is not None:
            scale_vector = b.CreateNumpyVector(t.scales)
            zero_point_vector = b.CreateNumpyVector(t.zero_points)
            tflite.QuantizationParametersStart(b)
            tflite.QuantizationParametersAddScale(b, scale_vector)
            tflite.QuantizationParametersAddZeroPoint(b, zero_point_vector)
            tflite.QuantizationParametersAddQuantizedDimension(b, t.quantized_dimension)
            quantization = tflite.QuantizationParametersEnd(b)
        shape_vector = b.CreateNumpyVector(np.asarray(t.shape, np.int32))
        name = b.CreateString(t.name)
        tflite.TensorStart(b)
        tflite.TensorAddShape(b, shape_vector)
        tflite.TensorAddType(b, _TENSOR_TYPES[t.dtype][0])
        tflite.TensorAddBuffer(b, t.buffer)
        tflite.TensorAddName(b, name)
        if quantization is not None:
            tflite.TensorAddQuantization(b, quantization)
        return tflite.TensorEnd(b)

    def _write_operator(self, b, op, opcode_index):
        options_type, options = self._write_options(b, op)
        inputs = b.CreateNumpyVector(np.asarray([-1 if i is None else i for i in op.inputs],
                                                np.int32))
        outputs = b.CreateNumpyVector(np.asarray(op.outputs, np.int32))
        tflite.OperatorStart(b)
        tflite.OperatorAddOpcodeIndex(b, opcode_index)
        tflite.OperatorAddInputs(b, inputs)
        tflite.OperatorAddOutputs(b, outputs)
        if options is not None:
            tflite.OperatorAddBuiltinOptionsType(b, options_type)
            tflite.OperatorAddBuiltinOptions(b, options)
        return tflite.OperatorEnd(b)

    def _write_operator_code(self, b, name):
        code = getattr(tflite.BuiltinOperator, name)
        version = _OP_VERSIONS[name]
        for op in self._ops:
            if op.name == name:
                version = max(version, self._op_version(op))
        tflite.OperatorCodeStart(b)
        # Codes above 127 only fit the int32 field; the int8 field keeps old readers working.
        tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
        tflite.OperatorCodeAddBuiltinCode(b, code)
        tflite.OperatorCodeAddVersion(b, version)
        return tflite.OperatorCodeEnd(b)

    def _op_version(self, op):
        if op.name == "FULLY_CONNECTED" and op.options.get("keep_num_dims"):
            return 5
        return _OP_VERSIONS[op.name]

    def _write_options(self, b, op):
        """Write the op's BuiltinOptions table; return ``(union type, offset)``."""
        o = op.options
        kinds = tflite.BuiltinOptions
        activation = _activation(o.get("activation", "NONE"))
        if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            stride_h, stride_w = _pair(o.get("stride", 1), "stride")
            dilation_h, dilation_w = _pair(o.get("dilation", 1), "dilation")
            padding = _padding(o.get("padding", "SAME"))
            if op.name == "CONV_2D":
                tflite.Conv2DOptionsStart(b)
                tflite.Conv2DOptionsAddPadding(b, padding)
                tflite.Conv2DOptionsAddStrideH(b, stride_h)
                tflite.Conv2DOptionsAddStrideW(b, stride_w)
                tflite.Conv2DOptionsAddDilationHFactor(b, dilation_h)
                tflite.Conv2DOptionsAddDilationWFactor(b, dilation_w)
                tflite.Conv2DOptionsAddFusedActivationFunction(b, activation)
                return kinds.Conv2DOptions, tflite.Conv2DOptionsEnd(b)
            tflite.DepthwiseConv2DOptionsStart(b)
            tflite.DepthwiseConv2DOptionsAddPadding(b, padding)
            tflite.DepthwiseConv2DOptionsAddStrideH(b, stride_h)
            tflite.DepthwiseConv2DOptionsAddStrideW(b, stride_w)
            tflite.DepthwiseConv2DOptionsAddDilationHFactor(b, dilation_h)
            tflite.DepthwiseConv2DOptionsAddDilationWFactor(b, dilation_w)
            tflite.DepthwiseConv2DOptionsAddDepthMultiplier(b, o.get("depth_multiplier", 1))
            tflite.DepthwiseConv2DOptionsAddFusedActivationFunction(b, activation)
            return kinds.DepthwiseConv2DOptions, tflite.DepthwiseConv2DOptionsEnd(b)
        if op.name in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
            if "filter_size" not in o:
                raise PackagerError(f"op {op.name}: filter_size is required",
                                    "pass filter_size=(h, w)")
            stride_h, stride_w = _pair(o.get("stride", 1), "stride")
            filter_h, filter_w = _pair(o["filter_size"], "filter_size")
            tflite.Pool2DOptionsStart(b)
            tflite.Pool2DOptionsAddPadding(b, _padding(o.get("padding", "VALID")))
            tflite.Pool2DOptionsAddStrideH(b, stride_h)
            tflite.Pool2DOptionsAddStrideW(b, stride_w)
            tflite.Pool2DOptionsAddFilterHeight(b, filter_h)
            tflite.Pool2DOptionsAddFilterWidth(b, filter_w)
            tflite.Pool2DOptionsAddFusedActivationFunction(b, activation)
            return kinds.Pool2DOptions, tflite.Pool2DOptionsEnd(b)
        if op.name == "FULLY_CONNECTED":
            tflite.FullyConnectedOptionsStart(b)
            tflite.FullyConnectedOptionsAddFusedActivationFunction(b, activation)
            tflite.FullyConnectedOptionsAddKeepNumDims(b, bool(o.get("keep_num_dims", False)))
            return kinds.FullyConnectedOptions, tflite.FullyConnectedOptionsEnd(b)
        if op.name == "ADD":
            tflite.AddOptionsStart(b)
            tflite.AddOptionsAddFusedActivationFunction(b, activation)
            return kinds.AddOptions, tflite.AddOptionsEnd(b)
        if op.name == "RESHAPE":
            new_shape = o.get("new_shape", self._tensors[op.outputs[0]].shape)
            shape_vector = b.CreateNumpyVector(np.asarray(new_shape, np.int32))
            tflite.ReshapeOptionsStart(b)
            tflite.ReshapeOptionsAddNewShape(b, shape_vector)
            return kinds.ReshapeOptions, tflite.ReshapeOptionsEnd(b)
        if op.name == "SOFTMAX":
            tflite.SoftmaxOptionsStart(b)
            tflite.SoftmaxOptionsAddBeta(b, float(o.get("beta", 1.0)))
            return kinds.SoftmaxOptions, tflite.SoftmaxOptionsEnd(b)
        math_options = self._write_math_options(b, op, activation)
        if math_options is not None:
            return math_options
        if op.name == "QUANTIZE":
            tflite.QuantizeOptionsStart(b)
            return kinds.QuantizeOptions, tflite.QuantizeOptionsEnd(b)
        if op.name in _SHAPE_OPTION_WRITERS:
            return _SHAPE_OPTION_WRITERS[op.name](b, o, activation)
        tflite.DequantizeOptionsStart(b)
        return kinds.DequantizeOptions, tflite.DequantizeOptionsEnd(b)

    @staticmethod
    def _write_math_options(b, op, activation):
        """Options of the math ops; ``(None, None)`` for an op without options, None for
        an op that is not a math op."""
        kinds = tflite.BuiltinOptions
        if op.name == "MUL":
            tflite.MulOptionsStart(b)
            tflite.MulOptionsAddFusedActivationFunction(b, activation)
            return kinds.MulOptions, tflite.MulOptionsEnd(b)
        if op.name == "SUB":
            tflite.SubOptionsStart(b)
            tflite.SubOptionsAddFusedActivationFunction(b, activation)
            return kinds.SubOptions, tflite.SubOptionsEnd(b)
        if op.name in ("MAXIMUM", "MINIMUM"):
            tflite.MaximumMinimumOptionsStart(b)
            return kinds.MaximumMinimumOptions, tflite.MaximumMinimumOptionsEnd(b)
        if op.name == "HARD_SWISH":
            tflite.HardSwishOptionsStart(b)
            return kinds.HardSwishOptions, tflite.HardSwishOptionsEnd(b)
        if op.name == "LEAKY_RELU":
            tflite.LeakyReluOptionsStart(b)
            tflite.LeakyReluOptionsAddAlpha(b, float(op.options.get("alpha", 0.2)))
            return kinds.LeakyReluOptions, tflite.LeakyReluOptionsEnd(b)
        if op.name == "MEAN":
            tflite.ReducerOptionsStart(b)
            tflite.ReducerOptionsAddKeepDims(b, bool(op.options.get("keep_dims", False)))
            return kinds.ReducerOptions, tflite.ReducerOptionsEnd(b)
        if op.name in ("LOGISTIC", "TANH", "RELU", "RELU6", "ABS"):
            return None, None
        return None


def _write_strided_slice(b, o, _activation):
    tflite.StridedSliceOptionsStart(b)
    tflite.StridedSliceOptionsAddBeginMask(b, o.get("begin_mask", 0))
    tflite.StridedSliceOptionsAddEndMask(b, o.get("end_mask", 0))
    tflite.StridedSliceOptionsAddEllipsisMask(b, o.get("ellipsis_mask", 0))
    tflite.StridedSliceOptionsAddNewAxisMask(b, o.get("new_axis_mask", 0))
    tflite.StridedSliceOptionsAddShrinkAxisMask(b, o.get("shrink_axis_mask", 0))
    tflite.StridedSliceOptionsAddOffset(b, bool(o.get("offset", False)))
    return tflite.BuiltinOptions.StridedSliceOptions, tflite.StridedSliceOptionsEnd(b)


def _write_squeeze(b, o, _activation):
    dims = b.CreateNumpyVector(np.asarray(o.get("squeeze_dims", ()), np.int32))
    tflite.SqueezeOptionsStart(b)
    tflite.SqueezeOptionsAddSqueezeDims(b, dims)
    return tflite.BuiltinOptions.SqueezeOptions, tflite.SqueezeOptionsEnd(b)


def _write_resize_nearest(b, o, _activation):
    tflite.ResizeNearestNeighborOptionsStart(b)
    tflite.ResizeNearestNeighborOptionsAddAlignCorners(b, bool(o.get("align_corners")))
    tflite.ResizeNearestNeighborOptionsAddHalfPixelCenters(b, bool(o.get("half_pixel_centers")))
    return (tflite.BuiltinOptions.ResizeNearestNeighborOptions,
            tflite.ResizeNearestNeighborOptionsEnd(b))


def _write_concatenation(b, o, activation):
    tflite.ConcatenationOptionsStart(b)
    tflite.ConcatenationOptionsAddAxis(b, o.get("axis", 0))
    tflite.ConcatenationOptionsAddFusedActivationFunction(b, activation)
    return tflite.BuiltinOptions.ConcatenationOptions, tflite.ConcatenationOptionsEnd(b)


def _empty_options(kind):
    def write(b, _o, _activation):
        getattr(tflite, kind + "Start")(b)
        return getattr(tflite.BuiltinOptions, kind), getattr(tflite, kind + "End")(b)
    return write


_SHAPE_OPTION_WRITERS = {
    "TRANSPOSE": _empty_options("TransposeOptions"),
    "STRIDED_SLICE": _write_strided_slice,
    "PAD": _empty_options("PadOptions"),
    "PADV2": _empty_options("PadV2Options"),
    "SQUEEZE": _write_squeeze,
    "EXPAND_DIMS": _empty_options("ExpandDimsOptions"),
    "RESIZE_NEAREST_NEIGHBOR": _write_resize_nearest,
    "CONCATENATION": _write_concatenation,
}


# -- post-training quantization helpers (the TFLite converter's conventions) ------------------

def activation_quantization(low, high):
    """Asymmetric int8 ``(scale, zero_point)`` for an activation observed in ``[low, high]``.

    The range is widened to include 0 (so zero is exact, as TFLite requires); the scale is
    rounded to float32 as it is stored.
    """
    low, high = min(float(low), 0.0), max(float(high), 0.0)
    if high - low < 1e-6:
        high = low + 1e-3
    scale = float(np.float32((high - low) / 255.0))
    zero_point = int(np.clip(np.round(-128 - low / scale), -128, 127))
    return scale, zero_point


def symmetric_scales(weights, axis=None):
    """Symmetric int8 weight scales: one per slice along ``axis``, or one (``axis=None``)."""
    weights = np.asarray(weights, np.float32)
    if axis is None:
        peak = np.max(np.abs(weights))
    else:
        others = tuple(i for i in range(weights.ndim) if i != axis)
        peak = np.max(np.abs(weights), axis=others)
    return np.maximum(peak, 1e-8).astype(np.float32) / np.float32(127)


def quantize_weights(weights, scales, axis=None):
    """``weights`` as int8 with the given scales (per channel along ``axis``)."""
    shape = [1] * np.ndim(weights)
    if np.ndim(scales):
        shape[axis] = -1
    scaled = np.asarray(weights, np.float32) / np.reshape(scales, shape)
    return np.clip(np.round(scaled), -127, 127).astype(np.int8)


def quantize_bias(bias, input_scale, weight_scales):
    """int32 bias and its scales (``input_scale * weight_scale`` per channel, zero point 0)."""
    scales = (np.float32(input_scale) * np.asarray(weight_scales, np.float32)).astype(np.float32)
    return np.round(np.asarray(bias, np.float64) / scales).astype(np.int32), scales


def _offset_vector(b, start_vector, offsets):
    start_vector(b, len(offsets))
    for offset in reversed(offsets):
        b.PrependUOffsetTRelative(offset)
    return b.EndVector()


def _activation(name):
    if name not in _ACTIVATIONS:
        raise PackagerError(f"activation {name!r} is not supported",
                            "use one of " + ", ".join(_ACTIVATIONS))
    return _ACTIVATIONS[name]


def _padding(name):
    if name not in _PADDINGS:
        raise PackagerError(f"padding {name!r} is not supported", "use SAME or VALID")
    return _PADDINGS[name]
