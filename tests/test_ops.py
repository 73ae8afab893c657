"""Every op and option of capsule format v1, on generated models: bit-exact with TFLite Micro
and TFLite's reference kernels, on CPython and on the MicroPython unix port."""

import numpy as np
import pytest
from device_runner import run_on_cpython, run_on_micropython
from opmodels import OP_MODELS, build_op_model
from reference import run_litert_ref, run_tflm

from minerva_packager.capsule.container import read_capsule
from minerva_packager.capsule.pack import pack_file

SEEDS = (0, 1)
INPUTS_PER_SEED = 3


def _case(name, seed, tmp_path):
    model = build_op_model(name, seed)
    src = tmp_path / f"{name}_{seed}.tflite"
    src.write_bytes(model.tflite)
    cap = tmp_path / f"{name}_{seed}.cap"
    pack_file(src, cap)
    inputs = list(model.inputs(count=INPUTS_PER_SEED, seed=seed + 10))
    micros = [run_tflm(model.tflite, xs)[0] for xs in inputs]
    try:
        refs = [run_litert_ref(model.tflite, xs)[0] for xs in inputs]
    except RuntimeError as exc:
        # TFLite (not TFLite Micro) refuses an int8 CONV_2D without a bias at Prepare.
        assert "has_bias" in str(exc), exc
        refs = micros
    return cap, inputs, refs, micros


def _check(cap, outs, refs, micros):
    has_fc = "FULLY_CONNECTED" in read_capsule(cap).meta["ops"]
    for out, ref, micro in zip(outs, refs, micros):
        ref, micro = ref.ravel(), micro.ravel()
        got = np.frombuffer(out, micro.dtype)
        assert got.tobytes() == micro.tobytes(), f"{cap.name}: differs from TFLite Micro"
        if ref.tobytes() != micro.tobytes():
            # ai-edge-litert's BUILTIN_REF FULLY_CONNECTED rounds once (docs/capsule-format.md).
            assert has_fc, f"{cap.name}: the references disagree on a model without FC"
        else:
            assert got.tobytes() == ref.tobytes()


@pytest.mark.parametrize("name", sorted(OP_MODELS))
def test_op_bit_exact(name, tmp_path, micropython):
    for seed in SEEDS:
        cap, inputs, refs, micros = _case(name, seed, tmp_path)
        raw = [[np.ascontiguousarray(x).tobytes() for x in xs] for xs in inputs]
        _check(cap, run_on_cpython(cap, raw), refs, micros)
        _check(cap, run_on_micropython(micropython, cap, raw, tmp_path, kernels="python"),
               refs, micros)
