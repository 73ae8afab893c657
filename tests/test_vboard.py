"""The virtual board with the real mpremote and ampy command lines, no special flags."""

import ast
import hashlib
import os
import signal
import subprocess
import time

import pytest
import serial
from board_helpers import BIN, DIGITS_CAPSULE, DIGITS_X, tool, vboard

from minerva_packager.board.detached import process_alive
from minerva_packager.board.profiles import load_board

BOARD = load_board("rp2040")


@pytest.fixture(scope="module")
def port(tmp_path_factory):
    with vboard(tmp_path_factory.mktemp("vboard")) as port:
        yield port


def mpremote(port, *args, check=True):
    return tool("mpremote", "connect", port, *args, check=check)


def ampy(port, *args, check=True):
    return tool("ampy", "--port", port, *args, check=check)


def test_port_is_a_pty(port):
    assert port.startswith("/dev/pts/") and os.path.exists(port)


def test_mpremote_exec_sees_board_heap_and_flash(port):
    out = mpremote(port, "exec", "import gc, os, sys; gc.collect(); "
                   "print(gc.mem_free() + gc.mem_alloc(), os.statvfs('/')[0] * os.statvfs('/')[2],"
                   " sys.path, os.getcwd())").stdout.split(maxsplit=2)
    heap, fs_bytes = int(out[0]), int(out[1])
    # The unix port's heap is exactly -X heapsize; the filesystem is the board's partition.
    assert 0.9 * BOARD["heap_bytes"] < heap <= BOARD["heap_bytes"]
    assert fs_bytes == BOARD["filesystem"]["size"]
    assert "'/lib'" in out[2] and out[2].strip().endswith("/")


def test_mpremote_file_round_trip_and_hash(port, tmp_path):
    blob = tmp_path / "blob.bin"
    blob.write_bytes(os.urandom(3000))
    mpremote(port, "fs", "mkdir", ":data", check=False)
    mpremote(port, "fs", "cp", blob, ":data/blob.bin")
    listing = mpremote(port, "fs", "ls", ":data").stdout
    assert "3000 blob.bin" in listing
    digest = mpremote(port, "fs", "sha256sum", ":data/blob.bin").stdout
    assert hashlib.sha256(blob.read_bytes()).hexdigest() in digest
    back = tmp_path / "back.bin"
    mpremote(port, "fs", "cp", ":data/blob.bin", back)
    assert back.read_bytes() == blob.read_bytes()


def test_mpremote_run_and_device_errors(port, tmp_path):
    script = tmp_path / "hello.py"
    script.write_text("import sys\nprint('hello from', sys.implementation.name)\n")
    assert mpremote(port, "run", script).stdout.strip() == "hello from micropython"
    failed = mpremote(port, "exec", "1/0", check=False)
    assert failed.returncode == 1
    assert 'File "<stdin>", line 1' in failed.stdout + failed.stderr
    assert "ZeroDivisionError" in failed.stdout + failed.stderr


def test_files_persist_across_soft_reset(port):
    mpremote(port, "exec", "open('keep.txt', 'w').write('kept')")
    # mpremote soft-resets on connect; soft-reset also clears Python state.
    out = mpremote(port, "exec", "x = 1", "soft-reset", "exec",
                   "print(open('keep.txt').read(), 'x' in globals())").stdout
    assert out.split() == ["kept", "False"]


def test_ampy_put_ls_get_run_rm(port, tmp_path):
    script = tmp_path / "ampy_hello.py"
    script.write_text("print('hi from ampy')\n")
    ampy(port, "put", script, "/ampy_hello.py")
    assert "/ampy_hello.py" in ampy(port, "ls").stdout
    assert ampy(port, "get", "/ampy_hello.py").stdout.strip() == "print('hi from ampy')"
    assert ampy(port, "run", script).stdout.strip() == "hi from ampy"
    ampy(port, "rm", "/ampy_hello.py")
    assert "/ampy_hello.py" not in ampy(port, "ls").stdout


def _read_until(s, ending, timeout=10):
    data = b""
    deadline = time.monotonic() + timeout
    while not data.endswith(ending) and time.monotonic() < deadline:
        data += s.read(1)
    assert data.endswith(ending), data
    return data


def test_raw_repl_protocol_interrupt_and_raw_paste(port):
    with serial.Serial(port, timeout=0.5) as s:
        s.write(b"\r\x03\x01")
        _read_until(s, b"raw REPL; CTRL-B to exit\r\n>")
        # Ctrl-C interrupts running code, as on a board, even when it follows at once.
        for attempt in range(3):
            s.write(b"while True: pass\x04\x03")
            assert b"KeyboardInterrupt" in _read_until(s, b"\x04>")
            s.write(b"print(%d)\x04" % attempt)
            assert _read_until(s, b"\x04>") == b"OK%d\n\x04\x04>" % attempt
        # raw-paste: R\x01, a 2-byte window, a first \x01, then \x04 acknowledges the end.
        s.write(b"\x05A\x01")
        header = s.read(5)
        assert header[:2] == b"R\x01" and header[4:] == b"\x01"
        s.write(b"print(6 * 7)\x04")
        assert _read_until(s, b"\x04>") == b"\x0442\n\x04\x04>"
        # Ctrl-D on an empty raw line is a soft reset.
        s.write(b"\x04")
        assert b"MPY: soft reboot\r\n" in _read_until(s, b"raw REPL; CTRL-B to exit\r\n>")
        s.write(b"\x02")
        _read_until(s, b">>> ")


def test_friendly_repl(port):
    with serial.Serial(port, timeout=0.5) as s:
        s.write(b"\r\x03\x02")
        _read_until(s, b'for more information.\r\n>>> ')
        s.write(b"import vboard; vboard.board\r")
        assert b"'rp2040'" in _read_until(s, b">>> ")
        s.write(b"for i in range(3):\r  print(i * i)\r\r")
        assert b"0\r\n1\r\n4\r\n>>> " in _read_until(s, b"4\r\n>>> ")
        s.write(b"\x04")
        assert b"MPY: soft reboot" in _read_until(s, b">>> ")


def test_flash_persists_across_vboard_restart(tmp_path):
    image = tmp_path / "flash.lfs"
    with vboard(tmp_path / "a", image=image) as port:
        mpremote(port, "exec", "open('/survivor.txt', 'w').write('still here')")
    with vboard(tmp_path / "b", image=image) as port:
        assert mpremote(port, "exec", "print(open('/survivor.txt').read())").stdout.strip() \
            == "still here"


def test_vboard_stop_ends_the_process(tmp_path):
    proc = tool("minerva", "vboard", "--detach", "--state-dir", tmp_path)
    pid = int((tmp_path / "vboard.pid").read_text())
    assert proc.stdout.strip().startswith("/dev/pts/")
    tool("minerva", "vboard", "stop", "--state-dir", tmp_path)
    assert not (tmp_path / "vboard.pid").exists()
    assert not process_alive(pid)
    again = tool("minerva", "vboard", "stop", "--state-dir", tmp_path, check=False)
    assert again.returncode == 1 and "no virtual board runs" in again.stderr


def test_foreground_vboard_prints_port_and_stops_on_ctrl_c(tmp_path):
    proc = subprocess.Popen([str(BIN / "minerva"), "vboard", "--board", "esp32", "--state-dir",
                             str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        port = proc.stdout.readline().strip()
        out = mpremote(port, "exec", "import vboard, os; print(vboard.board, "
                       "os.statvfs('/')[0] * os.statvfs('/')[2])").stdout.split()
        assert out == ["esp32", str(0x200000)]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
    assert (tmp_path / "esp32.lfs").stat().st_size == 0x200000


def test_flash_traffic_and_energy_by_board_figures(port):
    out = mpremote(port, "exec", "import vboard\na = vboard.flash_stats()\n"
                   "open('/energy.bin', 'wb').write(bytes(20000))\n"
                   "b = vboard.flash_stats()\n"
                   "print(repr((a, b)))").stdout
    before, after = ast.literal_eval(out.strip())
    written = after["written_bytes"] - before["written_bytes"]
    erased = after["erased_blocks"] - before["erased_blocks"]
    assert written >= 20000 and erased >= 20000 // 4096
    energy = BOARD["energy"]
    expected = (after["read_bytes"] * energy["flash_read_j_per_byte"]
                + after["written_bytes"] * energy["flash_write_j_per_byte"]
                + after["erased_blocks"] * energy["flash_erase_j_per_page"])
    assert after["energy_j"] == pytest.approx(expected)


def test_heap_override(tmp_path):
    with vboard(tmp_path, heap=64 * 1024) as small:
        total = mpremote(small, "exec", "import gc; gc.collect(); "
                         "print(gc.mem_free() + gc.mem_alloc())").stdout
        assert 0.9 * 64 * 1024 < int(total) <= 64 * 1024
        failed = mpremote(small, "exec", "b = bytearray(80 * 1024)", check=False)
        assert failed.returncode == 1 and "MemoryError" in failed.stdout + failed.stderr


def test_micropython_killed_while_booting_resets_the_board(tmp_path):
    # Killing the board's MicroPython while boot.py runs is a reset, not the end of the
    # virtual board: it boots again and the port answers.
    from pathlib import Path

    boot = tmp_path / "boot.py"
    boot.write_text("import time\ntime.sleep(3)\n")
    state = tmp_path / "state"
    with vboard(state) as port:
        tool("mpremote", "connect", port, "fs", "cp", str(boot), ":boot.py")
        bridge = int((state / "vboard.pid").read_text())

        def agent():
            children = Path(f"/proc/{bridge}/task/{bridge}/children").read_text().split()
            return int(children[0]) if children else None

        before = agent()
        # Ctrl-D at the friendly REPL: a soft reset runs boot.py again in a new MicroPython,
        # which is killed while boot.py sleeps.
        with serial.Serial(port, 115200, timeout=1) as s:
            s.write(b"\r\x04")
        booting = None
        for _ in range(100):
            booting = agent()
            if booting not in (None, before):
                break
            time.sleep(0.02)
        assert booting not in (None, before), "no new MicroPython after the soft reset"
        time.sleep(0.5)  # inside boot.py's sleep
        os.kill(booting, signal.SIGKILL)
        time.sleep(0.5)
        out = tool("mpremote", "connect", port, "exec", "print('alive')", timeout=60).stdout
        assert "alive" in out
        assert Path(f"/proc/{bridge}").exists(), "the virtual board exited"
        log = (state / "vboard.log").read_text()
        assert "failed to boot" not in log


def test_code_larger_than_the_heap_is_a_memory_error_not_a_dead_board(port):
    # The board's compiler runs out of RAM for it; the board answers the next command.
    from minerva_packager.board.transport import DeviceError, connect

    with connect(port) as board:
        with pytest.raises(DeviceError, match="MemoryError"):
            board.exec("x = %r\n" % ("ab" * (BOARD["heap_bytes"] // 2 + 4096)), timeout=60)
        assert board.eval("1 + 1") == 2


def test_state_lives_in_the_users_cache_whatever_the_directory(tmp_path):
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir()
    there.mkdir()
    port = tool("minerva", "vboard", "--detach", cwd=here, env=env).stdout.split()[-1]
    try:
        assert (tmp_path / "cache" / "minerva" / "vboard" / "port").read_text().strip() == port
        assert not (here / ".cache").exists()
        # From another directory, run finds the board (and says the capsule is not there).
        proc = tool("minerva", "run", DIGITS_CAPSULE, DIGITS_X, cwd=there, env=env,
                    check=False)
        assert "digits.cap is not on the board" in proc.stderr, proc.stderr
    finally:
        proc = tool("minerva", "vboard", "stop", cwd=there, env=env)
    assert "stopped virtual board" in proc.stdout


def test_stop_signals_only_its_own_board(tmp_path):
    # A stale pid file whose pid now belongs to another process: that process lives on.
    other = subprocess.Popen(["sleep", "60"])
    try:
        (tmp_path / "vboard.pid").write_text(f"{other.pid}\n")
        proc = tool("minerva", "vboard", "stop", "--state-dir", tmp_path, check=False)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
        assert f"names process {other.pid}, which is not its virtual board" in proc.stderr
        assert other.poll() is None
        assert not (tmp_path / "vboard.pid").exists()
    finally:
        other.kill()
        other.wait()


@pytest.mark.parametrize("args,message", [
    (["--heap", "10"], "--heap 10: too small for MicroPython to start (pass at least"),
    (["--image", "fs.uf2"], "a .uf2 is for the RP2040 boot drive"),
])
@pytest.mark.parametrize("detach", [True, False])
def test_bad_options_are_one_line_errors(tmp_path, args, message, detach):
    (tmp_path / "fs.uf2").write_bytes(b"UF2\n" * 128)
    proc = tool("minerva", "vboard", *(["--detach"] if detach else []), "--state-dir",
                tmp_path / "state", *args, cwd=tmp_path, check=False, timeout=30)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith("minerva: ") and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert not (tmp_path / "state" / "vboard.pid").exists()
