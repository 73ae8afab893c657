"""POET's published example as one of our training graphs.

The README of POET's repository (github.com/ShishirPatil/poet, read at commit 6e63098) runs

    python poet/solve.py --model resnet18_cifar --platform a72 --ram-budget 3000000 \\
        --runtime-budget 7.6

Written from the facts of these files (none of their code is used):

* poet/architectures/resnet.py, ``resnet18_cifar(1, 10, (3, 32, 32))``: input 1x3x32x32; 3x3
  conv to 16 channels and batch norm; six blocks (16, 16, 32/2, 32, 64/2, 64 channels/stride),
  each conv-bn-relu-conv-bn-relu plus a conv-bn shortcut from the block input, an add and a relu;
  8x8 average pool, flatten, linear 64->10, cross-entropy loss: 67 layers. Then one gradient
  layer per consecutive pair of that list, from the loss back to the input (66): gradient k reads
  layers ``65-k`` and ``66-k`` and gradient ``k-1`` (the loss for k = 0), has the shape of layer
  ``66-k`` and twice the FLOPs of layer ``65-k``. 133 nodes, 269 distinct edges.
* poet/power_computation.py: FLOPs per layer (conv ``2*9*in_elements*out_channels +
  out_elements`` with the *input* size, batch norm ``2*elements``, relu, add and flatten
  ``elements``, pool ``2*kernel_area*out_elements``, linear ``2*(in+1)*out + out``, loss
  ``10*10``, input 0); energy ``flop / FLOPS_PER_WATT`` (J; the constant is FLOP per joule), time
  ``flop / FLOPS`` (s, though solve.py calls it ms); output bytes ``4 * elements`` (float32);
  page-out energy ``(PAGEOUT_LATENCY + bytes / PAGEOUT_THROUGHPUT) * MEMORY_POWER``, page-in the
  same with the PAGEIN constants.
* poet/chipsets.py, ``RPi`` (platform a72): the constants below.
* poet/util.py and poet/utils/checkmate/core/graph_builder.py: node numbering is the reverse of
  ``toposort`` levels (longest path to the sink), ties in a random order (uuid4 hashes; six
  blocks x two ties, so it changes from run to run); we break ties by layer order, which is one of
  the orders POET draws.
* poet/util.py: only the 66 gradient layers are backward nodes (the loss is not).
* poet/solve.py and poet/poet_solver.py: the RAM budget bounds the bytes of held outputs only
  (the 994,984 bytes of parameters are not counted), so ``static_bytes = 0``. The runtime
  budget is a *factor*: the deadline is 7.6 times the sum of every node's compute time
  (0.158 s), 1.2027 s, against which only compute time is counted.

Keeping everything peaks at 2,453,760 bytes and takes 0.158 s, so it fits (it also satisfies
every row of POET's own MILP): the optimum is every node computed once (7.8895 J), no paging.
(POET's test/test_cli.py expects 0.001 J of paging from Gurobi, but that test calls
``re.test``, which does not exist: it was never checked.)

Differences: POET never uses a paging *time*; ours is the time its energy formula charges
(``latency + bytes / throughput``), counted by ``--model minerva`` only. POET lists the loss ->
first-gradient edge twice (the gradient reads it as two arguments), so its MILP may count the
loss's 40 bytes freed twice; our graph has the edge once.
"""

import math

from .graph import Node, TrainingGraph

# poet/chipsets.py, RPi (Raspberry Pi 4, Cortex-A72).
FLOP_PER_J = 16283 * 100 * 1000 / (13.53 * 0.6 * 5)
FLOP_PER_S = 2e9
PAGEIN_LATENCY_S, PAGEIN_BYTES_PER_S = 0.00509561e-3, 45.5e6
PAGEOUT_LATENCY_S, PAGEOUT_BYTES_PER_S = 0.0185314e-3, 24.5e6
MEMORY_W = 0.030 * 5
BYTES_PER_ELEMENT = 4

RAM_BUDGET = 3_000_000
RUNTIME_FACTOR = 7.6


def _layers():
    """POET's resnet18_cifar layers, loss and gradients: (kind, shape, flop, inputs)."""
    layers = []

    def add(kind, shape, flop, *inputs):
        layers.append((kind, shape, flop, inputs))
        return len(layers) - 1

    def elements(i):
        return math.prod(layers[i][1])

    def conv(x, channels, stride):  # 3x3, padding 1
        _, _, h, w = layers[x][1]
        shape = (1, channels, (h - 1) // stride + 1, (w - 1) // stride + 1)
        return add("conv", shape, 18 * elements(x) * channels + math.prod(shape), x)

    def unary(kind, x, per_element):
        return add(kind, layers[x][1], per_element * elements(x), x)

    x = add("input", (1, 3, 32, 32), 0)
    x = unary("bn", conv(x, 16, 1), 2)
    for channels, stride in ((16, 1), (16, 1), (32, 2), (32, 1), (64, 2), (64, 1)):
        main = unary("bn", conv(x, channels, stride), 2)
        main = unary("relu", unary("bn", conv(unary("relu", main, 1), channels, 1), 2), 1)
        short = unary("bn", conv(x, channels, stride), 2)
        x = unary("relu", add("add", layers[main][1], elements(main), main, short), 1)
    x = add("avgpool", (1, 64, 1, 1), 2 * 64 * 64, x)
    x = add("flatten", (1, 64), 64, x)
    x = add("linear", (1, 10), 2 * 65 * 10 + 10, x)
    loss = add("loss", (10,), 10 * 10, x)
    previous = loss
    for later in range(loss, 0, -1):
        earlier = later - 1
        previous = add("grad", layers[later][1], 2 * layers[earlier][2], earlier, later, previous)
    return layers


def _poet_order(layers):
    """Longest path to a sink, decreasing (POET's numbering); ties in layer order."""
    depth = [0] * len(layers)
    for i in range(len(layers) - 1, -1, -1):
        for p in layers[i][3]:
            depth[p] = max(depth[p], depth[i] + 1)
    return sorted(range(len(layers)), key=lambda i: (-depth[i], i))


def poet_resnet18_cifar_graph():
    """The 133-node training graph POET's solver sees for the README example (a72 profile)."""
    layers = _layers()
    order = _poet_order(layers)
    position = {layer: index for index, layer in enumerate(order)}
    nodes = []
    for layer in order:
        kind, shape, flop, _ = layers[layer]
        size = BYTES_PER_ELEMENT * math.prod(shape)
        pagein_s = PAGEIN_LATENCY_S + size / PAGEIN_BYTES_PER_S
        pageout_s = PAGEOUT_LATENCY_S + size / PAGEOUT_BYTES_PER_S
        nodes.append(Node(f"{kind}{layer}", flop / FLOP_PER_J, flop / FLOP_PER_S, size,
                          pagein_s * MEMORY_W, pageout_s * MEMORY_W, pagein_s, pageout_s,
                          backward=kind == "grad"))
    edges = {(position[p], position[i]) for i in order for p in layers[i][3]}
    return TrainingGraph(nodes, edges, static_bytes=0, name="poet-resnet18-cifar-a72")


# The deadline of --runtime-budget 7.6: 7.6 times one pass's compute time (0.158 s) = 1.2027 s.
RUNTIME_BUDGET_S = RUNTIME_FACTOR * sum(flop for _, _, flop, _ in _layers()) / FLOP_PER_S
