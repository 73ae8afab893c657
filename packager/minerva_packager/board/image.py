"""Filesystem images: a board's LittleFS2 partition with the runtime and capsules in it.

``build_image`` makes the raw filesystem (littlefs-python, the same geometry MicroPython's
``vfs.VfsLfs2`` uses); ``to_uf2`` wraps it for the RP2040 boot ROM's drag-and-drop drive;
``flash_esp32`` writes it to an ESP32's ``vfs`` partition with esptool.
"""

import struct
from pathlib import Path

import littlefs

from ..errors import PackagerError
from .device_files import runtime_files
from .profiles import load_board

# MicroPython's VfsLfs2 defaults (extmod/vfs_lfs.c): readsize=32, progsize=32, lookahead=32.
LFS_READ_SIZE = 32
LFS_PROG_SIZE = 32
LFS_LOOKAHEAD = 32

UF2_MAGIC_START0 = 0x0A324655
UF2_MAGIC_START1 = 0x9E5D5157
UF2_MAGIC_END = 0x0AB16F30
UF2_FLAG_FAMILY_ID = 0x00002000
UF2_PAYLOAD = 256


def new_filesystem(size, block_size=4096):
    """A freshly formatted, mounted LittleFS2 of ``size`` bytes (littlefs-python object)."""
    if size % block_size:
        raise PackagerError(f"filesystem size {size} is not a multiple of {block_size}",
                            "fix the board file's filesystem.size")
    fs = littlefs.LittleFS(block_size=block_size, block_count=size // block_size,
                           read_size=LFS_READ_SIZE, prog_size=LFS_PROG_SIZE,
                           lookahead_size=LFS_LOOKAHEAD, mount=False)
    fs.format()
    fs.mount()
    return fs


def write_files(fs, files):
    """Write ``{device path: bytes}`` into a littlefs-python filesystem, making folders."""
    for path, data in files.items():
        folder = path.rsplit("/", 1)[0]
        if folder:
            fs.makedirs(folder, exist_ok=True)
        try:
            with fs.open(path, "wb") as f:
                f.write(data)
        except littlefs.LittleFSError as exc:
            raise PackagerError(f"{path}: does not fit in the image ({exc})",
                                "deploy fewer or smaller capsules")


def image_files(board, capsules, arch=None):
    """The files an image holds: the runtime plus each capsule under the capsule folder,
    each capsule verified as deploy verifies it (a board could not load a bad one)."""
    from .deploy import capsule_files

    files = runtime_files(board, arch)
    for capsule in capsules:
        if not Path(capsule).is_file():
            raise PackagerError(f"{capsule}: no such capsule", "build it with `minerva pack`")
    files.update(capsule_files(board, capsules))
    return files


def replaced_note(board):
    """What writing a filesystem image does to a board, said before it is done."""
    return (f"replaces {board['name']}'s whole filesystem: main.py, boot.py and every other "
            "file on the board are lost (copy what you need first, e.g. `mpremote cp -r :/ "
            "backup/`; `minerva deploy` adds files instead)")


def check_uf2(path, board):
    """Refuse a file that is not a UF2 of ``board``'s family within its filesystem region."""
    data = Path(path).read_bytes()
    if len(data) < 512 or len(data) % 512 or int.from_bytes(data[:4], "little") != \
            UF2_MAGIC_START0:
        raise PackagerError(f"{path}: not a UF2 file (the boot drive ignores anything else)",
                            f"build one with `minerva image -b {board['name']} -o fs.uf2`")
    blocks = from_uf2(data)
    families = {b[2] for b in blocks}
    if families != {board["uf2_family_id"]}:
        found = ", ".join("none" if f is None else f"0x{f:08X}" for f in sorted(
            families, key=lambda f: -1 if f is None else f))
        raise PackagerError(f"{path}: UF2 family {found}, not {board['name']}'s "
                            f"0x{board['uf2_family_id']:08X}",
                            f"build it with `minerva image -b {board['name']}`")
    start = board["flash_map_address"] + board["filesystem"]["offset"]
    end = start + board["filesystem"]["size"]
    outside = [b[0] for b in blocks if not (start <= b[0] and b[0] + len(b[1]) <= end)]
    if outside:
        raise PackagerError(f"{path}: writes flash at 0x{outside[0]:08X}, outside "
                            f"{board['name']}'s filesystem (0x{start:08X}-0x{end:08X}); it "
                            "is not a filesystem image (firmware?)",
                            "flash firmware with the board's own tools; build filesystem "
                            f"images with `minerva image -b {board['name']} -o fs.uf2`")
    return blocks


def build_image(board, capsules, arch=None):
    """Return the bytes of ``board``'s filesystem partition holding runtime and capsules."""
    board = load_board(board) if isinstance(board, str) else board
    fs_info = board["filesystem"]
    if fs_info["type"] != "littlefs2":
        raise PackagerError(f"{board['name']}: filesystem {fs_info['type']} is not supported",
                            "only littlefs2 images can be built")
    fs = new_filesystem(fs_info["size"], fs_info["block_size"])
    write_files(fs, image_files(board, capsules, arch))
    fs.unmount()
    return bytes(fs.context.buffer)


def to_uf2(data, address, family_id):
    """Wrap ``data`` (to be written at flash ``address``) as UF2 blocks of 256 bytes."""
    count = (len(data) + UF2_PAYLOAD - 1) // UF2_PAYLOAD
    blocks = []
    for index in range(count):
        chunk = data[index * UF2_PAYLOAD:(index + 1) * UF2_PAYLOAD].ljust(UF2_PAYLOAD, b"\0")
        header = struct.pack("<8I", UF2_MAGIC_START0, UF2_MAGIC_START1, UF2_FLAG_FAMILY_ID,
                             address + index * UF2_PAYLOAD, UF2_PAYLOAD, index, count,
                             family_id)
        blocks.append(header + chunk.ljust(476, b"\0") + struct.pack("<I", UF2_MAGIC_END))
    return b"".join(blocks)


def from_uf2(uf2):
    """Parse UF2 blocks; return a list of (address, payload, family_id, index, count)."""
    if len(uf2) % 512:
        raise PackagerError("UF2 file length is not a multiple of 512", "rebuild the image")
    blocks = []
    for offset in range(0, len(uf2), 512):
        block = uf2[offset:offset + 512]
        m0, m1, flags, addr, size, index, count, family = struct.unpack_from("<8I", block)
        (end,) = struct.unpack_from("<I", block, 508)
        if (m0, m1, end) != (UF2_MAGIC_START0, UF2_MAGIC_START1, UF2_MAGIC_END):
            raise PackagerError(f"UF2 block {offset // 512}: bad magic", "rebuild the image")
        family = family if flags & UF2_FLAG_FAMILY_ID else None
        blocks.append((addr, block[32:32 + size], family, index, count))
    return blocks


def image_for_board(board, capsules, arch=None):
    """Return (bytes, kind) for ``board``: a UF2 for boards with a UF2 family, else raw."""
    board = load_board(board) if isinstance(board, str) else board
    raw = build_image(board, capsules, arch)
    if "uf2_family_id" in board:
        address = board["flash_map_address"] + board["filesystem"]["offset"]
        return to_uf2(raw, address, board["uf2_family_id"]), "uf2"
    return raw, "raw"


def _check_littlefs(image, board, path):
    # A file of the right size that is not a filesystem would leave the board unable to mount.
    fs_info = board["filesystem"]
    fs = littlefs.LittleFS(block_size=fs_info["block_size"],
                           block_count=len(image) // fs_info["block_size"],
                           read_size=LFS_READ_SIZE, prog_size=LFS_PROG_SIZE,
                           lookahead_size=LFS_LOOKAHEAD, mount=False)
    fs.context.buffer[:] = image
    try:
        fs.mount()
    except littlefs.LittleFSError:
        raise PackagerError(f"{path}: not a LittleFS filesystem image",
                            f"build it with `minerva image --board {board['name']}`")
    fs.unmount()


def flash_esp32(board, port, image_path, baud=460800, say=None):
    """Write a raw filesystem image to the board's ``vfs`` partition with esptool;
    ``say(text)`` hears what it replaces once the image is checked."""
    import esptool

    board = load_board(board) if isinstance(board, str) else board
    chip = board.get("esptool_chip")
    if chip is None:
        raise PackagerError(f"{board['name']}: not flashed with esptool",
                            "for RP2040 boards copy the .uf2 onto the RPI-RP2 drive")
    image = Path(image_path).read_bytes()
    if len(image) != board["filesystem"]["size"]:
        raise PackagerError(f"{image_path}: {len(image)} bytes, but {board['name']}'s "
                            f"filesystem is {board['filesystem']['size']}",
                            f"build it with `minerva image --board {board['name']}`")
    _check_littlefs(image, board, image_path)
    if say:
        say(f"Writing {image_path}: it {replaced_note(board)}.")
    # esptool 5 renamed write_flash to write-flash (the old name still works, with a warning).
    command = "write-flash" if int(esptool.__version__.split(".")[0]) >= 5 else "write_flash"
    args = ["--chip", chip, "--port", port, "--baud", str(baud), command,
            hex(board["filesystem"]["offset"]), str(image_path)]
    try:
        esptool.main(args)
    except (esptool.FatalError, OSError) as exc:
        raise PackagerError(f"esptool could not write {image_path} to {port}: {exc}",
                            "check the port and hold BOOT while resetting the board")
    return args


def copy_uf2_to_drive(uf2_path, drive, board=None):
    """Copy a UF2 onto a mounted RPI-RP2 boot drive (it has an INFO_UF2.TXT); with
    ``board``, only a UF2 of its family that writes its filesystem region."""
    drive = Path(drive)
    if board is not None:
        check_uf2(uf2_path, board)
    if not (drive / "INFO_UF2.TXT").is_file():
        raise PackagerError(f"{drive}: not a UF2 boot drive (no INFO_UF2.TXT)",
                            "hold BOOTSEL while plugging in the Pico, then pass its drive")
    target = drive / Path(uf2_path).name
    target.write_bytes(Path(uf2_path).read_bytes())
    return target
