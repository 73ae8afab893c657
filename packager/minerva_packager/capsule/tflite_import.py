"""Read a ``.tflite`` flatbuffer into plain Python objects (no TensorFlow needed).

Only what the capsule needs is read: the first subgraph's tensors (shape, dtype, quantization,
constant data) and operators (builtin name and options). Anything else is rejected with a
message that names the file, the op and its index.
"""

import hashlib
from pathlib import Path

import numpy as np
import tflite

from ..errors import PackagerError

_DTYPES = {
    tflite.TensorType.FLOAT32: "float32",
    tflite.TensorType.INT32: "int32",
    tflite.TensorType.UINT8: "uint8",
    tflite.TensorType.INT64: "int64",
    tflite.TensorType.INT16: "int16",
    tflite.TensorType.INT8: "int8",
}
_OP_NAMES = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
_ACTIVATIONS = {v: k for k, v in vars(tflite.ActivationFunctionType).items()
                if not k.startswith("_")}
_PADDINGS = {tflite.Padding.SAME: "SAME", tflite.Padding.VALID: "VALID"}


class TensorInfo:
    """One tensor of the model: ``data`` is a numpy array for constants, else None."""

    def __init__(self, index, name, dtype, shape, scales, zero_points, quantized_dimension,
                 data):
        self.index = index
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.scales = scales
        self.zero_points = zero_points
        self.quantized_dimension = quantized_dimension
        self.data = data

    @property
    def scale(self):
        return float(self.scales[0]) if len(self.scales) else 0.0

    @property
    def zero_point(self):
        return int(self.zero_points[0]) if len(self.zero_points) else 0

    @property
    def size(self):
        return int(np.prod(self.shape)) if self.shape else 1


class OpInfo:
    """One operator: ``inputs`` holds tensor indices, -1 for an absent optional input."""

    def __init__(self, index, name, inputs, outputs, options):
        self.index = index
        self.name = name
        self.inputs = inputs
        self.outputs = outputs
        self.options = options


class TfliteModel:
    def __init__(self, path, sha256, tensors, ops, inputs, outputs):
        self.path = path
        self.sha256 = sha256
        self.tensors = tensors
        self.ops = ops
        self.inputs = inputs
        self.outputs = outputs


def _options(op, name):
    """The options of the ops we support, as a plain dict."""
    table = op.BuiltinOptions()
    if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        cls = tflite.Conv2DOptions if name == "CONV_2D" else tflite.DepthwiseConv2DOptions
        o = cls()
        o.Init(table.Bytes, table.Pos)
        opts = {"padding": _PADDINGS[o.Padding()], "stride_h": o.StrideH(),
                "stride_w": o.StrideW(), "dilation_h": o.DilationHFactor(),
                "dilation_w": o.DilationWFactor(),
                "activation": _ACTIVATIONS[o.FusedActivationFunction()]}
        if name == "DEPTHWISE_CONV_2D":
            opts["depth_multiplier"] = o.DepthMultiplier()
        return opts
    if name in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        o = tflite.Pool2DOptions()
        o.Init(table.Bytes, table.Pos)
        return {"padding": _PADDINGS[o.Padding()], "stride_h": o.StrideH(),
                "stride_w": o.StrideW(), "filter_h": o.FilterHeight(),
                "filter_w": o.FilterWidth(),
                "activation": _ACTIVATIONS[o.FusedActivationFunction()]}
    if name == "FULLY_CONNECTED":
        if table is None:
            return {"activation": "NONE", "keep_num_dims": False, "weights_format": 0}
        o = tflite.FullyConnectedOptions()
        o.Init(table.Bytes, table.Pos)
        return {"activation": _ACTIVATIONS[o.FusedActivationFunction()],
                "keep_num_dims": bool(o.KeepNumDims()),
                "weights_format": o.WeightsFormat()}
    if name == "ADD":
        if table is None:
            return {"activation": "NONE"}
        o = tflite.AddOptions()
        o.Init(table.Bytes, table.Pos)
        return {"activation": _ACTIVATIONS[o.FusedActivationFunction()]}
    if name == "STRIDED_SLICE":
        o = tflite.StridedSliceOptions()
        if table is None:
            return {"begin_mask": 0, "end_mask": 0, "ellipsis_mask": 0, "new_axis_mask": 0,
                    "shrink_axis_mask": 0, "offset": False}
        o.Init(table.Bytes, table.Pos)
        return {"begin_mask": o.BeginMask(), "end_mask": o.EndMask(),
                "ellipsis_mask": o.EllipsisMask(), "new_axis_mask": o.NewAxisMask(),
                "shrink_axis_mask": o.ShrinkAxisMask(), "offset": bool(o.Offset())}
    if name == "RESIZE_NEAREST_NEIGHBOR":
        if table is None:
            return {"align_corners": False, "half_pixel_centers": False}
        o = tflite.ResizeNearestNeighborOptions()
        o.Init(table.Bytes, table.Pos)
        return {"align_corners": bool(o.AlignCorners()),
                "half_pixel_centers": bool(o.HalfPixelCenters())}
    if name == "CONCATENATION":
        if table is None:
            return {"axis": 0, "activation": "NONE"}
        o = tflite.ConcatenationOptions()
        o.Init(table.Bytes, table.Pos)
        return {"axis": o.Axis(), "activation": _ACTIVATIONS[o.FusedActivationFunction()]}
    if name in _MATH_OPTIONS:
        return _MATH_OPTIONS[name](table)
    if name == "SOFTMAX":
        o = tflite.SoftmaxOptions()
        o.Init(table.Bytes, table.Pos)
        return {"beta": o.Beta()}
    return {}


def _activation_of(cls):
    def read(table):
        if table is None:
            return {"activation": "NONE"}
        o = cls()
        o.Init(table.Bytes, table.Pos)
        return {"activation": _ACTIVATIONS[o.FusedActivationFunction()]}
    return read


def _leaky_relu_options(table):
    if table is None:
        return {"alpha": 0.0}
    o = tflite.LeakyReluOptions()
    o.Init(table.Bytes, table.Pos)
    return {"alpha": o.Alpha()}


def _reducer_options(table):
    if table is None:
        return {"keep_dims": False}
    o = tflite.ReducerOptions()
    o.Init(table.Bytes, table.Pos)
    return {"keep_dims": bool(o.KeepDims())}


# Options of the math ops (ops-math), by op name.
_MATH_OPTIONS = {"MUL": _activation_of(tflite.MulOptions),
                 "SUB": _activation_of(tflite.SubOptions),
                 "LEAKY_RELU": _leaky_relu_options,
                 "MEAN": _reducer_options}


def _tensor(model, subgraph, index):
    t = subgraph.Tensors(index)
    dtype = _DTYPES.get(t.Type(), f"type{t.Type()}")
    shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
    q = t.Quantization()
    scales = np.zeros(0, np.float32)
    zero_points = np.zeros(0, np.int64)
    qdim = 0
    if q is not None and q.ScaleLength():
        scales = q.ScaleAsNumpy().astype(np.float32)
        zero_points = q.ZeroPointAsNumpy().astype(np.int64)
        qdim = q.QuantizedDimension()
    data = None
    buf = model.Buffers(t.Buffer())
    if buf is not None and buf.DataLength() and dtype in _NP:
        raw = buf.DataAsNumpy().tobytes()
        data = np.frombuffer(raw, dtype=_NP[dtype]).reshape(shape).copy()
    elif buf is not None and buf.Offset() > 1:
        raise PackagerError("constant data stored outside the flatbuffer is not supported",
                            "re-export the model under 2 GB without external buffers")
    name = t.Name().decode("utf-8", "replace") if t.Name() else f"tensor{index}"
    return TensorInfo(index, name, dtype, shape, scales, zero_points, qdim, data)


_NP = {"float32": "<f4", "int32": "<i4", "uint8": "u1", "int64": "<i8", "int16": "<i2",
       "int8": "i1"}


def read_tflite(path):
    """Parse ``path`` (a .tflite file) into a :class:`TfliteModel`.

    Raises :class:`PackagerError` for anything that is not a readable TFLite model.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PackagerError(f"{path}: cannot read: {exc.strerror}", "check the path")
    if len(raw) < 8 or raw[4:8] != b"TFL3":
        raise PackagerError(f"{path}: not a TFLite model (no TFL3 identifier)",
                            "pass a .tflite file exported by the TFLite converter")
    try:
        model = tflite.Model.GetRootAs(raw, 0)
        if model.SubgraphsLength() < 1:
            raise PackagerError(f"{path}: the model has no subgraph", "re-export the model")
        if model.SubgraphsLength() > 1:
            raise PackagerError(f"{path}: models with {model.SubgraphsLength()} subgraphs "
                                "(control flow) are not supported",
                                "export a model without control flow ops")
        subgraph = model.Subgraphs(0)
        tensors = [_tensor(model, subgraph, i) for i in range(subgraph.TensorsLength())]
        ops = []
        for i in range(subgraph.OperatorsLength()):
            op = subgraph.Operators(i)
            code = model.OperatorCodes(op.OpcodeIndex())
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            name = _OP_NAMES.get(builtin, f"BUILTIN_{builtin}")
            if builtin == tflite.BuiltinOperator.CUSTOM:
                name = "CUSTOM:" + (code.CustomCode() or b"?").decode("utf-8", "replace")
            inputs = [int(x) for x in op.InputsAsNumpy()] if op.InputsLength() else []
            outputs = [int(x) for x in op.OutputsAsNumpy()] if op.OutputsLength() else []
            ops.append(OpInfo(i, name, inputs, outputs, _options(op, name)))
        inputs = [int(x) for x in subgraph.InputsAsNumpy()]
        outputs = [int(x) for x in subgraph.OutputsAsNumpy()]
    except PackagerError:
        raise
    except Exception as exc:  # a corrupt flatbuffer fails anywhere inside the parser
        raise PackagerError(f"{path}: the TFLite flatbuffer is corrupt ({exc})",
                            "re-export the model")
    _check_structure(path, tensors, ops, inputs, outputs)
    sha = hashlib.sha256(raw).hexdigest()
    return TfliteModel(path, sha, tensors, ops, inputs, outputs)


# No tensor of a model for a microcontroller comes near this (64 M values).
_MAX_ELEMENTS = 1 << 26
_ZERO_POINT_RANGES = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767)}


def _check_structure(path, tensors, ops, inputs, outputs):
    """What a well-formed model guarantees and the lowering relies on: tensor indices in
    range, dimensions >= 1, usable quantization. A damaged file fails here in one line."""
    n = len(tensors)

    def fail(problem):
        raise PackagerError(f"{path}: {problem}", "re-export the model; the file looks damaged")

    for op in ops:
        for i in op.inputs + op.outputs:
            if not -1 <= i < n or (i == -1 and i in op.outputs):
                fail(f"op {op.name} (index {op.index}) refers to tensor {i}, but the model "
                     f"has {n} tensors")
        if not op.outputs:
            fail(f"op {op.name} (index {op.index}) has no output")
    for i in inputs + outputs:
        if not 0 <= i < n:
            fail(f"model input/output tensor {i} does not exist ({n} tensors)")
    if not inputs or not outputs:
        fail("the model has no inputs or no outputs")
    for t in tensors:
        if any(d < 1 for d in t.shape):
            fail(f"tensor {t.name!r} has shape {list(t.shape)} (every dimension must be >= 1)")
        if t.size > _MAX_ELEMENTS:
            fail(f"tensor {t.name!r} has shape {list(t.shape)}: {t.size} values is far more "
                 "than a microcontroller holds")
        if t.dtype in _ZERO_POINT_RANGES and not len(t.scales):
            fail(f"tensor {t.name!r} is {t.dtype} without quantization parameters")
        if len(t.scales):
            if not np.all(np.isfinite(t.scales)) or np.any(t.scales <= 0):
                fail(f"tensor {t.name!r} has scale {t.scales.tolist()[:4]} (must be positive "
                     "and finite)")
            if len(t.zero_points) not in (1, len(t.scales)):
                fail(f"tensor {t.name!r} has {len(t.scales)} scales but "
                     f"{len(t.zero_points)} zero points")
            lo, hi = _ZERO_POINT_RANGES.get(t.dtype, (-(1 << 31), (1 << 31) - 1))
            if np.any(t.zero_points < lo) or np.any(t.zero_points > hi):
                fail(f"tensor {t.name!r} has zero point outside {t.dtype}")
            if len(t.scales) > 1 and not (0 <= t.quantized_dimension < len(t.shape) and
                                          t.shape[t.quantized_dimension] == len(t.scales)):
                fail(f"tensor {t.name!r} has {len(t.scales)} scales along dimension "
                     f"{t.quantized_dimension} of shape {list(t.shape)}")
