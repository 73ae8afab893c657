"""``minerva pack`` and ``minerva inspect``."""

import json
from pathlib import Path

import click

from ..board.profiles import load_board, names_help
from ..capsule.arena import PLANNERS
from ..capsule.memory import APP_RESERVE_BYTES
from ..capsule.pack import pack_file, read_labels
from ..capsule.summary import format_summary, summarize
from ..errors import PackagerError, count


def default_output(model):
    """MODEL's path with ``.tflite`` (if it has it) replaced by ``.cap``, in MODEL's folder."""
    path = Path(model)
    stem = path.name[:-len(".tflite")] if path.name.endswith(".tflite") else path.name
    return path.with_name(stem + ".cap")


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Capsule to write (default: MODEL with .cap).")
@click.option("--name", help="Model name stored in the capsule (default: file stem).")
@click.option("--version", "version", default="1.0.0", show_default=True,
              help="The model's semantic version.")
@click.option("--planner", type=click.Choice(sorted(PLANNERS)), default="greedy",
              show_default=True, help="Arena planner.")
@click.option("-b", "--board", help="Fit the board's heap with the runtime and the application "
              "reserve, paging weights from flash if needed: " + names_help() + ".")
@click.option("--app-reserve", type=int, help="Heap left for your application on the board "
              f"(default {APP_RESERVE_BYTES} bytes).")
@click.option("--ram-budget", type=int, help="Fit the model's buffers (arena + resident "
              "weights) in this many bytes instead.")
@click.option("--labels", "labels_path", type=click.Path(exists=True, dir_okay=False),
              help="Text file of class names, one per line in output order: stored in the "
              "capsule, printed by `minerva run`, on the board as Model.labels.")
@click.option("--shadow-policy", type=click.Path(exists=True, dir_okay=False),
              help="JSON file: how the board shadow-tests this capsule as a candidate "
              "(README: the shadow policy).")
@click.option("--sign", "sign_key", type=click.Path(exists=True, dir_okay=False),
              help="Sign with this private key (`minerva keys new`).")
@click.option("--delta-from", type=click.Path(exists=True, dir_okay=False),
              help="Also write OUTPUT.delta: the update from this capsule (the board's).")
@click.option("--trainable", help="Make the last K weighted ops trainable on the board "
              "('last:K' or 'all'; docs/training.md); needs --board.")
@click.option("--train-ram", type=int, help="Heap bytes training may use (default: the board's "
              "heap less the runtime and the model).")
@click.option("--deadline", type=float, help="Seconds one training iteration may take.")
@click.option("--learning-rate", type=float, default=0.01, show_default=True)
@click.option("--momentum", type=float, default=0.9, show_default=True)
@click.option("--batch", type=int, default=1, show_default=True,
              help="Samples per weight update.")
def pack(model, output, name, version, planner, board, app_reserve, ram_budget, labels_path,
         shadow_policy, sign_key, delta_from, trainable, train_ram, deadline, learning_rate,
         momentum, batch):
    """Convert an int8 .tflite MODEL into a capsule."""
    output = output or str(default_output(model))
    if app_reserve is not None and not board:
        raise PackagerError("--app-reserve needs --board", "name the board it reserves on")
    profile = load_board(board) if board else None
    extra = [("SHADOW_POLICY", shadow_policy_section(shadow_policy), False)] \
        if shadow_policy else []
    if trainable:
        from ..capsule.trainable import pack_trainable

        extra += pack_trainable(model, trainable, board, train_ram, deadline, learning_rate,
                                momentum, batch, name=name, version=version, planner=planner,
                                ram_budget=ram_budget, app_reserve=app_reserve)
    data = pack_file(model, output, name=name, version=version, planner=planner,
                     ram_budget=ram_budget, board=profile, app_reserve=app_reserve,
                     labels=read_labels(labels_path) if labels_path else None,
                     extra_sections=extra)
    s = summarize(output)
    click.echo(f"wrote {output}: {len(data)} bytes, {count(len(s['ops']), 'op')}, arena "
               f"{s['arena_bytes']} bytes, weights {s['weights_bytes']} bytes, RAM "
               f"{s['meta']['ram_bytes']} bytes "
               f"({count(len(s['meta']['paged_tensors']), 'filter')} paged from flash)")
    if "heap_bytes" in s["meta"]:
        click.echo(f"fits {s['meta']['board']}: {s['meta']['heap_bytes']} bytes of heap with "
                   f"the runtime and {s['meta']['app_reserve_bytes']} bytes left for your "
                   "application")
    if trainable:
        plan = json.loads(extra[-1][1])
        p = plan["predicted"]
        click.echo(f"trainable: ops {plan['chain_ops']}; schedule of {len(plan['steps'])} steps "
                   f"for {plan['limits']['ram_bytes']} bytes: peak {p['peak_ram_bytes']} bytes, "
                   f"{p['flash_bytes_written']} bytes paged, {p['recomputations']} "
                   f"recomputations, {p['energy_j']:.3g} J per sample (predicted)")
    if sign_key:
        from ..capsule.container import write_atomic
        from ..capsule.signing import load_private_key, sign_capsule

        data = sign_capsule(data, load_private_key(sign_key))
        write_atomic(output, data)
        click.echo(f"signed with {sign_key}")
    click.echo(f"verified: checksums OK, sha256 {data[-32:].hex()}")
    if delta_from:
        from ..capsule.container import read_capsule, write_atomic
        from ..capsule.delta import delta_summary, make_delta

        old = read_capsule(delta_from).raw
        delta_bytes = make_delta(old, data)
        path = str(Path(output).with_suffix(".delta"))
        write_atomic(path, delta_bytes)
        d = delta_summary(old, data, delta_bytes)
        click.echo(f"wrote {path}: {d['delta_bytes']} bytes against {delta_from}")


def shadow_policy_section(path):
    """The SHADOW_POLICY section's bytes from a JSON file, checked as the board checks it."""
    from minerva.errors import CapsuleError
    from minerva.shadow import make_policy

    try:
        policy = json.loads(Path(path).read_text())
        if not isinstance(policy, dict):
            raise ValueError("not a JSON object")
        make_policy(path, policy)
    except (ValueError, CapsuleError) as exc:
        raise PackagerError(f"{path}: {exc}", "see the shadow policy settings in the README")
    return json.dumps(policy, sort_keys=True).encode()


@click.command()
@click.argument("capsule", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def inspect(capsule, as_json):
    """Verify CAPSULE and print what it holds."""
    s = summarize(capsule)
    click.echo(json.dumps(s, indent=2) if as_json else format_summary(s))
    if s["checksums"] != "OK":
        raise PackagerError(f"{capsule}: checksums failed", "copy the file again or rebuild it "
                            "with `minerva pack`")


COMMANDS = [pack, inspect]
