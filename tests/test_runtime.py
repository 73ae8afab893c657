"""minerva.Runtime on the real MicroPython: slots, shadow testing, promote/confirm/rollback.

Each MicroPython process is one boot of the board (its RAM starts empty), over a capsule root
in a temporary folder; a second process on the same folder is the board after a reset.
"""

import json
import shutil

import numpy as np
import pytest
from capsule_surgery import join, split
from digits_versions import HELDOUT_X

PRELUDE = """
import minerva, json
from minerva.runtime import Runtime
ROOT = {root!r}
X = open({inputs!r}, "rb").read()
def inputs(n=None):
    for i in range(len(X) // 64 if n is None else n):
        yield X[64 * i:64 * (i + 1)]
def show(rt):
    print("STATUS " + json.dumps(rt.status()))
"""


@pytest.fixture()
def board(tmp_path, micropython):
    root = tmp_path / "capsules"
    (root / "inbox").mkdir(parents=True)
    inputs = tmp_path / "heldout.bin"
    inputs.write_bytes(np.load(HELDOUT_X).astype(np.int8).tobytes())

    def boot(script, heapsize="236304", check=True):
        proc = micropython.run(PRELUDE.format(root=str(root), inputs=str(inputs)) + script,
                               heapsize=heapsize, check=check)
        statuses = [json.loads(line[7:]) for line in proc.stdout.splitlines()
                    if line.startswith("STATUS ")]
        outs = [bytes.fromhex(line[4:]) for line in proc.stdout.splitlines()
                if line.startswith("OUT ")]
        return proc, statuses, outs

    boot.root = root
    return boot


def host_outputs(capsule, count=None):
    import minerva

    rows = np.load(HELDOUT_X).astype(np.int8)[:count]
    model = minerva.load(str(capsule), kernels="numpy")
    return [bytes(model.run(row.tobytes())) for row in rows]


def drop(board, capsule, name=None):
    shutil.copy(capsule, board.root / "inbox" / (name or capsule.name))


def test_lifecycle_install_shadow_promote_confirm_rollback(board, digits_versions):
    v1, v2 = digits_versions["v1"], digits_versions["v2"]
    drop(board, v1)
    drop(board, v2, "v2.cap")
    _, (status,), outs = board("""
rt = Runtime(ROOT, kernels="viper")
for x in inputs():
    print("OUT " + bytes(rt.infer(x)).hex())
rt.flush()
show(rt)
""")
    # The first capsule installed as active, the second staged and shadow-tested.
    assert status["active"]["version"] == "1.0.0"
    assert status["candidate"]["version"] == "2.0.0"
    assert outs == host_outputs(v1), "the active model's answers are served while shadowing"
    a = [int(np.argmax(np.frombuffer(o, np.int8))) for o in host_outputs(v1)]
    b = [int(np.argmax(np.frombuffer(o, np.int8))) for o in host_outputs(v2)]
    agree = sum(x == y for x, y in zip(a, b))
    shadow = status["shadow"]
    assert (shadow["samples"], shadow["agree"]) == (len(a), agree)
    assert shadow["metric"] == "top1"
    assert shadow["decision"] == "promote", shadow["reason"]
    lo, hi = shadow["wilson"]
    assert lo < agree / len(a) < hi
    _, (after, confirmed), outs = board("""
rt = Runtime(ROOT, kernels="viper")
rt.promote()
show(rt)
for x in inputs(25):
    print("OUT " + bytes(rt.infer(x)).hex())
show(rt)
""")
    assert after["active"]["version"] == "2.0.0" and after["previous"]["version"] == "1.0.0"
    assert after["trial"]["needed"] == 20 and after["candidate"] is None
    assert outs == host_outputs(v2, 25)
    assert confirmed["trial"] is None
    assert any("confirmed" in e[2] for e in confirmed["events"])
    _, (rolled,), outs = board("""
rt = Runtime(ROOT, kernels="viper")
rt.rollback()
show(rt)
print("OUT " + bytes(rt.infer(next(inputs(1)))).hex())
""")
    assert rolled["active"]["version"] == "1.0.0" and rolled["previous"] is None
    assert outs == host_outputs(v1, 1)
    assert rolled["rejected"][-1]["reason"] == "rolled back by the user"
    assert sorted(p.name for p in (board.root / "slots").iterdir()) == \
        [rolled["active"]["file"]], "the rolled-back capsule's file is gone, v1's kept"


def test_a_reset_before_confirmation_reverts(board, digits_versions):
    drop(board, digits_versions["v1"])
    drop(board, digits_versions["v2"], "v2.cap")
    _, (on_trial,), _ = board("""
rt = Runtime(ROOT, kernels="viper")
for x in inputs(5):
    rt.infer(x)
rt.promote(force=True)
for x in inputs(5):
    rt.infer(x)
show(rt)
""")
    assert on_trial["trial"]["started"] and on_trial["active"]["version"] == "2.0.0"
    assert on_trial["shadow"] is None
    _, (after_reset,), outs = board("""
rt = Runtime(ROOT, kernels="viper")
show(rt)
print("OUT " + bytes(rt.infer(next(inputs(1)))).hex())
""")
    assert after_reset["active"]["version"] == "1.0.0"
    assert after_reset["trial"] is None
    assert "reset came before" in after_reset["rejected"][-1]["reason"]
    assert outs == host_outputs(digits_versions["v1"], 1)


def test_a_desktop_promote_starts_the_trial_at_the_first_inference(board, digits_versions):
    drop(board, digits_versions["v1"])
    drop(board, digits_versions["v2"], "v2.cap")
    board("""
rt = Runtime(ROOT, kernels="viper")
rt.promote(force=True, now=False)
""")
    # Boots that serve nothing (a desktop command looking) do not count against the trial.
    for _ in range(2):
        _, (looked,), _ = board("show(Runtime(ROOT, kernels='viper'))")
        assert looked["active"]["version"] == "2.0.0" and not looked["trial"]["started"]
    _, (serving,), _ = board("""
rt = Runtime(ROOT, kernels="viper")
for x in inputs(5):
    rt.infer(x)
show(rt)
""")
    assert serving["trial"]["started"] and serving["active"]["version"] == "2.0.0"
    # It served on trial, then a reset came before confirmation: reverted.
    _, (after,), _ = board("show(Runtime(ROOT, kernels='viper'))")
    assert after["active"]["version"] == "1.0.0" and after["trial"] is None
    assert "reset came before" in after["rejected"][-1]["reason"]


def test_a_trial_confirmed_survives_resets(board, digits_versions):
    drop(board, digits_versions["v1"])
    drop(board, digits_versions["v2"], "v2.cap")
    board("Runtime(ROOT, kernels='viper').promote(force=True, now=False)")
    _, (done,), _ = board("""
rt = Runtime(ROOT, kernels="viper")
for x in inputs(20):
    rt.infer(x)
show(rt)
""")
    assert done["trial"] is None and done["active"]["version"] == "2.0.0"
    _, (later,), _ = board("show(Runtime(ROOT, kernels='viper'))")
    assert later["active"]["version"] == "2.0.0", "confirmed: a reset no longer reverts"
    assert later["previous"]["version"] == "1.0.0"


def test_a_weak_candidate_is_rejected_and_its_disagreements_logged(board, digits_versions):
    drop(board, digits_versions["v1"])
    drop(board, digits_versions["weak"], "weak.cap")
    proc, (status,), _ = board("""
rt = Runtime(ROOT, kernels="viper")
rt.set_policy(log_records=6)
for x in inputs():
    rt.infer(x)
rt.flush()
show(rt)
try:
    rt.promote()
except minerva.CapsuleError as e:
    print("REFUSED", e)
""")
    assert "REFUSED" in proc.stdout and "promote(force=True) overrides" in proc.stdout
    assert status["shadow"]["decision"] == "reject", status["shadow"]
    a = [int(np.argmax(np.frombuffer(o, np.int8))) for o in host_outputs(digits_versions["v1"])]
    b = [int(np.argmax(np.frombuffer(o, np.int8)))
         for o in host_outputs(digits_versions["weak"])]
    disagree = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
    assert status["shadow"]["samples"] - status["shadow"]["agree"] == len(disagree)
    rows = np.load(HELDOUT_X).astype(np.int8)
    proc, _, _ = board("""
rt = Runtime(ROOT, kernels="viper")
import binascii
for r in rt.log_records():
    print("LOG", r["seq"], binascii.hexlify(r["input"]).decode(), r["classes"][0],
          r["classes"][1])
""")
    records = [line.split() for line in proc.stdout.splitlines() if line.startswith("LOG")]
    # The ring keeps the last six disagreements, in order, each with its input and classes.
    assert [int(r[1]) for r in records] == list(range(len(disagree) - 5, len(disagree) + 1))
    for rec, index in zip(records, disagree[-6:]):
        assert bytes.fromhex(rec[2]) == rows[index].tobytes()
        assert (int(rec[3]), int(rec[4])) == (a[index], b[index])
    assert len(list((board.root / "log").iterdir())) == 6


def test_auto_promote_and_auto_reject_follow_the_policy(board, digits_versions, tmp_path):
    from minerva_packager.capsule.pack import pack_tflite

    drop(board, digits_versions["v1"])
    board("Runtime(ROOT, kernels='viper')")
    policy = json.dumps({"auto_promote": True, "min_samples": 200, "flush_every": 10}).encode()
    tflite = digits_versions["v2"].with_suffix(".tflite")
    auto = tmp_path / "auto.cap"
    auto.write_bytes(pack_tflite(tflite, name="digits", version="2.1.0",
                                 extra_sections=[("SHADOW_POLICY", policy, False)]))
    drop(board, auto)
    _, (status,), _ = board("""
rt = Runtime(ROOT, kernels="viper")
for x in inputs():
    rt.infer(x)
show(rt)
""")
    assert status["active"]["version"] == "2.1.0", status["events"]
    assert status["last_shadow"]["samples"] == 200, "decided at the policy's minimum"
    assert status["trial"] is None, "confirmed by the inferences after the promotion"
    # The board's override beats the capsule's policy: min_samples above the inputs we have.
    tflite = digits_versions["weak"].with_suffix(".tflite")
    weak = tmp_path / "weak_auto.cap"
    weak.write_bytes(pack_tflite(tflite, name="digits", version="3.1.0",
                                 extra_sections=[("SHADOW_POLICY", policy, False)]))
    drop(board, weak)
    _, (status,), _ = board("""
rt = Runtime(ROOT, kernels="viper")
rt.set_policy(min_samples=100)
for x in inputs():
    rt.infer(x)
show(rt)
""")
    assert status["candidate"] is None and status["active"]["version"] == "2.1.0"
    assert "cannot reach" in status["rejected"][-1]["reason"]


def _bad_files(v1, hello):
    data = v1.read_bytes()
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 1
    sections = split(data)
    newer = bytearray(join(sections))
    newer[4] = 9
    return {"truncated.cap": data[:len(data) // 2], "flipped.cap": bytes(flipped),
            "foreign.cap": b"TFL3" + bytes(200), "newer.cap": bytes(newer),
            "huge.cap": data[:8] + (10 ** 9).to_bytes(4, "little") + data[12:],
            "other_model.cap": hello.read_bytes()}


def test_bad_inbox_files_are_refused_with_a_reason(board, digits_versions, tmp_path):
    from opmodels import build_op_model

    from minerva_packager.capsule.pack import pack_tflite

    # A model with other inputs and outputs: its answers cannot be compared with digits'.
    other_tflite = tmp_path / "other.tflite"
    other_tflite.write_bytes(build_op_model("fc_pertensor").tflite)
    hello = tmp_path / "other.cap"
    hello.write_bytes(pack_tflite(other_tflite, name="other", version="1.0.0"))
    drop(board, digits_versions["v1"])
    board("Runtime(ROOT, kernels='viper')")
    bad = _bad_files(digits_versions["v1"], hello)
    for name, data in bad.items():
        (board.root / "inbox" / name).write_bytes(data)
    _, (status,), outs = board("""
rt = Runtime(ROOT, kernels="viper")
show(rt)
print("OUT " + bytes(rt.infer(next(inputs(1)))).hex())
""")
    reasons = {r["file"]: r["reason"] for r in status["rejected"]}
    assert set(reasons) == set(bad)
    assert "truncated" in reasons["truncated.cap"]
    assert "CRC-32 mismatch" in reasons["flipped.cap"]
    assert "not a capsule" in reasons["foreign.cap"]
    assert "newer than this runtime" in reasons["newer.cap"]
    assert "header says" in reasons["huge.cap"]
    assert "differ from the active model's" in reasons["other_model.cap"]
    assert status["active"]["version"] == "1.0.0" and status["candidate"] is None
    assert outs == host_outputs(digits_versions["v1"], 1)
    assert sorted(p.name for p in (board.root / "rejected").iterdir()) == sorted(bad)
    assert list((board.root / "inbox").iterdir()) == []


# Little enough left that staging waits (the file stays in the inbox), that the candidate is
# staged but cannot be loaded, or that it loads paged.
@pytest.mark.parametrize("left", [1024, 12288, 16384, 24576])
def test_no_heap_for_the_candidate_leaves_the_active_serving(board, digits_versions, left):
    drop(board, digits_versions["v1"])
    board("Runtime(ROOT, kernels='viper')")
    drop(board, digits_versions["v2"], "v2.cap")
    _, (status,), outs = board("""
import gc
rt = Runtime(ROOT, kernels="viper")
rt.reject()
data = open(%r, "rb").read()
x = next(inputs(1))
hog = []
gc.collect()
while gc.mem_free() > %d:
    try:
        hog.append(bytearray(256))
    except MemoryError:
        break
with open(ROOT + "/inbox/again.cap", "wb") as f:
    f.write(data)
rt.poll()
print("OUT " + bytes(rt.infer(x)).hex())
hog = None
gc.collect()
show(rt)
""" % (str(digits_versions["v2"]), left))
    assert outs == host_outputs(digits_versions["v1"], 1)
    assert status["active"]["version"] == "1.0.0"
    if status["candidate"] is not None and status["candidate_load_error"]:
        assert "not enough RAM" in status["candidate_load_error"], status
    elif status["candidate"] is not None:
        assert status["shadow"]["samples"] == 1, "loaded (paged if need be) and shadowing"
    else:
        assert (board.root / "inbox" / "again.cap").exists(), "kept for a later start"
    # With the heap back, the next start stages and loads it.
    _, (later,), _ = board("show(Runtime(ROOT, kernels='viper'))")
    assert later["candidate"]["version"] == "2.0.0" and later["candidate_load_error"] is None


def test_serving_without_a_candidate_allocates_nothing(board, digits_versions):
    drop(board, digits_versions["v1"])
    proc, _, _ = board("""
import micropython
rt = Runtime(ROOT, kernels="viper")
x = next(inputs(1))
rt.infer(x)
micropython.heap_lock()
try:
    rt.infer(x)
    print("NOALLOC")
except MemoryError:
    pass
micropython.heap_unlock()
""")
    assert "NOALLOC" in proc.stdout


def test_no_heap_at_start_up_retires_nothing(board, digits_versions):
    drop(board, digits_versions["v1"])
    board("Runtime(ROOT, kernels='viper')")
    # A start with too little heap for the kernels: the runtime says so and changes nothing.
    proc, _, _ = board("""
try:
    Runtime(ROOT, kernels="viper")
except minerva.CapsuleError as e:
    print("REFUSED", type(e).__name__)
""", heapsize="72000", check=False)
    assert "REFUSED" in proc.stdout or "MemoryError" in proc.stdout + proc.stderr
    _, (status,), outs = board("""
rt = Runtime(ROOT, kernels="viper")
show(rt)
print("OUT " + bytes(rt.infer(next(inputs(1)))).hex())
""")
    assert status["active"]["version"] == "1.0.0" and status["rejected"] == []
    assert outs == host_outputs(digits_versions["v1"], 1)
