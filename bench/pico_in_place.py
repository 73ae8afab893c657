"""Weights in place from flash on the emulated Pico: heap after load and cycles per inference,
loaded from the capsule file (weights copied into the heap, or paged from LittleFS as packed
`--board rp2040`) and from the flash store (weights read where they lie, XIP), side by side in
one run of the real MicroPython v1.28.0 RPI_PICO firmware in rp2040js.

    python bench/pico_in_place.py [--tier natmod|viper]

Cycles are rp2040js's Cortex-M0+ model at 125 MHz (time.ticks_us() x 125); it does not model
flash wait states or the XIP cache, so the in-place figures are a lower bound on a real chip.
The heap is gc.mem_free() before and after the second load of the same capsule (the first
brings in the runtime's code). TFLite Micro's arenas are issue 17's figures.
"""

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from board_helpers import emulated_pico, tool  # noqa: E402

from minerva_packager.board.transport import connect  # noqa: E402
from minerva_packager.capsule.container import read_capsule  # noqa: E402

SHARED = ROOT.parent / "shared" / "models"
MODELS = {"kws": "kws01_dscnn_int8", "ic": "ic01_resnet8_int8", "ad": "ad01_fc_autoencoder_int8"}
TFLM_ARENA = {"kws": 22_820, "ic": 54_980, "ad": 2_580}
TFLM_CYCLES = {"ad": 2_310_000}  # TFLM + CMSIS-NN on the same emulator (issue 17)
_MEASURE = """
import gc, time, minerva
from minerva.flashstore import platform_store
def measure(what, tier, x):
    m = minerva.load(what, kernels=tier)
    m = None
    gc.collect()
    free = gc.mem_free()
    m = minerva.load(what, kernels=tier)
    gc.collect()
    used = free - gc.mem_free()
    m.run(x)
    t = time.ticks_us()
    m.run(x)
    us = time.ticks_diff(time.ticks_us(), t)
    print('ROW', used, us, m.info()['paged'], m.in_place)
    m.close()
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tier", default="natmod")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pico_in_place_"))
    capsules = []
    for key, model in MODELS.items():
        for kind, flags in (("board", ["--board", "rp2040"]), ("whole", ["--ram-budget",
                                                                         "1000000"])):
            path = work / f"{key}_{kind}.cap"
            tool("minerva", "pack", SHARED / f"{model}.tflite", *flags, "-o", path)
            capsules.append(path)
    image = work / "models.lfs"
    tool("minerva", "image", "--board", "rp2040", "-o", image, *capsules, timeout=300)
    print(f"{'model':6} {'loaded from':34} {'heap B':>8} {'x TFLM arena':>12} "
          f"{'M cycles':>9} {'paged':>5}")
    with emulated_pico(work / "board", image=image) as port:
        for key in MODELS:
            size = int(np.prod(read_capsule(work / f"{key}_whole.cap").meta["inputs"][0]
                               ["shape"]))
            x = np.random.default_rng(7).integers(-128, 128, size, dtype=np.int8).tobytes()
            rows = (("file, packed --board rp2040", f"'/capsules/{key}_board.cap'"),
                    ("flash store (in place)",
                     f"platform_store('/capsules').put('{key}', '/capsules/{key}_whole.cap')"))
            for label, what in rows:
                with connect(port) as board:  # a soft reset: each row on a whole heap
                    board.exec(_MEASURE + f"x = {x!r}", timeout=60)
                    out = board.exec(f"measure({what}, {args.tier!r}, x)",
                                     timeout=900).decode()
                used, us, paged, _ = out.split("ROW")[-1].split()
                cycles = int(us) * 125
                extra = (f" ({cycles / TFLM_CYCLES[key]:.2f}x TFLM+CMSIS-NN)"
                         if key in TFLM_CYCLES and args.tier == "natmod" else "")
                print(f"{key:6} {label:34} {int(used):8} {int(used) / TFLM_ARENA[key]:12.2f} "
                      f"{cycles / 1e6:9.2f} {paged:>5}{extra}", flush=True)


if __name__ == "__main__":
    main()
