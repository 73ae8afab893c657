"""The native module (natmod/): builds per architecture, .mpy headers (arch, ABI 6.3) and code
size, loading on the MicroPython unix port, and every kernel bit-exact with the pure-Python
kernels (minerva/kernels_py.py) on generated vectors, run side by side on MicroPython."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from kernel_cases import hostile_cases, realistic_cases

ROOT = Path(__file__).resolve().parents[1]
PYTHON = ROOT / ".venv" / "bin" / "python"
# sys.implementation._mpy arch codes (py/persistentcode.h MP_NATIVE_ARCH_*).
ARCH_CODES = {"x64": 2, "armv6m": 4, "armv7emsp": 7, "xtensawin": 10, "rv32imc": 11}
COMPILERS = {"x64": "gcc", "armv6m": "arm-none-eabi-gcc", "armv7emsp": "arm-none-eabi-gcc",
             "xtensawin": "xtensa-esp32-elf-gcc"}
KERNEL_NAMES = ["conv_2d", "depthwise_conv_2d", "fully_connected", "average_pool_2d",
                "max_pool_2d", "add", "reshape", "softmax", "quantize", "dequantize", "gather",
                "concatenation"]


def build_natmod(arch, dist=None, build_name=None, extra=()):
    """Build minerva_nat.mpy for ``arch`` as `make natmod-<arch>` does; return its path."""
    if arch == "rv32imc":
        pytest.skip("rv32imc: mpy-cross-v6-3's mpy_ld.py (MicroPython 1.23) has no RISC-V "
                    "support, so no ABI 6.3 native module can be linked for ESP32-C3")
    if shutil.which(COMPILERS[arch]) is None:
        pytest.skip(f"{arch}: {COMPILERS[arch]} is not on PATH"
                    + (" (Espressif's toolchain, see docs/natmod.md)" if arch == "xtensawin"
                       else ""))
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    # The interpreter running the tests has the build's dependencies (pyelftools) when the
    # repository has no .venv of its own (a git worktree).
    python = str(PYTHON if PYTHON.exists() else sys.executable)
    sdk = subprocess.run([str(ROOT / "tools/fetch_mpy_sdk.sh"), python], check=True,
                         capture_output=True, text=True).stdout.strip()
    build = ROOT / "build" / "natmod" / (build_name or arch)
    build.mkdir(parents=True, exist_ok=True)
    dist = Path(dist or ROOT / "dist" / f"{arch}_6.3")
    proc = subprocess.run(["make", "--no-print-directory", "-C", str(build), "-f",
                           str(ROOT / "natmod/Makefile"), f"ARCH={arch}",
                           f"MPY_DIR={ROOT / sdk}", f"PYTHON={python}", f"DIST={dist}",
                           *extra], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return dist / "minerva_nat.mpy"


@pytest.fixture(scope="module")
def natmod_x64():
    return build_natmod("x64")


@pytest.mark.parametrize("arch", sorted(ARCH_CODES))
def test_natmod_builds_with_arch_and_abi_in_header(arch, capsys):
    mpy = build_natmod(arch).read_bytes()
    assert mpy[0:1] == b"M" and mpy[1] == 6, "not a version 6 .mpy"
    flags = mpy[2]
    assert flags >> 2 == ARCH_CODES[arch], f"header arch {flags >> 2}"
    assert flags & 3 == 3, f"native sub-version {flags & 3}, want 3 (ABI 6.3)"
    with capsys.disabled():
        print(f"\nnatmod {arch}: {len(mpy)} bytes (dist/{arch}_6.3/minerva_nat.mpy)")


def test_natmod_header_matches_the_unix_port(natmod_x64, micropython):
    out = micropython.run("import sys; print(sys.implementation._mpy)").stdout.split()
    mpy = natmod_x64.read_bytes()
    assert int(out[0]) == mpy[1] | mpy[2] << 8  # the port accepts exactly this arch + ABI


def test_natmod_loads_on_micropython(natmod_x64, micropython):
    out = micropython.run("import minerva_nat\nprint(sorted(dir(minerva_nat)), "
                          "minerva_nat.HAS_FLOAT)", extra_path=[natmod_x64.parent]).stdout
    for name in KERNEL_NAMES:
        assert f"'{name}'" in out
    assert out.strip().endswith("True")


_COMPARE = """
import json, minerva_nat
from array import array
from minerva import kernels_py

GUARD = 3  # int8 buffers are passed as memoryview slices with guard bytes on both sides

def as_slice(typecode, values):
    if typecode != "b":
        return array(typecode, values), None
    whole = array("b", [99] * GUARD + list(values) + [99] * GUARD)
    return memoryview(whole)[GUARD:GUARD + len(values)], whole

def run(module, case):
    bufs = [None if b is None else as_slice(b[0], b[1])[0] for b in case["inputs"]]
    typecode, count = case["out"]
    out, whole = as_slice(typecode, [0] * count)
    getattr(module, case["op"])(*bufs, out, array("i", case["args"]))
    guards = whole is None or (list(whole[:GUARD]) + list(whole[-GUARD:])) == [99] * 6
    return bytes(out), guards

with open({path!r}) as f:
    cases = json.load(f)
for case in cases:
    got, guards = run(minerva_nat, case)
    want, _ = run(kernels_py, case)
    diff = [i for i in range(len(got)) if got[i] != want[i]]
    status = "OK" if not diff and guards else "DIFF at %r guards %r" % (diff[:8], guards)
    print("CASE", case["name"], status)
"""

# Everything but cases whose floats JSON cannot carry (NaN, inf) or whose int32 arithmetic
# overflows in TFLite (the C wraps, the pure-Python reference does not).
MP_CASES = realistic_cases(0) + realistic_cases(1) + [
    c for c in hostile_cases(0) if c["exact"] and c["name"] != "quantize_int8_specials"]


@pytest.fixture(scope="module")
def micropython_results(natmod_x64, micropython, tmp_path_factory):
    path = tmp_path_factory.mktemp("natmod") / "cases.json"
    path.write_text(json.dumps(MP_CASES))
    proc = micropython.run(_COMPARE.format(path=str(path)), heapsize="4M",
                           extra_path=[natmod_x64.parent])
    results = dict(line.split(" ", 2)[1:] for line in proc.stdout.splitlines()
                   if line.startswith("CASE "))
    assert len(results) == len(MP_CASES), proc.stdout
    return results


@pytest.mark.parametrize("name", [c["name"] for c in MP_CASES])
def test_natmod_matches_kernels_py_on_micropython(name, micropython_results):
    assert micropython_results[name] == "OK"


def test_natmod_refuses_inconsistent_buffers(natmod_x64, micropython):
    out = micropython.run("""
import minerva_nat
from array import array
args = array("i", [1, 2, 2, 1, 2, 2, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, -128, 127])
one = array("i", [1 << 30])
zero = array("i", [0])
out = array("b", [7] * 3)
for call in (
        lambda: minerva_nat.conv_2d(bytes(4), bytes(1), None, one, zero, out, args),
        lambda: minerva_nat.conv_2d(bytes(4), bytes(1), None, one, zero, bytearray(4),
                                    args[:-1]),
        lambda: minerva_nat.conv_2d(bytes(4), bytes(1), None, memoryview(bytes(8))[1:5],
                                    zero, bytearray(4), args)):
    try:
        call()
        print("ACCEPTED")
    except ValueError as e:
        print("REFUSED", e)
print(list(out))
""", extra_path=[natmod_x64.parent]).stdout.splitlines()
    assert out[0] == "REFUSED minerva_nat: op params disagree with buffer sizes"
    assert out[1] == "REFUSED minerva_nat: wrong number of op params"
    assert out[2] == "REFUSED minerva_nat: int32/float32 buffer not 4-aligned"
    assert out[3] == "[7, 7, 7]"


def test_float_ops_fall_back_to_python_without_float_kernels(micropython, tmp_path):
    # armv6m and xtensawin builds have no float kernels; the same binding path, built for x64
    # without them, must give kernels_py's bytes through minerva.kernels_py.
    mpy = build_natmod("x64", dist=tmp_path, build_name="x64-nofloat",
                       extra=["FLOAT_KERNELS=0"])
    cases = [c for c in realistic_cases(0) if c["op"] in ("quantize", "dequantize")]
    path = tmp_path / "cases.json"
    path.write_text(json.dumps(cases))
    proc = micropython.run("import minerva_nat\nprint('HAS_FLOAT', minerva_nat.HAS_FLOAT)\n"
                           + _COMPARE.format(path=str(path)), extra_path=[mpy.parent])
    lines = proc.stdout.splitlines()
    assert lines[0] == "HAS_FLOAT False"
    assert lines[1:] == [f"CASE {c['name']} OK" for c in cases]


# -- whole models through minerva.load(kernels="natmod") on MicroPython ----------------------

SHARED_MODELS = ["hello_world_int8", "kws01_dscnn_int8", "ic01_resnet8_int8",
                 "ad01_fc_autoencoder_int8"]


def _shared_inputs(shared_models, name, shape, count=3):
    import numpy as np

    rng = np.random.default_rng(len(name))
    xs = [rng.integers(-128, 128, size=shape, dtype=np.int8) for _ in range(count)]
    if name == "kws01_dscnn_int8":
        xs.append(np.load(shared_models / "samples" / "kws01_sample0_int8_49x10.npy"))
    return xs


@pytest.mark.parametrize("name", SHARED_MODELS)
def test_shared_model_natmod_bit_exact_with_tflite_micro(name, shared_models, natmod_x64,
                                                         micropython, tmp_path):
    import numpy as np
    from device_runner import run_on_micropython
    from reference import TFLM

    from minerva_packager.pack import pack_file

    src = shared_models / f"{name}.tflite"
    cap = tmp_path / f"{name}.cap"
    pack_file(src, cap)
    tflm = TFLM(src.read_bytes())
    xs = _shared_inputs(shared_models, name, tflm.input_details[0]["shape"])
    outs = run_on_micropython(micropython, cap, [x.tobytes() for x in xs], tmp_path,
                              kernels="natmod", extra_path=[natmod_x64.parent])
    for x, out in zip(xs, outs):
        assert out == np.ascontiguousarray(tflm([x])[0]).tobytes(), name


def _op_model_names():
    from opmodels import OP_MODELS

    return sorted(OP_MODELS)


@pytest.mark.parametrize("name", _op_model_names())
def test_op_model_natmod_bit_exact_with_tflite_micro(name, natmod_x64, micropython, tmp_path):
    import numpy as np
    from device_runner import run_on_micropython
    from opmodels import build_op_model
    from reference import run_tflm

    from minerva_packager.pack import pack_file

    model = build_op_model(name, 0)
    src = tmp_path / f"{name}.tflite"
    src.write_bytes(model.tflite)
    cap = tmp_path / f"{name}.cap"
    pack_file(src, cap)
    inputs = list(model.inputs(count=3, seed=10))
    raw = [[np.ascontiguousarray(x).tobytes() for x in xs] for xs in inputs]
    outs = run_on_micropython(micropython, cap, raw, tmp_path, kernels="natmod",
                              extra_path=[natmod_x64.parent])
    for xs, out in zip(inputs, outs):
        want = np.ascontiguousarray(run_tflm(model.tflite, xs)[0]).tobytes()
        assert out == want, f"{name}: natmod differs from TFLite Micro"
