"""Small training graphs and a board-shaped profile for the POET planner tests."""

from minerva_packager.poet.graph import Node, TrainingGraph
from minerva_packager.poet.training import training_graph

# Same schema as boards/*.json (minerva_packager.boards); the figures are made up.
PROFILE = {"name": "testboard", "heap_bytes": 4096, "sram_bytes": 8192,
           "filesystem": {"size": 65536},
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


def hand_graph():
    """A 4-node graph with round numbers for hand-computed costs: a -> b -> loss -> grad,
    grad also reads a. Energies 1, 2, 3, 4 J; bytes 100, 10, 10, 10."""
    nodes = [Node("a", 1.0, 0.1, 100, pagein_j=0.25, pageout_j=0.5, pagein_s=0.01,
                  pageout_s=0.02),
             Node("b", 2.0, 0.2, 10, 0.25, 0.5, 0.01, 0.02),
             Node("loss", 3.0, 0.3, 10, backward=True),
             Node("grad", 4.0, 0.4, 10, backward=True)]
    return TrainingGraph(nodes, [(0, 1), (1, 2), (2, 3), (0, 3)], static_bytes=50, name="hand")


def tiny_deep():
    """4 layers, the last 2 trained, a large second activation: 7 nodes where keeping,
    recomputing and paging all compete."""
    return training_graph([layer("a", 1000, 4, [-1], out_bytes=100),
                           layer("b", 1500, 4, [0], out_bytes=900),
                           layer("c", 30000, 4, [1], out_bytes=300),
                           layer("d", 20000, 4, [2], out_bytes=300)],
                          PROFILE, trainable_from=2, name="deep")
