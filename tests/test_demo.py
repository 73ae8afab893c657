"""`make demo` end to end: here, and from a clean clone of the committed tree."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _demo(cwd, work_dir, samples, env=None):
    proc = subprocess.run([sys.executable, "-m", "minerva_packager.demo", "--samples",
                           str(samples), "--work-dir", str(work_dir)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_demo_runs_on_the_virtual_board(tmp_path):
    out = _demo(ROOT, tmp_path / "demo", 40)
    assert "[8/8]" in out
    assert "output bytes identical to the host runtime's: 40/40" in out
    accuracy = float(re.search(r"identical to the host runtime's: 40/40; accuracy ([\d.]+)%",
                               out).group(1))
    assert accuracy > 85
    assert re.search(r"Verified \d+ files on rp2040", out)
    # The story: v2 shadow-tested while v1 answered, promoted and confirmed, a damaged v3
    # refused on the board, v1 restored.
    assert re.search(r"shadow:    (\d+) inputs compared", out)
    n = re.search(r"every answer still came from v1: (\d+)/(\d+)", out)
    assert n.group(1) == n.group(2)
    assert "is confirmed" in out
    assert re.search(r"refused digits_v3.cap: .*CRC-32 mismatch", out)
    assert re.search(r"refused digits_v3_unsigned.cap: .*unsigned, and this board accepts "
                     r"only capsules signed by key", out)
    # v2 arrived as a delta, rebuilt and verified on the board.
    assert re.search(r"\d+ bytes shipped instead of \d+", out)
    assert re.search(r"the board rebuilt digits_v2.cap from \w+\.cap and a delta", out)
    assert re.search(r"candidate: digits 2.0.0 \(\w+\.cap, signed by \w{16}\)", out)
    assert "still serving digits 2.0.0" in out
    assert "v1 again: output bytes identical to v1 on the host: 40/40" in out
    assert (tmp_path / "demo" / "shadow_report.html").exists()


def test_demo_from_a_clean_clone(tmp_path):
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and the repository's history to clone")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", "--local", str(ROOT), str(clone)], check=True)
    # The clone's own packages come first on the path, so only committed files take part.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(clone / "packager"),
                                                        str(clone / "device")]))
    out = _demo(clone, clone / ".cache" / "demo", 16, env=env)
    assert "output bytes identical to the host runtime's: 16/16" in out
    assert (clone / ".cache" / "demo" / "digits.cap").is_file()


def test_training_demo_fine_tunes_on_the_virtual_board(tmp_path):
    """`make demo`'s second part: the board trains the last layer on shifted digits; the next
    version is staged, shadow-tested, promoted, and more accurate on held-out shifted digits."""
    proc = subprocess.run([sys.executable, "-m", "minerva_packager.demo_train", "--work-dir",
                           str(tmp_path / "demo_train"), "--samples", "200", "--epochs", "3"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "[5/5]" in out
    before, after = map(float, re.search(r"held-out shifted digits ([\d.]+)% before, "
                                         r"([\d.]+)% after", out).groups())
    assert before < 60 and after > before + 10
    assert "staged as the candidate: digits 1.0.1" in out
    assert "decision promote" in out and "now serving 1.0.1" in out
