"""Filesystem images: built with littlefs-python, mounted by real MicroPython, UF2 checked."""

import numpy as np
import pytest
from board_helpers import DIGITS_CAPSULE, DIGITS_X, host_outputs, tool, vboard

from minerva_packager.board.image import build_image, flash_esp32, from_uf2
from minerva_packager.board.profiles import load_board
from minerva_packager.board.run import run_on_board
from minerva_packager.errors import PackagerError

RP2040 = load_board("rp2040")


@pytest.fixture(scope="module")
def rp2040_images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    tool("minerva", "image", "--board", "rp2040", "-o", folder / "fs.bin", DIGITS_CAPSULE)
    tool("minerva", "image", "--board", "rp2040", "-o", folder / "fs.uf2", DIGITS_CAPSULE)
    return folder / "fs.bin", folder / "fs.uf2"


def _serves_capsule(image, board, state_dir):
    inputs = [bytes(x) for x in np.load(DIGITS_X)[:6]]
    with vboard(state_dir, board=board, image=image) as port:
        listing = tool("mpremote", "connect", port, "exec",
                       "import os; print(sorted(os.listdir('/lib/minerva')), "
                       "os.listdir('/capsules'))").stdout
        outputs, _ = run_on_board(port, DIGITS_CAPSULE, inputs)
    assert "'model.mpy'" in listing and "['digits.cap']" in listing
    assert outputs == host_outputs(DIGITS_CAPSULE, inputs)


def test_rp2040_image_mounts_in_micropython_and_serves_capsule(rp2040_images, tmp_path):
    raw, _ = rp2040_images
    assert raw.stat().st_size == RP2040["filesystem"]["size"]
    _serves_capsule(raw, "rp2040", tmp_path)


def test_uf2_blocks_cover_the_filesystem_region(rp2040_images):
    raw, uf2 = rp2040_images
    blocks = from_uf2(uf2.read_bytes())
    base = RP2040["flash_map_address"] + RP2040["filesystem"]["offset"]
    assert len(blocks) == RP2040["filesystem"]["size"] // 256
    for number, (address, payload, family, index, count) in enumerate(blocks):
        assert family == 0xE48BFF56
        assert (index, count) == (number, len(blocks))
        assert address == base + 256 * number and len(payload) == 256
    assert blocks[0][0] == 0x100A0000
    assert b"".join(block[1] for block in blocks) == raw.read_bytes()


def test_esp32_image_mounts_in_micropython_and_serves_capsule(tmp_path):
    image = tmp_path / "esp32.bin"
    image.write_bytes(build_image("esp32", [DIGITS_CAPSULE]))
    assert image.stat().st_size == 0x200000
    _serves_capsule(image, "esp32", tmp_path / "vb")


def test_flash_errors_are_clear(tmp_path, rp2040_images):
    raw, uf2 = rp2040_images
    with pytest.raises(PackagerError, match="filesystem is 2097152"):
        flash_esp32("esp32", "/dev/no-such-port", raw)
    good = tmp_path / "esp32.bin"
    good.write_bytes(build_image("esp32", [DIGITS_CAPSULE]))
    with pytest.raises(PackagerError, match="esptool could not write"):
        flash_esp32("esp32", "/dev/no-such-port", good)
    # The port comes from MINERVA_PORT when not given, short names included.
    proc = tool("minerva", "flash", "-b", "esp32", good, check=False,
                env={"MINERVA_PORT": "u97"})
    assert proc.returncode == 1 and "to /dev/ttyUSB97" in proc.stderr, proc.stderr
    proc = tool("minerva", "flash", "--board", "rp2040", uf2, check=False)
    assert proc.returncode == 1 and "--drive" in proc.stderr


def test_uf2_copied_to_boot_drive(tmp_path, rp2040_images):
    _, uf2 = rp2040_images
    drive = tmp_path / "RPI-RP2"
    drive.mkdir()
    refused = tool("minerva", "flash", "--board", "rp2040", "--drive", drive, uf2, check=False)
    assert refused.returncode == 1 and "not a UF2 boot drive" in refused.stderr
    (drive / "INFO_UF2.TXT").write_text("UF2 Bootloader v3.0\nBoard-ID: RPI-RP2\n")
    tool("minerva", "flash", "--board", "rp2040", "--drive", drive, uf2)
    assert (drive / uf2.name).read_bytes() == uf2.read_bytes()


def test_image_too_small_for_capsules(tmp_path):
    board = dict(RP2040, filesystem=dict(RP2040["filesystem"], size=8 * 4096))
    with pytest.raises(PackagerError, match="does not fit in the image"):
        build_image(board, [DIGITS_CAPSULE])


def test_image_verifies_every_capsule(tmp_path):
    not_a_capsule = tmp_path / "notatflite.tflite"
    not_a_capsule.write_bytes(b"hello")
    damaged = tmp_path / "bad.cap"
    data = bytearray(DIGITS_CAPSULE.read_bytes())
    data[-50] ^= 0x10
    damaged.write_bytes(data)
    for bad, message in ((not_a_capsule, "too small to be a capsule"),
                         (damaged, "bad.cap")):
        proc = tool("minerva", "image", "-b", "rp2040", "-o", tmp_path / "x.bin",
                    DIGITS_CAPSULE, bad, check=False)
        assert proc.returncode == 1 and message in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr and not (tmp_path / "x.bin").exists()


def test_image_says_how_to_write_it_and_what_it_replaces(tmp_path):
    raw = tool("minerva", "image", "-b", "rp2040", "-o", tmp_path / "fs.bin",
               DIGITS_CAPSULE).stdout
    # An rp2040 .bin is for the virtual board: no flash command that would refuse it.
    assert "minerva flash" not in raw and "minerva vboard --board rp2040 --image" in raw
    assert "-o " + str(tmp_path / "fs.uf2") in raw
    uf2 = tool("minerva", "image", "-b", "rp2040", "-o", tmp_path / "fs.uf2",
               DIGITS_CAPSULE).stdout
    assert "minerva flash --board rp2040 --drive" in uf2
    for out in (raw, uf2):
        assert "replaces rp2040's whole filesystem: main.py, boot.py and every other" in out


def test_flash_refuses_what_is_not_a_filesystem_uf2(tmp_path, rp2040_images):
    raw, uf2 = rp2040_images
    drive = tmp_path / "RPI-RP2"
    drive.mkdir()
    (drive / "INFO_UF2.TXT").write_text("UF2 Bootloader v3.0\nBoard-ID: RPI-RP2\n")
    firmware = tmp_path / "firmware.uf2"
    blocks = bytearray(uf2.read_bytes()[:512])
    blocks[12:16] = (0x10000000).to_bytes(4, "little")  # the boot sector, not the filesystem
    firmware.write_bytes(blocks)
    foreign = tmp_path / "samd.uf2"
    other = bytearray(uf2.read_bytes()[:512])
    other[28:32] = (0x68ED2B88).to_bytes(4, "little")
    foreign.write_bytes(other)
    for image, message in ((raw, "not a UF2 file"), (firmware, "outside rp2040's filesystem"),
                           (foreign, "UF2 family 0x68ED2B88, not rp2040's 0xE48BFF56")):
        proc = tool("minerva", "flash", "-b", "rp2040", "--drive", drive, image, check=False)
        assert proc.returncode == 1 and message in proc.stderr, proc.stderr
        assert "reboots" not in proc.stdout and "Traceback" not in proc.stderr
        assert sorted(p.name for p in drive.iterdir()) == ["INFO_UF2.TXT"]
    proc = tool("minerva", "flash", "-b", "rp2040", "--drive", drive, uf2)
    assert "replaces rp2040's whole filesystem" in proc.stdout
    zeros = tmp_path / "zeros.bin"
    zeros.write_bytes(bytes(0x200000))
    with pytest.raises(PackagerError, match="not a LittleFS filesystem image"):
        flash_esp32("esp32", "/dev/no-such-port", zeros)
