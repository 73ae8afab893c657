"""Training graphs for the POET planner, and their JSON file format (docs/poet.md).

A training graph is a DAG of nodes in a topological order (node ``i`` only reads nodes ``< i``).
Every node produces one tensor of ``out_bytes`` and has its own costs: compute energy (J) and
time (s), and the energy/time to page its tensor out to flash and back in. ``backward`` marks the
loss and gradient nodes (they are computed once; only forward nodes are rematerialized).
"""

import json
from pathlib import Path

from ..errors import PackagerError

GRAPH_FORMAT = "minerva-train-graph"
GRAPH_VERSION = 1


class Node:
    """One op of the training iteration and its costs."""

    __slots__ = ("name", "compute_j", "compute_s", "out_bytes", "pagein_j", "pageout_j",
                 "pagein_s", "pageout_s", "backward")

    def __init__(self, name, compute_j, compute_s, out_bytes, pagein_j=0.0, pageout_j=0.0,
                 pagein_s=0.0, pageout_s=0.0, backward=False):
        self.name = name
        self.compute_j = float(compute_j)
        self.compute_s = float(compute_s)
        self.out_bytes = int(out_bytes)
        self.pagein_j = float(pagein_j)
        self.pageout_j = float(pageout_j)
        self.pagein_s = float(pagein_s)
        self.pageout_s = float(pageout_s)
        self.backward = bool(backward)

    def to_json(self):
        return {k: getattr(self, k) for k in self.__slots__}


class TrainingGraph:
    """Nodes in topological order, edges ``(producer, consumer)``, and ``static_bytes`` (RAM that
    is always held: trainable parameters and their gradient accumulators)."""

    def __init__(self, nodes, edges, static_bytes=0, name="graph"):
        self.nodes = list(nodes)
        self.edges = sorted(set((int(a), int(b)) for a, b in edges))
        self.static_bytes = int(static_bytes)
        self.name = name
        n = len(self.nodes)
        self.preds = [[] for _ in range(n)]
        self.succs = [[] for _ in range(n)]
        for a, b in self.edges:
            if not (0 <= a < b < n):
                raise PackagerError(f"{name}: edge {a}->{b} is not forward in node order",
                                    "list nodes in a topological order (producers first)")
            self.preds[b].append(a)
            self.succs[a].append(b)

    def __len__(self):
        return len(self.nodes)

    def horizon(self, i):
        """The last stage at which node ``i`` can still matter.

        Only forward nodes are recomputed, so a forward node matters while some forward node
        reachable from it through forward nodes (itself included) still has a consumer to come.
        A backward node matters until its last consumer.
        """
        return self._horizons()[i]

    def _horizons(self):
        cached = getattr(self, "_horizon_cache", None)
        if cached is not None:
            return cached
        n = len(self.nodes)
        result = [0] * n
        for i in range(n - 1, -1, -1):
            last = max(self.succs[i], default=i)
            if not self.nodes[i].backward:
                for j in self.succs[i]:
                    if not self.nodes[j].backward:
                        last = max(last, result[j])
            result[i] = last
        self._horizon_cache = result
        return result

    def to_json(self):
        return {"format": GRAPH_FORMAT, "version": GRAPH_VERSION, "name": self.name,
                "static_bytes": self.static_bytes,
                "nodes": [node.to_json() for node in self.nodes],
                "edges": [list(e) for e in self.edges]}


def graph_from_json(data, name="graph"):
    """Build a :class:`TrainingGraph` from the JSON object ``data`` (docs/poet.md)."""
    if data.get("format", GRAPH_FORMAT) != GRAPH_FORMAT:
        raise PackagerError(f"{name}: format is {data.get('format')!r}, not {GRAPH_FORMAT!r}",
                            "write a training graph JSON as described in docs/poet.md")
    if int(data.get("version", GRAPH_VERSION)) > GRAPH_VERSION:
        raise PackagerError(f"{name}: graph version {data['version']} is newer than this "
                            f"planner (reads {GRAPH_VERSION})", "update minerva")
    nodes = []
    for index, raw in enumerate(data.get("nodes") or []):
        try:
            nodes.append(Node(raw.get("name", f"n{index}"), raw["compute_j"], raw["compute_s"],
                              raw["out_bytes"], raw.get("pagein_j", 0.0),
                              raw.get("pageout_j", 0.0), raw.get("pagein_s", 0.0),
                              raw.get("pageout_s", 0.0), raw.get("backward", False)))
        except (KeyError, TypeError, ValueError) as exc:
            raise PackagerError(f"{name}: node {index} is incomplete or malformed ({exc})",
                                "each node needs compute_j, compute_s and out_bytes")
    if not nodes:
        raise PackagerError(f"{name}: the graph has no nodes", "add nodes (docs/poet.md)")
    for node in nodes:
        if min(node.compute_j, node.compute_s, node.out_bytes, node.pagein_j, node.pageout_j,
               node.pagein_s, node.pageout_s) < 0:
            raise PackagerError(f"{name}: node {node.name!r} has a negative cost or size",
                                "costs and sizes are >= 0")
    try:
        edges = [(int(a), int(b)) for a, b in data.get("edges", [])]
    except (TypeError, ValueError):
        raise PackagerError(f"{name}: edges must be [producer, consumer] index pairs",
                            "see docs/poet.md")
    return TrainingGraph(nodes, edges, data.get("static_bytes", 0), data.get("name", name))


def load_graph(path):
    """Read a training graph JSON file."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise PackagerError(f"{path}: cannot read: {exc.strerror}", "check the path")
    except ValueError as exc:
        raise PackagerError(f"{path}: not valid JSON: {exc}", "fix the graph file")
    return graph_from_json(data, name=str(path))


def costs_from_board(board, macs, out_bytes):
    """Energy and time of a node doing ``macs`` MACs and producing ``out_bytes``, from a board
    profile (``boards/*.json``): returns the keyword arguments of :class:`Node`."""
    energy, timing = board["energy"], board["timing"]
    return {"compute_j": macs * energy["compute_j_per_mac"],
            "compute_s": macs * timing["compute_s_per_mac"],
            "out_bytes": out_bytes,
            "pagein_j": out_bytes * energy["flash_read_j_per_byte"],
            "pageout_j": out_bytes * energy["flash_write_j_per_byte"],
            "pagein_s": out_bytes * timing["flash_read_s_per_byte"],
            "pageout_s": out_bytes * timing["flash_write_s_per_byte"]}
