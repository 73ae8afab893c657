# The virtual board's CPU side: this script runs inside the MicroPython unix port, or the
# CircuitPython one (never CPython).
#
#   micropython -X heapsize=N vboard_agent.py IMAGE BLOCK_SIZE NONCE BOARD MACHINE RUN_MAIN \
#       READ_J_PER_BYTE WRITE_J_PER_BYTE ERASE_J_PER_BLOCK
#
# On MicroPython it mounts the LittleFS2 image file at "/" the way a board's _boot.py mounts
# its flash. CircuitPython's unix port has no vfs module, so there IMAGE is a host folder, the
# stand-in for the CIRCUITPY drive (vboard_agent_drive.py). It runs
# boot.py (and main.py when RUN_MAIN is "1"), then executes code chunks that the host bridge
# (vboard.py) sends on stdin as "<kind> <length>\n<source>", kind "x" (file input, the raw REPL)
# or "s" (single input, the friendly REPL). Program output goes to stdout unchanged, framed by
# END + "S0\n" when the code starts and END + status + "<n>\n" + n bytes of traceback when it
# ends. END starts with a NUL and a per-boot random nonce, so program output cannot fake it.
import io
import os
import sys

try:
    import vfs
except ImportError:  # CircuitPython: the filesystem is the host's (vboard_agent_drive.py)
    vfs = None

_IMAGE, _BLOCK, _NONCE, _BOARD, _MACHINE, _RUN_MAIN = sys.argv[1:7]
_ENERGY = [float(x) for x in sys.argv[7:10]]
_END = b"\x00" + _NONCE.encode()
_ME = sys.argv[0]


class FileFlash:
    # A NOR-flash-like block device over a file, with the extended interface (offsets and an
    # explicit erase) that VfsLfs2 uses. It counts traffic so energy can be estimated.
    #
    # Power-cut mode, for tests: MINERVA_VBOARD_POWER names a host file holding three numbers,
    # "writes cut_at tear". Every program or erase operation adds one to `writes` (across soft
    # resets, each of which starts a new agent); once `writes` reaches `cut_at` (> 0), that
    # operation and every later one never reach the flash (with `tear` 1 the first one writes
    # half its bytes) and fail with EIO, as on a board whose power went at that write. The file
    # is read at every operation, so a test arms the cut while the board runs; restarting on
    # the image is the reboot.
    def __init__(self, f, block_size, block_count):
        self.f = f
        self.block_size = block_size
        self.block_count = block_count
        self.stats = {"read_bytes": 0, "written_bytes": 0, "erased_blocks": 0}
        # Made once: a board's flash erase takes nothing from the Python heap, so neither may
        # this one (a 4 KB allocation per erase failed on a fragmented heap where a board
        # would not).
        self.erased = b"\xff" * block_size
        # Opened now, while "/" is still the host's filesystem (the image is mounted there next).
        path = os.getenv("MINERVA_VBOARD_POWER")
        self.power = open(path, "r+") if path else None

    def _powered(self, buf=None, pos=0):
        # Counts one program/erase; raises once the power is gone (after a torn write, if asked).
        if self.power is None:
            return
        self.power.seek(0)
        writes, cut_at, tear = [int(v) for v in self.power.read().split()]
        writes += 1
        self.power.seek(0)
        self.power.write("%d %d %d          " % (writes, cut_at, tear))
        if not cut_at or writes < cut_at:
            return
        if writes == cut_at and tear and buf is not None:
            self.f.seek(pos)
            self.f.write(bytes(buf[:len(buf) // 2]))
        raise OSError(5)

    def readblocks(self, block, buf, offset=0):
        self.f.seek(block * self.block_size + offset)
        self.f.readinto(buf)
        self.stats["read_bytes"] += len(buf)

    def writeblocks(self, block, buf, offset=None):
        if offset is None:
            offset = 0
        self._powered(buf, block * self.block_size + offset)
        self.f.seek(block * self.block_size + offset)
        self.f.write(buf)
        self.stats["written_bytes"] += len(buf)

    def ioctl(self, op, arg):
        if op == 4:
            return self.block_count
        if op == 5:
            return self.block_size
        if op == 6:
            self._powered()
            self.f.seek(arg * self.block_size)
            self.f.write(self.erased)
            self.stats["erased_blocks"] += 1
            return 0
        if op == 3:
            self.f.flush()
        return 0


class VirtualBoardInfo:
    # `import vboard` on the virtual board: what it emulates (a real board has no such module).
    board = _BOARD
    machine = _MACHINE

    def flash_stats(self):
        # Traffic since boot, and its energy by the board profile's flash figures.
        stats = dict(_flash.stats) if vfs is not None else {
            "read_bytes": 0, "written_bytes": 0, "erased_blocks": 0}
        read_j, write_j, erase_j = _ENERGY
        stats["energy_j"] = (stats["read_bytes"] * read_j + stats["written_bytes"] * write_j
                             + stats["erased_blocks"] * erase_j)
        return stats


def _mount():
    global _flash
    if vfs is None:
        # Kept in its own module: this agent's code takes the virtual board's heap, and a
        # MicroPython board must not pay for CircuitPython's drive.
        import vboard_agent_drive

        vboard_agent_drive.mount(_IMAGE, VirtualBoardInfo())
        return
    f = open(_IMAGE, "r+b")
    size = f.seek(0, 2)
    block_size = int(_BLOCK)
    _flash = FileFlash(f, block_size, size // block_size)
    try:
        fs = vfs.VfsLfs2(_flash)
    except OSError:
        # As a fresh board does on first boot: an unformatted flash gets a new filesystem.
        vfs.VfsLfs2.mkfs(_flash)
        fs = vfs.VfsLfs2(_flash)
    vfs.umount("/")
    vfs.mount(fs, "/")
    os.chdir("/")
    sys.path[:] = ["", ".frozen", "/lib"]
    sys.modules["vboard"] = VirtualBoardInfo()


def _traceback(exc):
    s = io.StringIO()
    if hasattr(sys, "print_exception"):
        sys.print_exception(exc, s)
    else:  # CircuitPython
        import traceback

        traceback.print_exception(exc, file=s)
    # Drop the agent's own frames: a board's traceback starts at the user's code.
    lines = [ln.rstrip("\r") for ln in s.getvalue().split("\n") if _ME not in ln]
    return "\n".join(lines).encode()


def _execute(source, kind, scope):
    status = b"E"
    err = b""
    try:
        # "S": from here a Ctrl-C (SIGINT) lands in the user's code, so the bridge may send it.
        sys.stdout.buffer.write(_END + b"S0\n")
        exec(compile(source, "<stdin>", "single" if kind == b"s" else "exec"), scope)
    except SystemExit:
        status = b"R"
    except BaseException as exc:  # noqa: B036 - KeyboardInterrupt is reported like a board does
        err = _traceback(exc)
    return status, err


def _run_file(name, scope):
    try:
        os.stat(name)
    except OSError:
        return b"E"
    with open(name) as f:
        source = f.read()
    status, err = _execute(source, b"x", scope)
    sys.stdout.buffer.write(err)
    return status


def _read_exactly(stream, n):
    # Code larger than the board's heap raises MemoryError here (as a board's compiler would
    # run out); the rest of it is read and dropped so the next chunk's header is found.
    try:
        data = bytearray(n)
    except MemoryError:
        while n:
            chunk = stream.read(min(n, 256))
            if not chunk:
                raise EOFError
            n -= len(chunk)
        raise
    view = memoryview(data)
    got = 0
    while got < n:
        chunk = stream.read(min(n - got, 4096))
        if not chunk:
            raise EOFError
        view[got:got + len(chunk)] = chunk
        got += len(chunk)
    view = None
    return bytes(data)  # compile() takes str or bytes only; a MemoryError here is reported


def main():
    _mount()
    out = sys.stdout.buffer
    stdin = sys.stdin.buffer
    scope = {"__name__": "__main__"}
    if _run_file("boot.py", scope) == b"E" and _RUN_MAIN == "1":
        _run_file("main.py", scope)
    out.write(_END + b"B0\n")
    while True:
        try:
            header = stdin.readline()
            if not header:
                _shutdown(scope)
                return
            kind, length = header.split()
            try:
                source = _read_exactly(stdin, int(length.decode()))
            except MemoryError:
                out.write(_END + b"S0\n")
                status, err = b"E", b"MemoryError: memory allocation failed (code too large)\n"
            else:
                status, err = _execute(source, kind, scope)
            source = None
            out.write(_END + status + str(len(err)).encode() + b"\n" + err)
        except KeyboardInterrupt:
            # The bridge only interrupts between "S" and the end marker; a late signal after
            # the code returned has nothing left to interrupt.
            pass
        except EOFError:
            _shutdown(scope)
            return


def _shutdown(scope):
    # A soft reset on a board sweeps the heap, so files left open get closed (and committed
    # by littlefs); do the same before this process goes away.
    import gc

    scope.clear()
    gc.collect()
    if vfs is not None:
        vfs.umount("/")


main()
