"""``minerva plan`` end to end: graph files, models, outputs, errors."""

import json
import re

import pytest
from click.testing import CliRunner
from poet_graphs import PROFILE, hand_graph, tiny_deep

from minerva_packager.cli import main
from minerva_packager.poet.checker import check_schedule


@pytest.fixture()
def files(tmp_path):
    graph = hand_graph()
    (tmp_path / "g.json").write_text(json.dumps(graph.to_json()))
    (tmp_path / "board.json").write_text(json.dumps(PROFILE))
    return tmp_path, graph


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_plan_a_graph_file_prints_the_comparison_and_writes_a_checked_schedule(files):
    tmp, graph = files
    out = run("plan", "--graph", tmp / "g.json", "--ram", 170, "-o", tmp / "s.json",
              "--plot", tmp / "ram.png", "--time-limit", 10)
    assert out.exit_code == 0, out.output
    for name in ("planned", "keep-all", "chen-sqrt", "remat-only", "paging-only"):
        assert name in out.output
    # The default --gap is 0.01 %: the solver may stop anywhere within it.
    proven = re.search(r"proven gap ([\d.]+)%", out.output)
    assert proven and float(proven.group(1)) <= 0.01, out.output
    assert "verified: the independent checker" in out.output
    document = json.loads((tmp / "s.json").read_text())
    assert document["format"] == "minerva-train-schedule" and document["version"] == 1
    assert document["predicted"]["energy_j"] == pytest.approx(15.75)
    assert check_schedule(graph.to_json(), document).ok
    assert (tmp / "ram.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_poet_model_and_highs_solver(files):
    tmp, graph = files
    out = run("plan", "--graph", tmp / "g.json", "--ram", 170, "--model", "poet", "--solver",
              "highs", "--no-baselines", "--json", "-o", tmp / "s.json")
    assert out.exit_code == 0, out.output
    table = json.loads(out.output[:out.output.rindex("}") + 1])
    assert table["solve"]["solver"] == "highs" and len(table["plan"]) == 1
    document = json.loads((tmp / "s.json").read_text())
    assert document["cost_model"] == "poet" and document["paging_time_counts"] is False
    assert check_schedule(graph.to_json(), document).ok


def test_board_limits_are_the_defaults(files):
    tmp, _ = files
    graph = tiny_deep()
    (tmp / "deep.json").write_text(json.dumps(graph.to_json()))
    out = run("plan", "--graph", tmp / "deep.json", "--board", tmp / "board.json",
              "--app-reserve", 0, "--no-baselines", "-o", tmp / "s.json")
    assert out.exit_code == 0, out.output
    limits = json.loads((tmp / "s.json").read_text())["limits"]
    assert limits == {"ram_bytes": 4096, "deadline_s": None, "flash_bytes": 65536}
    # The application's reserve comes off the board's heap, as for pack.
    out = run("plan", "--graph", tmp / "deep.json", "--board", tmp / "board.json",
              "--app-reserve", 1000, "--no-baselines", "-o", tmp / "s.json")
    assert out.exit_code == 0, out.output
    assert json.loads((tmp / "s.json").read_text())["limits"]["ram_bytes"] == 3096


def test_infeasible_budget_exits_with_the_smallest_ram(files):
    tmp, _ = files
    out = run("plan", "--graph", tmp / "g.json", "--ram", 100)
    assert out.exit_code == 1
    assert ("minerva: no schedule fits 100 bytes of RAM (the smallest RAM that works is 160 "
            "bytes; nothing fits 100 bytes whatever the deadline)") in out.output


def test_infeasible_deadline_names_the_shortest(files):
    tmp, _ = files
    out = run("plan", "--graph", tmp / "g.json", "--ram", 170, "--deadline", 1.5)
    assert out.exit_code == 1
    assert "the shortest deadline at 170 bytes is 1.53 s" in out.output


@pytest.mark.parametrize("args, message", [
    ([], "give either MODEL or --graph"),
    (["--graph", "g.json", "--capsule-out", "x.cap"], "--capsule-out needs MODEL"),
    (["--graph", "g.json"], "no RAM budget"),
    (["x.tflite"], "planning a model needs --board"),
])
def test_usage_errors(files, monkeypatch, args, message):
    monkeypatch.chdir(files[0])
    out = run("plan", *args)
    assert out.exit_code == 1 and message in out.output


def test_plan_a_shared_model_into_a_capsule_section(shared_models, tmp_path):
    from minerva_packager.capsule.container import read_capsule

    (tmp_path / "board.json").write_text(json.dumps(PROFILE))
    out = run("plan", shared_models / "ad01_fc_autoencoder_int8.tflite", "--board",
              tmp_path / "board.json", "--trainable", "last:2", "--ram", 500000,
              "--no-baselines", "--time-limit", 20, "-o", tmp_path / "s.json",
              "--capsule-out", tmp_path / "ad.cap")
    assert out.exit_code == 0, out.output
    capsule = read_capsule(str(tmp_path / "ad.cap"))
    assert capsule.train_schedule == json.loads((tmp_path / "s.json").read_text())
    assert capsule.meta["name"] == "ad01_fc_autoencoder_int8"
    again = run("plan", tmp_path / "ad.cap", "--board", tmp_path / "board.json", "--trainable",
                "last:2", "--ram", 500000, "--no-baselines", "--capsule-out",
                tmp_path / "ad2.cap")
    assert again.exit_code == 0, again.output
    assert read_capsule(str(tmp_path / "ad2.cap")).train_schedule["steps"] == \
        capsule.train_schedule["steps"]


def test_plan_with_a_real_board_profile(shared_models):
    from minerva_packager.board.profiles import board_names

    if "rp2040" not in board_names():
        pytest.skip("boards/rp2040.json is not there yet")
    out = run("plan", shared_models / "kws01_dscnn_int8.tflite", "--board", "rp2040",
              "--trainable", "last:2", "--time-limit", 20)
    assert out.exit_code == 0, out.output
    assert "verified: the independent checker" in out.output


def test_solving_shows_elapsed_time_while_the_solver_runs():
    import io
    import time

    from minerva_packager.cli.plan import solving

    stream = io.StringIO()
    with solving("planning deep with cbc", 60, stream=stream, interval=0.05, force=True):
        time.sleep(0.3)
    text = stream.getvalue()
    assert text.count("\rplanning deep with cbc: ") >= 3 and "s of at most 60 s" in text
    assert text.endswith("\r\x1b[K")  # erased, so the plan's table starts on a clean line
    quiet = io.StringIO()
    with solving("x", 60, stream=quiet, interval=0.01):  # not a terminal: nothing drawn
        time.sleep(0.05)
    assert quiet.getvalue() == ""
