"""POET's built-in instances (minerva_packager.poet.published: linear, VGG16, ResNet-18 CIFAR,
the one-block transformer, on POET's m0, m4 and a72 platforms, with the published budgets where
there are some) planned by both cost models on CBC and HiGHS: one row per (instance, model,
solver) with status, proven gap, time and energy, next to what POET's own code does.

    .venv/bin/python bench/poet_published.py [--time-limit 30] [--gap 0.01] [--quick]
        [--instances linear-m0,resnet18_cifar-m4] [--models minerva,poet] [--solvers cbc,highs]

"POET's CBC" is POET's repository run as published (PuLP's CBC, no time limit, 4 threads):
what it did on this machine is recorded in POET_CBC. Timings are wall-clock on a 2-core
machine; the time column is the whole planning job (warm start, restricted MILPs, the MILP,
replay and check), not the MILP alone.
"""

import argparse
import time

from minerva_packager.poet.planner import InfeasibleError, plan_training
from minerva_packager.poet.published import INSTANCES, poet_instance

# What POET's own code (github.com/ShishirPatil/poet at 6e63098, solver "pulp-cbc") did here.
POET_CBC = {
    "resnet18_cifar-a72": "no schedule in 900 s (stopped)",
}
QUICK = ("linear-m0", "transformer-a72", "vgg16-a72-1MB", "resnet18_cifar-a72")


def run(instance, model, solver, args):
    began = time.perf_counter()
    try:
        result = plan_training(instance.graph, instance.ram, instance.deadline, model=model,
                               solver=solver, time_limit=args.time_limit, threads=args.threads,
                               baselines=not args.no_baselines, gap=args.gap)
    except InfeasibleError as exc:
        least = "?" if exc.min_ram_bytes is None else f"{int(exc.min_ram_bytes):,}"
        return {"status": "infeasible", "total_s": time.perf_counter() - began,
                "note": f"least RAM {least} B"}
    solve, predicted = result.solve, result.best.document["predicted"]
    return {"status": solve["status"] + ("" if result.best.report.ok else " (REJECTED)"),
            "total_s": time.perf_counter() - began, "solve_s": solve["seconds"],
            "gap": solve["gap"], "energy_j": predicted["energy_j"],
            "note": f"{predicted['recomputations']} remat, {predicted['page_ins']} page-ins"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=float, default=30.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--gap", type=float, default=0.01)
    parser.add_argument("--instances", default=",".join(INSTANCES))
    parser.add_argument("--models", default="minerva,poet")
    parser.add_argument("--solvers", default="cbc,highs")
    parser.add_argument("--no-baselines", action="store_true",
                        help="skip the restricted MILPs that warm-start the full one")
    parser.add_argument("--quick", action="store_true",
                        help=f"CI size: {', '.join(QUICK)}; 10 s limit; minerva model only")
    args = parser.parse_args()
    names = args.instances.split(",")
    models = args.models.split(",")
    if args.quick:
        names, models, args.time_limit = list(QUICK), ["minerva"], min(args.time_limit, 10.0)
    header = (f"{'instance':<20} {'nodes':>5} {'RAM B':>11} {'deadline s':>10} {'model':<7} "
              f"{'solver':<6} {'status':<16} {'gap %':>7} {'MILP s':>7} {'total s':>7} "
              f"{'energy J':>11}  note")
    print(header)
    print("-" * len(header))
    for name in names:
        instance = poet_instance(name)
        for model in models:
            for solver in args.solvers.split(","):
                row = run(instance, model, solver, args)
                gap = "-" if row.get("gap") is None else f"{100 * row['gap']:.3f}"
                energy = "-" if "energy_j" not in row else f"{row['energy_j']:.6g}"
                milp = "-" if "solve_s" not in row else f"{row['solve_s']:.1f}"
                print(f"{name:<20} {len(instance.graph):>5} {instance.ram:>11,} "
                      f"{instance.deadline:>10.4g} {model:<7} {solver:<6} {row['status']:<16} "
                      f"{gap:>7} {milp:>7} {row['total_s']:>7.1f} {energy:>11}  {row['note']}",
                      flush=True)
        if name in POET_CBC:
            print(f"{name:<20} POET's own code, CBC: {POET_CBC[name]}", flush=True)


if __name__ == "__main__":
    main()
