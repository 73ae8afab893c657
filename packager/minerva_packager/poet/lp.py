"""A small sparse MILP container solved by CBC (through pulp) or HiGHS (through highspy).

The planner builds its formulations here once and hands them to either solver with the same
warm start, and reads back the incumbent, the solver's best bound and the solve time.
"""

import contextlib
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..errors import PackagerError

SOLVERS = ("cbc", "highs")
LARGE_ROWS = 10000


class SolveResult:
    """``status`` is "optimal", "feasible" (stopped with an incumbent), "infeasible" or
    "unknown" (stopped without one); ``gap`` is relative, from the proven bound."""

    def __init__(self, status, values, objective, bound, seconds, solver):
        self.status = status
        self.values = values
        self.objective = objective
        self.bound = bound
        self.seconds = seconds
        self.solver = solver

    @property
    def gap(self):
        if self.objective is None or self.bound is None:
            return None
        return max(0.0, self.objective - self.bound) / max(abs(self.objective), 1e-12)


class LinearModel:
    """Variables, ``<=``/``>=``/``==`` rows over them, and a linear objective to minimise."""

    def __init__(self):
        self.names, self.lower, self.upper, self.integer = [], [], [], []
        self.rows = []
        self.objective = {}

    def var(self, name, lower=0.0, upper=1.0, integer=True):
        self.names.append(name)
        self.lower.append(float(lower))
        self.upper.append(float(upper))
        self.integer.append(bool(integer))
        return len(self.names) - 1

    def add(self, terms, sense, rhs):
        """Add ``sum(coef * var for var, coef in terms) <sense> rhs``; merges repeated vars."""
        merged = {}
        for index, coef in terms:
            merged[index] = merged.get(index, 0.0) + coef
        # Rows are normalised to a largest coefficient of 1: it keeps the LP well conditioned.
        largest = max([abs(c) for c in merged.values()] + [0.0])
        if largest > 0:
            merged = {index: coef / largest for index, coef in merged.items()}
            rhs = rhs / largest
        self.rows.append((merged, sense, float(rhs)))

    def minimise(self, terms):
        for index, coef in terms:
            self.objective[index] = self.objective.get(index, 0.0) + coef

    def relaxed(self):
        """This model with every column continuous (the rows are shared, not copied)."""
        other = LinearModel()
        other.names, other.lower, other.upper = self.names, self.lower, self.upper
        other.rows, other.objective = self.rows, self.objective
        other.integer = [False] * len(self.names)
        return other

    def relaxation_bound(self, solver="cbc", time_limit=60.0, threads=2):
        """The LP relaxation's optimum, a lower bound on the MILP's; None when the solver
        did not prove it within ``time_limit`` (an unfinished LP's objective bounds nothing)."""
        result = self.relaxed().solve(solver, time_limit, threads, None, 0.0, 0.0)
        return result.objective if result.status == "optimal" else None

    def solve(self, solver="cbc", time_limit=60.0, threads=2, start=None, gap=1e-4,
              abs_gap=0.0):
        """Solve until the proven relative ``gap`` (or absolute ``abs_gap``) or ``time_limit``;
        ``start`` is a full list of variable values (a feasible warm start)."""
        if start is not None:
            start = [min(max(value, lo), up)
                     for value, lo, up in zip(start, self.lower, self.upper)]
        if solver == "highs":
            return _solve_highs(self, time_limit, threads, start, gap, abs_gap)
        return _solve_cbc(self, time_limit, threads, start, gap, abs_gap)


def _solve_cbc(model, time_limit, threads, start, gap, abs_gap):
    """CBC through pulp's model writer and bundled binary, held to its time limit within
    a few seconds (:func:`_run_within`); when it had to be killed, the warm start is used.
    Writing the model counts against the limit."""
    import pulp

    writing = time.perf_counter()
    problem = pulp.LpProblem("poet", pulp.LpMinimize)
    # PuLP 3.3 deprecates free-standing LpVariable for add_variable; older PuLP lacks it.
    make = getattr(problem, "add_variable", None) or pulp.LpVariable
    variables = [make(f"x{i}", lo, up, cat=pulp.LpInteger if integer else pulp.LpContinuous)
                 for i, (lo, up, integer) in enumerate(zip(model.lower, model.upper,
                                                           model.integer))]
    problem += pulp.LpAffineExpression([(variables[i], c) for i, c in model.objective.items()])
    senses = {"<=": pulp.LpConstraintLE, ">=": pulp.LpConstraintGE, "==": pulp.LpConstraintEQ}
    for number, (terms, sense, rhs) in enumerate(model.rows):
        expr = pulp.LpAffineExpression([(variables[i], c) for i, c in terms.items()])
        problem.addConstraint(pulp.LpConstraint(expr, senses[sense], rhs=rhs), f"c{number}")
    command = _cbc_command(pulp)
    with tempfile.TemporaryDirectory() as tmp:
        mps, solution, mst = (str(Path(tmp) / name) for name in ("m.mps", "m.sol", "m.mst"))
        vs, names, row_names, _ = problem.writeMPS(mps, rename=1)
        args = [command.path, mps]
        if start is not None:
            for variable, value in zip(variables, start):
                variable.varValue = round(value) if variable.cat == pulp.LpInteger else value
            command.writesol(mst, problem, vs, names, row_names)
            args += ["-mips", mst]
        if start is not None:
            # The feasibility pump only looks for a first incumbent, which the start is.
            args += ["-feas", "off"]
        if len(model.rows) > LARGE_ROWS:
            # CBC's preprocessing (probing) spends minutes on these models before the root
            # (a 145-node ResNet: over 120 s, without it the whole solve takes 20 s).
            args += ["-preprocess", "off"]
        time_limit = max(time_limit - (time.perf_counter() - writing), 0.5)
        args += ["-sec", str(time_limit), "-threads", str(threads), "-timeMode", "elapsed",
                 "-ratioGap", str(gap), "-allowableGap", str(abs_gap), "-solve",
                 "-printingOptions", "all", "-solution", solution]
        began = time.perf_counter()
        log = _run_within(args, time_limit)
        seconds = time.perf_counter() - began
        if log is None:
            return SolveResult("unknown", None, None, None, seconds, "cbc")
        if "Problem is infeasible" in log:
            return SolveResult("infeasible", None, None, None, seconds, "cbc")
        if not Path(solution).exists():
            return SolveResult("unknown", None, None, _cbc_bound(log), seconds, "cbc")
        status, values, *_rest, sol_status = command.readsol_MPS(solution, problem, vs, names,
                                                                  row_names)
    if status == pulp.LpStatusInfeasible or "infeasible" in log.split("Result -")[-1][:80]:
        return SolveResult("infeasible", None, None, None, seconds, "cbc")
    if sol_status not in (1, 2) or "No feasible solution found" in log:
        return SolveResult("unknown", None, None, _cbc_bound(log), seconds, "cbc")
    # A column in no row gets no value from CBC; it sits at its lower bound.
    result = [values.get(v.name, lo) for v, lo in zip(variables, model.lower)]
    result = [lo if v is None else v for v, lo in zip(result, model.lower)]
    objective = sum(model.objective.get(i, 0.0) * v for i, v in enumerate(result))
    optimal = "Optimal solution found" in log
    if not any(model.integer):
        # An LP: CBC ends with its simplex's own line, and no branch and bound follows.
        optimal = "Optimal - objective value" in log
    bound = _cbc_bound(log)
    if optimal and "Cbc0011I" not in log and "within gap" not in log:
        # A search CBC completed proves its incumbent optimal; the log's last "best possible"
        # is an earlier (often the root's) bound, far lower.
        bound = objective
    elif optimal:
        # Stopped at the allowed gap: that much is proven, whatever the log printed last.
        proven = objective - max(abs_gap, gap * abs(objective))
        bound = proven if bound is None else max(bound, proven)
    bound = None if bound is None else min(bound, objective)
    return SolveResult("optimal" if optimal else "feasible", result, objective, bound, seconds,
                       "cbc")


# CBC looks at -sec only between phases and can overrun it many times over inside a large
# root LP (or while it checks a MIP start); SIGINT_AFTER_S past the limit it gets SIGINT (it
# stops like at its own limit and writes its best solution), and if it has not ended
# STOP_GRACE_S later, SIGKILL.
SIGINT_AFTER_S = 0.5
STOP_GRACE_S = 2.0


def _run_within(args, time_limit):
    """CBC's log, or None when it had to be killed (then there is no solution file)."""
    import signal

    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    try:
        return process.communicate(timeout=time_limit + SIGINT_AFTER_S)[0]
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)
    try:
        return process.communicate(timeout=STOP_GRACE_S)[0]
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        return None


def _cbc_command(pulp):
    """The CBC binary bundled with pulp (or cbc on PATH), driven through COIN_CMD:
    PULP_CBC_CMD, which does the same, is deprecated from PuLP 3.3."""
    import shutil

    from pulp.apis import coin_api

    bundled = getattr(coin_api, "pulp_cbc_path", None)
    path = bundled if bundled and Path(bundled).exists() else shutil.which("cbc")
    if path is None:
        raise PackagerError("no CBC binary: pulp's bundled cbc is missing and cbc is not on PATH",
                            "reinstall pulp, put cbc on PATH, or use --solver highs")
    return pulp.COIN_CMD(path=path, msg=False)


def _cbc_bound(log):
    """CBC's best bound from its log ("Lower bound:" in the summary, else "best possible")."""
    for pattern in (r"Lower bound:\s+(-?[\d.eE+-]+)", r"best possible (-?[\d.eE+-]+)"):
        found = re.findall(pattern, log)
        if found:
            try:
                return float(found[-1])
            except ValueError:
                continue
    return None


_highs_threads = None
# Further HiGHS options for every solve (name -> value).
HIGHS_OPTIONS = {}


@contextlib.contextmanager
def _stdout_to_stderr():
    # HiGHS writes its banner to the process's stdout from C++ whatever output_flag says;
    # stdout is the plan's JSON in `minerva plan --json`, so the banner goes to stderr.
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _solve_highs(model, time_limit, threads, start, gap, abs_gap):
    with _stdout_to_stderr():
        return _run_highs(model, time_limit, threads, start, gap, abs_gap)


def _run_highs(model, time_limit, threads, start, gap, abs_gap):
    import highspy
    import numpy as np

    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    highs.setOptionValue("time_limit", float(time_limit))
    highs.setOptionValue("threads", int(threads))
    highs.setOptionValue("mip_rel_gap", float(gap))
    highs.setOptionValue("mip_abs_gap", float(abs_gap))
    for option, value in HIGHS_OPTIONS.items():
        highs.setOptionValue(option, value)
    count = len(model.names)
    costs = np.zeros(count)
    for index, coef in model.objective.items():
        costs[index] = coef
    highs.addCols(count, costs, np.array(model.lower), np.array(model.upper), 0,
                  np.array([], dtype=np.int32), np.array([], dtype=np.int32), np.array([]))
    integers = np.array([i for i in range(count) if model.integer[i]], dtype=np.int32)
    if len(integers):
        highs.changeColsIntegrality(len(integers), integers,
                                    np.full(len(integers), highspy.HighsVarType.kInteger))
    lows, ups, starts, indices, values = [], [], [], [], []
    for terms, sense, rhs in model.rows:
        lows.append(rhs if sense in (">=", "==") else -highspy.kHighsInf)
        ups.append(rhs if sense in ("<=", "==") else highspy.kHighsInf)
        starts.append(len(indices))
        indices.extend(terms.keys())
        values.extend(terms.values())
    highs.addRows(len(lows), np.array(lows), np.array(ups), len(indices),
                  np.array(starts, dtype=np.int32), np.array(indices, dtype=np.int32),
                  np.array(values, dtype=float))
    if start is not None:
        solution = highspy.HighsSolution()
        solution.col_value = [float(v) for v in start]
        solution.value_valid = True
        highs.setSolution(solution)
    global _highs_threads
    if _highs_threads not in (None, int(threads)):
        # HiGHS keeps one thread pool per process and refuses to run when a later call asks
        # for another size, so the pool is rebuilt for it.
        highspy.Highs.resetGlobalScheduler(True)
    _highs_threads = int(threads)
    began = time.perf_counter()
    run_status = highs.run()
    seconds = time.perf_counter() - began
    status = highs.getModelStatus()
    if run_status == highspy.HighsStatus.kError:
        raise RuntimeError(f"HiGHS failed to run ({highs.modelStatusToString(status)})")
    info = highs.getInfo()
    if status == highspy.HighsModelStatus.kInfeasible:
        return SolveResult("infeasible", None, None, None, seconds, "highs")
    bound = info.mip_dual_bound
    bound = None if bound is None or not math.isfinite(bound) else bound
    if info.primal_solution_status != 2:
        return SolveResult("unknown", None, None, bound, seconds, "highs")
    values = list(highs.getSolution().col_value)
    objective = info.objective_function_value
    optimal = status == highspy.HighsModelStatus.kOptimal
    if bound is None and optimal:
        bound = objective  # an LP solved to optimality: HiGHS sets no MIP bound for it
    # Stopped (a time limit) before any bound of its own, HiGHS has proven nothing about its
    # incumbent, which may just be the start it was given: no bound, not the objective.
    return SolveResult("optimal" if optimal else "feasible", values, objective,
                       None if bound is None else min(bound, objective), seconds, "highs")
