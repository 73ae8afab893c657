"""Install the runtime and capsules on a CircuitPython board's CIRCUITPY drive, as files.

CircuitPython boards show up on the computer as a USB drive; copying files onto it is how
CircuitPython users install code. ``copy_to_drive`` writes ``lib/minerva/`` (the CircuitPython
runtime: .py sources, or .mpy from CircuitPython's mpy-cross) and drops capsules into
``capsules/inbox/``, where minerva.Runtime stages them. Each file is written as
``<name>.part``, read back and compared, then renamed into place, so a drive pulled out
mid-copy leaves no half file under the real name. Files already identical are not rewritten
(a drive's flash wears, and CircuitPython restarts code.py after every write).
"""

import hashlib
import os
from pathlib import Path

from ..capsule.container import read_capsule
from ..errors import PackagerError, count
from .device_files import circuitpython_runtime_files

INBOX = "capsules/inbox"
# A board without the native emitter: CircuitPython boards are built that way.
BOARD_PROFILE = {"runtime_dir": "/lib/minerva"}


def copy_to_drive(drive, capsules=(), runtime=True, mpy_cross=None, say=print):
    """Write the runtime (when ``runtime``) and ``capsules`` onto the CIRCUITPY folder
    ``drive``; return the list of paths written (relative to the drive)."""
    drive = Path(drive)
    if not drive.is_dir():
        raise PackagerError(f"{drive} is not a folder",
                            "pass the mounted CIRCUITPY drive (e.g. /media/$USER/CIRCUITPY)")
    files = {}
    if runtime:
        files.update({path.lstrip("/"): data for path, data in
                      circuitpython_runtime_files(BOARD_PROFILE, None, mpy_cross).items()})
        # Sources and .mpy of one module must not both be there: .py would win the import.
        stale = ".py" if mpy_cross else ".mpy"
        for old in (drive / "lib" / "minerva").glob("*" + stale):
            old.unlink()
    for capsule in capsules:
        read_capsule(capsule)  # a damaged capsule is refused here, not on the board
        files[f"{INBOX}/{Path(capsule).name}"] = Path(capsule).read_bytes()
    written = []
    for rel, data in files.items():
        target = drive / rel
        if target.exists() and target.read_bytes() == data:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(target.name + ".part")
        part.write_bytes(data)
        with open(part, "rb") as f:
            os.fsync(f.fileno())
            if hashlib.sha256(f.read()).digest() != hashlib.sha256(data).digest():
                part.unlink()
                raise PackagerError(f"{part}: read back differs from what was written",
                                    "check the drive and copy again")
        os.replace(part, target)
        written.append(rel)
    say(f"Copied {count(len(written), 'file')} to {drive} "
        f"({len(files) - len(written)} already there)"
        + (f"; capsules in {INBOX}/ are staged by minerva.Runtime at its next start or "
           "poll()" if capsules else ""))
    return written
