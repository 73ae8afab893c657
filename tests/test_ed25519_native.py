"""The Ed25519 kernel in C (natmod/kernels/ed25519.c, sha512.c) outside MicroPython: compiled
for the host under AddressSanitizer/UBSan, and for Cortex-M0 as the native module links it
(natmod/armv6m_runtime.c, no libc) run under qemu-arm. Its verdicts match the RFC 8032
vectors, `cryptography` on seeded random keys with flipped bits, and RFC 8032's refusals; its
field arithmetic, SHA-512, reduction mod L and point decoding match Python integers and
hashlib on random and extreme values."""

import hashlib
import json
import os
import random
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from ed25519_cases import VALID, L, P, all_cases, refused_cases, repro

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "device"))
KERNELS = ROOT / "natmod" / "kernels"
DRIVER = ROOT / "tests" / "native" / "ed25519_driver.c"
SANITIZE = ["-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
ENV = {"ASAN_OPTIONS": "detect_leaks=0", "UBSAN_OPTIONS": "print_stacktrace=1"}


def _build(cmd):
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout}{proc.stderr}"


@pytest.fixture(scope="module", params=["sanitized", "armv6m"])
def driver(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ed25519")
    exe = tmp / f"ed25519_{request.param}"
    sources = [str(DRIVER), str(KERNELS / "sha512.c")]
    if request.param == "sanitized":
        gcc = shutil.which("gcc")
        if gcc is None:
            pytest.skip("gcc is not installed (needed to build the sanitizer driver)")
        _build([gcc, *SANITIZE, "-std=c99", "-Wall", "-Wextra", "-Werror", f"-I{KERNELS}",
                *sources, "-o", str(exe)])
        return [str(exe)]
    gcc, qemu = shutil.which("arm-none-eabi-gcc"), shutil.which("qemu-arm")
    if gcc is None or qemu is None:
        pytest.skip("armv6m: needs arm-none-eabi-gcc and qemu-arm (Debian gcc-arm-none-eabi, "
                    "qemu-user) to run the microcontroller build")
    _build([gcc, "-mthumb", "-mcpu=cortex-m0", "-std=c99", "-O2", "-Wall", "-Werror",
            "-fno-tree-loop-distribute-patterns", "-ffreestanding", "-nostdlib", "-static",
            "-DMNV_FREESTANDING", f"-I{KERNELS}", *sources,
            str(ROOT / "natmod" / "armv6m_runtime.c"), "-o", str(exe)])
    return [qemu, str(exe)]


def ask(driver, requests):
    """Send (command letter, payload) requests to one driver process: [(rc, answer bytes)]."""
    stdin = b"".join(cmd.encode() + struct.pack("<I", len(data)) + data
                     for cmd, data in requests)
    proc = subprocess.run(driver, input=stdin, capture_output=True, timeout=600,
                          env={**os.environ, **ENV})
    assert proc.returncode == 0 and not proc.stderr, proc.stderr.decode(errors="replace")
    out, pos, answers = proc.stdout, 0, []
    while pos < len(out):
        rc, n = struct.unpack_from("<iI", out, pos)
        answers.append((rc, out[pos + 8:pos + 8 + n]))
        pos += 8 + n
    assert len(answers) == len(requests)
    return answers


def _le(n):
    return (n % 2**256).to_bytes(32, "little")


def test_ed25519_verify_matches_rfc_cryptography_and_refusals(driver):
    cases = all_cases()
    assert sum(c["want"] == VALID for c in cases) >= 256 + 4
    answers = ask(driver, [("V", c["pk"] + c["sig"] + c["msg"]) for c in cases])
    wrong = [f"{repro(c)} got={rc}" for c, (rc, _) in zip(cases, answers)
             if (rc != c["want"] if c["want"] is not None else rc == VALID)]
    assert not wrong, f"{len(wrong)} of {len(cases)} differ; first: {wrong[0]}"


def test_ed25519_refusals_agree_with_the_python_verifier():
    # The pure-Python verifier (the spec of the device's fallback) on the same refusals.
    from minerva.ed25519 import verify_py

    for c in refused_cases():
        assert verify_py(c["pk"], c["msg"], c["sig"]) == (c["want"] == VALID), repro(c)


# Values at the edges of the 16-bit-limb representation: 0, p and its neighbours, 2p + 37 =
# 2^256 - 1 (the largest stored value), carries through every limb.
EDGES = [0, 1, 2, 19, 37, 38, 2**16 - 1, 2**16, 2**128 - 1, P - 1, P, P + 1, P + 18,
         2**255 - 1, 2**255, 2 * P - 1, 2 * P, 2**256 - 38, 2**256 - 2, 2**256 - 1,
         int("fffe" * 16, 16), int("0001" * 16, 16), int("8000" * 16, 16)]


def _field_values(seed, count):
    rng = random.Random(seed)
    pairs = [(a, b) for a in EDGES for b in EDGES]
    pairs += [(rng.getrandbits(256), rng.choice([rng.getrandbits(256), rng.randrange(P)]))
              for _ in range(count)]
    return pairs


def test_field_arithmetic_matches_python_integers(driver):
    pairs = _field_values(25519, 1500)
    ops = {"M": lambda a, b: a * b, "A": lambda a, b: a + b, "S": lambda a, b: a - b}
    requests, wants = [], []
    for a, b in pairs:
        for cmd, fn in ops.items():
            requests.append((cmd, _le(a) + _le(b)))
            wants.append((f"{cmd} a={a:#x} b={b:#x}", fn(a, b) % P))
        requests.append(("Q", _le(a)))
        wants.append((f"Q a={a:#x}", a * a % P))
    for a, _ in pairs[:len(EDGES) ** 2:len(EDGES)] + pairs[-200:]:
        requests.append(("I", _le(a)))
        wants.append((f"I a={a:#x}", pow(a, P - 2, P)))
    answers = ask(driver, requests)
    wrong = [f"{name}: got {int.from_bytes(got, 'little'):#x} want {want:#x}"
             for (name, want), (_, got) in zip(wants, answers)
             if int.from_bytes(got, "little") != want]
    assert not wrong, f"{len(wrong)} of {len(wants)} differ; first: {wrong[0]}"


def test_sha512_matches_hashlib(driver):
    rng = random.Random(512)
    messages = [rng.randbytes(n) for n in [*range(0, 300), 1000, 4000]]
    answers = ask(driver, [("H", m) for m in messages])
    wrong = [len(m) for m, (_, got) in zip(messages, answers)
             if got != hashlib.sha512(m).digest()]
    assert not wrong, f"SHA-512 differs for message lengths {wrong[:10]} (seed 512)"


def test_reduction_mod_l_matches_python_integers(driver):
    rng = random.Random(252)
    values = [0, 1, L - 1, L, L + 1, 2 * L, 2**512 - 1, L << 259, (L << 259) - 1, 2**252,
              *(rng.getrandbits(512) for _ in range(500))]
    answers = ask(driver, [("R", v.to_bytes(64, "little")) for v in values])
    wrong = [f"{v:#x}" for v, (_, got) in zip(values, answers)
             if int.from_bytes(got, "little") != v % L]
    assert not wrong, f"{len(wrong)} differ; first: digest {wrong[0]}"


def test_point_decoding_matches_the_python_verifier(driver):
    from minerva.ed25519 import _decode

    rng = random.Random(8032)
    encodings = [rng.randbytes(32) for _ in range(300)]
    encodings += [c["pk"] for c in all_cases(seed=1, count=100)]
    encodings += [(y | s << 255).to_bytes(32, "little")
                  for y in (0, 1, P - 1, P, P + 1, 2**255 - 1) for s in (0, 1)]
    answers = ask(driver, [("D", e) for e in encodings])
    for e, (rc, got) in zip(encodings, answers):
        point = _decode(e)
        want = None if point is None else _le(point[0] % P) + _le(point[1] % P)
        assert (rc == 0) == (point is not None), f"decode {e.hex()}: rc {rc}"
        assert want is None or got == want, f"decode {e.hex()}: got {got.hex()}"


_ON_MICROPYTHON = """
import json, binascii, minerva_nat
from minerva import ed25519
with open({path!r}) as f:
    cases = json.load(f)
for pk, msg, sig in cases:
    pk, msg, sig = binascii.unhexlify(pk), binascii.unhexlify(msg), binascii.unhexlify(sig)
    print("%d%d%d" % (minerva_nat.ed25519_verify(pk, memoryview(msg), sig),
                      ed25519.verify_py(pk, msg, sig), ed25519.verify(pk, msg, sig)))
print("dispatch", ed25519._native is minerva_nat.ed25519_verify)
print("short", ed25519.verify(pk[:31], msg, sig), ed25519.verify(pk, msg, sig[:63]))
try:
    minerva_nat.ed25519_verify(pk, msg, sig[:63])
except ValueError as e:
    print("refused", e)
"""


def test_natmod_agrees_with_python_and_cryptography_on_micropython(micropython,
                                                                   tmp_path):
    from test_natmod import build_natmod

    natmod = build_natmod("x64")
    cases = all_cases()
    path = tmp_path / "cases.json"
    path.write_text(json.dumps([[c["pk"].hex(), c["msg"].hex(), c["sig"].hex()]
                                for c in cases]))
    out = micropython.run(_ON_MICROPYTHON.format(path=str(path)),
                          extra_path=[natmod.parent]).stdout.splitlines()
    verdicts, tail = out[:len(cases)], out[len(cases):]
    wrong = [f"{repro(c)} natmod/python/verify={got}" for c, got in zip(cases, verdicts)
             if got != ("111" if c["want"] == VALID else "000")]
    assert not wrong, f"{len(wrong)} of {len(cases)} differ; first: {wrong[0]}"
    assert tail[0] == "dispatch True", "verify() did not pick the native module"
    assert tail[1] == "short False False"
    assert tail[2].startswith("refused minerva_nat: ed25519_verify takes a 32-byte")
