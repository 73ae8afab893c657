"""The math ops (MUL, SUB, MAXIMUM, MINIMUM, ADD with broadcasting, LOGISTIC, TANH,
HARD_SWISH, LEAKY_RELU, RELU, RELU6, ABS, MEAN, int16 QUANTIZE) bit-exact with TFLite Micro.

Generated one-op models (tests/mathmodels.py) are packed and run on every kernel tier:
python and numpy on CPython, python, viper and the native module on the MicroPython unix
port, each output byte-equal to TFLite Micro's. The 256-entry tables behind the unary ops
are checked on every input value for many quantizations; 200 random geometries and
quantizations per op run through whole models; hostile argument blocks are refused at load
or computed identically by every tier.
"""

import binascii
import hashlib
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from device_runner import run_on_cpython, run_on_micropython
from mathmodels import (
    BINARY_OPS,
    UNARY_OPS,
    binary_model,
    mean_model,
    quantize16_model,
    random_inputs,
    random_math_model,
    unary_model,
)
from reference import run_tflm

import minerva
from minerva_packager.capsule import lut
from minerva_packager.capsule.pack import pack_file
from minerva_packager.capsule.tflite_writer import TfliteBuilder
from minerva_packager.errors import PackagerError

ROOT = Path(__file__).resolve().parents[1]
NATMOD_DIR = ROOT / "dist" / "x64_6.3"
RANDOM_MODELS_PER_OP = 200
RANDOM_MODELS_PER_OP_MICROPYTHON = 25
KINDS = (*UNARY_OPS, *BINARY_OPS, "MEAN", "QUANTIZE_INT16")


def _natmod_path():
    if not (NATMOD_DIR / "minerva_nat.mpy").exists():
        pytest.skip("dist/x64_6.3/minerva_nat.mpy is not built (make natmod-x64)")
    return [NATMOD_DIR]


def _pack(model_bytes, tmp_path, name="m"):
    src = tmp_path / f"{name}.tflite"
    src.write_bytes(model_bytes)
    cap = tmp_path / f"{name}.cap"
    pack_file(src, cap)
    return cap


def _raw(cases):
    return [[np.ascontiguousarray(x).tobytes() for x in xs] for xs in cases]


# -- the tables, on every input value -----------------------------------------------------

def _table_cases(op, rng, count):
    """(input quant, output quant, alpha) triples: random, plus zero-point and scale edges."""
    out = []
    for k in range(count):
        s_in = float(np.float32(10 ** rng.uniform(-4, 1.5)))
        s_out = float(np.float32(10 ** rng.uniform(-4, 1.5)))
        zp_in = [-128, 127, 0][k] if k < 3 else int(rng.integers(-128, 128))
        zp_out = [127, -128, 0][k] if k < 3 else int(rng.integers(-128, 128))
        if op == "HARD_SWISH":
            s_out = max(s_out, s_in / 100)
        out.append(((s_in, zp_in), (s_out, zp_out), float(rng.uniform(-1.5, 1.5))))
    return out


def _table(op, in_q, out_q, alpha):
    if op == "LOGISTIC":
        return lut.logistic_table(*in_q)
    if op == "TANH":
        return lut.tanh_table(*in_q)
    if op == "HARD_SWISH":
        return lut.hard_swish_table(*in_q, *out_q)
    if op == "LEAKY_RELU":
        return lut.leaky_relu_table(*in_q, *out_q, alpha)
    if op == "RELU":
        return lut.relu_table(*in_q, *out_q)
    if op == "ABS":
        return lut.abs_table(*in_q, *out_q)
    return lut.relu6_table(*in_q)


@pytest.mark.parametrize("op", UNARY_OPS)
def test_tables_match_tflite_micro_on_every_input(op):
    rng = np.random.default_rng(sum(map(ord, op)))
    every_value = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
    checked = 0
    for in_q, out_q, alpha in _table_cases(op, rng, 40):
        if op == "LOGISTIC":
            out_q = (1 / 256, -128)
        try:
            table = _table(op, in_q, out_q, alpha)
        except lut.UnsupportedQuantization:
            continue
        model, _, _ = unary_model(op, [1, 256], in_q, out_q, alpha)
        want = run_tflm(model, [every_value])[0].ravel().tolist()
        assert table == want, f"{op} {in_q} -> {out_q} alpha {alpha}: table differs"
        checked += 1
    assert checked >= 30


def _relu_table_float32_ratio(in_q, out_q):
    # RELU as its Prepare is written: in_scale / out_scale divided in float32.
    from minerva.kernels_py import mbqm
    from minerva_packager.capsule import quant

    m, s = quant.quantize_multiplier(float(np.float32(in_q[0]) / np.float32(out_q[0])))
    return [min(127, max(max(-128, out_q[1]), out_q[1] + mbqm(x - in_q[1], m, s)))
            for x in range(-128, 128)]


# Quantizations where in_scale / out_scale rounds differently in float32 and in double.
RATIO_CASES = [((0.01900322735309601, -94), (0.045269910246133804, -30)),
               ((0.0034488495439291, -51), (0.011070380918681622, 98))]


@pytest.mark.parametrize("in_q, out_q", RATIO_CASES)
def test_relu_multiplier_is_the_double_precision_ratio(in_q, out_q):
    # Surprising: kernels/activations_common.cc divides the float32 scales in float32, but
    # the reference build agrees with the double-precision quotient (so do LEAKY_RELU,
    # HARD_SWISH, ABS and SUB: lut.py, lower_math.sub_params).
    every_value = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
    model, _, _ = unary_model("RELU", [1, 256], in_q, out_q)
    want = run_tflm(model, [every_value])[0].ravel().tolist()
    assert want == lut.relu_table(*in_q, *out_q)
    assert want != _relu_table_float32_ratio(in_q, out_q)


def test_abs_multiplier_is_the_double_precision_ratio():
    from minerva.kernels_py import mbqm
    from minerva_packager.capsule import quant

    in_q, out_q = (0.1419394612312317, -100), (0.18663319945335388, -94)
    m, s = quant.quantize_multiplier(float(np.float32(in_q[0]) / np.float32(out_q[0])))
    float32_table = [max(-128, min(127, mbqm(abs(x - in_q[1]), m, s) + out_q[1]))
                     for x in range(-128, 128)]
    model, _, _ = unary_model("ABS", [1, 256], in_q, out_q)
    every_value = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
    want = run_tflm(model, [every_value])[0].ravel().tolist()
    assert want == lut.abs_table(*in_q, *out_q) and want != float32_table


def test_sub_multipliers_are_adds(tmp_path):
    # Every pair of int8 values through SUB with scales whose float32 and double set-ups
    # differ: TFLite Micro agrees with ADD's double-precision multipliers.
    qa, qb, qo = (0.05, 2), (0.07, -3), (0.1, 0)
    model, _, _ = binary_model("SUB", [256, 1], [1, 256], qa, qb, qo)
    values = np.arange(-128, 128, dtype=np.int8)
    xs = [values.reshape(256, 1), values.reshape(1, 256)]
    want = run_tflm(model, xs)[0].tobytes()
    cap = _pack(model, tmp_path)
    assert run_on_cpython(cap, [[x.tobytes() for x in xs]], kernels="numpy") == [want]


# -- named models on every tier -----------------------------------------------------------

def _chain_model():
    """int16 input -> QUANTIZE -> HARD_SWISH -> MUL by a per-channel constant -> SUB of a
    broadcast input -> MAXIMUM with a scalar constant -> LOGISTIC -> MEAN over H, W: every
    math device op in one capsule."""
    b = TfliteBuilder()
    rng = np.random.default_rng(4)
    x16 = b.tensor("x16", [1, 5, 6, 8], "int16", scale=1 / 4096, zero_point=0)
    x = b.tensor("x", [1, 5, 6, 8], "int8", scale=0.03, zero_point=-4)
    b.op("QUANTIZE", [x16], [x])
    hs = b.tensor("hs", [1, 5, 6, 8], "int8", scale=0.02, zero_point=-20)
    b.op("HARD_SWISH", [x], [hs])
    w = b.tensor("w", [8], "int8", scale=0.01, zero_point=0, data=rng.integers(-127, 128, 8))
    m = b.tensor("m", [1, 5, 6, 8], "int8", scale=0.004, zero_point=3)
    b.op("MUL", [hs, w], [m])
    y = b.tensor("y", [1, 1, 6, 1], "int8", scale=0.01, zero_point=9)
    s = b.tensor("s", [1, 5, 6, 8], "int8", scale=0.012, zero_point=-2)
    b.op("SUB", [m, y], [s], activation="RELU")
    c = b.tensor("c", [1], "int8", scale=0.012, zero_point=-2, data=[5])
    mx = b.tensor("mx", [1, 5, 6, 8], "int8", scale=0.012, zero_point=-2)
    b.op("MAXIMUM", [s, c], [mx])
    lg = b.tensor("lg", [1, 5, 6, 8], "int8", scale=1 / 256, zero_point=-128)
    b.op("LOGISTIC", [mx], [lg])
    axes = b.tensor("axes", [2], "int32", data=np.array([1, 2], np.int32))
    out = b.tensor("out", [1, 1, 1, 8], "int8", scale=1 / 512, zero_point=-100)
    b.op("MEAN", [lg, axes], [out], keep_dims=True)
    return b.build([x16, y], [out]), ["int16", "int8"], [[1, 5, 6, 8], [1, 1, 6, 1]]


MODELS = {
    "logistic_4d": lambda: unary_model("LOGISTIC", [1, 5, 5, 8], (0.08, 10), (1 / 256, -128)),
    "tanh_2d": lambda: unary_model("TANH", [2, 37], (0.03, -5), (1 / 128, 0)),
    "hard_swish_mobilenet": lambda: unary_model("HARD_SWISH", [1, 7, 7, 16], (0.05, 12),
                                                (0.03, -90)),
    "leaky_relu_alpha_0_1": lambda: unary_model("LEAKY_RELU", [1, 9, 33], (0.04, 3),
                                                (0.03, -20), alpha=0.1),
    "leaky_relu_negative_alpha": lambda: unary_model("LEAKY_RELU", [300], (0.04, 3),
                                                     (0.05, 0), alpha=-0.7),
    "relu_requantizes": lambda: unary_model("RELU", [1, 4, 4, 3], (0.05, 7), (0.02, -128)),
    "relu6": lambda: unary_model("RELU6", [1, 3, 3, 64], (0.03, -30), (0.03, -30)),
    "abs_same_scale": lambda: unary_model("ABS", [1, 4, 4, 8], (0.03, -30), (0.03, -128)),
    "abs_rescaled": lambda: unary_model("ABS", [2, 50], (0.03, 17), (0.02, -128)),
    "add_per_channel_broadcast": lambda: binary_model(
        "ADD", [1, 4, 4, 8], [1, 1, 1, 8], (0.05, 2), (0.02, -3), (0.06, 1)),
    "add_constant_second": lambda: binary_model(
        "ADD", [1, 3, 65], [65], (0.05, 2), (0.02, -3), (0.06, 1), "RELU",
        const_b=list(range(-32, 33))),
    "mul_channel_constant": lambda: binary_model(
        "MUL", [1, 6, 6, 32], [1, 1, 1, 32], (0.02, -7), (0.01, 0), (0.003, 4),
        const_b=[((k * 37) % 255) - 127 for k in range(32)]),
    "mul_scalar_relu6": lambda: binary_model(
        "MUL", [1, 5, 7, 3], [1], (0.05, 10), (0.1, -2), (0.03, -128), "RELU6"),
    "sub_same_shape": lambda: binary_model(
        "SUB", [2, 3, 4, 5], [2, 3, 4, 5], (0.05, 2), (0.07, -3), (0.1, 0)),
    "sub_first_operand_broadcasts": lambda: binary_model(
        "SUB", [1, 1, 4, 1], [3, 4, 5], (0.5, 12), (0.02, -3), (0.3, 6), "RELU_N1_TO_1"),
    "maximum_broadcast": lambda: binary_model(
        "MAXIMUM", [2, 1, 4, 5], [3, 1, 5], (0.05, 2), (0.05, 2), (0.05, 2)),
    "minimum_constant_scalar": lambda: binary_model(
        "MINIMUM", [1, 8, 8, 3], [1], (0.05, 2), (0.05, 2), (0.05, 2), const_b=[40]),
    "binary_both_constant_folded": lambda: binary_model(
        "MUL", [2, 3], [3], (0.05, 2), (0.1, 0), (0.02, 5), const_a=[1, 2, 3, -4, -5, 60],
        const_b=[7, -8, 9]),
    "mean_global_average_pool": lambda: mean_model([1, 7, 7, 32], [1, 2], True, (0.05, -3),
                                                   (0.03, 5)),
    "mean_last_axis_no_keep": lambda: mean_model([2, 6, 5, 3], [-1], False, (0.1, 20),
                                                 (0.05, -10)),
    "mean_non_adjacent_axes": lambda: mean_model([3, 4, 5, 6], [0, 2], True, (0.02, 0),
                                                 (0.01, 1)),
    "mean_all_axes": lambda: mean_model([2, 3, 4], [0, 1, 2], False, (0.02, 7), (0.02, 7)),
    "quantize_int16_to_int8": lambda: quantize16_model([1, 10, 33], (1 / 32768, 0),
                                                       (1 / 128, -3)),
    "quantize_int16_zero_point": lambda: quantize16_model([500], (0.001, 120), (0.05, 10)),
    "chain_of_every_math_op": _chain_model,
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_math_model_bit_exact_on_every_tier(name, micropython, tmp_path):
    model, dtypes, shapes = MODELS[name]()
    cap = _pack(model, tmp_path, name)
    cases = random_inputs(dtypes, shapes, np.random.default_rng(7), count=3)
    want = [run_tflm(model, xs)[0].tobytes() for xs in cases]
    raw = _raw(cases)
    for tier in ("python", "numpy"):
        assert run_on_cpython(cap, raw, kernels=tier) == want, f"{name}: {tier} differs"
    for tier in ("python", "viper", "natmod"):
        extra = _natmod_path() if tier == "natmod" else ()
        got = run_on_micropython(micropython, cap, raw, tmp_path, kernels=tier,
                                 extra_path=extra)
        assert got == want, f"{name}: {tier} on MicroPython differs from TFLite Micro"


_TIER_SCRIPT = """
import gc, minerva
for tier in ("viper", "natmod"):
    m = minerva.load({capsule!r}, kernels=tier)
    m.run([bytearray({n16}), bytearray({n8})])
    before = 0
    gc.collect()
    before = gc.mem_alloc()
    m.run()
    m.run()
    print(tier, "ALLOCATED", gc.mem_alloc() - before, "FALLBACKS", m.info()["fallbacks"])
"""


def test_math_ops_need_no_fallback_and_run_allocates_nothing(micropython, tmp_path):
    model, _, _ = _chain_model()
    cap = _pack(model, tmp_path, "chain")
    out = micropython.run(_TIER_SCRIPT.format(capsule=str(cap), n16=2 * 240, n8=6),
                          heapsize="4M", extra_path=_natmod_path()).stdout
    assert "viper ALLOCATED 0 FALLBACKS {}" in out, out
    assert "natmod ALLOCATED 0 FALLBACKS {}" in out, out
    info = minerva.load(str(cap)).info()
    assert info["ops"] == ["QUANTIZE_INT16", "LOOKUP", "BINARY", "BINARY", "BINARY", "LOOKUP",
                           "MEAN"]
    assert info["inputs"][0]["dtype"] == "int16"


# -- random geometries and quantizations against TFLite Micro ---------------------------------

def _random_case(kind, seed, tmp_path):
    desc, model, dtypes, shapes = random_math_model(kind, seed)
    cases = random_inputs(dtypes, shapes, np.random.default_rng(seed), count=2)
    want = [run_tflm(model, xs)[0].tobytes() for xs in cases]
    cap = _pack(model, tmp_path, f"{kind}_{seed}")
    return desc, cap, _raw(cases), want


@pytest.mark.parametrize("kind", KINDS)
def test_random_math_models_match_tflite_micro(kind, tmp_path):
    for seed in range(RANDOM_MODELS_PER_OP):
        desc, cap, raw, want = _random_case(kind, seed, tmp_path)
        for tier in ("numpy", "python"):
            got = run_on_cpython(cap, raw, kernels=tier)
            assert got == want, (f"{tier} differs from TFLite Micro; repro: seed {seed}: "
                                 f"{desc}")
        cap.unlink()


_BATCH_SCRIPT = """
import minerva, binascii, json
for capsule, sizes, inputs, tier in json.load(open({jobs!r})):
    m = minerva.load(capsule, kernels=tier)
    for case in inputs:
        xs = [binascii.unhexlify(x) for x in case]
        print("OUT", binascii.hexlify(bytes(m.run(xs[0] if len(xs) == 1 else xs))).decode())
"""


def _run_batch(micropython, jobs, tmp_path, extra):
    # [(capsule, _, [[input hex ...] ...], tier)] in one MicroPython process; its stdout.
    path = tmp_path / "jobs.json"
    path.write_text(json.dumps(jobs))
    return micropython.run(_BATCH_SCRIPT.format(jobs=str(path)), heapsize="8M",
                           extra_path=extra).stdout


@pytest.mark.parametrize("kind", KINDS)
def test_random_math_models_on_micropython_tiers(kind, micropython, tmp_path):
    extra = _natmod_path()
    jobs, expected = [], []
    for seed in range(RANDOM_MODELS_PER_OP_MICROPYTHON):
        desc, cap, raw, want = _random_case(kind, seed, tmp_path)
        for tier in ("viper", "natmod"):
            jobs.append((str(cap), None, [[x.hex() for x in case] for case in raw], tier))
            expected += [(w, f"{tier} seed {seed}: {desc}") for w in want]
    out = _run_batch(micropython, jobs, tmp_path, extra)
    got = [bytes.fromhex(line[4:]) for line in out.splitlines() if line.startswith("OUT ")]
    assert len(got) == len(expected), out[-2000:]
    for g, (w, what) in zip(got, expected):
        assert g == w, f"differs from TFLite Micro; repro: {what}"


# -- hostile argument blocks ----------------------------------------------------------------

def _op_params(data):
    """[(opcode, offset of its params in the file, n_params)] of a capsule's GRAPH."""
    count = struct.unpack_from("<H", data, 12)[0]
    for i in range(count):
        kind, _, off, n, _ = struct.unpack_from("<HHIII", data, 32 + 16 * i)
        if kind == 2:
            break
    n_tensors, n_ops, n_in, n_out = struct.unpack_from("<HHHH", data, off)
    pos = 16 + 2 * (n_in + n_out)
    pos += -pos % 4
    pos += 36 * n_tensors
    ops = []
    for _ in range(n_ops):
        code, ni, no, np_ = struct.unpack_from("<BBBB", data, off + pos)
        pos += 4 + 2 * (ni + no)
        pos += -pos % 4
        ops.append((code, off + pos, np_))
        pos += 4 * np_
    return ops


def _reseal(data):
    data = bytearray(data)
    count = struct.unpack_from("<H", data, 12)[0]
    for i in range(count):
        _, _, off, n, _ = struct.unpack_from("<HHIII", data, 32 + 16 * i)
        struct.pack_into("<I", data, 32 + 16 * i + 12, binascii.crc32(data[off:off + n]))
    data[-32:] = hashlib.sha256(data[:-32]).digest()
    return bytes(data)


def _with_param(data, where, index, value):
    bad = bytearray(data)
    struct.pack_into("<i", bad, where + 4 * index, value)
    return _reseal(bad)


# (opcode, param index, value): each must be refused at load.
REFUSED = [
    (20, 0, 0), (20, 0, 241), (20, 0, -1),
    (21, 0, 5), (21, 0, -1), (21, 1, 0), (21, 4, 9), (21, 8, 10_000), (21, 12, -1),
    (21, 5, 1 << 30), (21, 13, 129), (21, 14, -128), (21, 15, 128), (21, 17, -1),
    (21, 23, -129), (21, 24, 128),
    (22, 0, 0), (22, 1, 1 << 30), (22, 5, 128), (22, 6, -129), (22, 7, -5), (22, 8, 31),
    (22, 8, -32), (22, 8, 30),
    (23, 0, 241), (23, 1, 40_000), (23, 2, 300), (23, 3, -1), (23, 4, 16), (23, 4, -32),
]
EXTREMES = [-(1 << 31), -(1 << 30), -256, -129, -32, -1, 0, 1, 2, 15, 16, 20, 21, 30, 31,
            127, 128, 255, 256, 1 << 23, (1 << 31) - 1]


@pytest.fixture(scope="module")
def chain_capsule(tmp_path_factory):
    model, _, _ = _chain_model()
    return _pack(model, tmp_path_factory.mktemp("chain"), "chain").read_bytes()


def test_hostile_math_params_are_refused(chain_capsule, tmp_path):
    ops = {code: (where, n) for code, where, n in _op_params(chain_capsule)}
    assert set(ops) >= {20, 21, 22, 23}
    path = tmp_path / "bad.cap"
    for code, index, value in REFUSED:
        path.write_bytes(_with_param(chain_capsule, ops[code][0], index, value))
        with pytest.raises(minerva.CapsuleError):
            minerva.load(str(path))
            pytest.fail(f"opcode {code} param {index} = {value} was accepted")


def _hostile_variants(data):
    """Every param of every math op set to every extreme value, one at a time."""
    for code, where, n in _op_params(data):
        if code < 20:
            continue
        for index in range(n):
            for value in EXTREMES:
                yield f"op{code}[{index}]={value}", _with_param(data, where, index, value)


def test_hostile_math_params_never_diverge(chain_capsule, tmp_path):
    # Whatever loads must run identically on the python and numpy tiers (and stay in
    # bounds); everything else is a CapsuleError.
    accepted = refused = 0
    inputs = _raw(random_inputs(["int16", "int8"], [[1, 5, 6, 8], [1, 1, 6, 1]],
                                np.random.default_rng(1), count=1))
    for label, data in _hostile_variants(chain_capsule):
        path = tmp_path / "h.cap"
        path.write_bytes(data)
        try:
            spec = run_on_cpython(path, inputs, kernels="python")
        except minerva.CapsuleError:
            refused += 1
            continue
        accepted += 1
        assert run_on_cpython(path, inputs, kernels="numpy") == spec, label
    assert accepted > 50 and refused > 50


def test_hostile_math_params_same_on_micropython_tiers(chain_capsule, micropython, tmp_path):
    extra = _natmod_path()
    inputs = _raw(random_inputs(["int16", "int8"], [[1, 5, 6, 8], [1, 1, 6, 1]],
                                np.random.default_rng(2), count=1))
    jobs, expected = [], []
    for k, (label, data) in enumerate(_hostile_variants(chain_capsule)):
        if k % 4:
            continue  # a quarter of them keeps the run short
        path = tmp_path / f"h{k}.cap"
        path.write_bytes(data)
        try:
            spec = run_on_cpython(path, inputs, kernels="python")
        except minerva.CapsuleError:
            path.unlink()
            continue
        for tier in ("viper", "natmod"):
            jobs.append((str(path), None, [[x.hex() for x in case] for case in inputs], tier))
            expected.append((spec[0], f"{tier} {label}"))
    out = _run_batch(micropython, jobs, tmp_path, extra)
    got = [bytes.fromhex(line[4:]) for line in out.splitlines() if line.startswith("OUT ")]
    assert len(got) == len(expected) > 20, out[-2000:]
    for g, (w, what) in zip(got, expected):
        assert g == w, f"{what}: differs from kernels_py"


# -- what the packager refuses ---------------------------------------------------------------

def _refusal(model_bytes, tmp_path):
    src = tmp_path / "m.tflite"
    src.write_bytes(model_bytes)
    with pytest.raises(PackagerError) as err:
        pack_file(src, tmp_path / "m.cap")
    assert not (tmp_path / "m.cap").exists()
    return str(err.value)


def test_packager_refusals_name_op_and_index(tmp_path):
    model, _, _ = unary_model("LOGISTIC", [4], (0.1, 0), (1 / 256, 0))
    assert "op LOGISTIC (index 0)" in _refusal(model, tmp_path)
    model, _, _ = unary_model("HARD_SWISH", [4], (1.0, 0), (0.001, 0))
    assert "op HARD_SWISH (index 0)" in _refusal(model, tmp_path)
    model, _, _ = binary_model("MUL", [4], [4], (1.0, 0), (1.0, 0), (1e-6, 0))
    assert "op MUL (index 0)" in _refusal(model, tmp_path)
    model, _, _ = binary_model("SUB", [4], [4], (1.0, 0), (1.0, 0), (1e-8, 0))
    assert "op SUB (index 0)" in _refusal(model, tmp_path)
    b = TfliteBuilder()
    x = b.tensor("x", [4], "int8", scale=0.1, zero_point=0)
    y = b.tensor("y", [4], "int16", scale=0.1, zero_point=0)
    b.op("QUANTIZE", [x], [y])
    assert "QUANTIZE (index 0)" in _refusal(b.build([x], [y]), tmp_path)


def test_supported_ops_hint_lists_tflite_names():
    from minerva_packager.capsule.lower import SUPPORTED_OPS

    for name in ("MUL", "SUB", "LOGISTIC", "MEAN", "HARD_SWISH"):
        assert name in SUPPORTED_OPS
    assert "LOOKUP" not in SUPPORTED_OPS and "BINARY" not in SUPPORTED_OPS


def test_inspect_names_the_math_ops(tmp_path):
    from minerva_packager.capsule.summary import format_summary, summarize

    model, _, _ = _chain_model()
    text = format_summary(summarize(_pack(model, tmp_path, "chain")))
    for line in ("QUANTIZE_INT16     size=240", "BINARY             MUL d0=1 d1=5 d2=6 d3=8",
                 "BINARY             SUB", "MEAN               k0=1 r0=30 k1=8 r1=1 k2=1"):
        assert line in text, text
