"""POET's README example (ResNet-18 CIFAR, Raspberry Pi 4 profile, 3 MB, runtime budget 7.6)
and tighter budgets, planned with both cost models on CBC and HiGHS; one row per (budget,
solver, model).

    .venv/bin/python bench/poet_published.py [--time-limit 60] [--gap 0.01]

The graph is minerva_packager.poet.published (built from POET's sources). Takes a few minutes
(CBC on the POET model runs up to twice the time limit before its warm start is kept).
"""

import argparse

from minerva_packager.poet.heuristics import evaluate, keep_all_policy, policy_plan
from minerva_packager.poet.planner import InfeasibleError, plan_training
from minerva_packager.poet.published import (
    RAM_BUDGET,
    RUNTIME_BUDGET_S,
    poet_resnet18_cifar_graph,
)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--gap", type=float, default=0.01)
    parser.add_argument("--budgets", default=f"{RAM_BUDGET},1000000,500000",
                        help="RAM budgets in bytes; the README's is the first")
    parser.add_argument("--solvers", default="cbc,highs")
    args = parser.parse_args()
    graph = poet_resnet18_cifar_graph()
    keep = evaluate(graph, policy_plan(graph, keep_all_policy(graph)), "poet")[1]
    print(f"# {graph.name}: {len(graph)} nodes, {len(graph.edges)} edges; RAM {RAM_BUDGET} "
          f"bytes, deadline {RUNTIME_BUDGET_S:.6g} s; keep-all {keep['energy_j']:.6g} J, "
          f"{keep['peak_ram_bytes']} bytes, {keep['time_s']:.6g} s")
    header = (f"{'budget':>8} {'solver':<6} {'model':<8} {'status':<16} {'solve s':>8} "
              f"{'gap %':>7} {'energy J':>10} {'peak RAM':>9} {'time s':>8}")
    print(header)
    print("-" * len(header))
    runs = [(int(budget), solver, model) for budget in args.budgets.split(",")
            for solver in args.solvers.split(",") for model in ("poet", "minerva")]
    for budget, solver, model in runs:
        label = f"{budget:>8} {solver:<6} {model:<8}"
        try:
            result = plan_training(graph, budget, RUNTIME_BUDGET_S, model=model, solver=solver,
                                   time_limit=args.time_limit, threads=args.threads,
                                   baselines=False, gap=args.gap)
        except InfeasibleError as exc:
            print(f"{label} no schedule: {exc}", flush=True)
            continue
        solve, predicted = result.solve, result.best.document["predicted"]
        gap = "-" if solve["gap"] is None else f"{100 * solve['gap']:.3f}"
        status = solve["status"] + ("" if result.best.report.ok else " (REJECTED)")
        print(f"{label} {status:<16} {solve['seconds']:>8.2f} {gap:>7} "
              f"{predicted['energy_j']:>10.6f} {predicted['peak_ram_bytes']:>9} "
              f"{predicted['time_s']:>8.4f}", flush=True)

if __name__ == "__main__":
    main()
