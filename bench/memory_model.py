"""The heap a loaded model really takes, measured on MicroPython: the figures behind each board's
``memory`` block (boards/*.json) and the packager's memory model (capsule/memory.py).

    python bench/memory_model.py [--heap BYTES]

The runtime is installed as `minerva deploy` installs it (.mpy files and the native module),
on the MicroPython unix port (x86-64: objects take twice a 32-bit board's bytes, so these
figures bound the 32-bit boards from above). For each kernel tier it measures what
``import minerva`` plus the first load keep (the runtime: modules, the tier, the loader), then
for each shared model what one more load keeps beyond the model's buffers (arena + resident
weights): the graph's Python objects, fitted as ``fixed + per_op * ops + per_tensor * tensors``.
"""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED_MODELS = ROOT.parent / "shared" / "models"
MODELS = ("hello_world_int8", "ad01_fc_autoencoder_int8", "kws01_dscnn_int8",
          "ic01_resnet8_int8")
# Packed to a RAM budget that pages some filters: a paged model's loader keeps a file open.
PAGED = (("ic01_resnet8_int8", 100_000), ("ad01_fc_autoencoder_int8", 120_000))

from minerva_packager.board.device_files import runtime_files  # noqa: E402
from minerva_packager.board.profiles import load_board  # noqa: E402
from minerva_packager.capsule.container import read_capsule  # noqa: E402
from minerva_packager.capsule.pack import pack_file  # noqa: E402

_MEASURE = """
import gc, sys
sys.path.insert(0, {lib!r})
gc.collect(); before = gc.mem_alloc()
import minerva
def load_and_run(path):
    m = minerva.load(path, kernels={tier!r})
    n = 1
    for d in m.info()["inputs"][0]["shape"]:
        n *= d
    m.run(bytes(n))
    return m
load_and_run({warm!r}).close()  # the modules its code paths need stay imported
gc.collect(); print("runtime", gc.mem_alloc() - before)
for path in {paths!r}:
    gc.collect(); start = gc.mem_alloc()
    m = load_and_run(path)
    gc.collect(); print("model", gc.mem_alloc() - start)
    m.close(); m = None
"""


def install_runtime(root):
    """The runtime's files as deploy installs them for the unix port (x64)."""
    for path, data in runtime_files(load_board("unix"), arch="x64").items():
        if "/minerva/" in path or path.endswith("minerva_nat.mpy"):
            dest = root / "minerva" / path.rsplit("/", 1)[1] if "/minerva/" in path \
                else root / path.rsplit("/", 1)[1]
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
    return root


def measure(micropython, lib, capsules, tier, heap):
    """(runtime bytes, [model bytes beyond its buffers, ...]) for ``tier``: the runtime is
    the most any one model's first load and run leaves imported (one process per model, as
    MicroPython's conservative collector may keep a closed model alive in the same one)."""
    runtimes, loads = [], []
    for warm in capsules:
        script = _MEASURE.format(lib=str(lib), tier=tier, warm=str(warm),
                                 paths=[str(warm)])
        proc = subprocess.run([micropython, "-X", f"heapsize={heap}", "-c", script],
                              capture_output=True, text=True, timeout=600)
        if proc.returncode:
            raise SystemExit(f"{tier}: {proc.stdout}{proc.stderr}")
        lines = dict(ln.split() for ln in proc.stdout.splitlines())
        runtimes.append(int(lines["runtime"]))
        loads.append(int(lines["model"]))
    buffers = [read_capsule(c).meta["ram_bytes"] for c in capsules]
    return max(runtimes), [load - b for load, b in zip(loads, buffers)]


def fit(counts, objects):
    """Least-squares ``fixed, per_op, per_tensor`` and the largest under-prediction."""
    a = np.array([[1, ops, tensors] for ops, tensors in counts], dtype=float)
    coef, *_ = np.linalg.lstsq(a, np.array(objects, dtype=float), rcond=None)
    worst = max(o - a[i] @ coef for i, o in enumerate(objects))
    return coef, worst


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heap", type=int, default=2 * 1024 * 1024)
    args = parser.parse_args()
    micropython = str(Path(sys.executable).parent / "micropython")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        lib = install_runtime(tmp / "lib")
        capsules, counts = [], []
        for name in MODELS:
            cap = tmp / f"{name}.cap"
            pack_file(SHARED_MODELS / f"{name}.tflite", cap)
            parsed = read_capsule(cap)
            capsules.append(cap)
            counts.append((len(parsed.ops), len(parsed.tensors)))
        for name, budget in PAGED:
            cap = tmp / f"{name}_paged.cap"
            pack_file(SHARED_MODELS / f"{name}.tflite", cap, ram_budget=budget)
            parsed = read_capsule(cap)
            capsules.append(cap)
            counts.append((len(parsed.ops), len(parsed.tensors)))
            print(f"{cap.name}: {len(parsed.meta['paged_tensors'])} filters paged")
        names = [c.stem for c in capsules]
        print("| tier | runtime B | " + " | ".join(f"{n} objects B ({o} ops, {t} tensors)"
                                                  for n, (o, t) in zip(names, counts))
              + " | fit: fixed + per op + per tensor | worst under-prediction |")
        print("|---" * (len(names) + 4) + "|")
        for tier in ("natmod", "viper", "python"):
            runtime, objects = measure(micropython, lib, capsules, tier, args.heap)
            coef, worst = fit(counts, objects)
            print(f"| {tier} | {runtime} | " + " | ".join(str(o) for o in objects)
                  + f" | {coef[0]:.0f} + {coef[1]:.0f}/op + {coef[2]:.0f}/tensor"
                  + f" | {worst:.0f} |")


if __name__ == "__main__":
    main()
