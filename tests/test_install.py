"""A plain `pip install` (a wheel, not an editable install) carries the board profiles and the
device runtime: `minerva pack --board` and `minerva image --board` work from another directory
with nothing of the source tree on the path."""

import subprocess
import sys
import zipfile

import pytest


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    from conftest import ROOT

    tmp = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                           "--no-build-isolation", "-q", "-w", str(tmp), str(ROOT)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    wheel = next(tmp.glob("minerva_ml-*.whl"))
    target = tmp / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q",
                           "--target", str(target), str(wheel)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return wheel, target


def test_wheel_holds_boards_and_device_runtime(installed):
    wheel, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    assert "minerva_packager/board_data/rp2040.json" in names
    assert "minerva_packager/board_data/esp32.json" in names
    assert "minerva/model.py" in names and "minerva/kernels_viper.py" in names


def _minerva(target, cwd, *args):
    # The installed copy first on the path; run from a directory outside the source tree.
    code = ("import sys; sys.path.insert(0, %r); import minerva_packager, minerva; "
            "assert minerva_packager.__file__.startswith(%r), minerva_packager.__file__; "
            "assert minerva.__file__.startswith(%r), minerva.__file__; "
            "from minerva_packager.cli import main; sys.argv = ['minerva'] + %r; main()"
            % (str(target), str(target), str(target), list(args)))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=cwd)


def test_installed_pack_and_image_find_boards_from_another_directory(installed, tmp_path,
                                                                     shared_models):
    _, target = installed
    work = tmp_path / "elsewhere"
    work.mkdir()
    src = shared_models / "kws01_dscnn_int8.tflite"
    proc = _minerva(target, work, "pack", str(src), "--board", "rp2040", "-o", "kws.cap")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (work / "kws.cap").exists() and "verified" in proc.stdout
    proc = _minerva(target, work, "image", "--board", "rp2040", "-o", "fs.uf2", "kws.cap")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (work / "fs.uf2").stat().st_size > 0
