"""The natmod run plan (natmod/kernels/plan.c, device/minerva/plan.py): a whole model as one
int32 table run by one C call. Differential against the per-op Python loop over random
FULLY_CONNECTED / CONV_2D / DEPTHWISE_CONV_2D / pooling chains (host C under ASan/UBSan, and
whole capsules on the MicroPython unix port), and refusal of malformed tables before any op
runs. A failing chain prints its one-line reproduction."""

import struct
from array import array

import numpy as np
import pytest
from kernel_cases import conv_case, fc_case, pool_case
from test_native_kernels import ENV, KERNELS, ROOT, _compile, _out_nbytes

from minerva import kernels_py

OP_CODES = {"conv_2d": 1, "depthwise_conv_2d": 2, "fully_connected": 3, "average_pool_2d": 4,
            "max_pool_2d": 5}
WEIGHTED = ("conv_2d", "depthwise_conv_2d", "fully_connected")


def random_chain(seed):
    """Window layers on a random (h, w, c) input, then fully connected layers."""
    rng = np.random.default_rng(seed)
    h, w, c = (int(v) for v in rng.integers(1, 9, 3))
    cases = []
    for _ in range(int(rng.integers(0, 4))):
        kind = str(rng.choice(["conv", "depthwise", "pool"]))
        k_h, k_w = int(rng.integers(1, min(h, 3) + 1)), int(rng.integers(1, min(w, 3) + 1))
        stride = int(rng.integers(1, 3))
        if kind == "pool":
            op = str(rng.choice(["average_pool_2d", "max_pool_2d"]))
            case = pool_case("pool", rng, op, in_h=h, in_w=w, chans=c, f_h=k_h, f_w=k_w,
                             stride=stride)
            h, w = case["args"][4], case["args"][5]
        else:
            case = conv_case(kind, rng, in_h=h, in_w=w, in_c=c, out_c=int(rng.integers(1, 9)),
                             k_h=k_h, k_w=k_w, stride=(stride, stride),
                             pad=str(rng.choice(["same", "valid"])), bias=rng.random() < 0.8,
                             depth_mult=int(rng.integers(1, 3)) if kind == "depthwise"
                             else None)
            h, w, c = case["args"][4], case["args"][5], case["args"][6]
        cases.append(case)
    depth = h * w * c
    for _ in range(int(rng.integers(1, 4))):
        out_c = int(rng.integers(1, 40))
        cases.append(fc_case("fc", rng, batches=1, depth=depth, out_c=out_c,
                             bias=rng.random() < 0.8,
                             f_off=int(rng.integers(-3, 4)) if rng.random() < 0.1 else 0))
        depth = out_c
    return cases


def _bytes(spec):
    return None if spec is None else bytes(array(spec[0], spec[1]))


def build_plan(cases, seed):
    """(regions [(bytes, writable)], table words, layout) for ``cases`` run in order.

    Activations alternate between two arena slots (region 0); weights lie in one blob
    (region 1, as a capsule's bytes in place) or, at random, in buffers of their own.
    ``layout`` lists every operand as (word index, op, operand number, is output)."""
    rng = np.random.default_rng(seed + 1)
    sizes = [len(cases[0]["inputs"][0][1])] + [_out_nbytes(c) for c in cases]
    slot = max(sizes)
    arena = bytearray(rng.integers(0, 256, 2 * slot, dtype=np.uint8).tobytes())
    arena[:sizes[0]] = _bytes(cases[0]["inputs"][0])
    blob, own, words, layout = bytearray(), [], [], []

    def operand(region, offset, nbytes, op, k, output=False):
        layout.append((len(words), op, k, output))
        words.extend((region, offset, nbytes))

    for n, case in enumerate(cases):
        words.extend((OP_CODES[case["op"]], len(case["args"]), *case["args"]))
        operand(0, (n % 2) * slot, sizes[n], case["op"], 0)
        for k, spec in enumerate(case["inputs"][1:], 1):
            raw = _bytes(spec)
            if raw is None:
                layout.append((len(words), case["op"], k, False))
                words.extend((-1, 0, 0))
            elif rng.random() < 0.3:
                own.append(raw)
                operand(1 + len(own), 0, len(raw), case["op"], k)
            else:
                blob.extend(bytes(-len(blob) % 4))
                operand(1, len(blob), len(raw), case["op"], k)
                blob.extend(raw)
        operand(0, ((n + 1) % 2) * slot, sizes[n + 1], case["op"], len(case["inputs"]), True)
    regions = [(bytes(arena), True), (bytes(blob), False)] + [(r, False) for r in own]
    return regions, words, layout


def python_loop(cases):
    """The per-op loop with the pure-Python kernels (the spec): the last two outputs."""
    x = array("b", cases[0]["inputs"][0][1])
    outs = [bytes(x)]
    for case in cases:
        out = array("b", bytes(_out_nbytes(case)))
        inputs = [None if s is None else array(s[0], s[1]) for s in case["inputs"][1:]]
        getattr(kernels_py, case["op"])(x, *inputs, out, array("i", case["args"]))
        x = out
        outs.append(bytes(out))
    return outs[-2:]


@pytest.fixture(scope="module", params=["simd", "portable"])
def plan_driver(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("plan")
    flags = ["-DMNV_PORTABLE"] if request.param == "portable" else []
    sources = [p for p in sorted(KERNELS.glob("*.c")) if p.name not in ("ed25519.c",
                                                                        "sha512.c")]
    return _compile("plan_driver", [*flags, *sources, ROOT / "tests/native/plan_driver.c"],
                    tmp)


def run_plans(driver, plans):
    """Run (regions, words) plans in one driver process: [(rc, failed, [region bytes])]."""
    import subprocess

    parts = []
    for regions, words in plans:
        parts.append(struct.pack("<I", len(regions)))
        for data, writable in regions:
            parts.append(struct.pack("<II", len(data), int(writable)) + data)
        parts.append(struct.pack(f"<I{len(words)}i", len(words), *words))
    proc = subprocess.run([str(driver)], input=b"".join(parts), capture_output=True, env=ENV,
                          timeout=300)
    assert proc.returncode == 0 and not proc.stderr, proc.stderr.decode(errors="replace")
    answers, pos = [], 0
    for regions, _ in plans:
        rc, failed = struct.unpack_from("<iI", proc.stdout, pos)
        pos += 8
        after = []
        for data, _ in regions:
            after.append(proc.stdout[pos:pos + len(data)])
            pos += len(data)
        answers.append((rc, failed, after))
    assert pos == len(proc.stdout)
    return answers


def _last_two(cases, arena):
    sizes = [len(cases[0]["inputs"][0][1])] + [_out_nbytes(c) for c in cases]
    slot = len(arena) // 2
    n = len(cases)
    return [arena[((n - 1) % 2) * slot:][:sizes[n - 1]], arena[(n % 2) * slot:][:sizes[n]]]


def test_run_plan_matches_python_loop_on_random_chains(plan_driver):
    seeds = range(300)
    chains = [random_chain(s) for s in seeds]
    plans = [build_plan(cases, s)[:2] for s, cases in zip(seeds, chains)]
    for seed, cases, (rc, failed, after) in zip(seeds, chains, run_plans(plan_driver, plans)):
        want = python_loop(cases)
        ops = " ".join(f"{c['op']}{c['args']}" for c in cases)
        assert rc == 0 and _last_two(cases, after[0]) == want, (
            f"repro: tests/test_run_plan.py random_chain({seed}) rc {rc} at record {failed}: "
            f"{ops}")
        assert after[1:] == [data for data, _ in plans[seed][0][1:]], "a weights region changed"


def _mutations(words, layout, regions, rng):
    """Tables each broken in one way the runner must see before running any op."""
    starts = [0]
    while True:
        n_params = words[starts[-1] + 1]
        count = 6 if words[starts[-1]] in (1, 2, 3) else 2
        end = starts[-1] + 2 + n_params + 3 * count
        if end >= len(words):
            break
        starts.append(end)
    record = starts[int(rng.integers(len(starts)))]
    at, op, k, output = layout[int(rng.integers(len(layout)))]
    region, offset, nbytes = words[at:at + 3]
    size = len(regions[region][0]) if region >= 0 else 0
    broken = []

    def put(index, *values):
        table = list(words)
        table[index:index + len(values)] = values
        broken.append((f"words[{index}:] = {values}", table))

    put(record, int(rng.choice([0, 9, 10, 12, 13, 23, 99, -1, 2**31 - 1])))
    put(record + 1, int(rng.choice([-1, 26, 2**31 - 1])))
    broken.append(("last word cut", list(words[:-1])))
    if region >= 0:
        put(at, int(rng.choice([len(regions), -2, 2**31 - 1])))
        put(at + 1, size - nbytes + int(rng.integers(1, 5)))
        put(at + 1, int(rng.choice([-1, -(2**31), 2**31 - 1])))
        put(at + 2, size - offset + int(rng.integers(1, 5)))
        put(at + 2, -1)
        if (op in WEIGHTED and 2 <= k <= 4) and nbytes >= 4:
            put(at + 1, offset + int(rng.integers(1, 4)), nbytes - 4)
        if output:
            put(at, 1, 0, min(nbytes, len(regions[1][0])))
    if region != -1 and (k != 2 or op not in WEIGHTED):
        put(at, -1)
    return broken


def test_run_plan_refuses_malformed_tables_before_running(plan_driver):
    rng = np.random.default_rng(11)
    plans, expected = [], []
    for seed in range(60):
        cases = random_chain(seed)
        regions, words, layout = build_plan(cases, seed)
        for what, table in _mutations(words, layout, regions, rng):
            plans.append((regions, table))
            expected.append(f"random_chain({seed}) with {what}")
    for what, (regions, _), (rc, failed, after) in zip(expected, plans,
                                                       run_plans(plan_driver, plans)):
        assert rc < 0, f"{what}: the malformed table ran (record {failed})"
        assert after == [data for data, _ in regions], f"{what}: a refused table wrote"


def test_run_plan_survives_hostile_params(plan_driver):
    # Params are the kernels' to check: whatever they say, no access leaves a region (the
    # sanitizers would report it) and weights regions stay untouched.
    rng = np.random.default_rng(12)
    plans = []
    for seed in range(80):
        regions, words, layout = build_plan(random_chain(seed), seed)
        table = list(words)
        for _ in range(3):
            n_params = table[1]
            i = 2 + int(rng.integers(n_params))
            table[i] = int(rng.choice([-1, 0, 1, 2, 127, 128, -(2**31), 2**31 - 1]))
        plans.append((regions, table))
    for (regions, _), (rc, _, after) in zip(plans, run_plans(plan_driver, plans)):
        assert rc <= 0
        assert after[1:] == [data for data, _ in regions[1:]]


# -- whole capsules on the MicroPython unix port ---------------------------------------------

def random_chain_model(seed):
    """A random int8 .tflite chain of window layers then fully connected ones (opmodels)."""
    from opmodels import Net, finish

    rng = np.random.default_rng(seed)
    net = Net(seed)
    shape = [1, *(int(v) for v in rng.integers(2, 9, 2)), int(rng.integers(1, 6))]
    x = net.input(tuple(shape))
    for _ in range(int(rng.integers(0, 4))):
        kind = str(rng.choice(["conv", "depthwise", "pool"]))
        k = int(rng.integers(1, min(shape[1], shape[2], 3) + 1))
        act = str(rng.choice(["NONE", "RELU", "RELU6"]))
        if kind == "conv":
            x = net.conv2d(x, int(rng.integers(1, 9)), k, stride=int(rng.integers(1, 3)),
                           activation=act, per_channel=rng.random() < 0.5)
        elif kind == "depthwise":
            x = net.depthwise_conv2d(x, int(rng.integers(1, 3)), k, activation=act)
        else:
            x = net.pool(str(rng.choice(["MAX_POOL_2D", "AVERAGE_POOL_2D"])), x, k)
        shape = list(net.shapes[x])
    depth = int(np.prod(shape))
    for _ in range(int(rng.integers(1, 4))):
        x = net.fully_connected(x, int(rng.integers(1, 40)), depth=depth,
                                activation=str(rng.choice(["NONE", "RELU"])))
        depth = net.shapes[x][-1]
    return finish(f"chain{seed}", net, seed)


_MP_COMPARE = """
import minerva
from array import array
for seed, path, sizes, data in CASES:
    plan = minerva.load(path, kernels="natmod")
    loop = minerva.load(path, kernels="python")
    assert plan._plan is not None, "seed %d: natmod did not build a plan" % seed
    at = 0
    for n in sizes:
        x = data[at:at + n]
        at += n
        if bytes(plan.run(x)) != bytes(loop.run(x)):
            print("MISMATCH", seed)
    print("DONE", seed)
"""


def test_natmod_plan_matches_python_loop_on_random_chain_capsules(micropython, tmp_path):
    from test_natmod import build_natmod

    from minerva_packager.capsule.pack import pack_file

    natmod = build_natmod("x64")
    seeds = range(40)
    cases = []
    for seed in seeds:
        model = random_chain_model(seed)
        src, cap = tmp_path / f"chain{seed}.tflite", tmp_path / f"chain{seed}.cap"
        src.write_bytes(model.tflite)
        pack_file(src, cap)
        xs = [np.ascontiguousarray(xs[0]).tobytes() for xs in model.inputs(count=2, seed=seed)]
        cases.append((seed, str(cap), [len(x) for x in xs], b"".join(xs)))
    proc = micropython.run(f"CASES = {cases!r}\n" + _MP_COMPARE, heapsize="8M",
                           extra_path=[natmod.parent])
    done = [line for line in proc.stdout.splitlines() if line.startswith("DONE")]
    wrong = [int(line.split()[1]) for line in proc.stdout.splitlines()
             if line.startswith("MISMATCH")]
    assert len(done) == len(seeds), proc.stdout + proc.stderr
    assert not wrong, (f"repro: random_chain_model({wrong[0]}) in tests/test_run_plan.py: "
                       "natmod plan differs from the Python loop")


_MP_REFUSE = """
import minerva_nat
from array import array
arena = bytearray(64)
weights = bytes(8 * [1]) + bytes(array("i", [1 << 30, 1 << 30, 0, 0]))
# FULLY_CONNECTED 1x4 -> 2: input arena[0:4], filter weights[0:8], no bias, mult/shift
# weights[8:16]/[16:24], output arena[8:10].
good = [3, 8, 1, 4, 2, 0, 0, 0, -128, 127, 0, 0, 4, 1, 0, 8, -1, 0, 0, 1, 8, 8, 1, 16, 8,
        0, 8, 2]
tables = (("good", good), ("op", [99] + good[1:]), ("region", good[:13] + [5] + good[14:]),
          ("offset", good[:14] + [62] + good[15:]), ("aligned", good[:20] + [9] + good[21:]),
          ("output", good[:25] + [1] + good[26:]), ("short", good[:-1]))
for name, words in tables:
    try:
        minerva_nat.run_plan(array("i", words), (arena, weights))
        print(name, "ran")
    except ValueError as exc:
        print(name, "refused:", exc)
for regions in ((arena,), (arena, 5), [arena, weights]):
    try:
        minerva_nat.run_plan(array("i", good), regions)
        print("regions", "ran")
    except (ValueError, TypeError) as exc:
        print("regions", "refused:", type(exc).__name__)
"""


def test_natmod_run_plan_refuses_malformed_tables(micropython):
    from test_natmod import build_natmod

    natmod = build_natmod("x64")
    out = micropython.run(_MP_REFUSE, extra_path=[natmod.parent]).stdout.splitlines()
    assert out[0] == "good ran", out
    for line in out[1:7]:
        assert "refused: minerva_nat: run plan refused" in line, line
    # One region where the table names two; a region that is no buffer; a list is accepted.
    assert out[7:] == ["regions refused: ValueError", "regions refused: TypeError",
                       "regions ran"], out
