"""``minerva pack --trainable last:K``: the TRAIN section (float32 masters, loss, optimizer) and
the TRAIN_SCHEDULE planned for the trainable chain (docs/training.md)."""

import json
import struct

import numpy as np

from ..errors import PackagerError
from ..poet.graph import TrainingGraph
from ..poet.model_graph import capsule_layers, trainable_start
from ..poet.training import training_graph

TRAIN_MAGIC = b"MNVT"
TRAIN_FORMAT = "minerva-train"
TRAIN_VERSION = 1
CHAIN_OPS = ("FULLY_CONNECTED", "CONV_2D")
# Bytes of the heap the trainer's own objects take besides what the plan counts (its
# instance, the compiled step list and the views into its arena, the layers' views, the
# scratch file). The plan is made for the budget minus this, so that what the board holds
# stays within the budget. Measured on the unix port (64-bit objects) with the board's heap:
# 4.7-8.6 KB over the plan's peak for chains of 3-6 ops and 6-29 steps (bench/train_bench.py,
# tests/test_training.py print it); a 32-bit board's objects take about half.
TRAINER_RESERVE_BYTES = 12288
# What the trainer holds per trained parameter: master, momentum, gradient accumulator.
BYTES_PER_PARAM = 12


def chain(capsule, trainable):
    """``(op indices of the trained chain, loss name)`` for ``trainable`` ("last:K"/"all")."""
    layers = capsule_layers(capsule)
    first = trainable_start(layers, trainable)
    ops = capsule.ops
    indices = []
    index = first
    while index < len(ops) and ops[index].name in CHAIN_OPS:
        if indices and ops[index].inputs[0] != ops[indices[-1]].outputs[0]:
            break
        indices.append(index)
        index += 1
    rest = ops[index:]
    last_out = ops[indices[-1]].outputs[0] if indices else None
    if indices and not rest and last_out in capsule.outputs:
        return indices, "mse"
    if indices and len(rest) == 1 and rest[0].name == "SOFTMAX" and \
            rest[0].inputs[0] == last_out and rest[0].outputs[0] in capsule.outputs:
        return indices, "cross_entropy"
    names = [op.name for op in ops[first:]]
    raise PackagerError(f"--trainable {trainable}: the trained ops must be a chain of "
                        f"{' / '.join(CHAIN_OPS)} ending the model, optionally followed by one "
                        f"SOFTMAX; the model ends with {names}",
                        "train fewer layers (last:1) or a model whose tail is such a chain")


def _channel_scales(capsule, op):
    """Per-output-channel weight scales recovered from the op's multipliers:
    ``s_c = M_c * s_out / s_in`` with ``M_c = mult * 2**(shift - 31)``."""
    t = capsule.tensors
    s_in, s_out = t[op.inputs[0]].scale, t[op.outputs[0]].scale
    mult = np.frombuffer(_tensor_bytes(capsule, op.inputs[3]), "<i4").astype(np.float64)
    shift = np.frombuffer(_tensor_bytes(capsule, op.inputs[4]), "<i4").astype(np.float64)
    return mult * np.exp2(shift - 31) * s_out / s_in, s_in


def _tensor_bytes(capsule, index):
    tensor = capsule.tensors[index]
    return capsule.weights[tensor.offset:tensor.offset + tensor.nbytes]


def masters(capsule, indices):
    """``(layer entries, float32 data)``: each chain op's weights and bias, dequantized."""
    entries, parts, offset = [], [], 0
    for index in indices:
        op = capsule.ops[index]
        if op.inputs[2] is None:
            raise PackagerError(f"op {index} ({op.name}) has no bias",
                                "the trainer trains a bias with every weight; add one")
        if op.name == "FULLY_CONNECTED" and op.params[4] != 0:
            raise PackagerError(f"op {index} (FULLY_CONNECTED) has weight zero point "
                                f"{-op.params[4]}", "trainable weights must be symmetric int8")
        scales, s_in = _channel_scales(capsule, op)
        q = np.frombuffer(_tensor_bytes(capsule, op.inputs[1]), np.int8).astype(np.float64)
        q = q.reshape(len(scales), -1)
        bias = np.frombuffer(_tensor_bytes(capsule, op.inputs[2]), "<i4").astype(np.float64)
        w = (q * scales[:, None]).astype(np.float32).ravel()
        b = (bias * s_in * scales).astype(np.float32)
        entries.append({"op": index, "weights": offset, "bias": offset + w.size})
        parts += [w, b]
        offset += w.size + b.size
    return entries, np.concatenate(parts).astype("<f4")


def train_section(capsule, indices, loss, lr, momentum, batch):
    """The TRAIN section's bytes."""
    entries, data = masters(capsule, indices)
    header = {"format": TRAIN_FORMAT, "version": TRAIN_VERSION, "loss": loss,
              "optimizer": {"name": "sgd", "lr": lr, "momentum": momentum, "batch": batch},
              "layers": entries, "floats": int(data.size)}
    text = json.dumps(header, separators=(",", ":")).encode()
    head = TRAIN_MAGIC + struct.pack("<I", len(text)) + text
    head += b"\0" * (-len(head) % 16)
    return head + data.tobytes()


def chain_graph(capsule, indices, loss, board):
    """The training graph of the chain alone (docs/training.md): float32 activations and
    gradients; static bytes are the trainer's masters, momentum, accumulators and the float
    boundary buffer (and the target, for MSE)."""
    layers = capsule_layers(capsule)
    tail = []
    for position, index in enumerate(indices):
        layer = dict(layers[index])
        layer["out_bytes"] = 4 * layer["out_elems"]
        layer["inputs"] = [position - 1]
        tail.append(layer)
    graph = training_graph(tail, board, 0, name=f"{capsule.meta.get('name', 'model')}-chain")
    params = sum(layer["params"] for layer in tail)
    boundary = capsule.tensors[capsule.ops[indices[0]].inputs[0]]
    static = BYTES_PER_PARAM * params + 4 * int(np.prod(boundary.shape))
    if loss == "mse":
        static += 4 * tail[-1]["out_elems"]
    return TrainingGraph(graph.nodes, graph.edges, static, graph.name)


def plan_chain(graph, ram_budget, deadline=None, solver="cbc", time_limit=60.0):
    """The schedule document for the chain within ``ram_budget`` bytes (the trainer's own
    reserve taken off first)."""
    from ..poet.planner import InfeasibleError, plan_training

    budget = ram_budget - TRAINER_RESERVE_BYTES
    try:
        result = plan_training(graph, budget, deadline, None, "minerva", solver, time_limit,
                               baselines=False)
    except InfeasibleError as exc:
        smallest = exc.min_ram_bytes
        hint = (f"the smallest budget that works is "
                f"{int(round(smallest)) + TRAINER_RESERVE_BYTES} bytes (the plan's "
                f"{int(round(smallest))} plus the trainer's {TRAINER_RESERVE_BYTES})"
                if smallest is not None else exc.hint)
        raise PackagerError(f"--train-ram {ram_budget}: no training schedule fits", hint)
    return result.best.document


def trainable_sections(capsule_bytes, trainable, board, ram_budget, deadline=None, lr=0.01,
                       momentum=0.9, batch=1, solver="cbc", time_limit=60.0):
    """``[("TRAIN", ...), ("TRAIN_SCHEDULE", ...)]`` for a capsule's bytes."""
    from ..poet.schedule import schedule_section
    from .container import read_capsule

    if not (lr > 0 and 0 <= momentum < 1 and batch >= 1):
        raise PackagerError(f"learning rate {lr}, momentum {momentum}, batch {batch}",
                            "use a learning rate > 0, 0 <= momentum < 1 and a batch >= 1")
    capsule = read_capsule(capsule_bytes)
    indices, loss = chain(capsule, trainable)
    graph = chain_graph(capsule, indices, loss, board)
    document = plan_chain(graph, ram_budget, deadline, solver, time_limit)
    document["chain_ops"] = indices
    return [("TRAIN", train_section(capsule, indices, loss, lr, momentum, batch), False),
            ("TRAIN_SCHEDULE", schedule_section(document), False)]


def pack_trainable(model, trainable, board, train_ram=None, deadline=None, lr=0.01,
                   momentum=0.9, batch=1, **pack_kwargs):
    """The extra sections ``minerva pack --trainable`` adds to the capsule of ``model``.

    ``board`` (a name) gives the costs and packs the model for it; ``train_ram`` defaults to
    the heap the memory model leaves (capsule/memory.py: the board's heap less the runtime and
    the application's reserve) less what the loaded model keeps."""
    from ..board.profiles import load_board
    from .memory import available_bytes
    from .pack import pack_tflite

    if not board:
        raise PackagerError("--trainable needs --board",
                            "the board profile gives the costs the training schedule minimises")
    profile = load_board(board)
    data = pack_tflite(model, board=profile, **pack_kwargs)
    if train_ram is None:
        from .container import read_capsule

        train_ram = available_bytes(profile, pack_kwargs.get("app_reserve")) \
            - read_capsule(data).meta["heap_bytes"]
    return trainable_sections(data, trainable, profile, train_ram, deadline, lr, momentum,
                              batch)
