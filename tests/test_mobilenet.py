"""A MobileNet-v1-style int8 model as a new user brings one (96x96x1 input, width 0.25,
depthwise-separable blocks with ReLU6, per-channel weights, 2 classes): every tier on
MicroPython (viper, natmod) and numpy on CPython give TFLite Micro's bytes. The viper tier once
gave [-7, 7] where TFLite Micro gives [121, -121]: its depthwise kernel lost all but the last
64 channels of the 6x6x128 blocks."""

import numpy as np
import pytest
from device_runner import run_on_cpython, run_on_micropython
from opmodels import Net, finish
from reference import run_tflm

from minerva_packager.capsule.pack import pack_file

# (output channels of the pointwise conv, stride of the depthwise conv) per block, width 0.25.
BLOCKS = [(16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2)] + [(128, 1)] * 5 \
    + [(256, 2), (256, 1)]


def mobilenet_v1(seed=0, size=96, classes=2):
    net = Net(seed)
    x = net.conv2d(net.input((1, size, size, 1)), 8, 3, stride=2, activation="RELU6")
    for out_c, stride in BLOCKS:
        x = net.depthwise_conv2d(x, 1, 3, stride=stride, activation="RELU6", gain=1.5)
        x = net.conv2d(x, out_c, 1, activation="RELU6", gain=1.5)
    side = size // 32
    x = net.pool("AVERAGE_POOL_2D", x, side, stride=side)
    x = net.reshape(x, (1, 256))
    x = net.fully_connected(x, classes, per_channel=True)
    net.softmax(x)
    return finish("mobilenet_v1_025_96", net, seed)


@pytest.fixture(scope="module")
def mobilenet(tmp_path_factory):
    model = mobilenet_v1()
    tmp = tmp_path_factory.mktemp("mobilenet")
    src, cap = tmp / "mobilenet.tflite", tmp / "mobilenet.cap"
    src.write_bytes(model.tflite)
    pack_file(src, cap)
    inputs = model.inputs(count=2, seed=3)
    expected = [np.asarray(run_tflm(model.tflite, xs)[0]).tobytes() for xs in inputs]
    return cap, [[np.ascontiguousarray(x).tobytes() for x in xs] for xs in inputs], expected


def test_mobilenet_has_the_6x6x128_depthwise_block(mobilenet):
    from minerva_packager.capsule.container import read_capsule

    cap = read_capsule(mobilenet[0])
    shapes = [tuple(cap.tensors[op.inputs[0]].shape) for op in cap.ops
              if op.name == "DEPTHWISE_CONV_2D"]
    assert (1, 6, 6, 128) in shapes, shapes


def test_mobilenet_numpy_matches_tflite_micro(mobilenet):
    cap, inputs, expected = mobilenet
    assert run_on_cpython(cap, inputs, kernels="numpy") == expected
    # The outputs are decisions, not a flat line: both classes get probability mass.
    assert any(len(set(out)) > 1 for out in expected)


@pytest.mark.parametrize("tier", ["viper", "natmod"])
def test_mobilenet_matches_tflite_micro_on_micropython(tier, mobilenet, micropython, tmp_path):
    from pathlib import Path

    cap, inputs, expected = mobilenet
    natmod = Path(__file__).resolve().parents[1] / "dist" / "x64_6.3"
    if tier == "natmod" and not (natmod / "minerva_nat.mpy").exists():
        pytest.skip("dist/x64_6.3/minerva_nat.mpy is not built (make natmod-x64)")
    got = run_on_micropython(micropython, cap, inputs, tmp_path, kernels=tier,
                             extra_path=[natmod])
    assert got == expected
