"""Feasible schedules without a solver: the warm start, and the simple baselines.

A *policy* gives every forward node one of "keep" (stays in RAM until its last reader),
"page" (written to flash when computed, read back in the stages that need it) or "remat"
(dropped, recomputed from what is at hand in the stages that need it). Backward nodes are kept
until their last reader. :func:`policy_plan` turns a policy into a :class:`StagePlan`.
"""

import math

from .schedule import plan_steps, simulate
from .stages import StagePlan


def policy_plan(graph, policy):
    """The stage plan that follows ``policy`` (one entry per node; ignored for backward)."""
    n = len(graph)
    nodes, preds, succs = graph.nodes, graph.preds, graph.succs
    last_use = [max(succs[i], default=i) for i in range(n)]
    plan = StagePlan(n)
    kept, paged = set(), set()
    for t in range(n):
        plan.retain[t] = set(kept)
        available = set(kept)
        computed = []

        def ensure(i, t=t, available=available, computed=computed):
            if i in available:
                return
            if i in paged:
                plan.page_in[t].add(i)
            else:
                for p in preds[i]:
                    ensure(p)
                computed.append(i)
            available.add(i)

        for p in preds[t]:
            ensure(p)
        plan.compute[t] = sorted(computed) + [t]
        if policy[t] == "page" and not nodes[t].backward and graph.horizon(t) > t + 1:
            plan.page_out[t].add(t)
            paged.add(t)
        available.add(t)
        kept = set()
        for x in available:
            if last_use[x] <= t:
                continue
            if nodes[x].backward or policy[x] == "keep" or (t + 1) in succs[x]:
                kept.add(x)
    plan.retain[n] = set()
    return plan


def evaluate(graph, plan, model="minerva"):
    steps = plan_steps(graph, plan, model)
    return steps, simulate(graph, steps, model)


def _outcome(graph, policy):
    """``(plan, steps, summary)`` of ``policy`` (default cost model), remembered per graph:
    the greedies and their local search meet the same policies again and again (on POET's
    ResNet-18, one planning job evaluated 646 policies 2,966 times). Callers never change
    what this returns."""
    cache = getattr(graph, "_policy_cache", None)
    if cache is None:
        cache = graph._policy_cache = {}
    key = tuple(policy)
    found = cache.get(key)
    if found is None:
        plan = policy_plan(graph, policy)
        found = cache[key] = (plan,) + evaluate(graph, plan)
    return found


def fits(summary, budget, deadline=None, flash_limit=None):
    return (summary["peak_ram_bytes"] <= budget
            and (deadline is None or summary["time_s"] <= deadline * (1 + 1e-9))
            and (flash_limit is None or summary["flash_bytes_written"] <= flash_limit))


def _live_at_peak(graph, steps, summary):
    timeline = summary["ram_timeline"]
    peak_at = max(range(len(timeline)), key=timeline.__getitem__)
    live = set()
    for step in steps[:peak_at + 1]:
        if step["op"] in ("compute", "recompute", "page_in"):
            live.add(step["node"])
        elif step["op"] == "free":
            live.discard(step["node"])
    return live


def greedy_plan(graph, budget, deadline=None, flash_limit=None, paging=True, remat=True,
                weigh="energy"):
    """Start from keeping everything; while the peak is over ``budget``, move the kept tensor
    live at the peak with the most bytes saved per joule (or per second) to paging or
    recomputation; then :func:`refine` the policy. ``weigh="enough"`` prefers, of the moves
    that alone bring the peak within the budget, the one costing the fewest joules (the best
    ratio may move a 64 KB tensor where 16 KB were over). Returns ``(plan, summary)`` or
    None."""
    found = _greedy(graph, ["keep"] * len(graph), budget, deadline, flash_limit, paging, remat,
                    weigh)
    if found is None:
        return None
    return refine(graph, found[0], found[1:], budget, deadline, flash_limit, paging, remat)


def _greedy(graph, policy, budget, deadline, flash_limit, paging, remat, weigh):
    """:func:`greedy_plan`'s moves from ``policy``: ``(policy, plan, summary)`` or None."""
    nodes, succs = graph.nodes, graph.succs
    policy = list(policy)
    for _ in range(len(graph) + 1):
        plan, steps, summary = _outcome(graph, policy)
        if fits(summary, budget, deadline, flash_limit):
            return policy, plan, summary
        if summary["peak_ram_bytes"] <= budget:
            return None
        best = None
        over = summary["peak_ram_bytes"] - budget
        for i in _live_at_peak(graph, steps, summary):
            node = nodes[i]
            if node.backward or policy[i] != "keep" or not node.out_bytes:
                continue
            readers = max(1, len([j for j in succs[i] if j > i + 1]))
            options = []
            if paging and (flash_limit is None or
                           summary["flash_bytes_written"] + node.out_bytes <= flash_limit):
                cost = (node.pageout_s + readers * node.pagein_s if weigh == "time"
                        else node.pageout_j + readers * node.pagein_j)
                options.append(("page", cost))
            if remat:
                cost = readers * (node.compute_s if weigh == "time" else node.compute_j)
                options.append(("remat", cost))
            for choice, cost in options:
                score = (0, node.out_bytes / max(cost, 1e-30))
                if weigh == "enough" and node.out_bytes >= over:
                    score = (1, -cost)
                if best is None or score > best[0]:
                    best = (score, i, choice)
        if best is None:
            return None
        policy[best[1]] = best[2]
    return None


def refine(graph, policy, found, budget, deadline=None, flash_limit=None, paging=True,
           remat=True, passes=2):
    """Local search from a fitting ``policy`` (``found`` is its ``(plan, summary)``): a node
    the greedy moved early may not need to be moved once later moves are made, another choice
    may now be cheaper, or keeping it and letting the "enough" greedy make room elsewhere may
    be; each change that fits and saves energy is kept."""
    choices = ["keep"] + (["remat"] if remat else []) + (["page"] if paging else [])
    policy = list(policy)
    for _ in range(passes):
        improved = False
        moved = [i for i, choice in enumerate(policy)
                 if choice != "keep" and not graph.nodes[i].backward]
        for i in sorted(moved, key=lambda i: -graph.nodes[i].compute_j):
            for choice in choices:
                if choice == policy[i]:
                    continue
                trial = policy[:i] + [choice] + policy[i + 1:]
                plan, _, summary = _outcome(graph, trial)
                if not fits(summary, budget, deadline, flash_limit) and choice == "keep":
                    remade = _greedy(graph, trial, budget, deadline, flash_limit, paging, remat,
                                     "enough")
                    if remade is not None:
                        trial, plan, summary = remade
                if fits(summary, budget, deadline, flash_limit) and \
                        summary["energy_j"] < found[1]["energy_j"] * (1 - 1e-12):
                    policy, found, improved = trial, (plan, summary), True
                    break
        if not improved:
            break
    return found


def best_heuristic(graph, budget, deadline=None, flash_limit=None, paging=True, remat=True):
    """The cheaper of the energy- and time-weighted greedy plans, or None."""
    found = [greedy_plan(graph, budget, deadline, flash_limit, paging, remat, weigh)
             for weigh in ("energy", "time", "enough")]
    found = [f for f in found if f is not None]
    return min(found, key=lambda f: f[1]["energy_j"]) if found else None


def keep_all_policy(graph):
    return ["keep"] * len(graph)


def chen_policy(graph):
    """Chen et al. (2016) sqrt(n) checkpointing: keep every ceil(sqrt(F))-th of the F forward
    nodes, recompute the others from the nearest kept ones."""
    forward = [i for i, node in enumerate(graph.nodes) if not node.backward]
    stride = max(1, math.ceil(math.sqrt(len(forward))))
    policy = ["keep"] * len(graph)
    for position, i in enumerate(forward):
        if position % stride != stride - 1:
            policy[i] = "remat"
    return policy
