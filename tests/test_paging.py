"""Weights that do not fit the heap are paged from the capsule file into arena slots."""

import json

import numpy as np
import pytest
from device_runner import run_on_cpython, run_on_micropython

import minerva
from minerva_packager.board.profiles import load_board
from minerva_packager.capsule.container import read_capsule
from minerva_packager.capsule.pack import pack_file, pack_tflite
from minerva_packager.errors import PackagerError

RP2040 = load_board("rp2040")
# A 200 KB heap: the whole IC model does not fit it, its paged plan does. (The Pico's measured
# heap, 245,888 B, holds the whole model; its budget is checked in test_pico.py.)
HEAP = str(200 * 1024)
BOARD_HEAP = str(RP2040["heap_bytes"])  # the virtual board caps MicroPython's heap to this


@pytest.fixture(scope="module")
def ic(shared_models, tmp_path_factory):
    folder = tmp_path_factory.mktemp("paging")
    whole, paged = folder / "ic.cap", folder / "ic_paged.cap"
    src = shared_models / "ic01_resnet8_int8.tflite"
    pack_file(src, whole)
    pack_file(src, paged, ram_budget=100_000)
    x = np.random.default_rng(3).integers(-128, 128, 3072, dtype=np.int8).tobytes()
    return whole, paged, x


def test_plan_pages_the_largest_filters_until_it_fits(ic):
    whole, paged, _ = ic
    a, b = read_capsule(whole), read_capsule(paged)
    assert not a.meta["paged_tensors"] and b.meta["paged_tensors"]
    assert b.meta["ram_bytes"] <= 100_000 < a.meta["ram_bytes"]
    assert "RESIDENCY" in b.sections
    # Page slots live in the arena, alive only while their op runs.
    assert a.arena_bytes <= b.arena_bytes < a.arena_bytes + sum(
        b.tensors[i].nbytes for i in b.meta["paged_tensors"])


def test_paged_model_runs_where_the_whole_one_cannot(ic, micropython, tmp_path,
                                                    deployed_runtime):
    whole, paged, x = ic
    expected = run_on_cpython(whole, [x])
    assert run_on_micropython(micropython, paged, [x], tmp_path, heapsize=HEAP,
                              kernels="python", extra_path=[deployed_runtime]) == expected
    proc = micropython.run(f"""
import minerva
try:
    minerva.load({str(whole)!r}, kernels="python")
    print("LOADED")
except minerva.CapsuleError as e:
    print("REFUSED", e)
""", heapsize=HEAP, extra_path=[deployed_runtime])
    assert proc.stdout.startswith("REFUSED") and "not enough RAM" in proc.stdout


def test_forced_paging_matches_resident(ic):
    whole, _, x = ic
    m = minerva.load(str(whole), kernels="python", paged=True)
    assert m.paged and bytes(m.run(x)) == run_on_cpython(whole, [x])[0]
    m.close()


@pytest.fixture(scope="module")
def deployed_runtime(tmp_path_factory):
    """The runtime as `minerva deploy` puts it on a board: .mpy files (compiling .py source
    on the board would take heap a deployed board never spends)."""
    from minerva_packager.board.device_files import runtime_files

    root = tmp_path_factory.mktemp("lib")
    for path, data in runtime_files(load_board("unix"), arch="x64").items():
        if path.endswith(".mpy") and "/minerva/" in path:
            dest = root / "minerva" / path.rsplit("/", 1)[1]
            dest.parent.mkdir(exist_ok=True)
            dest.write_bytes(data)
    return root


@pytest.mark.parametrize("name", ["kws01_dscnn_int8", "ic01_resnet8_int8",
                                  "ad01_fc_autoencoder_int8"])
def test_packed_for_rp2040_runs_on_its_heap(shared_models, micropython, tmp_path, name,
                                            deployed_runtime):
    src = shared_models / f"{name}.tflite"
    whole, fitted = tmp_path / "whole.cap", tmp_path / "rp2040.cap"
    pack_file(src, whole)
    pack_file(src, fitted, board=RP2040)
    size = int(np.prod(read_capsule(whole).meta["inputs"][0]["shape"]))
    x = np.random.default_rng(4).integers(-128, 128, size, dtype=np.int8).tobytes()
    assert run_on_micropython(micropython, fitted, [x], tmp_path, heapsize=BOARD_HEAP,
                              kernels="python", extra_path=[deployed_runtime]) \
        == run_on_cpython(whole, [x])


def test_budget_too_small_is_a_clear_error(shared_models):
    with pytest.raises(PackagerError, match="even with every filter paged"):
        pack_tflite(shared_models / "ad01_fc_autoencoder_int8.tflite", ram_budget=50_000)


def test_bad_residency_is_rejected(ic, tmp_path):
    from test_capsule_errors import sections_of

    from minerva_packager.capsule.container import SECTION_TYPES, encode_capsule

    _, paged, _ = ic
    data = paged.read_bytes()
    names = {v: k for k, v in SECTION_TYPES.items()}
    parts = {names[kind]: data[off:off + n] for kind, _, off, n in sections_of(data)}
    plan = json.loads(parts["RESIDENCY"])
    for case, change in (("outside the arena", lambda p: p["paged"][0].__setitem__(1, 10**7)),
                         ("not a conv/fc filter", lambda p: p["paged"][0].__setitem__(0, 0)),
                         (r"paged\[1\] is not a JSON list", lambda p: p["paged"].append(7))):
        bad_plan = json.loads(json.dumps(plan))
        change(bad_plan)
        bad = tmp_path / "bad.cap"
        bad.write_bytes(encode_capsule([
            ("META", parts["META"], True), ("GRAPH", parts["GRAPH"], True),
            ("WEIGHTS", parts["WEIGHTS"], True),
            ("RESIDENCY", json.dumps(bad_plan).encode(), False)]))
        with pytest.raises(minerva.CapsuleError, match=case):
            minerva.load(str(bad))
