"""viper_requant (the viper tier's requantization pass) against the spec, kernels_py.mbqm, at
the edges of its methods: accumulators around 2**20 (three multiplier limbs below, 15-bit
limbs above), 2**23, 2**31; multipliers 0, 1, 2**30, 2**31 - 1; right shifts 0..31 (the
rounding of ties, toward and away from zero), left shifts that keep acc << shift in int32;
biases that carry the accumulator across those edges, and the output offset and clamp.
Seeded; a failure prints the lane's one-line reproduction. The 32-bit board runs it through
the models in tests/test_pico.py.
"""

import json

import numpy as np
import pytest

from minerva.kernels_py import mbqm

GROUP, CHUNK = 8, 64
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
EDGE_ACCS = [0, 1, -1, 2, -2, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, -(1 << 20) + 1,
             -(1 << 20), -(1 << 20) - 1, 1 << 23, -(1 << 23), INT32_MAX, INT32_MIN,
             (1 << 30) + 12345, -(1 << 30) - 777]
EDGE_MULTS = [0, 1, 1 << 30, INT32_MAX, INT32_MAX - 1, (1 << 30) + 1]

_SCRIPT = """
import json
from array import array
from minerva import viper_requant as vr
for line in open({path!r}):
    lanes, accs = json.loads(line)
    n = len(lanes)
    bias = array("i", [lane[0] for lane in lanes])
    mp = array("i", [lane[1] for lane in lanes])
    sp = array("i", [lane[2] for lane in lanes])
    vr.prepare(bias, mp, sp, 0, n)
    count = len(accs) // n
    for p in range(count):
        for k in range(n):
            # The kernels store the sum, bias included, modulo 2**32.
            v = (accs[p * n + k] + lanes[k][0]) & 0xFFFFFFFF
            vr.ACCS[p * vr.GROUP + k] = v - (1 << 32) if v >= 1 << 31 else v
    out = bytearray(count * n)
    qa = array("i", [lanes[0][3], lanes[0][4], lanes[0][5]])
    vr.requant(0, 0, count, n, out, 0, n, qa, 0)
    print(bytes(out).hex())
"""


def _cases(rng):
    """Lines of (lanes, accumulators): lane = (bias, mult, shift, out_off, lo, hi)."""
    cases = []
    for _ in range(60):
        n = int(rng.integers(1, GROUP + 1))
        count = int(rng.integers(1, CHUNK + 1))
        out_off = int(rng.integers(-128, 128))
        lo = int(rng.integers(-128, 60))
        hi = int(rng.integers(lo, 128))
        lanes, accs = [], []
        ties = []
        for _k in range(n):
            mult = int(rng.choice(EDGE_MULTS)) if rng.random() < 0.3 else \
                int(rng.integers(1 << 30, 1 << 31))
            shift = int(rng.integers(-31, 1)) if rng.random() < 0.8 else \
                int(rng.integers(1, 11))
            bias = int(rng.choice([0, 1 << 20, -(1 << 20), int(rng.integers(-65536, 65536))]))
            # Rounding ties: with m = 2**30 (SRDHM halves) or 2**31 - 1 (SRDHM keeps),
            # accumulators (2j + 1) << rs (+1 when halved) and their neighbours land on
            # and beside the right shift's halves, with outputs inside the clamp.
            ties.append(rng.random() < 0.4)
            if ties[-1]:
                mult = [1 << 30, INT32_MAX][int(rng.integers(0, 2))]
                shift = -int(rng.integers(0, 24))
            lanes.append([bias, mult, shift, out_off, lo, hi])
        for _p in range(count):
            for k in range(n):
                pick = rng.random()
                if ties[k]:
                    rs = -lanes[k][2] + (1 if lanes[k][1] == 1 << 30 else 0)
                    acc = ((2 * int(rng.integers(-100, 100)) + 1) << rs >> 1) \
                        + int(rng.integers(-2, 3)) - lanes[k][0]
                elif pick < 0.4:
                    acc = int(rng.choice(EDGE_ACCS)) - lanes[k][0]
                elif pick < 0.7:
                    acc = int(rng.integers(-(1 << 21), 1 << 21))
                else:
                    acc = int(rng.integers(INT32_MIN, INT32_MAX))
                total = max(INT32_MIN, min(INT32_MAX, acc + lanes[k][0]))
                shift = lanes[k][2]
                if shift > 0:  # keep acc << shift inside int32, as TFLite defines it
                    total = max(-(1 << (31 - shift)), min((1 << (31 - shift)) - 1, total))
                accs.append(total - lanes[k][0])
        cases.append((lanes, accs))
    return cases


def _expected(lanes, accs):
    n = len(lanes)
    out = bytearray()
    for p in range(len(accs) // n):
        for k, (bias, mult, shift, out_off, lo, hi) in enumerate(lanes):
            value = mbqm(accs[p * n + k] + bias, mult, shift) + out_off
            out.append(max(lo, min(hi, value)) & 0xFF)
    return bytes(out)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_requant_matches_spec_at_its_method_edges(seed, micropython, tmp_path):
    cases = _cases(np.random.default_rng([seed, 2026]))
    path = tmp_path / "cases.jsonl"
    path.write_text("".join(json.dumps(case) + "\n" for case in cases))
    lines = micropython.run(_SCRIPT.format(path=str(path))).stdout.split()
    assert len(lines) == len(cases)
    for index, ((lanes, accs), line) in enumerate(zip(cases, lines)):
        got, want = bytes.fromhex(line), _expected(lanes, accs)
        n = len(lanes)
        for j, (a, b) in enumerate(zip(got, want)):
            if a != b:
                k = j % n
                bias, mult, shift, out_off, lo, hi = lanes[k]
                pytest.fail(f"seed {seed} case {index}: acc {accs[j]} + bias {bias}, mult "
                            f"{mult}, shift {shift}, offset {out_off}, clamp [{lo}, {hi}]: "
                            f"viper {a}, spec {b}")
        assert got == want
