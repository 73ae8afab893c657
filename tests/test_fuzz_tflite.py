"""``minerva pack`` on hostile .tflite files: seeded mutations of real and generated models
(bytes, int32 fields, truncation). Every pack either fails with one PackagerError line or writes a
capsule the device loader accepts and runs -- never a traceback, never a "verified" capsule the
board refuses, never a .cap (or .part) left behind by a failure. ``--fuzz-cases`` scales it
(a quarter of the capsule fuzz count)."""

import os
import struct
import zlib

import numpy as np
import pytest

import minerva
from minerva_packager.capsule.pack import pack_file
from minerva_packager.errors import PackagerError

SOURCES = ["hello_world_int8", "ad01_fc_autoencoder_int8", "kws01_dscnn_int8"]
GENERATED = ["chain", "add_branches", "fc_keep_num_dims", "softmax_beta1",
             "depthwise_dm2_dilation2_relu6_nobias", "quantize_float_input",
             "conv_transpose_slice", "concat_negative_axis_4_inputs", "padv2_batch_channels",
             "resize_nearest_align_corners", "strided_slice_3d_clamped"]
INTERESTING = [0, 1, -1, 2, 4, 8, 127, 128, 255, 0x7FFF, 0xFFFF, 1 << 24, 0x7FFFFFFF,
               -(1 << 31), 0x7F800000, 0x7FC00000, 0xFF800000 - (1 << 32)]


@pytest.fixture(scope="module")
def sources(shared_models):
    from opmodels import build_op_model

    models = [(shared_models / f"{name}.tflite").read_bytes() for name in SOURCES]
    models += [build_op_model(name, 0).tflite for name in GENERATED]
    from test_math_ops import _chain_model

    models.append(_chain_model()[0])
    return models


def mutate(model, rng):
    data = bytearray(model)
    for _ in range(int(rng.choice([1, 1, 2, 4]))):
        kind = rng.integers(0, 10)
        # Mutations cluster in the first 64 KB (tables, vectors, shapes, quantization); the
        # rest of a big model is weight bytes, whose values any model may have.
        span = min(len(data), 65536) if rng.random() < 0.8 else len(data)
        if kind < 5:
            pos = 4 * int(rng.integers(0, span // 4))
            struct.pack_into("<i", data, pos, int(rng.choice(INTERESTING)))
        elif kind < 9:
            data[int(rng.integers(0, span))] = int(rng.integers(0, 256))
        else:
            del data[int(rng.integers(8, len(data))):]
    return bytes(data)


def test_pack_never_crashes_nor_verifies_what_the_board_refuses(sources, request, tmp_path):
    count = max(400, (request.config.getoption("--fuzz-cases")
                      or int(os.environ.get("MINERVA_FUZZ_CASES", 20000))) // 20)
    seed = request.config.getoption("--geometry-seed")
    src, out = tmp_path / "m.tflite", tmp_path / "m.cap"
    packed = refused = 0
    for index in range(count):
        rng = np.random.default_rng([seed, zlib.crc32(b"tflite"), index])
        src.write_bytes(mutate(sources[index % len(sources)], rng))
        out.unlink(missing_ok=True)
        names = SOURCES + GENERATED + ["math chain"]
        repro = f"case {index} (seed {seed}) of {names[index % len(sources)]}"
        try:
            pack_file(src, out)
        except PackagerError as exc:
            refused += 1
            assert "\n" not in str(exc), f"{repro}: multi-line error {exc}"
            assert not out.exists(), f"{repro}: a failed pack left {out}"
            assert not list(tmp_path.glob("*.part")), f"{repro}: a .part file was left"
            continue
        except Exception as exc:
            raise AssertionError(f"{repro}: pack raised {type(exc).__name__}: {exc}") from exc
        packed += 1
        try:
            m = minerva.load(str(out), kernels="numpy")
        except minerva.CapsuleError as exc:
            raise AssertionError(f"{repro}: pack wrote a capsule the board refuses: {exc}")
        m.run()  # on whatever the (zeroed) inputs hold
    assert packed > count // 20 and refused > count // 20, (packed, refused)
