"""The JSON sections (META, RESIDENCY, SHADOW_POLICY, TRAIN_SCHEDULE) of a capsule with valid
checksums: wrong types, odd values and deep nesting are CapsuleErrors that name the file and the
field, on CPython and on MicroPython -- never a TypeError, RecursionError or struct.error."""

import json
import struct

import pytest
from test_capsule_errors import graph_span, reseal, sections_of

import minerva
from minerva_packager.capsule.container import SECTION_TYPES, encode_capsule
from minerva_packager.capsule.pack import pack_tflite

NAMES = {v: k for k, v in SECTION_TYPES.items()}


@pytest.fixture(scope="module")
def parts(shared_models):
    good = pack_tflite(shared_models / "hello_world_int8.tflite")
    return good, {NAMES[kind]: good[off:off + n] for kind, _, off, n in sections_of(good)}


def _capsule(parts, **replace):
    meta = json.loads(parts["META"])
    sections = [("META", replace.pop("META", json.dumps(meta).encode()), True),
                ("GRAPH", parts["GRAPH"], True), ("WEIGHTS", parts["WEIGHTS"], True)]
    for kind, raw in replace.items():
        sections.append((kind, raw, False))
    return encode_capsule(sections)


def _meta(parts, **changes):
    meta = json.loads(parts["META"])
    meta.update(changes)
    return json.dumps(meta).encode()


def hostile_capsules(good, parts):
    """(case, capsule bytes, words the message must contain)."""
    deep = b"[" * 5000 + b"]" * 5000
    return [
        ("meta-inputs-not-list", _capsule(parts, META=_meta(parts, inputs=7)),
         "META.inputs is not a JSON list"),
        ("meta-inputs-of-strings", _capsule(parts, META=_meta(parts, inputs=["x"])),
         "META.inputs[0] is not a JSON object"),
        ("meta-output-name-number", _capsule(parts, META=_meta(parts, outputs=[{"name": 3}])),
         "META.outputs[0].name is not a string"),
        ("meta-version-list", _capsule(parts, META=_meta(parts, version=[1, 2])),
         "META.version is not a string"),
        ("meta-not-object", _capsule(parts, META=b"[1, 2]"), "META is not a JSON object"),
        ("meta-deep", _capsule(parts, META=b'{"x": ' + deep + b"}"), "META"),
        ("meta-deep-unknown-key", _capsule(parts, META=_meta(parts, extra=json.loads(
            "[" * 10 + "]" * 10))), None),
        ("meta-deep-unknown-key-too-deep", _capsule(parts, META=_meta(parts, extra=json.loads(
            "[" * 40 + "]" * 40))), "META is nested deeper than 16"),
        ("residency-float", _capsule(parts, RESIDENCY=b'{"paged": [[1.5, 0]]}'),
         "RESIDENCY.paged[0][0]"),
        ("residency-string", _capsule(parts, RESIDENCY=b'{"paged": [["a", 0]]}'),
         "RESIDENCY.paged[0][0]"),
        ("residency-nested", _capsule(parts, RESIDENCY=b'{"paged": [[[1], [2]]]}'),
         "RESIDENCY.paged[0][0]"),
        ("residency-triple", _capsule(parts, RESIDENCY=b'{"paged": [[1, 2, 3]]}'),
         "RESIDENCY.paged[0] has 3 items"),
        ("residency-no-paged", _capsule(parts, RESIDENCY=b'{"page": []}'),
         "RESIDENCY has no 'paged'"),
        ("residency-deep", _capsule(parts, RESIDENCY=deep), "RESIDENCY"),
        ("shadow-policy-not-json", _capsule(parts, SHADOW_POLICY=b"{nope"),
         "SHADOW_POLICY is not valid JSON"),
        ("train-schedule-list", _capsule(parts, TRAIN_SCHEDULE=b"[]"),
         "TRAIN_SCHEDULE is not a JSON object"),
        ("train-schedule-deep", _capsule(parts, TRAIN_SCHEDULE=b'{"a": ' + b"[" * 30
                                         + b"]" * 30 + b"}"),
         "TRAIN_SCHEDULE is nested deeper"),
        ("graph-cut-in-index-list", _cut_graph(good), "GRAPH op"),
    ]


def _cut_graph(good):
    """GRAPH cut inside its last op's tensor index list (two bytes after the op's header)."""
    g_off, g_len = graph_span(good)
    graph = good[g_off:g_off + g_len]
    n_tensors, n_ops, n_in, n_out = struct.unpack_from("<HHHH", graph, 0)
    pos = 16 + 2 * (n_in + n_out)
    pos += -pos % 4
    pos += 36 * n_tensors
    last = pos
    for _ in range(n_ops):
        last = pos
        _, ni, no, np_ = struct.unpack_from("<BBBB", graph, pos)
        pos += 4 + 2 * (ni + no)
        pos += -pos % 4 + 4 * np_
    parts = {NAMES[kind]: good[off:off + n] for kind, _, off, n in sections_of(good)}
    return encode_capsule([("META", parts["META"], True), ("GRAPH", graph[:last + 6], True),
                           ("WEIGHTS", parts["WEIGHTS"], True)])


def test_hostile_json_sections_are_capsule_errors_cpython(parts, tmp_path):
    good, split = parts
    for case, data, words in hostile_capsules(good, split):
        path = tmp_path / f"{case}.cap"
        path.write_bytes(reseal(data))
        if words is None:  # unknown META keys are never walked: it loads
            minerva.load(str(path))
            continue
        with pytest.raises(minerva.CapsuleError) as info:
            minerva.load(str(path))
        assert str(path) in str(info.value) and words in str(info.value), (case, info.value)


def test_hostile_json_sections_are_capsule_errors_micropython(parts, tmp_path, micropython):
    good, split = parts
    cases = []
    for case, data, words in hostile_capsules(good, split):
        path = tmp_path / f"{case}.cap"
        path.write_bytes(reseal(data))
        cases.append((str(path), words or ""))
    proc = micropython.run(f"""
import minerva
for p, words in {cases!r}:
    try:
        minerva.load(p)
        print("LOADED", not words)
    except minerva.CapsuleError as e:
        print("REJECTED", p in str(e) and words in str(e), str(e))
    except Exception as e:
        print("ESCAPED", type(e).__name__, e)
""")
    lines = proc.stdout.splitlines()
    assert len(lines) == len(cases), proc.stdout + proc.stderr
    assert all(line.startswith(("REJECTED True", "LOADED True")) for line in lines), \
        proc.stdout
