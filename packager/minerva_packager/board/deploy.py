"""Install the device runtime and capsules on a board over its serial port.

``deploy(port, capsules)`` probes the board (which board, which native arch, free space),
compiles the runtime for that arch, compares SHA-256 hashes with what the board holds and
uploads only what changed. Each file is written as ``<path>.part`` and hashed on the board;
when every part is verified, one atomic rename of a journal listing them commits the whole
update, and the parts are renamed into place (device/minerva/journal.py). A power cut before
the commit leaves the previous installation whole (the next `import minerva` or deploy removes
the parts /minerva.pending names); after it, the next `import minerva` (or deploy) finishes the
renames. Runtime and capsules
switch together, never a mix.
"""

import sys
from pathlib import Path

from ..capsule.container import read_capsule
from ..errors import PackagerError, Terminated, count
from .device_files import arch_from_mpy, circuitpython_runtime_files, runtime_files, sha256_hex
from .profiles import board_names, load_board
from .transport import connect

PART = ".part"
JOURNAL = "/minerva.journal"
PENDING = "/minerva.pending"

_PROBE = """
import os, sys
_y = sys.implementation._mpy
try:
    import vboard
    _m, _v, _y = vboard.machine, vboard.board, getattr(vboard, "mpy", _y)
except ImportError:
    _m = os.uname().machine if hasattr(os, "uname") else sys.implementation._machine
    _v = None
_s = os.statvfs("/")
print(repr((sys.implementation.name, _m, _v, _y, _s[0], _s[0] * _s[2], _s[0] * _s[3])))
"""

_HASHES = """
import os
try:
    from hashlib import sha256
except ImportError:  # a CircuitPython board without it: digest_py.py was sent before this
    sha256 = PySha256
try:
    from binascii import hexlify
except ImportError:
    def hexlify(b):
        return b.hex().encode()
def _h(p):
    try:
        n = os.stat(p)[6]
    except OSError:
        return None
    h = sha256()
    b = bytearray(512)
    with open(p, "rb") as f:
        while True:
            k = f.readinto(b)
            if not k:
                break
            h.update(memoryview(b)[:k])
    return (n, hexlify(h.digest()).decode())
print(repr({p: _h(p) for p in %r}))
"""

_MAKEDIRS = """
import os
for d in %r:
    try:
        os.mkdir(d)
    except OSError:
        pass
"""

_REMOVE_PARTS = """
import os
for d in %r:
    try:
        names = os.listdir(d)
    except OSError:
        continue
    for n in names:
        if n.endswith(%r):
            os.remove(d + "/" + n)
"""

_PENDING = """
with open(%(pending)r, "w") as f:
    f.write(%(paths)r)
"""

# Commit: the journal names every verified part; its rename is the atomic switch. Then the
# device's own recovery code (device/minerva/journal.py, sent as is) moves the parts in.
_COMMIT = """
import os
with open(%(journal)r + %(part)r, "w") as f:
    f.write(%(paths)r)
os.rename(%(journal)r + %(part)r, %(journal)r)
"""


def _recover_snippet():
    from .device_files import DEVICE_PACKAGE

    source = (DEVICE_PACKAGE / "journal.py").read_text()
    return source + ("\nimport sys\nif sys.implementation.name in ('micropython', "
                     "'circuitpython'):\n    recover()\n")


def _activation_order(paths):
    # The package's __init__ first: from then on every `import minerva` finishes the rest.
    return sorted(paths, key=lambda p: (not p.endswith("/__init__.mpy"), p))


class BoardInfo:
    """What the probe found: ``machine``, ``virtual`` (emulated board or None), ``arch``,
    ``block_size``, ``total`` and ``free`` bytes of the filesystem."""

    def __init__(self, probe):
        implementation, self.machine, self.virtual, mpy, self.block_size, self.total, \
            self.free = probe
        if implementation not in ("micropython", "circuitpython"):
            raise PackagerError(f"the board runs {implementation}, not MicroPython or "
                                "CircuitPython", "flash MicroPython or CircuitPython first")
        self.implementation = implementation
        # A CircuitPython board reports no arch: it is built without the native emitters.
        self.arch = arch_from_mpy(mpy)


def probe(transport):
    """Return a :class:`BoardInfo` for the connected board."""
    return BoardInfo(_literal(transport.exec(_PROBE)))


def _literal(output):
    import ast

    try:
        return ast.literal_eval(output.decode().strip())
    except (ValueError, SyntaxError):
        raise PackagerError("the board answered the probe with unexpected output: "
                            f"{output[:80]!r}", "is this a MicroPython board?")


def identify_board(info, requested=None, port="the board"):
    """The board profile matching ``info``; with ``requested`` check that it is that board.

    Boards report ``"<board> with <MCU>"`` (``os.uname().machine``). An exact match names the
    board; otherwise the MCU decides, so a third-party RP2040 board deploys as ``rp2040``.
    """
    profiles = [load_board(name) for name in board_names()]
    detected = _match(info.machine, profiles)
    if requested is not None:
        board = load_board(requested) if isinstance(requested, str) else requested
        exact = [p["name"] for p in profiles if p["machine"] == info.machine]
        same = board["machine"] == info.machine or (
            not exact and _compatible(board["machine"], info.machine))
        if not same:
            raise PackagerError(
                f"wrong board: {port} is a {info.machine!r}, but --board {board['name']} "
                f"expects a {board['machine']!r}",
                f"pass --board {detected}" if detected else "omit --board to detect it")
        return board
    if detected is None:
        raise PackagerError(f"{port}: unknown board {info.machine!r}",
                            "pass --board; known boards: " + ", ".join(board_names()))
    return load_board(detected)


def _mcu(machine):
    return machine.rsplit(" with ", 1)[-1]


def _compatible(profile_machine, reported):
    if profile_machine == "linux":
        return reported.startswith("linux")
    return " with " in reported and _mcu(reported) == _mcu(profile_machine)


def _match(machine, profiles):
    for profile in profiles:
        if profile["machine"] == machine:
            return profile["name"]
    for profile in profiles:
        if _compatible(profile["machine"], machine):
            return profile["name"]
    return None


def capsule_files(board, capsules, stage=False, warnings=None):
    """``{device path: bytes}`` for capsules, each verified on the host first: checksums, and
    every check of the runtime being deployed (the host runs the same device code). With
    ``stage`` they go to the runtime's inbox, to be shadow-tested (minerva.Runtime). A list
    passed as ``warnings`` receives :func:`fit_warnings`' lines for them."""
    from ..capsule.pack import verify_with_loader

    files, sources = {}, {}
    folder = board.get("capsule_dir", "/capsules") + ("/inbox" if stage else "")
    for capsule in capsules:
        path = f"{folder}/{Path(capsule).name}"
        if path in sources:
            raise PackagerError(f"{sources[path]} and {capsule} would both be {path} on the "
                                "board", "rename one of them, or deploy them one at a time")
        sources[path] = capsule
        if str(capsule).endswith(".delta"):
            # Checked by the board against the capsule it rebuilds from.
            if not stage:
                raise PackagerError(f"{capsule} is a delta", "stage it: deploy --stage")
            from ..capsule.delta import read_header

            data = Path(capsule).read_bytes()
            read_header(data)
            files[path] = data
            continue
        cap = read_capsule(capsule)
        verify_with_loader(capsule, capsule)
        files[path] = cap.raw
        if warnings is not None:
            warnings.extend(_fit_warning(board, capsule, cap))
    return files


def fit_warnings(board, capsules):
    """A warning per capsule that the memory model says will not fit ``board`` (its heap,
    less the runtime and the application reserve); such a capsule is still deployed, since
    the user may run it with a smaller application, or paged (minerva.load(paged=True))."""
    warnings = []
    for capsule in capsules:
        if not str(capsule).endswith(".delta"):
            warnings.extend(_fit_warning(board, capsule, read_capsule(capsule)))
    return warnings


def _fit_warning(board, capsule, cap):
    from ..capsule.memory import fit_report

    reason = fit_report(board, cap.meta, len(cap.ops), len(cap.tensors),
                        cap.meta.get("app_reserve_bytes"))
    if not reason:
        return []
    return [f"warning: {capsule} {reason}; repack it for this board: "
            f"minerva pack MODEL.tflite --board {board['name']}"]


# Whether the board's installed runtime reads a capsule part ("OK", "RAM" when it reads it but
# has no heap for it now, else the refusal): capsules deployed without the runtime must suit
# the runtime already there.
_READS = """
import sys
sys.modules["minerva_deploying"] = sys  # keeps recovery from dropping the parts checked here
try:
    import minerva
except ImportError:  # no runtime yet: nothing the capsules must suit
    minerva = None
for p in %r if minerva else ():
    try:
        minerva.load(p).close()
        print(repr((p, "OK")))
    except minerva.OutOfMemoryError:
        print(repr((p, "RAM")))
    except minerva.CapsuleError as e:
        print(repr((p, str(e))))
"""


def _check_board_reads(transport, capsule_paths, port):
    import ast

    out = transport.exec(_READS % ([p + PART for p in capsule_paths],), timeout=60)
    for line in out.decode().splitlines():
        path, verdict = ast.literal_eval(line)
        if verdict not in ("OK", "RAM"):
            transport.exec(_REMOVE_PARTS % (_folders(capsule_paths), PART))
            raise PackagerError(f"{port}: the board's runtime cannot load "
                                f"{path[:-len(PART)]}: {verdict.split(': ', 1)[-1]}; "
                                "nothing was activated",
                                "deploy the runtime with it (leave out --no-runtime)")


def remote_hashes(transport, paths, portable=False):
    """``{path: (size, sha256 hex) or None}`` as the board sees its files.

    ``portable`` sends the device's digest_py.py first, for CircuitPython boards whose build
    has no hashlib (it then supplies a pure-Python SHA-256)."""
    prefix = ""
    if portable:
        from .device_files import DEVICE_PACKAGE

        prefix = (DEVICE_PACKAGE / "digest_py.py").read_text() + "\n"
    return _literal(transport.exec(prefix + _HASHES % (list(paths),)))


def _folders(paths):
    folders = set()
    for path in paths:
        parts = path.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            folders.add("/" + "/".join(parts[:i]))
    return sorted(folders, key=lambda f: f.count("/"))


def space_needed(sizes, block_size):
    """Bytes a set of new files takes on LittleFS: whole blocks plus one for metadata each."""
    return sum(((n + block_size - 1) // block_size + 1) * block_size for n in sizes)


class Report:
    """The outcome of a deploy: ``board``, ``uploaded`` and ``unchanged`` paths,
    ``verified`` ({path: sha256}), ``bytes_uploaded``, ``warnings`` (capsules the memory model
    says will not fit the board)."""


# After a staging deploy: the board's runtime takes the inbox now, and says what it did.
_POLL = """
# What this deploy's earlier scripts left in the REPL scope (the recovery code, hashing
# helpers, an earlier runtime) is dropped first: the runtime stages on the heap a fresh boot
# would give it, not one cut up by the deploy (a delta staged there ran out of heap).
for _k in [k for k in globals() if not k.startswith("__")]:
    del globals()[_k]
import gc, minerva, json
gc.collect()
try:
    _rt = minerva.Runtime(%(root)r)
    print("STATUS " + json.dumps(_rt.status()))
except minerva.CapsuleError as e:
    print("ERROR " + str(e))
"""


def deploy(port, capsules=(), board=None, via="mpremote", runtime=True, say=print,
           progress=None, stage=False, mpy_cross=None):
    """Install the runtime (when ``runtime``) and ``capsules`` on the board at ``port``.

    ``stage`` puts the capsules in the runtime's inbox and lets it verify and stage them
    (``report.status`` is then the runtime's status). ``say(text)`` receives the stage
    lines; ``progress`` is None or a factory
    ``progress(total_bytes)`` returning a context manager with ``update(n)`` (a click
    progress bar on a terminal). ``mpy_cross`` is CircuitPython's mpy-cross: a CircuitPython
    board then gets .mpy files it made (else .py sources; never MicroPython's .mpy).
    Returns a :class:`Report`; raises PackagerError.
    """
    report = Report()
    with connect(port, via) as transport:
        info = probe(transport)
        profile = identify_board(info, board, port)
        report.board = profile
        circuitpython = info.implementation == "circuitpython"
        if mpy_cross and not circuitpython:
            raise PackagerError(f"{port} runs MicroPython; --mpy-cross is CircuitPython's",
                                "leave out --mpy-cross (deploy compiles for MicroPython)")
        if not runtime:
            files = {}
        elif circuitpython:
            files = circuitpython_runtime_files(profile, info.arch, mpy_cross)
        else:
            files = runtime_files(profile, info.arch)
        report.warnings = []
        files.update(capsule_files(profile, capsules, stage, report.warnings))
        for warning in report.warnings:
            say(warning)
        folders = _folders(files)
        # A journal left by a cut during an earlier activation is finished first; then any
        # stray parts (of uploads that never committed) are removed.
        transport.exec(_recover_snippet())
        transport.exec(_REMOVE_PARTS % (folders, PART))
        say(f"Checking {count(len(files), 'file')} on {profile['name']} at {port} "
            f"({transport.via})…")
        remote = remote_hashes(transport, files, circuitpython)
        wanted = {p: (len(d), sha256_hex(d)) for p, d in files.items()}
        changed = [p for p in files if remote.get(p) != wanted[p]]
        report.unchanged = [p for p in files if p not in changed]
        report.uploaded = changed
        for path in report.unchanged:
            say(f"up to date: {path}")
        need = space_needed([len(files[p]) for p in changed], info.block_size)
        if need > info.free:
            raise PackagerError(
                f"{port}: filesystem full: the upload needs {need} bytes, "
                f"{info.free} of {info.total} are free",
                f"remove old files (mpremote connect {port} rm :/capsules/OLD.cap) "
                "or deploy fewer capsules")
        report.bytes_uploaded = sum(len(files[p]) for p in changed)
        if changed:
            transport.exec(_MAKEDIRS % (folders,))
            # Names the parts about to be written, so a reset before the commit removes them.
            transport.exec(_PENDING % {"pending": PENDING,
                                       "paths": "".join(p + "\n" for p in changed)})
            _upload(transport, files, changed, say, progress)
        new_capsules = [] if runtime else [p for p in changed if p.endswith(".cap")]
        report.verified = _verify(
            transport, files, wanted, changed, port,
            lambda: new_capsules and _check_board_reads(transport, new_capsules, port),
            circuitpython)
    say(f"Verified {count(len(files), 'file')} on {profile['name']} at {port}: "
        f"{len(changed)} uploaded ({report.bytes_uploaded} bytes), "
        f"{len(report.unchanged)} up to date; the SHA-256 of "
        f"{'the file' if len(files) == 1 else 'every file'} matches.")
    report.status = None
    if stage:
        # A fresh connection is a fresh start for the board: its runtime stages with the
        # whole heap, as after a reset, not with what the checks above left behind.
        with connect(port, via) as transport:
            report.status = _stage_on_board(transport, profile)
        from ..shadow.remote import describe

        for line in describe(report.status):
            say(line)
    return report


def _stage_on_board(transport, profile):
    import json

    out = transport.exec(_POLL % {"root": profile.get("capsule_dir", "/capsules")},
                         timeout=120).decode()
    for line in out.splitlines():
        if line.startswith("ERROR "):
            raise PackagerError(f"the board's runtime cannot serve: {line[6:]}")
    return json.loads([ln for ln in out.splitlines() if ln.startswith("STATUS ")][0][7:])


def _upload(transport, files, changed, say, progress):
    total = sum(len(files[p]) for p in changed)
    say(f"Uploading {count(len(changed), 'file')} ({total} bytes)…")
    try:
        if progress is None:
            for path in changed:
                say(f"uploading {path} ({len(files[path])} bytes)")
                transport.write_file(path + PART, files[path])
        else:
            with progress(total) as bar:
                for path in changed:
                    sent = [0]

                    def step(n, _total, sent=sent):
                        bar.update(n - sent[0])
                        sent[0] = n

                    transport.write_file(path + PART, files[path], step)
                    bar.update(len(files[path]) - sent[0])
    except KeyboardInterrupt as exc:
        how = " by SIGTERM" if isinstance(exc, Terminated) else ""
        raise PackagerError(f"deploy interrupted{how}: nothing new was activated; the partial "
                            f"{PART} files are removed by the next deploy",
                            "run the same deploy again")


def _verify(transport, files, wanted, changed, port, before_commit=None, portable=False):
    parts = remote_hashes(transport, [p + PART for p in changed], portable)
    bad = [p for p in changed if parts.get(p + PART) != wanted[p]]
    if bad:
        transport.exec(_REMOVE_PARTS % (_folders(bad), PART))
        raise PackagerError(f"{port}: {bad[0]} arrived damaged (hash mismatch); "
                            "nothing was activated", "check the cable and deploy again")
    if before_commit:
        before_commit()
    if changed:
        order = _activation_order(changed)
        transport.exec(_COMMIT % {"journal": JOURNAL, "part": PART,
                                  "paths": "".join(p + "\n" for p in order)})
        transport.exec(_recover_snippet())
    final = remote_hashes(transport, files, portable)
    bad = [p for p in files if final.get(p) != wanted[p]]
    if bad:
        raise PackagerError(f"{port}: {bad[0]} does not match after activation",
                            "deploy again")
    return {p: wanted[p][1] for p in files}


def terminal_progress():
    """A progress factory for :func:`deploy` when stdout is a terminal, else None."""
    if not sys.stdout.isatty():
        return None
    import click

    return lambda total: click.progressbar(length=total, label="Uploading", show_eta=False)
