"""Ed25519 verification time, native module against pure Python, measured side by side: on the
MicroPython unix port (x86-64, x64 native module) and on the emulated Raspberry Pi Pico (the
real RP2040 MicroPython firmware in rp2040js, armv6m native module), verifying a signature over
a 32-byte digest as staging does for a capsule.

    python bench/ed25519_bench.py [--skip-pico] [--runs 21]

On the Pico, time.ticks_us() advances 1 us per 125 emulated cycles, so the cycles printed are
the emulator's Cortex-M0+ timing model at 125 MHz (no flash wait states modelled).
"""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

# Timed on the board or the unix port: the native verifier `runs` times, then the pure-Python
# one (its one-off SHA-512 constants timed apart), each reported as the median in microseconds.
_SCRIPT = """
import time
import minerva_nat
from minerva import ed25519
pk, digest, sig = {pk!r}, {digest!r}, {sig!r}

def median(fn, runs):
    times = []
    for _ in range(runs):
        t = time.ticks_us()
        ok = fn(pk, digest, sig)
        times.append(time.ticks_diff(time.ticks_us(), t))
        assert ok
    times.sort()
    return times[len(times) // 2]

print("NATIVE", median(minerva_nat.ed25519_verify, {runs}))
t = time.ticks_us()
ed25519._constants()
print("CONSTANTS", time.ticks_diff(time.ticks_us(), t))
print("PYTHON", median(ed25519.verify_py, {py_runs}))
print("DISPATCH", ed25519.verify(pk, digest, sig), ed25519._native is minerva_nat.ed25519_verify)
"""


def _signed_digest():
    import hashlib

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    pk = key.public_key().public_bytes(serialization.Encoding.Raw,
                                       serialization.PublicFormat.Raw)
    digest = hashlib.sha256(b"a capsule").digest()
    return pk, digest, key.sign(digest)


def _parse(out):
    found = {}
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] in ("NATIVE", "CONSTANTS", "PYTHON", "DISPATCH"):
            found[parts[0]] = parts[1:]
    if found.get("DISPATCH") != ["True", "True"]:
        sys.exit(f"verify() did not use the native module:\n{out}")
    return {k: int(v[0]) for k, v in found.items() if k != "DISPATCH"}


def unix_port(script):
    micropython = Path(sys.executable).parent / "micropython"
    prelude = (f"import sys\nsys.path.insert(0, {str(ROOT / 'device')!r})\n"
               f"sys.path.insert(0, {str(ROOT / 'dist' / 'x64_6.3')!r})\n")
    proc = subprocess.run([str(micropython), "-c", prelude + script], capture_output=True,
                          text=True, check=True)
    return _parse(proc.stdout)


def emulated_pico(script):
    from board_helpers import DIGITS_CAPSULE, emulated_pico, tool

    from minerva_packager.board.transport import connect

    with emulated_pico(Path(tempfile.mkdtemp(prefix="ed25519-bench-"))) as port:
        tool("minerva", "deploy", "--port", port, "--board", "rp2040", DIGITS_CAPSULE,
             timeout=300)
        with connect(port) as board:
            return _parse(board.exec(script, timeout=600).decode())


def _show(us, cycles):
    text = f"{us / 1000:.2f} ms" if us < 100_000 else f"{us / 1e6:.2f} s"
    return text + (f" ({us * 125 / 1e6:.1f} M cycles)" if cycles else "")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21, help="native runs (median)")
    parser.add_argument("--skip-pico", action="store_true")
    args = parser.parse_args(argv)
    pk, digest, sig = _signed_digest()
    rows = [("MicroPython unix port, x86-64", unix_port(_SCRIPT.format(
        pk=pk, digest=digest, sig=sig, runs=args.runs, py_runs=args.runs)), False)]
    if not args.skip_pico:
        rows.append(("emulated Pico (RP2040, 125 MHz model)", emulated_pico(_SCRIPT.format(
            pk=pk, digest=digest, sig=sig, runs=5, py_runs=1)), True))
    print("| where | native module | pure Python | pure Python / native | SHA-512 constants "
          "(Python, once per boot) |")
    print("|---|---|---|---|---|")
    for where, t, cycles in rows:
        native, python, constants = (_show(t[k], cycles) for k in ("NATIVE", "PYTHON",
                                                                  "CONSTANTS"))
        print(f"| {where} | {native} | {python} | {t['PYTHON'] / t['NATIVE']:.0f}x | "
              f"{constants} |")


if __name__ == "__main__":
    main()
