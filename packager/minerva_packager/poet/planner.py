"""The whole planning job: warm start, MILP, baselines, independent check, infeasibility report.

Every entry point renumbers the graph canonically first (:mod:`.canonical`), so the plan and
its proven gap do not depend on the caller's node numbering; schedules come back in the
caller's numbering and are checked again there.
"""

import math
import time

from ..errors import PackagerError
from .canonical import canonical_graph, document_for
from .checker import check_schedule
from .graph import TrainingGraph
from .heuristics import best_heuristic, chen_policy, evaluate, fits, keep_all_policy, policy_plan
from .improve import hold_instead
from .lp import SolveResult
from .milp import Formulation
from .poet_milp import PoetFormulation
from .schedule import plan_steps, schedule_json
from .stages import StagePlan

BASELINES = ("keep-all", "chen-sqrt", "remat-only", "paging-only")
# --time-limit bounds the whole job. Each restricted MILP (remat-only, paging-only) gets this
# share of it, warm start included; the full MILP gets what is left less FINISH_RESERVE_S for
# the replay, checks and baselines after it. A solver call that would get less than
# MIN_SOLVE_S is not made (it could only overrun: CBC needs longer to read a large model).
RESTRICTED_SHARE = 0.125
FINISH_RESERVE_S = 1.0
MIN_SOLVE_S = 0.5


def _seconds_left(ends, cap):
    """``cap`` seconds, or fewer when the job must end at ``ends`` (``time.monotonic()``;
    None: no end); None when that is less than :data:`MIN_SOLVE_S`."""
    if ends is None:
        return cap
    left = min(cap, ends - time.monotonic())
    return left if left >= MIN_SOLVE_S else None


def _solve_within(model, solver, seconds, threads, start=None, gap=1e-4, abs_gap=0.0):
    """``model.solve`` given ``seconds`` (from :func:`_seconds_left`), or a result with no
    solution when there is no time left for it."""
    if seconds is None:
        return SolveResult("unknown", None, None, None, 0.0, solver)
    return model.solve(solver, seconds, threads, start, gap, abs_gap)


def _last_chance(ends):
    """Seconds for naming the least RAM after the job's time is up: a diagnosis that names
    nothing would be no use, so it gets at least MIN_SOLVE_S."""
    return max(ends - time.monotonic(), MIN_SOLVE_S)


class InfeasibleError(PackagerError):
    """No schedule fits; ``min_ram_bytes`` / ``min_time_s`` say what would (None: nothing)."""

    def __init__(self, budget, deadline, min_ram_bytes, min_time_s):
        what = f"no schedule fits {budget} bytes of RAM"
        what += f" and a {deadline:.6g} s deadline" if deadline is not None else ""
        hints = []
        if min_ram_bytes is not None:
            hints.append(f"the smallest RAM that works is {int(round(min_ram_bytes))} bytes"
                         + (" within the deadline" if deadline is not None else ""))
        elif deadline is not None:
            hints.append("no RAM size works within this deadline")
        else:
            hints.append("the solver found no schedule in its time limit: raise --time-limit "
                         "or try --solver highs")
        if min_time_s is not None:
            hints.append(f"the shortest deadline at {budget} bytes is {min_time_s:.6g} s")
        elif min_ram_bytes is not None:
            hints.append(f"nothing fits {budget} bytes whatever the deadline")
        super().__init__(what, "; ".join(hints))
        self.min_ram_bytes, self.min_time_s = min_ram_bytes, min_time_s


class Candidate:
    """One schedule (the plan or a baseline) with its document and check report."""

    def __init__(self, name, document=None, report=None, note=""):
        self.name, self.document, self.report, self.note = name, document, report, note

    @property
    def feasible(self):
        return self.document is not None and self.report.ok

    def row(self):
        p = self.document["predicted"] if self.document else {}
        return {"schedule": self.name, "feasible": self.feasible,
                "energy_j": p.get("energy_j"), "time_s": p.get("time_s"),
                "peak_ram_bytes": p.get("peak_ram_bytes"),
                "flash_bytes_written": p.get("flash_bytes_written"),
                "recomputations": p.get("recomputations"), "page_ins": p.get("page_ins"),
                "note": self.note}


class PlanResult:
    """``best`` (a :class:`Candidate`), ``baselines`` (list) and ``solve`` (solver figures)."""

    def __init__(self, best, baselines, solve):
        self.best, self.baselines, self.solve = best, baselines, solve

    def table(self):
        return [self.best.row()] + [b.row() for b in self.baselines]


def _limits(budget, deadline, flash_limit):
    return {"ram_bytes": int(budget), "deadline_s": deadline, "flash_bytes": flash_limit}


def _candidate(graph, name, plan, model, limits, solver=None):
    steps = plan_steps(graph, plan, model)
    document = schedule_json(graph, steps, model, limits, solver, name)
    return Candidate(name, document, check_schedule(graph.to_json(), document))


def _formulation(graph, budget, deadline, flash_limit, model, paging=True, remat=True):
    if model == "poet":
        return PoetFormulation(graph, budget, deadline, paging=paging, remat=remat)
    return Formulation(graph, budget, deadline, flash_limit, paging=paging, remat=remat)


def _poet_semantics(plan, count):
    """``plan`` (our stage semantics) as POET reads a plan: a page-out a stage after the
    computation (POET pages out checkpoints only) and a page-in a stage before its use (it
    counts from the next stage); None when that cannot be expressed."""
    converted = StagePlan(count)
    converted.compute = [list(nodes) for nodes in plan.compute]
    converted.retain = [set(kept) for kept in plan.retain]
    for t in range(count):
        for i in plan.page_out[t]:
            if t + 1 >= count:
                return None
            converted.page_out[t + 1].add(i)
            converted.retain[t + 1].add(i)
        for i in plan.page_in[t]:
            if t == 0:
                return None
            converted.page_in[t - 1].add(i)
            converted.retain[t].add(i)
    return converted


def _warm_start(graph, budget, deadline, flash_limit, model, paging=True, remat=True,
                solver="cbc", time_limit=60.0, threads=2, ends=None):
    """A feasible plan for the formulation, or None. For POET's model, the greedy's plans in
    our semantics are converted to POET's (and recomputation alone is tried too). When the
    greedy finds nothing under a tight budget, the least-RAM plan (a MILP of its own) is used
    if it fits."""
    if model == "poet":
        plans = []
        found = best_heuristic(graph, budget, deadline, None, paging=False, remat=remat)
        plans.append(found[0] if found else None)
        if paging:
            bare = TrainingGraph(graph.nodes, graph.edges, 0, graph.name)
            found = best_heuristic(bare, budget, deadline, None, paging, remat)
            plans.append(_poet_semantics(found[0], len(graph)) if found else None)
        # Held tensors are held alike in POET's semantics; its model judges the moves.
        plans += [hold_instead(graph, plan, budget, deadline, None, model)[0]
                  for plan in plans if plan is not None]
        return _best_start(graph, plans, budget, deadline, None, model)
    found = best_heuristic(graph, budget, deadline, flash_limit, paging, remat)
    if found:
        return hold_instead(graph, found[0], budget, deadline, flash_limit)[0]
    formulation = Formulation(graph, 0, deadline, flash_limit, paging, remat, goal="ram")
    result = _solve_within(formulation.model, solver,
                           _seconds_left(ends, max(time_limit / 4, 1.0)), threads)
    if result.values is None:
        return None
    plan = formulation.plan(result.values)
    return plan if fits(evaluate(graph, plan)[1], budget, deadline, flash_limit) else None


def _best_start(graph, plans, budget, deadline, flash_limit, model):
    """The least-energy plan of ``plans`` that fits the limits, or None."""
    best, best_energy = None, None
    limits = _limits(budget, deadline, flash_limit)
    for plan in plans:
        if plan is None:
            continue
        # The independent checker is the judge (a converted plan may page in too early).
        candidate = _candidate(graph, "start", plan, model, limits)
        energy = candidate.document["predicted"]["energy_j"]
        if candidate.feasible and (best_energy is None or energy < best_energy):
            best, best_energy = plan, energy
    return best


def _in_numbering_of(graph, order, candidate):
    """``candidate`` (planned on the canonical graph) in the numbering of ``graph``, checked
    again there; its :class:`StagePlan` (``plan``, canonical numbering) is kept."""
    if candidate is None or candidate.document is None:
        return candidate
    document = document_for(graph, order, candidate.document)
    mapped = Candidate(candidate.name, document, check_schedule(graph.to_json(), document),
                       candidate.note)
    mapped.plan = getattr(candidate, "plan", None)
    return mapped


def ram_lower_bound(graph, model="minerva"):
    """Bytes no schedule can do without: computing a node holds its inputs and its output
    (plus the static bytes the model counts)."""
    static = graph.static_bytes if model != "poet" else 0
    return static + max(graph.nodes[k].out_bytes
                        + sum(graph.nodes[p].out_bytes for p in set(graph.preds[k]))
                        for k in range(len(graph)))


def solve_plan(graph, budget, deadline=None, flash_limit=None, model="minerva", solver="cbc",
               time_limit=60.0, threads=2, paging=True, remat=True, name="planned", gap=1e-4):
    """Solve one formulation on the canonical renumbering of ``graph``; returns ``(Candidate or
    None, solve figures)``, the candidate's schedule in ``graph``'s numbering."""
    canonical, order = canonical_graph(graph)
    candidate, figures = _solve_plan(canonical, budget, deadline, flash_limit, model, solver,
                                     time_limit, threads, paging, remat, name, gap)
    return _in_numbering_of(graph, order, candidate), figures


def _solve_plan(graph, budget, deadline=None, flash_limit=None, model="minerva", solver="cbc",
                time_limit=60.0, threads=2, paging=True, remat=True, name="planned", gap=1e-4,
                starts=(), ends=None):
    """:func:`solve_plan` on ``graph`` as numbered. ``starts`` are further feasible plans (e.g.
    of a restricted formulation) to warm-start from when one is better than the heuristic's;
    the candidate keeps its :class:`StagePlan` as ``plan``. ``ends`` (``time.monotonic()``)
    is when the job must be done: the MILPs get at most what is left of it, less
    :data:`FINISH_RESERVE_S`."""
    if ends is not None:
        ends -= FINISH_RESERVE_S
    if model == "poet":
        flash_limit = None  # the published formulation has no flash bound
    limits = _limits(budget, deadline, flash_limit)
    start_plan = _warm_start(graph, budget, deadline, flash_limit, model, paging, remat,
                             solver, time_limit, threads, ends)
    if start_plan is not None and _within(graph, start_plan, model, _floor_j(graph), gap / 2):
        # Between half the gap and the gap the floor does not end the job: it ignores RAM
        # altogether, and the LP bound is far tighter (ResNet-18 on m4: the floor proves the
        # start within 0.94 %, the LP within 0.26 %).
        return _proven_start(graph, start_plan, _floor_j(graph), model, limits, solver, name,
                             "the warm start is at the sum of first computations")
    formulation = _formulation(graph, budget, deadline, flash_limit, model, paging, remat)
    usable = [plan for plan in starts if formulation.start_values(plan) is not None]
    start_plan = _best_start(graph, [start_plan] + usable, budget, deadline, flash_limit, model)
    start = formulation.start_values(start_plan) if start_plan is not None else None
    relaxed = None
    seconds = _seconds_left(ends, time_limit)
    if start is not None and seconds is not None:
        # A solver may be stopped before it reports any bound: CBC takes seconds to take in a
        # start before its root (4.6 s of ResNet-18's 59,359 rows), HiGHS to presolve. The
        # LP relaxation alone is quick, often proves the start well within the gap (half of
        # it, as for the floor: between half and all of it, the MILP may still find a better
        # plan in time), and otherwise is a bound kept.
        began = time.perf_counter()
        relaxed = formulation.total(formulation.model.relaxation_bound(solver, seconds, threads))
        if relaxed is not None and _within(graph, start_plan, model, relaxed, gap / 2):
            return _proven_start(graph, start_plan, relaxed, model, limits, solver, name,
                                 "the LP relaxation proves the warm start within the gap",
                                 formulation, time.perf_counter() - began)
    # The objective leaves out every node's first computation (a constant), so a gap relative
    # to it would be far stricter than the same gap on the iteration's energy.
    abs_gap = gap * formulation.base / formulation.factor
    result = _solve_within(formulation.model, solver, _seconds_left(ends, time_limit), threads,
                           start, gap, abs_gap)
    figures = {"solver": solver, "status": result.status, "seconds": round(result.seconds, 3),
               "objective_j": formulation.total(result.objective),
               "bound_j": formulation.total(result.bound),
               "variables": len(formulation.model.names), "rows": len(formulation.model.rows),
               "warm_start_j": None}
    if start_plan is not None:
        figures["warm_start_j"] = evaluate(graph, start_plan, model)[1]["energy_j"]
    if result.status != "infeasible":
        # A solver stopped before its root bound still leaves the LP's or the floor proven.
        figures["bound_j"] = max(b for b in (figures["bound_j"], relaxed, _floor_j(graph))
                                 if b is not None)
    objective, bound = figures["objective_j"], figures["bound_j"]
    figures["gap"] = (None if objective is None or bound is None
                      else max(0.0, objective - bound) / max(abs(objective), 1e-30))
    if figures["status"] == "optimal" and (figures["gap"] or 0.0) > 1e-6:
        figures["status"] = "within gap"  # the solver stopped at the requested gap
    if result.values is None:
        if start_plan is None:
            return None, figures
        figures["status"] = "warm start only"
        plan = start_plan
    else:
        plan = formulation.plan(result.values)
    candidate = _candidate(graph, name, plan, model, limits, figures)
    replayed = candidate.document["predicted"]["energy_j"]
    if result.values is not None and not _agrees(replayed, objective):
        # The solver's objective is not its plan's (HiGHS has reported a MIP start's
        # objective "in the reduced space" as optimal): solve again without the start and
        # keep the better plan as replayed; its gap is the replay's against the bound.
        figures["reported_objective_j"] = objective
        again = _solve_within(formulation.model, solver, _seconds_left(ends, time_limit),
                              threads, None, gap, abs_gap)
        if again.values is not None:
            other = _candidate(graph, name, formulation.plan(again.values), model, limits,
                               figures)
            if other.feasible and other.document["predicted"]["energy_j"] < replayed:
                candidate, plan = other, formulation.plan(again.values)
                replayed = other.document["predicted"]["energy_j"]
                bound = formulation.total(again.bound) if again.bound is not None else bound
        figures["resolved_without_start"] = True
    if start_plan is not None and result.values is not None and \
            figures["warm_start_j"] < replayed and not _agrees(replayed, figures["warm_start_j"]):
        # Never a plan worse than the start it was given.
        plan = start_plan
        candidate = _candidate(graph, name, plan, model, limits, figures)
        replayed = candidate.document["predicted"]["energy_j"]
    figures["objective_j"] = replayed
    figures["gap"] = None if bound is None else max(0.0, replayed - bound) / max(
        abs(replayed), 1e-30)
    if figures["status"] in ("optimal", "within gap"):
        figures["status"] = "optimal" if figures["gap"] <= 1e-6 else "within gap"
    candidate.document["solver"] = figures
    candidate.plan = plan
    return candidate, figures


def _floor_j(graph):
    """The energy no schedule can beat: every node computed once, nothing paged."""
    return math.fsum(node.compute_j for node in graph.nodes)


def _within(graph, plan, model, bound, gap):
    energy = evaluate(graph, plan, model)[1]["energy_j"]
    return energy - bound <= gap * energy


def _proven_start(graph, plan, bound, model, limits, solver, name, why, formulation=None,
                  seconds=0.0):
    """``(candidate, figures)`` for ``plan`` proven within its gap of ``bound`` without a
    MILP: by the floor (when keeping everything fits, as in POET's README example, this is the
    optimum, and building and solving the MILP of a 133-node graph only to prove it took
    12-20 s) or by the LP relaxation of ``formulation``."""
    energy = evaluate(graph, plan, model)[1]["energy_j"]
    proven = max(0.0, energy - bound) / max(energy, 1e-30)
    sizes = (len(formulation.model.names), len(formulation.model.rows)) if formulation else (0, 0)
    figures = {"solver": solver, "status": "optimal" if proven <= 1e-6 else "within gap",
               "seconds": round(seconds, 3), "objective_j": energy, "bound_j": bound,
               "variables": sizes[0],
               "rows": sizes[1], "warm_start_j": energy, "gap": proven, "presolved": why}
    candidate = _candidate(graph, name, plan, model, limits, figures)
    candidate.document["solver"] = figures
    candidate.plan = plan
    return candidate, figures


def _agrees(a, b, rel=1e-6):
    return a is not None and b is not None and abs(a - b) <= rel * max(abs(a), abs(b), 1e-30)


def minimum_ram(graph, deadline=None, solver="cbc", time_limit=30.0, threads=2):
    """The smallest RAM (bytes, static included) any schedule needs within ``deadline``."""
    graph = canonical_graph(graph)[0]
    least = ram_lower_bound(graph)
    if best_heuristic(graph, least, deadline) is not None:
        return least  # a schedule reaches the bound: no MILP needed
    formulation = Formulation(graph, 0, deadline, goal="ram")
    result = formulation.model.solve(solver, time_limit, threads)
    if result.values is None:
        return None
    # The replay of the plan found is exact (the solver's objective carries rounding dust).
    return evaluate(graph, formulation.plan(result.values))[1]["peak_ram_bytes"]


def minimum_time(graph, budget, flash_limit=None, solver="cbc", time_limit=30.0, threads=2):
    """The shortest iteration (s) of any schedule within ``budget`` bytes."""
    graph = canonical_graph(graph)[0]
    if budget < ram_lower_bound(graph):
        return None
    formulation = Formulation(graph, budget, None, flash_limit, goal="time")
    result = formulation.model.solve(solver, time_limit, threads)
    if result.values is None:
        return None
    return evaluate(graph, formulation.plan(result.values))[1]["time_s"]


def plan_training(graph, budget, deadline=None, flash_limit=None, model="minerva",
                  solver="cbc", time_limit=60.0, threads=2, baselines=True, gap=1e-4):
    """Plan one training iteration of ``graph`` within ``budget`` bytes of RAM (and the deadline
    and flash limit); raises :class:`InfeasibleError` when nothing fits. Schedules are in
    ``graph``'s numbering, planned on its canonical renumbering. ``time_limit`` bounds the
    whole job (within the few seconds a solver may take to stop), not each MILP."""
    ends = time.monotonic() + time_limit
    caller, (graph, order) = graph, canonical_graph(graph)
    # The diagnosis uses the default formulation (for --model poet without static bytes,
    # which that model does not count).
    probe = graph if model != "poet" else TrainingGraph(graph.nodes, graph.edges, 0, graph.name)
    if budget < ram_lower_bound(graph, model):
        # Proven at once, whatever the solver: some node cannot even be computed.
        raise InfeasibleError(budget, deadline, minimum_ram(
            probe, deadline, solver, _last_chance(ends), threads), None)
    # The restricted MILPs (paging only, recomputation only) are much easier; solved first,
    # the better of them warm-starts the full one.
    restricted = []
    if baselines:
        share = time_limit * RESTRICTED_SHARE
        for name, paging, remat in (("remat-only", False, True), ("paging-only", True, False)):
            until = min(time.monotonic() + share + FINISH_RESERVE_S, ends)
            restricted.append((name,) + _solve_plan(graph, budget, deadline, flash_limit, model,
                                                    solver, share, threads, paging, remat, name,
                                                    gap, ends=until))
    starts = [candidate.plan for _, candidate, _ in restricted
              if candidate is not None and candidate.feasible]
    best, figures = _solve_plan(graph, budget, deadline, flash_limit, model, solver, time_limit,
                                threads, name="planned", gap=gap, starts=starts, ends=ends)
    if best is None:
        # What is left goes to naming the least RAM first, then the shortest deadline.
        least = minimum_ram(probe, deadline, solver,
                            max(_last_chance(ends) / 2, MIN_SOLVE_S), threads)
        raise InfeasibleError(budget, deadline, least, minimum_time(
            probe, budget, flash_limit, solver, _last_chance(ends), threads))
    if not best.report.ok:
        raise AssertionError(f"planner produced a schedule its checker rejects: "
                             f"{best.report.errors[:3]}")
    found = []
    if baselines:
        limits = _limits(budget, deadline, flash_limit)
        for name, policy in (("keep-all", keep_all_policy(graph)),
                             ("chen-sqrt", chen_policy(graph))):
            found.append(_candidate(graph, name, policy_plan(graph, policy), model, limits))
        for name, candidate, extra in restricted:
            if candidate is None:
                why = ("infeasible" if extra["status"] == "infeasible"
                       else f"none found in {extra['seconds']:.3g} s")
                candidate = Candidate(name, note=f"no schedule: {why}")
            else:
                candidate.note = f"{extra['status']}, gap {_percent(extra['gap'])}"
            found.append(candidate)
        for candidate in found:
            if candidate.document is not None and not candidate.report.ok and not candidate.note:
                candidate.note = candidate.report.errors[0]
    best.note = f"{figures['status']}, gap {_percent(figures['gap'])}"
    best = _in_numbering_of(caller, order, best)
    if not best.report.ok:
        raise AssertionError(f"renumbered schedule rejected: {best.report.errors[:3]}")
    return PlanResult(best, [_in_numbering_of(caller, order, c) for c in found], figures)


def _percent(gap):
    return "?" if gap is None else f"{100 * gap:.2f}%"
