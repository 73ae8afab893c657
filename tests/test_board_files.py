"""`minerva ls` and `minerva rm` on the virtual board, and board aliases."""

import re

from board_helpers import tool, vboard

from minerva_packager.board.profiles import load_board


def test_board_aliases_name_the_profiles():
    assert load_board("pico")["name"] == "rp2040"
    assert load_board("Pico-W")["name"] == "rp2040w"
    assert load_board("esp32-s3")["name"] == "esp32s3"


def test_ls_shows_slots_deployed_and_refused_and_rm_spares_the_slots(tmp_path,
                                                                     digits_versions):
    damaged = tmp_path / "damaged.cap"
    data = bytearray(digits_versions["v2"].read_bytes())
    data[len(data) // 2] ^= 1
    damaged.write_bytes(bytes(data))
    with vboard(tmp_path / "state", board="pico") as port:
        tool("minerva", "deploy", "--board", "pico", "--port", port, digits_versions["v1"])
        tool("minerva", "deploy", "--stage", "--no-runtime", "--port", port,
             digits_versions["v2"])
        tool("mpremote", "connect", port, "cp", damaged, ":/capsules/inbox/damaged.cap")
        tool("minerva", "shadow", "status", "--port", port)  # the runtime refuses it
        out = tool("minerva", "ls", "--port", port).stdout
        assert re.search(r"active +digits 2\.0\.0 +slots/\w{16}\.cap", out), out
        assert re.search(r"deployed +digits\.cap +4160 bytes", out), out
        assert re.search(r"rejected +damaged\.cap", out), out
        slot = re.search(r"slots/(\w{16}\.cap)", out).group(1)
        proc = tool("minerva", "rm", "--port", port, slot, check=False)
        assert proc.returncode == 1 and "runtime's active capsule" in proc.stderr
        assert "removed /capsules/digits.cap" in tool("minerva", "rm", "--port", port,
                                                      "digits.cap").stdout
        assert "removed /capsules/rejected/damaged.cap" in tool(
            "minerva", "rm", "--port", port, "damaged.cap").stdout
        out = tool("minerva", "ls", "--port", port).stdout
        assert "digits.cap" not in out and "damaged.cap" not in out and slot in out
        proc = tool("minerva", "rm", "--port", port, "nothing.cap", check=False)
        assert proc.returncode == 1 and "no capsule nothing.cap" in proc.stderr
