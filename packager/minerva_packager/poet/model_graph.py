"""Capsule or .tflite -> training graph, with costs from a board profile.

Each capsule op becomes a layer (:mod:`.training`); its MACs come from its kernel argument block
(docs/capsule-format.md), its parameter count from its weights tensors. ``trainable`` is "all"
or "last:K" (the last K layers that have weights, and everything after them).
"""

from pathlib import Path

from ..errors import PackagerError
from .training import training_graph

WEIGHTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def op_macs(name, params):
    """Multiply-accumulates (or element operations) of one op, from its argument block."""
    if name == "CONV_2D":
        batches, _, _, in_c, out_h, out_w, out_c, k_h, k_w = params[:9]
        return batches * out_h * out_w * out_c * k_h * k_w * in_c
    if name == "DEPTHWISE_CONV_2D":
        batches, _, _, _, out_h, out_w, out_c, k_h, k_w = params[:9]
        return batches * out_h * out_w * out_c * k_h * k_w
    if name == "FULLY_CONNECTED":
        batches, depth, out_c = params[:3]
        return batches * depth * out_c
    if name in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        batches, _, _, channels, out_h, out_w, f_h, f_w = params[:8]
        return batches * out_h * out_w * channels * f_h * f_w
    if name == "RESHAPE":
        return 0
    if name == "SOFTMAX":
        return 4 * params[0] * params[1]
    if name == "QUANTIZE":
        return params[1]
    return params[0]


def _elements(tensor):
    count = 1
    for dim in tensor.shape:
        count *= dim
    return count


def capsule_layers(capsule):
    """The forward layers (see :mod:`.training`) of a capsule read by ``read_capsule``."""
    producer = {}
    layers = []
    for index, op in enumerate(capsule.ops):
        out = capsule.tensors[op.outputs[0]]
        inputs, params = [], 0
        for tensor_index in op.inputs:
            if tensor_index is None:
                continue
            tensor = capsule.tensors[tensor_index]
            if tensor.storage == "weights":
                if op.name in WEIGHTED:
                    params += _elements(tensor) if tensor.dtype in ("int8", "float32") else 0
            else:
                inputs.append(producer.get(tensor_index, -1))
        if op.name in WEIGHTED:
            # Bias (int32, one per output channel) is trained too; mult/shift are not.
            params += capsule.tensors[op.inputs[1]].shape[0] if op.inputs[2] is not None else 0
        layers.append({"name": f"{index}_{op.name.lower()}",
                       "macs": op_macs(op.name, op.params),
                       "out_elems": _elements(out), "out_bytes": out.nbytes,
                       "inputs": sorted(set(inputs)), "params": params})
        producer[op.outputs[0]] = index
    return layers


def trainable_start(layers, trainable):
    """Index of the first trained layer for ``trainable`` ("all" or "last:K")."""
    weighted = [i for i, layer in enumerate(layers) if layer["params"]]
    if not weighted:
        raise PackagerError("the model has no layers with weights", "nothing can be trained")
    if trainable == "all":
        return weighted[0]
    if trainable.startswith("last:"):
        try:
            count = int(trainable[5:])
        except ValueError:
            count = 0
        if count >= 1:
            return weighted[-min(count, len(weighted))]
    raise PackagerError(f"--trainable {trainable!r} is not understood",
                        "use 'all' or 'last:K' with K >= 1")


def model_training_graph(path, board, trainable="all"):
    """The training graph of the capsule or .tflite at ``path`` on ``board`` (a profile)."""
    from ..capsule.container import read_capsule

    path = Path(path)
    if path.suffix == ".tflite":
        from ..capsule.pack import pack_tflite

        capsule = read_capsule(pack_tflite(str(path)), name=str(path))
    else:
        capsule = read_capsule(str(path))
    layers = capsule_layers(capsule)
    return training_graph(layers, board, trainable_start(layers, trainable), name=path.stem)
