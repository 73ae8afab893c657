"""The training kernels on the MicroPython unix port against numpy (tests/train_reference.py),
over random seeded geometries, to float32 tolerance: the pure-Python spec
(device/minerva/train_kernels.py) and its C twin in the native module (natmod/kernels/train.c;
the losses, which need exp/log, are Python only).

Every buffer is a memoryview slice inside a guarded array("f"), as the trainer's arena hands
them out; the guards must come back untouched. A failure prints a one-line repro:
``pytest tests/test_train_kernels.py --geometry KERNEL:INDEX``.
"""

import binascii
import json
import zlib

import numpy as np
import pytest
from train_reference import CALLS, CASES

GUARD = 12345.0
PER_KERNEL = 60

_SCRIPT = """
import json, binascii
from array import array
from minerva.train_kernels import *
if %r:
    from minerva_nat import (fc_forward, fc_backward, conv_forward, conv_backward, clamp_mask,
                             sgd_momentum)
GUARD = %r
def guarded(raw):
    n = len(raw) // 4
    a = array("f", [GUARD]) + array("f", raw) + array("f", [GUARD])
    return a, memoryview(a)[1:n + 1]
with open(%r) as f:
    for line in f:
        case = json.loads(line)
        A = case["A"]
        if case["k"].startswith("conv"):
            A[0] = array("i", A[0])  # the argument block, as the trainer holds it
        store, B = {}, {}
        for name, text in case["B"].items():
            store[name], B[name] = guarded(binascii.unhexlify(text))
        result = %s
        for name, a in store.items():
            if a[0] != GUARD or a[len(a) - 1] != GUARD:
                print("GUARD", case["id"], name)
        out = {"id": case["id"], "loss": result}
        for name in case["out"]:
            if name != "loss":
                out[name] = binascii.hexlify(bytes(store[name])[4:-4]).decode()
        print(json.dumps(out))
"""


def _selected(request):
    wanted = request.config.getoption("--geometry")
    seed = request.config.getoption("--geometry-seed")
    return wanted, seed


def _case(seed, kernel, index):
    rng = np.random.default_rng([seed, zlib.crc32(kernel.encode()), index])
    return CASES[kernel](rng)


NATIVE = ("fc_forward", "fc_backward", "conv_forward", "conv_backward", "clamp_mask",
          "sgd_momentum")


@pytest.mark.parametrize("tier,kernel", [("python", k) for k in sorted(CASES)] +
                         [("natmod", k) for k in NATIVE])
def test_train_kernel_float32_random(tier, kernel, micropython, tmp_path, request):
    wanted, seed = _selected(request)
    extra = ()
    if tier == "natmod":
        from test_natmod import build_natmod

        extra = [build_natmod("x64").parent]
    indices = range(PER_KERNEL)
    if wanted:
        name, _, index = wanted.partition(":")
        if name != kernel:
            pytest.skip(f"--geometry {wanted} selects another kernel")
        indices = [int(index)]
    cases = {}
    lines = []
    for index in indices:
        args, buffers, outputs = _case(seed, kernel, index)
        cases[index] = (buffers, outputs)
        lines.append(json.dumps({
            "id": index, "k": kernel, "A": args, "out": sorted(outputs),
            "B": {k: binascii.hexlify(np.asarray(v, "<f4").tobytes()).decode()
                  for k, v in buffers.items()}}))
    path = tmp_path / "cases.jsonl"
    path.write_text("\n".join(lines) + "\n")
    proc = micropython.run(_SCRIPT % (tier == "natmod", GUARD, str(path), CALLS[kernel]),
                           heapsize="8M", extra_path=extra)
    assert "GUARD" not in proc.stdout, proc.stdout
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(results) == len(cases), proc.stdout + proc.stderr
    for got in results:
        buffers, outputs = cases[got["id"]]
        repro = (f"repro ({tier}): pytest tests/test_train_kernels.py --geometry "
                 f"{kernel}:{got['id']} --geometry-seed {seed}")
        for name, expected in outputs.items():
            if name == "loss":
                value = np.array([got["loss"]], np.float64)
            else:
                value = np.frombuffer(binascii.unhexlify(got[name]), "<f4").astype(np.float64)
            expected = np.asarray(expected, np.float64)
            # float32 storage: relative 1e-5 of the largest magnitude involved.
            scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
            assert value.shape == expected.shape, repro
            np.testing.assert_allclose(value, expected, rtol=2e-5, atol=2e-5 * scale,
                                       err_msg=f"{name}; {repro}")


def test_train_kernels_float32_reference_is_not_trivial():
    # The references must see real work: outputs vary and most gradients are non-zero.
    _, buffers, outputs = _case(0, "conv_backward", 3)
    assert np.count_nonzero(outputs["dx"]) > 0
    assert not np.allclose(outputs["dw"], buffers["dw"])


_GARBAGE = """
from array import array
import minerva_nat as nat
GUARD = 12345.0
def guarded(n):
    a = array("f", [GUARD] * (n + 2))
    return a, memoryview(a)[1:n + 1]
cases = %r
refused = ran = bad = 0
for sizes, block, counts in cases:
    store = [guarded(n) for n in sizes]
    x, w, b, y, dy, dw, db, dx = [v for _, v in store]
    calls = ((nat.conv_forward, (x, w, b, y, array("i", block), -1.0, 1.0)),
             (nat.conv_backward, (x, w, dy, dw, db, dx, array("i", block))),
             (nat.fc_forward, (x, w, b, y, counts[0], counts[1], -1.0, 1.0)),
             (nat.fc_backward, (x, w, dy, dw, db, dx, counts[0], counts[1])),
             (nat.clamp_mask, (y, dy, counts[0], 0.0, 1.0)),
             (nat.sgd_momentum, (w, dw, db, counts[0], 0.1, 0.9, 1.0)))
    for fn, args in calls:
        try:
            fn(*args)
            ran += 1
        except ValueError:
            refused += 1
    for a, _ in store:
        if a[0] != GUARD or a[len(a) - 1] != GUARD:
            bad += 1
print("RESULT", refused, ran, bad)
"""


def test_native_train_kernels_stay_inside_buffers_whatever_the_arguments(micropython):
    """Random buffer sizes and argument blocks (negative, zero, huge, inconsistent): every
    C training kernel either refuses (ValueError) or runs, and never touches the guards."""
    from test_natmod import build_natmod

    rng = np.random.default_rng(99)
    cases = []
    for _ in range(400):
        sizes = [int(v) for v in rng.integers(0, 40, 8)]
        block = [int(v) for v in rng.choice([-5, 0, 1, 2, 3, 4, 7, 1 << 20, (1 << 31) - 1],
                                            int(rng.choice([13, 14, 14, 14, 15])))]
        counts = [int(v) for v in rng.choice([-1, 0, 1, 2, 3, 5, 8, 40, 1 << 40], 2)]
        cases.append((sizes, block, counts))
    # Some consistent geometries too, so "runs" is exercised and not only "refuses".
    for in_c, out_c in ((1, 1), (2, 3)):
        args = [3, 3, in_c, 3, 3, out_c, 1, 1, 1, 1, 1, 1, 0, 0]
        cases.append(([9 * in_c, out_c * in_c, out_c, 9 * out_c, 9 * out_c, out_c * in_c,
                       out_c, 9 * in_c], args, [9 * in_c, 9 * out_c]))
    proc = micropython.run(_GARBAGE % (cases,), heapsize="8M",
                           extra_path=[build_natmod("x64").parent])
    refused, ran, bad = map(int, proc.stdout.split("RESULT")[1].split())
    assert bad == 0 and refused > 1000 and ran > 0, proc.stdout
