"""The math kernels (LOOKUP, BINARY, MEAN, QUANTIZE_INT16) give the same bytes in every tier.

Named cases (realistic geometries and the extremes the loader accepts) and seeded random
cases from tests/geometries_math.py: numpy (math_np) against math_py (the spec) on CPython;
viper (viper_math) and the C native module against math_py on the MicroPython unix port
(each tier's module as tiers.py binds it), with int8 buffers
as memoryview slices at odd offsets inside guarded arrays (as the arena hands them out) and
the guard bytes checked afterwards. Also on a 32-bit MicroPython when MINERVA_MICROPYTHON32
names one (see tests/test_kernels_tiers.py).
"""

import json
import os
import zlib
from array import array
from pathlib import Path

import numpy as np
import pytest
from conftest import MicroPython
from geometries_math import GENERATORS

from minerva import math_np as kernels_np
from minerva import math_py as kernels_py
from minerva_packager.capsule import lut, quant
from minerva_packager.capsule.lower_math import mean_multiplier, sub_params

ROOT = Path(__file__).resolve().parents[1]
NATMOD_DIR = ROOT / "dist" / "x64_6.3"
INT32_MAX = (1 << 31) - 1
GUARD = 0x5A
RANDOM_PER_KERNEL = 80


def _int8(rng, n):
    return rng.integers(-128, 128, n).tolist()


def _binary(rng, kind, dims, a_shape, b_shape, arith, act=(-128, 127)):
    def strides(shape):
        out, step = [0] * 4, 1
        for k in range(3, -1, -1):
            out[k] = step if shape[k] > 1 else 0
            step *= shape[k]
        return out, step

    (sa, na), (sb, nb) = strides(a_shape), strides(b_shape)
    args = [kind, *dims, *sa, *sb, *arith, *act]
    return "binary", [("b", _int8(rng, na)), ("b", _int8(rng, nb))], args, \
        ("b", int(np.prod(dims)))


def _add_sub(kind, s1, s2, so, zps=(3, -7, 5)):
    p = (quant.add_params if kind == 0 else sub_params)(s1, s2, so)
    return [-zps[0], -zps[1], zps[2], p["left_shift"], p["input1_mult"], p["input1_shift"],
            p["input2_mult"], p["input2_shift"], p["output_mult"], p["output_shift"]]


def _mul(mult, shift, zps=(3, -7, 5)):
    return [-zps[0], -zps[1], zps[2], 0, 0, 0, 0, 0, mult, shift]


def _mean(rng, k0, r0, k1, r1, k2, zps, mult_shift):
    args = [k0, r0, k1, r1, k2, *zps, *mult_shift]
    return "mean", [("b", _int8(rng, k0 * r0 * k1 * r1 * k2))], args, ("b", k0 * k1 * k2)


def _q16(rng, size, in_zp, out_zp, mult, shift, divisor=1):
    values = (rng.integers(-32768, 32768, size) // divisor).tolist()
    return "quantize_int16", [("h", values)], [size, in_zp, out_zp, mult, shift], ("b", size)


CASES = {
    "lookup_odd_size_random_table": lambda r: ("lookup", [("b", _int8(r, 333)),
                                                          ("b", _int8(r, 256))], [333],
                                               ("b", 333)),
    "lookup_logistic_table": lambda r: ("lookup", [("b", _int8(r, 64)),
                                                   ("b", lut.logistic_table(0.05, 3))],
                                        [64], ("b", 64)),
    "binary_add_same_shape": lambda r: _binary(
        r, 0, [1, 4, 4, 8], [1, 4, 4, 8], [1, 4, 4, 8], _add_sub(0, 0.05, 0.02, 0.08)),
    "binary_add_per_channel_broadcast": lambda r: _binary(
        r, 0, [1, 5, 3, 65], [1, 5, 3, 65], [1, 1, 1, 65], _add_sub(0, 0.1, 0.3, 0.2),
        (-20, 127)),
    "binary_add_extremes": lambda r: _binary(
        r, 0, [2, 3, 1, 7], [2, 3, 1, 7], [2, 1, 1, 7],
        [128, -127, 127, 20, INT32_MAX, -31, INT32_MAX, 0, INT32_MAX, 0]),
    "binary_sub_scalar": lambda r: _binary(
        r, 1, [1, 2, 9, 16], [1, 2, 9, 16], [1, 1, 1, 1], _add_sub(1, 0.02, 0.5, 0.4)),
    "binary_sub_first_operand_broadcasts": lambda r: _binary(
        r, 1, [1, 3, 4, 5], [1, 1, 4, 1], [1, 3, 4, 5], _add_sub(1, 0.7, 0.01, 1.0)),
    "binary_mul_channel_scale": lambda r: _binary(
        r, 2, [1, 6, 6, 32], [1, 6, 6, 32], [1, 1, 1, 32],
        _mul(*quant.quantize_multiplier(0.02 * 0.01 / 0.003))),
    "binary_mul_left_shift_15": lambda r: _binary(
        r, 2, [1, 1, 3, 300], [1, 1, 3, 300], [1, 1, 3, 300],
        _mul(INT32_MAX, 15, (-128, -128, 0))),
    "binary_mul_right_shift_31": lambda r: _binary(
        r, 2, [1, 2, 2, 2], [1, 2, 2, 2], [1, 2, 2, 2], _mul(INT32_MAX, -31)),
    "binary_maximum_broadcast": lambda r: _binary(
        r, 3, [2, 3, 4, 5], [2, 1, 4, 5], [1, 3, 1, 5], [0] * 10),
    "binary_minimum_act_range": lambda r: _binary(
        r, 4, [1, 1, 7, 9], [1, 1, 7, 9], [1, 1, 1, 1], [0] * 10, (-50, 60)),
    "mean_global_pool_7x7x32": lambda r: _mean(r, 1, 49, 32, 1, 1, (-5, 3),
                                               mean_multiplier(0.05, 0.03, 49)),
    "mean_last_axis": lambda r: _mean(r, 12, 20, 1, 1, 1, (0, -1),
                                      mean_multiplier(0.1, 0.1, 20)),
    "mean_two_reduced_blocks": lambda r: _mean(r, 2, 3, 4, 5, 6, (17, -9),
                                               mean_multiplier(0.02, 0.01, 15)),
    "mean_count_one": lambda r: _mean(r, 3, 1, 5, 1, 2, (7, -8), mean_multiplier(1, 2, 1)),
    "mean_extreme_multiplier": lambda r: _mean(r, 1, 300, 1, 1, 4, (-128, 127),
                                               (INT32_MAX, -31)),
    "mean_left_shift": lambda r: _mean(r, 1, 2, 3, 1, 1, (0, 0), (1 << 30, 20)),
    "quantize_int16_typical": lambda r: _q16(r, 500, 0, -3,
                                             *quant.requantize_params(1 / 32768, 1 / 128), 4),
    "quantize_int16_zero_point_extremes": lambda r: _q16(r, 200, -32768, 127, INT32_MAX, 0),
    "quantize_int16_shift_limits": lambda r: _q16(r, 100, 32767, -128, INT32_MAX, 15),
    "quantize_int16_right_shift_31": lambda r: _q16(r, 100, 5, 0, INT32_MAX, -31),
}


def _named(name):
    return CASES[name](np.random.default_rng(zlib.crc32(name.encode())))


def _random(kernel, k):
    return GENERATORS[kernel](np.random.default_rng([zlib.crc32(kernel.encode()), k]))


def _run_cpython(kernels, case):
    op, bufs, args, (out_type, out_len) = case
    out = array(out_type, bytes(4 * out_len if out_type in "if" else out_len))
    getattr(kernels, op)(*[array(t, v) for t, v in bufs], out, array("i", args))
    return out.tobytes()


_MP_SCRIPT = """
import json, binascii, sys
from array import array
from minerva import math_py, viper_math
tiers = [("python", math_py), ("viper", viper_math)]
try:
    import minerva_nat
    tiers.append(("natmod", minerva_nat))
except ImportError:
    pass
def place(t, raw, pad):
    values = array(t, binascii.unhexlify(raw))
    if t != "b":
        return values, None
    whole = array("b", [{guard}] * (len(values) + 2 * pad))
    for i, v in enumerate(values):
        whole[pad + i] = v
    return memoryview(whole)[pad:pad + len(values)], whole
for name, op, bufs, args, out_spec in json.load(open({path!r})):
    for tier, module in tiers:
        ins = [place(t, v, 3)[0] for t, v in bufs]
        out, whole = place("b", "00" * out_spec[1], 5)
        getattr(module, op)(*(ins + [out, array("i", args)]))
        guards = all(whole[i] == {guard} for i in
                     list(range(5)) + list(range(len(whole) - 5, len(whole))))
        print("OUT", name, tier, binascii.hexlify(bytes(out)).decode(), guards)
"""


def _micropythons(micropython):
    yield micropython
    other = os.environ.get("MINERVA_MICROPYTHON32")
    if other:
        yield MicroPython(other)


def _check_on_micropython(named_cases, micropython, tmp_path):
    """Run every (name, case) on each MicroPython tier; return {name: spec bytes}."""
    path = tmp_path / "cases.json"
    raw = [[name, c[0], [(t, array(t, v).tobytes().hex()) for t, v in c[1]], c[2], c[3]]
           for name, c in named_cases]
    path.write_text(json.dumps(raw))
    specs = {name: _run_cpython(kernels_py, c) for name, c in named_cases}
    for mp in _micropythons(micropython):
        extra = [NATMOD_DIR] if (NATMOD_DIR / "minerva_nat.mpy").exists() else []
        proc = mp.run(_MP_SCRIPT.format(path=str(path), guard=GUARD), heapsize="8M",
                      extra_path=extra)
        seen = {}
        for line in proc.stdout.splitlines():
            if line.startswith("OUT "):
                _, name, tier, out_hex, guards = line.split()
                seen.setdefault(tier, 0)
                seen[tier] += 1
                assert bytes.fromhex(out_hex) == specs[name], \
                    f"{name}: {tier} on {mp.binary} differs from math_py"
                assert guards == "True", f"{name}: {tier} wrote outside its output"
        expected_tiers = {"python", "viper"} | ({"natmod"} if extra else set())
        assert set(seen) == expected_tiers and all(n == len(named_cases)
                                                   for n in seen.values()), proc.stdout[-2000:]
    return specs


@pytest.mark.parametrize("name", sorted(CASES))
def test_numpy_matches_spec_named(name):
    case = _named(name)
    assert _run_cpython(kernels_np, case) == _run_cpython(kernels_py, case), name


def test_named_cases_viper_and_natmod_match_spec(micropython, tmp_path):
    _check_on_micropython([(n, _named(n)) for n in sorted(CASES)], micropython, tmp_path)


def test_named_cases_are_not_all_clamped():
    for name in CASES:
        out = np.frombuffer(_run_cpython(kernels_py, _named(name)), np.int8)
        if "extreme" not in name and "shift" not in name:
            assert not np.all((out == -128) | (out == 127)), f"{name}: every output clamps"


@pytest.mark.parametrize("kernel", sorted(GENERATORS))
def test_random_geometries_numpy_matches_spec(kernel):
    for k in range(RANDOM_PER_KERNEL * 3):
        case = _random(kernel, k)
        assert _run_cpython(kernels_np, case) == _run_cpython(kernels_py, case), \
            f"{kernel} random case {k}: args {case[2]}"


@pytest.mark.parametrize("kernel", sorted(GENERATORS))
def test_random_geometries_viper_and_natmod_match_spec(kernel, micropython, tmp_path):
    cases = [(f"{kernel}#{k}", _random(kernel, k)) for k in range(RANDOM_PER_KERNEL)]
    _check_on_micropython(cases, micropython, tmp_path)


def test_random_geometries_pass_the_load_checks():
    # Every generated case is one graph_math.check accepts, so all tiers owe the same bytes.
    from minerva.graph import Op, Tensor
    from minerva.graph_math import check

    codes = {"lookup": 20, "binary": 21, "mean": 22, "quantize_int16": 23}
    for generate in GENERATORS.values():
        rng = np.random.default_rng(5)
        for _ in range(200):
            op, bufs, args, (_, out_len) = generate(rng)
            tensors = [Tensor(0 if t == "b" else 2, 0, 0, len(v) * (1 if t == "b" else 2), 0,
                              1.0, ()) for t, v in bufs]
            tensors.append(Tensor(0, 0, 0, out_len, 0, 1.0, ()))
            check("case", Op(codes[op], list(range(len(bufs))), [len(bufs)], args), tensors,
                  op)
