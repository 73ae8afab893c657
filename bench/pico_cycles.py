"""Cycles per inference on the emulated Pico: TFLite Micro (CMSIS-NN and reference kernels)
and Minerva (natmod and viper tiers) on the shared models, side by side in one run.

    python bench/pico_cycles.py [--models kws,ic,ad] [--tiers natmod,viper] [--no-tflm]

Both sides run in rp2040js 1.4.1 (the same Cortex-M0+ timing model, 125 MHz):

- TFLite Micro: the bare-metal RP2040 programs of ../shared/anchors/tflm-cmsisnn-pico, run by
  their own runner (run_tflm.mjs), which counts emulated cycles between breakpoints placed
  around one Invoke() after a warm-up. All-zero int8 input.
- Minerva: the real MicroPython v1.28.0 RPI_PICO firmware (``minerva vboard --emulate``), the
  runtime and capsules preloaded in a flash image by ``minerva image``; each model is packed
  ``--board rp2040`` (AD then pages its filters from flash). After a warm-up run, ``run(x)``
  of an all-zero input is timed with ``time.ticks_us()``, which the firmware advances by one
  per 125 emulated cycles (so cycles = us * 125, to within 125), then each op's kernel call
  on its own (the same calls run() makes, a paged op with its filter read). "dispatch" is
  the whole run(x) minus the ops: the input copy and the Python loop over the steps.

What the emulator leaves out: flash wait states and XIP cache misses (code and weights in
flash cost what SRAM costs), the second core (unused by both), and bus contention. On a real
Pico, code and const data executed from flash cost more on a cache miss, for both sides.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# ../shared beside the repository, or $MINERVA_SHARED (a git worktree elsewhere).
SHARED = Path(os.environ.get("MINERVA_SHARED") or ROOT.parent / "shared")
ANCHOR = SHARED / "anchors" / "tflm-cmsisnn-pico"
FIRMWARE = SHARED / "firmware" / "micropython-v1.28.0-RPI_PICO.uf2"
BOOTROM = SHARED / "firmware" / "rp2040-bootrom-b1.bin"
BIN = Path(sys.executable).parent
MODELS = {"kws": "kws01_dscnn_int8", "ic": "ic01_resnet8_int8",
          "ad": "ad01_fc_autoencoder_int8"}
TFLM_NAMES = {"kws": "KWS", "ic": "IC", "ad": "AD"}
CPU_HZ = 125_000_000
CYCLES_PER_US = CPU_HZ // 1_000_000

# One model on one tier, in a fresh interpreter (each connect soft-resets the board).
_SCRIPT = """
import gc, time, minerva
gc.collect()
m = minerva.load({capsule!r}, kernels={tier!r})
x = bytearray({size})
m.run(x)
t = time.ticks_us()
m.run(x)
whole = time.ticks_diff(time.ticks_us(), t)
print("TIER", m.tier)
print("RUN", whole)
f = m._file
for name, (n, fn, b, args, page, pos) in zip(m.info()["ops"], m._steps):
    t = time.ticks_us()
    if page is not None:
        f.seek(pos)
        f.readinto(page)
    if n == 6:
        fn(b[0], b[1], b[2], b[3], b[4], b[5], args)
    elif n == 2:
        fn(b[0], b[1], args)
    else:
        fn(b[0], b[1], b[2], args)
    spent = time.ticks_diff(time.ticks_us(), t)
    print("OP", name, spent, int(page is not None), ",".join(str(v) for v in args[:9]))
m.close()
"""


def macs(op, params):
    """Multiply-accumulates of a weighted op from its first argument words, else 0."""
    if op == "CONV_2D":
        b, _, _, in_c, out_h, out_w, out_c, k_h, k_w = params[:9]
        return b * out_h * out_w * out_c * k_h * k_w * in_c
    if op == "DEPTHWISE_CONV_2D":
        b, _, _, _, out_h, out_w, out_c, k_h, k_w = params[:9]
        return b * out_h * out_w * out_c * k_h * k_w
    if op == "FULLY_CONNECTED":
        return params[0] * params[1] * params[2]
    return 0


def tool(name, *args, timeout=600):
    proc = subprocess.run([str(BIN / name), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        sys.exit(f"bench: {name} {' '.join(map(str, args))} failed:\n{proc.stdout}"
                 f"{proc.stderr}")
    return proc.stdout


def tflm_cycles(kernels, workdir):
    """{KWS: cycles, ...} of the anchor's TFLite Micro program built with ``kernels``."""
    from minerva_packager.board.pico import node_binary, node_modules

    # run_tflm.mjs imports rp2040js by name, which Node resolves next to the script.
    runner_dir = Path(workdir) / "tflm"
    runner_dir.mkdir(exist_ok=True)
    shutil.copy(ANCHOR / "run_tflm.mjs", runner_dir)
    if not (runner_dir / "node_modules").exists():
        os.symlink(node_modules(), runner_dir / "node_modules")
    proc = subprocess.run([node_binary(), str(runner_dir / "run_tflm.mjs"),
                           "--uf2", str(ANCHOR / f"tflm_bench_{kernels}.uf2"),
                           "--bootrom", str(BOOTROM)],
                          capture_output=True, text=True, timeout=900)
    found = re.search(r"RESULT (\{.*\})", proc.stderr)
    if proc.returncode != 0 or not found:
        sys.exit(f"bench: TFLite Micro ({kernels}) failed:\n{proc.stdout}{proc.stderr}")
    return json.loads(found.group(1))


def minerva_cycles(keys, tiers, workdir):
    """{(key, tier): (cycles of run(x), [(op, cycles, paged, params), ...])}."""
    from minerva_packager.board.transport import connect
    from minerva_packager.capsule.container import read_capsule

    workdir = Path(workdir)
    capsules = {}
    for key in keys:
        capsules[key] = workdir / f"{key}.cap"
        tool("minerva", "pack", SHARED / "models" / f"{MODELS[key]}.tflite", "--board",
             "rp2040", "-o", capsules[key])
    image = workdir / "bench.lfs"
    tool("minerva", "image", "--board", "rp2040", "-o", image, *capsules.values())
    state = workdir / "vboard"
    port = tool("minerva", "vboard", "--emulate", "--firmware", FIRMWARE, "--detach",
                "--state-dir", state, "--image", image).strip().splitlines()[-1]
    results = {}
    try:
        for key in keys:
            size = 1
            for dim in read_capsule(capsules[key]).meta["inputs"][0]["shape"]:
                size *= dim
            for tier in tiers:
                script = _SCRIPT.format(capsule=f"/capsules/{key}.cap", tier=tier, size=size)
                with connect(port) as board:
                    out = board.exec(script, timeout=900).decode()
                ops, whole = [], None
                for line in out.splitlines():
                    parts = line.split()
                    if parts[0] == "TIER" and parts[1] != tier:
                        sys.exit(f"bench: {key} loaded the {parts[1]} tier, not {tier}")
                    if parts[0] == "RUN":
                        whole = int(parts[1]) * CYCLES_PER_US
                    elif parts[0] == "OP":
                        params = [int(v) for v in parts[4].split(",")]
                        ops.append((parts[1], int(parts[2]) * CYCLES_PER_US, parts[3] == "1",
                                    params))
                results[key, tier] = (whole, ops)
                print(f"measured {key} {tier}: {whole:,} cycles", file=sys.stderr)
    finally:
        tool("minerva", "vboard", "stop", "--state-dir", state)
    return results


def _ms(cycles):
    return f"{cycles / CPU_HZ * 1000:.1f}"


def print_tables(keys, tiers, tflm, ours):
    print("| model | TFLM + CMSIS-NN | TFLM reference | " +
          " | ".join(f"Minerva {t}" for t in tiers) + " |")
    print("|---|---|---|" + "---|" * len(tiers))
    for key in keys:
        base = tflm.get("cmsis_nn", {}).get(TFLM_NAMES[key])
        cells = []
        for kernels in ("cmsis_nn", "reference"):
            cycles = tflm.get(kernels, {}).get(TFLM_NAMES[key])
            cells.append("-" if cycles is None else
                         f"{cycles / 1e6:.2f} M ({_ms(cycles)} ms)"
                         + (f", {cycles / base:.2f}x" if base and kernels != "cmsis_nn" else ""))
        for tier in tiers:
            cycles = ours[key, tier][0]
            cells.append(f"{cycles / 1e6:.2f} M ({_ms(cycles)} ms)"
                         + (f", {cycles / base:.2f}x" if base else ""))
        print(f"| {key} | " + " | ".join(cells) + " |")
    print("\nCycles in M, ms at 125 MHz, ratio to TFLM + CMSIS-NN.")
    for key in keys:
        print(f"\n{key} per op (cycles; cycles per MAC for weighted ops):\n")
        print("| # | op | MACs | " + " | ".join(f"{t} cycles | {t} c/MAC" for t in tiers)
              + " |")
        print("|---|---|---|" + "---|---|" * len(tiers))
        first = ours[key, tiers[0]][1]
        for index, (op, _, paged, params) in enumerate(first):
            n = macs(op, params)
            cells = []
            for tier in tiers:
                cycles = ours[key, tier][1][index][1]
                cells += [f"{cycles:,}", f"{cycles / n:.1f}" if n else ""]
            label = op + (" (filter paged in)" if paged else "")
            print(f"| {index} | {label} | {n:,} | " + " | ".join(cells) + " |")
        cells = []
        for tier in tiers:
            whole, ops = ours[key, tier]
            cells += [f"{whole - sum(o[1] for o in ops):,}", ""]
        print("| | dispatch + input copy | | " + " | ".join(cells) + " |")
        total_macs = sum(macs(op, params) for op, _, _, params in first)
        cells = []
        for tier in tiers:
            whole = ours[key, tier][0]
            cells += [f"{whole:,}", f"{whole / total_macs:.1f}"]
        print(f"| | whole run(x) | {total_macs:,} | " + " | ".join(cells) + " |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="kws,ic,ad")
    parser.add_argument("--tiers", default="natmod,viper")
    parser.add_argument("--no-tflm", action="store_true", help="only Minerva's tiers")
    args = parser.parse_args()
    keys = args.models.split(",")
    tiers = args.tiers.split(",")
    for need in (FIRMWARE, BOOTROM, ANCHOR / "run_tflm.mjs"):
        if not need.exists():
            sys.exit(f"bench: {need} is absent (the firmware and anchors live in ../shared)")
    with tempfile.TemporaryDirectory() as workdir:
        tflm = {}
        if not args.no_tflm:
            for kernels in ("cmsis_nn", "reference"):
                tflm[kernels] = tflm_cycles(kernels.replace("_", ""), workdir)
                print(f"measured TFLM {kernels}: {tflm[kernels]}", file=sys.stderr)
        ours = minerva_cycles(keys, tiers, workdir)
    print_tables(keys, tiers, tflm, ours)


if __name__ == "__main__":
    main()
