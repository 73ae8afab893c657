"""Forward network -> training graph (forward ops, loss, backward ops for the trainable part).

A forward network is a list of layers in execution order, each a dict::

    {"name": "conv1", "macs": 123456, "out_elems": 4096, "inputs": [-1], "params": 2304}

``out_bytes`` (optional) is the forward output's size when it is not int8. ``inputs`` are
indices of earlier layers (``-1`` is the model input, which is not a node: it is
read from its own buffer). Forward activations are int8 (1 byte per element); gradients are
float32 (``GRAD_BYTES`` per element), as the trainer keeps them.

The training graph has one node per layer, one loss node, then one backward node per layer from
the last back to the first trainable one. A backward node reads the gradient(s) of its layer's
output, its layer's inputs (for the weight gradient) and its layer's output (for the fused
activation's mask), and produces the gradient of its layer's input. Weight gradients go straight
into accumulators that are part of ``static_bytes`` (4 bytes per trainable parameter).
"""

from .graph import Node, TrainingGraph, costs_from_board

GRAD_BYTES = 4
ACCUMULATOR_BYTES = 4


def training_graph(layers, board, trainable_from=0, name="model"):
    """Build the :class:`TrainingGraph` of one training iteration of ``layers``.

    Layers ``>= trainable_from`` get backward nodes (and their parameters are trained); the
    costs come from the board profile ``board`` (see :func:`costs_from_board`).
    """
    count = len(layers)
    nodes, edges = [], []
    for index, layer in enumerate(layers):
        out_bytes = layer.get("out_bytes", layer["out_elems"])
        nodes.append(Node(layer["name"], backward=False,
                          **costs_from_board(board, layer["macs"], out_bytes)))
        edges += [(src, index) for src in layer["inputs"] if src >= 0]
    loss = count
    last = layers[-1]
    nodes.append(Node("loss", backward=True,
                      **costs_from_board(board, 4 * last["out_elems"],
                                         last["out_elems"] * GRAD_BYTES)))
    edges.append((count - 1, loss))
    consumers = [[] for _ in layers]
    for index, layer in enumerate(layers):
        for src in layer["inputs"]:
            if src >= 0:
                consumers[src].append(index)
    backward_node = {}
    static = 0
    for index in range(count - 1, trainable_from - 1, -1):
        layer = layers[index]
        static += ACCUMULATOR_BYTES * layer.get("params", 0)
        node_index = len(nodes)
        backward_node[index] = node_index
        sources = [src for src in layer["inputs"] if src >= trainable_from]
        in_elems = max((layers[src]["out_elems"] for src in sources), default=0)
        # Weight gradient: one MAC per forward MAC; input gradient: another, unless nothing
        # upstream is trained. Parameter-free layers cost about one op per element.
        macs = layer["macs"] if layer.get("params") else layer["out_elems"]
        if sources:
            macs += layer["macs"] if layer.get("params") else in_elems
        nodes.append(Node(f"grad_{layer['name']}", backward=True,
                          **costs_from_board(board, macs, in_elems * GRAD_BYTES)))
        downstream = [backward_node[c] for c in consumers[index] if c in backward_node]
        if index == count - 1:
            downstream.append(loss)
        edges += [(g, node_index) for g in downstream]
        edges += [(src, node_index) for src in layer["inputs"] if src >= 0]
        edges.append((index, node_index))
    return TrainingGraph(nodes, edges, static, name)


def chain_layers(depth, width_elems=4096, macs_per_elem=72, shrink_every=0):
    """A plain chain of ``depth`` conv-like layers (synthetic, for tests and the bench)."""
    layers, elems = [], width_elems
    for index in range(depth):
        if shrink_every and index and index % shrink_every == 0:
            elems = max(elems // 2, 16)
        layers.append({"name": f"conv{index}", "macs": elems * macs_per_elem,
                       "out_elems": elems, "inputs": [index - 1], "params": macs_per_elem * 8})
    return layers


def resnet_layers(blocks, width_elems=4096, macs_per_elem=72):
    """A ResNet-like network: a stem, ``blocks`` residual blocks (conv, conv, add with the
    block's input) and a classifier; every third block halves the activation size."""
    layers = [{"name": "stem", "macs": width_elems * 27, "out_elems": width_elems,
               "inputs": [-1], "params": 27 * 16}]
    elems = width_elems
    for block in range(blocks):
        if block and block % 3 == 0:
            elems = max(elems // 2, 16)
        start = len(layers) - 1
        layers.append({"name": f"b{block}_conv_a", "macs": elems * macs_per_elem,
                       "out_elems": elems, "inputs": [start], "params": macs_per_elem * 8})
        layers.append({"name": f"b{block}_conv_b", "macs": elems * macs_per_elem,
                       "out_elems": elems, "inputs": [start + 1], "params": macs_per_elem * 8})
        layers.append({"name": f"b{block}_add", "macs": elems, "out_elems": elems,
                       "inputs": [start + 2, start]})
    last = len(layers) - 1
    layers.append({"name": "pool", "macs": elems, "out_elems": 64, "inputs": [last]})
    layers.append({"name": "fc", "macs": 640, "out_elems": 10, "inputs": [last + 1],
                   "params": 640})
    return layers
