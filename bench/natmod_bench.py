"""Per-kernel timings of the native module on the MicroPython unix port, on the real layers
of the shared models (each op of the loaded capsule timed on its own, same buffers and
arguments as run() uses).

    python bench/natmod_bench.py [--models kws01_dscnn_int8,...] [--tiers natmod,viper]

`natmod_kernel_timings(capsule, tier)` is the function bench/run.py can call.
"""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "models"
NATMOD_DIR = ROOT / "dist" / "x64_6.3"
MODELS = ["kws01_dscnn_int8", "ic01_resnet8_int8", "ad01_fc_autoencoder_int8"]

_MP_SCRIPT = """
import sys, time
sys.path.insert(0, {device!r})
sys.path.insert(0, {natmod!r})
import minerva
m = minerva.load({capsule!r}, kernels={tier!r})
m.run()
names = [(getattr(m.kernels, n), n) for n in dir(m.kernels) if not n.startswith("_")]
for i, step in enumerate(m._steps):
    fn, bufs, params = step[1], step[2], step[3]
    times = []
    for _ in range({runs}):
        t = time.ticks_us()
        fn(*bufs, params)
        times.append(time.ticks_diff(time.ticks_us(), t))
    times.sort()
    shape = ",".join(str(v) for v in params[:12])
    print("OP", i, [n for f, n in names if f is fn][0], times[len(times) // 2], shape)
times = []
for _ in range({runs}):
    t = time.ticks_us()
    m.run()
    times.append(time.ticks_diff(time.ticks_us(), t))
times.sort()
print("RUN", times[len(times) // 2])
"""


def micropython_binary():
    return str(Path(sys.executable).parent / "micropython")


def natmod_kernel_timings(capsule, tier="natmod", runs=50):
    """Median microseconds per op of ``capsule`` on MicroPython with kernel ``tier``:
    ``([(index, kernel name, us, first params), ...], whole run() us)``."""
    script = _MP_SCRIPT.format(device=str(ROOT / "device"), natmod=str(NATMOD_DIR),
                               capsule=str(capsule), tier=tier, runs=runs)
    proc = subprocess.run([micropython_binary(), "-X", "heapsize=8M", "-c", script],
                          capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"MicroPython failed on {capsule} ({tier}):\n{proc.stderr}")
    ops, run_us = [], None
    for line in proc.stdout.splitlines():
        parts = line.split()
        if parts[0] == "OP":
            ops.append((int(parts[1]), parts[2], int(parts[3]), parts[4]))
        elif parts[0] == "RUN":
            run_us = int(parts[1])
    return ops, run_us


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--tiers", default="natmod")
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    if not SHARED.is_dir():
        sys.exit(f"bench: {SHARED} is absent (the reference models live in ../shared)")
    from minerva_packager.capsule.pack import pack_file

    tiers = args.tiers.split(",")
    with tempfile.TemporaryDirectory() as workdir:
        for name in args.models.split(","):
            cap = Path(workdir) / f"{name}.cap"
            pack_file(SHARED / f"{name}.tflite", cap)
            results = {t: natmod_kernel_timings(cap, t, args.runs) for t in tiers}
            print(f"\n## {name}\n")
            print("| op | kernel | params (first 12) | "
                  + " | ".join(f"{t} us" for t in tiers) + " |")
            print("|---|---|---|" + "---|" * len(tiers))
            first = results[tiers[0]][0]
            for k, (index, kernel, _, params) in enumerate(first):
                cells = [str(results[t][0][k][2]) for t in tiers]
                print(f"| {index} | {kernel} | {params} | " + " | ".join(cells) + " |")
            sums = [str(sum(op[2] for op in results[t][0])) for t in tiers]
            runs = [str(results[t][1]) for t in tiers]
            print("| | sum of kernels | | " + " | ".join(sums) + " |")
            print("| | whole run() | | " + " | ".join(runs) + " |")


if __name__ == "__main__":
    main()
