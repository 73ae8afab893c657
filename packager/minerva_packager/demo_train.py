"""``make demo``, part two: a board fine-tunes its model to its own user (docs/training.md).

    python -m minerva_packager.demo_train [--board rp2040] [--epochs 4] [--samples 300]

The digits capsule is packed trainable (``--trainable last:1``: the last layer's float32
masters, SGD with momentum and the POET schedule for the board) and installed on a fresh
virtual board with the board's heap. The user's digits are drawn one pixel to the right of
the training data's, and the model gets about half of them right. The board trains the last
layer on a few hundred labelled shifted digits (the first layer runs int8, frozen), following
the schedule; the result becomes the next version, staged as the candidate, shadow-tested on
the held-out shifted digits beside the active model, and promoted. Accuracy on the held-out
shifted digits is measured on the board before and after.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT_WORK_DIR = Path(".cache") / "demo_train"
STAGES = 5
# A fine-tuned model is meant to disagree with the active one where that one is wrong on
# the user's data (here on about half the inputs): agreement only guards against a broken
# candidate; the labelled held-out accuracy shows whether it is better.
POLICY = {"promote_at": 0.4, "min_samples": 100}

_ON_BOARD = """
import gc, json, time, minerva
from minerva.trainer import FileSamples
rt = minerva.Runtime("/capsules")
def _accuracy():
    labels = open("/train/heldout_y.bin", "rb").read()
    held = FileSamples("/train/heldout_x.bin", 64)
    right = 0
    for k in range(len(labels)):
        out = rt.infer(held[k])
        best = 0
        for c in range(len(out)):
            if out[c] > out[best]:
                best = c
        right += best == labels[k]
    held.file.close()
    return right / len(labels)
"""
_BEFORE = "print('JSON ' + json.dumps({'accuracy': _accuracy()}))\n"
_TRAIN = """
labels = open("/train/train_y.bin", "rb").read()
samples = FileSamples("/train/train_x.bin", 64)
gc.collect()
base = gc.mem_alloc()
t = rt.trainer(measure=True)
t0 = time.ticks_ms()
losses = [rt.train(samples, labels, 1) for _ in range(%(epochs)d)]
ms = time.ticks_diff(time.ticks_ms(), t0)
print('JSON ' + json.dumps({'losses': losses, 'ms': ms, 'samples': len(labels),
      'peak': t.peak_heap - base, 'planned': t.planned, 'arena': t.arena_bytes,
      'paged': t.paged_bytes, 'tier': t.tier, 'heap': gc.mem_free() + gc.mem_alloc()}))
samples.file.close()
print('JSON ' + json.dumps({'staged': rt.stage_trained(), 'status': rt.status()}))
"""


def _stage(number, text):
    print(f"\n[{number}/{STAGES}] {text}", flush=True)


def shift_right(x):
    """8x8 digits moved one pixel right (the left column blank)."""
    images = np.asarray(x).reshape(-1, 8, 8)
    out = np.zeros_like(images)
    out[:, :, 1:] = images[:, :, :-1]
    return out.reshape(-1, 64)


def build(work_dir, board, samples):
    """The trainable capsule and the user's data; returns their paths and the plan."""
    from .capsule.container import read_capsule
    from .capsule.pack import pack_tflite
    from .capsule.trainable import pack_trainable
    from .cli.capsule import shadow_policy_section
    from .examples import digits

    work_dir = Path(work_dir)
    figures = digits.build(work_dir)
    policy = work_dir / "policy.json"
    policy.write_text(json.dumps(POLICY))
    extra = pack_trainable(figures["tflite"], "last:1", board, batch=4)
    capsule = work_dir / "digits_trainable.cap"
    capsule.write_bytes(pack_tflite(figures["tflite"], name="digits", version="1.0.0",
                                    extra_sections=extra + [
                                        ("SHADOW_POLICY", shadow_policy_section(policy),
                                         False)]))
    x, y, xh, yh = digits.load_split()
    files = {"train_x.bin": digits.quantize_pixels(shift_right(x[:samples])).tobytes(),
             "train_y.bin": y[:samples].astype(np.uint8).tobytes(),
             "heldout_x.bin": digits.quantize_pixels(shift_right(xh)).tobytes(),
             "heldout_y.bin": yh.astype(np.uint8).tobytes()}
    heldout = work_dir / "heldout_shifted.npy"
    np.save(heldout, digits.quantize_pixels(shift_right(xh)))
    return capsule, files, heldout, yh, read_capsule(capsule).train_schedule


def _json_lines(out):
    return [json.loads(line[5:]) for line in out.splitlines() if line.startswith("JSON ")]


def story(port, capsule, files, heldout, labels, plan, epochs, via="mpremote", board="rp2040"):
    from .board.deploy import deploy
    from .board.transport import connect
    from .shadow import remote as shadow
    from .shadow.remote import _run

    def quiet(text):
        if not text.startswith(("up to date", "uploading")):
            print("  " + text)

    _stage(2, f"Installing the runtime and the trainable capsule over {port}; copying the "
              "user's labelled digits (drawn one pixel to the right) to the board")
    deploy(port, [], board=board, via=via, say=quiet)
    deploy(port, [capsule], board=board, via=via, say=quiet, runtime=False, stage=True)
    with connect(port, via) as transport:
        _run(transport, "import os\ntry:\n    os.mkdir('/train')\nexcept OSError:\n    pass\n")
        for name, data in files.items():
            transport.write_file(f"/train/{name}", data)
        _run(transport, _ON_BOARD)
        before = _json_lines(_run(transport, _BEFORE, timeout=600))[0]["accuracy"]
        print(f"  held-out shifted digits, on the board: {before:.1%} right before training")

        _stage(3, f"Training the last layer on the board: {epochs} epochs over "
                  f"{len(files['train_y.bin'])} samples, as the schedule says")
        out = _run(transport, _TRAIN % {"epochs": epochs}, timeout=1800)
    trained, staged = _json_lines(out)
    per_sample = trained["ms"] / (epochs * trained["samples"])
    print(f"  loss per epoch {', '.join(f'{v:.3f}' for v in trained['losses'])}; "
          f"{per_sample:.2f} ms per sample ({trained['tier']} kernels)")
    print(f"  heap held by the trainer {trained['peak']} bytes (plan: "
          f"{plan['predicted']['peak_ram_bytes']} + the trainer's objects; budget "
          f"{plan['limits']['ram_bytes']} + reserve); flash written {trained['paged']} bytes "
          f"(plan: {plan['predicted']['flash_bytes_written']} per sample)")
    cand = staged["status"]["candidate"]
    print(f"  staged as the candidate: {cand['name']} {cand['version']} ({cand['file']}); "
          f"the active model is still {staged['status']['active']['version']}")

    _stage(4, "Shadow-testing the candidate beside the active model on the held-out shifted "
              "digits (no labels)")
    outputs, st = shadow.feed(port, heldout, via)
    s = st["shadow"]
    print(f"  {s['samples']} inputs: agreement {s['agreement']:.1%}, decision {s['decision']}"
          f" ({s['reason']})")

    _stage(5, "Promoting the trained version; it serves the held-out digits")
    st = shadow.act(port, "promote", via)
    outputs, st = shadow.feed(port, heldout, via)
    after = float(np.mean([int(np.argmax(np.frombuffer(o, np.int8))) for o in outputs] ==
                          np.asarray(labels)))
    print(f"  now serving {st['active']['version']}: held-out shifted digits {before:.1%} "
          f"before, {after:.1%} after")
    return {"before": before, "after": after, "decision": s["decision"],
            "version": st["active"]["version"], "trained": trained}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--board", default="rp2040")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--via", default="mpremote", choices=("mpremote", "ampy"))
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR)
    args = parser.parse_args(argv)
    from .board.detached import running_vboard
    from .board.profiles import load_board
    from .errors import PackagerError

    started = time.monotonic()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    board = load_board(args.board)
    try:
        _stage(1, "Packing the digits capsule trainable (last layer) with its training "
                  f"schedule for {board['title']}")
        capsule, files, heldout, labels, plan = build(args.work_dir, args.board, args.samples)
        print(f"  {capsule} ({capsule.stat().st_size} bytes); schedule: "
              f"{len(plan['steps'])} steps, peak {plan['predicted']['peak_ram_bytes']} bytes, "
              f"{plan['predicted']['energy_j'] * 1e6:.2f} uJ per iteration (predicted)")
        state_dir = args.work_dir / "vboard"
        (state_dir / f"{board['name']}.lfs").unlink(missing_ok=True)
        with running_vboard(board, state_dir) as port:
            result = story(port, capsule, files, heldout, labels, plan, args.epochs, args.via,
                           args.board)
        print(f"\ntraining demo finished in {time.monotonic() - started:.1f} s")
    except PackagerError as exc:
        print(f"minerva: {exc}", file=sys.stderr)
        return 1
    ok = result["after"] > result["before"] + 0.1 and result["version"] == "1.0.1" and \
        result["decision"] == "promote"
    if not ok:
        print("minerva demo_train: the story did not go as it should (see above)",
              file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
