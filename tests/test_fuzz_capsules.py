"""Seeded fuzzing of the loader: mutations of every section of real capsules, resealed (fresh
CRC-32s and SHA-256) so the structure itself is exercised, loaded on CPython (python and numpy
tiers) and on MicroPython (viper, natmod, and python for every tenth case).

For every case: load() either raises CapsuleError or gives a model whose run() completes, in
every tier, with the same output bytes -- no other exception at load, none in run(), no tier
that disagrees. ``--fuzz-cases N`` (default 20,000, or ``MINERVA_FUZZ_CASES``) sets the count,
``--geometry-seed`` the seed; ``--fuzz-case K`` runs one case (a failure prints that line).
"""

import binascii
import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from capsule_surgery import graph_ops, join, split

import minerva
from minerva_packager.capsule.pack import pack_file

ROOT = Path(__file__).resolve().parents[1]
NATMOD = ROOT / "dist" / "x64_6.3"
BASE_MODELS = ["chain", "fc_pertensor", "add_relu", "softmax_beta0_5_rows2",
               "quantize_float_input", "dequantize_output", "avgpool_same_3x3_s2",
               "maxpool_same_2x2_s2", "depthwise_dm2_valid_s2_pertensor",
               "conv_valid_dilation2", "requantize_narrower", "reshape_4d_to_2d",
               "conv_transpose_slice", "concat_channels_3_inputs", "padv2_4d_value",
               "resize_nearest_2x"]
INTERESTING = [0, 1, -1, 2, 3, 7, 8, 16, 31, 32, 127, 128, -128, -129, 255, 256, 4095, 4096,
               0x7FFF, 0x8000, 0xFFFF, 0x10000, (1 << 23), (1 << 30) - 1, 1 << 30,
               (1 << 31) - 1, -(1 << 31), -(1 << 30)]
SPEC_EVERY = 10


def fill_inputs(model):
    """Deterministic inputs sized by the loaded model (a mutation may resize them)."""
    for buf, spec in zip(model.inputs, model.info()["inputs"]):
        n = len(buf)
        if spec["dtype"] == "float32":
            for i in range(n):
                buf[i] = ((i * 37) % 255 - 127) * 0.05
        else:
            for i in range(n):
                buf[i] = (i * 37 + 11) % 256 - 128


# The same loop on MicroPython: cases are (index, offset, length) into one blob file.
_MP_SCRIPT = """
import binascii, minerva
from array import array
def fill(m):
    for buf, spec in zip(m.inputs, m.info()["inputs"]):
        n = len(buf)
        if spec["dtype"] == "float32":
            for i in range(n):
                buf[i] = ((i * 37) % 255 - 127) * 0.05
        else:
            for i in range(n):
                buf[i] = (i * 37 + 11) % 256 - 128
blob = open({blob!r}, "rb")
for line in open({index_file!r}):
    index, off, n = [int(v) for v in line.split()]
    blob.seek(off)
    data = blob.read(n)
    with open({scratch!r}, "wb") as f:
        f.write(data)
    results = []
    for tier in ("viper", "natmod") + (("python",) if index % {every} == 0 else ()):
        try:
            m = minerva.load({scratch!r}, kernels=tier)
        except minerva.CapsuleError:
            results.append(tier + "=REJECT")
            continue
        except Exception as e:
            results.append(tier + "=LOADRAISED:" + type(e).__name__)
            continue
        try:
            fill(m)
            out = m.run()
            results.append("%s=%08x" % (tier, binascii.crc32(bytes(out)) & 0xFFFFFFFF))
        except Exception as e:
            results.append(tier + "=RUNRAISED:" + type(e).__name__)
        m.close()
    print("CASE", index, " ".join(results))
"""


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    from opmodels import build_op_model

    tmp = tmp_path_factory.mktemp("fuzz")
    out = []
    for name in BASE_MODELS:
        src, cap = tmp / f"{name}.tflite", tmp / f"{name}.cap"
        src.write_bytes(build_op_model(name, 0).tflite)
        pack_file(src, cap)
        out.append(cap.read_bytes())
    # Every math op (an int16 input, LOOKUP, BINARY, MEAN) in one capsule.
    from test_math_ops import _chain_model

    src, cap = tmp / "math.tflite", tmp / "math.cap"
    src.write_bytes(_chain_model()[0])
    pack_file(src, cap)
    out.append(cap.read_bytes())
    # A paged capsule, so RESIDENCY is fuzzed too.
    src, cap = tmp / "paged.tflite", tmp / "paged.cap"
    src.write_bytes(build_op_model("fc_perchannel_relu", 0).tflite)
    pack_file(src, cap, ram_budget=400)
    out.append(cap.read_bytes())
    return out


def _json_value(rng, depth=0):
    kind = rng.integers(0, 9)
    if kind == 0:
        return None
    if kind == 1:
        return bool(rng.integers(0, 2))
    if kind == 2:
        return int(rng.choice(INTERESTING)) * int(rng.choice([1, 1 << 40]))
    if kind == 3:
        return float(rng.choice([0.5, -1e300, 1e-300, 3.25]))
    if kind == 4:
        return "x" * int(rng.integers(0, 40))
    if kind == 5 and depth < 4:
        return [_json_value(rng, depth + 1) for _ in range(rng.integers(0, 4))]
    if kind == 6 and depth < 4:
        return {"k%d" % i: _json_value(rng, depth + 1) for i in range(rng.integers(0, 4))}
    if kind == 7:
        d = int(rng.integers(10, 3000))
        return json.loads("[" * d + "]" * d) if d < 900 else "deep"
    return int(rng.integers(-10, 10))


def _mutate_json(raw, rng):
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    # Walk to a random container and replace or add one member.
    node = value
    for _ in range(int(rng.integers(0, 4))):
        children = list(node.values()) if isinstance(node, dict) else \
            node if isinstance(node, list) else []
        children = [c for c in children if isinstance(c, (dict, list)) and c]
        if not children:
            break
        node = children[int(rng.integers(0, len(children)))]
    if isinstance(node, dict) and node:
        key = list(node)[int(rng.integers(0, len(node)))]
        node[key] = _json_value(rng)
    elif isinstance(node, list) and node:
        node[int(rng.integers(0, len(node)))] = _json_value(rng)
    else:
        value = _json_value(rng)
    text = json.dumps(value)
    if rng.random() < 0.1:  # an unbalanced or garbled text
        cut = int(rng.integers(0, len(text) + 1))
        text = text[:cut]
    return text.encode()


def _mutate_binary(raw, rng, words=None):
    data = bytearray(raw)
    if not data:
        return bytes(rng.integers(0, 256, int(rng.integers(1, 8))).astype(np.uint8))
    for _ in range(int(rng.choice([1, 1, 2, 3]))):
        if not data:  # cut to nothing by an earlier mutation
            break
        kind = rng.integers(0, 10)
        if kind < 5 and len(data) >= 4:
            # An aligned int32 (op params, biases, multipliers, shifts, tensor fields).
            pos = int(rng.choice(words)) if words and rng.random() < 0.7 \
                else 4 * int(rng.integers(0, len(data) // 4))
            if pos + 4 > len(data):  # the section was cut by an earlier mutation
                pos = 4 * int(rng.integers(0, len(data) // 4))
            value = int(rng.choice(INTERESTING)) if rng.random() < 0.8 \
                else int(rng.integers(-(1 << 31), 1 << 31))
            struct.pack_into("<i", data, pos, value)
        elif kind < 7 and len(data) >= 2:
            pos = 2 * int(rng.integers(0, len(data) // 2))
            struct.pack_into("<H", data, pos, int(rng.choice(INTERESTING)) & 0xFFFF)
        elif kind < 9:
            data[int(rng.integers(0, len(data)))] = int(rng.integers(0, 256))
        elif rng.random() < 0.5:
            del data[int(rng.integers(0, len(data))):]
        else:
            data += bytes(int(rng.integers(1, 16)))
    return bytes(data)


def _param_words(graph):
    words = []
    for _, _, _, _, params, n in graph_ops(graph):
        words.extend(params + 4 * k for k in range(n))
    return words


JSON_SECTIONS = ("META", "RESIDENCY", "SHADOW_POLICY", "TRAIN_SCHEDULE")


def mutate(base, rng):
    """(mutated capsule, name of the section changed)."""
    sections = split(base)
    k = int(rng.integers(0, len(sections) + 1))
    if k == len(sections):  # add an optional JSON section, maybe malformed
        kind = str(rng.choice(["SHADOW_POLICY", "TRAIN_SCHEDULE", "RESIDENCY"]))
        if all(name != kind for name, _, _ in sections):
            raw = json.dumps(_json_value(rng)).encode()
            sections.append((kind, raw, bool(rng.random() < 0.2)))
        return join(sections), kind
    name, raw, required = sections[k]
    if name in JSON_SECTIONS and rng.random() < 0.8:
        raw = _mutate_json(raw, rng)
    else:
        raw = _mutate_binary(raw, rng, _param_words(raw) if name == "GRAPH" else None)
    sections[k] = (name, raw, required)
    return join(sections), name


def _count(config):
    return config.getoption("--fuzz-cases") or int(os.environ.get("MINERVA_FUZZ_CASES", 20000))


def _run_cpython(path, tier):
    """'REJECT', an output CRC as hex, or raises with what escaped."""
    try:
        m = minerva.load(str(path), kernels=tier)
    except minerva.CapsuleError:
        return "REJECT"
    fill_inputs(m)
    out = m.run()
    m.close()
    return "%08x" % (binascii.crc32(bytes(out)) & 0xFFFFFFFF)


def test_fuzzed_capsules_load_cleanly_and_agree_in_every_tier(bases, request, micropython,
                                                              tmp_path):
    seed = request.config.getoption("--geometry-seed")
    only = request.config.getoption("--fuzz-case")
    indices = [int(only)] if only is not None else range(_count(request.config))
    scratch = tmp_path / "case.cap"
    blob = tmp_path / "cases.bin"
    expected, changed, cases, offset = {}, {}, [], 0
    accepted = 0
    with open(blob, "wb") as f:
        for index in indices:
            rng = np.random.default_rng([seed, zlib.crc32(b"fuzz"), index])
            data, changed[index] = mutate(bases[index % len(bases)], rng)
            repro = (f"repro: pytest tests/test_fuzz_capsules.py --fuzz-case {index} "
                     f"--geometry-seed {seed}")
            scratch.write_bytes(data)
            try:
                result = _run_cpython(scratch, "numpy")
                if index % SPEC_EVERY == 0 or result == "REJECT":
                    assert _run_cpython(scratch, "python") == result, \
                        f"python tier differs from numpy\n{repro}"
            except (minerva.CapsuleError, AssertionError):
                raise
            except Exception as exc:
                raise AssertionError(f"{type(exc).__name__}: {exc} escaped on CPython\n"
                                     f"{repro}") from exc
            accepted += result != "REJECT"
            expected[index] = result
            f.write(data)
            cases.append((index, offset, len(data)))
            offset += len(data)
    # The fuzz must reach run(): a good share of cases load.
    assert len(indices) < 100 or 0.05 < accepted / len(indices) < 0.95, accepted
    index_file = tmp_path / "cases.txt"
    index_file.write_text("".join("%d %d %d\n" % case for case in cases))
    script = _MP_SCRIPT.format(blob=str(blob), index_file=str(index_file),
                               scratch=str(tmp_path / "mp.cap"), every=SPEC_EVERY)
    proc = micropython.run(script, heapsize="8M", extra_path=[NATMOD], timeout=1800)
    seen = lenient = 0
    for line in proc.stdout.splitlines():
        if not line.startswith("CASE "):
            continue
        _, index, *results = line.split()
        index = int(index)
        repro = f"repro: pytest tests/test_fuzz_capsules.py --fuzz-case {index} " \
                f"--geometry-seed {seed}"
        values = {result.partition("=")[2] for result in results}
        assert len(values) == 1, f"tiers disagree on MicroPython: {results}\n{repro}"
        value = values.pop()
        if value != expected[index] and "REJECT" in (value, expected[index]) \
                and changed[index] in JSON_SECTIONS:
            # MicroPython's JSON reader is lenient where CPython's is strict (trailing NULs,
            # control characters in strings, "1.", trailing commas): the same text may parse
            # on one and not the other. Either way nothing escapes and nothing runs wrong.
            lenient += 1
            continue
        assert value == expected[index], \
            f"{results} on MicroPython, {expected[index]} on CPython\n{repro}"
        seen += 1
    assert seen + lenient == len(cases), proc.stdout[-2000:] + proc.stderr[-2000:]
    assert lenient < 0.02 * len(cases) + 2, f"{lenient} JSON texts parse on one side only"
