"""The math kernels' C (natmod/kernels/lookup.c, binary.c, mean.c) outside MicroPython, under
AddressSanitizer and UBSan (SSE2 and portable builds): bit-exact with the pure-Python spec on
the random geometries of tests/geometries_math.py, refusing inconsistent argument blocks
without writing, and never reading or writing outside a buffer whatever the block says."""

import struct
from array import array

import numpy as np
import pytest
from geometries_math import GENERATORS
from test_native_kernels import ENV, KERNELS, ROOT, SANITIZE, _build

from minerva import math_py as kernels_py

OPS = ["lookup", "binary", "mean", "quantize_int16"]
N_ARGS = {"lookup": 1, "binary": 25, "mean": 9, "quantize_int16": 5}
SENTINEL = 0x5A
EXTREMES = [-(2**31), -(2**30), -256, -129, -128, -32, -31, -1, 0, 1, 2, 15, 16, 20, 21, 30,
            31, 127, 128, 255, 256, 2**23, 2**30, 2**31 - 1]


@pytest.fixture(scope="module", params=["simd", "portable"])
def driver(request, tmp_path_factory):
    import shutil

    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed (needed to build the sanitizer driver)")
    tmp = tmp_path_factory.mktemp("native_math")
    flags = ["-DMNV_PORTABLE"] if request.param == "portable" else []
    exe = tmp / "math_driver"
    _build([gcc, *SANITIZE, "-std=c99", "-Wall", "-Wextra", "-Werror", f"-I{KERNELS}", *flags,
            *map(str, sorted(KERNELS.glob("*.c"))), str(ROOT / "tests/native/math_driver.c"),
            "-o", str(exe)])
    return [str(exe)]


def _run(driver, calls):
    """calls: (op, args, [bytes ...], out_nbytes) -> [(rc, out bytes)] from one process."""
    import subprocess

    parts = []
    for op, args, bufs, out_nbytes in calls:
        parts.append(struct.pack("<II", OPS.index(op), len(args)))
        parts.append(struct.pack(f"<{len(args)}i", *args))
        parts.append(struct.pack("<I", len(bufs)))
        for raw in bufs:
            parts.append(struct.pack("<i", len(raw)) + raw)
        parts.append(struct.pack("<I", out_nbytes))
    proc = subprocess.run(driver, input=b"".join(parts), capture_output=True, env=ENV,
                          timeout=300)
    assert proc.returncode == 0 and not proc.stderr, proc.stderr.decode(errors="replace")
    answers, pos = [], 0
    for *_, out_nbytes in calls:
        (rc,) = struct.unpack_from("<i", proc.stdout, pos)
        answers.append((rc, proc.stdout[pos + 4:pos + 4 + out_nbytes]))
        pos += 4 + out_nbytes
    assert pos == len(proc.stdout)
    return answers


def _spec(op, bufs, args, out_nbytes):
    out = array("b", bytes(out_nbytes))
    getattr(kernels_py, op)(*bufs, out, array("i", args))
    return out.tobytes()


def _call(case):
    op, bufs, args, (_, out_len) = case
    return op, args, [array(t, v).tobytes() for t, v in bufs], out_len


@pytest.mark.parametrize("kernel", OPS)
def test_random_geometries_match_spec(driver, kernel):
    rng = np.random.default_rng(17)
    cases = [GENERATORS[kernel](rng) for _ in range(300)]
    answers = _run(driver, [_call(c) for c in cases])
    for case, (rc, got) in zip(cases, answers):
        op, bufs, args, (_, out_len) = case
        assert rc == 0, f"{op} refused {args}"
        assert got == _spec(op, [array(t, v) for t, v in bufs], args, out_len), args


def _refusals():
    rng = np.random.default_rng(3)
    calls = []
    for kernel in OPS:
        for _ in range(10):
            op, args, bufs, out_len = _call(GENERATORS[kernel](rng))
            calls.append((op, args[:-1], bufs, out_len))
            calls.append((op, args, bufs, out_len + 1))
            calls.append((op, args, bufs, max(out_len - 1, 0)))
            shorter = [b[:-2] if len(b) > 2 else b for b in bufs]
            if shorter != bufs:
                calls.append((op, args, shorter, out_len))
    for index, value in ((0, 5), (1, 0), (8, 1 << 20), (13, 129), (16, 21), (17, -1),
                         (23, 100), (24, 128)):
        op, args, bufs, out_len = _call(GENERATORS["binary"](rng))
        while args[0] > 1:  # an ADD or SUB, whose every parameter is checked
            op, args, bufs, out_len = _call(GENERATORS["binary"](rng))
        if index == 23:
            args[24] = 0
        bad = list(args)
        bad[index] = value
        calls.append((op, bad, bufs, out_len))
    return calls


def test_inconsistent_blocks_are_refused_without_writing(driver):
    calls = _refusals()
    for call, (rc, out) in zip(calls, _run(driver, calls)):
        assert rc < 0, f"{call[0]} {call[1]}: accepted"
        assert out == bytes([SENTINEL]) * call[3], f"{call[0]}: wrote before refusing"


def _garbage(rng, op):
    args = [int(rng.choice(EXTREMES)) if rng.random() < 0.3 else int(rng.integers(-3, 9))
            for _ in range(N_ARGS[op] if rng.random() < 0.95 else int(rng.integers(0, 30)))]
    n = int(rng.integers(0, 300))
    bufs = [rng.integers(-128, 128, n).astype(np.int8).tobytes()]
    if op in ("lookup", "binary"):
        bufs.append(rng.integers(-128, 128, 256 if op == "lookup" else int(rng.integers(0, 300)))
                    .astype(np.int8).tobytes())
    if op == "quantize_int16":
        bufs = [rng.integers(-32768, 32768, n).astype(np.int16).tobytes()]
    out = n if rng.random() < 0.5 else int(rng.integers(0, 300))
    return op, args, bufs, out


def test_garbage_blocks_stay_inside_buffers_and_agree_with_spec(driver):
    # Thousands of blocks of extreme values: the sanitizers see no access outside a buffer,
    # and whatever the C accepts, the spec computes to the same bytes.
    rng = np.random.default_rng(9)
    calls = [_garbage(rng, OPS[i % 4]) for i in range(4000)]
    accepted = 0
    for (op, args, bufs, out_len), (rc, got) in zip(calls, _run(driver, calls)):
        if rc != 0:
            assert got == bytes([SENTINEL]) * out_len
            continue
        accepted += 1
        typed = [array("h" if op == "quantize_int16" else "b", b) for b in bufs]
        assert got == _spec(op, typed, args, out_len), (op, args)
    assert 0 < accepted < len(calls)
