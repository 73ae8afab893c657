"""The README's examples, run for real."""

import re
import tokenize
from io import StringIO

import numpy as np
from board_helpers import ROOT, tool, vboard

from minerva_packager.board.transport import connect
from minerva_packager.capsule.pack import pack_file


def _repl_blocks(section):
    text = (ROOT / "README.md").read_text()
    body = text[text.index(section):]
    return re.findall(r"```python\n(.*?)```", body, re.S)[0]


def _without_comment(line):
    tokens = [t for t in tokenize.generate_tokens(StringIO(line).readline)
              if t.type != tokenize.COMMENT]
    return tokenize.untokenize(tokens).strip()


def _session(block):
    """[(statement, expected repr or None)] from a `>>>` transcript."""
    steps = []
    for line in block.splitlines():
        if line.startswith(">>> "):
            steps.append([_without_comment(line[4:]), None])
        elif line.strip() and steps:
            steps[-1][1] = line.split("#")[0].strip()
    return steps


def test_readme_repl_example_on_a_deployed_virtual_board(shared_models, tmp_path):
    cap = tmp_path / "kws.cap"
    pack_file(shared_models / "kws01_dscnn_int8.tflite", cap, version="1.2.0")
    sample = np.load(shared_models / "samples" / "kws01_sample0_int8_49x10.npy")
    (tmp_path / "on.bin").write_bytes(sample.tobytes())
    steps = _session(_repl_blocks("## On the board"))
    assert steps[1][0] == 'm = minerva.load("kws.cap")'  # the name alone, as a user types it
    with vboard(tmp_path / "state") as port:
        tool("minerva", "deploy", "--port", port, "-q", cap)
        tool("mpremote", "connect", port, "cp", tmp_path / "on.bin", ":on.bin")
        checked = 0
        with connect(port) as board:
            for statement, expected in steps:
                if expected is None:
                    board.exec(statement, timeout=120)
                    continue
                got = board.exec(f"print(repr(({statement})))", timeout=120).decode().strip()
                if "..." in expected:
                    # An abridged dict (MicroPython orders keys its own way): each item shown
                    # is in it.
                    items = re.findall(r"'\w+': (?:'[^']*'|\d+)", expected)
                    assert items and all(item in got for item in items), (items, got)
                else:
                    assert got == expected, statement
                checked += 1
        assert checked == 3


def test_bare_name_is_looked_up_in_capsules_on_micropython(micropython, shared_models,
                                                           tmp_path):
    # The unix port with a board's layout: /capsules is a folder of the process's root.
    (tmp_path / "capsules").mkdir()
    pack_file(shared_models / "hello_world_int8.tflite", tmp_path / "capsules" / "hello.cap")
    script = f"""
import os, minerva
minerva.loader.CAPSULE_DIR = {str(tmp_path / "capsules")!r}
os.chdir({str(tmp_path)!r})
print("NAME", minerva.load("hello.cap").info()["name"])
try:
    minerva.load("nothere.cap")
except minerva.CapsuleError as e:
    print("ERROR", e)
"""
    out = micropython.run(script).stdout
    assert "NAME hello_world_int8" in out, out
    assert "ERROR nothere.cap: cannot open" in out
    assert f"looked in the current folder and in {tmp_path / 'capsules'}" in out
