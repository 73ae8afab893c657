"""What an update costs: bytes shipped and seconds to deliver, verify and swap, measured side by
side in one run on the virtual Pico (the MicroPython unix port behind a pty, with the board's
heap and a LittleFS image).

    python bench/update_cost.py [--models kws01_dscnn_int8,ic01_resnet8_int8]

For each model and change, (a) new weights throughout, (b) a retrained last layer, (c) new
metadata only, all signed with a provisioned key: the full signed capsule and the delta are
each delivered with `minerva deploy --stage` and staged by the board's runtime (checksums,
Ed25519 signature, version; the delta rebuilt first); a firmware update ships MicroPython's
RPI_PICO UF2 (../shared/firmware) plus the capsule over the same serial link (timed by
uploading that many bytes; reflashing itself is not counted, so it is a lower bound).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT / "tests"))

from minerva_packager.board.transport import connect  # noqa: E402
from minerva_packager.capsule import signing  # noqa: E402
from minerva_packager.capsule.container import read_capsule  # noqa: E402
from minerva_packager.capsule.delta import make_delta  # noqa: E402
from minerva_packager.capsule.pack import pack_tflite  # noqa: E402

MINERVA = [str(Path(sys.executable).parent / "minerva")]
_STAGE = """
import time, gc
gc.collect()
t = time.ticks_ms()
import minerva
from minerva.runtime import Runtime
rt = Runtime(kernels="python")
st = rt.status()
cand = st["candidate"]
print("STAGED", time.ticks_diff(time.ticks_ms(), t), cand and cand["version"],
      st["rejected"][-1]["reason"] if st["rejected"] else "")
if st["candidate"]:
    rt.reject("benchmark")
"""
_VERIFY = """
import time
from minerva.ed25519 import verify_py, _constants
_constants()
t = time.ticks_us()
ok = verify_py(%r, %r, %r)
print("VERIFY", time.ticks_diff(time.ticks_us(), t), ok)
"""


def _with_weights(data, edit):
    sections = []
    for name, raw, required in signing.split_sections(data):
        if name == "WEIGHTS":
            raw = bytearray(raw)
            edit(raw)
            raw = bytes(raw)
        sections.append((name, raw, required))
    from minerva_packager.capsule.container import encode_capsule

    return encode_capsule(sections)


def variants(tflite, name):
    """The active capsule and the three updates (unsigned; signed later)."""
    base = pack_tflite(tflite, name=name, version="1.0.0")
    cap = read_capsule(base)
    rng = np.random.default_rng(0)

    def everything(w):
        # Every int8 filter retrained (biases and requantization kept: they are data the
        # loader range-checks, and a retrained model's stay in range too).
        for t in cap.tensors:
            if t.storage == "weights" and t.dtype == "int8":
                w[t.offset:t.offset + t.nbytes] = rng.integers(
                    -127, 128, t.nbytes, dtype=np.int8).tobytes()

    last_fc = [op for op in cap.ops if op.name == "FULLY_CONNECTED"][-1]

    def last_layer(w):
        t = cap.tensors[last_fc.inputs[1]]
        w[t.offset:t.offset + t.nbytes] = rng.integers(-127, 128, t.nbytes,
                                                       dtype=np.int8).tobytes()

    meta = pack_tflite(tflite, name=name, version="1.0.1")
    return base, {"new weights": _bump(_with_weights(base, everything)),
                  "retrained last layer": _bump(_with_weights(base, last_layer)),
                  "metadata only": meta}


def _bump(data):
    # Same bytes with the version in META raised, as a release would.
    import json

    sections = []
    for name, raw, required in signing.split_sections(data):
        if name == "META":
            meta = json.loads(raw)
            meta["version"] = "1.1.0"
            raw = json.dumps(meta).encode()
        sections.append((name, raw, required))
    from minerva_packager.capsule.container import encode_capsule

    return encode_capsule(sections)


def _deploy(port, path):
    t = time.monotonic()
    proc = subprocess.run(MINERVA + ["deploy", "--stage", "--no-runtime", "-q", "--port", port,
                                     str(path)], capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"deploy of {path} failed: {proc.stderr}")
    return time.monotonic() - t


def _stage(port):
    with connect(port) as board:
        out = board.exec(_STAGE, timeout=300).decode()
    line = [ln for ln in out.splitlines() if ln.startswith("STAGED")][0].split(None, 3)
    return int(line[1]) / 1000, line[2], line[3] if len(line) > 3 else ""


_WIPE = """
import os
def wipe(path):
    for name in os.listdir(path):
        full = path + "/" + name
        if os.stat(full)[0] & 0x4000:
            wipe(full)
            os.rmdir(full)
        else:
            os.remove(full)
try:
    wipe("/capsules")
except OSError:
    pass
"""


def _upload_seconds(port, nbytes):
    with connect(port) as board:
        t = time.monotonic()
        board.write_file("/firmware.bin", os.urandom(nbytes))
        seconds = time.monotonic() - t
        board.exec("import os\nos.remove('/firmware.bin')")
    return seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="kws01_dscnn_int8,ic01_resnet8_int8")
    args = parser.parse_args(argv)
    firmware = SHARED / "firmware" / "micropython-v1.28.0-RPI_PICO.uf2"
    if not firmware.exists():
        sys.exit(f"{firmware} is absent (../shared)")
    from board_helpers import vboard

    work = Path(tempfile.mkdtemp(prefix="update-cost-"))
    key = work / "release.key"
    public = signing.new_key(key)
    private = signing.load_private_key(key)
    rows = []
    with vboard(work / "state", heap="4000000") as port:
        subprocess.run(MINERVA + ["deploy", "-q", "--port", port], check=True,
                       capture_output=True)
        signing.provision(port, public)
        with connect(port) as board:
            pk = bytes.fromhex(public.read_text().split()[1])
            digest = os.urandom(32)
            out = board.exec(_VERIFY % (pk, digest, private.sign(digest)), timeout=120)
        verify_us = int(out.decode().split()[1])
        for model in args.models.split(","):
            base, updates = variants(SHARED / "models" / f"{model}.tflite", model)
            base = signing.sign_capsule(base, private)
            with connect(port) as board:  # a board that runs this model, nothing else
                board.exec(_WIPE)
            (work / "base.cap").write_bytes(base)
            _deploy(port, work / "base.cap")
            _stage(port)
            for change, new in updates.items():
                new = signing.sign_capsule(new, private)
                delta = make_delta(base, new)
                full_path, delta_path = work / "update.cap", work / "update.delta"
                full_path.write_bytes(new)
                delta_path.write_bytes(delta)
                full_s = _deploy(port, full_path)
                full_stage, version, why = _stage(port)
                assert version not in ("None", None), why
                delta_s = _deploy(port, delta_path)
                delta_stage, version, why = _stage(port)
                assert version not in ("None", None), why
                fw_bytes = firmware.stat().st_size + len(new)
                fw_s = _upload_seconds(port, fw_bytes)
                rows.append((model, change, len(new), full_s + full_stage, len(delta),
                             delta_s + delta_stage, fw_bytes, fw_s))
    print(f"Ed25519 verification on MicroPython (unix port, x86-64, plain Python integers): "
          f"{verify_us / 1000:.1f} ms")
    print("\n| model | change | full capsule | full: deliver + stage | delta | delta: deliver "
          "+ stage | firmware + capsule | firmware: deliver | bytes: full/delta | bytes: "
          "firmware/delta | time: firmware/delta |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for model, change, full, full_s, delta, delta_s, fw, fw_s in rows:
        print(f"| {model} | {change} | {full:,} B | {full_s:.2f} s | {delta:,} B | "
              f"{delta_s:.2f} s | {fw:,} B | {fw_s:.2f} s | {full / delta:.1f}x | "
              f"{fw / delta:.0f}x | {fw_s / delta_s:.1f}x |")


if __name__ == "__main__":
    main()
