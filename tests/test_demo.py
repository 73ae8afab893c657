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
    assert "[5/5]" in out
    assert "board outputs identical to the host runtime's: 40/40" in out
    accuracy = float(re.search(r"accuracy on the board, 40 held-out samples: ([\d.]+)%",
                               out).group(1))
    assert accuracy > 85
    assert re.search(r"Verified \d+ files on rp2040", out)


def test_demo_from_a_clean_clone(tmp_path):
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and the repository's history to clone")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", "--local", str(ROOT), str(clone)], check=True)
    # The clone's own packages come first on the path, so only committed files take part.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(clone / "packager"),
                                                        str(clone / "device")]))
    out = _demo(clone, clone / ".cache" / "demo", 16, env=env)
    assert "board outputs identical to the host runtime's: 16/16" in out
    assert (clone / ".cache" / "demo" / "digits.cap").is_file()
