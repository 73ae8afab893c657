"""A virtual board as a background process: started detached, found again from any directory
through its state folder (pid, port, log, flash image), and stopped only if the pid is really
ours.

Library use::

    with running_vboard("rp2040", state_dir) as port:   # background process, stopped after
        ...
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ..errors import PackagerError
from .pico import BOOT_TIMEOUT_S as PICO_BOOT_TIMEOUT_S
from .pico import firmware_files, node_binary, node_modules
from .profiles import load_board
from .vboard import check_options


def default_state_dir():
    """Where a detached board keeps its pid, port, log and flash image: the user's cache
    ($XDG_CACHE_HOME or ~/.cache) under minerva/vboard, the same from any directory."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache).resolve() / "minerva" / "vboard"


def start_detached(board, state_dir=None, image=None, heap=None, timeout=None, firmware=None,
                   bootrom=None, drive=None, interpreter=None):
    """Start a virtual board as a background process; return (port, pid).

    With ``firmware`` (a MicroPython RP2040 UF2) the board is the emulated Pico (``pico.py``)
    instead of the unix port. The pid and the port path are written to ``state_dir``
    (default: default_state_dir()) for ``stop_detached``.
    """
    if firmware is not None:
        if heap:
            raise PackagerError("--heap does not apply to the emulated Pico",
                                "its heap is what the firmware makes of the RP2040's RAM")
        # Checked here too, so a missing piece is reported by the command, not in a log.
        node_binary()
        node_modules()
        firmware, bootrom = firmware_files(firmware, bootrom)
    if timeout is None:
        timeout = PICO_BOOT_TIMEOUT_S + 10 if firmware else 20
    board_profile = load_board(board) if isinstance(board, str) else board
    state_dir = Path(state_dir or default_state_dir()).resolve()
    image = Path(image) if image else state_dir / f"{board_profile['name']}.lfs"
    if drive is None:  # a CircuitPython board's files are a folder, not a flash image
        check_options(board_profile, image, heap)
    state_dir.mkdir(parents=True, exist_ok=True)
    pid_file, port_file = _state_paths(state_dir)
    pid = _our_pid(state_dir)
    if pid is not None:
        raise PackagerError(f"a virtual board already runs from {state_dir} (pid {pid})",
                            "stop it with `minerva vboard stop` or pass --state-dir")
    pid_file.unlink(missing_ok=True)
    port_file.unlink(missing_ok=True)
    log = open(state_dir / "vboard.log", "ab")  # noqa: SIM115 - handed to the child
    # A board given as a JSON file stays a file for the child (it may not be in boards/).
    board_arg = str(board) if isinstance(board, (str, Path)) else board_profile["name"]
    proc = subprocess.Popen([sys.executable, "-m", "minerva_packager.board.vboard",
                             "--board", board_arg, "--image", str(image),
                             "--port-file", str(port_file),
                             *(["--heap", str(heap)] if heap else []),
                             *(["--firmware", str(firmware), "--bootrom", str(bootrom)]
                               if firmware else []),
                             *(["--drive", str(drive)] if drive else []),
                             *(["--interpreter", str(interpreter)] if interpreter else [])],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                            start_new_session=True, cwd=os.getcwd(), env=_child_env())
    log.close()
    pid_file.write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_file.exists() and port_file.read_text().strip():
            return port_file.read_text().strip(), proc.pid
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    proc.kill()
    pid_file.unlink(missing_ok=True)
    tail = (state_dir / "vboard.log").read_text(errors="replace")[-800:]
    raise PackagerError(f"the virtual board did not start: {tail.strip()}",
                        f"see {state_dir / 'vboard.log'}")


def _child_env():
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    return env


def process_alive(pid):
    """Whether process ``pid`` exists and has not exited."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    # An exited child of a process that never reaps (an init without a reaper) is a zombie.
    with contextlib.suppress(OSError, IndexError):
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def _state_paths(state_dir):
    state_dir = Path(state_dir or default_state_dir()).resolve()
    return state_dir / "vboard.pid", state_dir / "port"


def _command_line(pid):
    # The process's arguments, or None when they cannot be read.
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        pass
    proc = subprocess.run(["ps", "-p", str(pid), "-o", "command="], capture_output=True,
                          text=True)
    return proc.stdout.split() if proc.returncode == 0 and proc.stdout.strip() else None


def _our_pid(state_dir):
    """The pid in ``state_dir``'s pid file when that process is this state dir's virtual
    board (a stale file's pid may since belong to anything), else None."""
    pid_file, port_file = _state_paths(state_dir)
    try:
        pid = int(pid_file.read_text())
    except (OSError, ValueError):
        return None
    if not process_alive(pid):
        return None
    args = _command_line(pid) or []
    if "minerva_packager.board.vboard" in args and str(port_file) in args:
        return pid
    return None


def stop_detached(state_dir=None, timeout=10):
    """Stop the background virtual board of ``state_dir``; return its pid."""
    state_dir = Path(state_dir or default_state_dir()).resolve()
    pid_file, port_file = _state_paths(state_dir)
    if not pid_file.exists():
        raise PackagerError(f"no virtual board runs from {state_dir}",
                            "start one with `minerva vboard --detach`")
    pid = _our_pid(state_dir)
    if pid is None:
        stale = pid_file.read_text().strip()
        pid_file.unlink(missing_ok=True)
        port_file.unlink(missing_ok=True)
        raise PackagerError(f"no virtual board runs from {state_dir}: its pid file names "
                            f"process {stale or '(none)'}, which is not its virtual board; "
                            "signalled nothing and removed the stale file",
                            "start one with `minerva vboard --detach`")
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while process_alive(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.02)
    if process_alive(pid) and _our_pid(state_dir) == pid:
        os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    port_file.unlink(missing_ok=True)
    return pid


def running_port(state_dir=None):
    """The port of the background virtual board of ``state_dir``, or None."""
    _, port_file = _state_paths(state_dir)
    if _our_pid(state_dir) is not None and port_file.exists():
        return port_file.read_text().strip() or None
    return None


@contextlib.contextmanager
def running_vboard(board, state_dir, image=None, heap=None, firmware=None, bootrom=None,
                   drive=None):
    """Context manager: a background virtual board for the block; yields its port."""
    port, _ = start_detached(board, state_dir, image=image, heap=heap, firmware=firmware,
                             bootrom=bootrom, drive=drive)
    try:
        yield port
    finally:
        stop_detached(state_dir)
