"""`minerva keys`, `sign`, `pack --sign --delta-from`, `delta` and staging a delta, with the
real CLI on the virtual board."""

import json
import re

from board_helpers import tool, vboard

from minerva_packager.capsule.container import read_capsule
from minerva_packager.capsule.signing import signature_of


def _status(port):
    return json.loads(tool("minerva", "shadow", "status", "--json", "--port", port).stdout)


def test_keys_sign_provision_and_a_staged_delta(tmp_path, digits_versions):
    key, other = tmp_path / "release.key", tmp_path / "other.key"
    out = tool("minerva", "keys", "new", key).stdout
    kid = re.search(r"key id (\w{16})", out).group(1)
    assert (tmp_path / "release.key.pub").exists() and (key.stat().st_mode & 0o777) == 0o600
    proc = tool("minerva", "keys", "new", key, check=False)
    assert proc.returncode == 1 and "never overwritten" in proc.stderr
    tool("minerva", "keys", "new", other)
    v1 = tmp_path / "v1.cap"
    v1.write_bytes(digits_versions["v1"].read_bytes())
    tool("minerva", "sign", "--key", key, v1)
    assert signature_of(v1.read_bytes())[0] == kid
    assert read_capsule(v1).raw[4] == 2, "signed capsules are format v2"
    tflite = digits_versions["v2"].with_suffix(".tflite")
    v2 = tmp_path / "v2.cap"
    out = tool("minerva", "pack", tflite, "-o", v2, "--name", "digits", "--version", "2.0.0",
               "--sign", key, "--delta-from", v1).stdout
    assert "signed with" in out and re.search(r"wrote .*v2\.delta: \d+ bytes", out)
    out = tool("minerva", "delta", v1, v2, "-o", tmp_path / "again.delta").stdout
    assert (tmp_path / "again.delta").read_bytes() == (tmp_path / "v2.delta").read_bytes()
    with vboard(tmp_path / "state") as port:
        tool("minerva", "deploy", "--port", port)
        out = tool("minerva", "keys", "provision", "--port", port,
                   str(key) + ".pub").stdout
        assert f"trusts key {kid}" in out
        proc = tool("minerva", "keys", "provision", "--port", port, str(other) + ".pub",
                    check=False)
        assert proc.returncode == 1 and "--replace" in proc.stderr
        tool("minerva", "deploy", "--stage", "--no-runtime", "--port", port, v1)
        out = tool("minerva", "deploy", "--stage", "--no-runtime", "--port", port,
                   tmp_path / "v2.delta").stdout
        assert re.search(r"candidate: +digits 2\.0\.0 \(\w+\.cap, signed by " + kid, out)
        st = _status(port)
        assert st["trusted_keys"] == [kid]
        assert any(e[2].startswith("rebuilt v2.cap") for e in st["events"])
        # A board that trusts only the other key refuses what this key signed.
        tool("minerva", "keys", "provision", "--replace", "--port", port,
             str(other) + ".pub")
        tool("minerva", "shadow", "reject", "--port", port)
        out = tool("minerva", "deploy", "--stage", "--no-runtime", "--port", port, v2).stdout
        assert "which this board does not trust" in out
        proc = tool("minerva", "deploy", "--port", port, tmp_path / "v2.delta", check=False)
        assert proc.returncode == 1 and "stage it" in proc.stderr
