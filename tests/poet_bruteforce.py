"""Exhaustive search over stage plans of tiny training graphs (the default cost model).

It enumerates, stage by stage, every choice the default formulation can make: which forward
nodes to recompute, which flash copies to page in, whether to page a new tensor out, and which
tensors to keep into the next stage. Its pruning uses its own RAM arithmetic; every complete
plan it keeps is replayed by the independent checker, and the cheapest valid energy is returned.
Nothing here comes from the MILP code.
"""

from itertools import chain, combinations

from minerva_packager.poet.checker import check_schedule
from minerva_packager.poet.schedule import plan_steps, schedule_json
from minerva_packager.poet.stages import StagePlan


def _subsets(items):
    items = sorted(items)
    return chain.from_iterable(combinations(items, r) for r in range(len(items) + 1))


def _stage_peak(graph, present, page_in, order, keep):
    sizes = [node.out_bytes for node in graph.nodes]
    held = set(present) | set(page_in)

    def needed(x, position):
        return x in keep or any(j in graph.succs[x] for j in order[position:])

    held = {x for x in held if needed(x, 0)}
    peak = sum(sizes[x] for x in held)
    for position, k in enumerate(order):
        held.add(k)
        peak = max(peak, sum(sizes[x] for x in held))
        held = {x for x in held if needed(x, position + 1)}
    return peak


def brute_force(graph, budget, deadline=None, flash_limit=None):
    """Least energy of any valid stage plan (None if none), and how many plans were checked."""
    n, nodes = len(graph), graph.nodes
    ram_budget = budget - graph.static_bytes
    graph_doc = graph.to_json()
    limits = {"ram_bytes": budget, "deadline_s": deadline, "flash_bytes": flash_limit}
    best = [None, 0]
    plan = StagePlan(n)
    visited = {}

    def finish():
        steps = plan_steps(graph, plan)
        document = schedule_json(graph, steps, "minerva", limits)
        best[1] += 1
        report = check_schedule(graph_doc, document)
        if report.ok and (best[0] is None or report.energy_j < best[0]):
            best[0] = report.energy_j

    def stage(t, present, flashed, energy, seconds, written):
        if best[0] is not None and energy >= best[0] * (1 + 1e-9):
            return
        if deadline is not None and seconds > deadline * (1 + 1e-9):
            return
        # A state reached before at no more energy, time and flash wear dominates this one.
        key = (t, frozenset(present), frozenset(flashed))
        seen = visited.setdefault(key, [])
        if any(e <= energy and s <= seconds and w <= written for e, s, w in seen):
            return
        seen.append((energy, seconds, written))
        if t == n:
            finish()
            return
        candidates = [i for i in range(t) if not nodes[i].backward and i not in present]
        for recompute in _subsets(candidates):
            order = sorted(recompute) + [t]
            reads = set(chain.from_iterable(graph.preds[k] for k in order))
            wanted = sorted(i for i in reads - present - set(recompute) if i in flashed)
            for page_in in _subsets(wanted):
                have = present | set(page_in)
                ok = all(p in have or (p in recompute and p < k)
                         for k in order for p in graph.preds[k])
                if not ok:
                    continue
                stage_energy = sum(nodes[k].compute_j for k in order) + sum(
                    nodes[i].pagein_j for i in page_in)
                stage_time = sum(nodes[k].compute_s for k in order) + sum(
                    nodes[i].pagein_s for i in page_in)
                outs = [()]
                if not nodes[t].backward and nodes[t].out_bytes and graph.horizon(t) > t:
                    outs.append((t,))
                for out in outs:
                    size = sum(nodes[i].out_bytes for i in out)
                    if flash_limit is not None and written + size > flash_limit:
                        continue
                    alive = [x for x in have | set(order) if graph.horizon(x) > t]
                    for keep in _subsets(alive):
                        keep = set(keep)
                        if _stage_peak(graph, present, page_in, order, keep) > ram_budget:
                            continue
                        plan.compute[t] = order
                        plan.page_in[t] = set(page_in)
                        plan.page_out[t] = set(out)
                        plan.retain[t + 1] = keep
                        stage(t + 1, keep, flashed | set(out),
                              energy + stage_energy + sum(nodes[i].pageout_j for i in out),
                              seconds + stage_time + sum(nodes[i].pageout_s for i in out),
                              written + size)
        plan.compute[t], plan.page_in[t], plan.page_out[t] = [t], set(), set()

    stage(0, set(), set(), 0.0, 0.0, 0)
    return best[0], best[1]
