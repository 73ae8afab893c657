"""What ``minerva plan`` does, as functions: load the graph, plan, write the outputs."""

import json
from pathlib import Path

from ..capsule.memory import available_bytes
from ..errors import PackagerError
from .graph import load_graph
from .planner import plan_training
from .report import capsule_with_schedule, format_result


class Outcome:
    """``result`` (:class:`PlanResult`), ``text`` (the printed report), ``written`` (paths)."""

    def __init__(self, result, text, written):
        self.result, self.text, self.written = result, text, written


def load_training_graph(model=None, graph_path=None, board=None, trainable="all"):
    """The training graph (from a graph JSON file or a model) and the board profile (or None)."""
    from ..board.profiles import load_board

    profile = load_board(board) if board else None
    if graph_path is not None:
        return load_graph(graph_path), profile
    if profile is None:
        raise PackagerError(f"{model}: planning a model needs --board",
                            "the board profile gives the energy and time of each MAC and byte")
    from .model_graph import model_training_graph

    return model_training_graph(model, profile, trainable), profile


def run_plan(graph, profile=None, ram=None, deadline=None, flash_bytes=None, model="minerva",
             solver="cbc", time_limit=60.0, threads=2, baselines=True, output=None, plot=None,
             source=None, capsule_out=None, gap=1e-4, app_reserve=None):
    """Plan ``graph`` and write the requested files; limits default to the board's (its heap
    less the runtime and ``app_reserve``, as for pack)."""
    if ram is None:
        if profile is None:
            raise PackagerError("no RAM budget", "give --ram BYTES or --board NAME")
        # The heap the packer and the loader count on too (capsule/memory.py).
        ram = available_bytes(profile, app_reserve)
    if flash_bytes is None and profile is not None and model != "poet":
        flash_bytes = int(profile.get("filesystem", {}).get("size", 0)) or None
    result = plan_training(graph, ram, deadline, flash_bytes, model, solver, time_limit,
                           threads, baselines, gap)
    written = []
    if output:
        Path(output).write_text(json.dumps(result.best.document, indent=1))
        written.append(output)
    if capsule_out:
        from ..capsule.container import write_atomic

        write_atomic(capsule_out, capsule_with_schedule(source, result.best.document))
        written.append(capsule_out)
    if plot:
        from .plot import plot_ram

        plot_ram(graph, [result.best] + result.baselines, plot, ram)
        written.append(plot)
    return Outcome(result, format_result(result, ram, deadline), written)
