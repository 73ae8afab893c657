"""Viper (and pure-Python) kernel tier latency on the MicroPython unix port, per shared model.

    python bench/tiers_bench.py [--models kws01_dscnn_int8,...] [--tiers viper,python]
                                [--runs 20] [--per-op]

Each model is packed from ../shared/models, loaded with ``minerva.load(cap, kernels=TIER)`` in
a fresh MicroPython process and timed over ``run()`` calls (median, and best run in
parentheses: on a busy machine the best run is the steadier figure). ``--per-op`` also prints
where the viper time goes, per op kind. The main bench calls :func:`measure_viper`.
"""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "models"
MODELS = ["kws01_dscnn_int8", "ic01_resnet8_int8", "ad01_fc_autoencoder_int8",
          "hello_world_int8"]
NATMOD_DIR = ROOT / "dist" / "x64_6.3"  # the x64 native module, when built (make natmod)
DEFAULT_RUNS = {"natmod": 100, "viper": 20, "python": 3}

_SCRIPT = """
import sys, time
sys.path.insert(0, {device!r})
sys.path.insert(0, {natmod!r})
import minerva
m = minerva.load({capsule!r}, kernels={tier!r})
x = bytearray({size})
for i in range(len(x)):
    x[i] = (i * 37 + 11) & 0xFF
m.run(x)
times = []
for _ in range({runs}):
    t = time.ticks_us()
    m.run()
    times.append(time.ticks_diff(time.ticks_us(), t))
times.sort()
print("TIER", m.tier)
print("MEDIAN_US", times[len(times) // 2])
print("BEST_US", times[0])
if {per_op!r}:
    # The same calls run() makes, timed one step at a time (bench only: uses internals).
    names = m.info()["ops"]
    spent = {{}}
    for _ in range({runs}):
        for name, (n, fn, b, args, page, pos) in zip(names, m._steps):
            t = time.ticks_us()
            if n == 6:
                fn(b[0], b[1], b[2], b[3], b[4], b[5], args)
            elif n == 2:
                fn(b[0], b[1], args)
            else:
                fn(b[0], b[1], b[2], args)
            spent[name] = spent.get(name, 0) + time.ticks_diff(time.ticks_us(), t)
    for name in spent:
        print("OP", name, spent[name] // {runs})
"""


def micropython_binary():
    return str(Path(sys.executable).parent / "micropython")


def _input_size(capsule):
    from minerva_packager.capsule.container import read_capsule

    spec = read_capsule(capsule).meta["inputs"][0]
    size = 1
    for d in spec["shape"]:
        size *= d
    return size


def measure(capsule, tier, runs, per_op=False, binary=None):
    """(median, best) seconds of ``run()`` for ``tier`` on MicroPython, and {op: seconds}
    (mean per run) if per_op. The best run is the figure least disturbed by a busy machine.

    Raises RuntimeError with MicroPython's last error line when the tier cannot run.
    """
    script = _SCRIPT.format(device=str(ROOT / "device"), natmod=str(NATMOD_DIR),
                            capsule=str(capsule), tier=tier,
                            size=_input_size(capsule), runs=runs, per_op=per_op)
    proc = subprocess.run([binary or micropython_binary(), "-X", "heapsize=8M", "-c", script],
                          capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError((proc.stderr.strip().splitlines() or ["failed"])[-1])
    median, best, ops = None, None, {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if parts[0] == "MEDIAN_US":
            median = int(parts[1]) / 1e6
        elif parts[0] == "BEST_US":
            best = int(parts[1]) / 1e6
        elif parts[0] == "OP":
            ops[parts[1]] = int(parts[2]) / 1e6
    return median, best, ops


def measure_viper(models=MODELS, tiers=("viper", "python"), runs=None, per_op=False,
                  workdir=None):
    """Pack each shared model and time each tier; returns one row per model:
    ``{"model": name, "tiers": {tier: median seconds or None}, "best": {tier: seconds or
    None}, "ops": {op: seconds}}``."""
    from minerva_packager.capsule.pack import pack_file

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(workdir or tmp)
        for name in models:
            cap = folder / f"{name}.cap"
            pack_file(SHARED / f"{name}.tflite", cap)
            row = {"model": name, "tiers": {}, "best": {}, "ops": {}}
            for tier in tiers:
                n = runs or DEFAULT_RUNS.get(tier, 5)
                try:
                    seconds, best, ops = measure(cap, tier, n, per_op and tier == "viper")
                except RuntimeError as exc:
                    seconds, best, ops = None, None, {}
                    print(f"{name}: tier {tier} failed: {exc}", file=sys.stderr)
                row["tiers"][tier] = seconds
                row["best"][tier] = best
                row["ops"].update(ops)
            rows.append(row)
    return rows


def print_table(rows, tiers=("viper", "python")):
    """Markdown table: median (best) ms per tier, and viper's ratio to natmod and Python."""
    print("| model | " + " | ".join(f"{t} (MicroPython unix)" for t in tiers)
          + " | viper / natmod | python / viper |")
    print("|---" * (len(tiers) + 3) + "|")
    for r in rows:
        cells = [r["model"]]
        for t in tiers:
            s, best = r["tiers"].get(t), r["best"].get(t)
            cells.append("n/a" if s is None else f"{s * 1e3:.3f} ({best * 1e3:.3f}) ms")
        v, p, n = (r["tiers"].get(t) for t in ("viper", "python", "natmod"))
        cells.append(f"{v / n:.0f}x" if v and n else "-")
        cells.append(f"{p / v:.0f}x" if v and p else "-")
        print("| " + " | ".join(cells) + " |")
    for r in rows:
        if r["ops"]:
            ops = ", ".join(f"{k} {v * 1e3:.2f} ms" for k, v in
                            sorted(r["ops"].items(), key=lambda kv: -kv[1]))
            print(f"\n{r['model']} viper per op: {ops}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--tiers", default="viper,python")
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--per-op", action="store_true")
    opts = parser.parse_args()
    if not SHARED.is_dir():
        sys.exit(f"{SHARED} is absent (the reference models live in ../shared)")
    tiers = tuple(opts.tiers.split(","))
    rows = measure_viper(opts.models.split(","), tiers, opts.runs, opts.per_op)
    print_table(rows, tiers)


if __name__ == "__main__":
    main()
