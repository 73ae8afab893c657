"""Local search on a stage plan: hold a tensor in RAM instead of making it again.

A policy (:mod:`.heuristics`) decides once per tensor whether it is kept, paged or
recomputed, so a recomputed tensor is recomputed in every stage that needs it, and so are the
ancestors it is recomputed from. The optimum often recomputes a chain once and holds it for the
stages that follow while RAM allows (on POET's ResNet-18 at 737,719 bytes the policy's best plan
spent twice the optimum's recomputation energy this way). :func:`hold_instead` makes that move
on the plan itself, one tensor and stage at a time, keeping each move that still fits and saves
energy.
"""

from .heuristics import evaluate, fits


def _available(plan, t, x):
    return x in plan.retain[t] or x in plan.page_in[t] or x in plan.compute[t]


def _prune(graph, plan, t):
    """Drop recomputations in stage ``t`` that nothing later in the stage reads and that are
    not kept into the next stage (a held tensor made its ancestors' recomputation useless)."""
    nodes = plan.compute[t]
    changed = True
    while changed:
        changed = False
        for position in range(len(nodes) - 2, -1, -1):
            k = nodes[position]
            if k in plan.retain[t + 1] or any(j in graph.succs[k] for j in nodes[position + 1:]):
                continue
            del nodes[position]
            changed = True


def _hold(graph, plan, x, t):
    """``plan`` with tensor ``x`` held from the last stage before ``t`` that has it, instead
    of being recomputed or paged in again in stage ``t``; None when no earlier stage has it."""
    earlier = next((s for s in range(t - 1, -1, -1) if _available(plan, s, x)), None)
    if earlier is None:
        return None
    trial = plan.copy()
    for s in range(earlier + 1, t + 1):
        trial.retain[s].add(x)
    if x in trial.page_in[t]:
        trial.page_in[t].discard(x)
    else:
        trial.compute[t].remove(x)
        _prune(graph, trial, t)
    _tidy(graph, trial)
    return trial


def _tidy(graph, plan):
    """Drop what a move left useless: a tensor held into a stage that neither reads it nor
    holds it on, and a page-out nobody pages in (the MILPs forbid both, so a start with
    them would be rejected)."""
    for t in range(plan.count - 1, -1, -1):
        reads = {p for k in plan.compute[t] for p in graph.preds[k]}
        plan.retain[t] = {x for x in plan.retain[t] if x in reads or x in plan.retain[t + 1]}
    paged_in = set().union(*plan.page_in)
    for outs in plan.page_out:
        outs &= paged_in


def _moves(plan):
    """``(x, t)`` for every recomputation and page-in of ``x`` in stage ``t``."""
    found = [(x, t) for t, nodes in enumerate(plan.compute) for x in nodes[:-1]]
    found += [(x, t) for t, nodes in enumerate(plan.page_in) for x in sorted(nodes)]
    return found


def hold_instead(graph, plan, budget, deadline=None, flash_limit=None, model="minerva",
                 passes=4):
    """``(plan, summary)``: ``plan`` improved by holding tensors instead of recomputing or
    paging them in again, wherever that fits the limits and saves energy."""
    summary = evaluate(graph, plan, model)[1]
    for _ in range(passes):
        improved = False
        for x, t in _moves(plan):
            if x not in plan.compute[t][:-1] and x not in plan.page_in[t]:
                continue  # an earlier move pruned it
            trial = _hold(graph, plan, x, t)
            if trial is None:
                continue
            tried = evaluate(graph, trial, model)[1]
            if fits(tried, budget, deadline, flash_limit) and \
                    tried["energy_j"] < summary["energy_j"] * (1 - 1e-12):
                plan, summary, improved = trial, tried, True
        if not improved:
            break
    return plan, summary
