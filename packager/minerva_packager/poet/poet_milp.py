"""The published POET formulation (Patil et al., ICML 2022), for ``--model poet``.

Our reading of it (docs/poet.md), written from the paper's description: ``T = n`` stages; binary
``R[t,i]`` (compute), ``SRam[t,i]`` / ``SSd[t,i]`` (in RAM / in flash at the start of stage t),
``MIn[t,i]`` / ``MOut[t,i]`` (page in / out during stage t), ``Free[t,(i,k)]`` per edge
(Checkmate's "free i after computing k"), continuous ``U[t,k]`` (RAM after computing k in stage t).

* R and the storage variables are lower triangular; ``R[t,t] = 1``;
* an edge ``(i,k)``: ``R[t,k] <= R[t,i] + SRam[t,i]``;
* ``SRam[t+1,i] <= SRam[t,i] + R[t,i] + MIn[t,i]``, ``SSd[t+1,i] <= SSd[t,i] + MOut[t,i]``,
  ``MIn[t,i] <= SSd[t,i]``, ``MOut[t,i] <= SRam[t,i]``;
* ``U[t,0] = R[t,0] m_0 + sum_i SRam[t,i] m_i``; ``U[t,k+1] = U[t,k] + R[t,k+1] m_{k+1} - sum
  over edges (i,k) of m_i Free[t,(i,k)]``; ``0 <= U <= budget``; Free is pinned both ways to
  "k computed, i not kept, no later reader of i computed" (Checkmate's hazard count);
* compute time only: ``sum R[t,i] time_i <= deadline`` (paging time is not counted);
* minimise ``sum R energy + MIn pagein_energy + MOut pageout_energy``.

No static RAM, no flash bound. Paged-in tensors are usable from the next stage.
"""

from .lp import LinearModel
from .stages import plan_from_values


class PoetFormulation:
    """The POET MILP for ``graph``; ``paging``/``remat`` False fix those decisions off."""

    def __init__(self, graph, budget, deadline=None, paging=True, remat=True):
        self.graph = graph
        self.model = model = LinearModel()
        n = len(graph)
        self.unit = float(max([node.out_bytes for node in graph.nodes] + [1]))
        self.variables = {}
        v = self.variables
        for t in range(n):
            for i in range(t + 1):
                fixed = 1.0 if i == t else (1.0 if remat else 0.0)
                v[("R", t, i)] = model.var(f"R_{t}_{i}", 1.0 if i == t else 0.0, fixed)
                stored = 1.0 if (paging and i < t) else 0.0
                v[("IN", t, i)] = model.var(f"IN_{t}_{i}", 0.0, stored)
                v[("OUT", t, i)] = model.var(f"OUT_{t}_{i}", 0.0, stored)
                if i < t:
                    v[("S", t, i)] = model.var(f"S_{t}_{i}")
                    v[("SSD", t, i)] = model.var(f"SSD_{t}_{i}", 0.0, stored)
        self.free = {}
        for t in range(n):
            for i, k in graph.edges:
                if k <= t:
                    self.free[(t, i, k)] = model.var(f"F_{t}_{i}_{k}")
        self._constraints(budget, deadline)
        terms = []
        for (kind, _t, i), column in v.items():
            node = graph.nodes[i]
            cost = {"R": node.compute_j, "IN": node.pagein_j, "OUT": node.pageout_j}.get(kind)
            if cost:
                terms.append((column, cost))
        self.factor = max([c for _, c in terms] + [1e-30])
        self.base = 0.0
        model.minimise([(column, cost / self.factor) for column, cost in terms])

    def _get(self, kind, t, i):
        return self.variables.get((kind, t, i))

    def _constraints(self, budget, deadline):
        graph, model, n, g = self.graph, self.model, len(self.graph), self._get
        for t in range(n):
            for i, k in graph.edges:
                if k <= t:
                    model.add([(g("R", t, k), 1.0), (g("R", t, i), -1.0), (g("S", t, i), -1.0)],
                              "<=", 0.0)
            for i in range(t + 1):
                if g("S", t + 1, i) is not None:
                    model.add([(g("S", t + 1, i), 1.0), (g("R", t, i), -1.0),
                               (g("IN", t, i), -1.0)]
                              + ([(g("S", t, i), -1.0)] if i < t else []), "<=", 0.0)
                    model.add([(g("SSD", t + 1, i), 1.0), (g("OUT", t, i), -1.0)]
                              + ([(g("SSD", t, i), -1.0)] if i < t else []), "<=", 0.0)
                if i < t:
                    model.add([(g("IN", t, i), 1.0), (g("SSD", t, i), -1.0)], "<=", 0.0)
                    model.add([(g("OUT", t, i), 1.0), (g("S", t, i), -1.0)], "<=", 0.0)
        sizes = [node.out_bytes / self.unit for node in graph.nodes]
        self.memory = {}
        for t in range(n):
            for i, k in graph.edges:
                if k > t:
                    continue
                later = [j for j in graph.succs[i] if k < j <= t]
                hazards = [(g("R", t, k), -1.0)] + [(g("R", t, j), 1.0) for j in later]
                if g("S", t + 1, i) is not None:
                    hazards.append((g("S", t + 1, i), 1.0))
                free = self.free[(t, i, k)]
                # 1 - Free <= 1 - R[t,k] + hazards'  and  most * (1 - Free) >= that.
                most = (2 if t + 1 < n else 1) + sum(1 for j in graph.succs[i] if j > k)
                model.add([(free, -1.0)] + [(c, -w) for c, w in hazards], "<=", 0.0)
                model.add([(free, -float(most))] + [(c, -w) for c, w in hazards], ">=",
                          1.0 - most)
            for k in range(t + 1):
                usage = model.var(f"U_{t}_{k}", 0.0, budget / self.unit, integer=False)
                self.memory[(t, k)] = usage
                terms = [(usage, 1.0), (g("R", t, k), -sizes[k])]
                if k == 0:
                    terms += [(g("S", t, i), -sizes[i]) for i in range(t) if sizes[i]]
                else:
                    terms.append((self.memory[(t, k - 1)], -1.0))
                    terms += [(self.free[(t, i, k - 1)], sizes[i])
                              for i in graph.preds[k - 1] if sizes[i]]
                model.add(terms, "==", 0.0)
        if deadline is not None:
            model.add([(g("R", t, i), graph.nodes[i].compute_s)
                       for t in range(n) for i in range(t + 1)], "<=", deadline)

    def total(self, value):
        return None if value is None else self.base + value * self.factor

    def plan(self, values):
        return plan_from_values(len(self.graph), self.variables, values, "poet")

    def start_values(self, plan):
        """Column values for a warm-start ``plan`` (given in POET's stage semantics)."""
        values = [0.0] * len(self.model.names)
        n, graph = len(self.graph), self.graph
        for t in range(n):
            for i in plan.compute[t]:
                values[self.variables[("R", t, i)]] = 1.0
            for i in plan.retain[t]:
                values[self.variables[("S", t, i)]] = 1.0
            for kind, chosen in (("IN", plan.page_in[t]), ("OUT", plan.page_out[t])):
                for i in chosen:
                    values[self.variables[(kind, t, i)]] = 1.0
        for t in range(1, n):
            for i in range(t):
                was = values[self.variables[("SSD", t - 1, i)]] if i < t - 1 else 0.0
                values[self.variables[("SSD", t, i)]] = max(
                    was, values[self.variables[("OUT", t - 1, i)]])
        sizes = [node.out_bytes / self.unit for node in graph.nodes]
        for (t, i, k), column in self.free.items():
            keep = self._get("S", t + 1, i)
            busy = (values[self.variables[("R", t, k)]] < 0.5
                    or (keep is not None and values[keep] > 0.5)
                    or any(values[self.variables[("R", t, j)]] > 0.5
                           for j in graph.succs[i] if k < j <= t))
            values[column] = 0.0 if busy else 1.0
        for t in range(n):
            usage = sum(sizes[i] * values[self.variables[("S", t, i)]] for i in range(t))
            for k in range(t + 1):
                if k:
                    usage -= sum(sizes[i] * values[self.free[(t, i, k - 1)]]
                                 for i in graph.preds[k - 1])
                usage += sizes[k] * values[self.variables[("R", t, k)]]
                values[self.memory[(t, k)]] = usage
        return values
