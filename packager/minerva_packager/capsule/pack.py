"""``.tflite`` -> capsule: import, lower, plan the arena, lay out weights, write."""

import json
import os
import re
import time
from pathlib import Path

from .. import __version__
from ..errors import PackagerError
from .arena import PLANNERS, Buffer, check_plan
from .container import encode_capsule, encode_graph, layout_weights, write_atomic
from .lower import lower
from .memory import APP_RESERVE_BYTES, buffers_budget, load_peak_bytes, model_heap_bytes
from .residency import filters, plan_residency, ram_needed, residency_section
from .tflite_import import read_tflite

_SEMVER = re.compile(r"^\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$")


def lifetimes(tensors, ops, inputs, outputs):
    """{tensor index: (first step, last step)} for every arena tensor."""
    last_step = max(len(ops) - 1, 0)
    spans = {}
    for i in inputs:
        spans[i] = [0, 0]
    for step, op in enumerate(ops):
        for i in op.outputs:
            spans.setdefault(i, [step, step])
        for i in op.inputs:
            if i is not None and i in spans:
                spans[i][1] = max(spans[i][1], step)
    for i in outputs:
        spans.setdefault(i, [0, 0])[1] = last_step
    return {i: tuple(s) for i, s in spans.items() if tensors[i].storage == "arena"}


def plan_arena(tensors, ops, inputs, outputs, planner="greedy", paged=()):
    """Assign arena offsets to the arena tensors in place.

    Each filter in ``paged`` also gets an arena slot, alive while the ops that use it run,
    into which the device reads it from flash. Returns ``(arena bytes, {filter: slot
    offset})``.
    """
    if planner not in PLANNERS:
        raise PackagerError(f"unknown planner {planner!r}", "use one of " + ", ".join(PLANNERS))
    spans = lifetimes(tensors, ops, inputs, outputs)
    for index in paged:
        steps = [k for k, op in enumerate(ops) if index in op.inputs]
        spans[("page", index)] = (min(steps), max(steps))
    order = sorted(spans, key=str)
    buffers = [Buffer(tensors[i[1] if isinstance(i, tuple) else i].nbytes, *spans[i])
               for i in order]
    offsets = PLANNERS[planner].plan(buffers)
    check_plan(buffers, offsets)
    slots = {}
    for i, off in zip(order, offsets):
        if isinstance(i, tuple):
            slots[i[1]] = off
        else:
            tensors[i].offset = off
    return PLANNERS[planner].arena_bytes(buffers, offsets), slots


def _created():
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", time.time()))
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _io_spec(t):
    return {"name": t.name, "dtype": t.dtype, "shape": list(t.shape), "scale": t.scale,
            "zero_point": t.zero_point}


def pack_tflite(tflite_path, name=None, version="1.0.0", planner="greedy", extra_sections=(),
                ram_budget=None, board=None, app_reserve=None, labels=None):
    """Build a capsule from ``tflite_path`` and return its bytes.

    ``ram_budget`` (bytes of heap the model's buffers may use) makes the packager page the
    largest filters from flash until it fits (a RESIDENCY section). ``board`` (a profile) sets
    that budget from the board's memory model (capsule/memory.py), keeping ``app_reserve``
    bytes for the application. ``labels`` (class names, one per output value of a classifier)
    go into META, for ``minerva run`` and the board's ``Model.labels``. ``extra_sections`` are
    ``(type_name, bytes, required)`` tuples appended after the required sections (e.g. a
    TRAIN_SCHEDULE).
    """
    if not _SEMVER.match(version):
        raise PackagerError(f"version {version!r} is not a semantic version",
                            "use MAJOR.MINOR.PATCH, e.g. 1.2.0")
    model = read_tflite(tflite_path)
    tensors, ops, inputs, outputs = lower(model)
    if board is not None and ram_budget is None:
        ram_budget = buffers_budget(board, len(ops), len(tensors), app_reserve)
    try:
        arena_bytes, slots = plan_residency(
            tensors, ram_budget, lambda paged: plan_arena(tensors, ops, inputs, outputs,
                                                          planner, paged), filters(ops))
    except PackagerError:
        if board is None:
            raise
        reserve = APP_RESERVE_BYTES if app_reserve is None else app_reserve
        smallest = min_buffers_bytes(tensors, ops, inputs, outputs, planner)
        fits_with = reserve - (smallest - ram_budget)
        left = (f"{ram_budget} are left" if ram_budget > 0 else
                f"nothing is left (short by {-ram_budget})")
        hint = (f"it fits with --app-reserve {fits_with} or less" if fits_with >= 0 else
                "it does not fit even with no application reserve: choose a board with more "
                "RAM or a smaller model, or, if your board's heap is larger than "
                f"{board['heap_bytes']} bytes, pack with --ram-budget BYTES instead of --board")
        raise PackagerError(f"{Path(tflite_path).name} does not fit {board['name']}: it needs "
                            f"{smallest} bytes of buffers even with every filter paged from "
                            f"flash, and {left} of the board's heap ({board['heap_bytes']}) "
                            "once the runtime, the model's objects, its load headroom and "
                            f"{reserve} bytes of application reserve are taken", hint)
    paged = sorted(slots)
    weights = layout_weights(tensors)
    graph = encode_graph(tensors, ops, inputs, outputs, arena_bytes)
    meta = {
        "name": name or Path(tflite_path).stem,
        "version": version,
        "source_sha256": model.sha256,
        "source_name": Path(tflite_path).name,
        "created": _created(),
        "inputs": [_io_spec(tensors[i]) for i in inputs],
        "outputs": [_io_spec(tensors[i]) for i in outputs],
        "ops": [op.name for op in ops],
        "arena_bytes": arena_bytes,
        "weights_bytes": len(weights),
        "planner": planner,
        "ram_bytes": ram_needed(tensors, arena_bytes, paged),
        "paged_tensors": paged,
        "packager": f"minerva_packager {__version__}",
    }
    if labels is not None:
        meta["labels"] = check_labels(labels, tensors[outputs[0]].shape, tflite_path)
    if board is not None:
        meta["board"] = board["name"]
        meta["heap_bytes"] = model_heap_bytes(board, meta["ram_bytes"], len(ops), len(tensors))
        meta["load_peak_bytes"] = load_peak_bytes(board, meta["ram_bytes"], len(ops),
                                                  len(tensors))
        meta["app_reserve_bytes"] = APP_RESERVE_BYTES if app_reserve is None else app_reserve
    try:
        meta_text = json.dumps(meta, separators=(",", ":"), allow_nan=False)
    except ValueError:
        raise PackagerError(f"{tflite_path}: a scale is not finite", "re-export the model")
    sections = [("META", meta_text.encode(), True),
                ("GRAPH", graph, True), ("WEIGHTS", weights, True)]
    residency = residency_section(slots)
    if residency:
        sections.append(("RESIDENCY", residency, False))
    return encode_capsule(sections + list(extra_sections))


def read_labels(path):
    """Class names from a text file, one per line (blank lines at the end ignored)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise PackagerError(f"{path}: cannot read the labels: {exc}",
                            "give a UTF-8 text file with one class name per line")
    while lines and not lines[-1].strip():
        lines.pop()
    return [line.strip() for line in lines]


def check_labels(labels, shape, source):
    """``labels`` as a list, checked against the classifier output's ``shape``."""
    classes = shape[-1] if len(shape) == 2 else None
    if classes is None or classes < 2:
        raise PackagerError(f"{source}: labels need a classifier's output (batch, classes); "
                            f"this model's output is {list(shape)}", "leave out --labels")
    if len(labels) != classes:
        raise PackagerError(f"{source}: {len(labels)} labels for {classes} classes",
                            f"give exactly {classes} lines, one class name each, in output "
                            "order")
    if any(not label for label in labels):
        raise PackagerError(f"{source}: an empty label", "name every class")
    return list(labels)


def min_buffers_bytes(tensors, ops, inputs, outputs, planner):
    """The model's buffers with every filter paged: the least RAM it can run in."""
    every = filters(ops)
    arena_bytes, _ = plan_arena(tensors, ops, inputs, outputs, planner, every)
    return ram_needed(tensors, arena_bytes, every)


def verify_with_loader(path, source):
    """Load the capsule at ``path`` with the device runtime's own loader (every check the
    board makes); a refusal is a PackagerError naming ``source``."""
    import minerva

    try:
        minerva.load(str(path), kernels="python").close()
    except minerva.CapsuleError as exc:
        raise PackagerError(f"{source}: the board would refuse the capsule: "
                            f"{str(exc).split(': ', 1)[-1]}",
                            "the model uses values outside what the kernels accept")


def pack_file(tflite_path, output_path, **kwargs):
    """Pack ``tflite_path`` into ``output_path`` and return the bytes. The capsule is written
    to a temporary file, loaded there by the device runtime's loader, and only then renamed
    into place: a failure leaves no file, and what is written the board accepts."""
    data = pack_tflite(tflite_path, **kwargs)
    output_path = Path(output_path)
    tmp = output_path.with_name(output_path.name + ".check.part")
    write_atomic(tmp, data)
    try:
        verify_with_loader(tmp, tflite_path)
        tmp.replace(output_path)
    finally:
        tmp.unlink(missing_ok=True)
    return data
