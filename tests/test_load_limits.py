"""Capsules that once loaded and then failed in run(), or ran differently per tier: each is now
refused at load with a CapsuleError naming the file and the problem, on CPython and on
MicroPython -- whichever tier -- because the loader applies the limits every kernel assumes."""

import struct

import numpy as np
import pytest
from capsule_surgery import with_graph, with_param

import minerva
from minerva_packager.capsule.pack import pack_tflite
from minerva_packager.capsule.tflite_writer import TfliteBuilder

CONV, FC, ADD, SOFTMAX, QUANTIZE, DEQUANTIZE = 1, 3, 6, 8, 9, 10


def _pack(tmp_path, build):
    b = TfliteBuilder()
    inputs, outputs = build(b)
    src = tmp_path / "m.tflite"
    src.write_bytes(b.build(inputs, outputs))
    return pack_tflite(src)


def _conv_row(b):
    # A 1-row image: out_h 1, so a stride of 2**30 along H reaches nowhere.
    x = b.tensor("x", (1, 1, 5, 2), scale=0.1, zero_point=3)
    w = b.tensor("w", (3, 1, 3, 2), data=np.arange(18) % 7 - 3, scale=0.02)
    y = b.tensor("y", (1, 1, 5, 3), scale=0.05, zero_point=-2)
    b.op("CONV_2D", [x, w], [y], padding="SAME")
    return [x], [y]


def _add(b):
    x1 = b.tensor("a", (1, 8), scale=0.1, zero_point=1)
    x2 = b.tensor("b", (1, 8), scale=0.2, zero_point=-1)
    y = b.tensor("y", (1, 8), scale=0.3, zero_point=0)
    b.op("ADD", [x1, x2], [y])
    return [x1, x2], [y]


def _float_io(b):
    x = b.tensor("x", (1, 8), "float32")
    q = b.tensor("q", (1, 8), scale=0.1, zero_point=2)
    y = b.tensor("y", (1, 8), "float32")
    b.op("QUANTIZE", [x], [q])
    b.op("DEQUANTIZE", [q], [y])
    return [x], [y]


def _amplifying_fc(b):
    # Output scale 1000x finer than input x weight: shift +10 on a 1,000-deep sum.
    x = b.tensor("x", (1, 1000), scale=1.0, zero_point=0)
    w = b.tensor("w", (2, 1000), data=np.ones(2000), scale=1.0)
    y = b.tensor("y", (1, 2), scale=1e-3, zero_point=0)
    b.op("FULLY_CONNECTED", [x, w, None], [y])
    return [x], [y]


def _softmax(b):
    x = b.tensor("x", (1, 10), scale=0.1, zero_point=0)
    y = b.tensor("y", (1, 10), scale=1 / 256, zero_point=-128)
    b.op("SOFTMAX", [x], [y], beta=1.0)
    return [x], [y]


def _zero_outputs(graph):
    struct.pack_into("<H", graph, 6, 0)


def cases(tmp_path):
    """(case, capsule bytes, words the CapsuleError must contain)."""
    conv, add = _pack(tmp_path, _conv_row), _pack(tmp_path, _add)
    float_io = _pack(tmp_path, _float_io)
    softmax = _pack(tmp_path, _softmax)
    return [
        ("zero-outputs", with_graph(conv, _zero_outputs), "0 outputs"),
        ("stride-2**30-on-length-1-axis", with_param(conv, CONV, 9, 1 << 30), "2**30"),
        ("dilation-2**30-on-length-1-kernel-axis", with_param(conv, CONV, 11, 1 << 30),
         "2**30"),
        ("conv-input-offset-1000", with_param(conv, CONV, 15, 1000), "zero point"),
        ("conv-output-offset-200", with_param(conv, CONV, 16, 200), "zero point"),
        ("add-negative-multiplier", with_param(add, ADD, 5, -5), "negative multiplier"),
        ("add-left-shift-31", with_param(add, ADD, 4, 31), "shifts out of range"),
        ("add-offset-300", with_param(add, ADD, 1, 300), "zero point"),
        ("quantize-scale-0", with_param(float_io, QUANTIZE, 3, 0), "scale"),
        ("quantize-scale-nan", with_param(float_io, QUANTIZE, 3, 0x7FC00000), "scale"),
        ("quantize-scale-inf", with_param(float_io, QUANTIZE, 3, 0x7F800000), "scale"),
        ("dequantize-scale-negative", with_param(float_io, DEQUANTIZE, 2, -0x40800000),
         "scale"),
        ("accumulator-past-int32", _pack(tmp_path, _amplifying_fc), "past int32"),
        ("softmax-beta-shift-overflows", with_param(with_param(softmax, SOFTMAX, 3, 31),
                                                    SOFTMAX, 4, -255), "overflows int32"),
    ]


def test_limits_refused_at_load_cpython(tmp_path):
    for case, data, words in cases(tmp_path):
        path = tmp_path / f"{case}.cap"
        path.write_bytes(data)
        for tier in ("python", "numpy"):
            with pytest.raises(minerva.CapsuleError) as info:
                minerva.load(str(path), kernels=tier)
            assert str(path) in str(info.value) and words in str(info.value), \
                (case, str(info.value))


def test_limits_refused_at_load_micropython(tmp_path, micropython):
    from pathlib import Path

    natmod = Path(__file__).resolve().parents[1] / "dist" / "x64_6.3"
    paths = []
    for case, data, words in cases(tmp_path):
        path = tmp_path / f"{case}.cap"
        path.write_bytes(data)
        paths.append((str(path), words))
    proc = micropython.run(f"""
import minerva
for p, words in {paths!r}:
    for tier in ("python", "viper", "natmod"):
        try:
            minerva.load(p, kernels=tier)
            print("LOADED", tier, p)
        except minerva.CapsuleError as e:
            print("REFUSED", p in str(e) and words in str(e), tier, e)
        except Exception as e:
            print("ESCAPED", tier, type(e).__name__, e)
""", extra_path=[natmod])
    lines = proc.stdout.splitlines()
    assert len(lines) == 3 * len(paths), proc.stdout + proc.stderr
    assert all(line.startswith("REFUSED True") for line in lines), proc.stdout


def test_the_unedited_capsules_load_and_run(tmp_path):
    # The edits above are what the loader refuses, not the models themselves.
    for build, x in ((_conv_row, bytes(10)), (_add, [bytes(8), bytes(8)])):
        path = tmp_path / "ok.cap"
        path.write_bytes(_pack(tmp_path, build))
        minerva.load(str(path), kernels="python").run(x)
