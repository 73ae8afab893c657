"""POET planner benchmark: energy vs baselines, solve time and proven gap, CBC and HiGHS.

Training graphs of the shared models (KWS, IC, AD; last 2 layers and full), synthetic chains
and ResNet-like graphs of 25-150 nodes, and POET's ResNet-18 (CIFAR) and VGG16 built from its
published facts on its m4 and a72 profiles (minerva_packager.poet.published; their published
budgets are in bench/poet_published.py), each at several RAM budgets between the least RAM any
schedule needs and what keeping everything needs, without a deadline. Prints one table row per
(graph, budget, solver). Takes several minutes (--quick: the small graphs only); not part of
the tests.

    .venv/bin/python bench/poet_bench.py [--time-limit 60] [--quick] [--solvers cbc,highs]
"""

import argparse
import sys
from pathlib import Path

from minerva_packager.board.profiles import board_names, load_board
from minerva_packager.poet.graph import TrainingGraph
from minerva_packager.poet.heuristics import evaluate, keep_all_policy, policy_plan
from minerva_packager.poet.model_graph import model_training_graph
from minerva_packager.poet.planner import InfeasibleError, minimum_ram, plan_training
from minerva_packager.poet.published import poet_graph
from minerva_packager.poet.training import chain_layers, resnet_layers, training_graph

MODELS = Path(__file__).resolve().parents[2] / "shared" / "models"
FALLBACK_BOARD = {"energy": {"compute_j_per_mac": 3.96e-9, "flash_read_j_per_byte": 3.3e-8,
                             "flash_write_j_per_byte": 1.031e-7},
                  "timing": {"compute_s_per_mac": 4.8e-8, "flash_read_s_per_byte": 2.5e-7,
                             "flash_write_s_per_byte": 1.563e-6}}


def graphs(board, quick):
    found = []
    if MODELS.is_dir():
        for stem in ("kws01_dscnn_int8", "ic01_resnet8_int8", "ad01_fc_autoencoder_int8"):
            for trainable in ("last:2", "all"):
                graph = model_training_graph(MODELS / f"{stem}.tflite", board, trainable)
                found.append((f"{stem.split('_')[0]} {trainable}", graph))
    else:
        print(f"# {MODELS} is absent: shared models skipped", file=sys.stderr)
    chains = (12, 37, 74) if not quick else (12, 37)
    for depth in chains:
        graph = training_graph(chain_layers(depth, shrink_every=depth // 4), board)
        found.append((f"chain {len(graph)}", graph))
    for blocks in ((3, 12, 23) if not quick else (3, 12)):
        graph = training_graph(resnet_layers(blocks), board)
        found.append((f"resnet {len(graph)}", graph))
    if not quick:
        for model, label in (("resnet18_cifar", "poet-r18"), ("vgg16", "poet-vgg16")):
            for platform in ("m4", "a72"):
                found.append((f"{label} {platform}", poet_graph(model, platform)))
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--gap", type=float, default=0.01,
                        help="relative gap at which the solvers stop (the target is 1%%)")
    parser.add_argument("--solvers", default="cbc,highs")
    parser.add_argument("--budgets", default="0.0,0.5", help="fractions of (keep-all - least)")
    parser.add_argument("--quick", action="store_true", help="skip the largest graphs")
    parser.add_argument("--model", default="minerva", choices=("minerva", "poet"))
    parser.add_argument("--only", default="", help="run only graphs whose label contains this")
    args = parser.parse_args()
    board = load_board("rp2040") if "rp2040" in board_names() else FALLBACK_BOARD
    header = (f"{'graph':<16} {'nodes':>5} {'budget':>8} {'solver':<6} {'status':<16} "
              f"{'solve s':>7} {'gap %':>7} {'energy J':>10} {'keep-all':>9} {'chen':>9} "
              f"{'remat':>9} {'paging':>9}")
    print(header)
    print("-" * len(header))
    for label, graph in graphs(board, args.quick):
        if args.only not in label:
            continue
        if args.model == "poet":
            # POET's model counts no static RAM: budgets are its own, or they would be loose.
            graph = TrainingGraph(graph.nodes, graph.edges, 0, graph.name)
        least = minimum_ram(graph, solver="highs", time_limit=args.time_limit)
        keep = evaluate(graph, policy_plan(graph, keep_all_policy(graph)))[1]["peak_ram_bytes"]
        budgets = sorted({int(least + float(f) * (keep - least))
                          for f in args.budgets.split(",")})
        for budget in budgets:
            for solver in args.solvers.split(","):
                try:
                    result = plan_training(graph, budget, model=args.model, solver=solver,
                                           time_limit=args.time_limit, threads=args.threads,
                                           gap=args.gap)
                except InfeasibleError as exc:
                    print(f"{label:<16} {len(graph):>5} {budget:>8} {solver:<6} no schedule: "
                          f"{exc}", flush=True)
                    continue
                solve, energy = result.solve, result.best.document["predicted"]["energy_j"]
                ratios = []
                for baseline in result.baselines:
                    if baseline.feasible:
                        other = baseline.document["predicted"]["energy_j"]
                        ratios.append(f"{other / energy:.3f}x")
                    else:
                        ratios.append("over" if baseline.document else "none")
                gap = "?" if solve["gap"] is None else f"{100 * solve['gap']:.3f}"
                print(f"{label:<16} {len(graph):>5} {budget:>8} {solver:<6} "
                      f"{solve['status']:<16} {solve['seconds']:>7.1f} {gap:>7} "
                      f"{energy:>10.4g} {ratios[0]:>9} {ratios[1]:>9} {ratios[2]:>9} "
                      f"{ratios[3]:>9}", flush=True)


if __name__ == "__main__":
    main()
