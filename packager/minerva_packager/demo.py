"""``make demo``: a model update on a board, the Minerva way, start to finish.

    python -m minerva_packager.demo [--board rp2040] [--samples N] [--via mpremote|ampy]
    python -m minerva_packager.demo --circuitpython     # the inference part on CircuitPython

Everything happens for real: two versions of the digits model are trained and quantized in
numpy and packed into capsules; a virtual board (the MicroPython unix port with the board's
heap and a LittleFS flash image, on a pty) is started; v1 is installed and serves held-out
samples (its output bytes compared with the host runtime's); v2 is staged beside it and
shadow-tested on held-out samples without their labels; the report is written; v2 is
promoted, on trial until confirmed; a damaged v3 is refused; a rollback restores v1.

With --circuitpython the board is CircuitPython's unix port with the board's heap and a host
folder as its CIRCUITPY drive: the runtime is deployed (CircuitPython .mpy when its mpy-cross
is found), v1 and then v2 are copied into the drive's capsules/inbox as a drag-and-drop would,
v1 serves the held-out samples with the pure-Python tier and v2 is shadow-tested beside it.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT_WORK_DIR = Path(".cache") / "demo"


STAGES = 8


def _stage(number, text, total=STAGES):
    print(f"\n[{number}/{total}] {text}", flush=True)


def build_capsule(work_dir):
    """Train the digits example, pack it; return (capsule path, build figures)."""
    from .capsule.pack import pack_tflite
    from .examples import digits

    figures = digits.build(work_dir)
    capsule = Path(work_dir) / "digits.cap"
    capsule.write_bytes(pack_tflite(figures["tflite"], name="digits", version="1.0.0"))
    return capsule, figures


def build_versions(work_dir, v1):
    """A release key; v1 signed; v2 (retrained from another seed) signed and as a delta
    against v1; a v3 damaged in transit and an unsigned v3. Returns their paths."""
    from .capsule.delta import make_delta
    from .capsule.pack import pack_tflite
    from .capsule.signing import load_private_key, new_key, sign_capsule
    from .examples import digits

    work_dir = Path(work_dir)
    key = work_dir / "release.key"
    for old in (key, key.with_name(key.name + ".pub")):
        old.unlink(missing_ok=True)
    public = new_key(key)
    private = load_private_key(key)
    v1_signed = sign_capsule(v1.read_bytes(), private)
    v1.write_bytes(v1_signed)
    x, y, _, _ = digits.load_split()
    tflite = work_dir / "digits_v2.tflite"
    tflite.write_bytes(digits.to_tflite(digits.train(x, y, seed=11), x))
    v2_signed = sign_capsule(pack_tflite(tflite, name="digits", version="2.0.0"), private)
    v2 = work_dir / "digits_v2.cap"
    v2.write_bytes(v2_signed)
    v2_delta = work_dir / "digits_v2.delta"
    v2_delta.write_bytes(make_delta(v1_signed, v2_signed))
    v3_bytes = pack_tflite(tflite, name="digits", version="3.0.0")
    damaged = bytearray(sign_capsule(v3_bytes, private))
    damaged[len(damaged) // 2] ^= 0x10
    v3 = work_dir / "digits_v3.cap"
    v3.write_bytes(bytes(damaged))
    unsigned = work_dir / "digits_v3_unsigned.cap"
    unsigned.write_bytes(v3_bytes)
    return {"public": public, "v2": v2, "v2_delta": v2_delta, "v3": v3, "unsigned": unsigned}


def _say_status(st):
    from .shadow.remote import describe

    for line in describe(st):
        print("  " + line)


def host_outputs(capsule, inputs):
    """The same capsule on the host runtime (device/minerva on CPython)."""
    import minerva

    model = minerva.load(str(capsule))
    return [bytes(model.run(bytes(x))) for x in inputs]


def predictions(outputs):
    return np.array([int(np.argmax(np.frombuffer(o, np.int8))) for o in outputs])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--board", default="rp2040")
    parser.add_argument("--samples", type=int, default=None,
                        help="held-out samples to run on the board (default: all)")
    parser.add_argument("--via", default="mpremote", choices=("mpremote", "ampy"))
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR)
    parser.add_argument("--circuitpython", action="store_true",
                        help="run the inference part on a virtual CircuitPython board")
    args = parser.parse_args(argv)
    if args.circuitpython:
        return circuitpython_demo(args)

    from .board.detached import running_vboard
    from .board.profiles import load_board
    from .errors import PackagerError

    started = time.monotonic()
    work_dir = args.work_dir
    work_dir.mkdir(parents=True, exist_ok=True)
    board = load_board(args.board)
    try:
        _stage(1, "Building the example capsule (digits MLP, trained and quantized in numpy)")
        capsule, figures = build_capsule(work_dir)
        x = np.load(figures["heldout_x"])
        y = np.load(figures["heldout_y"])
        print(f"trained on {figures['train_samples']} samples; int8 accuracy on "
              f"{figures['heldout_samples']} held-out samples (TFLite reference kernels): "
              f"{figures['int8_accuracy']:.1%}; capsule {capsule} ({capsule.stat().st_size} "
              "bytes)")

        files = build_versions(work_dir, capsule)
        print(f"signed with a new release key ({files['public']}): v1; v2, retrained from "
              f"another seed ({files['v2']}, {files['v2'].stat().st_size} bytes), also as a "
              f"delta against v1 ({files['v2_delta'].stat().st_size} bytes); a v3 damaged "
              "in transit (one bit) and an unsigned v3")

        _stage(2, f"Starting a virtual {board['title']}")
        state_dir = work_dir / "vboard"
        # A fresh flash image each run, so the demo always shows a full install.
        (state_dir / f"{board['name']}.lfs").unlink(missing_ok=True)
        with running_vboard(board, state_dir) as port:
            print(f"virtual board on {port}: MicroPython unix port, heap "
                  f"{board['heap_bytes']} bytes, LittleFS flash {board['filesystem']['size']} "
                  "bytes")
            outcome = _story(args, port, capsule, files, x, y, work_dir)
        print(f"\ndemo finished in {time.monotonic() - started:.1f} s. Try it yourself:\n"
              "  minerva vboard --detach                 # prints the port\n"
              "  minerva deploy --stage model.cap        # v1 becomes active, later ones are "
              "candidates\n"
              "  minerva shadow status | feed X.npy | report -o r.html | promote | rollback")
        return outcome
    except PackagerError as exc:
        print(f"minerva: {exc}", file=sys.stderr)
        return 1


def circuitpython_demo(args):
    """Inference on a virtual CircuitPython board, capsules dropped onto its CIRCUITPY drive."""
    import shutil

    from .board.deploy import deploy
    from .board.detached import running_vboard
    from .board.profiles import load_board
    from .board.vboard import CIRCUITPYTHON_BINARY
    from .capsule.pack import pack_tflite
    from .errors import PackagerError
    from .examples import digits
    from .shadow import remote as shadow

    started = time.monotonic()
    work_dir = args.work_dir / "circuitpython"
    work_dir.mkdir(parents=True, exist_ok=True)
    board = load_board(args.board)
    try:
        _stage(1, "Building v1 and v2 of the digits capsule", 4)
        capsule, figures = build_capsule(work_dir)
        x = np.load(figures["heldout_x"])[:args.samples]
        xs, ys = digits.load_split()[:2]
        v2_tflite = work_dir / "digits_v2.tflite"
        v2_tflite.write_bytes(digits.to_tflite(digits.train(xs, ys, seed=11), xs))
        v2 = work_dir / "digits_v2.cap"
        v2.write_bytes(pack_tflite(v2_tflite, name="digits", version="2.0.0"))
        print(f"  {capsule} ({capsule.stat().st_size} bytes), {v2}")

        _stage(2, f"Starting a virtual CircuitPython {board['title']}", 4)
        state_dir = work_dir / "vboard"
        drive = state_dir / "CIRCUITPY"
        shutil.rmtree(drive, ignore_errors=True)  # a fresh drive: the demo shows a full install
        with running_vboard(board, state_dir, drive=drive) as port:
            print(f"  CircuitPython unix port on {port}, heap {board['heap_bytes']} bytes, "
                  f"CIRCUITPY drive {drive}")
            mpy_cross = CIRCUITPYTHON_BINARY.with_name("mpy-cross")
            _stage(3, "Deploying the runtime (no viper, no natmod: a CircuitPython board has "
                      "neither) and dragging v1 onto the drive's capsules/inbox", 4)
            deploy(port, [], board=args.board, via=args.via, runtime=True,
                   say=lambda text: text.startswith("Verified") and print("  " + text),
                   mpy_cross=mpy_cross if mpy_cross.exists() else None)
            (drive / "capsules" / "inbox").mkdir(parents=True, exist_ok=True)
            shutil.copy(capsule, drive / "capsules" / "inbox" / "digits.cap")
            samples = work_dir / "heldout_x_served.npy"
            np.save(samples, x)
            t0 = time.monotonic()
            outputs, st = shadow.feed(port, samples, args.via)
            seconds = time.monotonic() - t0
            same = sum(a == b for a, b in zip(outputs, host_outputs(capsule, list(x))))
            print(f"  v1 {st['active']['version']} picked up from the inbox; {len(x)} "
                  f"held-out samples served in {seconds:.2f} s; output bytes identical to "
                  f"the host runtime's: {same}/{len(x)}")

            _stage(4, "Dragging v2 onto the drive: staged and shadow-tested beside v1", 4)
            shutil.copy(v2, drive / "capsules" / "inbox" / "digits_v2.cap")
            outputs, st = shadow.feed(port, samples, args.via)
            _say_status(st)
            served_by_v1 = sum(a == b for a, b in zip(outputs,
                                                     host_outputs(capsule, list(x))))
        print(f"\nCircuitPython demo finished in {time.monotonic() - started:.1f} s. Try it: "
              "minerva vboard --detach --circuitpython, then copy a capsule into "
              ".cache/vboard/CIRCUITPY/capsules/inbox")
        ok = same == len(x) and served_by_v1 == len(x) and st["candidate"] is not None
        if not ok:
            print("minerva demo: the story did not go as it should (see above)",
                  file=sys.stderr)
        return 0 if ok else 1
    except PackagerError as exc:
        print(f"minerva: {exc}", file=sys.stderr)
        return 1


def _story(args, port, capsule, files, x, y, work_dir):
    from .board.deploy import deploy
    from .errors import PackagerError
    from .shadow import remote as shadow

    def quiet(text):
        if not text.startswith(("up to date", "uploading")):
            print("  " + text)

    _stage(3, f"Installing the runtime and signed v1 over {port} ({args.via}); v1 serves")
    deploy(port, [], board=args.board, via=args.via, say=quiet)
    from .capsule.signing import provision

    kid, _ = provision(port, files["public"], args.via)
    print(f"  the board now trusts key {kid}: it stages only capsules that key signed")
    deploy(port, [capsule], board=args.board, via=args.via, say=quiet, runtime=False,
           stage=True)
    # Shadow testing sees every held-out sample (the policy decides after 100); --samples
    # limits the ones served to check v1's answers against the host's.
    every = work_dir / "heldout_x.npy"
    np.save(every, x)
    labels = y
    if args.samples:
        x, y = x[:args.samples], y[:args.samples]
    samples = work_dir / "heldout_x_served.npy"
    np.save(samples, x)
    t0 = time.monotonic()
    outputs, _ = shadow.feed(port, samples, args.via)
    seconds = time.monotonic() - t0
    host = host_outputs(capsule, list(x))
    same = sum(a == b for a, b in zip(outputs, host))
    v1_pred = predictions(outputs)
    print(f"  {len(x)} held-out samples served by v1 in {seconds:.2f} s (serial round trips "
          f"included); output bytes identical to the host runtime's: {same}/{len(x)}; "
          f"accuracy {float(np.mean(v1_pred == y)):.1%}")

    _stage(4, "Shipping v2 as a delta; the board rebuilds it, checks its signature, and "
              "shadow-tests it beside v1 on the same inputs, without labels")
    print(f"  {files['v2_delta'].stat().st_size} bytes shipped instead of "
          f"{files['v2'].stat().st_size}")
    report = deploy(port, [files["v2_delta"]], board=args.board, via=args.via, say=quiet,
                    runtime=False, stage=True)
    for event in report.status["events"]:
        if event[2].startswith("rebuilt"):
            print(f"  the board {event[2]}")
    outputs, st = shadow.feed(port, every, args.via)
    _say_status(st)
    served_by_v1 = sum(a == b for a, b in zip(outputs, host_outputs(capsule, list(
        np.load(every)))))
    print(f"  while shadowing, every answer still came from v1: {served_by_v1}/"
          f"{len(outputs)}")

    _stage(5, "Writing the shadow report")
    from .shadow.report import write_report

    written = write_report(shadow.pull(port, args.via), work_dir / "shadow_report.html",
                           work_dir / "disagreements")
    print(f"  {written['html']} ({len(written['plots'])} plots); {len(written['exported'])} "
          f"disagreeing inputs exported to {work_dir / 'disagreements'} for labelling")

    _stage(6, "Promoting v2: on trial from the next start until it has served healthy "
              "inferences")
    _say_status(shadow.act(port, "promote", args.via))
    outputs, st = shadow.feed(port, every, args.via)
    v2_pred = predictions(outputs)
    trial = "confirmed" if st["trial"] is None else "still on trial"
    v1_all = predictions(host_outputs(capsule, list(np.load(every))))
    print(f"  v2 served {len(outputs)} samples and is {trial}; with the labels the board "
          f"never saw: v1 {float(np.mean(v1_all == labels)):.1%}, v2 "
          f"{float(np.mean(v2_pred == labels)):.1%}")

    _stage(7, "A damaged v3 and an unsigned v3 arrive")
    v3 = files["v3"]
    try:
        deploy(port, [v3], board=args.board, via=args.via, say=quiet, runtime=False,
               stage=True)
    except PackagerError as exc:
        print(f"  minerva deploy refuses the damaged one on the host: {exc}")
    # Copied by other means (mpremote cp, a USB drive), they reach the board's inbox.
    from .board.transport import connect

    with connect(port, args.via) as transport:
        for path in (v3, files["unsigned"]):
            transport.write_file(f"/capsules/inbox/{path.name}", path.read_bytes())
    print(f"  both copied into /capsules/inbox/ with {args.via} instead")
    st = shadow.status(port, args.via)
    for refused in st["rejected"][-2:]:
        print(f"  refused {refused['file']}: {refused['reason']}")
    refused = {r["file"]: r["reason"] for r in st["rejected"]}
    print(f"  still serving {st['active']['name']} {st['active']['version']}")

    _stage(8, "Rolling back to v1")
    st = shadow.act(port, "rollback", args.via)
    _say_status(st)
    outputs, _ = shadow.feed(port, samples, args.via)
    back = sum(a == b for a, b in zip(outputs, host))
    print(f"  v1 again: output bytes identical to v1 on the host: {back}/{len(x)}")
    ok = same == len(x) and served_by_v1 == len(labels) and back == len(x) and \
        st["active"]["version"] == "1.0.0" and v3.name in refused and \
        files["unsigned"].name in refused and trial == "confirmed"
    if not ok:
        print("minerva demo: the story did not go as it should (see above)", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
