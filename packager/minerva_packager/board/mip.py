"""The device package for MicroPython's package manager, ``mip``.

Two forms, as emlearn-micropython ships its modules:

* ``package.json`` at the repository's root lists the runtime's ``.py`` sources, so
  ``mpremote mip install github:OWNER/REPO`` (or ``mip.install(...)`` on a board with a
  network) installs a runtime that runs on any port; the board compiles it at import.
* ``python -m minerva_packager.board.mip OUT`` (``make mip``) writes ``OUT/<arch>_6.3/``: the
  same modules compiled to ``.mpy`` for one native arch (viper code is machine code) with the
  native module when it is built, and that folder's ``package.json``; served over HTTP(S)
  (e.g. GitHub Pages), ``mip.install("https://…/armv6m_6.3/package.json")`` installs what
  ``minerva deploy`` installs, without the desktop.
"""

import argparse
import json
from pathlib import Path

from minerva.tiers import ARCHS, HOST_ONLY_MODULES

from .. import __version__
from .device_files import CIRCUITPYTHON_ONLY_MODULES, DEVICE_PACKAGE, MPY_ABI, runtime_files

ROOT_PACKAGE = Path(__file__).resolve().parents[3] / "package.json"
# The Pico, Cortex-M4F/M7 boards, ESP32/ESP32-S3, and the unix port (virtual boards).
DEFAULT_ARCHES = ("armv6m", "armv7emsp", "xtensawin", "x64")


def source_package():
    """The root package.json document: the runtime's sources, paths relative to the repo."""
    repo = DEVICE_PACKAGE.parents[1]
    urls = [[f"minerva/{source.name}", source.relative_to(repo).as_posix()]
            for source in sorted(DEVICE_PACKAGE.glob("*.py"))
            if source.stem not in HOST_ONLY_MODULES
            and source.stem not in CIRCUITPYTHON_ONLY_MODULES]
    return {"urls": urls, "version": __version__}


def package_text(document):
    """A package.json's text: one file per line, as people read and diff it."""
    rows = ",\n".join("    " + json.dumps(pair) for pair in document["urls"])
    return (f'{{\n  "urls": [\n{rows}\n  ],\n  "version": {json.dumps(document["version"])}\n}}\n')


def arch_package(out_dir, arch):
    """Write ``out_dir/<arch>_6.3/``: the compiled runtime and its package.json; returns the
    package.json path."""
    board = {"native_arch": arch, "runtime_dir": "/lib/minerva"}
    folder = Path(out_dir) / f"{arch}_{MPY_ABI}"
    urls = []
    for device_path, data in sorted(runtime_files(board, arch).items()):
        relative = device_path.removeprefix("/lib/")
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_bytes(data)
        urls.append([relative, relative])
    path = folder / "package.json"
    path.write_text(package_text({"urls": urls, "version": __version__}))
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description="Write the per-arch mip packages.")
    parser.add_argument("out_dir")
    parser.add_argument("--arch", action="append", choices=sorted(a for a in ARCHS if a),
                        help="Native arch (repeatable; default: "
                        + ", ".join(DEFAULT_ARCHES) + ")")
    args = parser.parse_args(argv)
    for arch in args.arch or DEFAULT_ARCHES:
        print(f"wrote {arch_package(args.out_dir, arch)}")


if __name__ == "__main__":
    main()
