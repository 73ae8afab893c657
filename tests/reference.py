"""Run ``.tflite`` bytes in the reference interpreters that Minerva must match.

- :func:`run_litert_ref`: TFLite (ai-edge-litert) with ``BUILTIN_REF``, the reference kernels.
- :func:`run_litert_opt`: TFLite with its default optimized kernels (not bit-exact by design;
  for comparison only).
- :func:`run_tflm`: TensorFlow Lite Micro's Python interpreter (the reference integer kernels
  as they run on microcontrollers).
- :func:`tflm_arena_bytes`: TFLite Micro's arena use for a model.

``inputs`` is a list with one numpy array per model input (reshaped to the input's shape);
the result is a list with one array per model output. A missing package skips the calling
test with the pip command that installs it.
"""

import os
import re
import tempfile

import numpy as np
import pytest

# Generous: the TFLM Python wrapper's default (10x the model size) is too small for models
# whose activations outweigh their weights, as small generated models do.
TFLM_ARENA_SIZE = 1 << 20


def _litert():
    return pytest.importorskip("ai_edge_litert.interpreter",
                               reason="ai-edge-litert is not installed (pip install -e '.[test]')")


def _tflm_runtime():
    return pytest.importorskip("tflite_micro.python.tflite_micro.runtime",
                               reason="tflite-micro is not installed (pip install -e '.[test]')")


class LiteRT:
    """One TFLite interpreter, reused across calls (``reference=True`` -> BUILTIN_REF).

    A convolution without bias runs as the same model with a zero bias
    (:func:`with_zero_conv_biases`): TFLite's CONV_2D refuses a missing bias and its optimized
    int8 depthwise kernel crashes on one, while TFLite Micro (and the capsule format) take it.
    """

    def __init__(self, model_bytes, reference=True):
        litert = _litert()
        resolver = (litert.OpResolverType.BUILTIN_REF if reference
                    else litert.OpResolverType.AUTO)
        self.interpreter = litert.Interpreter(
            model_content=with_zero_conv_biases(bytes(model_bytes)),
            experimental_op_resolver_type=resolver)
        self.interpreter.allocate_tensors()
        self.input_details = self.interpreter.get_input_details()
        self.output_details = self.interpreter.get_output_details()

    def __call__(self, inputs):
        it = self.interpreter
        for detail, x in zip(self.input_details, inputs, strict=True):
            it.set_tensor(detail["index"], np.asarray(x, detail["dtype"]).reshape(
                detail["shape"]))
        it.invoke()
        return [it.get_tensor(d["index"]).copy() for d in self.output_details]


class TFLM:
    """One TFLite Micro interpreter, reused across calls."""

    def __init__(self, model_bytes, arena_size=TFLM_ARENA_SIZE):
        runtime = _tflm_runtime()
        self.interpreter = runtime.Interpreter.from_bytes(bytes(model_bytes),
                                                          arena_size=arena_size)
        n_inputs, self.n_outputs = io_counts(model_bytes)
        self.input_details = [self.interpreter.get_input_details(i) for i in range(n_inputs)]

    def __call__(self, inputs):
        it = self.interpreter
        for i, (detail, x) in enumerate(zip(self.input_details, inputs, strict=True)):
            it.set_input(np.asarray(x, detail["dtype"]).reshape(detail["shape"]), i)
        it.invoke()
        return [it.get_output(i).copy() for i in range(self.n_outputs)]


def io_counts(model_bytes):
    """``(number of inputs, number of outputs)`` of the model's first subgraph."""
    import tflite

    subgraph = tflite.Model.GetRootAs(bytes(model_bytes), 0).Subgraphs(0)
    return subgraph.InputsLength(), subgraph.OutputsLength()


_CONV_2D, _DEPTHWISE_CONV_2D = 3, 4
_INT8, _INT32, _FLOAT32 = 9, 2, 0


def with_zero_conv_biases(model_bytes):
    """``model_bytes`` with every bias-less CONV_2D / DEPTHWISE_CONV_2D given a zero bias.

    Adding zero to the accumulator changes nothing, so the outputs are the same; the bias is
    int32 at ``input_scale * filter_scale`` per channel for int8 ops (float32 for float ops).
    Models whose convolutions all have a bias are returned unchanged.
    """
    import tflite

    flat = tflite.Model.GetRootAs(model_bytes, 0)
    codes = [flat.OperatorCodes(i) for i in range(flat.OperatorCodesLength())]
    codes = [max(c.BuiltinCode(), c.DeprecatedBuiltinCode()) for c in codes]
    subgraph = flat.Subgraphs(0)

    def needs_bias(op):
        return (codes[op.OpcodeIndex()] in (_CONV_2D, _DEPTHWISE_CONV_2D)
                and (op.InputsLength() < 3 or op.Inputs(2) < 0))

    if not any(needs_bias(subgraph.Operators(i)) for i in range(subgraph.OperatorsLength())):
        return model_bytes
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(model_bytes, 0))
    graph = model.subgraphs[0]
    for op in graph.operators:
        code = model.operatorCodes[op.opcodeIndex]
        if max(code.builtinCode, code.deprecatedBuiltinCode) not in (_CONV_2D,
                                                                     _DEPTHWISE_CONV_2D):
            continue
        if len(op.inputs) >= 3 and op.inputs[2] >= 0:
            continue
        data, filt = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
        depthwise = max(code.builtinCode, code.deprecatedBuiltinCode) == _DEPTHWISE_CONV_2D
        out_c = int(filt.shape[3] if depthwise else filt.shape[0])
        bias = schema.TensorT()
        bias.name = b"zero_bias"
        bias.shape = [out_c]
        if data.type == _INT8:
            bias.type = _INT32
            bias.quantization = schema.QuantizationParametersT()
            filter_scales = np.asarray(filt.quantization.scale, np.float32)
            bias.quantization.scale = list(np.float32(data.quantization.scale[0]) *
                                           filter_scales)
            bias.quantization.zeroPoint = [0] * len(filter_scales)
        else:
            bias.type = _FLOAT32
        buffer = schema.BufferT()
        buffer.data = np.zeros(4 * out_c, np.uint8)
        model.buffers.append(buffer)
        bias.buffer = len(model.buffers) - 1
        graph.tensors.append(bias)
        op.inputs = [int(op.inputs[0]), int(op.inputs[1]), len(graph.tensors) - 1]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def run_litert_ref(model_bytes, inputs):
    """Outputs of TFLite's reference kernels (``OpResolverType.BUILTIN_REF``)."""
    return LiteRT(model_bytes, reference=True)(inputs)


def run_litert_opt(model_bytes, inputs):
    """Outputs of TFLite's default (optimized) kernels."""
    return LiteRT(model_bytes, reference=False)(inputs)


def run_tflm(model_bytes, inputs):
    """Outputs of TensorFlow Lite Micro's interpreter."""
    return TFLM(model_bytes)(inputs)


_ARENA_LINE = re.compile(r"Arena allocation (total|head|tail) (\d+) bytes")


def tflm_arena_bytes(model_bytes):
    """TFLite Micro's arena use after one inference: ``{"total", "head", "tail"}`` in bytes.

    ``head`` is the non-persistent part (the activations, what TFLM's memory planner lays
    out: the figure a capsule's ``arena_bytes`` compares with); ``tail`` is the persistent
    part (tensor structs, quantization data, kernel state); ``total`` is their sum, the
    smallest ``arena_size`` the model runs in. The Python wrapper only prints these figures
    (``RecordingMicroAllocator`` via ``print_allocations()``, from C++ to the process's
    stdout), so they are read back from that stream.
    """
    tflm = TFLM(model_bytes)
    zeros = [np.zeros(d["shape"], d["dtype"]) for d in tflm.input_details]
    tflm(zeros)
    text = _capture_fds(tflm.interpreter.print_allocations)
    figures = {kind: int(n) for kind, n in _ARENA_LINE.findall(text)}
    if set(figures) != {"total", "head", "tail"}:
        raise AssertionError(f"unexpected print_allocations() output:\n{text}")
    return figures


def _capture_fds(function):
    """Run ``function`` with file descriptors 1 and 2 sent to a file; return what it wrote."""
    with tempfile.TemporaryFile() as sink:
        saved = [os.dup(1), os.dup(2)]
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            function()
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
        sink.seek(0)
        return sink.read().decode("utf-8", "replace")
