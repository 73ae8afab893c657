"""The device package on CircuitPython 10.2.1's unix port (../shared/circuitpython): integrity
checking without hashlib/binascii, loading and bit-exact runs, errors, zero-allocation run(),
and minerva.Runtime's lifecycle. Its coverage build has the viper emitter; boards do not."""

import hashlib
import json
import random
import shutil
import zlib

import numpy as np
import pytest
from device_runner import run_on_cpython, run_on_micropython
from digits_versions import HELDOUT_X, V1
from test_capsule_errors import damaged

from minerva.digest_py import PySha256, py_crc32
from minerva_packager.capsule.pack import pack_tflite

pytestmark = pytest.mark.circuitpython

DIGITS_TFLITE = V1.with_name("digits.tflite")
# Replaces hashlib and binascii before minerva is imported, as on a board built without them:
# `import` finds the stub in sys.modules and capsule.py falls back to digest_py.py.
WITHOUT_HASHLIB = """
class _Absent:
    pass
sys.modules["hashlib"] = _Absent
sys.modules["binascii"] = _Absent
"""


def test_fallback_digests_match_hashlib_and_zlib():
    rng = random.Random(16)
    lengths = list(range(0, 130)) + [rng.randrange(130, 20000) for _ in range(120)]
    for n in lengths:
        data = rng.randbytes(n)
        cut = rng.randrange(n + 1)
        sha = PySha256(data[:cut])
        sha.update(data[cut:])
        assert sha.digest() == hashlib.sha256(data).digest(), n
        assert py_crc32(data[cut:], py_crc32(data[:cut])) == zlib.crc32(data), n


SPEED = """
import time
from minerva.capsule import sha256, crc32
from minerva.digest_py import PySha256, py_crc32
data = bytearray(32768)
for i in range(len(data)):
    data[i] = (i * 7) & 255
def per_kb(fn):
    t = time.ticks_us()
    fn(data)
    return time.ticks_diff(time.ticks_us(), t) / 32 / 1000
py_crc32(b"x")  # builds its table outside the timing
print("SPEED", per_kb(lambda d: PySha256(d).digest()), per_kb(py_crc32),
      per_kb(lambda d: sha256(d).digest()), per_kb(crc32))
"""


@pytest.mark.parametrize("interpreter", ["micropython", "circuitpython"])
def test_fallback_speed(request, interpreter):
    # Measured per KB on the unix ports (x86-64); the README projects these to an RP2040.
    proc = request.getfixturevalue(interpreter).run(SPEED)
    sha_py, crc_py, sha_c, crc_c = map(float, proc.stdout.split("SPEED")[1].split())
    print(f"{interpreter}: pure-Python SHA-256 {sha_py:.3f} ms/KB, CRC-32 {crc_py:.3f} ms/KB;"
          f" C SHA-256 {sha_c:.4f} ms/KB, CRC-32 {crc_c:.4f} ms/KB")
    assert sha_py > sha_c and crc_py > crc_c


def test_implementation_is_micropython_family(circuitpython):
    proc = circuitpython.run("""
from minerva import capsule as digest, tiers
print("FAMILY", digest.MICROPYTHON_FAMILY, digest.CIRCUITPYTHON, tiers._default_order())
""")
    assert "FAMILY True True ('viper', 'python')" in proc.stdout


def _heldout(count):
    return [row.tobytes() for row in np.load(HELDOUT_X).astype(np.int8)[:count]]


@pytest.mark.parametrize("kernels", ["python", "viper", None])
def test_digits_bit_exact(circuitpython, tmp_path, kernels):
    xs = _heldout(40)
    outs = run_on_micropython(circuitpython, V1, xs, tmp_path, kernels=kernels)
    assert outs == run_on_cpython(V1, xs, kernels="numpy")


@pytest.fixture(scope="module")
def shared_capsules(shared_models, tmp_path_factory):
    folder = tmp_path_factory.mktemp("cp_capsules")
    out = {}
    rng = np.random.default_rng(16)
    for name, size in (("kws01_dscnn_int8", 490), ("ad01_fc_autoencoder_int8", 640)):
        cap = folder / f"{name}.cap"
        cap.write_bytes(pack_tflite(shared_models / f"{name}.tflite"))
        out[name] = (cap, [rng.integers(-128, 128, size, dtype=np.int8).tobytes()])
    return out


@pytest.mark.parametrize("name", ["kws01_dscnn_int8", "ad01_fc_autoencoder_int8"])
@pytest.mark.parametrize("kernels", ["python", "viper"])
def test_shared_models_bit_exact(circuitpython, shared_capsules, tmp_path, name, kernels):
    # One input each: the pure-Python KWS takes seconds per inference on this debug build.
    cap, xs = shared_capsules[name]
    outs = run_on_micropython(circuitpython, cap, xs, tmp_path, kernels=kernels)
    assert outs == run_on_cpython(cap, xs, kernels="numpy")


def _write_damaged(shared_models, tmp_path):
    good = pack_tflite(shared_models / "kws01_dscnn_int8.tflite")
    paths = []
    for case, data, _ in damaged(good):
        path = tmp_path / f"{case}.cap"
        path.write_bytes(data)
        paths.append(str(path))
    return paths


@pytest.mark.parametrize("prelude", ["", WITHOUT_HASHLIB], ids=["hashlib", "pure-python"])
def test_every_damage_is_a_capsule_error(circuitpython, shared_models, tmp_path, prelude):
    paths = _write_damaged(shared_models, tmp_path)
    proc = circuitpython.run(prelude + f"""
import minerva
from minerva import capsule as digest
print("NATIVE", digest.NATIVE_SHA256, digest.NATIVE_CRC32)
for p in {paths!r}:
    try:
        minerva.load(p)
        print("LOADED", p)
    except minerva.CapsuleError as e:
        print("REJECTED", p in str(e), type(e).__name__)
""")
    lines = proc.stdout.splitlines()
    native = "True" if not prelude else "False"
    assert lines[0] == f"NATIVE {native} {native}"
    assert len(lines) == len(paths) + 1
    assert all(line.startswith("REJECTED True") for line in lines[1:]), proc.stdout
    assert "REJECTED True CapsuleVersionError" in lines
    assert "REJECTED True CapsuleChecksumError" in lines


def test_pure_python_digests_verify_and_run(circuitpython, tmp_path):
    # Without hashlib and binascii the capsule is still checked (a good one loads and runs
    # bit-exact; the damaged ones above are refused) and hex still works for the logs.
    xs = _heldout(5)
    outs = run_on_micropython(circuitpython, V1, xs, tmp_path, kernels="python",
                              extra_path=())
    proc = circuitpython.run(WITHOUT_HASHLIB + f"""
import minerva
from minerva import capsule as digest
m = minerva.load({str(V1)!r}, kernels="python")
X = open({str(tmp_path / "inputs.bin")!r}, "rb").read()
for i in range(5):
    print("OUT", digest.hexlify(bytes(m.run(X[64 * i:64 * i + 64]))).decode())
print("NATIVE", digest.NATIVE_SHA256, digest.NATIVE_CRC32)
""")
    assert "NATIVE False False" in proc.stdout
    got = [bytes.fromhex(line[4:]) for line in proc.stdout.splitlines() if line[:4] == "OUT "]
    assert got == outs == run_on_cpython(V1, xs, kernels="numpy")


@pytest.mark.parametrize("kernels", ["python", "viper"])
def test_run_allocates_nothing(circuitpython, shared_capsules, kernels):
    cap = shared_capsules["kws01_dscnn_int8"][0]
    proc = circuitpython.run(f"""
import gc, micropython, minerva
m = minerva.load({str(cap)!r}, kernels={kernels!r})
x = bytes(range(256)) + bytes(234)

def measure(m, x):
    m.run(x)
    gc.collect()
    before = gc.mem_alloc()
    m.run(x)
    delta = gc.mem_alloc() - before
    micropython.heap_lock()
    try:
        m.run(x)
        locked = "NOALLOC"
    except MemoryError:
        locked = "ALLOCATED"
    micropython.heap_unlock()
    return delta, locked

print("DELTA", *measure(m, x))
""", heapsize="1M")
    assert "DELTA 0 NOALLOC" in proc.stdout, proc.stdout


RUNTIME = """
import json
from minerva.runtime import Runtime
X = open({inputs!r}, "rb").read()
def show(rt):
    print("STATUS " + json.dumps(rt.status()))
rt = Runtime({root!r}, kernels={kernels!r})
for i in range({count}):
    print("OUT " + bytes(rt.infer(X[64 * i:64 * i + 64])).hex())
rt.flush()
show(rt)
"""


def test_runtime_lifecycle(circuitpython, tmp_path):
    # Each CircuitPython process is one boot over the same capsule root.
    root = tmp_path / "capsules"
    (root / "inbox").mkdir(parents=True)
    inputs = tmp_path / "heldout.bin"
    xs = _heldout(12)
    inputs.write_bytes(b"".join(xs))
    v2 = tmp_path / "digits_v2.cap"
    v2.write_bytes(pack_tflite(DIGITS_TFLITE, name="digits", version="2.0.0"))
    expected = run_on_cpython(V1, xs, kernels="numpy")

    def boot(script="", count=12, kernels="viper"):
        proc = circuitpython.run(RUNTIME.format(inputs=str(inputs), root=str(root),
                                                kernels=kernels, count=count) + script,
                                 heapsize="236304")
        lines = proc.stdout.splitlines()
        statuses = [json.loads(x[7:]) for x in lines if x[:7] == "STATUS "]
        outs = [bytes.fromhex(x[4:]) for x in lines if x[:4] == "OUT "]
        return statuses, outs

    shutil.copy(V1, root / "inbox" / "digits.cap")
    (status,), outs = boot()
    assert status["active"]["version"] == "1.0.0" and status["candidate"] is None
    assert outs == expected
    shutil.copy(v2, root / "inbox" / "v2.cap")
    (status,), outs = boot(kernels="python")
    assert status["candidate"]["version"] == "2.0.0"
    assert status["shadow"]["samples"] == 12 and status["shadow"]["agree"] == 12
    assert outs == expected, "the active model answers while the candidate shadows"
    # Promoted, then confirmed by 20 healthy inferences in the same boot (a reset before that
    # would revert it), then rolled back by the user at the next boot.
    (_, after), outs = boot("""
rt.promote(force=True)
for i in range(20):
    rt.infer(X[64 * (i % 12):64 * (i % 12) + 64])
show(rt)
""", count=1)
    assert after["active"]["version"] == "2.0.0" and after["trial"] is None
    assert after["previous"]["version"] == "1.0.0"
    (_, rolled), outs = boot("rt.rollback()\nshow(rt)\n", count=1)
    assert rolled["active"]["version"] == "1.0.0" and rolled["previous"] is None
    assert rolled["rejected"][-1]["reason"] == "rolled back by the user"
    assert not list((root / "inbox").iterdir())


@pytest.mark.parametrize("prelude", ["", WITHOUT_HASHLIB], ids=["hashlib", "pure-python"])
def test_pure_python_digests_verify_once_at_staging(circuitpython, tmp_path, prelude):
    # Staging verifies in full and records the SHA-256; at later boots, pure-Python digests
    # check the file still ends with it instead of hashing it again (seconds on an RP2040).
    # Without hashlib, a swapped slot file is refused (it does not end with the recorded
    # SHA-256); a flipped weight byte after staging is caught at boot only where hashing is
    # native (and hashed in full at every boot there).
    root = tmp_path / "capsules"
    (root / "inbox").mkdir(parents=True)
    inputs = tmp_path / "heldout.bin"
    inputs.write_bytes(b"".join(_heldout(1)))
    shutil.copy(V1, root / "inbox" / "digits.cap")

    def boot(count=0):
        proc = circuitpython.run(prelude + RUNTIME.format(
            inputs=str(inputs), root=str(root), kernels="python", count=count),
            heapsize="236304")
        return [json.loads(x[7:]) for x in proc.stdout.splitlines() if x[:7] == "STATUS "][0]

    slot = root / "slots" / boot(1)["active"]["file"]
    data = bytearray(slot.read_bytes())
    data[len(data) // 2] ^= 0x10
    slot.write_bytes(bytes(data))
    status = boot()
    if prelude:
        assert status["active"]["version"] == "1.0.0"
    else:
        assert status["active"] is None
        assert "SHA-256 mismatch" in status["rejected"][-1]["reason"] or \
            "CRC-32 mismatch" in status["rejected"][-1]["reason"]
        return
    v2 = pack_tflite(DIGITS_TFLITE, name="digits", version="2.0.0")
    slot.write_bytes(v2)  # same size, another capsule: its trailing SHA-256 differs
    status = boot()
    assert status["active"] is None
    assert "not the capsule verified when it was staged" in status["rejected"][-1]["reason"]
