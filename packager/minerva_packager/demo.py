"""``make demo``: build the example capsule, start a virtual board, deploy, run, compare.

    python -m minerva_packager.demo [--board rp2040] [--samples N] [--via mpremote|ampy]

Everything happens for real: the digits model is trained and quantized in numpy, packed into a
capsule, a virtual board (the MicroPython unix port with the board's heap and a LittleFS flash
image, on a pty) is started, the runtime and capsule are deployed over that serial port, and
held-out samples run on the board. The board's output bytes are compared with the host
runtime's, and the accuracy on the held-out samples is printed.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT_WORK_DIR = Path(".cache") / "demo"


def _stage(number, text):
    print(f"\n[{number}/5] {text}", flush=True)


def build_capsule(work_dir):
    """Train the digits example, pack it; return (capsule path, build figures)."""
    from .examples import digits
    from .pack import pack_tflite

    figures = digits.build(work_dir)
    capsule = Path(work_dir) / "digits.cap"
    capsule.write_bytes(pack_tflite(figures["tflite"], name="digits", version="1.0.0"))
    return capsule, figures


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
    args = parser.parse_args(argv)

    from .board_run import run_on_board
    from .boards import load_board
    from .deploy import deploy
    from .errors import PackagerError
    from .vboard import running_vboard

    started = time.monotonic()
    work_dir = args.work_dir
    work_dir.mkdir(parents=True, exist_ok=True)
    board = load_board(args.board)
    try:
        _stage(1, "Building the example capsule (digits MLP, trained and quantized in numpy)")
        capsule, figures = build_capsule(work_dir)
        x = np.load(figures["heldout_x"])
        y = np.load(figures["heldout_y"])
        if args.samples:
            x, y = x[:args.samples], y[:args.samples]
        print(f"trained on {figures['train_samples']} samples; int8 accuracy on "
              f"{figures['heldout_samples']} held-out samples (TFLite reference kernels): "
              f"{figures['int8_accuracy']:.1%}; capsule {capsule} ({capsule.stat().st_size} "
              "bytes)")

        _stage(2, f"Starting a virtual {board['title']}")
        state_dir = work_dir / "vboard"
        # A fresh flash image each run, so the demo always shows a full install.
        (state_dir / f"{board['name']}.lfs").unlink(missing_ok=True)
        with running_vboard(board, state_dir) as port:
            print(f"virtual board on {port}: MicroPython unix port, heap "
                  f"{board['heap_bytes']} bytes, LittleFS flash {board['filesystem']['size']} "
                  "bytes")

            _stage(3, f"Deploying the runtime and the capsule over {port} ({args.via})")
            deploy(port, [capsule], board=board["name"], via=args.via,
                   say=lambda text: print(text) if not text.startswith("up") else None)

            _stage(4, f"Running {len(x)} held-out samples on the board")
            t0 = time.monotonic()
            outputs, tier = run_on_board(port, capsule, list(x), via=args.via)
            seconds = time.monotonic() - t0
        board_pred = predictions(outputs)
        for i in range(min(8, len(x))):
            mark = "ok" if board_pred[i] == y[i] else "WRONG"
            print(f"sample {i}: label {y[i]}, board predicts {board_pred[i]} ({mark})")
        print(f"{len(x)} inferences on the board in {seconds:.2f} s with the {tier} kernels "
              "(serial round trips included)")

        _stage(5, "Checking against the host")
        host = host_outputs(capsule, list(x))
        same = sum(a == b for a, b in zip(outputs, host))
        accuracy = float(np.mean(board_pred == y))
        print(f"board outputs identical to the host runtime's: {same}/{len(x)}")
        print(f"accuracy on the board, {len(x)} held-out samples: {accuracy:.1%}")
        print(f"\ndemo finished in {time.monotonic() - started:.1f} s. Try the REPL yourself:\n"
              "  minerva vboard --detach        # prints the port\n"
              "  mpremote connect PORT repl     # then: import minerva")
        if same != len(x):
            print("minerva demo: the board and the host disagree", file=sys.stderr)
            return 1
        return 0
    except PackagerError as exc:
        print(f"minerva: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
