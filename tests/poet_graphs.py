"""Small training graphs and a board-shaped profile for the POET planner tests."""

from minerva_packager.poet.graph import Node, TrainingGraph
from minerva_packager.poet.training import training_graph

# Same schema as boards/*.json (minerva_packager.board.profiles); the figures are made up.
PROFILE = {"name": "testboard", "heap_bytes": 4096, "sram_bytes": 8192,
           "filesystem": {"size": 65536},
           # A planner test board: no runtime counted against its tiny heap.
           "memory": {"runtime_bytes": 0},
           "energy": {"compute_j_per_mac": 1e-9, "flash_read_j_per_byte": 2e-9,
                      "flash_write_j_per_byte": 2e-8},
           "timing": {"compute_s_per_mac": 1e-8, "flash_read_s_per_byte": 1e-8,
                      "flash_write_s_per_byte": 1e-7}}


def layer(name, macs, elems, inputs, params=10, out_bytes=None):
    spec = {"name": name, "macs": macs, "out_elems": elems, "inputs": inputs, "params": params}
    if out_bytes is not None:
        spec["out_bytes"] = out_bytes
    return spec


def tiny_chain():
    """3 layers, the last 2 trained: 6 nodes."""
    return training_graph([layer("a", 5000, 100, [-1]), layer("b", 3000, 200, [0]),
                           layer("c", 8000, 50, [1])], PROFILE, trainable_from=1, name="chain")


def tiny_residual():
    """conv, conv, add(skip): activations larger than gradients, all trained: 7 nodes."""
    return training_graph([layer("a", 2000, 16, [-1], out_bytes=600),
                           layer("b", 9000, 16, [0], out_bytes=700),
                           layer("add", 100, 16, [1, 0], params=0, out_bytes=500)],
                          PROFILE, trainable_from=0, name="residual")


def tiny_two_layer():
    """2 layers, all trained: 5 nodes; the first is cheap to recompute."""
    return training_graph([layer("a", 500, 20, [-1], out_bytes=900),
                           layer("b", 20000, 20, [0], out_bytes=800)], PROFILE, name="two")


def hand_graph(static_bytes=0):
    """a -> b -> c -> loss -> grad, and grad also reads a; round numbers for hand sums.

    Energies 1..5 J, times 0.1..0.5 s, bytes a 100, b 60, c 60, loss 10, grad 10; paging a
    costs 0.5 J / 0.02 s out and 0.25 J / 0.01 s in. Keeping everything peaks at 220 bytes
    while c is computed (a, b, c); the least RAM is 160 (a and b while b is computed).
    """
    page = {"pagein_j": 0.25, "pageout_j": 0.5, "pagein_s": 0.01, "pageout_s": 0.02}
    nodes = [Node("a", 1.0, 0.1, 100, **page), Node("b", 2.0, 0.2, 60, **page),
             Node("c", 3.0, 0.3, 60, **page), Node("loss", 4.0, 0.4, 10, backward=True, **page),
             Node("grad", 5.0, 0.5, 10, backward=True, **page)]
    return TrainingGraph(nodes, [(0, 1), (1, 2), (2, 3), (3, 4), (0, 4)],
                         static_bytes=static_bytes, name="hand")


def tiny_deep():
    """4 layers, the last 2 trained, a large second activation: 7 nodes where keeping,
    recomputing and paging all compete."""
    return training_graph([layer("a", 1000, 4, [-1], out_bytes=100),
                           layer("b", 1500, 4, [0], out_bytes=900),
                           layer("c", 30000, 4, [1], out_bytes=300),
                           layer("d", 20000, 4, [2], out_bytes=300)],
                          PROFILE, trainable_from=2, name="deep")
