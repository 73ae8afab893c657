"""The two cost models on a graph whose optimal schedules are worked out by hand.

hand_graph(): a(1 J) -> b(2 J) -> c(3 J) -> loss(4 J) -> grad(5 J), grad also reads a.
Keeping everything costs 15 J and peaks at a + b + c = 220 bytes. Under 170 bytes, a must leave
RAM while c is computed and come back for grad: paging (0.5 + 0.25 J) beats recomputing (1 J),
so the optimum is 15.75 J. POET pages a out in stage 1 (it must be a checkpoint to be paged out)
and reads it in stage 3 for stage 4; ours writes it right after computing it (stage 0) and
reads it in stage 4.
"""

import pytest
from poet_graphs import hand_graph

from minerva_packager.poet.checker import check_schedule
from minerva_packager.poet.planner import InfeasibleError, plan_training, solve_plan


def solved(graph, budget, model, **limits):
    candidate, figures = solve_plan(graph, budget, model=model, time_limit=20, gap=0.0,
                                    **limits)
    assert candidate is not None, figures
    report = check_schedule(graph.to_json(), candidate.document)
    assert report.ok, report.errors
    return candidate.document, report


def ops(document, op):
    return [(s["stage"], s["node"]) for s in document["steps"] if s["op"] == op]


@pytest.mark.parametrize("model", ["poet", "minerva"])
def test_keeping_everything_costs_the_sum_of_the_nodes(model):
    document, report = solved(hand_graph(), 220, model)
    assert report.energy_j == pytest.approx(15.0)
    assert report.time_s == pytest.approx(1.5)
    assert report.peak_ram_bytes == 220
    assert ops(document, "recompute") == [] and ops(document, "page_in") == []


def test_poet_pages_a_checkpoint_out_and_reads_it_a_stage_early():
    document, report = solved(hand_graph(), 170, "poet")
    assert report.energy_j == pytest.approx(15.75)
    assert ops(document, "page_out") == [(1, 0)]
    assert ops(document, "page_in") == [(3, 0)]
    assert report.peak_ram_bytes == 160
    assert report.time_s == pytest.approx(1.5)  # POET does not count paging time


def test_default_model_pages_out_at_compute_time_and_in_when_needed():
    document, report = solved(hand_graph(), 170, "minerva")
    assert report.energy_j == pytest.approx(15.75)
    assert ops(document, "page_out") == [(0, 0)]
    assert ops(document, "page_in") == [(4, 0)]
    assert report.time_s == pytest.approx(1.53)
    assert report.flash_bytes_written == 100


def test_paging_time_counts_against_the_deadline_only_in_the_default_model():
    graph = hand_graph()
    _, report = solved(graph, 170, "poet", deadline=1.5)
    assert report.energy_j == pytest.approx(15.75)
    with pytest.raises(InfeasibleError) as caught:
        plan_training(graph, 170, deadline=1.5, time_limit=10, baselines=False)
    assert caught.value.min_time_s == pytest.approx(1.53)
    _, report = solved(graph, 170, "minerva", deadline=1.53)
    assert report.energy_j == pytest.approx(15.75)
    _, report = solved(graph, 170, "minerva", deadline=1.6, flash_limit=0)
    assert report.energy_j == pytest.approx(16.0)  # no flash writes: recompute a instead


def test_static_bytes_count_only_in_the_default_model():
    graph = hand_graph(static_bytes=50)
    _, report = solved(graph, 160, "poet")
    assert report.peak_ram_bytes == 160
    with pytest.raises(InfeasibleError) as caught:
        plan_training(graph, 160, time_limit=10, baselines=False)
    assert caught.value.min_ram_bytes == 210
    _, report = solved(graph, 210, "minerva")
    assert report.peak_ram_bytes == 210


def test_poet_model_below_its_least_ram_is_infeasible():
    graph = hand_graph()
    candidate, figures = solve_plan(graph, 159, model="poet", time_limit=10)
    assert candidate is None and figures["status"] == "infeasible"
    with pytest.raises(InfeasibleError):
        plan_training(graph, 159, model="poet", time_limit=10, baselines=False)


def test_poet_ignores_the_flash_limit():
    _, report = solved(hand_graph(), 170, "poet", flash_limit=0)
    assert report.energy_j == pytest.approx(15.75)


def test_poet_recompute_of_a_held_tensor_is_no_step():
    """POET's rows allow "recomputing" a checkpoint that is in RAM (a free node such as the
    input makes it cost nothing, so a solver may pick it); the schedule must not emit a
    recompute of a tensor already held (the checker rejects that), and saves its energy."""
    from minerva_packager.poet.schedule import plan_steps, schedule_json
    from minerva_packager.poet.stages import StagePlan

    graph = hand_graph()
    plan = StagePlan(len(graph))
    for t in range(1, len(graph)):
        plan.retain[t] = {0} | ({t - 1} if t > 1 else set())
    plan.compute[2] = [0, 2]  # a is held in stage 2, and "recomputed" there too
    steps = plan_steps(graph, plan, "poet")
    assert {"stage": 2, "op": "recompute", "node": 0} not in steps
    document = schedule_json(graph, steps, "poet", {"ram_bytes": 1000, "deadline_s": None,
                                                     "flash_bytes": None}, None, "hand")
    report = check_schedule(graph.to_json(), document)
    assert report.ok, report.errors
    assert report.energy_j == pytest.approx(15.0)


def test_poet_model_is_warm_started_from_a_paging_plan_converted_to_its_semantics():
    """The greedy plans in our semantics; converted (page-out a stage late, page-in a stage
    early) it is a feasible POET start, here already the 15.75 J optimum."""
    candidate, figures = solve_plan(hand_graph(), 160, model="poet", solver="highs", gap=0.0)
    assert figures["warm_start_j"] == pytest.approx(15.75)
    assert candidate.report.ok and figures["status"] == "optimal"
