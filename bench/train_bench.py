"""On-device training with POET schedules: planned vs measured, per budget (docs/training.md).

    python bench/train_bench.py [--iterations 5] [--tiers natmod,python]

For generated conv chains (every op trained) and the digits model (both layers), packed for the
rp2040 profile at several training budgets (the smallest any schedule fits, halfway, and enough
to keep everything), and for the keep-everything and Chen sqrt(n) schedules of the same graph:
the trainer runs each schedule on the MicroPython unix port with the board's heap and reports
the heap it holds at its peak (gc.mem_alloc after a collect at every step) next to the plan's
peak, the time per iteration per kernel tier, the flash bytes it writes per iteration next to
the plan's, and the plan's predicted energy. A baseline "fits" when the independent checker
replays it within the tight budget.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from opmodels import Net, finish  # noqa: E402

from minerva_packager.board.profiles import load_board  # noqa: E402
from minerva_packager.capsule.container import read_capsule  # noqa: E402
from minerva_packager.capsule.pack import pack_tflite  # noqa: E402
from minerva_packager.capsule.trainable import (  # noqa: E402
    TRAINER_RESERVE_BYTES,
    chain,
    chain_graph,
    pack_trainable,
)
from minerva_packager.errors import PackagerError  # noqa: E402
from minerva_packager.poet.checker import check_schedule  # noqa: E402
from minerva_packager.poet.heuristics import chen_policy, keep_all_policy, policy_plan  # noqa
from minerva_packager.poet.schedule import plan_steps, schedule_json  # noqa: E402

BOARD = "rp2040"
MICROPYTHON = Path(sys.executable).parent / "micropython"
NATMOD = ROOT / "dist" / "x64_6.3"

_SCRIPT = """
import sys, gc, time, json
sys.path.insert(0, {device!r})
sys.path.insert(0, {natmod!r})
import minerva
from minerva.trainer import Trainer  # before the model: its code first, on a whole heap
m = minerva.load({cap!r}, kernels="python")
x = bytearray({size})
gc.collect()
base = gc.mem_alloc()
t = Trainer(m, {cap!r}, scratch={scratch!r}, measure=True, kernels={tier!r})
t.learn(x, 1)
peak = t.peak_heap - base
t.measure = False
paged = t.paged_bytes
t0 = time.ticks_us()
for k in range({iterations}):
    t.learn(x, k % 10)
us = time.ticks_diff(time.ticks_us(), t0) / {iterations}
print("JSON " + json.dumps({{"peak": peak, "us": us, "paged": paged, "arena": t.arena_bytes}}))
"""


def conv_chain(tmp, side, in_c, convs, channels, seed=5):
    net = Net(seed)
    x = net.input((1, side, side, in_c))
    for _ in range(convs):
        x = net.conv2d(x, channels, 3, activation="RELU")
    net.softmax(net.fully_connected(x, 10, depth=side * side * channels))
    path = Path(tmp) / f"chain_{side}x{side}x{in_c}_{convs}x{channels}.tflite"
    path.write_bytes(finish(path.stem, net, seed).tflite)
    return path


def run_schedule(tmp, tflite, extra, document, tier, iterations):
    """The measured figures of ``document`` run by the trainer (one capsule per schedule)."""
    sections = [extra[0], ("TRAIN_SCHEDULE", json.dumps(document).encode(), False)]
    cap = Path(tmp) / "bench.cap"
    cap.write_bytes(pack_tflite(str(tflite), extra_sections=sections))
    capsule = read_capsule(cap)
    size = capsule.tensors[capsule.inputs[0]].nbytes
    script = _SCRIPT.format(device=str(ROOT / "device"), natmod=str(NATMOD), cap=str(cap),
                            scratch=str(Path(tmp) / "scratch"), size=size, tier=tier,
                            iterations=iterations)
    heap = load_board(BOARD)["heap_bytes"]
    proc = subprocess.run([str(MICROPYTHON), "-X", f"heapsize={heap}", "-c", script],
                          capture_output=True, text=True, timeout=3600)
    if proc.returncode:
        return {"error": (proc.stderr or proc.stdout).strip().splitlines()[-1]}
    return json.loads([line for line in proc.stdout.splitlines()
                       if line.startswith("JSON ")][0][5:])


def schedules(tflite, trainable):
    """[(name, budget or None, schedule document)]: planned at three budgets, and the two
    baselines; plus the graph's JSON and the tight budget."""
    board = load_board(BOARD)
    try:
        pack_trainable(str(tflite), trainable, BOARD, train_ram=1)
    except PackagerError as exc:
        tight = int(str(exc).split("works is ")[1].split()[0])
    data = pack_tflite(str(tflite))
    capsule = read_capsule(data)
    indices, loss = chain(capsule, trainable)
    graph = chain_graph(capsule, indices, loss, board)
    baselines = []
    for name, policy in (("keep-all", keep_all_policy(graph)), ("chen-sqrt",
                                                                 chen_policy(graph))):
        steps = plan_steps(graph, policy_plan(graph, policy), "minerva")
        doc = schedule_json(graph, steps, "minerva", {"ram_bytes": tight -
                                                      TRAINER_RESERVE_BYTES,
                                                      "deadline_s": None, "flash_bytes": None},
                            name=name)
        doc["chain_ops"] = indices
        baselines.append((name, None, doc))
    roomy = baselines[0][2]["predicted"]["peak_ram_bytes"] + TRAINER_RESERVE_BYTES
    out = []
    extra = None
    for label, budget in (("planned, tight", tight), ("planned, halfway",
                                                      (tight + roomy) // 2),
                          ("planned, roomy", roomy)):
        extra = pack_trainable(str(tflite), trainable, BOARD, train_ram=budget)
        out.append((label, budget, json.loads(extra[1][1])))
    return out + baselines, graph.to_json(), tight, extra


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--tiers", default="natmod,python")
    args = parser.parse_args(argv)
    tiers = args.tiers.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        models = [("conv chain 8x8x32, 3 conv x 4 + FC", conv_chain(tmp, 8, 32, 3, 4), "all"),
                  ("conv chain 10x10x16, 4 conv x 4 + FC", conv_chain(tmp, 10, 16, 4, 4),
                   "all"),
                  ("digits 64-32-10", ROOT / "capsules" / "digits.tflite", "all")]
        header = ("| model | schedule | budget B | fits tight | planned peak B | measured peak B "
                  "| flash B/iter planned | measured | energy uJ/iter | remat | "
                  + " | ".join(f"{t} ms/iter" for t in tiers) + " |")
        print(header)
        print("|" + "---|" * (header.count("|") - 1))
        for title, tflite, trainable in models:
            found, graph_doc, tight, extra = schedules(tflite, trainable)
            for name, budget, doc in found:
                p = doc["predicted"]
                fits = check_schedule(graph_doc, {**doc, "limits": {
                    "ram_bytes": tight - TRAINER_RESERVE_BYTES, "deadline_s": None,
                    "flash_bytes": None}}).ok
                measured = {t: run_schedule(tmp, tflite, extra, doc, t, args.iterations)
                            for t in tiers}
                first = measured[tiers[0]]
                if "error" in first:
                    print(f"| {title} | {name} | | | | {first['error']} |")
                    continue
                times = " | ".join(f"{measured[t]['us'] / 1000:.2f}" if "us" in measured[t]
                                   else measured[t]["error"] for t in tiers)
                print(f"| {title} | {name} | {budget or '-'} | {'yes' if fits else 'no'} | "
                      f"{p['peak_ram_bytes']} | {first['peak']} | {p['flash_bytes_written']} | "
                      f"{first['paged']} | {p['energy_j'] * 1e6:.2f} | {p['recomputations']} "
                      f"| {times} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
