"""The data-movement ops (TRANSPOSE, STRIDED_SLICE, PAD, PADV2, SQUEEZE, EXPAND_DIMS,
RESIZE_NEAREST_NEIGHBOR, CONCATENATION) and constant folding: kernel by kernel on every tier,
random geometries through whole models against TFLite Micro, folded constants, and refusals.
The catalogue models (tests/opmodels.py SHAPE_MODELS) also run in test_ops.py,
test_kernels_tiers.py and test_natmod.py."""

import json

import numpy as np
import pytest
from geometries_shape import GENERATORS, MODEL_GENERATORS, kernel_call_args
from reference import run_tflm
from test_natmod import build_natmod

import minerva
from minerva import kernels_np, shape_py
from minerva_packager.capsule.pack import pack_file, pack_tflite
from minerva_packager.capsule.tflite_writer import TfliteBuilder
from minerva_packager.errors import PackagerError

KERNEL_CASES_PER_OP = 40
RANDOM_MODELS_PER_OP = 200
MICROPYTHON_MODELS_PER_OP = 25
GUARD = 0x5A


def _kernel_cases():
    cases = []
    for name, generate in sorted(GENERATORS.items()):
        for seed in range(KERNEL_CASES_PER_OP):
            cases.append((f"{name}_{seed}", generate(np.random.default_rng(seed))))
    return cases


def _run(module, case):
    call = kernel_call_args(case)
    getattr(module, case[0])(*call)
    return bytes(call[-2])


def test_shape_kernels_numpy_equals_spec():
    for label, case in _kernel_cases():
        assert _run(kernels_np, case) == _run(shape_py, case), label


# Each buffer inside a guarded array at an odd offset, handed over as a memoryview slice as
# the arena does; CONCATENATION's inputs as one tuple. Prints every tier's output and guards.
_MP_KERNELS = """
import json, binascii, sys
from array import array
from minerva import shape_py, viper_shape
tiers = [shape_py, viper_shape]
try:
    import minerva_nat
    tiers.append(minerva_nat)
except ImportError:
    print("NO NATMOD")
def place(t, raw, pad):
    values = array(t, binascii.unhexlify(raw))
    if t != "b":
        return values, None
    whole = array("b", [{guard}] * (len(values) + 2 * pad))
    for i, v in enumerate(values):
        whole[pad + i] = v
    return memoryview(whole)[pad:pad + len(values)], whole
for label, op, bufs, args, out_len in json.load(open({path!r})):
    outs = []
    for tier in tiers:
        ins = [tuple(place(t, v, 3)[0] for t, v in vals) if kind == "tuple"
               else place(kind, vals, 3)[0] for kind, vals in bufs]
        out, whole = place("b", "00" * out_len, 5)
        getattr(tier, op)(*(ins + [out, array("i", args)]))
        ok = all(whole[i] == {guard} for i in list(range(5)) + list(range(len(whole) - 5,
                                                                             len(whole))))
        outs.append(binascii.hexlify(bytes(out)).decode() + ("" if ok else "!GUARDS"))
    print("CASE", label, " ".join(outs))
"""


def _hex(kind, values):
    from array import array

    return array(kind, values).tobytes().hex()


def test_shape_kernels_viper_and_natmod_equal_spec(micropython, tmp_path):
    natmod = build_natmod("x64")
    cases = _kernel_cases()
    payload = []
    for label, (op, bufs, args, (_, out_len)) in cases:
        raw = [(kind, [(t, _hex(t, v)) for t, v in vals]) if kind == "tuple"
               else (kind, _hex(kind, vals)) for kind, vals in bufs]
        payload.append([label, op, raw, args, out_len])
    path = tmp_path / "cases.json"
    path.write_text(json.dumps(payload))
    proc = micropython.run(_MP_KERNELS.format(path=str(path), guard=GUARD), heapsize="8M",
                           extra_path=[natmod.parent])
    assert "NO NATMOD" not in proc.stdout
    lines = {line.split()[1]: line.split()[2:] for line in proc.stdout.splitlines()
             if line.startswith("CASE ")}
    assert len(lines) == len(cases)
    for label, case in cases:
        spec = _run(shape_py, case).hex()
        assert lines[label] == [spec] * 3, f"{label}: python, viper, natmod differ: {case!r}"


# -- random geometries through whole models, against TFLite Micro ----------------------------

def _random_case(op, seed, tmp_path):
    tflite, shapes = MODEL_GENERATORS[op](np.random.default_rng(seed))
    src = tmp_path / f"{op}_{seed}.tflite"
    src.write_bytes(tflite)
    cap = tmp_path / f"{op}_{seed}.cap"
    pack_file(src, cap)
    rng = np.random.default_rng(seed + 10_000)
    xs = [rng.integers(-128, 128, s).astype(np.int8) for s in shapes]
    return tflite, cap, xs, np.ascontiguousarray(run_tflm(tflite, xs)[0]).tobytes()


def _repro(op, seed):
    return (f"repro: from geometries_shape import MODEL_GENERATORS; import numpy as np; "
            f"MODEL_GENERATORS[{op!r}](np.random.default_rng({seed}))")


@pytest.mark.parametrize("op", sorted(MODEL_GENERATORS))
def test_random_geometries_bit_exact_with_tflm(op, tmp_path):
    for seed in range(RANDOM_MODELS_PER_OP):
        _, cap, xs, want = _random_case(op, seed, tmp_path)
        inp = xs[0].tobytes() if len(xs) == 1 else [x.tobytes() for x in xs]
        for tier in ("numpy", "python"):
            got = bytes(minerva.load(str(cap), kernels=tier).run(inp))
            assert got == want, f"{op} seed {seed} on {tier} differs from TFLM; " \
                                + _repro(op, seed)
        cap.unlink()


_MP_MODELS = """
import binascii, json, minerva
for cap, inputs, tier in json.load(open({path!r})):
    m = minerva.load(cap, kernels=tier)
    assert not m.info()["fallbacks"], m.info()["fallbacks"]
    xs = [binascii.unhexlify(x) for x in inputs]
    print("OUT", binascii.hexlify(bytes(m.run(xs[0] if len(xs) == 1 else xs))).decode())
"""


def test_random_geometries_viper_and_natmod_bit_exact_with_tflm(micropython, tmp_path):
    natmod = build_natmod("x64")
    jobs, wants = [], []
    for op in sorted(MODEL_GENERATORS):
        for seed in range(MICROPYTHON_MODELS_PER_OP):
            _, cap, xs, want = _random_case(op, seed, tmp_path)
            for tier in ("viper", "natmod"):
                jobs.append([str(cap), [x.tobytes().hex() for x in xs], tier])
                wants.append((op, seed, tier, want))
    path = tmp_path / "jobs.json"
    path.write_text(json.dumps(jobs))
    out = micropython.run(_MP_MODELS.format(path=str(path)), heapsize="8M",
                          extra_path=[natmod.parent]).stdout
    got = [bytes.fromhex(line[4:]) for line in out.splitlines() if line.startswith("OUT ")]
    assert len(got) == len(wants)
    for g, (op, seed, tier, want) in zip(got, wants):
        assert g == want, f"{op} seed {seed} on {tier} differs from TFLM; " + _repro(op, seed)


# -- constant folding ------------------------------------------------------------------------

def _folding_model():
    """A PyTorch-style export: the conv filter is stored OIHW and transposed to OHWI by a
    TRANSPOSE of the constant; a constant is reshaped, padded and concatenated with the
    conv's output."""
    rng = np.random.default_rng(3)
    b = TfliteBuilder()
    x = b.tensor("x", (1, 5, 5, 3), scale=0.05, zero_point=-3)
    w_oihw = b.tensor("w_oihw", (4, 3, 3, 3), data=rng.integers(-127, 128, (4, 3, 3, 3)),
                      scale=0.02, zero_point=0)
    perm = b.tensor("perm", (4,), "int32", data=[0, 2, 3, 1])
    w = b.tensor("w_ohwi", (4, 3, 3, 3), scale=0.02, zero_point=0)
    b.op("TRANSPOSE", [w_oihw, perm], [w])
    bias = b.tensor("bias", (4,), "int32", data=rng.integers(-500, 500, 4), scale=0.001,
                    zero_point=0)
    y = b.tensor("y", (1, 5, 5, 4), scale=0.1, zero_point=2)
    b.op("CONV_2D", [x, w, bias], [y], padding="SAME")
    c = b.tensor("c", (3, 3, 2), data=rng.integers(-128, 128, (3, 3, 2)), scale=0.1,
                 zero_point=2)
    shape = b.tensor("shape", (4,), "int32", data=[1, 3, 3, 2])
    c4 = b.tensor("c4", (1, 3, 3, 2), scale=0.1, zero_point=2)
    b.op("RESHAPE", [c, shape], [c4], new_shape=(1, 3, 3, 2))
    pads = b.tensor("pads", (4, 2), "int32", data=[[0, 0], [1, 1], [0, 2], [0, 0]])
    padded = b.tensor("padded", (1, 5, 5, 2), scale=0.1, zero_point=2)
    b.op("PAD", [c4, pads], [padded])
    out = b.tensor("out", (1, 5, 5, 6), scale=0.1, zero_point=2)
    b.op("CONCATENATION", [y, padded], [out], axis=3)
    return b.build([x], [out])


def test_constant_subgraphs_are_folded_at_pack_time(tmp_path):
    from minerva_packager.capsule.container import read_capsule

    tflite = _folding_model()
    src = tmp_path / "fold.tflite"
    src.write_bytes(tflite)
    cap = tmp_path / "fold.cap"
    pack_file(src, cap)
    # TRANSPOSE, RESHAPE and PAD of constants left no op on the board.
    assert read_capsule(cap).meta["ops"] == ["CONV_2D", "CONCATENATION"]
    rng = np.random.default_rng(1)
    xs = [rng.integers(-128, 128, (1, 5, 5, 3)).astype(np.int8) for _ in range(3)]
    for x in xs:
        want = np.ascontiguousarray(run_tflm(tflite, [x])[0]).tobytes()
        for tier in ("python", "numpy"):
            assert bytes(minerva.load(str(cap), kernels=tier).run(x.tobytes())) == want


def test_transpose_then_slice_is_one_gather(tmp_path):
    from opmodels import build_op_model

    from minerva_packager.capsule.container import read_capsule

    src = tmp_path / "m.tflite"
    src.write_bytes(build_op_model("conv_transpose_slice", 0).tflite)
    assert read_capsule(pack_tflite(src)).meta["ops"] == ["CONV_2D", "GATHER"]


def test_slice_down_to_a_scalar(tmp_path):
    # Every axis shrunk: a rank-0 output (one byte in the capsule).
    b = TfliteBuilder()
    x = b.tensor("x", (2, 3), scale=0.1, zero_point=1)
    consts = [b.tensor(n, (2,), "int32", data=v)
              for n, v in (("begin", [1, -1]), ("end", [2, 3]), ("strides", [1, 1]))]
    y = b.tensor("y", (), scale=0.1, zero_point=1)
    b.op("STRIDED_SLICE", [x, *consts], [y], shrink_axis_mask=3)
    tflite = b.build([x], [y])
    src = tmp_path / "scalar.tflite"
    src.write_bytes(tflite)
    pack_file(src, tmp_path / "scalar.cap")
    x = np.arange(6, dtype=np.int8).reshape(2, 3)
    want = np.ascontiguousarray(run_tflm(tflite, [x])[0]).tobytes()
    assert want == b"\x05"
    assert bytes(minerva.load(str(tmp_path / "scalar.cap")).run(x.tobytes())) == want


# -- refusals: the packager names op and index; hostile capsules are CapsuleErrors --------------

def _slice_model(**options):
    b = TfliteBuilder()
    x = b.tensor("x", (1, 4, 4, 2), scale=0.1, zero_point=0)
    consts = [b.tensor(n, (4,), "int32", data=v) for n, v in
              (("begin", [0, 0, 0, 0]), ("end", [1, 2, 2, 2]), ("strides", [1, 1, 1, 1]))]
    y = b.tensor("y", (1, 2, 2, 2), scale=0.1, zero_point=0)
    b.op("STRIDED_SLICE", [x, *consts], [y], **options)
    return b.build([x], [y])


@pytest.mark.parametrize("options, message", [
    ({"ellipsis_mask": 1}, "ellipsis_mask and new_axis_mask are not supported"),
    ({"new_axis_mask": 2}, "ellipsis_mask and new_axis_mask are not supported"),
    ({"offset": True}, "the offset option is not supported"),
])
def test_pack_refuses_slice_options_tflm_ignores(tmp_path, options, message):
    src = tmp_path / "slice.tflite"
    src.write_bytes(_slice_model(**options))
    with pytest.raises(PackagerError, match=message) as info:
        pack_tflite(src)
    assert "op STRIDED_SLICE (index 0)" in str(info.value)


def test_pack_refuses_shrink_axis_with_negative_stride(tmp_path):
    # TFLite Micro loops from start while i > start + 1 there: it writes nothing at all and
    # its output is whatever the arena held (checked: [107, 4, 0, 0] for x[1, 0:4]).
    b = TfliteBuilder()
    x = b.tensor("x", (3, 4), scale=0.1, zero_point=1)
    consts = [b.tensor(n, (2,), "int32", data=v)
              for n, v in (("begin", [1, 0]), ("end", [2, 4]), ("strides", [-1, 1]))]
    y = b.tensor("y", (4,), scale=0.1, zero_point=1)
    b.op("STRIDED_SLICE", [x, *consts], [y], shrink_axis_mask=1)
    src = tmp_path / "shrink.tflite"
    src.write_bytes(b.build([x], [y]))
    with pytest.raises(PackagerError, match=r"op STRIDED_SLICE \(index 0\): axis 0 is shrunk "
                                            "with a negative stride"):
        pack_tflite(src)


def test_pack_refuses_concatenation_of_different_scales(tmp_path):
    b = TfliteBuilder()
    x1 = b.tensor("x1", (1, 3), scale=0.1, zero_point=0)
    x2 = b.tensor("x2", (1, 3), scale=0.2, zero_point=0)
    y = b.tensor("y", (1, 6), scale=0.1, zero_point=0)
    b.op("CONCATENATION", [x1, x2], [y], axis=1)
    src = tmp_path / "concat.tflite"
    src.write_bytes(b.build([x1, x2], [y]))
    with pytest.raises(PackagerError, match="requires them equal") as info:
        pack_tflite(src)
    assert "op CONCATENATION (index 0)" in str(info.value)


def _gather_capsule(table, params, table_storage="weights", in_bytes=None):
    from minerva_packager.capsule.container import (
        CapsuleOp,
        CapsuleTensor,
        encode_capsule,
        encode_graph,
        layout_weights,
    )

    in_n = in_bytes or params[0]
    out_n = params[1] * params[2] * params[3] * params[4]
    tensors = [CapsuleTensor("x", "int8", (max(in_n, 1),), "arena", None, 0, 1.0),
               CapsuleTensor("t", "int32", (len(table),), table_storage,
                             np.asarray(table, "<i4").tobytes(), 0, 0.0),
               CapsuleTensor("y", "int8", (max(out_n, 1),), "arena", None, 0, 1.0)]
    tensors[2].offset = tensors[0].nbytes
    arena = tensors[0].nbytes + tensors[2].nbytes
    weights = layout_weights(tensors)
    graph = encode_graph(tensors, [CapsuleOp("GATHER", [0, 1], [2], params)], [0], [2], arena)
    meta = json.dumps({"name": "hostile"}).encode()
    return encode_capsule([("META", meta, True), ("GRAPH", graph, True),
                           ("WEIGHTS", weights, True)])


def _concat_capsule(sizes, params):
    from minerva_packager.capsule.container import (
        CapsuleOp,
        CapsuleTensor,
        encode_capsule,
        encode_graph,
    )

    tensors = [CapsuleTensor(f"x{k}", "int8", (n,), "arena", None, 0, 1.0)
               for k, n in enumerate(sizes)]
    offset = 0
    for t in tensors:
        t.offset = offset
        offset += t.nbytes
    ins = list(range(len(sizes) - 1))
    graph = encode_graph(tensors, [CapsuleOp("CONCATENATION", ins, [len(sizes) - 1], params)],
                         ins, [len(sizes) - 1], offset)
    return encode_capsule([("META", b"{}", True), ("GRAPH", graph, True),
                           ("WEIGHTS", b"", True)])


HOSTILE = {
    "gather_entry_past_input": (lambda: _gather_capsule([0, 0, 0, 6], [6, 1, 1, 1, 1, 0]),
                                "outside the 6-byte input"),
    "gather_negative_entry": (lambda: _gather_capsule([0, 0, 0, -1], [6, 1, 1, 1, 1, 0]),
                              "outside the 6-byte input"),
    "gather_sum_past_input": (lambda: _gather_capsule([0, 0, 3, 0, 1, 2, 3],
                                                      [6, 1, 1, 2, 3, 0]),
                              "reaches offset 6 of a 6-byte input"),
    "gather_pad_value": (lambda: _gather_capsule([0, 0, 0, 0], [6, 1, 1, 1, 1, 300]),
                         "pad value 300"),
    "gather_short_table": (lambda: _gather_capsule([0, 0, 0], [6, 1, 1, 1, 1, 0]),
                           "table tensor"),
    "gather_zero_dim": (lambda: _gather_capsule([0, 0, 0], [6, 1, 1, 1, 0, 0]),
                        "output dimension 0"),
    "gather_table_in_arena": (lambda: _gather_capsule([0, 0, 0, 0], [6, 1, 1, 1, 1, 0],
                                                      "own"), "is not a constant"),
    "gather_huge_input": (lambda: _gather_capsule([0, 0, 0, 0], [1 << 29, 1, 1, 1, 1, 0],
                                                  in_bytes=6),
                          "input size"),
    "concat_params_disagree": (lambda: _concat_capsule([3, 4, 8], [1, 3, 5]), "bytes"),
    "concat_zero_inner": (lambda: _concat_capsule([3, 4, 7], [1, 3, 0]), ">= 1"),
    "concat_param_count": (lambda: _concat_capsule([3, 4, 7], [1, 3, 4, 0]), "params"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_shape_op_capsules_are_capsule_errors(name, tmp_path):
    make, message = HOSTILE[name]
    path = tmp_path / f"{name}.cap"
    path.write_bytes(make())
    with pytest.raises(minerva.CapsuleError, match=message):
        minerva.load(str(path), kernels="python")


def test_hostile_shape_op_capsules_micropython(tmp_path, micropython):
    paths = []
    for name in sorted(HOSTILE):
        path = tmp_path / f"{name}.cap"
        path.write_bytes(HOSTILE[name][0]())
        paths.append(str(path))
    out = micropython.run("import minerva\nfor p in %r:\n    try:\n"
                          "        minerva.load(p)\n        print('LOADED', p)\n"
                          "    except minerva.CapsuleError as e:\n        print('REFUSED')\n"
                          % paths).stdout.split()
    assert out == ["REFUSED"] * len(paths)


def test_good_gather_capsule_loads_and_runs(tmp_path):
    # The hostile cases' builder makes valid capsules too: a 2x3 -> 3x2 transpose.
    path = tmp_path / "good.cap"
    path.write_bytes(_gather_capsule([0, 0, 0, 1, 2, 0, 3], [6, 1, 1, 3, 2, 0]))
    m = minerva.load(str(path), kernels="python")
    assert list(m.run(bytes([1, 2, 3, 4, 5, 6]))) == [1, 4, 2, 5, 3, 6]


_ALLOC = """
import gc, minerva
for cap in {caps!r}:
    for tier in ("python", "viper", "natmod"):
        m = minerva.load(cap, kernels=tier)
        assert not m.info()["fallbacks"], m.info()["fallbacks"]
        m.run()
        before = 0
        gc.collect()
        before = gc.mem_alloc()
        m.run()
        m.run()
        print("ALLOCATED", tier, gc.mem_alloc() - before)
"""


def test_run_allocates_nothing_with_shape_ops(micropython, tmp_path):
    # CONCATENATION's inputs are a tuple built at load: run() stays allocation-free.
    from opmodels import build_op_model

    natmod = build_natmod("x64")
    caps = []
    for name in ("concat_channels_3_inputs", "conv_transpose_slice", "padv2_4d_value"):
        src = tmp_path / f"{name}.tflite"
        src.write_bytes(build_op_model(name, 0).tflite)
        pack_file(src, tmp_path / f"{name}.cap")
        caps.append(str(tmp_path / f"{name}.cap"))
    out = micropython.run(_ALLOC.format(caps=caps), heapsize="4M",
                          extra_path=[natmod.parent]).stdout.splitlines()
    # (The pure-Python CONV_2D of conv_transpose_slice makes big ints on the unix port, as it
    # always has; that model's python tier is not counted.)
    expected = [f"ALLOCATED {tier} 0" for _ in caps for tier in ("python", "viper", "natmod")]
    assert out[:3] + out[4:] == expected[:3] + expected[4:], out


def test_composed_gathers_equal_gathers_in_sequence():
    # The packager fuses a GATHER feeding a GATHER (lower_shape.compose_gathers).
    from geometries_shape import gather_tables

    from minerva_packager.capsule.lower_shape import apply_gather, compose_gathers

    def four(tables):
        return [[0]] * (4 - len(tables)) + [list(t) for t in tables]

    fused = 0
    for seed in range(400):
        rng = np.random.default_rng(seed)
        shape, first, pad1 = gather_tables(rng)
        mid = [len(t) for t in first]
        _, second, pad2 = gather_tables(rng, mid)
        if rng.random() < 0.3:
            pad2 = pad1
        x = rng.integers(-128, 128, int(np.prod(shape))).astype(np.int8)
        composed = compose_gathers((four(first), pad1), (four(second), pad2))
        if composed is None:
            continue
        fused += 1
        want = apply_gather(apply_gather(x, four(first), pad1), four(second), pad2)
        got = apply_gather(x, *composed)
        assert got.tobytes() == want.tobytes(), f"seed {seed}"
    assert fused > 200
