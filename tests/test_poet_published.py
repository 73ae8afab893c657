"""POET's README example (ResNet-18 CIFAR on the a72 profile, 3 MB, runtime budget 7.6) as one
of our graphs: its shape, its costs, and a checked plan within the budgets."""

import math

import pytest

from minerva_packager.poet.heuristics import evaluate, keep_all_policy, policy_plan
from minerva_packager.poet.planner import plan_training
from minerva_packager.poet.published import (
    FLOP_PER_J,
    RAM_BUDGET,
    RUNTIME_BUDGET_S,
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
