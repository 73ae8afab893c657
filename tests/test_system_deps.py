"""tools/system_deps.sh (run by `make test`): what it says when it cannot install."""

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_system_deps_names_missing_tools_and_the_install_command(tmp_path):
    # A non-root user on a machine without the ARM toolchain, qemu or sudo.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "id").write_text("#!/bin/sh\necho 1000\n")
    (bin_dir / "id").chmod(0o755)
    os.symlink(shutil.which("bash"), bin_dir / "bash")
    proc = subprocess.run([str(bin_dir / "bash"), str(ROOT / "tools/system_deps.sh")],
                          capture_output=True, text=True, cwd=tmp_path,
                          env={"PATH": str(bin_dir)})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, proc.stdout
    assert "missing" in lines[0] and "sudo apt-get install" in lines[0]
    assert "gcc-arm-none-eabi" in lines[0] and "qemu-user" in lines[0]
    assert "nodejs" in lines[0] and "npm" in lines[0]


def test_system_deps_is_quiet_when_everything_is_there(tmp_path):
    if not all(map(shutil.which, ("arm-none-eabi-gcc", "qemu-arm", "node", "npm"))):
        import pytest

        pytest.skip("arm-none-eabi-gcc, qemu-arm, node and npm are not all installed")
    proc = subprocess.run(["bash", str(ROOT / "tools/system_deps.sh")], capture_output=True,
                          text=True, cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout == ""
