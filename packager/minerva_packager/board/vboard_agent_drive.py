# The virtual CircuitPython board's drive, imported by vboard_agent.py inside CircuitPython's
# unix port. That port has no vfs module to mount a flash image, so the CIRCUITPY drive is a
# host folder: "/" paths given to open() and os are mapped into it (os is replaced in
# sys.modules by DriveOs, open in builtins), and a module whose source uses the native
# emitters fails to import with the SyntaxError a board built without them gives.
import os
import sys

_IMAGE = None


class DriveOs:
    # `import os` on the virtual CircuitPython board: the unix port's os with every path
    # argument that starts with "/" moved into the drive folder, so "/capsules/inbox" is
    # <drive>/capsules/inbox as on the board's CIRCUITPY filesystem.
    def __getattr__(self, name):
        return getattr(os, name)

    def listdir(self, path="."):
        return os.listdir(_on_drive(path))

    def ilistdir(self, path="."):
        return os.ilistdir(_on_drive(path))

    def stat(self, path):
        return os.stat(_on_drive(path))

    def statvfs(self, path):
        return os.statvfs(_on_drive(path))

    def mkdir(self, path):
        return os.mkdir(_on_drive(path))

    def rmdir(self, path):
        return os.rmdir(_on_drive(path))

    def remove(self, path):
        return os.remove(_on_drive(path))

    def rename(self, old, new):
        return os.rename(_on_drive(old), _on_drive(new))

    def chdir(self, path):
        return os.chdir(_on_drive(path))

    def getcwd(self):
        cwd = os.getcwd()
        return cwd[len(_IMAGE):] or "/" if cwd.startswith(_IMAGE) else cwd


def _on_drive(path):
    if isinstance(path, str) and path.startswith("/") and not path.startswith(_IMAGE + "/") \
            and path != _IMAGE:
        return _IMAGE + path.rstrip("/") if path != "/" else _IMAGE
    return path


_native_sources = {}


def _uses_native_emitter(module):
    # Whether the module's source asks for viper/native code, which a CircuitPython board
    # (CIRCUITPY_ENABLE_MPY_NATIVE off) refuses with "invalid micropython decorator".
    if module not in _native_sources:
        found = False
        rel = module.replace(".", "/")
        for folder in sys.path:
            for path in (rel + ".py", rel + "/__init__.py"):
                full = (folder + "/" + path) if folder else path
                try:
                    with _host_open(full, "rb") as f:
                        text = f.read()
                except OSError:
                    continue
                found = b"@micropython.viper" in text or b"@micropython.native" in text
                break
            else:
                continue
            break
        _native_sources[module] = found
    return _native_sources[module]


def _board_import(name, globals=None, locals=None, fromlist=(), level=0):
    base = name
    if level:
        package = (globals or {}).get("__name__", "")
        if "__path__" not in (globals or {}):
            package = package.rsplit(".", 1)[0] if "." in package else ""
        for _ in range(level - 1):
            package = package.rsplit(".", 1)[0]
        base = package + ("." + name if name else "")
    # CircuitPython passes fromlist as False for a plain `import x`.
    items = fromlist if isinstance(fromlist, (tuple, list)) else ()
    for module in [base] + [base + "." + item for item in items]:
        if module not in sys.modules and _uses_native_emitter(module):
            raise SyntaxError("invalid micropython decorator")
    return _host_import(name, globals, locals, fromlist, level)


def mount(drive, info):
    # The CIRCUITPY stand-in: a host folder, with "/" paths mapped into it.
    global _IMAGE, _host_open, _host_import
    import builtins

    _IMAGE = drive

    _host_open = builtins.open
    _host_import = builtins.__import__

    def drive_open(path, *args, **kwargs):
        return _host_open(_on_drive(path), *args, **kwargs)

    builtins.open = drive_open
    builtins.__import__ = _board_import
    sys.modules["os"] = DriveOs()
    os.chdir(_IMAGE)
    sys.path[:] = ["", _IMAGE + "/lib"]
    # What the board's sys.implementation._mpy says: a CircuitPython board has no native
    # emitter, so no arch (this unix port has x64's).
    info.mpy = sys.implementation._mpy & 0x3FF
    info.drive = drive
    sys.modules["vboard"] = info
