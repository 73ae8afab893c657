"""The device package installs with MicroPython's own `mip`, from a package.json served over
HTTP: the sources at the repository's root, and per-arch compiled packages (make mip)."""

import functools
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest
from board_helpers import DIGITS_CAPSULE, DIGITS_X, host_outputs

from minerva_packager.board.mip import ROOT_PACKAGE, arch_package, package_text, source_package

ROOT = Path(__file__).resolve().parents[1]

_INSTALL_AND_RUN = """
import sys, mip
mip.install({url!r}, target={target!r})
sys.path.insert(0, {target!r})
import minerva
assert minerva.__file__.startswith({target!r}), minerva.__file__
m = minerva.load({capsule!r})
print("TIER", m.info()["kernels"])
print("OUT", bytes(m.run(open({x!r}, "rb").read())).hex())
"""


@pytest.fixture
def served():
    """An HTTP server for a folder; yields a function folder -> base URL."""
    servers = []

    def serve(folder):
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
        handler.log_message = lambda *args: None
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield serve
    for server in servers:
        server.shutdown()


def test_root_package_json_lists_the_runtime_as_it_is():
    assert ROOT_PACKAGE.read_text() == package_text(source_package()), \
        "package.json is stale: python -c 'from minerva_packager.board.mip import *; " \
        "ROOT_PACKAGE.write_text(package_text(source_package()))'"


def _install_and_run(micropython, url, tmp_path):
    # The installed package comes first on sys.path (the script checks minerva.__file__).
    x = tmp_path / "x.bin"
    x.write_bytes(bytes(np.load(DIGITS_X)[0]))
    target = str(tmp_path / "lib")
    proc = micropython.run(_INSTALL_AND_RUN.format(url=url, target=target,
                                                   capsule=str(DIGITS_CAPSULE), x=str(x)))
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)
    assert bytes.fromhex(lines["OUT"]) == host_outputs(DIGITS_CAPSULE, [x.read_bytes()])[0]
    return lines["TIER"], tmp_path / "lib"


def test_mip_installs_the_sources_from_the_root_package(micropython, served, tmp_path):
    tier, lib = _install_and_run(micropython, served(ROOT) + "/package.json", tmp_path)
    assert (lib / "minerva" / "runtime.py").exists() and not (lib / "minerva_nat.mpy").exists()
    assert tier in ("viper", "python")


def test_mip_installs_the_compiled_package_for_an_arch(micropython, served, tmp_path):
    package = arch_package(tmp_path / "mip", "x64")
    base = served(package.parent)
    tier, lib = _install_and_run(micropython, base + "/package.json", tmp_path)
    assert (lib / "minerva" / "runtime.mpy").exists()
    if (ROOT / "dist" / "x64_6.3" / "minerva_nat.mpy").exists():
        assert (lib / "minerva_nat.mpy").exists() and tier == "natmod"
