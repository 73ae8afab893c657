"""The example model: trained and quantized from scratch, accurate in the reference interpreters,
and the committed files in capsules/ consistent with each other."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from device_runner import run_on_cpython, run_on_micropython
from reference import TFLM

from minerva_packager.capsule.tflite_import import read_tflite

CAPSULES = Path(__file__).resolve().parents[1] / "capsules"
# Measured: 97.1% for the float network and the int8 model (449 held-out samples); the margin
# leaves room for BLAS rounding differences between machines during training.
MIN_ACCURACY = 0.95


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    pytest.importorskip("sklearn", reason="scikit-learn is not installed (pip install -e .)")
    pytest.importorskip("ai_edge_litert.interpreter",
                        reason="ai-edge-litert measures the int8 accuracy (pip install -e "
                               "'.[test]')")
    from minerva_packager.examples import digits

    return digits.build(tmp_path_factory.mktemp("digits"))


def test_digits_example_is_accurate_as_float_and_int8(built):
    assert built["float_accuracy"] >= MIN_ACCURACY
    assert built["int8_accuracy"] >= MIN_ACCURACY
    assert abs(built["int8_accuracy"] - built["float_accuracy"]) <= 0.02
    if "int8_accuracy_tflm" in built:
        assert built["int8_accuracy_tflm"] >= MIN_ACCURACY
    assert (built["train_samples"], built["heldout_samples"]) == (1348, 449)


def test_digits_example_files(built):
    model = read_tflite(built["tflite"])
    assert [op.name for op in model.ops] == ["FULLY_CONNECTED", "FULLY_CONNECTED", "SOFTMAX"]
    x, y = model.tensors[model.inputs[0]], model.tensors[model.outputs[0]]
    assert (x.dtype, x.shape, y.dtype, y.shape) == ("int8", (1, 64), "int8", (1, 10))
    first = model.tensors[model.ops[0].inputs[1]]
    assert len(first.scales) == 32, "weights are quantized per output channel"
    heldout_x, heldout_y = np.load(built["heldout_x"]), np.load(built["heldout_y"])
    assert heldout_x.dtype == np.int8 and heldout_x.shape == (449, 64)
    assert set(np.unique(heldout_y)) == set(range(10))
    assert json.loads(open(built["report"]).read())["int8_accuracy"] == built["int8_accuracy"]


def test_committed_digits_capsule_matches_its_model_and_figures():
    capsule, tflite = CAPSULES / "digits.cap", CAPSULES / "digits.tflite"
    if not capsule.exists():
        pytest.skip("capsules/digits.cap is not built (python capsules/build_examples.py)")
    from minerva_packager.capsule.container import read_capsule

    meta = read_capsule(capsule).meta
    assert meta["source_sha256"] == hashlib.sha256(tflite.read_bytes()).hexdigest()
    figures = json.loads((CAPSULES / "digits.json").read_text())
    heldout_x = np.load(CAPSULES / "digits_heldout_x.npy")
    heldout_y = np.load(CAPSULES / "digits_heldout_y.npy")

    micro = TFLM(tflite.read_bytes())
    expected = [micro([x])[0].ravel() for x in heldout_x]
    outputs = [np.frombuffer(o, np.int8) for o in
               run_on_cpython(capsule, [x.tobytes() for x in heldout_x])]
    mismatches = sum(not np.array_equal(o, e) for o, e in zip(outputs, expected))
    assert mismatches == 0, f"{mismatches} of {len(outputs)} outputs differ from TFLite Micro"
    accuracy = np.mean([np.argmax(o) == label for o, label in zip(outputs, heldout_y)])
    assert accuracy == figures["int8_accuracy_tflm"] >= MIN_ACCURACY
    assert f"{accuracy:.1%}" in (CAPSULES / "README.md").read_text()


def test_committed_digits_capsule_on_micropython(micropython, tmp_path):
    capsule = CAPSULES / "digits.cap"
    if not capsule.exists():
        pytest.skip("capsules/digits.cap is not built (python capsules/build_examples.py)")
    heldout_x = np.load(CAPSULES / "digits_heldout_x.npy")
    heldout_y = np.load(CAPSULES / "digits_heldout_y.npy")
    # A 200 KB heap, as on an ESP32 without PSRAM: package, capsule and arena all fit.
    outputs = run_on_micropython(micropython, capsule, [x.tobytes() for x in heldout_x],
                                 tmp_path, kernels="python", heapsize="200k")
    micro = TFLM((CAPSULES / "digits.tflite").read_bytes())
    for out, x in zip(outputs, heldout_x):
        assert np.frombuffer(out, np.int8).tolist() == micro([x])[0].ravel().tolist()
    accuracy = np.mean([np.argmax(np.frombuffer(o, np.int8)) == label
                        for o, label in zip(outputs, heldout_y)])
    assert accuracy >= MIN_ACCURACY
