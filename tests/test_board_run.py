"""`minerva run`'s inputs on the host: quantized, shape- and type-checked, or refused."""

import numpy as np
import pytest

from minerva_packager.board.run import load_inputs
from minerva_packager.capsule.container import read_capsule
from minerva_packager.capsule.pack import pack_file
from minerva_packager.errors import PackagerError


@pytest.fixture(scope="module")
def capsules(shared_models, tmp_path_factory):
    folder = tmp_path_factory.mktemp("run_inputs")
    out = {}
    for key, name in (("kws", "kws01_dscnn_int8"), ("ad", "ad01_fc_autoencoder_int8")):
        pack_file(shared_models / f"{name}.tflite", folder / f"{key}.cap")
        out[key] = read_capsule(folder / f"{key}.cap")
    return out


@pytest.fixture
def kws_sample(shared_models):
    return np.load(shared_models / "samples" / "kws01_sample0_int8_49x10.npy")


def test_float_input_is_quantized_with_the_capsules_scale(capsules, kws_sample, tmp_path):
    spec = capsules["kws"].meta["inputs"][0]
    real = (kws_sample.astype(np.float32) - spec["zero_point"]) * spec["scale"]
    np.save(tmp_path / "real.npy", real)
    inputs, note = load_inputs(tmp_path / "real.npy", capsules["kws"])
    assert inputs == [kws_sample.tobytes()]  # not a cast of the float values to int8
    assert "quantized float32 input to int8" in note and "zero point 83" in note


def test_int8_sample_and_batches_keep_their_bytes(capsules, kws_sample, tmp_path):
    batch = np.stack([kws_sample, -kws_sample // 2, kws_sample])
    for name, array in (("one.npy", kws_sample), ("no_channel.npy", kws_sample[:, :, 0]),
                        ("batch.npy", batch), ("batch4d.npy", batch[:, None])):
        np.save(tmp_path / name, array)
        inputs, note = load_inputs(tmp_path / name, capsules["kws"])
        assert note is None
        assert b"".join(inputs) == array.tobytes() and len(inputs[0]) == 490, name


@pytest.mark.parametrize("array,message", [
    (np.full((49, 10, 1), 300, np.int16), "int16 value 300 does not fit"),
    (np.zeros((10, 49), np.int8), "shape (10, 49) is neither one input of shape (1, 49, 10, 1)"),
    (np.zeros((2, 10, 49), np.int8), "shape (2, 10, 49)"),
    (np.array([["a"] * 10] * 49), "cannot be an int8 input"),
    (np.full((49, 10), np.nan, np.float32), "NaN"),
])
def test_wrong_inputs_are_refused(capsules, tmp_path, array, message):
    np.save(tmp_path / "x.npy", array)
    with pytest.raises(PackagerError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_inputs(tmp_path / "x.npy", capsules["kws"])


def test_int16_values_that_fit_are_taken(capsules, tmp_path):
    np.save(tmp_path / "x.npy", np.arange(-128, 362, dtype=np.int16).clip(-128, 127))
    inputs, _ = load_inputs(tmp_path / "x.npy", capsules["kws"])
    assert inputs[0] == np.arange(-128, 362).clip(-128, 127).astype(np.int8).tobytes()


def test_raw_float32_file_is_refused_as_int8_and_quantized_when_named(capsules,
                                                                    shared_models):
    path = shared_models / "samples" / "ad01_normal_id_01_00000000_hist_librosa.bin"
    with pytest.raises(PackagerError, match="plausible float32 values.*--raw-dtype float32"):
        load_inputs(path, capsules["ad"])
    inputs, note = load_inputs(path, capsules["ad"], "float32")
    assert len(inputs) == 40 and "quantized float32" in note
    spec = capsules["ad"].meta["inputs"][0]
    first = np.fromfile(path, np.float32)[:640]
    expected = np.clip(np.round(first / spec["scale"]) + spec["zero_point"], -128, 127)
    assert inputs[0] == expected.astype(np.int8).tobytes()


def test_raw_int8_file_is_taken(capsules, kws_sample, tmp_path):
    (tmp_path / "x.bin").write_bytes(kws_sample.tobytes() * 2)
    inputs, note = load_inputs(tmp_path / "x.bin", capsules["kws"])
    assert inputs == [kws_sample.tobytes()] * 2 and note is None
