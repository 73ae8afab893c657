"""Port names as MicroPython users type them (mpremote's short names, auto, MINERVA_PORT)."""

import pytest
from board_helpers import tool

from minerva_packager.board.ports import BOARD_VIDS, auto_port, expand_short_name, resolve_port
from minerva_packager.errors import PackagerError


@pytest.mark.parametrize("given, path", [("a0", "/dev/ttyACM0"), ("a12", "/dev/ttyACM12"),
                                         ("u1", "/dev/ttyUSB1"), ("c3", "COM3"),
                                         ("COM3", "COM3"), ("/dev/pts/4", "/dev/pts/4"),
                                         ("a", "a"), ("x0", "x0")])
def test_short_names_expand_as_mpremote_does(given, path):
    assert expand_short_name(given) == path


def test_minerva_port_is_the_default_and_short_names_work_there(monkeypatch):
    monkeypatch.setenv("MINERVA_PORT", "u2")
    assert resolve_port(None) == "/dev/ttyUSB2"
    assert resolve_port("a0") == "/dev/ttyACM0"


def test_auto_prefers_a_board_vendor():
    ports = [("/dev/ttyUSB0", 0x1234), ("/dev/ttyACM0", 0x2E8A)]
    order = sorted(ports, key=lambda item: item[1] not in BOARD_VIDS)
    assert auto_port(lambda: order) == "/dev/ttyACM0"


def test_auto_without_a_board_names_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # no virtual board running there
    with pytest.raises(PackagerError, match="no board is plugged in"):
        auto_port(lambda: [])


def test_cli_auto_finds_the_running_virtual_board(tmp_path):
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    tool("minerva", "vboard", "--board", "rp2040", "--detach", env=env, timeout=60)
    try:
        out = tool("minerva", "ls", "--port", "auto", env=env).stdout
        assert out.strip().lower() == "no capsules on the board", out
        proc = tool("minerva", "ls", "--port", "a97", env=env, check=False)
        assert proc.returncode == 1 and "no port /dev/ttyACM97" in proc.stderr
    finally:
        tool("minerva", "vboard", "stop", env=env)
