"""Helpers for the board tests: start virtual boards with the real CLI, call real tools."""

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DIGITS_CAPSULE = ROOT / "capsules" / "digits.cap"
DIGITS_X = ROOT / "capsules" / "digits_heldout_x.npy"
DIGITS_Y = ROOT / "capsules" / "digits_heldout_y.npy"


def tool(name, *args, check=True, timeout=120, cwd=None, env=None):
    """Run an installed command (minerva, mpremote, ampy) from this venv; return the result.
    ``env`` adds variables to this process's environment."""
    proc = subprocess.run([str(BIN / name), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"{name} {' '.join(map(str, args))} failed ({proc.returncode}):\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


@contextlib.contextmanager
def vboard(state_dir, board="rp2040", image=None, heap=None):
    """`minerva vboard --detach` for the block; yields the port; `minerva vboard stop` after."""
    try:
        for fd in os.openpty():
            os.close(fd)
    except OSError as exc:
        pytest.skip(f"no pseudo-terminals here ({exc}); the virtual board needs one")
    extra = (["--image", image] if image else []) + (["--heap", heap] if heap else [])
    proc = tool("minerva", "vboard", "--detach", "--board", board, "--state-dir", state_dir,
                *extra)
    port = proc.stdout.strip().splitlines()[-1]
    try:
        yield port
    finally:
        tool("minerva", "vboard", "stop", "--state-dir", state_dir)


def host_outputs(capsule, inputs):
    """The capsule's outputs on the host (device/minerva on CPython)."""
    import minerva

    model = minerva.load(str(capsule))
    return [bytes(model.run(bytes(x))) for x in inputs]


PICO_FIRMWARE_DIR = Path(os.environ.get("MINERVA_SHARED") or ROOT.parent / "shared") / "firmware"
PICO_FIRMWARE = PICO_FIRMWARE_DIR / "micropython-v1.28.0-RPI_PICO.uf2"


def require_emulated_pico():
    """Skip unless Node, rp2040js (make pico-setup) and the Pico firmware are all here."""
    from minerva_packager.board.pico import firmware_files, node_binary, node_modules
    from minerva_packager.errors import PackagerError

    if not PICO_FIRMWARE.exists():
        pytest.skip(f"{PICO_FIRMWARE} is absent (the Pico firmware lives in ../shared)")
    try:
        node_binary()
        node_modules()
        firmware_files(PICO_FIRMWARE)
    except PackagerError as exc:
        pytest.skip(f"no emulated Pico here: {exc}")


@contextlib.contextmanager
def emulated_pico(state_dir, image=None):
    """`minerva vboard --emulate --detach` for the block; yields the port; stopped after."""
    require_emulated_pico()
    extra = ["--image", image] if image else []
    proc = tool("minerva", "vboard", "--emulate", "--firmware", PICO_FIRMWARE, "--detach",
                "--state-dir", state_dir, *extra, timeout=180)
    port = proc.stdout.strip().splitlines()[-1]
    try:
        yield port
    finally:
        tool("minerva", "vboard", "stop", "--state-dir", state_dir)
