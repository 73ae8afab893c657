"""Minerva vs TFLite Micro, measured side by side in one run, per shared model.

    python bench/run.py [--models kws01_dscnn_int8,...] [--tiers natmod,viper,python]

Prints, per model: capsule bytes vs .tflite bytes; arena bytes vs TFLite Micro's (measured
here, not copied); heap the loaded model takes on MicroPython (what run() uses; it allocates
nothing more) vs TFLite Micro's whole arena; latency of each Minerva kernel tier on the
MicroPython unix port next to TFLite Micro's Python interpreter and TFLite's reference and
optimized kernels, as medians and as ratios to TFLite Micro. The x64 native module uses SSE2;
``natmod-scalar`` is the same C built without SIMD, the yardstick for viper on boards.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from reference import TFLM, LiteRT, tflm_arena_bytes  # noqa: E402

from minerva_packager.capsule.container import read_capsule  # noqa: E402
from minerva_packager.capsule.pack import pack_file  # noqa: E402

MODELS = ["kws01_dscnn_int8", "ic01_resnet8_int8", "ad01_fc_autoencoder_int8"]
SHARED = ROOT.parent / "shared" / "models"
NATMOD_DIR = ROOT / "dist" / "x64_6.3"
SCALAR_DIR = ROOT / "build" / "natmod-scalar" / "dist"
RUNS = {"natmod": 100, "natmod-scalar": 100, "viper": 10, "python": 3}

_MP_SCRIPT = """
import sys, gc, time
sys.path.insert(0, {device!r})
sys.path.insert(0, {natmod!r})
import minerva
from minerva.tiers import select_kernels
select_kernels({tier!r}, "bench")  # the kernel module's own code is not the model's heap
gc.collect()
before = gc.mem_alloc()
m = minerva.load({capsule!r}, kernels={tier!r})
gc.collect()
print("HEAP", gc.mem_alloc() - before)
m.run(bytearray({size}))
times = []
for i in range({runs}):
    # run() without an argument: the input stays in place, as invoke() does in TFLM.
    t = time.ticks_us()
    m.run()
    times.append(time.ticks_diff(time.ticks_us(), t))
times.sort()
print("MEDIAN_US", times[len(times) // 2])
"""


def micropython_binary():
    return str(Path(sys.executable).parent / "micropython")


def build_scalar_natmod():
    """The x64 native module built without SIMD (-O2, no vectorising, the portable C), as a
    stand-in for what a Cortex-M0+ or ESP32 runs: the fair yardstick for viper."""
    mpy_dir = subprocess.run([str(ROOT / "tools" / "fetch_mpy_sdk.sh"), sys.executable],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    work = SCALAR_DIR.parent / "obj"
    work.mkdir(parents=True, exist_ok=True)
    subprocess.run(["make", "--no-print-directory", "-C", str(work), "-f",
                    str(ROOT / "natmod" / "Makefile"), "ARCH=x64", f"MPY_DIR={ROOT / mpy_dir}",
                    f"PYTHON={sys.executable}", f"DIST={SCALAR_DIR}",
                    "OPT=-O2 -fno-tree-vectorize -DMNV_PORTABLE"],
                   check=True, capture_output=True)


def measure_micropython(capsule, tier, size, runs):
    """(median seconds per run(), heap bytes of the loaded model) for one tier, or None."""
    natmod_dir = NATMOD_DIR
    if tier == "natmod-scalar":
        tier, natmod_dir = "natmod", SCALAR_DIR
    script = _MP_SCRIPT.format(device=str(ROOT / "device"), natmod=str(natmod_dir),
                               capsule=str(capsule), tier=tier, size=size, runs=runs)
    proc = subprocess.run([micropython_binary(), "-X", "heapsize=8M", "-c", script],
                          capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        return None, proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)
    return int(lines["MEDIAN_US"]) / 1e6, int(lines["HEAP"])


def median_invoke(runner, x, runs=200):
    """Median seconds of ``interpreter.invoke()`` alone, the input set once beforehand."""
    runner([x])
    invoke = runner.interpreter.invoke
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        invoke()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_model(name, tiers, workdir):
    src = SHARED / f"{name}.tflite"
    model_bytes = src.read_bytes()
    cap_path = Path(workdir) / f"{name}.cap"
    pack_file(src, cap_path)
    cap = read_capsule(cap_path)
    size = int(np.prod(cap.meta["inputs"][0]["shape"]))
    x = np.zeros(cap.meta["inputs"][0]["shape"], np.int8)
    tflm = TFLM(model_bytes)
    row = {
        "model": name,
        "tflite_bytes": len(model_bytes),
        "capsule_bytes": cap.size,
        "arena": cap.arena_bytes,
        "tflm_arena": tflm_arena_bytes(model_bytes),
        "tflm_s": median_invoke(tflm, x),
        "ref_s": median_invoke(LiteRT(model_bytes, reference=True), x),
        "opt_s": median_invoke(LiteRT(model_bytes, reference=False), x),
        "tiers": {},
    }
    for tier in tiers:
        row["tiers"][tier] = measure_micropython(cap_path, tier, size, RUNS.get(tier, 5))
    return row


def _ms(seconds):
    return f"{seconds * 1e3:.3f} ms"


def print_report(rows, tiers):
    print("## Size and memory\n")
    print("| model | .tflite | capsule | capsule/.tflite | arena | TFLM activations | "
          "ratio | MicroPython heap of loaded model | TFLM arena total | ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        heaps = [v[1] for v in r["tiers"].values() if v[0] is not None]
        heap = min(heaps) if heaps else None
        t = r["tflm_arena"]
        heap_cell = "-" if heap is None else f"{heap:,}"
        heap_ratio = "-" if heap is None else f"{heap / t['total']:.2f}"
        print(f"| {r['model']} | {r['tflite_bytes']:,} | {r['capsule_bytes']:,} | "
              f"{r['capsule_bytes'] / r['tflite_bytes']:.2f} | {r['arena']:,} | "
              f"{t['head']:,} | {r['arena'] / t['head']:.2f} | "
              f"{heap_cell} | {t['total']:,} | {heap_ratio} |")
    print("\n## Latency (median per inference; ratio = time / TFLite Micro's)\n")
    head = "| model | TFLM (Python interpreter) | TFLite ref | TFLite optimized | "
    head += " | ".join(f"minerva {t} (MicroPython)" for t in tiers) + " |"
    print(head)
    print("|---" * (4 + len(tiers)) + "|")
    for r in rows:
        cells = [r["model"], _ms(r["tflm_s"]),
                 f"{_ms(r['ref_s'])} ({r['ref_s'] / r['tflm_s']:.2f}x)",
                 f"{_ms(r['opt_s'])} ({r['opt_s'] / r['tflm_s']:.2f}x)"]
        for tier in tiers:
            seconds, info = r["tiers"][tier]
            cells.append(f"{_ms(seconds)} ({seconds / r['tflm_s']:.2f}x)" if seconds
                         else f"n/a ({info})")
        print("| " + " | ".join(cells) + " |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--tiers", default="natmod,natmod-scalar,viper,python",
                        help="natmod-scalar: the same C without SIMD, as boards run it")
    args = parser.parse_args()
    if not SHARED.is_dir():
        sys.exit(f"bench: {SHARED} is absent (the reference models live in ../shared)")
    tiers = args.tiers.split(",")
    if "natmod-scalar" in tiers:
        build_scalar_natmod()
    with tempfile.TemporaryDirectory() as workdir:
        rows = [bench_model(name, tiers, workdir) for name in args.models.split(",")]
    print_report(rows, tiers)


if __name__ == "__main__":
    main()
