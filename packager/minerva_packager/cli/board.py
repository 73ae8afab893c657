"""Board commands: ``vboard``, ``deploy``, ``run``, ``image``, ``flash``."""

import contextlib
import os
import signal
from pathlib import Path

import click

from ..board.profiles import names_help
from ..board.transport import VIAS
from ..errors import PackagerError, Terminated

_STATE_DIR = click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path),
                          default=None, help="Where a detached board keeps its pid, port and "
                          "flash image (default $XDG_CACHE_HOME or ~/.cache, minerva/vboard).")


def _state_dir(state_dir):
    from ..board.detached import default_state_dir

    return state_dir.resolve() if state_dir else default_state_dir()


def _port(port):
    """--port (a path, mpremote's a0/u0/c3, or auto), else MINERVA_PORT, else the running
    virtual board's port."""
    from ..board.ports import resolve_port

    return resolve_port(port)


_PORT = click.option("--port", "-p", help="Serial port of the board: a path, mpremote's short "
                     "names (a0 = /dev/ttyACM0, u0 = /dev/ttyUSB0, c3 = COM3) or auto (the "
                     "first plugged-in board). Default: MINERVA_PORT, then the running "
                     "virtual board.")
_VIA = click.option("--via", type=click.Choice(VIAS), default="mpremote", show_default=True,
                    help="Tool that talks to the board.")


@click.group(invoke_without_command=True)
@click.option("--board", "-b", default="rp2040", show_default=True,
              help="Board to emulate: " + names_help() + ".")
@click.option("--image", type=click.Path(dir_okay=False, path_type=Path),
              help="Flash image file (created if absent; persists across runs).")
@click.option("--heap", type=int, help="Heap bytes instead of the board's heap_bytes.")
@click.option("--detach", is_flag=True, help="Run in the background; stop with "
              "`minerva vboard stop`.")
@click.option("--emulate", is_flag=True, help="Run the real MicroPython firmware on an "
              "emulated RP2040 (rp2040js) instead of the unix port.")
@click.option("--firmware", type=click.Path(dir_okay=False, path_type=Path),
              envvar="MINERVA_PICO_FIRMWARE", help="MicroPython RPI_PICO .uf2 for --emulate "
              "(default: MINERVA_PICO_FIRMWARE).")
@click.option("--bootrom", type=click.Path(dir_okay=False, path_type=Path),
              help="RP2040 B1 bootrom for --emulate (default: rp2040-bootrom-b1.bin next to "
              "the firmware).")
@click.option("--circuitpython", is_flag=True, help="Run CircuitPython (its unix port) with "
              "a host folder as the CIRCUITPY drive, instead of MicroPython on a flash image.")
@click.option("--drive", type=click.Path(file_okay=False, path_type=Path),
              help="The CIRCUITPY folder (implies --circuitpython; default "
              "<state-dir>/CIRCUITPY).")
@click.option("--interpreter", type=click.Path(dir_okay=False, path_type=Path),
              help="The unix port to run (default: the venv's micropython, or "
              "../shared/circuitpython/circuitpython).")
@_STATE_DIR
@click.pass_context
def vboard(ctx, board, image, heap, detach, emulate, firmware, bootrom, circuitpython, drive,
           interpreter, state_dir):
    """Start a virtual board: MicroPython on a pty with the board's heap and flash, the real
    Pico firmware in an emulator (--emulate), or CircuitPython with a folder as its CIRCUITPY
    drive (--circuitpython)."""
    if ctx.invoked_subcommand is not None:
        return
    from ..board.detached import start_detached
    from ..board.profiles import load_board
    from ..board.vboard import VirtualBoard

    profile = load_board(board)
    state_dir = _state_dir(state_dir)
    image = image or state_dir / f"{profile['name']}.lfs"
    if emulate:
        if firmware is None:
            raise PackagerError("--emulate needs the MicroPython firmware",
                                "pass --firmware RPI_PICO-....uf2 (micropython.org/download/"
                                "RPI_PICO) or set MINERVA_PICO_FIRMWARE")
        _emulate(profile, board, image, heap, detach, firmware, bootrom, state_dir)
        return
    if circuitpython and drive is None:
        drive = state_dir / "CIRCUITPY"
    if detach:
        port, pid = start_detached(board, state_dir, image=image, heap=heap, drive=drive,
                                   interpreter=interpreter)
        _say_detached(port, pid, profile["name"], state_dir)
        return
    if drive is None:
        from ..board.vboard import check_options

        check_options(profile, image, heap)
    vb = VirtualBoard(profile, image=image, heap=heap, micropython=interpreter, drive=drive)

    def ready(port):
        click.echo(port)
        storage = (f"CIRCUITPY drive {vb.drive}" if drive else
                   f"flash {image} ({profile['filesystem']['size']} bytes)")
        click.echo(f"minerva vboard: {profile['title']} on {port}, heap {vb.heap} bytes, "
                   f"{storage}; Ctrl-C stops it", err=True)

    vb.serve(ready)


def _emulate(profile, board, image, heap, detach, firmware, bootrom, state_dir):
    from ..board.detached import start_detached
    from ..board.pico import EmulatedPico

    if detach:
        port, pid = start_detached(board, state_dir, image=image, heap=heap, firmware=firmware,
                                   bootrom=bootrom)
        _say_detached(port, pid, f"emulated {profile['name']}", state_dir)
        return
    if heap:
        raise PackagerError("--heap does not apply to the emulated Pico",
                            "its heap is what the firmware makes of the RP2040's RAM")
    pico = EmulatedPico(firmware, image, board=profile, bootrom=bootrom)

    def ready(port):
        click.echo(port)
        click.echo(f"minerva vboard: {profile['title']} emulated (rp2040js) running "
                   f"{firmware.name} on {port}, flash {image}; Ctrl-C stops it", err=True)

    pico.serve(ready)


def _say_detached(port, pid, what, state_dir):
    # The port alone on stdout (scripts read it), the rest on stderr.
    click.echo(port)
    click.echo(f"minerva vboard: {what} running as pid {pid}; stop it with "
               f"`minerva vboard stop{_state_flag(state_dir)}`", err=True)


def _state_flag(state_dir):
    from ..board.detached import default_state_dir

    return "" if Path(state_dir) == default_state_dir() else f" --state-dir {state_dir}"


@vboard.command("stop")
@_STATE_DIR
def vboard_stop(state_dir):
    """Stop the background virtual board."""
    from ..board.detached import stop_detached

    pid = stop_detached(_state_dir(state_dir))
    click.echo(f"stopped virtual board (pid {pid})")


@click.command()
@_PORT
@_VIA
@click.option("--board", "-b", help="Expected board (checked against the board's own name): "
              + names_help() + ".")
@click.option("--no-runtime", is_flag=True, help="Copy capsules only.")
@click.option("--stage", is_flag=True, help="Put the capsules in the runtime's inbox "
              "(/capsules/inbox): the first becomes active, later ones are shadow-tested as "
              "candidates (minerva shadow).")
@click.option("--quiet", "-q", is_flag=True, help="Print only the verification line.")
@click.option("--mpy-cross", type=click.Path(exists=True, dir_okay=False),
              help="CircuitPython's mpy-cross: a CircuitPython board gets .mpy files made with "
              "it (default: .py sources).")
@click.option("--drive", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A CircuitPython board's CIRCUITPY drive: copy the runtime into lib/minerva "
              "and the capsules into capsules/inbox as files (no serial port).")
@click.argument("capsules", nargs=-1, type=click.Path(exists=True, dir_okay=False))
def deploy(port, via, board, no_runtime, stage, quiet, mpy_cross, drive, capsules):
    """Install the runtime and CAPSULES on a board, skipping files that are unchanged."""
    from ..board.deploy import deploy as run_deploy
    from ..board.deploy import terminal_progress

    if drive is not None:
        from ..board.drive import copy_to_drive

        copy_to_drive(drive, capsules, runtime=not no_runtime, mpy_cross=mpy_cross,
                      say=click.echo)
        return

    def say(text):
        if not quiet or text.startswith("Verified"):
            click.echo(text)

    with _signals_as_interrupt():
        try:
            run_deploy(_port(port), capsules, board=board, via=via, runtime=not no_runtime,
                       say=say, progress=None if quiet else terminal_progress(), stage=stage,
                       mpy_cross=mpy_cross)
        except KeyboardInterrupt as exc:
            how = "by SIGTERM" if isinstance(exc, Terminated) else "by Ctrl-C"
            raise PackagerError(f"deploy stopped {how}: the board keeps its previous release, "
                                "or the whole new one if its commit had begun (the next "
                                "`import minerva` or deploy finishes it)",
                                "run the same deploy again")


@contextlib.contextmanager
def _signals_as_interrupt():
    # Python's default SIGTERM ends the process silently, mid-upload.
    def terminated(signum, frame):
        raise Terminated

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@click.command()
@_PORT
@_VIA
@click.option("--top-k", default=3, show_default=True, help="Classes to list per output.")
@click.option("--raw-dtype", type=click.Choice(["int8", "int16", "float32"]),
              help="Type of a raw (non-.npy) INPUT's values (default: the model input's); "
              "float32 values are quantized.")
@click.argument("capsule", type=click.Path(exists=True, dir_okay=False))
@click.argument("input_file", metavar="INPUT", type=click.Path(exists=True, dir_okay=False))
def run(port, via, top_k, raw_dtype, capsule, input_file):
    """Run a deployed CAPSULE on the board on INPUT (.npy or raw .bin) and print the output."""
    from ..board.run import describe_output, load_inputs, run_on_board
    from ..capsule.container import read_capsule

    cap = read_capsule(capsule)
    inputs, note = load_inputs(input_file, cap, raw_dtype)
    if note:
        click.echo(f"minerva: {input_file}: {note}", err=True)

    def show(index, output):
        prefix = f"[{index}] " if len(inputs) > 1 else ""
        for line in describe_output(cap, output, top_k):
            click.echo(prefix + line)

    outputs, tier = run_on_board(_port(port), capsule, inputs, via=via, each=show)
    click.echo(f"ran {len(outputs)} input(s) on the board with the {tier} kernels", err=True)


@click.command()
@click.option("--board", "-b", required=True, help="Board whose filesystem to build: "
              + names_help() + ".")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Image file: .uf2 for a UF2 (RP2040), anything else for the raw partition.")
@click.argument("capsules", nargs=-1, type=click.Path(exists=True, dir_okay=False))
def image(board, output, capsules):
    """Build a LittleFS image of the board's filesystem holding the runtime and CAPSULES."""
    from ..board.image import build_image, replaced_note, to_uf2
    from ..board.profiles import load_board

    profile = load_board(board)
    raw = build_image(profile, capsules)
    fs_info = profile["filesystem"]
    uf2_board = "uf2_family_id" in profile
    if output.suffix == ".uf2":
        if not uf2_board:
            raise PackagerError(f"{profile['name']} does not boot UF2 files",
                                "write a .bin and use `minerva flash`")
        address = profile["flash_map_address"] + fs_info["offset"]
        output.write_bytes(to_uf2(raw, address, profile["uf2_family_id"]))
        click.echo(f"Wrote {output}: {profile['name']} filesystem ({len(raw)} bytes) at "
                   f"0x{address:08X}; write it with `minerva flash --board {profile['name']} "
                   f"--drive DRIVE {output}` or copy it onto the RPI-RP2 drive (hold BOOTSEL).")
    else:
        output.write_bytes(raw)
        if uf2_board:
            # The boot drive takes only UF2: a raw image is for the virtual board.
            click.echo(f"Wrote {output}: {profile['name']} filesystem image, {len(raw)} bytes "
                       f"(raw, for `minerva vboard --board {profile['name']} --image "
                       f"{output}`); for the board itself write a .uf2 with -o "
                       f"{output.with_suffix('.uf2')}.")
        else:
            click.echo(f"Wrote {output}: {profile['name']} filesystem image, {len(raw)} bytes "
                       f"for offset 0x{fs_info['offset']:X}; write it with `minerva flash "
                       f"--board {profile['name']} --port PORT {output}`.")
    click.echo(f"Flashing it {replaced_note(profile)}.")


@click.command()
@click.option("--board", "-b", required=True, help="The board: " + names_help() + ".")
@click.option("--port", "-p", help="Serial port (ESP32 boards; a path, a0/u0/c3 or auto; "
              "default MINERVA_PORT).")
@click.option("--drive", type=click.Path(file_okay=False), help="Mounted RPI-RP2 drive "
              "(RP2040 boards).")
@click.option("--baud", default=460800, show_default=True)
@click.argument("image_file", metavar="IMAGE", type=click.Path(exists=True, dir_okay=False))
def flash(board, port, drive, baud, image_file):
    """Write a filesystem IMAGE to a board: esptool for ESP32, the UF2 drive for RP2040.
    The image replaces the board's whole filesystem."""
    from ..board.image import check_uf2, copy_uf2_to_drive, flash_esp32, replaced_note
    from ..board.profiles import load_board

    profile = load_board(board)
    if "esptool_chip" in profile:
        port = port or os.environ.get("MINERVA_PORT")
        if not port:
            raise PackagerError("no port given", "pass --port PORT of the ESP32 or set "
                                "MINERVA_PORT")
        from ..board.ports import auto_port, expand_short_name

        port = auto_port() if port == "auto" else expand_short_name(port)
        flash_esp32(profile, port, image_file, baud=baud, say=click.echo)
        click.echo(f"Flashed {image_file} to {profile['name']} at 0x"
                   f"{profile['filesystem']['offset']:X}.")
    elif drive:
        check_uf2(image_file, profile)
        click.echo(f"Writing {image_file}: it {replaced_note(profile)}.")
        target = copy_uf2_to_drive(image_file, drive, profile)
        click.echo(f"Copied {image_file} to {target}; the board reboots when it is written.")
    else:
        raise PackagerError(f"{profile['name']} is flashed by copying the .uf2",
                            "pass --drive /media/$USER/RPI-RP2 or copy it there yourself")


@click.command("ls")
@_PORT
@_VIA
def ls(port, via):
    """List the capsules on a board: the runtime's slots, deployed ones, inbox and refused."""
    from ..board.files import describe_listing, list_capsules

    click.echo("\n".join(describe_listing(list_capsules(_port(port), via))))


@click.command("rm")
@_PORT
@_VIA
@click.argument("name")
def rm(port, via, name):
    """Remove capsule NAME from a board (not one of the runtime's slots)."""
    from ..board.files import remove_capsule

    click.echo(f"removed {remove_capsule(_port(port), name, via)}")


COMMANDS = [vboard, deploy, run, image, flash, ls, rm]
