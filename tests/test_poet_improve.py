"""The plan-level local search (poet/improve.py): holding a tensor instead of making it again.

Every improved plan must pass the independent checker, fit the limits, cost no more than the
plan it started from, and be a feasible start for the MILP (its integer rows hold), on seeded
random layer graphs and budgets; a failure prints a one-line repro."""

import random

import pytest
from poet_graphs import PROFILE, layer

from minerva_packager.poet.canonical import canonical_graph
from minerva_packager.poet.checker import check_schedule
from minerva_packager.poet.heuristics import best_heuristic, evaluate
from minerva_packager.poet.improve import hold_instead
from minerva_packager.poet.milp import Formulation
from minerva_packager.poet.published import poet_instance
from minerva_packager.poet.schedule import plan_steps, schedule_json
from minerva_packager.poet.training import training_graph


def random_graph(seed):
    """4-7 layers, each reading the previous one and sometimes one further back."""
    rng = random.Random(seed)
    layers = []
    for k in range(rng.randint(4, 7)):
        inputs = [k - 1] + ([rng.randrange(-1, k - 1)] if k >= 2 and rng.random() < 0.3 else [])
        layers.append(layer(f"l{k}", rng.randint(200, 20000), 10,
                            sorted(set(inputs), reverse=True), params=rng.randint(0, 20),
                            out_bytes=rng.randint(50, 900)))
    return training_graph(layers, PROFILE, trainable_from=rng.randint(0, 2), name=f"r{seed}")


def violated_integer_rows(formulation, values):
    """Rows over integer columns only that ``values`` break (the solvers recompute the
    continuous columns of a start, never its integer ones)."""
    model, broken = formulation.model, 0
    for terms, sense, rhs in model.rows:
        if not all(model.integer[column] for column in terms):
            continue
        lhs = sum(values[column] * coef for column, coef in terms.items())
        broken += (lhs > rhs + 1e-9) if sense == "<=" else (lhs < rhs - 1e-9) if sense == ">=" \
            else abs(lhs - rhs) > 1e-9
    return broken


def assert_improved_plan_is_sound(graph, budget, deadline, paging, repro):
    found = best_heuristic(graph, budget, deadline, None, paging, True)
    if found is None:
        return None
    plan, summary = hold_instead(graph, found[0], budget, deadline)
    assert summary == evaluate(graph, plan)[1], repro
    assert summary["energy_j"] <= found[1]["energy_j"] * (1 + 1e-12), repro
    assert summary["peak_ram_bytes"] <= budget, repro
    assert deadline is None or summary["time_s"] <= deadline * (1 + 1e-9), repro
    document = schedule_json(graph, plan_steps(graph, plan), "minerva",
                             {"ram_bytes": budget, "deadline_s": deadline, "flash_bytes": None})
    report = check_schedule(graph.to_json(), document)
    assert report.ok, f"{repro}: {report.errors[:3]}"
    assert report.energy_j == pytest.approx(summary["energy_j"], rel=1e-9), repro
    formulation = Formulation(graph, budget, deadline, None, paging, True)
    values = formulation.start_values(plan)
    assert values is not None, f"{repro}: the plan has a move the MILP does not model"
    assert violated_integer_rows(formulation, values) == 0, repro
    return summary["energy_j"] < found[1]["energy_j"] * (1 - 1e-12)


def test_random_graphs_and_budgets():
    improved = tried = 0
    for seed in range(40):
        graph = canonical_graph(random_graph(seed))[0]
        keep_all = best_heuristic(graph, 10**9)[1]["peak_ram_bytes"]
        rng = random.Random(1000 + seed)
        for paging in (True, False):
            budget = int(keep_all * rng.uniform(0.5, 0.95))
            deadline = None if rng.random() < 0.5 else \
                evaluate(graph, best_heuristic(graph, 10**9)[0])[1]["time_s"] * 1.6
            repro = (f"repro: hold_instead on canonical random_graph({seed}), budget {budget}, "
                     f"deadline {deadline}, paging {paging}")
            outcome = assert_improved_plan_is_sound(graph, budget, deadline, paging, repro)
            tried += outcome is not None
            improved += bool(outcome)
    # The search must do something on these graphs, not only leave plans alone.
    assert tried >= 40 and improved >= 3, (tried, improved)


def test_resnet18_on_m4_holds_recomputed_chains():
    """POET's API example: the policy search's best plan (0.555002 J) recomputes bn/relu/add
    chains once per backward stage; holding them brings it under 0.5515 J, within 0.4 % of
    the MILP's root bound (0.549447 J), in well under a second."""
    instance = poet_instance("resnet18_cifar-m4")
    graph = canonical_graph(instance.graph)[0]
    found = best_heuristic(graph, instance.ram, instance.deadline)
    assert found[1]["energy_j"] == pytest.approx(0.555002, abs=1e-6)
    assert assert_improved_plan_is_sound(graph, instance.ram, instance.deadline, True,
                                         "repro: resnet18_cifar-m4")
    energy = hold_instead(graph, found[0], instance.ram, instance.deadline)[1]["energy_j"]
    assert energy < 0.5515
