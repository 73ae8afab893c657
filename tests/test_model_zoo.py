"""Models of the shapes people bring, each packed and run bit-exact with TFLite Micro on every
tier (python and numpy on CPython; python, viper and natmod on MicroPython) with no op falling
back to a slower tier: MobileNet-v2 inverted residuals, a MobileNet-v3 block (HARD_SWISH,
squeeze-and-excite with MEAN, LOGISTIC and a broadcast MUL), EfficientNet-lite (RELU6 as an
op), a PyTorch export (NCHW input behind a leading TRANSPOSE), and a small detection head (box
and class branches reshaped and concatenated). Weights are random; activations are calibrated
and quantized as the TFLite converter does (tests/opmodels.py)."""

from pathlib import Path

import numpy as np
import pytest
from device_runner import run_on_cpython, run_on_micropython
from opmodels import Net, finish
from reference import run_tflm

from minerva_packager.capsule.container import read_capsule
from minerva_packager.capsule.pack import pack_file

NATMOD = Path(__file__).resolve().parents[1] / "dist" / "x64_6.3"


def _inverted_residual(net, x, expand, out_c, stride, activation="RELU6"):
    c = net.shapes[x][3]
    y = net.conv2d(x, c * expand, 1, activation=activation)
    y = net.depthwise_conv2d(y, 1, 3, stride=stride, activation=activation)
    y = net.conv2d(y, out_c, 1)
    return net.add(x, y) if stride == 1 and out_c == c else y


def mobilenet_v2(seed):
    net = Net(seed)
    x = net.conv2d(net.input((1, 32, 32, 3)), 16, 3, stride=2, activation="RELU6")
    for expand, out_c, stride in ((1, 8, 1), (6, 12, 2), (6, 12, 1), (6, 16, 2), (6, 16, 1)):
        x = _inverted_residual(net, x, expand, out_c, stride)
    x = net.conv2d(x, 64, 1, activation="RELU6")
    x = net.mean(x, [1, 2], keep_dims=False)
    x = net.fully_connected(x, 10, per_channel=True)
    net.softmax(x)
    return finish("mobilenet_v2", net, seed)


def mobilenet_v3(seed):
    net = Net(seed)
    x = net.hard_swish(net.conv2d(net.input((1, 24, 24, 3)), 16, 3, stride=2))
    y = net.hard_swish(net.conv2d(x, 48, 1))
    y = net.depthwise_conv2d(y, 1, 5, stride=2)
    # Squeeze and excite: per-channel gates from the global mean.
    s = net.mean(y, [1, 2], keep_dims=True)
    s = net.conv2d(s, 12, 1, activation="RELU")
    s = net.logistic(net.conv2d(s, 48, 1))
    y = net.mul(y, s)
    y = net.conv2d(net.hard_swish(y), 24, 1)
    x = net.mean(y, [1, 2], keep_dims=False)
    x = net.hard_swish(net.fully_connected(x, 32))
    x = net.fully_connected(x, 5, per_channel=True)
    net.softmax(x)
    return finish("mobilenet_v3", net, seed)


def efficientnet_lite(seed):
    net = Net(seed)
    x = net.relu6(net.conv2d(net.input((1, 28, 28, 3)), 16, 3, stride=2))
    for expand, out_c, stride in ((1, 16, 1), (6, 24, 2), (6, 24, 1)):
        x = _inverted_residual(net, x, expand, out_c, stride)
    x = net.relu6(net.conv2d(x, 48, 1))
    x = net.mean(x, [1, 2], keep_dims=False)
    net.fully_connected(x, 4, per_channel=True)
    return finish("efficientnet_lite", net, seed)


def pytorch_export(seed):
    # torch -> ONNX -> TFLite keeps NCHW at the input and transposes to NHWC first.
    net = Net(seed)
    x = net.transpose(net.input((1, 3, 20, 20)), (0, 2, 3, 1))
    x = net.conv2d(x, 12, 3, activation="RELU")
    x = net.pool("MAX_POOL_2D", x, 2, stride=2)
    x = net.conv2d(x, 24, 3, stride=2, activation="RELU")
    x = net.mean(x, [1, 2], keep_dims=False)
    net.fully_connected(x, 6)
    return finish("pytorch_export", net, seed)


def detection_head(seed, anchors=3, classes=4):
    # Boxes and class scores per anchor from two branches, concatenated per anchor.
    net = Net(seed)
    x = net.conv2d(net.input((1, 16, 16, 3)), 16, 3, stride=2, activation="RELU6")
    x = net.depthwise_conv2d(x, 1, 3, stride=2, activation="RELU6")
    x = net.conv2d(x, 24, 1, activation="RELU6")
    cells = net.shapes[x][1] * net.shapes[x][2]
    boxes = net.reshape(net.conv2d(x, anchors * 4, 1), (1, cells * anchors, 4))
    scores = net.reshape(net.conv2d(x, anchors * classes, 1), (1, cells * anchors, classes))
    scores = net.logistic(scores)
    # As the converter does: the boxes requantized to the scores' quantization, so that the
    # concatenation (TFLite Micro copies bytes) is exact.
    boxes = net.requantize(boxes, 1.0, 0)
    net.fixed_quant[boxes] = ("same", scores)
    net.concatenate([boxes, scores], axis=2)
    return finish("detection_head", net, seed)


ZOO = {f.__name__: f for f in (mobilenet_v2, mobilenet_v3, efficientnet_lite, pytorch_export,
                                detection_head)}


@pytest.fixture(scope="module", params=sorted(ZOO))
def packed(request, tmp_path_factory):
    model = ZOO[request.param](0)
    tmp = tmp_path_factory.mktemp(request.param)
    src, cap = tmp / f"{request.param}.tflite", tmp / f"{request.param}.cap"
    src.write_bytes(model.tflite)
    pack_file(src, cap)
    inputs = model.inputs(count=2, seed=5)
    expected = [np.ascontiguousarray(run_tflm(model.tflite, xs)[0]).tobytes() for xs in inputs]
    raw = [[np.ascontiguousarray(x).tobytes() for x in xs] for xs in inputs]
    return request.param, model, cap, raw, expected


def test_zoo_model_packs_with_its_op_mix(packed):
    name, model, cap, _, _ = packed
    ops = {op.name for op in read_capsule(cap).ops}
    wanted = {"mobilenet_v2": {"ADD", "DEPTHWISE_CONV_2D", "MEAN"},
              "mobilenet_v3": {"LOOKUP", "BINARY", "MEAN"},
              "efficientnet_lite": {"LOOKUP", "ADD", "MEAN"},
              "pytorch_export": {"GATHER", "CONV_2D", "MEAN"},
              "detection_head": {"CONCATENATION", "LOOKUP", "RESHAPE"}}[name]
    assert wanted <= ops, (name, sorted(ops))


def test_zoo_model_bit_exact_on_cpython(packed):
    _, _, cap, raw, expected = packed
    for tier in ("numpy", "python"):
        assert run_on_cpython(cap, raw, kernels=tier) == expected, tier
    # Outputs carry information (not one clamped value).
    assert any(len(set(out)) > 1 for out in expected)


@pytest.mark.parametrize("tier", ["viper", "natmod", "python"])
def test_zoo_model_bit_exact_on_micropython(packed, tier, micropython, tmp_path):
    _, _, cap, raw, expected = packed
    if tier == "natmod" and not (NATMOD / "minerva_nat.mpy").exists():
        pytest.skip("dist/x64_6.3/minerva_nat.mpy is not built (make natmod-x64)")
    if tier == "python":
        raw, expected = raw[:1], expected[:1]  # the spec is slow; one input proves it
    assert run_on_micropython(micropython, cap, raw, tmp_path, kernels=tier,
                              extra_path=[NATMOD]) == expected


def test_zoo_models_need_no_fallback_on_micropython(packed, micropython):
    _, _, cap, _, _ = packed
    out = micropython.run("import minerva\n"
                          "for t in ('viper', 'natmod'):\n"
                          f"    print(t, minerva.load({str(cap)!r}, kernels=t).info()"
                          "['fallbacks'])\n", extra_path=[NATMOD]).stdout.split("\n")
    assert out[0] == "viper {}" and out[1] == "natmod {}", out
