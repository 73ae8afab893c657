"""`minerva deploy --stage` and `minerva shadow ...` on the virtual board, with the real CLI, and
power cuts at every flash write of a desktop promote on the virtual board's own flash."""

import json
import re
import shutil

import numpy as np
from board_helpers import tool, vboard
from digits_versions import HELDOUT_X


def _status(port):
    return json.loads(tool("minerva", "shadow", "status", "--json", "--port", port).stdout)


def test_stage_shadow_report_promote_confirm_reject_rollback(tmp_path, digits_versions):
    v1, v2, weak = digits_versions["v1"], digits_versions["v2"], digits_versions["weak"]
    samples = tmp_path / "heldout.npy"
    np.save(samples, np.load(HELDOUT_X).astype(np.int8))
    with vboard(tmp_path / "state") as port:
        out = tool("minerva", "deploy", "--stage", "--port", port, v1).stdout
        assert re.search(r"active: +digits 1\.0\.0", out)
        out = tool("minerva", "deploy", "--stage", "--no-runtime", "--port", port, v2).stdout
        assert re.search(r"candidate: +digits 2\.0\.0", out)
        out = tool("minerva", "shadow", "feed", "--port", port, samples).stdout
        assert "served 449 inputs" in out and "decision:  promote" in out
        st = _status(port)
        assert st["shadow"]["samples"] == 449 and st["shadow"]["decision"] == "promote"
        report = tmp_path / "report" / "r.html"
        report.parent.mkdir()
        out = tool("minerva", "shadow", "report", "--port", port, "-o", report, "--export",
                   tmp_path / "labels").stdout
        assert report.exists() and "plots" in out
        index = json.loads((tmp_path / "labels" / "index.json").read_text())
        assert len(index) == 449 - st["shadow"]["agree"]
        tool("minerva", "shadow", "promote", "--port", port)
        st = _status(port)  # a new connection: the board's next start, where the trial begins
        assert st["active"]["version"] == "2.0.0" and not st["trial"]["started"]
        tool("minerva", "shadow", "feed", "--port", port, samples)
        st = _status(port)
        assert st["trial"] is None and st["active"]["version"] == "2.0.0", st["events"]
        assert any("confirmed" in event[2] for event in st["events"])
        # A weak candidate: the policy will not promote it, and it can be rejected.
        tool("minerva", "deploy", "--stage", "--no-runtime", "--port", port, weak)
        tool("minerva", "shadow", "feed", "--port", port, samples)
        proc = tool("minerva", "shadow", "promote", "--port", port, check=False)
        assert proc.returncode == 1 and "not promoting" in proc.stderr
        assert "cannot reach" in proc.stderr
        out = tool("minerva", "shadow", "reject", "--port", port, "--reason", "too weak").stdout
        assert re.search(r"candidate: +-", out) and "too weak" in out
        st = _status(port)
        assert st["previous"] and st["previous"]["version"] == "1.0.0", st["events"]
        out = tool("minerva", "shadow", "rollback", "--port", port).stdout
        assert re.search(r"active: +digits 1\.0\.0", out)
        proc = tool("minerva", "shadow", "rollback", "--port", port, check=False)
        assert proc.returncode == 1 and "nothing to roll back to" in proc.stderr


def test_feed_quantizes_float_samples_and_refuses_the_wrong_shape(tmp_path, digits_versions):
    # As `minerva run` does: float values are quantized with the input's scale and zero point.
    floats = tmp_path / "float.npy"
    np.save(floats, np.load(HELDOUT_X).astype(np.float32)[:4])
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((4, 63), np.int8))
    with vboard(tmp_path / "state") as port:
        tool("minerva", "deploy", "--stage", "--port", port, digits_versions["v1"])
        out = tool("minerva", "shadow", "feed", "--port", port, floats).stdout
        proc = tool("minerva", "shadow", "feed", "--port", port, wrong, check=False)
    assert "served 4 inputs" in out
    assert proc.returncode == 1 and "wrong.npy" in proc.stderr


def test_pack_carries_a_checked_shadow_policy(tmp_path, digits_versions):
    from minerva_packager.capsule.container import read_capsule

    tflite = digits_versions["v2"].with_suffix(".tflite")
    good = tmp_path / "policy.json"
    good.write_text(json.dumps({"min_samples": 50, "auto_promote": True}))
    out = tmp_path / "p.cap"
    tool("minerva", "pack", tflite, "-o", out, "--shadow-policy", good)
    cap = read_capsule(out)
    offset, length = cap.sections["SHADOW_POLICY"]
    assert json.loads(cap.raw[offset:offset + length]) == {"min_samples": 50,
                                                           "auto_promote": True}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"min_sample": 50}))
    proc = tool("minerva", "pack", tflite, "-o", tmp_path / "q.cap", "--shadow-policy", bad,
                check=False)
    assert proc.returncode == 1 and "no setting 'min_sample'" in proc.stderr
    assert not (tmp_path / "q.cap").exists()


def test_power_cut_at_every_write_of_a_desktop_promote(tmp_path, digits_versions,
                                                       monkeypatch):
    samples = tmp_path / "heldout.npy"
    np.save(samples, np.load(HELDOUT_X).astype(np.int8)[:120])
    image = tmp_path / "base.img"
    with vboard(tmp_path / "s0", image=str(image)) as port:
        tool("minerva", "deploy", "--stage", "--port", port, digits_versions["v1"])
        tool("minerva", "deploy", "--stage", "--no-runtime", "--port", port,
             digits_versions["v2"])
        tool("minerva", "shadow", "feed", "--port", port, samples)
    power = tmp_path / "power"
    monkeypatch.setenv("MINERVA_VBOARD_POWER", str(power))
    counted = tmp_path / "count.img"
    shutil.copy(image, counted)
    power.write_text("0 0 0")
    with vboard(tmp_path / "s1", image=str(counted)) as port:
        power.write_text("0 0 0")
        tool("minerva", "shadow", "promote", "--force", "--port", port)
        writes = int(power.read_text().split()[0])
    assert writes > 3, writes
    for cut in range(1, writes + 1):
        cut_image = tmp_path / f"cut{cut}.img"
        shutil.copy(image, cut_image)
        power.write_text(f"0 0 {cut % 2}")
        with vboard(tmp_path / f"c{cut}", image=str(cut_image)) as port:
            power.write_text(f"0 {cut} {cut % 2}")
            proc = tool("minerva", "shadow", "promote", "--force", "--port", port,
                        check=False)
        power.write_text("0 0 0")
        with vboard(tmp_path / f"r{cut}", image=str(cut_image)) as port:
            st = _status(port)
            versions = {st["active"]["version"],
                        (st["candidate"] or st["previous"] or {}).get("version")}
            assert versions == {"1.0.0", "2.0.0"}, (cut, proc.stderr, st)
            out = tool("minerva", "shadow", "feed", "--port", port, samples).stdout
            assert "served 120 inputs" in out, (cut, out)
        cut_image.unlink()
