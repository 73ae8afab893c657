"""The virtual CircuitPython board: CircuitPython's unix port on a pty with a host folder as
its CIRCUITPY drive. `minerva deploy` installs the runtime there (CircuitPython .mpy or .py,
no viper, no natmod), mpremote talks to it, and a capsule copied into the drive's
capsules/inbox is picked up by minerva.Runtime, as a drag-and-drop onto CIRCUITPY would be."""

import contextlib
import json
import os
import shutil

import numpy as np
import pytest
from board_helpers import DIGITS_CAPSULE, DIGITS_X, host_outputs, tool
from conftest import CIRCUITPYTHON_DIR

from minerva_packager.capsule.pack import pack_tflite

pytestmark = pytest.mark.circuitpython
MPY_CROSS = CIRCUITPYTHON_DIR / "mpy-cross"


@contextlib.contextmanager
def circuitpython_board(state_dir):
    if not (CIRCUITPYTHON_DIR / "circuitpython").exists():
        pytest.skip(f"{CIRCUITPYTHON_DIR} is absent (the CircuitPython unix port lives there)")
    try:
        for fd in os.openpty():
            os.close(fd)
    except OSError as exc:
        pytest.skip(f"no pseudo-terminals here ({exc}); the virtual board needs one")
    proc = tool("minerva", "vboard", "--detach", "--circuitpython", "--state-dir", state_dir)
    try:
        yield proc.stdout.strip().splitlines()[-1], state_dir / "CIRCUITPY"
    finally:
        tool("minerva", "vboard", "stop", "--state-dir", state_dir)


def mpremote(port, code):
    return tool("mpremote", "connect", port, "exec", code).stdout


def board_status(port):
    out = mpremote(port, "import json, minerva\n"
                         "print('STATUS ' + json.dumps(minerva.Runtime().status()))")
    return json.loads(out.split("STATUS ", 1)[1])


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    state = tmp_path_factory.mktemp("cpboard")
    with circuitpython_board(state) as (port, drive):
        proc = tool("minerva", "deploy", "--port", port, "--mpy-cross", MPY_CROSS, "--stage",
                    DIGITS_CAPSULE)
        yield port, drive, proc.stdout


def test_deploy_installs_circuitpython_mpy_without_viper_or_natmod(deployed):
    port, drive, out = deployed
    assert "SHA-256 of every file matches" in out
    installed = sorted((drive / "lib" / "minerva").iterdir())
    assert installed and all(p.suffix == ".mpy" for p in installed)
    assert all(p.read_bytes()[:2] == b"C\x06" for p in installed), "CircuitPython's magic"
    names = {p.stem for p in installed}
    assert "kernels_py" in names and "digest_py" in names
    assert not any("viper" in n for n in names), "a CircuitPython board has no viper emitter"
    assert not list((drive / "lib").glob("minerva_nat*")), "natmod cannot load on CircuitPython"
    assert "kernels_np" not in names


def test_board_runs_the_pure_python_tier_bit_exact(deployed, tmp_path):
    port, _, _ = deployed
    xs = np.load(DIGITS_X).astype(np.int8)[:5]
    out = mpremote(port, "import minerva, sys\n"
                         "print('IMPL', sys.implementation.name)\n"
                         "rt = minerva.Runtime()\n"
                         "print('TIER', rt.active.tier)\n"
                         f"for x in {[x.tobytes() for x in xs]!r}:\n"
                         "    print('OUT', bytes(rt.infer(x)).hex())\n")
    assert "IMPL circuitpython" in out and "TIER python" in out
    got = [bytes.fromhex(line[4:]) for line in out.splitlines() if line.startswith("OUT ")]
    assert got == host_outputs(DIGITS_CAPSULE, xs)


def test_viper_source_is_refused_as_on_a_board(deployed):
    port, drive, _ = deployed
    source = DIGITS_CAPSULE.parents[1] / "device" / "minerva" / "kernels_viper.py"
    shutil.copy(source, drive / "lib" / "minerva" / "kernels_viper.py")
    try:
        out = mpremote(port, "import minerva\n"
                             "try:\n"
                             "    minerva.load('/capsules/slots/' + minerva.Runtime().status()"
                             "['active']['file'], kernels='viper')\n"
                             "except minerva.UnsupportedError as e:\n"
                             "    print('REFUSED', e)\n")
    finally:
        (drive / "lib" / "minerva" / "kernels_viper.py").unlink()
    assert "REFUSED" in out and "invalid micropython decorator" in out


def test_capsule_dropped_on_the_drive_is_picked_up(deployed, tmp_path):
    port, drive, _ = deployed
    v2 = tmp_path / "digits_v2.cap"
    v2.write_bytes(pack_tflite(DIGITS_CAPSULE.with_name("digits.tflite"), name="digits",
                               version="2.0.0"))
    shutil.copy(v2, drive / "capsules" / "inbox" / "digits_v2.cap")  # the drag-and-drop
    status = board_status(port)
    assert status["active"]["version"] == "1.0.0"
    assert status["candidate"]["version"] == "2.0.0"
    assert not list((drive / "capsules" / "inbox").iterdir())
    assert (drive / "capsules" / "slots" / status["candidate"]["file"]).exists()


def test_deploy_without_mpy_cross_installs_sources(tmp_path):
    with circuitpython_board(tmp_path) as (port, drive):
        out = tool("minerva", "deploy", "--port", port, DIGITS_CAPSULE).stdout
        assert "SHA-256 of every file matches" in out
        installed = sorted((drive / "lib" / "minerva").iterdir())
        assert installed and all(p.suffix == ".py" for p in installed)
        assert not any("viper" in p.name for p in installed)
        assert "OK" in mpremote(port, "import minerva\n"
                                      "m = minerva.load('/capsules/digits.cap')\n"
                                      "print('OK', m.tier)\n")


def test_circuitpython_demo(tmp_path, capsys):
    if not (CIRCUITPYTHON_DIR / "circuitpython").exists():
        pytest.skip(f"{CIRCUITPYTHON_DIR} is absent (the CircuitPython unix port lives there)")
    from minerva_packager.demo import main

    assert main(["--circuitpython", "--work-dir", str(tmp_path), "--samples", "40"]) == 0
    out = capsys.readouterr().out
    assert "output bytes identical to the host runtime's: 40/40" in out
    assert "candidate: digits 2.0.0" in out


def test_deploy_to_the_drive_as_files(tmp_path):
    # What a CircuitPython user does with the USB drive: copy files; the board picks them up.
    with circuitpython_board(tmp_path) as (port, drive):
        drive.mkdir(parents=True, exist_ok=True)
        out = tool("minerva", "deploy", "--drive", drive, "--mpy-cross", MPY_CROSS,
                   DIGITS_CAPSULE).stdout
        assert "capsules/inbox" in out
        assert (drive / "capsules" / "inbox" / "digits.cap").read_bytes() == \
            DIGITS_CAPSULE.read_bytes()
        assert all(p.read_bytes()[:2] == b"C\x06" for p in (drive / "lib" / "minerva").iterdir())
        assert not list(drive.rglob("*.part"))
        status = board_status(port)
        assert status["active"]["version"] == "1.0.0"
        again = tool("minerva", "deploy", "--drive", drive, "--mpy-cross", MPY_CROSS).stdout
        assert again.startswith("Copied 0 files"), again
        damaged = tmp_path / "damaged.cap"
        data = bytearray(DIGITS_CAPSULE.read_bytes())
        data[len(data) // 2] ^= 1
        damaged.write_bytes(bytes(data))
        refused = tool("minerva", "deploy", "--drive", drive, "--no-runtime", damaged,
                       check=False)
        assert refused.returncode != 0 and "damaged" in refused.stderr + refused.stdout
        assert not (drive / "capsules" / "inbox" / "damaged.cap").exists()
