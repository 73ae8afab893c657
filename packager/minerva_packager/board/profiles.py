"""Board profiles: one JSON data file per board in ``boards/`` (boards are data, not code).

Schema (every figure has an entry in ``sources`` saying where it comes from)::

    {
      "name": "rp2040", "title": "Raspberry Pi Pico (RP2040)",
      "sram_bytes": 270336, "heap_bytes": 245888, "flash_bytes": 2097152,
      "filesystem": {"type": "littlefs2", "offset": 1310720, "size": 786432,
                     "block_size": 4096},
      "native_arch": "armv6m", "mpy_cross_flags": ["-march=armv6m"],
      "cpu_hz": 125000000,
      "energy": {"compute_j_per_mac": ..., "flash_read_j_per_byte": ...,
                 "flash_write_j_per_byte": ..., "flash_erase_j_per_page": ...},
      "timing": {"compute_s_per_mac": ..., "flash_read_s_per_byte": ...,
                 "flash_write_s_per_byte": ..., "flash_erase_s_per_page": ...},
      "flash_page_bytes": 4096,
      "sources": {"<field>": "<datasheet / board definition it was taken from>"}
    }

Optional keys used by deploy, images and the virtual board: ``machine`` (what the official
firmware reports as ``os.uname().machine``, e.g. "Raspberry Pi Pico with RP2040"),
``micropython_board`` (its board directory name), ``runtime_dir`` and ``capsule_dir``
(where deploy installs), ``flash_map_address`` and ``uf2_family_id`` (UF2 images), and
``esptool_chip`` (esptool's ``--chip``); ``energy.compute_j_per_cycle`` and
``timing.cycles_per_mac`` give the per-cycle figures the per-MAC ones come from.
"""

import json
from pathlib import Path

from ..errors import PackagerError

# Inside the installed package (pyproject maps boards/ to minerva_packager/board_data), or the
# source tree's boards/ for an editable install.
BOARDS_DIR = next((d for d in (Path(__file__).resolve().parents[1] / "board_data",
                               Path(__file__).resolve().parents[3] / "boards") if d.is_dir()),
                  Path(__file__).resolve().parents[3] / "boards")


# The names boards are sold and flashed under (micropython.org's download pages, mpremote
# users) for the profiles named by chip.
ALIASES = {"pico": "rp2040", "rpi_pico": "rp2040", "pico-w": "rp2040w", "pico_w": "rp2040w",
           "rpi_pico_w": "rp2040w", "esp32-s3": "esp32s3", "esp32_generic": "esp32",
           "esp32_generic_s3": "esp32s3"}


def board_names():
    """Names of the boards that have a data file."""
    return sorted(p.stem for p in BOARDS_DIR.glob("*.json"))


def names_help():
    """The board names for a command's --help: names, then aliases, as `load_board` takes."""
    return ("one of " + ", ".join(board_names()) + " (or pico, pico-w, esp32-s3), or a board "
            "JSON file")


def load_board(name_or_path):
    """Return the board profile ``name_or_path`` (a board name, an alias such as ``pico``, or
    a JSON file) as a dict."""
    path = Path(name_or_path)
    if not path.suffix:
        name = ALIASES.get(str(name_or_path).lower(), str(name_or_path))
        path = BOARDS_DIR / f"{name}.json"
    if not path.is_file():
        raise PackagerError(
            f"no board named {name_or_path!r}",
            "known boards: " + ", ".join(board_names()) + "; aliases: "
            + ", ".join(sorted(ALIASES)),
        )
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise PackagerError(f"{path}: not valid JSON: {exc}", "fix or restore the board file")
