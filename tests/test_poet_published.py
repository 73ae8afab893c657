"""POET's built-in instances as our graphs: the README example (ResNet-18 CIFAR on the a72
profile, 3 MB, runtime budget 7.6) in detail, every network's shape and FLOPs, the published
budgets, and the linear network on the m0 profile (issue 15)."""

import math
import time

import pytest

from minerva_packager.poet.heuristics import evaluate, keep_all_policy, policy_plan
from minerva_packager.poet.planner import InfeasibleError, plan_training, solve_plan
from minerva_packager.poet.published import (
    FLOP_PER_J,
    INSTANCES,
    PLATFORMS,
    RAM_BUDGET,
    RUNTIME_BUDGET_S,
    poet_graph,
    poet_instance,
    poet_resnet18_cifar_graph,
)


@pytest.fixture(scope="module")
def graph():
    return poet_resnet18_cifar_graph()


def test_shape(graph):
    assert graph.name == "poet-resnet18-cifar-a72" and graph.static_bytes == 0
    assert len(graph) == 133 and len(graph.edges) == 269
    assert all(a < b for a, b in graph.edges)  # nodes in a topological order
    assert sum(node.backward for node in graph.nodes) == 66  # the gradients; the loss is not
    assert [i for i, node in enumerate(graph.nodes) if node.name == "loss66"] == [66]
    assert not graph.preds[0] and all(graph.preds[i] for i in range(1, len(graph)))
    assert not graph.succs[-1] and all(graph.succs[i] for i in range(len(graph) - 1))
    # The gradient chain: each gradient reads the previous one (the first reads the loss).
    assert all(i - 1 in graph.preds[i] for i in range(67, 133))
    # POET's numbering; the six blocks' ties (bn2/shortcut conv, relu2/shortcut bn) in layer
    # order.
    assert [node.name for node in graph.nodes[3:13]] == [
        "conv3", "bn4", "relu5", "conv6", "bn7", "conv9", "relu8", "bn10", "add11", "relu12"]


def test_costs(graph):
    first = graph.nodes[1]  # conv 3->16, 3x3: 2*9*3072*16 + 16384 FLOPs
    assert first.name == "conv1" and first.out_bytes == 16 * 32 * 32 * 4
    assert first.compute_s == pytest.approx(901120 / 2e9, rel=1e-12)
    assert first.compute_j == pytest.approx(901120 / FLOP_PER_J, rel=1e-12)
    assert first.pagein_j == pytest.approx(first.pagein_s * 0.15, rel=1e-12)
    assert first.pageout_s == pytest.approx(0.0185314e-3 + 65536 / 24.5e6, rel=1e-12)
    total_s = math.fsum(node.compute_s for node in graph.nodes)
    assert total_s == pytest.approx(0.158246975, rel=1e-9)
    assert RUNTIME_BUDGET_S == pytest.approx(7.6 * total_s, rel=1e-12)
    assert math.fsum(node.compute_j for node in graph.nodes) == pytest.approx(7.88951018, 1e-8)


@pytest.mark.parametrize("model", ["poet", "minerva"])
def test_keeping_everything_fits(graph, model):
    summary = evaluate(graph, policy_plan(graph, keep_all_policy(graph)), model)[1]
    assert summary["peak_ram_bytes"] == 2_453_760 <= RAM_BUDGET
    assert summary["time_s"] <= RUNTIME_BUDGET_S
    assert summary["page_ins"] == summary["recomputations"] == 0


def test_poet_model_plans_it_on_highs(graph):
    """About 5 s on 2 cores (HiGHS proves the warm start optimal at the root)."""
    result = plan_training(graph, RAM_BUDGET, RUNTIME_BUDGET_S, model="poet", solver="highs",
                           time_limit=60, baselines=False, gap=0.01)
    assert result.best.report.ok, result.best.report.errors[:3]
    predicted = result.best.document["predicted"]
    assert predicted["peak_ram_bytes"] <= RAM_BUDGET
    assert predicted["time_s"] <= RUNTIME_BUDGET_S
    assert predicted["energy_j"] == pytest.approx(7.88951018, rel=1e-8)
    assert result.solve["status"] in ("optimal", "within gap")


@pytest.mark.parametrize("model, nodes, edges", [("linear", 27, 51), ("vgg16", 81, 159),
                                                  ("resnet18_cifar", 133, 269),
                                                  ("transformer", 19, 37)])
def test_each_network_is_a_training_graph(model, nodes, edges):
    graph = poet_graph(model, "m4")
    assert (len(graph), len(graph.edges)) == (nodes, edges)
    forward = (nodes + 1) // 2  # the layers and the loss; one gradient per consecutive pair
    assert sum(node.backward for node in graph.nodes) == nodes - forward
    assert graph.nodes[0].name == "input0" and graph.nodes[0].compute_j == 0
    assert not graph.succs[-1] and all(graph.succs[i] for i in range(len(graph) - 1))


@pytest.mark.parametrize("model, name, flop", [
    ("linear", "linear1", 2 * 785 * 10 + 10),
    ("vgg16", "conv1", 2 * 9 * (3 * 224 * 224) * 64 + 64 * 224 * 224),
    ("vgg16", "maxpool5", 2 * 4 * 64 * 112 * 112),
    ("vgg16", "linear33", 2 * (25088 + 1) * 4096 + 4096),
    ("transformer", "qkv1", 3 * 512 * 768 * 64 * 12),
    ("transformer", "qkt2", 512 * 64 * 512 * 12 + 2 * 512 * 512 * 12),
    ("transformer", "linrelu6", 2 * 769 * 3072 + 3072 + 512 * 3072),
    ("transformer", "loss9", 512 * 768 * 512),
])
def test_flops_are_poets(model, name, flop):
    chip = PLATFORMS["m4"]
    node = {node.name: node for node in poet_graph(model, "m4").nodes}[name]
    assert node.compute_s == pytest.approx(flop / chip["flop_per_s"], rel=1e-12)
    assert node.compute_j == pytest.approx(flop / chip["flop_per_j"], rel=1e-12)


def test_published_budgets():
    m4 = poet_instance("resnet18_cifar-m4")
    assert (m4.ram, m4.factor) == (737_719, 1.5)
    assert m4.deadline == pytest.approx(1.5 * math.fsum(n.compute_s for n in m4.graph.nodes))
    readme = poet_instance("resnet18_cifar-a72")
    assert (readme.ram, readme.deadline) == (RAM_BUDGET, RUNTIME_BUDGET_S)
    assert set(INSTANCES) >= {"linear-m0", "vgg16-m4", "vgg16-a72", "transformer-a72"}


@pytest.mark.parametrize("solver", ["cbc", "highs"])
def test_linear_m0_optimum_on_both_solvers(solver):
    """Issue 15: HiGHS once reported 0.105484 J with a 0.00 % gap here; CBC's 0.1049535 J is
    the optimum (POET's model, which does not count paging time)."""
    instance = poet_instance("linear-m0")
    candidate, figures = solve_plan(instance.graph, instance.ram, instance.deadline,
                                    model="poet", solver=solver, time_limit=20, gap=0.0)
    assert candidate.feasible and figures["status"] == "optimal", figures
    assert candidate.document["predicted"]["energy_j"] == pytest.approx(0.1049535, rel=1e-6)


def test_linear_m0_needs_more_ram_when_paging_takes_time():
    """Our model counts paging time: with a 1.0x deadline nothing may be paged, and 3,500
    bytes are too few (4,280 are enough)."""
    instance = poet_instance("linear-m0")
    with pytest.raises(InfeasibleError) as error:
        plan_training(instance.graph, instance.ram, instance.deadline, solver="highs",
                      time_limit=10, baselines=False)
    assert error.value.min_ram_bytes == 4280


@pytest.mark.parametrize("model", ["minerva", "poet"])
def test_vgg16_at_1mb_is_infeasible_and_the_least_ram_is_named(model):
    """Issue 15: POET's model took about 80 s to call this infeasible. Computing a VGG16
    gradient holds four 12.8 MB tensors, a bound no schedule can beat; the greedy reaches it
    within the deadline, so it is the least RAM, proven without a MILP."""
    instance = poet_instance("vgg16-a72-1MB")
    with pytest.raises(InfeasibleError) as error:
        plan_training(instance.graph, instance.ram, instance.deadline, model=model,
                      solver="cbc", time_limit=30)
    assert error.value.min_ram_bytes == 4 * 4 * 64 * 224 * 224 == 51_380_224
    assert "51380224" in str(error.value)


@pytest.mark.parametrize("solver", ["cbc", "highs"])
def test_time_limit_bounds_the_whole_job(solver):
    """Issue 15, item 4: ``time_limit`` is the job's, restricted MILPs, warm starts, LP and
    checks included. ResNet-18 on m4 at a 1e-4 gap keeps every solver busy to its limit;
    with a 10 s limit the job used to take over 20 s on CBC (2.5 s for each restricted MILP
    and its overrun, 10 s for the full one), and 47-61 s at 30 s. A CBC stopped before it
    reports a bound still leaves the LP relaxation's proven."""
    from minerva_packager.poet.lp import SIGINT_AFTER_S, STOP_GRACE_S

    instance = poet_instance("resnet18_cifar-m4")
    limit = 10.0
    began = time.monotonic()
    result = plan_training(instance.graph, instance.ram, instance.deadline, solver=solver,
                           time_limit=limit, gap=1e-4)
    elapsed = time.monotonic() - began
    # One solver call may overrun by SIGINT_AFTER_S + STOP_GRACE_S; 1 s more for the load.
    assert elapsed <= limit + SIGINT_AFTER_S + STOP_GRACE_S + 1.0, (elapsed, result.solve)
    assert result.best.report.ok
    assert result.best.document["predicted"]["energy_j"] < 0.5515
    assert result.solve["gap"] is not None and result.solve["gap"] < 0.005, result.solve


@pytest.mark.parametrize("solver", ["cbc", "highs"])
def test_resnet18_on_m4_within_one_percent_by_a_margin(solver):
    """The hard instance at the benchmark's settings (30 s, 1 % gap): proven within 0.5 %
    on both solvers (0.255 % when written), and the gap is the replay's against a bound
    no schedule beats (the floor: every node computed once)."""
    instance = poet_instance("resnet18_cifar-m4")
    result = plan_training(instance.graph, instance.ram, instance.deadline, solver=solver,
                           time_limit=30, gap=0.01)
    solve, predicted = result.solve, result.best.document["predicted"]
    assert result.best.report.ok and solve["status"] == "within gap", solve
    assert solve["gap"] < 0.005, solve
    assert solve["objective_j"] == pytest.approx(predicted["energy_j"], rel=1e-12)
    floor = math.fsum(node.compute_j for node in instance.graph.nodes)
    assert floor <= solve["bound_j"] <= predicted["energy_j"]
    assert solve["gap"] == pytest.approx(
        (predicted["energy_j"] - solve["bound_j"]) / predicted["energy_j"], rel=1e-9)
