"""A canonical node order, so that a plan does not depend on how the caller numbered the graph.

The stage formulations tie stage ``t`` to node ``t``: two valid topological orders of one
graph are two different MILPs, and the same solver in the same time proved gaps from 0.26 %
to 2.8 % on POET's ResNet-18 depending on the numbering alone (issue 15). The planner therefore
renumbers every graph the same way before building stages, and maps the schedule back.

The order is a list schedule that keeps live bytes low: of the nodes whose inputs are all
computed, the next is the one that adds the fewest bytes to what is live (its output, minus
the inputs it is the last reader of). A chain is thus followed to its end before a branch is
opened, and of two branches the one that ends in a smaller tensor goes first. Ties go to the
node with the longer path to a sink, then to the smaller name, then to a structural signature
(a hash of costs and neighbourhood, refined over the graph): nothing depends on the input
indices, so any numbering of one graph gives the same canonical graph.
"""

import hashlib

from .graph import TrainingGraph


def _signatures(graph, rounds=4):
    """A structural label per node: its costs, refined with its neighbours' labels."""
    def digest(text):
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    labels = [digest(repr((node.backward, node.out_bytes, node.compute_j, node.compute_s,
                           node.pagein_j, node.pageout_j, node.pagein_s, node.pageout_s)))
              for node in graph.nodes]
    for _ in range(rounds):
        labels = [digest(repr((labels[i], sorted(labels[p] for p in graph.preds[i]),
                               sorted(labels[s] for s in graph.succs[i]))))
                  for i in range(len(graph))]
    return labels


def _sink_depths(graph):
    depth = [0] * len(graph)
    for i in range(len(graph) - 1, -1, -1):
        for j in graph.succs[i]:
            depth[i] = max(depth[i], depth[j] + 1)
    return depth


def canonical_order(graph):
    """Original indices in canonical order (``order[new] = old``)."""
    n = len(graph)
    nodes, preds, succs = graph.nodes, graph.preds, graph.succs
    depth, signature = _sink_depths(graph), _signatures(graph)
    waiting = [len(set(preds[i])) for i in range(n)]
    readers_left = [len(set(succs[i])) for i in range(n)]

    def key(i):
        # The index comes last: it decides only between nodes with one name and one
        # signature, which no renumbering tells apart.
        freed = sum(nodes[p].out_bytes for p in set(preds[i]) if readers_left[p] == 1)
        return (nodes[i].out_bytes - freed, -depth[i], nodes[i].name, signature[i], i)

    ready = [i for i in range(n) if waiting[i] == 0]
    order = []
    while ready:
        # The key of a ready node changes as other readers of its inputs are scheduled, so it
        # is recomputed each time (graphs have hundreds of nodes: n^2 is cheap).
        best = min(ready, key=key)
        ready.remove(best)
        order.append(best)
        for p in set(preds[best]):
            readers_left[p] -= 1
        for j in set(succs[best]):
            waiting[j] -= 1
            if waiting[j] == 0:
                ready.append(j)
    return order


def renumber(graph, order):
    """``graph`` with node ``order[k]`` as node ``k``."""
    position = {old: new for new, old in enumerate(order)}
    edges = [(position[a], position[b]) for a, b in graph.edges]
    return TrainingGraph([graph.nodes[i] for i in order], edges, graph.static_bytes, graph.name)


def canonical_graph(graph):
    """``(canonical graph, order)``; ``order[k]`` is the caller's index of canonical node k."""
    order = canonical_order(graph)
    return renumber(graph, order), order


def document_for(graph, order, document):
    """A schedule document planned on the canonical graph, in the numbering of ``graph``.

    Steps name the caller's nodes; ``stage`` stays the planner's stage (a label the checker
    and the trainer do not use)."""
    from .schedule import graph_digest

    mapped = dict(document)
    mapped["steps"] = [dict(step, node=order[step["node"]]) for step in document["steps"]]
    mapped["tensors"] = [node.name for node in graph.nodes]
    mapped["graph"], mapped["graph_sha256"] = graph.name, graph_digest(graph)
    return mapped
