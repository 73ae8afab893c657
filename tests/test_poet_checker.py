"""The independent checker accepts real schedules and rejects each kind of broken one."""

import ast
import copy
from pathlib import Path

import pytest
from poet_graphs import hand_graph, tiny_deep

from minerva_packager.poet import checker
from minerva_packager.poet.checker import check_schedule
from minerva_packager.poet.planner import solve_plan


@pytest.fixture(scope="module")
def paged():
    """The hand graph's optimum under 170 bytes: a is paged out and back in."""
    graph = hand_graph()
    candidate, _ = solve_plan(graph, 170, time_limit=10)
    return graph.to_json(), candidate.document


def errors_after(paged, change):
    graph_doc, document = paged
    broken = copy.deepcopy(document)
    change(broken)
    return check_schedule(graph_doc, broken).errors


def test_a_planned_schedule_passes(paged):
    report = check_schedule(*paged)
    assert report.ok and report.energy_j == pytest.approx(15.75)


def drop(op):
    def change(document):
        document["steps"] = [s for s in document["steps"] if s["op"] != op]
    return change


def test_missing_page_in_breaks_a_dependency(paged):
    assert any("not in RAM" in e for e in errors_after(paged, drop("page_in")))


def test_missing_page_out_leaves_nothing_to_read(paged):
    assert any("not in flash" in e for e in errors_after(paged, drop("page_out")))


def test_missing_frees_exceed_the_ram_limit(paged):
    assert any("exceeds the limit 170" in e for e in errors_after(paged, drop("free")))


def test_a_lower_ram_limit_is_caught(paged):
    def change(document):
        document["limits"]["ram_bytes"] = 159
    assert any("exceeds the limit 159" in e for e in errors_after(paged, change))


def test_a_deadline_it_misses_is_caught(paged):
    def change(document):
        document["limits"]["deadline_s"] = 1.52
    assert any("exceeds the deadline" in e for e in errors_after(paged, change))


def test_a_wrong_energy_claim_is_caught(paged):
    def change(document):
        document["predicted"]["energy_j"] *= 0.99
    assert any("predicted energy_j" in e for e in errors_after(paged, change))


def test_a_wrong_peak_claim_is_caught(paged):
    def change(document):
        document["predicted"]["peak_ram_bytes"] -= 1
    assert any("predicted peak_ram_bytes" in e for e in errors_after(paged, change))


def test_compute_twice_must_say_recompute(paged):
    def change(document):
        steps = document["steps"]
        first = next(s for s in steps if s["op"] == "compute" and s["node"] == 0)
        steps.insert(steps.index(first) + 1, {"stage": 0, "op": "free", "node": 0})
        steps.insert(steps.index(first) + 2, dict(first))
    assert any("'recompute' a later one" in e for e in errors_after(paged, change))


def test_a_node_never_computed_is_caught(paged):
    def change(document):
        document["steps"] = [s for s in document["steps"] if s["node"] != 4]
    assert any("never computed" in e for e in errors_after(paged, change))


def test_freeing_what_is_not_held_and_unknown_ops_are_caught(paged):
    def change(document):
        document["steps"].insert(0, {"stage": 0, "op": "free", "node": 2})
        document["steps"].insert(0, {"stage": 0, "op": "teleport", "node": 2})
    found = errors_after(paged, change)
    assert any("not in RAM" in e for e in found) and any("unknown op" in e for e in found)


def test_another_format_or_version_is_refused(paged):
    def change(document):
        document["version"] = 2
    assert errors_after(paged, change) == ["schedule version 2 is not 1"]


def test_flash_limit_is_enforced_by_the_checker(paged):
    def change(document):
        document["limits"]["flash_bytes"] = 99
    assert any("written to flash exceed 99" in e for e in errors_after(paged, change))


def test_partial_replay_checks_a_prefix():
    graph = tiny_deep()
    candidate, _ = solve_plan(graph, 10**6, time_limit=10)
    prefix = dict(candidate.document, steps=candidate.document["steps"][:3])
    assert check_schedule(graph.to_json(), prefix, partial=True).ok
    assert not check_schedule(graph.to_json(), prefix).ok


def test_the_checker_imports_nothing_from_the_planner():
    tree = ast.parse(Path(checker.__file__).read_text())
    imports = [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert imports == []
