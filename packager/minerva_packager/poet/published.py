"""POET's built-in instances as our training graphs: its networks, platforms and budgets.

Written from the facts of POET's repository (github.com/ShishirPatil/poet, read at commit
6e63098); none of its code is used. Where each fact comes from:

* Networks (poet/architectures/): ``linear`` (linear.py, ``make_linear_network``: input 1x784,
  six linear+relu pairs 784-10-120-100-200-10-10, cross-entropy over 10 classes), ``vgg16``
  (vgg.py, ``vgg16(1)``: 1x3x224x224, thirteen 3x3 conv+relu pairs in five groups of 2, 2, 3, 3,
  3 with a 2x2/2 max pool after each, flatten, linear 25088-4096, relu, dropout, 4096-4096,
  relu, dropout, 4096-1000, loss over 1000 classes), ``resnet18_cifar`` (resnet.py,
  ``resnet18_cifar(1, 10, (3, 32, 32))``: 3x3 conv to 16 and batch norm; six blocks (16, 16,
  32/2, 32, 64/2, 64 channels/stride), each conv-bn-relu-conv-bn-relu plus a conv-bn shortcut
  from the block input, an add and a relu; 8x8 average pool, flatten, linear 64-10, loss) and
  ``transformer`` (bert.py, ``BERTBase`` with one block as poet/util.py builds it: sequence 512,
  hidden 768, 12 heads of 64; fused QKV, QK^T, QK^T V, linear 768-768, add with the block input,
  linear+relu 768-3072, linear 3072-768, add with the attention's linear (``layers[-4]``), loss
  over 512 classes). Every network then gets one gradient layer per consecutive pair of its
  list, from the loss back to the input: gradient k reads the earlier and later layer of its
  pair and the previous gradient (the loss for the first), has the later layer's shape and twice
  the earlier layer's FLOPs.
* FLOPs per layer (poet/power_computation.py, power_computation_transformer.py): conv
  ``2*k*k*in_elements*out_channels + out_elements`` (the *input's* size), batch norm
  ``2*elements``, relu, add, flatten and dropout ``elements``, max/avg pool
  ``2*kernel_area*out_elements``, linear ``2*(in+1)*out + out`` (whatever the number of rows),
  linear+relu that plus ``out_elements``, loss ``input_elements*classes``, QKV ``3*seq*hidden*64*
  heads``, QK^T ``seq*64*seq*heads + 2*out_elements``, QK^T V ``2*seq*seq*64*heads``, input 0.
* Costs: energy ``flop / FLOPS_PER_WATT`` (J; the constant is FLOP per joule), time ``flop /
  FLOPS`` (s, though solve.py calls it ms); output bytes ``4 * elements`` (float32); page-out
  energy ``(PAGEOUT_LATENCY + bytes / PAGEOUT_THROUGHPUT) * MEMORY_POWER``, page-in the same with
  the PAGEIN constants. Platforms (poet/chipsets.py, picked as in poet/util.py): m0 = MKR1000,
  m4 = M4F, a72 = RPi, a72nocache = RPiNoCache.
* Numbering (poet/util.py, checkmate's graph_builder.py): the reverse of ``toposort`` levels
  (longest path to the sink), ties in a random order (uuid4 hashes); we break ties by layer
  order, one of the orders POET draws. Only the gradient layers are backward nodes.
* Budgets (poet/solve.py, poet_solver.py): the RAM budget bounds held outputs only (parameters
  are not counted), so ``static_bytes = 0``; the runtime budget is a factor of the sum of every
  node's compute time, against which POET counts compute time only.

Published instances: README, ``solve.py --model resnet18_cifar --platform a72 --ram-budget
3000000 --runtime-budget 7.6``, and its API example ``resnet18_cifar`` on ``m4`` at 737,719
bytes and 1.5. POET publishes no budget for the others: ``linear-m0`` (3,500 bytes, 1.0) is the
instance of our issue 15 that exposed a HiGHS wrong-objective report; the VGG16 and transformer
budgets (INSTANCES) are ours, about halfway between the least RAM any schedule needs (VGG16
51,380,224 bytes, the transformer 31,457,280) and keeping everything (115,505,152 and
37,748,736), plus VGG16 at 1 MB, which nothing fits.

Differences: POET never uses a paging *time*; ours is the time its energy formula charges
(``latency + bytes / throughput``), counted by ``--model minerva`` only. POET lists the loss ->
first-gradient edge twice (the gradient reads it as two arguments); our graph has it once.
(POET's test/test_cli.py expects 0.001 J of paging on the README example, but that test calls
``re.test``, which does not exist: it was never checked.)
"""

import math

from .graph import Node, TrainingGraph

BYTES_PER_ELEMENT = 4


def _chipset(flop_per_j, flop_per_s, pagein, pageout, memory_w):
    return {"flop_per_j": flop_per_j, "flop_per_s": flop_per_s, "pagein": pagein,
            "pageout": pageout, "memory_w": memory_w}


# poet/chipsets.py: FLOP per joule, FLOP per second, (latency s, bytes/s) in and out, memory W.
PLATFORMS = {
    "m0": _chipset(2000 / (0.012 * 0.020 * 3.3), 2000 / 0.012, (0.109e-3, 4616.51e3),
                   (0.113e-3, 4440e3), 0.100 * 3.3),
    "m4": _chipset(16283 * 100 * 1000 / (255.6237 * 0.003328 * 3.3),
                   16283 * 100 * 1000 / 255.6237, (0.109e-3, 4616.51e3), (0.113e-3, 4440e3),
                   0.100 * 3.3),
    "a72": _chipset(16283 * 100 * 1000 / (13.53 * 0.6 * 5), 2e9, (0.00509561e-3, 45.5e6),
                    (0.0185314e-3, 24.5e6), 0.030 * 5),
    "a72nocache": _chipset(16283 * 100 * 1000 / (13.53 * 0.6 * 5), 16283 * 100 * 1000 / 13.53,
                           (0.00509561e-3, 45.5e6), (4.23532e-3, 17.1e6), 0.030 * 5),
}

# The README example (kept under its earlier names).
FLOP_PER_J = PLATFORMS["a72"]["flop_per_j"]
RAM_BUDGET = 3_000_000
RUNTIME_FACTOR = 7.6


class _Network:
    """POET's layer list: (kind, shape, flop, inputs) per layer, in construction order."""

    def __init__(self, shape):
        self.layers = [("input", tuple(shape), 0, ())]

    def add(self, kind, shape, flop, *inputs):
        self.layers.append((kind, tuple(shape), flop, inputs))
        return len(self.layers) - 1

    def shape(self, x):
        return self.layers[x][1]

    def elements(self, x):
        return math.prod(self.layers[x][1])

    def conv(self, x, channels, kernel=3, stride=1, padding=1):
        batch, _, h, w = self.shape(x)
        out = (batch, channels, (h - kernel + 2 * padding) // stride + 1,
               (w - kernel + 2 * padding) // stride + 1)
        return self.add("conv", out, 2 * kernel * kernel * self.elements(x) * channels
                        + math.prod(out), x)

    def unary(self, kind, x, per_element=1):
        return self.add(kind, self.shape(x), per_element * self.elements(x), x)

    def pool(self, kind, x, kernel, stride):
        batch, channels, h, w = self.shape(x)
        out = (batch, channels, (h - kernel) // stride + 1, (w - kernel) // stride + 1)
        return self.add(kind, out, 2 * kernel * kernel * math.prod(out), x)

    def flatten(self, x):
        shape = self.shape(x)
        return self.add("flatten", (shape[0], math.prod(shape[1:])), self.elements(x), x)

    def linear(self, x, features, relu=False):
        rows, inputs = self.shape(x)
        out = (rows, features)
        flop = 2 * (inputs + 1) * features + features + (math.prod(out) if relu else 0)
        return self.add("linrelu" if relu else "linear", out, flop, x)

    def skip(self, a, b):
        return self.add("add", self.shape(a), self.elements(a), a, b)

    def loss_and_gradients(self, x, classes):
        loss = self.add("loss", (classes,), self.elements(x) * classes, x)
        previous = loss
        for later in range(loss, 0, -1):
            earlier = later - 1
            previous = self.add("grad", self.shape(later), 2 * self.layers[earlier][2],
                                earlier, later, previous)
        return self.layers


def linear_layers():
    net = _Network((1, 784))
    x = 0
    for features in (10, 120, 100, 200, 10, 10):
        x = net.unary("relu", net.linear(x, features))
    return net.loss_and_gradients(x, 10)


def vgg16_layers():
    net = _Network((1, 3, 224, 224))
    x = 0
    for channels, convs in ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)):
        for _ in range(convs):
            x = net.unary("relu", net.conv(x, channels))
        x = net.pool("maxpool", x, 2, 2)
    x = net.flatten(x)
    for features in (4096, 4096):
        x = net.unary("dropout", net.unary("relu", net.linear(x, features)))
    return net.loss_and_gradients(net.linear(x, 1000), 1000)


def resnet18_cifar_layers():
    net = _Network((1, 3, 32, 32))
    x = net.unary("bn", net.conv(0, 16), 2)
    for channels, stride in ((16, 1), (16, 1), (32, 2), (32, 1), (64, 2), (64, 1)):
        main = net.unary("bn", net.conv(x, channels, stride=stride), 2)
        main = net.unary("relu", net.unary("bn", net.conv(net.unary("relu", main), channels), 2))
        short = net.unary("bn", net.conv(x, channels, stride=stride), 2)
        x = net.unary("relu", net.skip(main, short))
    x = net.linear(net.flatten(net.pool("avgpool", x, 8, 1)), 10)
    return net.loss_and_gradients(x, 10)


def transformer_layers(blocks=1, seq=512, hidden=768, head_dim=64, heads=12):
    net = _Network((seq, hidden))
    x = 0
    for _ in range(blocks):
        block_input = x
        qkv = net.add("qkv", (3 * seq, head_dim, heads), 3 * seq * hidden * head_dim * heads, x)
        scores = (seq, seq, heads)
        qkt = net.add("qkt", scores, seq * head_dim * seq * heads + 2 * math.prod(scores), qkv)
        qktv = net.add("qktv", (seq, head_dim * heads), 2 * seq * seq * head_dim * heads, qkt)
        attention = net.linear(qktv, hidden)
        added = net.skip(block_input, attention)
        wide = net.linear(added, 4 * hidden, relu=True)
        x = net.skip(attention, net.linear(wide, hidden))
    return net.loss_and_gradients(x, seq)


NETWORKS = {"linear": linear_layers, "vgg16": vgg16_layers,
            "resnet18_cifar": resnet18_cifar_layers, "transformer": transformer_layers}


def _poet_order(layers):
    """Longest path to a sink, decreasing (POET's numbering); ties in layer order."""
    depth = [0] * len(layers)
    for i in range(len(layers) - 1, -1, -1):
        for p in layers[i][3]:
            depth[p] = max(depth[p], depth[i] + 1)
    return sorted(range(len(layers)), key=lambda i: (-depth[i], i))


def poet_graph(model, platform):
    """The training graph POET's solver sees for ``model`` on ``platform`` (its numbering)."""
    layers, chip = NETWORKS[model](), PLATFORMS[platform]
    order = _poet_order(layers)
    position = {layer: index for index, layer in enumerate(order)}
    (in_latency, in_rate), (out_latency, out_rate) = chip["pagein"], chip["pageout"]
    nodes = []
    for layer in order:
        kind, shape, flop, _ = layers[layer]
        size = BYTES_PER_ELEMENT * math.prod(shape)
        pagein_s, pageout_s = in_latency + size / in_rate, out_latency + size / out_rate
        nodes.append(Node(f"{kind}{layer}", flop / chip["flop_per_j"], flop / chip["flop_per_s"],
                          size, pagein_s * chip["memory_w"], pageout_s * chip["memory_w"],
                          pagein_s, pageout_s, backward=kind == "grad"))
    edges = {(position[p], position[i]) for i in order for p in layers[i][3]}
    name = "poet-resnet18-cifar" if model == "resnet18_cifar" else f"poet-{model}"
    return TrainingGraph(nodes, edges, static_bytes=0, name=f"{name}-{platform}")


def poet_resnet18_cifar_graph():
    """The 133-node training graph POET's solver sees for the README example (a72 profile)."""
    return poet_graph("resnet18_cifar", "a72")


def runtime_budget_s(graph, factor):
    """POET's ``--runtime-budget`` factor as a deadline: factor x one pass's compute time."""
    return factor * math.fsum(node.compute_s for node in graph.nodes)


# name: (model, platform, RAM bytes, runtime factor, where the budget comes from)
INSTANCES = {
    "linear-m0": ("linear", "m0", 3_500, 1.0, "issue 15 (HiGHS wrong-objective report)"),
    "resnet18_cifar-a72": ("resnet18_cifar", "a72", RAM_BUDGET, RUNTIME_FACTOR,
                           "POET README, solve.py example"),
    "resnet18_cifar-m4": ("resnet18_cifar", "m4", 737_719, 1.5, "POET README, API example"),
    "vgg16-m4": ("vgg16", "m4", 80_000_000, 1.5, "ours: about halfway (least 51.4 MB)"),
    "vgg16-a72": ("vgg16", "a72", 80_000_000, RUNTIME_FACTOR, "ours: about halfway"),
    "vgg16-a72-1MB": ("vgg16", "a72", 1_000_000, RUNTIME_FACTOR, "issue 15: infeasible"),
    "transformer-a72": ("transformer", "a72", 34_000_000, RUNTIME_FACTOR,
                        "ours: about halfway (least 31.5 MB)"),
}


class Instance:
    """``graph``, ``ram`` (bytes), ``deadline`` (s), ``factor`` and ``source`` of a budget."""

    def __init__(self, name, graph, ram, deadline, factor, source):
        self.name, self.graph, self.ram, self.deadline = name, graph, ram, deadline
        self.factor, self.source = factor, source


def poet_instance(name):
    """One of :data:`INSTANCES` by name."""
    model, platform, ram, factor, source = INSTANCES[name]
    graph = poet_graph(model, platform)
    return Instance(name, graph, ram, runtime_budget_s(graph, factor), factor, source)


# The deadline of --runtime-budget 7.6: 7.6 times one pass's compute time (0.158 s) = 1.2027 s.
RUNTIME_BUDGET_S = runtime_budget_s(poet_resnet18_cifar_graph(), RUNTIME_FACTOR)
