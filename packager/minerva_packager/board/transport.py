"""One way to talk to a board, with mpremote or ampy behind it.

A :class:`Transport` runs code in the board's raw REPL and reads and writes files; everything
else (probing, hashing, renaming) is small code snippets run through :meth:`Transport.exec`,
as mpremote does. ``connect(port, via="mpremote" | "ampy")`` opens one::

    with connect("/dev/ttyACM0") as board:
        print(board.eval("1 + 1"))
"""

import ast
import contextlib
import os

from ..errors import PackagerError

VIAS = ("mpremote", "ampy")
# mpremote's own default chunk; every chunk is one raw-paste round trip.
CHUNK_BYTES = 256
ENTER_TIMEOUT_S = 5


class DeviceError(PackagerError):
    """Code raised an exception on the board; ``traceback`` is the board's text."""

    def __init__(self, traceback):
        lines = [line.strip() for line in traceback.strip().splitlines()]
        last = lines[-1] if lines else "an error"
        where = [line for line in lines if line.startswith("File ")]
        super().__init__(f"the board raised {last}",
                         f"at {where[-1]}" if where else "run it at the board's REPL to see more")
        self.traceback = traceback


class Transport:
    """A connected board in raw REPL mode. Use as a context manager."""

    via = None

    # Set by each subclass: the tool's raw-REPL object (with exec_raw) and its error class.
    _raw = None
    _error = Exception

    def exec(self, code, timeout=10):
        """Run ``code`` on the board; return its printed output (bytes).

        ``timeout`` is the longest silence (seconds) allowed while it runs.
        """
        try:
            out, err = self._raw.exec_raw(code, timeout=timeout)
        except (self._error, OSError) as exc:
            # OSError: the port went away (unplugged, board reset, virtual board stopped).
            raise PackagerError(f"lost the board: {exc}", "check the cable and retry")
        if err:
            raise DeviceError(err.decode(errors="replace"))
        return out

    def write_file(self, path, data, progress=None):
        """Write ``data`` to ``path`` on the board; ``progress(done, total)`` after chunks."""
        raise NotImplementedError

    def close(self):
        raise NotImplementedError

    def eval(self, expression):
        """Evaluate ``expression`` on the board and return it as a Python literal."""
        out = self.exec(f"print(repr({expression}))").decode().strip()
        return ast.literal_eval(out)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class MpremoteTransport(Transport):
    """mpremote's SerialTransport used as a library (raw-paste, soft reset on connect)."""

    via = "mpremote"

    def __init__(self, port):
        from mpremote.transport import TransportError
        from mpremote.transport_serial import SerialTransport

        self._error = TransportError
        try:
            # A read timeout keeps a silent port from blocking forever (mpremote's own CLI
            # passes none, and on a pty it then reads blocking).
            self.serial = self._raw = SerialTransport(port, baudrate=115200, timeout=2)
        except TransportError as exc:
            raise PackagerError(f"{port}: cannot open the port ({exc})",
                                "check the path and that no other program holds it")
        try:
            self.serial.enter_raw_repl(soft_reset=True, timeout_overall=ENTER_TIMEOUT_S)
        except TransportError:
            self.serial.close()
            raise _not_micropython(port)

    def write_file(self, path, data, progress=None):
        from mpremote.transport import TransportExecError

        try:
            self.serial.fs_writefile(path, bytes(data), chunk_size=CHUNK_BYTES,
                                     progress_callback=progress)
        except TransportExecError as exc:
            raise DeviceError(exc.error_output)
        except OSError as exc:
            raise PackagerError(f"{path}: write failed on the board ({exc})",
                                "check free space with `mpremote df`")

    def close(self):
        # A port that is gone cannot leave the raw REPL; what went wrong is already reported.
        with contextlib.suppress(self._error, OSError):
            self.serial.exit_raw_repl()
        with contextlib.suppress(OSError):
            self.serial.close()


class AmpyTransport(Transport):
    """ampy's Pyboard used as a library."""

    via = "ampy"

    def __init__(self, port):
        from ampy.pyboard import Pyboard, PyboardError

        self._error = PyboardError
        try:
            self.board = self._raw = Pyboard(port)
        except PyboardError as exc:
            raise PackagerError(f"{port}: cannot open the port ({exc})",
                                "check the path and that no other program holds it")
        self.board.serial.timeout = 2
        try:
            self.board.enter_raw_repl()
        except PyboardError:
            self.board.close()
            raise _not_micropython(port)

    def write_file(self, path, data, progress=None):
        # What ampy's put does (open, write chunks, close through its raw REPL), one chunk per
        # exec so that a progress bar moves as the bytes go, not once per file.
        data = bytes(data)
        try:
            self.board.exec_("f = open(%r, 'wb')" % path)
            for start in range(0, len(data), CHUNK_BYTES):
                self.board.exec_("f.write(%r)" % data[start:start + CHUNK_BYTES])
                if progress:
                    progress(min(start + CHUNK_BYTES, len(data)), len(data))
            self.board.exec_("f.close()")
        except OSError as exc:
            raise PackagerError(f"{path}: write failed, lost the board ({exc})",
                                "check the cable and retry")
        except self._error as exc:
            if len(exc.args) == 3:
                raise DeviceError(exc.args[2].decode(errors="replace"))
            raise PackagerError(f"{path}: write failed ({exc})", "check the cable and retry")

    def close(self):
        with contextlib.suppress(self._error, OSError):
            self.board.exit_raw_repl()
        with contextlib.suppress(OSError):
            self.board.close()


def _not_micropython(port):
    return PackagerError(f"{port}: not a MicroPython board (no raw REPL answer)",
                         "check the port; flash MicroPython first if the board has none")


def connect(port, via="mpremote"):
    """Open ``port`` with ``via`` ("mpremote" or "ampy"); returns a :class:`Transport`."""
    if not port:
        raise PackagerError("no port given", "pass --port PORT, set MINERVA_PORT, or start "
                            "a virtual board with `minerva vboard --detach`")
    if not os.path.exists(port):
        raise PackagerError(f"no port {port}", "connect the board or check the path; "
                            "`mpremote connect list` shows serial ports")
    if via == "mpremote":
        return MpremoteTransport(port)
    if via == "ampy":
        return AmpyTransport(port)
    raise PackagerError(f"unknown transport {via!r}", "use --via mpremote or --via ampy")
