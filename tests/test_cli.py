"""The ``minerva`` command: pack, inspect, and its one error format."""

import json
import subprocess
import sys
from pathlib import Path

import pytest


def minerva(*args, cwd=None):
    return subprocess.run([str(Path(sys.executable).parent / "minerva"), *map(str, args)],
                          capture_output=True, text=True, cwd=cwd)


@pytest.fixture(scope="module")
def kws_capsule(shared_models, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "kws.cap"
    proc = minerva("pack", shared_models / "kws01_dscnn_int8.tflite", "-o", out,
                   "--version", "2.1.0")
    assert proc.returncode == 0, proc.stderr
    assert "verified: checksums OK" in proc.stdout
    return out


def test_inspect_text(kws_capsule):
    proc = minerva("inspect", kws_capsule)
    assert proc.returncode == 0
    assert "kws01_dscnn_int8 2.1.0" in proc.stdout
    assert "checksums    OK" in proc.stdout
    assert "arena        16000 bytes" in proc.stdout
    assert "DEPTHWISE_CONV_2D" in proc.stdout and "k_h=3 k_w=3" in proc.stdout


def test_inspect_json(kws_capsule):
    proc = minerva("inspect", "--json", kws_capsule)
    s = json.loads(proc.stdout)
    assert s["checksums"] == "OK" and s["arena_bytes"] == 16000
    assert [op["op"] for op in s["ops"]].count("CONV_2D") == 5
    assert s["meta"]["inputs"][0]["shape"] == [1, 49, 10, 1]
    assert s["ops"][0]["params"]["stride_h"] == 2


def test_inspect_damaged_shows_and_fails(kws_capsule, tmp_path):
    data = bytearray(kws_capsule.read_bytes())
    data[-100] ^= 0x40  # inside WEIGHTS
    bad = tmp_path / "bad.cap"
    bad.write_bytes(data)
    proc = minerva("inspect", bad)
    assert proc.returncode == 1
    assert "checksums    FAILED" in proc.stdout and "CRC-32 mismatch" in proc.stdout
    assert proc.stderr.startswith("minerva: ") and "Traceback" not in proc.stderr


def test_errors_are_one_line_with_a_hint(tmp_path):
    proc = minerva("pack", tmp_path / "missing.tflite")
    assert proc.returncode == 1
    assert proc.stderr.startswith("minerva: ") and "(" in proc.stderr
    assert "Traceback" not in proc.stderr
    junk = tmp_path / "junk.cap"
    junk.write_bytes(b"hello")
    proc = minerva("inspect", junk)
    assert proc.returncode == 1 and "too small to be a capsule" in proc.stderr


@pytest.mark.parametrize("name,expected", [
    ("./hello", "hello.cap"),                  # no extension: not a hidden ".cap"
    ("d.v2/sub/hello", "d.v2/sub/hello.cap"),  # a dot in a folder name is not the extension
    ("model.tflite", "model.cap"),
    ("./model.v2.tflite", "model.v2.cap"),
])
def test_pack_default_output_name(shared_models, tmp_path, name, expected):
    src = tmp_path / name
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_bytes((shared_models / "hello_world_int8.tflite").read_bytes())
    proc = minerva("pack", name, cwd=tmp_path)  # the path as typed, relative
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / expected).is_file(), sorted(p.name for p in tmp_path.rglob("*"))
    assert not (tmp_path / ".cap").exists()


def test_deploy_refuses_two_capsules_with_one_name(shared_models, tmp_path):
    from minerva_packager.board.deploy import capsule_files
    from minerva_packager.capsule.pack import pack_file
    from minerva_packager.errors import PackagerError

    for folder in ("a", "v2"):
        (tmp_path / folder).mkdir()
        pack_file(shared_models / "hello_world_int8.tflite", tmp_path / folder / "x.cap")
    with pytest.raises(PackagerError, match="would both be /capsules/x.cap"):
        capsule_files({"name": "rp2040"}, [tmp_path / "a" / "x.cap", tmp_path / "v2" / "x.cap"])


def test_counts_agree_with_their_nouns(shared_models, tmp_path):
    from click.testing import CliRunner

    from minerva_packager.cli import main
    from minerva_packager.errors import count

    assert [count(n, "file") for n in (0, 1, 2)] == ["0 files", "1 file", "2 files"]
    out = tmp_path / "ic.cap"
    result = CliRunner().invoke(main, ["pack", str(shared_models / "ic01_resnet8_int8.tflite"),
                                       "--ram-budget", "100000", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "16 ops" in result.output and "(1 filter paged from flash)" in result.output


@pytest.mark.parametrize("command", ["pack", "plan", "deploy", "image", "flash", "vboard"])
def test_every_board_option_is_b_and_lists_the_boards(command):
    from click.testing import CliRunner

    from minerva_packager.board.profiles import board_names
    from minerva_packager.cli import main

    text = " ".join(CliRunner().invoke(main, [command, "--help"]).output.split())
    assert "-b, --board" in text
    assert all(name in text for name in board_names()) and "pico-w" in text
