"""Port names as MicroPython users type them: mpremote's short names (``a0`` for
/dev/ttyACM0, ``u0`` for /dev/ttyUSB0, ``c3`` for COM3), ``auto`` for the first plugged-in
board, ``MINERVA_PORT`` when none is given, then a running virtual board."""

import os
import re

from ..errors import PackagerError

# USB vendor IDs of MicroPython boards and their USB-serial bridges, checked first by `auto`:
# Raspberry Pi (RP2040/RP2350 USB CDC), Espressif (native USB), MicroPython's own (pid.codes),
# Silicon Labs CP210x, WCH CH340/CH9102, FTDI, Adafruit.
BOARD_VIDS = {0x2E8A, 0x303A, 0xF055, 0x10C4, 0x1A86, 0x0403, 0x239A}
_SHORT = re.compile(r"^([acu])(\d{1,2})$")


def expand_short_name(port):
    """mpremote's shorthand (``a0``, ``u1``, ``c3``) as a device path; others unchanged."""
    match = _SHORT.match(port)
    if not match:
        return port
    kind, number = match.groups()
    return {"a": f"/dev/ttyACM{number}", "u": f"/dev/ttyUSB{number}",
            "c": f"COM{number}"}[kind]


def usb_serial_ports():
    """``[(device, vid)]`` of the USB serial ports plugged in, boards' vendors first."""
    from serial.tools import list_ports

    found = [(p.device, p.vid) for p in sorted(list_ports.comports(), key=lambda p: p.device)
             if p.vid is not None]
    return sorted(found, key=lambda item: item[1] not in BOARD_VIDS)


def auto_port(scan=usb_serial_ports):
    """The first plugged-in board's port, else a running virtual board's."""
    ports = scan()
    if ports:
        return ports[0][0]
    return _running_vboard(PackagerError(
        "--port auto: no board is plugged in (no USB serial port) and no virtual board is "
        "running", "plug the board in, or start one: minerva vboard --detach"))


def resolve_port(port, scan=usb_serial_ports):
    """The device path for ``port`` (None: MINERVA_PORT, then a running virtual board)."""
    port = port or os.environ.get("MINERVA_PORT")
    if port == "auto":
        return auto_port(scan)
    if port:
        return expand_short_name(port)
    return _running_vboard(PackagerError(
        "no port given", "pass --port PORT (or auto, a0, u0, COM3), set MINERVA_PORT, or "
        "start a virtual board: minerva vboard --detach"))


def _running_vboard(error):
    """The running virtual board's port; ``error`` is raised when there is none."""
    from .detached import running_port

    found = running_port()
    if found is None:
        raise error
    return found
