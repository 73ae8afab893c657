"""``minerva plan``: the POET training planner (docs/poet.md)."""

import contextlib
import json
import sys
import threading
import time

import click

from ..board.profiles import names_help
from ..errors import PackagerError, count
from ..poet.lp import SOLVERS
from ..poet.schedule import MODELS


@click.command()
@click.argument("model", required=False, type=click.Path(dir_okay=False))
@click.option("--graph", "graph_path", type=click.Path(dir_okay=False),
              help="Plan a training graph JSON file (docs/poet.md) instead of a model.")
@click.option("-b", "--board", help="Board whose costs, RAM and flash to plan for: "
              + names_help() + ".")
@click.option("--trainable", default="all", show_default=True,
              help="Layers to train: 'all' or 'last:K'.")
@click.option("--ram", type=int, help="RAM budget in bytes (default: the board's heap less the "
              "runtime and the application reserve, as for pack).")
@click.option("--deadline", type=float, help="Time limit for one iteration, in seconds.")
@click.option("--flash-bytes", type=int,
              help="Flash bytes one iteration may write (default: the board's filesystem).")
@click.option("--model", "cost_model", type=click.Choice(MODELS), default="minerva",
              show_default=True, help="'poet' is the published formulation, unchanged.")
@click.option("--solver", type=click.Choice(SOLVERS), default="cbc", show_default=True)
@click.option("--time-limit", type=float, default=60.0, show_default=True,
              help="Time limit for the whole planning job (all its MILPs), in seconds.")
@click.option("--threads", type=int, default=2, show_default=True)
@click.option("--gap", type=float, default=1e-4, show_default=True,
              help="Stop when the energy is proven within this relative gap of the optimum.")
@click.option("--no-baselines", is_flag=True, help="Skip the baseline schedules.")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write the schedule JSON here.")
@click.option("--capsule-out", type=click.Path(dir_okay=False),
              help="Write MODEL as a capsule with the schedule in its TRAIN_SCHEDULE section.")
@click.option("--plot", type=click.Path(dir_okay=False), help="Draw RAM over time (PNG).")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@click.option("--app-reserve", type=int, help="Heap left for your application when the budget "
              "comes from --board (default 16384 bytes, as for pack).")
def plan(model, graph_path, board, trainable, ram, deadline, flash_bytes, cost_model, solver,
         time_limit, threads, gap, no_baselines, output, capsule_out, plot, as_json,
         app_reserve):
    """Plan rematerialization and paging for training MODEL (.cap or .tflite) on a board."""
    from ..poet.api import load_training_graph, run_plan

    if (model is None) == (graph_path is None):
        raise PackagerError("give either MODEL or --graph", "minerva plan model.cap --board "
                            "rp2040, or minerva plan --graph g.json --ram 65536")
    if capsule_out and model is None:
        raise PackagerError("--capsule-out needs MODEL", "plan a .cap or .tflite")
    graph, profile = load_training_graph(model, graph_path, board, trainable)
    with solving(f"planning {graph.name} with {solver}", time_limit):
        outcome = run_plan(graph, profile, ram, deadline, flash_bytes, cost_model, solver,
                           time_limit, threads, not no_baselines, output, plot, model,
                           capsule_out, gap, app_reserve)
    if as_json:
        click.echo(json.dumps({"plan": outcome.result.table(), "solve": outcome.result.solve},
                              indent=2))
    else:
        click.echo(f"Planning {graph.name}: {count(len(graph), 'node')}, "
                   f"{count(len(graph.edges), 'edge')}, "
                   f"{graph.static_bytes} static bytes, model {cost_model}")
        click.echo(outcome.text)
    for path in outcome.written:
        # With --json, stdout carries the JSON document alone.
        click.echo(f"wrote {path}", err=as_json)


@contextlib.contextmanager
def solving(label, limit, stream=None, interval=1.0, force=False):
    """While the block runs, ``label: 12 s of at most 60 s`` on ``stream`` (stderr), redrawn
    every ``interval`` seconds and erased after; only on a terminal unless ``force``."""
    stream = stream or sys.stderr
    if not (force or stream.isatty()):
        yield
        return
    done = threading.Event()
    start = time.monotonic()

    def tick():
        while not done.wait(interval):
            stream.write(f"\r{label}: {time.monotonic() - start:.0f} s of at most "
                         f"{limit:g} s per solve")
            stream.flush()

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    try:
        yield
    finally:
        done.set()
        ticker.join()
        stream.write("\r\x1b[K")
        stream.flush()


COMMANDS = [plan]
