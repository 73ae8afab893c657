"""kernels_py (the spec every tier is tested against) against TFLite Micro, over random
one-op models: ``--tflm-models N`` (default 1000, or ``MINERVA_TFLM_MODELS``) seeded models per
op from tests/random_models.py, each packed with ``minerva pack`` (so the host's multipliers,
shifts, paddings and activation ranges are tested too) and run on the pure-Python tier on
CPython, byte for byte against TFLite Micro's Python interpreter on the same random int8 input.
A failure prints a one-line reproduction; ``--tflm-model conv_2d:17`` runs just that one."""

import os
import zlib

import geometries_shape
import mathmodels
import numpy as np
import pytest
import random_models
from device_runner import run_on_cpython
from reference import TFLM

from minerva_packager.capsule.pack import pack_file


def _shape_model(generate):
    def make(rng):
        model, shapes = generate(rng)
        return model, [rng.integers(-128, 128, shape).astype(np.int8) for shape in shapes]
    return make


def _math_model(kind):
    def make(rng):
        _, model, dtypes, shapes = mathmodels.random_math_model(kind, int(rng.integers(1 << 30)))
        return model, mathmodels.random_inputs(dtypes, shapes, rng, count=1)[0]
    return make


# The original ten ops, the shape ops (as TFLite ops, and random chains of them), and the math
# ops (broadcasting binary ops, activations, MEAN, int16 QUANTIZE).
MODELS = {**random_models.MODELS,
          **{op.lower(): _shape_model(fn) for op, fn in geometries_shape.MODEL_GENERATORS.items()},
          **{"math_" + kind.lower(): _math_model(kind)
             for kind in (*mathmodels.UNARY_OPS, *mathmodels.BINARY_OPS, "MEAN",
                          "QUANTIZE_INT16")}}


def _indices(config, op):
    only = config.getoption("--tflm-model")
    if only:
        name, _, index = only.partition(":")
        return [int(index)] if name == op else []
    count = config.getoption("--tflm-models") or int(os.environ.get("MINERVA_TFLM_MODELS", 1000))
    return range(count)


@pytest.mark.parametrize("op", sorted(MODELS))
def test_random_models_spec_matches_tflite_micro(op, request, tmp_path):
    seed = request.config.getoption("--geometry-seed")
    indices = list(_indices(request.config, op))
    if not indices:
        pytest.skip(f"--tflm-model selects another op than {op}")
    src, cap = tmp_path / "m.tflite", tmp_path / "m.cap"
    spread = 0
    for index in indices:
        rng = np.random.default_rng([seed, zlib.crc32(op.encode()), index])
        model, inputs = MODELS[op](rng)
        repro = (f"repro: pytest tests/test_random_models_tflm.py --tflm-model {op}:{index} "
                 f"--geometry-seed {seed}")
        expected = TFLM(model)(inputs)[0]
        src.write_bytes(model)
        pack_file(src, cap)
        got = run_on_cpython(cap, [[np.ascontiguousarray(x).tobytes() for x in inputs]],
                             kernels="python")[0]
        assert got == np.ascontiguousarray(expected).tobytes(), \
            f"{op}: kernels_py differs from TFLite Micro\n{repro}"
        spread += len(np.unique(expected)) >= min(4, expected.size)
    # Equal bytes prove little if the outputs all clamp: most models must spread them.
    assert len(indices) < 20 or spread >= 0.4 * len(indices), f"{op}: {spread} spread"
