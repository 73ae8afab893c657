"""The stage plan: what the solvers and heuristics decide, before it becomes a step list.

Stage ``t`` ends by computing node ``t`` (Checkmate's and POET's "frontier-advancing" stages).
A :class:`StagePlan` says, per stage, which nodes are computed (node ``t`` and any recomputed
ancestors), which tensors are paged in, which are paged out, and which stay in RAM into the
next stage. :mod:`.schedule` turns it into steps under a cost model's ordering rules.
"""


class StagePlan:
    """``compute[t]``: nodes computed in stage t (ascending, ends with t); ``page_in[t]`` and
    ``page_out[t]``: sets of nodes; ``retain[t]``: nodes in RAM at the start of stage t."""

    def __init__(self, count):
        self.count = count
        self.compute = [[t] for t in range(count)]
        self.page_in = [set() for _ in range(count)]
        self.page_out = [set() for _ in range(count)]
        self.retain = [set() for _ in range(count + 1)]

    def copy(self):
        other = StagePlan(self.count)
        other.compute = [list(nodes) for nodes in self.compute]
        other.page_in = [set(nodes) for nodes in self.page_in]
        other.page_out = [set(nodes) for nodes in self.page_out]
        other.retain = [set(nodes) for nodes in self.retain]
        return other

    def recomputed(self):
        return sum(len(nodes) - 1 for nodes in self.compute)


def plan_from_values(count, variables, values, model):
    """Read a :class:`StagePlan` back from solver ``values``; ``variables`` maps
    ``(kind, t, i)`` (kind in R, S, IN, OUT) to a column index."""
    plan = StagePlan(count)
    chosen = {key for key, column in variables.items() if values[column] > 0.5}
    for kind, t, i in sorted(chosen):
        if kind == "R" and i != t:
            plan.compute[t].append(i)
        elif kind == "S":
            plan.retain[t].add(i)
        elif kind == "IN":
            plan.page_in[t].add(i)
        elif kind == "OUT":
            plan.page_out[t].add(i)
    for nodes in plan.compute:
        nodes.sort()
    return plan
