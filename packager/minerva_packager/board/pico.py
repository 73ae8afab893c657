"""The emulated Pico: the real MicroPython RP2040 firmware in rp2040js, on a pseudo-terminal.

A sibling of the unix-port virtual board (``vboard.py``) with the same port, state directory
and detach/stop mechanics, but here the CPU is an emulated RP2040 running an unmodified
MicroPython firmware UF2, so the heap, the ``armv6m`` native module and the littlefs driver
are the board's own. ``pico_emulator.mjs`` (Node, rp2040js) runs the chip and carries its USB
CDC serial stream on stdin/stdout; this module owns the pty and relays bytes between the two,
so ``mpremote``, ``ampy`` and ``minerva deploy/run`` use the port as they use a real Pico's.

The filesystem partition (the board profile's ``filesystem`` offset and size) lives in an
image file that persists across runs; an absent image is formatted by the firmware on boot.

Library use::

    pico = EmulatedPico(firmware="micropython-RPI_PICO.uf2", image="pico.lfs")
    pico.serve(ready=print)   # until SIGTERM/SIGINT
"""

import contextlib
import json
import os
import pty
import selectors
import shutil
import signal
import subprocess
import time
import tty
from pathlib import Path

from ..errors import PackagerError
from .profiles import load_board

EMULATOR = Path(__file__).resolve().with_name("pico_emulator.mjs")
# tools/pico/node_modules of the source tree, where `make pico-setup` installs rp2040js.
DEFAULT_NODE_MODULES = Path(__file__).resolve().parents[3] / "tools" / "pico" / "node_modules"
BOOTROM_NAME = "rp2040-bootrom-b1.bin"
SETUP_HINT = "run `make pico-setup` (npm ci in tools/pico) or set MINERVA_RP2040JS to a " \
             "node_modules folder holding rp2040js 1.4.1"
# The emulator runs ~25 MHz of the 125 MHz chip: the firmware's boot to its USB port takes
# a few wall seconds; allow for a loaded machine.
BOOT_TIMEOUT_S = 120
# pico_emulator.mjs exits with this after a watchdog reset (machine.reset()): boot it again.
REBOOT_STATUS = 75
# After the CDC port is configured the firmware prints its banner; give it time to settle so
# the banner does not land in the first client's input.
SETTLE_S = 0.5


def node_binary():
    """Node.js on PATH, or a PackagerError naming the fix."""
    found = shutil.which("node")
    if found is None:
        raise PackagerError("Node.js is not installed (the emulated Pico runs in Node)",
                            "apt-get install nodejs npm, then `make pico-setup`")
    return found


def node_modules():
    """The node_modules folder holding rp2040js, or a PackagerError naming the fix."""
    folder = Path(os.environ.get("MINERVA_RP2040JS") or DEFAULT_NODE_MODULES)
    if not (folder / "rp2040js" / "dist" / "esm" / "index.js").exists():
        raise PackagerError(f"rp2040js is not installed in {folder}", SETUP_HINT)
    return folder


def firmware_files(firmware, bootrom=None):
    """(firmware UF2, bootrom) paths, checked; the bootrom defaults to one next to the UF2."""
    if firmware is None:
        raise PackagerError("the emulated Pico needs a MicroPython firmware",
                            "pass --firmware RPI_PICO-....uf2 (micropython.org/download/"
                            "RPI_PICO)")
    firmware = Path(firmware)
    if not firmware.is_file():
        raise PackagerError(f"{firmware}: no such firmware file",
                            "pass --firmware RPI_PICO-....uf2 (micropython.org/download/"
                            "RPI_PICO)")
    bootrom = Path(bootrom) if bootrom else firmware.with_name(BOOTROM_NAME)
    if not bootrom.is_file():
        raise PackagerError(f"{bootrom}: no RP2040 bootrom (16 KiB, B1)",
                            f"pass --bootrom FILE or put {BOOTROM_NAME} next to the firmware")
    return firmware.resolve(), bootrom.resolve()


class EmulatedPico:
    """One emulated Pico: a pty, the relay, and the Node process running the chip."""

    def __init__(self, firmware, image, board="rp2040", bootrom=None):
        self.board = load_board(board) if isinstance(board, str) else board
        if self.board.get("native_arch") != "armv6m" or "uf2_family_id" not in self.board:
            raise PackagerError(f"{self.board['name']} is not an RP2040 board",
                                "the emulator runs RP2040 firmware: --board rp2040")
        self.firmware, self.bootrom = firmware_files(firmware, bootrom)
        self.image = Path(image)
        # The raw flash between the firmware and the filesystem (the runtime's flash store,
        # device/minerva/flashstore.py) persists beside the filesystem image.
        self.store_image = self.image.with_name(self.image.name + ".store")
        self.node = node_binary()
        self.modules = node_modules()
        self.stopping = False
        self.to_host = bytearray()
        self.usb_ready_at = None

    def open_port(self):
        self.master, self.slave = pty.openpty()
        # The relay keeps the slave open, raw: no echo, no EIO between clients.
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.port = os.ttyname(self.slave)
        return self.port

    def _command(self):
        fs_info = self.board["filesystem"]
        return [self.node, str(EMULATOR), "--rp2040js", str(self.modules),
                "--bootrom", str(self.bootrom), "--firmware", str(self.firmware),
                "--image", str(self.image), "--fs-offset", str(fs_info["offset"]),
                "--fs-size", str(fs_info["size"]), "--store-image", str(self.store_image)]

    def _check_image(self):
        size = self.board["filesystem"]["size"]
        if self.image.exists() and self.image.stat().st_size != size:
            raise PackagerError(f"{self.image}: {self.image.stat().st_size} bytes, but "
                                f"{self.board['name']}'s filesystem is {size}",
                                "pass --image for another file or delete this one")
        self.image.parent.mkdir(parents=True, exist_ok=True)

    def serve(self, ready=None):
        """Run until SIGTERM/SIGINT; ``ready(port)`` is called once the USB port is up."""
        self._check_image()
        self.image = self.image.resolve()
        self.store_image = self.store_image.resolve()
        if not hasattr(self, "port"):
            self.open_port()
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.master, selectors.EVENT_READ, "port")
        self._start_emulator()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._stop_signal)
        announced = False
        to_board = bytearray()
        started = time.monotonic()
        try:
            while not self.stopping:
                if self.emulator.poll() == REBOOT_STATUS:
                    # As a board after a reset: what the host sent before is gone.
                    self._close_emulator()
                    to_board.clear()
                    self._start_emulator()
                elif self.emulator.poll() is not None:
                    raise PackagerError(f"the Pico emulator exited (status "
                                        f"{self.emulator.returncode})",
                                        "see the board's log for its last lines")
                if (not announced and self.usb_ready_at is not None
                        and time.monotonic() - self.usb_ready_at > SETTLE_S):
                    announced = True
                    # The boot banner is for nobody: a fresh client flushes its input.
                    self.to_host.clear()
                    if ready:
                        ready(self.port)
                if not announced and time.monotonic() - started > BOOT_TIMEOUT_S:
                    raise PackagerError(f"the emulated Pico's USB port did not come up in "
                                        f"{BOOT_TIMEOUT_S} s", f"check the firmware "
                                        f"{self.firmware} is MicroPython for RPI_PICO")
                for key, _ in self.selector.select(timeout=0.2):
                    if key.data == "port":
                        with contextlib.suppress(BlockingIOError, OSError):
                            to_board += os.read(self.master, 4096)
                    elif key.data == "board":
                        with contextlib.suppress(BlockingIOError):
                            self.to_host += os.read(self.emulator.stdout.fileno(), 65536)
                    else:
                        self._events()
                if to_board:
                    with contextlib.suppress(BlockingIOError, BrokenPipeError):
                        del to_board[:os.write(self.emulator.stdin.fileno(), to_board)]
                self._flush_to_host()
        finally:
            self._stop_emulator()
            self._close_emulator()
            os.close(self.master)
            os.close(self.slave)

    def _start_emulator(self):
        self.events_read, events_write = os.pipe()
        self.emulator = subprocess.Popen([*self._command(), "--events-fd", str(events_write)],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         pass_fds=(events_write,), start_new_session=True)
        os.close(events_write)
        os.set_blocking(self.emulator.stdout.fileno(), False)
        os.set_blocking(self.emulator.stdin.fileno(), False)
        self.events = b""
        self.selector.register(self.emulator.stdout, selectors.EVENT_READ, "board")
        self.selector.register(self.events_read, selectors.EVENT_READ, "events")

    def _close_emulator(self):
        self.selector.unregister(self.emulator.stdout)
        self.selector.unregister(self.events_read)
        os.close(self.events_read)
        self.emulator.stdin.close()
        self.emulator.stdout.close()

    def _events(self):
        self.events += os.read(self.events_read, 4096)
        *lines, self.events = self.events.split(b"\n")
        for line in lines:
            message = json.loads(line)
            if message.get("event") == "usb" and self.usb_ready_at is None:
                self.usb_ready_at = time.monotonic()

    def _flush_to_host(self):
        from .vboard import drain

        drain(self.master, self.to_host)

    def _stop_emulator(self):
        if self.emulator.poll() is None:
            # SIGTERM: the emulator writes the filesystem image and exits.
            self.emulator.terminate()
            try:
                self.emulator.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.emulator.kill()
                self.emulator.wait()

    def _stop_signal(self, signum, frame):
        self.stopping = True
