"""The default ("minerva") MILP: energy-optimal rematerialization and paging for one iteration.

Stage ``t`` pages in what it needs, computes node ``t`` after any recomputed ancestors (in node
order, freeing each input after its last use), and pages a tensor out right after its first
computation. Compared with the published POET formulation (:mod:`.poet_milp`), this one:

* counts paging time against the deadline, and ``static_bytes`` (parameters, gradient
  accumulators) against RAM;
* bounds flash bytes written per iteration (capacity and wear): each tensor is written at most
  once, when first computed, which is never worse than writing it later, and only if it is
  read back;
* has no spurious checkpoints: a tensor kept into a stage is used, kept on, or not kept, and a
  tensor paged in is used in that stage, so the RAM it reports is RAM really held;
* prunes what cannot matter: only forward nodes are recomputed, a node exists in a stage only
  up to its horizon (:meth:`TrainingGraph.horizon`; on chains this is the backward node that
  consumes it, which removes most of the triangle), and "free" variables are continuous with
  only the bounds that make them exact at integer points.
"""

from .lp import LinearModel
from .stages import plan_from_values


class Formulation:
    """Builds the MILP for ``graph`` and maps solutions to and from :class:`StagePlan`.

    ``goal`` is "energy" (minimise energy within ``budget`` and ``deadline``), "ram" (smallest
    budget within the deadline) or "time" (shortest iteration within the budget).
    """

    def __init__(self, graph, budget, deadline=None, flash_limit=None, paging=True, remat=True,
                 goal="energy"):
        self.graph, self.goal = graph, goal
        self.budget, self.deadline, self.flash_limit = budget, deadline, flash_limit
        self.model = LinearModel()
        self.variables = {}
        self.free = {}
        self.memory = {}
        n = len(graph)
        nodes, horizon = graph.nodes, graph._horizons()
        # Bytes are counted in units of the largest tensor and costs in units of the largest
        # cost, so that the LP is well scaled (unscaled, HiGHS stalls on its relaxation).
        self.unit = float(max([node.out_bytes for node in nodes] + [1]))
        for t in range(n):
            for i in range(t):
                if t > horizon[i]:
                    continue
                self._var("S", t, i)
                if remat and not nodes[i].backward:
                    self._var("R", t, i)
                if paging and nodes[i].out_bytes:
                    self._var("IN", t, i)
        if paging:
            for i in range(n):
                if horizon[i] > i and nodes[i].out_bytes:
                    self._var("OUT", i, i)
        self.ram_var = None
        if goal == "ram":
            self.ram_var = self.model.var("peak", 0.0, 1e15, integer=False)
        self._constraints()
        self._objective()

    def _var(self, kind, t, i):
        self.variables[(kind, t, i)] = self.model.var(f"{kind}_{t}_{i}")

    def col(self, kind, t, i):
        return self.variables.get((kind, t, i))

    def computable(self, t, k):
        return k == t or (("R", t, k) in self.variables)

    def _present_terms(self, t, i):
        return [(c, 1.0) for c in (self.col("S", t, i), self.col("IN", t, i),
                                   self.col("R", t, i)) if c is not None]

    def _uses(self, t, i, after=-1):
        """R columns of i's consumers recomputed in stage t after node ``after``; None if node
        t itself reads i (then i is certainly used)."""
        if t in self.graph.succs[i]:
            return None
        return [(self.col("R", t, j), 1.0) for j in self.graph.succs[i]
                if after < j < t and self.col("R", t, j) is not None]

    def _constraints(self):
        graph, model, n = self.graph, self.model, len(self.graph)
        for t in range(n):
            for k in range(t + 1):
                if not self.computable(t, k):
                    continue
                for i in graph.preds[k]:
                    present = self._present_terms(t, i)
                    if k == t:
                        model.add(present, ">=", 1.0)
                    else:
                        model.add([(self.col("R", t, k), 1.0)] + [(c, -1.0) for c, _ in present],
                                  "<=", 0.0)
            for i in range(t):
                present = self._present_terms(t, i)
                if len(present) > 1:
                    model.add(present, "<=", 1.0)
                keep = self.col("S", t + 1, i)
                if keep is not None:
                    model.add([(keep, 1.0)] + [(c, -1.0) for c, _ in present], "<=", 0.0)
                column = self.col("IN", t, i)
                if column is not None:
                    model.add([(column, 1.0), (self.col("OUT", i, i), -1.0)], "<=", 0.0)
                uses = self._uses(t, i)
                if uses is None:
                    continue
                kept = [(keep, -1.0)] if keep is not None else []
                for kind in ("S", "R"):
                    column = self.col(kind, t, i)
                    if column is not None:
                        later = uses if kind == "S" else self._uses(t, i, after=i)
                        model.add([(column, 1.0)] + kept + [(c, -1.0) for c, _ in later],
                                  "<=", 0.0)
                paged_in = self.col("IN", t, i)
                if paged_in is not None:
                    # Paged in only for this stage's use: without this row the relaxation
                    # "pages in" a tensor a few percent per stage and pays for one page-in
                    # where a whole copy needs a page-out too.
                    model.add([(paged_in, 1.0)] + [(c, -1.0) for c, _ in uses], "<=", 0.0)
            self._memory(t)
        reads = {}
        for (kind, _t, i), column in self.variables.items():
            if kind == "IN":
                reads.setdefault(i, []).append((column, -1.0))
        for (kind, _t, i), column in self.variables.items():
            if kind == "OUT":
                # A flash copy nobody reads back is only wear.
                model.add([(column, 1.0)] + reads.get(i, []), "<=", 0.0)
                self._lineage(i, column)
        self._time_and_flash()

    def _lineage(self, i, paged_out):
        """Rows that keep the relaxation from building a tensor up in RAM out of many small
        page-ins (each within ``IN <= OUT``) while paying one small page-out: ``K[t,i]``, "in
        RAM since it was last computed", can only be carried on or renewed by a computation,
        and whatever is in RAM or paged in without it came from flash. Exact at integer points
        (K is 1 exactly when the tensor's latest arrival in RAM was a computation)."""
        model, previous = self.model, None
        for t in range(i + 1, len(self.graph)):
            held = self.col("S", t, i)
            if held is None:
                break
            lineage = model.var(f"K_{t}_{i}", 0.0, 1.0, integer=False)
            model.add([(lineage, 1.0), (held, -1.0)], "<=", 0.0)
            if previous is not None:
                recomputed = self.col("R", t - 1, i)
                model.add([(lineage, 1.0), (previous, -1.0)]
                          + ([(recomputed, -1.0)] if recomputed is not None else []), "<=", 0.0)
            present = [(held, 1.0)] + ([(self.col("IN", t, i), 1.0)]
                                       if self.col("IN", t, i) is not None else [])
            model.add(present + [(paged_out, -1.0), (lineage, -1.0)], "<=", 0.0)
            previous = lineage

    def _memory(self, t):
        graph, model = self.graph, self.model
        sizes = [node.out_bytes / self.unit for node in graph.nodes]
        cap = 1e15 if self.goal == "ram" else (self.budget - graph.static_bytes) / self.unit
        points = [k for k in range(t + 1) if self.computable(t, k)]
        previous = None
        for k in points:
            usage = model.var(f"U_{t}_{k}", 0.0, max(cap, 0.0), integer=False)
            self.memory[(t, k)] = usage
            terms = [(usage, 1.0)]
            if previous is None:
                for i in range(t):
                    for kind in ("S", "IN"):
                        column = self.col(kind, t, i)
                        if column is not None and sizes[i]:
                            terms.append((column, -float(sizes[i])))
            else:
                terms.append((self.memory[(t, previous)], -1.0))
                for i in graph.preds[previous]:
                    column = self.free.get((t, i, previous))
                    if column is not None:
                        terms.append((column, float(sizes[i])))
            if k == t:
                model.add(terms, ">=", sizes[k])
            else:
                model.add(terms + [(self.col("R", t, k), -float(sizes[k]))], ">=", 0.0)
            if self.ram_var is not None:
                model.add([(usage, 1.0), (self.ram_var, -1.0)], "<=", 0.0)
            if k < t:
                self._frees(t, k)
            previous = k

    def _frees(self, t, k):
        graph, model = self.graph, self.model
        for i in graph.preds[k]:
            later = self._uses(t, i, after=k)
            if later is None:
                continue
            column = model.var(f"F_{t}_{i}_{k}", 0.0, 1.0, integer=False)
            self.free[(t, i, k)] = column
            model.add([(column, 1.0), (self.col("R", t, k), -1.0)], "<=", 0.0)
            keep = self.col("S", t + 1, i)
            if keep is not None:
                model.add([(column, 1.0), (keep, 1.0)], "<=", 1.0)
            for c, _ in later:
                model.add([(column, 1.0), (c, 1.0)], "<=", 1.0)

    def _time_and_flash(self):
        nodes = self.graph.nodes
        self.time_terms, self.energy_terms, flash = [], [], []
        for (kind, _t, i), column in self.variables.items():
            node = nodes[i]
            if kind == "R":
                self.time_terms.append((column, node.compute_s))
                self.energy_terms.append((column, node.compute_j))
            elif kind == "IN":
                self.time_terms.append((column, node.pagein_s))
                self.energy_terms.append((column, node.pagein_j))
            elif kind == "OUT":
                self.time_terms.append((column, node.pageout_s))
                self.energy_terms.append((column, node.pageout_j))
                flash.append((column, node.out_bytes / self.unit))
        self.base_time = sum(node.compute_s for node in nodes)
        self.base_energy = sum(node.compute_j for node in nodes)
        if self.deadline is not None and self.goal != "time":
            self.model.add(self.time_terms, "<=", self.deadline - self.base_time)
        if self.flash_limit is not None and flash:
            self.model.add(flash, "<=", self.flash_limit / self.unit)

    def _objective(self):
        if self.goal == "ram":
            self.base, self.factor = float(self.graph.static_bytes), self.unit
            self.model.minimise([(self.ram_var, 1.0)])
            return
        terms = self.time_terms if self.goal == "time" else self.energy_terms
        self.base = self.base_time if self.goal == "time" else self.base_energy
        self.factor = max([abs(c) for _, c in terms] + [1e-30])
        self.model.minimise([(column, coef / self.factor) for column, coef in terms])

    def total(self, value):
        """The goal's figure (J, s or bytes) from a scaled objective value or bound."""
        return None if value is None else self.base + value * self.factor

    def plan(self, values):
        return plan_from_values(len(self.graph), self.variables, values, "minerva")

    def start_values(self, plan):
        """Column values for the warm start ``plan`` (continuous columns made consistent)."""
        values = [0.0] * len(self.model.names)
        chosen = set()
        for t, nodes in enumerate(plan.compute):
            chosen.update(("R", t, i) for i in nodes if i != t)
            chosen.update(("IN", t, i) for i in plan.page_in[t])
            chosen.update(("OUT", t, i) for i in plan.page_out[t])
            chosen.update(("S", t, i) for i in plan.retain[t])
        for key in chosen:
            if key not in self.variables:
                return None
            values[self.variables[key]] = 1.0
        for (t, i, k), column in self.free.items():
            bounds = [values[self.col("R", t, k)]]
            keep = self.col("S", t + 1, i)
            if keep is not None:
                bounds.append(1.0 - values[keep])
            bounds += [1.0 - values[c] for c, _ in self._uses(t, i, after=k)]
            values[column] = min(bounds)
        sizes = [node.out_bytes / self.unit for node in self.graph.nodes]
        peak = 0.0
        for t in range(len(self.graph)):
            usage = None
            for k in range(t + 1):
                if (t, k) not in self.memory:
                    continue
                computed = 1.0 if k == t else values[self.col("R", t, k)]
                if usage is None:
                    usage = sum(sizes[i] * values[c] for i in range(t)
                                for c in (self.col("S", t, i), self.col("IN", t, i))
                                if c is not None)
                usage += sizes[k] * computed
                values[self.memory[(t, k)]] = usage
                peak = max(peak, usage)
                usage -= sum(sizes[i] * values[self.free[(t, i, k)]]
                             for i in self.graph.preds[k] if (t, i, k) in self.free)
        if self.ram_var is not None:
            values[self.ram_var] = peak
        return values
