"""Training graphs: the JSON format, horizons, board costs, and graphs built from models."""

import json

import pytest
from poet_graphs import PROFILE, hand_graph

from minerva_packager.errors import PackagerError
from minerva_packager.poet.graph import costs_from_board, graph_from_json, load_graph
from minerva_packager.poet.model_graph import capsule_layers, model_training_graph, op_macs
from minerva_packager.poet.training import chain_layers, resnet_layers, training_graph


def test_graph_json_round_trips_through_a_file(tmp_path):
    graph = hand_graph(static_bytes=50)
    path = tmp_path / "g.json"
    path.write_text(json.dumps(graph.to_json()))
    again = load_graph(path)
    assert again.to_json() == graph.to_json()
    assert again.preds[4] == [0, 3] and again.succs[0] == [1, 4]


def test_minimal_node_entries_default_their_paging_costs():
    graph = graph_from_json({"nodes": [{"compute_j": 1, "compute_s": 0.1, "out_bytes": 8},
                                       {"compute_j": 2, "compute_s": 0.2, "out_bytes": 4,
                                        "backward": True}],
                             "edges": [[0, 1]]})
    assert graph.nodes[0].pagein_j == 0.0 and graph.nodes[1].backward
    assert graph.nodes[0].name == "n0"


@pytest.mark.parametrize("data, message", [
    ({"nodes": []}, "no nodes"),
    ({"nodes": [{"compute_j": 1, "compute_s": 1}]}, "node 0 is incomplete"),
    ({"nodes": [{"compute_j": -1, "compute_s": 1, "out_bytes": 1}]}, "negative"),
    ({"nodes": [{"compute_j": 1, "compute_s": 1, "out_bytes": 1}] * 2, "edges": [[1, 0]]},
     "not forward in node order"),
    ({"format": "other", "nodes": []}, "not 'minerva-train-graph'"),
    ({"version": 9, "nodes": []}, "newer than this planner"),
    ({"nodes": [{"compute_j": 1, "compute_s": 1, "out_bytes": 1}], "edges": [["x"]]},
     "index pairs"),
])
def test_bad_graph_files_are_named_with_a_fix(data, message):
    with pytest.raises(PackagerError) as caught:
        graph_from_json(data, name="g.json")
    assert message in str(caught.value) and "g.json" in str(caught.value)


def test_unreadable_graph_file(tmp_path):
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(PackagerError, match="not valid JSON"):
        load_graph(tmp_path / "bad.json")
    with pytest.raises(PackagerError, match="cannot read"):
        load_graph(tmp_path / "absent.json")


def test_horizon_of_a_chain_is_the_backward_node_that_reads_it():
    graph = training_graph(chain_layers(4), PROFILE)
    # forward 0..3, loss 4, grads of layers 3, 2, 1, 0 at 5, 6, 7, 8
    assert [graph.horizon(i) for i in range(4)] == [8, 7, 6, 5]
    assert graph.horizon(4) == 5 and graph.horizon(5) == 6
    assert graph.static_bytes == 4 * 4 * 72 * 8


def test_costs_come_from_the_board_profile():
    costs = costs_from_board(PROFILE, macs=1000, out_bytes=10)
    assert costs["compute_j"] == pytest.approx(1e-6)
    assert costs["compute_s"] == pytest.approx(1e-5)
    assert costs["pageout_j"] == pytest.approx(2e-7)
    assert costs["pagein_s"] == pytest.approx(1e-7)


def test_resnet_like_graph_has_skip_edges_and_gradient_fan_in():
    graph = training_graph(resnet_layers(3), PROFILE)
    adds = [i for i, node in enumerate(graph.nodes)
            if node.name.endswith("_add") and not node.backward]
    assert all(len(graph.preds[i]) == 2 for i in adds)
    stem_grad = next(i for i, node in enumerate(graph.nodes) if node.name == "grad_stem")
    assert len([p for p in graph.preds[stem_grad] if graph.nodes[p].backward]) == 2


def test_op_macs_follow_the_argument_blocks():
    conv = [1, 32, 32, 3, 32, 32, 16, 3, 3, 1, 1, 1, 1, 1, 1, 0, 0, -128, 127]
    assert op_macs("CONV_2D", conv) == 32 * 32 * 16 * 3 * 3 * 3
    assert op_macs("FULLY_CONNECTED", [1, 64, 10, 0, 0, 0, -128, 127]) == 640
    assert op_macs("RESHAPE", [64]) == 0


@pytest.mark.parametrize("trainable, nodes", [("last:2", 23), ("all", 33), ("last:99", 33)])
def test_training_graph_of_the_resnet8_model(shared_models, trainable, nodes):
    graph = model_training_graph(shared_models / "ic01_resnet8_int8.tflite", PROFILE, trainable)
    assert len(graph) == nodes
    forward = [n for n in graph.nodes if not n.backward]
    assert len(forward) == 16
    assert forward[0].compute_j == pytest.approx(32 * 32 * 16 * 27 * 1e-9)
    assert forward[0].out_bytes == 32 * 32 * 16
    if trainable == "last:2":
        # in op order, the last two with weights: the 1x1 shortcut conv and the FC
        assert graph.static_bytes == 4 * (64 * 32 + 64 + 640 + 10)


def test_training_graph_from_a_capsule_equals_the_tflite_one(shared_models, tmp_path):
    from minerva_packager.capsule.container import read_capsule
    from minerva_packager.capsule.pack import pack_file

    model = shared_models / "kws01_dscnn_int8.tflite"
    capsule = tmp_path / "kws.cap"
    pack_file(model, capsule)
    a = model_training_graph(capsule, PROFILE, "last:3").to_json()
    b = model_training_graph(model, PROFILE, "last:3").to_json()
    a.pop("name"), b.pop("name")
    assert a == b
    layers = capsule_layers(read_capsule(str(capsule)))
    assert [layer["inputs"] for layer in layers[:3]] == [[-1], [0], [1]]


def test_bad_trainable_spec(shared_models):
    with pytest.raises(PackagerError, match="--trainable 'last:x'"):
        model_training_graph(shared_models / "ad01_fc_autoencoder_int8.tflite", PROFILE,
                             "last:x")
