"""The plain C kernels outside MicroPython, driven with the generated realistic and hostile
vectors (tests/kernel_cases.py): compiled for the host with AddressSanitizer and UBSan (both
the SSE2 and the portable inner loops), and cross-compiled for Cortex-M0 and Cortex-M4F and
run under qemu-arm. Every build is bit-exact with the pure-Python kernels, raises no
sanitizer report, and refuses argument blocks inconsistent with its buffers without a
write."""

import os
import shutil
import struct
import subprocess
from array import array

import pytest
from kernel_cases import fast_path_cases, hostile_cases, random_cases, realistic_cases

from minerva import kernels_py

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
KERNELS = ROOT / "natmod" / "kernels"
SANITIZE = ["-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
OPS = ["conv_2d", "depthwise_conv_2d", "fully_connected", "average_pool_2d", "max_pool_2d",
       "add", "reshape", "softmax", "quantize", "dequantize", "gather", "concatenation"]
SENTINEL = 0x5A
ENV = {**os.environ, "ASAN_OPTIONS": "detect_leaks=0", "UBSAN_OPTIONS": "print_stacktrace=1"}


def _compile(out, sources, tmp):
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed (needed to build the sanitizer driver)")
    _build([gcc, *SANITIZE, "-std=c99", "-Wall", "-Wextra", "-Werror", f"-I{KERNELS}",
            *map(str, sources), "-o", str(tmp / out)])
    return tmp / out


def _build(cmd, cwd=None):
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout}{proc.stderr}"


ARM_FLAGS = {
    # As the native module builds them (no libgcc: armv6m links natmod/armv6m_runtime.c).
    "armv6m": ["-mcpu=cortex-m0", "-fno-jump-tables"],
    "armv7emsp": ["-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard",
                  "-DMNV_WITH_FLOAT"],
}


# Float kernels, built only where the FPU does the arithmetic (natmod/Makefile FLOAT_KERNELS):
# armv6m would need libgcc's soft-float, which a native module cannot link.
FLOAT_SOURCES = ("quantize.c", "train.c")


def _arm_driver(arch, tmp):
    gcc, qemu = shutil.which("arm-none-eabi-gcc"), shutil.which("qemu-arm")
    if gcc is None or qemu is None:
        pytest.skip(f"{arch}: needs arm-none-eabi-gcc and qemu-arm (Debian gcc-arm-none-eabi, "
                    "qemu-user) to run the microcontroller build of the kernels")
    sources = sorted(KERNELS.glob("*.c"))
    if arch == "armv6m":
        sources = [p for p in sources if p.name not in FLOAT_SOURCES]
        sources.append(ROOT / "natmod/armv6m_runtime.c")
    exe = tmp / f"driver_{arch}"
    _build([gcc, "-mthumb", *ARM_FLAGS[arch], "-std=c99", "-O2", "-Wall", "-Werror",
            "-fno-tree-loop-distribute-patterns", "-ffreestanding", "-nostdlib", "-static",
            f"-I{KERNELS}", *map(str, sources), str(ROOT / "tests/native/arm_driver.c"), "-o",
            str(exe)])
    return {"cmd": [qemu, str(exe)], "float": arch != "armv6m", "sanitized": False}


# "simd": the x64 build's SSE2 inner loops; "portable": the plain C the microcontroller builds
# run, compiled here with -DMNV_PORTABLE; both under the sanitizers. "armv6m"/"armv7emsp": the
# same C cross-compiled as for the boards and run under qemu-arm (no sanitizers there).
@pytest.fixture(scope="module", params=["simd", "portable", "armv6m", "armv7emsp"])
def driver(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("native")
    if request.param in ARM_FLAGS:
        return _arm_driver(request.param, tmp)
    flags = ["-DMNV_PORTABLE"] if request.param == "portable" else []
    exe = _compile("driver", [*flags, *sorted(KERNELS.glob("*.c")),
                              ROOT / "tests/native/driver.c"], tmp)
    return {"cmd": [str(exe)], "float": True, "sanitized": True}


def _buffer(spec):
    if spec is None:
        return None
    typecode, values = spec
    return array(typecode, values)


def _encode(op, args, buffers, out_nbytes):
    parts = [struct.pack("<II", OPS.index(op), len(args)), struct.pack(f"<{len(args)}i", *args),
             struct.pack("<I", len(buffers))]
    for buf in buffers:
        raw = b"" if buf is None else bytes(buf)
        parts.append(struct.pack("<i", -1 if buf is None else len(raw)) + raw)
    parts.append(struct.pack("<I", out_nbytes))
    return b"".join(parts)


def run_driver(driver, calls):
    """Run (op, args, buffers, out_nbytes) calls in one driver process: [(rc, out bytes)]."""
    stdin = b"".join(_encode(*call) for call in calls)
    proc = subprocess.run(driver["cmd"], input=stdin, capture_output=True, env=ENV,
                          timeout=300)
    assert proc.returncode == 0 and not proc.stderr, proc.stderr.decode(errors="replace")
    answers, pos = [], 0
    for _, _, _, out_nbytes in calls:
        (rc,) = struct.unpack_from("<i", proc.stdout, pos)
        answers.append((rc, proc.stdout[pos + 4:pos + 4 + out_nbytes]))
        pos += 4 + out_nbytes
    assert pos == len(proc.stdout)
    return answers


def reference_output(case):
    typecode, count = case["out"]
    out = array(typecode, [0] * count)
    getattr(kernels_py, case["op"])(*map(_buffer, case["inputs"]), out,
                                    array("i", case["args"]))
    return bytes(out)


def _out_nbytes(case):
    typecode, count = case["out"]
    return count * array(typecode).itemsize


CASES = realistic_cases(0) + realistic_cases(1) + hostile_cases(0)


@pytest.fixture(scope="module")
def answers(driver):
    calls = [(c["op"], c["args"], [_buffer(b) for b in c["inputs"]], _out_nbytes(c))
             for c in CASES]
    return dict(zip((id(c) for c in CASES), run_driver(driver, calls)))


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_kernel_matches_reference(case, answers, driver):
    if case["op"] in ("quantize", "dequantize") and not driver["float"]:
        pytest.skip("armv6m builds no float kernels (the binding calls kernels_py for these)")
    rc, got = answers[id(case)]
    assert rc == 0, f"{case['name']}: kernel refused a consistent argument block ({rc})"
    if case["exact"]:
        assert got == reference_output(case), case["name"]
    elif case["op"] in ("conv_2d", "depthwise_conv_2d", "fully_connected"):
        # int32 overflow in TFLite's arithmetic: the C wraps; it must still respect the range.
        lo, hi = case["args"][-3:-1] if case["op"] == "depthwise_conv_2d" else case["args"][-2:]
        assert all(lo <= v <= hi for v in array("b", got))


def test_random_geometry_matches_reference(driver):
    cases = [c for c in random_cases(7, 800)
             if driver["float"] or c["op"] not in ("quantize", "dequantize")]
    calls = [(c["op"], c["args"], [_buffer(b) for b in c["inputs"]], _out_nbytes(c))
             for c in cases]
    wrong = [(c["name"], rc) for c, (rc, got) in zip(cases, run_driver(driver, calls))
             if rc != 0 or got != reference_output(c)]
    assert not wrong, f"{len(wrong)} of {len(cases)} differ: {wrong[:10]}"


def test_fast_path_geometry_matches_reference(driver):
    # The fast paths (the Cortex-M0 asm in the armv6m build) over random geometries: a
    # failure names the case; rerun it with fast_path_cases(seed, count)[index].
    seed, count = 3, 600
    cases = fast_path_cases(seed, count)
    calls = [(c["op"], c["args"], [_buffer(b) for b in c["inputs"]], _out_nbytes(c))
             for c in cases]
    wrong = [(k, c["name"], c["args"]) for k, (c, (rc, got))
             in enumerate(zip(cases, run_driver(driver, calls)))
             if rc != 0 or got != reference_output(c)]
    assert not wrong, (f"{len(wrong)} of {len(cases)} differ; first: "
                       f"fast_path_cases({seed}, {count})[{wrong[0][0]}] {wrong[0][1:]}")


N_ARGS = {"conv_2d": 19, "depthwise_conv_2d": 20, "fully_connected": 8, "average_pool_2d": 14,
          "max_pool_2d": 14, "add": 13, "reshape": 1, "softmax": 5, "quantize": 6,
          "dequantize": 3}
EXTREMES = [INT32_MIN, INT32_MIN + 1, -(2**30), -129, -1, 0, 1, 2, 127, 128, 2**30, INT32_MAX]


def _garbage_call(rng, op):
    """An argument block of small and extreme values, with buffers sized to match its dims
    half of the time, so that many blocks pass the checks with hostile values."""
    n_args = N_ARGS[op] if rng.random() < 0.9 else int(rng.integers(0, 25))
    args = [int(rng.choice(EXTREMES)) if rng.random() < 0.3 else int(rng.integers(-3, 9))
            for _ in range(n_args)]
    dims = [max(1, min(a, 4)) for a in args]
    if rng.random() < 0.5 and n_args == N_ARGS[op]:
        args[:len(dims)] = [d if i < 13 else a for i, (d, a) in enumerate(zip(dims, args))]
        if op == "depthwise_conv_2d":
            args[19] = int(rng.integers(1, 4))
            args[6] = args[3] * args[19]
    sizes = {"conv_2d": (0, 3, 6), "depthwise_conv_2d": (0, 3, 6),
             "fully_connected": (0, 1, 2)}.get(op)

    def int8s(n):
        return array("b", rng.integers(-128, 128, size=max(n, 0)).tolist())

    def int32s(n):
        return array("i", [int(rng.choice(EXTREMES)) for _ in range(max(n, 0))])

    def prod(*vals):
        total = 1
        for v in vals:
            total *= max(v, 1) if v < 64 else 64
        return min(total, 4096)

    a = args + [1] * 20
    if sizes is not None:
        n_in = prod(*a[:4]) if op != "fully_connected" else prod(a[0], a[1])
        n_f = {"conv_2d": prod(a[6], a[7], a[8], a[3]), "fully_connected": prod(a[2], a[1]),
               "depthwise_conv_2d": prod(a[7], a[8], a[6])}[op]
        oc = min(max(a[sizes[2]], 1), 64)
        shift = array("i", rng.integers(-31, 31, size=oc).tolist())
        bufs = [int8s(n_in), int8s(n_f), int32s(oc) if rng.random() < 0.7 else None,
                int32s(oc), shift]
        out = prod(a[0], a[4], a[5], a[6]) if op != "fully_connected" else prod(a[0], a[2])
    elif op == "add":
        bufs, out = [int8s(a[0] % 300), int8s(a[0] % 300)], a[0] % 300
    elif op == "quantize" and a[0] == 0:
        bufs, out = [array("f", rng.normal(0, 1e6, size=a[1] % 100).tolist())], a[1] % 100
    else:
        n = prod(*a[:4]) if op.endswith("pool_2d") else (a[0] * a[1] if op == "softmax"
                                                        else a[0]) % 4096
        bufs, out = [int8s(n)], prod(a[0], a[4], a[5], a[3]) if op.endswith("pool_2d") else n
    item = 4 if op == "dequantize" else 1
    if rng.random() < 0.3:
        out += int(rng.integers(-2, 3))
    return op, args, bufs, max(out, 0) * item


def test_garbage_argument_blocks_stay_inside_buffers(driver):
    # Thousands of blocks full of extreme values: every one is refused or computed, and the
    # sanitizers (or the exact-size buffers under qemu) see no access outside a buffer.
    import numpy as np

    rng = np.random.default_rng(3)
    # (GATHER and CONCATENATION have their own garbage test below.)
    ops = [op for op in N_ARGS if driver["float"] or op not in ("quantize", "dequantize")]
    calls = [_garbage_call(rng, ops[i % len(ops)]) for i in range(3000)]
    answers = run_driver(driver, calls)
    assert len(answers) == len(calls)
    accepted = sum(rc == 0 for rc, _ in answers)
    assert 0 < accepted < len(calls)


def _refusals():
    """Realistic calls made inconsistent one way at a time."""
    calls = []
    for case in realistic_cases(2):
        bufs = [_buffer(b) for b in case["inputs"]]
        out_nbytes = _out_nbytes(case)
        args = case["args"]
        label = case["name"]
        item = array(case["out"][0]).itemsize
        calls.append((f"{label}_short_args", (case["op"], args[:-1], bufs, out_nbytes)))
        calls.append((f"{label}_out_one_short", (case["op"], args, bufs, out_nbytes - item)))
        calls.append((f"{label}_out_one_long", (case["op"], args, bufs, out_nbytes + item)))
        for i, buf in enumerate(bufs):
            if buf is not None and len(buf) > 1:
                calls.append((f"{label}_input{i}_one_short",
                              (case["op"], args, bufs[:i] + [buf[:-1]] + bufs[i + 1:],
                               out_nbytes)))
        if case["op"] in ("conv_2d", "depthwise_conv_2d"):
            for index, value in ((9, 0), (11, 0), (17, 128), (18, -129), (1, -3), (14, 1 << 30)):
                bad = list(args)
                bad[index] = value
                calls.append((f"{label}_arg{index}_{value}", (case["op"], bad, bufs,
                                                              out_nbytes)))
            bad_shift = bufs[:4] + [array("i", [31] * len(bufs[4]))]
            calls.append((f"{label}_shift31", (case["op"], args, bad_shift, out_nbytes)))
    return calls


def test_inconsistent_arguments_are_refused_without_writing(driver):
    calls = _refusals()
    assert len(calls) > 150
    for (label, call), (rc, out) in zip(calls, run_driver(driver, [c for _, c in calls])):
        assert rc < 0, f"{label}: accepted"
        assert out == bytes([SENTINEL]) * call[3], f"{label}: wrote before refusing"


def test_armv6m_runtime_helpers_match_native_arithmetic(tmp_path):
    exe = _compile("runtime", [ROOT / "natmod/armv6m_runtime.c",
                               ROOT / "tests/native/runtime_driver.c"], tmp_path)
    proc = subprocess.run([str(exe)], capture_output=True, text=True, env=ENV, timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith("ok "), proc.stdout + proc.stderr
    assert not proc.stderr


def test_kernel_stack_frames_fit_a_microcontroller(tmp_path):
    # An RP2040 runs MicroPython on a 4 KB C stack: every kernel function's frame in the
    # armv6m build stays under MNV_STACK_BUDGET (natmod/kernels/mnv_fixed.h).
    import re

    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is None:
        pytest.skip("arm-none-eabi-gcc is not installed (Debian gcc-arm-none-eabi)")
    budget = int(re.search(r"#define MNV_STACK_BUDGET (\d+)",
                           (KERNELS / "mnv_fixed.h").read_text()).group(1))
    sources = [p for p in sorted(KERNELS.glob("*.c")) if p.name not in FLOAT_SOURCES]
    _build([gcc, "-mthumb", *ARM_FLAGS["armv6m"], "-std=c99", "-O2", "-fstack-usage",
            "-fno-tree-loop-distribute-patterns", f"-I{KERNELS}", "-c", *map(str, sources)],
           cwd=tmp_path)
    frames = {}
    for su in tmp_path.glob("*.su"):
        for line in su.read_text().splitlines():
            where, size, kind = line.split("\t")
            assert kind == "static", f"{where}: stack use is {kind}"
            frames[where.rsplit(":", 1)[-1]] = int(size)
    assert "mnv_conv_2d" in frames
    too_big = {name: size for name, size in frames.items() if size > budget}
    assert not too_big, f"frames over {budget} bytes: {too_big}"


# -- data movement: GATHER and CONCATENATION (natmod/kernels/gather.c) -------------------------

def _shape_call(case):
    """A tests/geometries_shape.py case as a driver call (CONCATENATION's inputs, one tuple in
    the case, are the driver's buffers)."""
    op, bufs, args, (_, out_len) = case
    if op == "concatenation":
        buffers = [array(t, v) for t, v in bufs[0][1]]
    else:
        buffers = [array(t, v) for t, v in bufs]
    return op, args, buffers, out_len


def test_shape_kernels_match_reference(driver):
    import numpy as np
    from geometries_shape import GENERATORS, kernel_call_args

    from minerva import shape_py

    cases = [gen(np.random.default_rng(seed)) for _, gen in sorted(GENERATORS.items())
             for seed in range(150)]
    for case, (rc, got) in zip(cases, run_driver(driver, [_shape_call(c) for c in cases])):
        call = kernel_call_args(case)
        getattr(shape_py, case[0])(*call)
        assert rc == 0 and got == bytes(call[-2]), case


def _garbage_shape_call(rng):
    """GATHER tables and dims, CONCATENATION sizes, with extreme values half of the time."""
    def pick():
        return int(rng.choice(EXTREMES)) if rng.random() < 0.3 else int(rng.integers(-2, 7))

    if rng.random() < 0.5:
        dims = [max(1, min(pick(), 5)) if rng.random() < 0.8 else pick() for _ in range(4)]
        in_n = max(1, min(pick(), 64)) if rng.random() < 0.8 else pick()
        entries = sum(max(d, 0) for d in dims if d < 64)
        table = [int(rng.choice([-(1 << 29), pick(), int(rng.integers(0, 16))]))
                 for _ in range(entries + int(rng.integers(-1, 2)) if rng.random() < 0.2
                                else entries)]
        out = 1
        for d in dims:
            out *= max(min(d, 64), 0)
        bufs = [array("b", rng.integers(-128, 128, max(min(in_n, 64), 0)).tolist()),
                array("i", table)]
        return "gather", [in_n, *dims, pick()], bufs, max(out + int(rng.integers(-1, 2)), 0)
    count = int(rng.integers(1, 6))
    args = [max(1, min(pick(), 6)) if rng.random() < 0.8 else pick() for _ in range(count + 1)]
    if rng.random() < 0.1:
        args.append(pick())
    sizes = [min(max(args[0], 0), 6) * min(max(a, 0), 6) for a in args[1:count + 1]]
    sizes = [n + int(rng.integers(-1, 2)) if rng.random() < 0.2 else n for n in sizes]
    bufs = [array("b", rng.integers(-128, 128, max(n, 0)).tolist()) for n in sizes]
    return "concatenation", args, bufs, max(sum(sizes), 0)


def test_garbage_shape_blocks_stay_inside_buffers(driver):
    import numpy as np

    rng = np.random.default_rng(11)
    calls = [_garbage_shape_call(rng) for _ in range(3000)]
    answers = run_driver(driver, calls)
    accepted = sum(rc == 0 for rc, _ in answers)
    assert 0 < accepted < len(calls)
    for (op, args, _bufs, out_nbytes), (rc, out) in zip(calls, answers):
        if rc != 0:
            assert out == bytes([SENTINEL]) * out_nbytes, (op, args, "wrote before refusing")


def test_inconsistent_shape_blocks_are_refused_without_writing(driver):
    pad = -(1 << 29)
    x = array("b", range(6))
    calls = {
        "entry_past_input": ("gather", [6, 1, 1, 1, 2, 0], [x, array("i", [0, 0, 0, 0, 6])], 2),
        "negative_entry": ("gather", [6, 1, 1, 1, 2, 0], [x, array("i", [0, 0, 0, 0, -1])], 2),
        "sum_past_input": ("gather", [6, 1, 1, 2, 1, 0], [x, array("i", [0, 0, 3, 0, 3])], 2),
        "pad_value": ("gather", [6, 1, 1, 1, 2, 128], [x, array("i", [0, 0, 0, 0, pad])], 2),
        "short_table": ("gather", [6, 1, 1, 1, 2, 0], [x, array("i", [0, 0, 0, 0])], 2),
        "short_out": ("gather", [6, 1, 1, 1, 2, 0], [x, array("i", [0, 0, 0, 0, 1])], 1),
        "input_size": ("gather", [7, 1, 1, 1, 2, 0], [x, array("i", [0, 0, 0, 0, 1])], 2),
        "concat_second_short": ("concatenation", [2, 3, 2], [x, array("b", [1, 2, 3])], 10),
        "concat_count": ("concatenation", [2, 3, 2], [x], 10),
        "concat_zero": ("concatenation", [2, 3, 0], [x, array("b")], 6),
    }
    for label, (rc, out) in zip(calls, run_driver(driver, list(calls.values()))):
        assert rc < 0, f"{label}: accepted"
        assert out == bytes([SENTINEL]) * calls[label][3], f"{label}: wrote before refusing"
