"""One memory model for pack, plan, deploy and the loader (capsule/memory.py, the boards'
``memory`` figures): it bounds what MicroPython measures, and a capsule packed for a board loads
and runs on that board's heap while the application holds its reserve, or is refused with a
reserve that works."""

import json

import numpy as np
import pytest
from device_runner import run_on_cpython

from minerva_packager.board.deploy import fit_warnings
from minerva_packager.board.device_files import runtime_files
from minerva_packager.board.profiles import load_board
from minerva_packager.capsule.container import read_capsule
from minerva_packager.capsule.memory import (
    APP_RESERVE_BYTES,
    available_bytes,
    figures,
    model_heap_bytes,
)
from minerva_packager.capsule.pack import pack_file
from minerva_packager.errors import PackagerError

BOARDS = ["rp2040", "rp2040w", "esp32", "esp32s3"]
MODELS = ["kws01_dscnn_int8", "ic01_resnet8_int8", "ad01_fc_autoencoder_int8"]

_APP_THEN_MODEL = """
import gc
x = open({x!r}, "rb").read()
gc.collect(); start = gc.mem_alloc()
import minerva
app = bytearray({reserve})
m = minerva.load({capsule!r}, kernels={tier!r})
y = m.run(x)
gc.collect()
print("OUT", bytes(y).hex())
print("USED", gc.mem_alloc() - start - len(app))
"""


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """The runtime as `minerva deploy` installs it on the (x64) virtual board, with the
    native module when it is built."""
    root = tmp_path_factory.mktemp("lib")
    for path, data in runtime_files(load_board("unix"), arch="x64").items():
        name = path.rsplit("/", 1)[1]
        dest = root / "minerva" / name if "/minerva/" in path else root / name
        dest.parent.mkdir(exist_ok=True)
        dest.write_bytes(data)
    return root


def _input(capsule, seed=5):
    shape = read_capsule(capsule).meta["inputs"][0]["shape"]
    return np.random.default_rng(seed).integers(-128, 128, int(np.prod(shape)),
                                                dtype=np.int8).tobytes()


def run_beside_app(micropython, board, capsule, reserve, tier, deployed, tmp_path):
    """(output bytes, heap the runtime and model took) on ``board``'s heap, with the
    application holding ``reserve`` bytes before the model loads."""
    x = tmp_path / "x.bin"
    x.write_bytes(_input(capsule))
    proc = micropython.run(_APP_THEN_MODEL.format(reserve=reserve, capsule=str(capsule),
                                                  tier=tier, x=str(x)),
                           heapsize=str(board["heap_bytes"]), extra_path=[deployed],
                           check=False)
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)
    assert proc.returncode == 0 and "OUT" in lines, (
        f"repro: pack {capsule.name} --board {board['name']}, run with {reserve} B held, "
        f"tier {tier}:\n{proc.stdout}{proc.stderr}")
    return bytes.fromhex(lines["OUT"]), int(lines["USED"])


@pytest.mark.parametrize("board_name", BOARDS)
@pytest.mark.parametrize("name", MODELS)
def test_packed_for_a_board_runs_beside_the_application(board_name, name, shared_models,
                                                        micropython, deployed, tmp_path):
    board = load_board(board_name)
    capsule = tmp_path / f"{name}.cap"
    reserve = APP_RESERVE_BYTES
    try:
        pack_file(shared_models / f"{name}.tflite", capsule, board=board)
    except PackagerError as exc:
        # Refused: the reserve it names in the hint must work (or no reserve can).
        assert board_name in exc.what and "application reserve" in exc.what, exc
        if "--app-reserve" not in exc.hint:
            assert "more RAM" in exc.hint
            return
        reserve = int(exc.hint.split("--app-reserve ")[1].split()[0])
        assert 0 <= reserve < APP_RESERVE_BYTES
        pack_file(shared_models / f"{name}.tflite", capsule, board=board, app_reserve=reserve)
    meta = read_capsule(capsule).meta
    assert meta["board"] == board_name and meta["app_reserve_bytes"] == reserve
    assert meta["heap_bytes"] < meta["load_peak_bytes"] <= available_bytes(board, reserve)
    assert not fit_warnings(board, [capsule])
    expected = run_on_cpython(capsule, [_input(capsule)])[0]
    for tier in ("natmod", "viper") if (deployed / "minerva_nat.mpy").exists() else ("viper",):
        out, used = run_beside_app(micropython, board, capsule, reserve, tier, deployed,
                                   tmp_path)
        assert out == expected, f"{name} on {board_name}, tier {tier}: output differs"
        # The model bounds what MicroPython measured; for viper, whose runtime is the largest
        # and sets the board's figure, by no more than a tenth of the heap.
        predicted = figures(board)["runtime_bytes"] + meta["heap_bytes"]
        assert used <= predicted, (tier, used, predicted)
        assert tier != "viper" or predicted <= used + board["heap_bytes"] // 10, (used, predicted)


def test_model_heap_is_buffers_plus_objects():
    board = load_board("rp2040")
    f = figures(board)
    assert model_heap_bytes(board, 1000, 3, 16) == \
        1000 + f["model_fixed_bytes"] + 3 * f["per_op_bytes"] + 16 * f["per_tensor_bytes"]
    assert available_bytes(board, 0) - available_bytes(board) == APP_RESERVE_BYTES


def test_too_big_a_reserve_is_a_clear_error():
    with pytest.raises(PackagerError, match="nothing left for a model"):
        available_bytes(load_board("esp32"), 10**6)


def test_deploy_warns_for_a_capsule_packed_for_a_bigger_board(shared_models, tmp_path):
    capsule = tmp_path / "ic.cap"
    pack_file(shared_models / "ic01_resnet8_int8.tflite", capsule, board=load_board("rp2040"))
    assert not fit_warnings(load_board("rp2040"), [capsule])
    [warning] = fit_warnings(load_board("rp2040w"), [capsule])
    assert "needs" in warning and "rp2040w" in warning and "--board rp2040w" in warning


def test_plan_budgets_the_heap_pack_budgets(shared_models):
    from minerva_packager.poet.api import load_training_graph, run_plan

    graph, profile = load_training_graph(str(shared_models / "hello_world_int8.tflite"), None,
                                         "esp32", "all")
    outcome = run_plan(graph, profile, time_limit=20, baselines=False)
    assert outcome.result.best.document["limits"]["ram_bytes"] == available_bytes(profile)


def test_cli_pack_says_what_it_fits(shared_models, tmp_path):
    from click.testing import CliRunner

    from minerva_packager.cli import main

    out = tmp_path / "kws.cap"
    result = CliRunner().invoke(main, ["pack", str(shared_models / "kws01_dscnn_int8.tflite"),
                                       "-b", "pico", "--app-reserve", "20000", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "fits rp2040" in result.output and "20000 bytes left for your application" \
        in result.output
    result = CliRunner().invoke(main, ["pack", str(shared_models / "kws01_dscnn_int8.tflite"),
                                       "-b", "esp32", "-o", str(out)])
    assert result.exit_code == 1 and "does not fit esp32" in result.output
    # Not even without a reserve: the message says by how much, and the way out for a board
    # whose heap is larger than the profile's figure.
    assert "short by" in result.output and "--ram-budget BYTES" in result.output
    assert json.loads(json.dumps(read_capsule(out).meta))["app_reserve_bytes"] == 20000


def test_a_refusal_names_a_reserve_that_works(shared_models, micropython, deployed, tmp_path):
    # KWS beside a 60 KB application does not fit an RP2040 W; the error names the largest
    # reserve it fits beside, and the capsule packed with that reserve runs with it held.
    board = load_board("rp2040w")
    capsule = tmp_path / "kws.cap"
    with pytest.raises(PackagerError) as refused:
        pack_file(shared_models / "kws01_dscnn_int8.tflite", capsule, board=board,
                  app_reserve=60_000)
    assert "--app-reserve" in refused.value.hint, refused.value
    reserve = int(refused.value.hint.split("--app-reserve ")[1].split()[0])
    assert 0 < reserve < 60_000
    pack_file(shared_models / "kws01_dscnn_int8.tflite", capsule, board=board,
              app_reserve=reserve)
    expected = run_on_cpython(capsule, [_input(capsule)])[0]
    out, _ = run_beside_app(micropython, board, capsule, reserve, "viper", deployed, tmp_path)
    assert out == expected
    with pytest.raises(PackagerError):  # one byte more and it does not fit
        pack_file(shared_models / "kws01_dscnn_int8.tflite", capsule, board=board,
                  app_reserve=reserve + 1)
