"""Weights in place from a flash store (device/minerva/flashstore.py), on the MicroPython unix
port: the platform-independent logic with a RAM region standing in for the RP2040's XIP flash
(tests/test_pico.py runs the same on the emulated Pico's real flash).

- a capsule loaded in place answers byte for byte as its file does, on the natmod and viper
  tiers, and its weights take no heap;
- the Runtime copies slot capsules into the store and serves them in place; shadow testing
  and a promotion work; a damaged copy is forgotten and the slot's file serves; a store too
  small, or the pure-Python tier, leaves today's loading;
- power cuts at every write (LittleFS and store blocks, torn or not) of a copy and of a
  promotion leave the old model serving, in place, bit-exact.
"""

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
NATMOD_X64 = ROOT / "dist" / "x64_6.3"
MODELS = ("kws01_dscnn_int8", "ic01_resnet8_int8", "ad01_fc_autoencoder_int8")

RAM_REGION = """
import gc, os, minerva
from minerva.flashstore import FlashStore, InPlace
from minerva.runtime import Runtime


class RamRegion:
    def __init__(self, blocks):
        self.data = bytearray(b"\\xff" * (blocks * 4096))
        self.writes = 0

    def writeblocks(self, block, buf):
        self.writes += 1
        self.data[block * 4096:(block + 1) * 4096] = buf


def rmtree(path):
    try:
        names = os.listdir(path)
    except OSError:
        return
    for name in names:
        p = path + "/" + name
        try:
            os.remove(p)
        except OSError:
            rmtree(p)
    os.rmdir(path)
"""


@pytest.fixture(scope="module")
def packed(shared_models, tmp_path_factory):
    from minerva_packager.capsule.pack import pack_tflite

    folder = tmp_path_factory.mktemp("flashstore_models")
    out = {}
    for name in MODELS:
        out[name] = folder / f"{name}.cap"
        out[name].write_bytes(pack_tflite(shared_models / f"{name}.tflite", name=name))
    return out


@pytest.mark.parametrize("tier", ["natmod", "viper"])
def test_in_place_matches_the_file_and_takes_no_weight_heap(micropython, packed, tier):
    if tier == "natmod" and not (NATMOD_X64 / "minerva_nat.mpy").exists():
        pytest.skip("dist/x64_6.3/minerva_nat.mpy is not built (make natmod)")
    script = RAM_REGION + f"""
for path in {[str(p) for p in packed.values()]!r}:
    data = bytearray(open(path, "rb").read())
    gc.collect(); before = gc.mem_alloc()
    m = minerva.load(path, kernels={tier!r}, paged=False)
    gc.collect(); from_file = gc.mem_alloc() - before
    n = len(m.inputs[0])
    x = bytes((i * 37 + 11) & 0xFF for i in range(n))
    want = bytes(m.run(x))
    del m
    gc.collect(); before = gc.mem_alloc()
    m = minerva.load(InPlace(path, memoryview(data)), kernels={tier!r})
    gc.collect(); in_place = gc.mem_alloc() - before
    print("MODEL", path.split("/")[-1], m.in_place, bytes(m.run(x)) == want, from_file,
          in_place, m.info()["arena_bytes"], os.stat(path)[6])
    del m
"""
    proc = micropython.run(script, heapsize="8M", extra_path=[NATMOD_X64])
    lines = [line.split() for line in proc.stdout.splitlines() if line.startswith("MODEL")]
    assert len(lines) == 3, proc.stdout
    for _, name, in_place, same, from_file, placed, arena, _size in lines:
        assert in_place == "True" and same == "True", name
        # In place, the heap holds the arena and bookkeeping, never the weights.
        assert int(placed) < int(arena) + 12_000 < int(from_file), (name, placed, arena)


def _store_script(body, capsules, root):
    return RAM_REGION + f"""
ROOT = {str(root)!r}
rmtree(ROOT)
os.mkdir(ROOT)
os.mkdir(ROOT + "/inbox")
V1, V2 = {[str(c) for c in capsules]!r}


def drop(path, name):
    open(ROOT + "/inbox/" + name, "wb").write(open(path, "rb").read())


try:
{body}
finally:
    rmtree(ROOT)
"""


def _indent(text):
    return "\n".join("    " + line for line in text.strip("\n").splitlines())


def test_runtime_serves_shadows_and_promotes_in_place(micropython, digits_versions, tmp_path):
    body = """
region = RamRegion(8)
store = FlashStore(ROOT, region, region.data, 0)
drop(V1, "v1.cap")
x = bytes((i * 7) & 0xFF for i in range(64))
v1 = bytes(minerva.load(V1, kernels="viper").run(x))
v2 = bytes(minerva.load(V2, kernels="viper").run(x))
rt = Runtime(ROOT, kernels="viper", store=store)
print("ACTIVE", rt.active.in_place, bytes(rt.infer(x)) == v1, sorted(store.entries))
drop(V2, "v2.cap")
rt.poll()
for k in range(5):
    rt.infer(bytes((i * k) & 0xFF for i in range(64)))
print("SHADOW", rt.candidate.in_place, rt.status()["shadow"]["samples"],
      len(store.entries), region.writes)
rt.promote(force=True)
print("PROMOTED", rt.active.in_place, bytes(rt.infer(x)) == v2)
s = rt.status()["in_place"]
print("STATUS", s["active"], s["store_bytes"], len(s["stored"]))
rt.close()
# A restart finds both copies: nothing is written again.
writes = region.writes
rt = Runtime(ROOT, kernels="viper", store=FlashStore(ROOT, region, region.data, 0))
print("RESTART", rt.active.in_place, bytes(rt.infer(x)) == v2, region.writes - writes)
rt.close()
# A damaged copy: forgotten, the slot's file serves, the next start copies it again.
slot = rt.slots.state["active"]
first = store.entries[slot][0] * 4096
region.data[first + 200] ^= 0x10
rt = Runtime(ROOT, kernels="viper", store=FlashStore(ROOT, region, region.data, 0))
print("DAMAGED", rt.active.in_place, bytes(rt.infer(x)) == v2,
      "flash store" in rt.slots.state["events"][-1][2] or
      any("failed verification" in e[2] for e in rt.slots.state["events"]))
rt.close()
rt = Runtime(ROOT, kernels="viper", store=FlashStore(ROOT, region, region.data, 0))
print("RECOPIED", rt.active.in_place, bytes(rt.infer(x)) == v2)
rt.close()
# The pure-Python tier cannot use bytes in place: loaded from the file as before.
rt = Runtime(ROOT, kernels="python", store=FlashStore(ROOT, region, region.data, 0))
print("PYTHON", rt.active.in_place, bytes(rt.infer(x)) == v2)
rt.close()
# A region too small for the capsule: loaded from the file.
tiny = RamRegion(1)
rt = Runtime(ROOT, kernels="viper", store=FlashStore(ROOT, tiny, tiny.data, 1))
print("TINY", rt.active.in_place, bytes(rt.infer(x)) == v2, tiny.writes)
rt.close()
"""
    proc = micropython.run(_store_script(_indent(body), [digits_versions["v1"],
                                                         digits_versions["v2"]],
                                         tmp_path / "capsules"))
    out = {line.split()[0]: line.split()[1:] for line in proc.stdout.splitlines()}
    assert out["ACTIVE"][:2] == ["True", "True"], proc.stdout
    assert out["SHADOW"][:3] == ["True", "5", "2"], proc.stdout
    assert int(out["SHADOW"][3]) == 4  # two 4,160-byte capsules: two blocks each
    assert out["PROMOTED"] == ["True", "True"]
    assert out["STATUS"] == ["True", str(8 * 4096), "2"]
    assert out["RESTART"] == ["True", "True", "0"]
    assert out["DAMAGED"] == ["False", "True", "True"]
    assert out["RECOPIED"] == ["True", "True"]
    assert out["PYTHON"] == ["False", "True"]
    assert out["TINY"] == ["False", "True", "0"]


def test_power_cut_at_every_write_of_a_copy_keeps_the_old_model(micropython, shared_models,
                                                                 tmp_path):
    from minerva_packager.capsule.pack import pack_tflite

    caps = {}
    for label, version in (("v1", "1.0.0"), ("v2", "1.1.0")):
        caps[label] = tmp_path / f"kws_{label}.cap"
        caps[label].write_bytes(pack_tflite(shared_models / "kws01_dscnn_int8.tflite",
                                            name="kws", version=version))
    config = {"capsules": {k: str(v) for k, v in caps.items()},
              "inbox_name": {"v1": "kws.cap", "v2": "kws_v2.cap"}, "pair": ["v1", "v2"],
              "kernels": "viper", "input_bytes": 490, "flash_blocks": 96, "store_blocks": 24}
    base = (HERE / "slot_power_cuts.py").read_text().rsplit("\ndrive()", 1)[0]
    script = f"CONFIG = {config!r}\n" + base + (HERE / "flashstore_power_cuts.py").read_text()
    proc = micropython.run(script, heapsize="32M", timeout=1200, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    sweeps = {line.split()[1]: dict(kv.split("=") for kv in line.split()[2:])
              for line in proc.stdout.splitlines() if line.startswith("SWEEP")}
    # The copy of the 32,880-byte KWS capsule is 9 block writes, each cut (torn or not).
    assert int(sweeps["stage+copy"]["store_writes"]) == 9, sweeps
    assert int(sweeps["stage+copy"]["entries"]) == 2
    assert int(sweeps["promote"]["store_writes"]) == 0
    print(proc.stdout)
