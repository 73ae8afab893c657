"""The real MicroPython firmware of a Raspberry Pi Pico, emulated (minerva vboard --emulate).

Everything else that runs device code uses the x64 unix port; here the armv6m native module,
the viper code generator for Thumb, the rp2 port's heap and its littlefs flash driver are the
board's own. The emulator runs at ~25-60 MHz of the chip's 125 MHz, so the cases are few and
small: digits for the tiers, one input for each reference model (preloaded in a flash image
built by `minerva image`, as uploading 400 KB over the emulated USB takes ~90 s).
"""

import json
import os
import re
import shutil
import subprocess
from array import array

import numpy as np
import pytest
from board_helpers import (
    BIN,
    DIGITS_CAPSULE,
    DIGITS_X,
    PICO_FIRMWARE,
    emulated_pico,
    host_outputs,
    tool,
)
from board_helpers import require_emulated_pico as require_pico
from digits_versions import HELDOUT_X

from minerva_packager.board.device_files import DIST_DIR, arch_from_mpy
from minerva_packager.board.profiles import load_board
from minerva_packager.board.run import run_on_board
from minerva_packager.board.transport import connect
from minerva_packager.capsule.container import read_capsule
from minerva_packager.capsule.memory import APP_RESERVE_BYTES, available_bytes, figures

pytestmark = pytest.mark.pico
BOARD = load_board("rp2040")
NATMOD = DIST_DIR / "armv6m_6.3" / "minerva_nat.mpy"
MODELS = {"kws": "kws01_dscnn_int8.tflite", "ic": "ic01_resnet8_int8.tflite",
          "ad": "ad01_fc_autoencoder_int8.tflite"}


@pytest.fixture(scope="module")
def port(tmp_path_factory):
    with emulated_pico(tmp_path_factory.mktemp("pico")) as port:
        yield port


@pytest.fixture(scope="module")
def deployed(port):
    """The runtime (with the armv6m native module) and digits, installed by the real CLI."""
    if not NATMOD.exists():
        pytest.skip(f"{NATMOD} is not built (make natmod-armv6m)")
    return tool("minerva", "deploy", "--port", port, "--board", "rp2040", DIGITS_CAPSULE,
                timeout=300).stdout


def mpremote(port, *args):
    return tool("mpremote", "connect", port, *args).stdout


def on_board(port, code, timeout=120):
    with connect(port) as board:
        return board.exec(code, timeout=timeout).decode()


def _digits(n):
    return [bytes(x) for x in np.load(DIGITS_X)[:n]]


def test_missing_pieces_are_one_line_errors_naming_the_fix(tmp_path):
    def vboard(*args, **env):
        return subprocess.run([str(BIN / "minerva"), "vboard", "--emulate", "--detach",
                               "--state-dir", str(tmp_path), *map(str, args)],
                              capture_output=True, text=True, timeout=60,
                              env={**os.environ, "MINERVA_PICO_FIRMWARE": "", **env})

    proc = vboard()
    assert proc.returncode == 1 and "--firmware" in proc.stderr
    proc = vboard("--firmware", tmp_path / "absent.uf2")
    assert proc.returncode == 1 and "absent.uf2: no such firmware file" in proc.stderr
    proc = vboard("--firmware", PICO_FIRMWARE, MINERVA_RP2040JS=str(tmp_path))
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1
    if shutil.which("node"):
        assert "rp2040js is not installed" in proc.stderr and "make pico-setup" in proc.stderr
    else:
        assert "Node.js is not installed" in proc.stderr and "nodejs" in proc.stderr
    assert not (tmp_path / "vboard.pid").exists()


def test_firmware_heap_flash_and_arch_are_the_board_profile(port):
    out = mpremote(port, "exec", "import gc, os, sys; gc.collect(); s = os.statvfs('/'); "
                   "print(gc.mem_free() + gc.mem_alloc(), s[0] * s[2], sys.implementation._mpy,"
                   " os.uname().machine, sep=';')")
    heap, fs_bytes, mpy, machine = out.strip().split(";")
    # boards/rp2040.json's heap_bytes is this measurement; the partition is the board's.
    assert int(heap) == BOARD["heap_bytes"]
    assert int(fs_bytes) == BOARD["filesystem"]["size"]
    assert arch_from_mpy(int(mpy)) == BOARD["native_arch"] == "armv6m"
    assert machine == BOARD["machine"]


def test_mpremote_reconnects_and_files_survive_soft_reset(port):
    for n in range(3):
        assert mpremote(port, "exec", f"print({n} * 7)").strip() == str(n * 7)
    out = mpremote(port, "exec", "open('keep.txt', 'w').write('kept'); x = 1", "soft-reset",
                   "exec", "print(open('keep.txt').read(), 'x' in globals())")
    assert out.split() == ["kept", "False"]


def test_hard_reset_reboots_the_board_with_its_files(port):
    mpremote(port, "exec", "with open('hard.txt', 'w') as f: f.write('kept')")
    mpremote(port, "exec", "ram = 1")
    # `resume`: no soft reset on connect, so RAM state shows until the board really resets.
    assert mpremote(port, "resume", "exec", "print('ram' in globals())").strip() == "True"
    mpremote(port, "reset")  # machine.reset(): the watchdog reboots the chip
    out = mpremote(port, "resume", "exec", "print(open('hard.txt').read(), 'ram' in globals())")
    assert out.split() == ["kept", "False"]
    assert tool("ampy", "--port", port, "get", "hard.txt").stdout.strip() == "kept"


def test_flash_image_persists_across_emulator_restarts(tmp_path):
    image = tmp_path / "pico.lfs"
    with emulated_pico(tmp_path / "a", image=image) as port:
        mpremote(port, "exec", "import os; os.mkdir('d')\n"
                 "with open('d/f.bin', 'wb') as f: f.write(b'x' * 5000)")
    assert image.stat().st_size == BOARD["filesystem"]["size"]
    with emulated_pico(tmp_path / "b", image=image) as port:
        assert mpremote(port, "exec", "print(len(open('d/f.bin').read()))").strip() == "5000"


def test_deploy_installs_the_armv6m_native_module(deployed):
    assert "minerva_nat.mpy" in deployed
    last = deployed.strip().splitlines()[-1]
    assert last.startswith("Verified") and "SHA-256 of every file matches" in last


def test_digits_natmod_matches_host_bytes(port, deployed):
    inputs = _digits(16)
    outputs, tier = run_on_board(port, DIGITS_CAPSULE, inputs)
    assert tier == "natmod"
    assert outputs == host_outputs(DIGITS_CAPSULE, inputs)


def test_digits_viper_matches_host_bytes(port, deployed):
    inputs = _digits(4)
    out = on_board(port, f"""
import minerva, binascii
m = minerva.load('/capsules/digits.cap', kernels='viper')
for h in {[x.hex() for x in inputs]!r}:
    print(binascii.hexlify(bytes(m.run(binascii.unhexlify(h)))).decode())
print(m.info()['kernels'])
""")
    *lines, tier = out.split()
    assert tier == "viper"
    assert [bytes.fromhex(h) for h in lines] == host_outputs(DIGITS_CAPSULE, inputs)


def test_run_cli_prints_host_output(port, deployed, tmp_path):
    sample = tmp_path / "one.npy"
    np.save(sample, np.load(DIGITS_X)[0])
    out = tool("minerva", "run", "--port", port, DIGITS_CAPSULE, sample).stdout.splitlines()
    expected = host_outputs(DIGITS_CAPSULE, _digits(1))[0]
    assert out[0] == "output " + " ".join(str(v) for v in np.frombuffer(expected, np.int8))


@pytest.mark.parametrize("tier", ["natmod", "viper"])
def test_run_allocates_nothing(port, deployed, tier):
    out = on_board(port, f"""
import gc, micropython, minerva
m = minerva.load('/capsules/digits.cap', kernels={tier!r})
x = {_digits(1)[0]!r}
m.run(x)
gc.collect()
before = gc.mem_alloc()
m.run(x)
m.run(x)
grew = gc.mem_alloc() - before
micropython.heap_lock()
try:
    m.run(x)
    locked = 'ran'
except MemoryError:
    locked = 'allocated'
micropython.heap_unlock()
print(grew, locked)
""")
    assert out.split() == ["0", "ran"]


def _board_buffer(spec):
    if spec is None:
        return "None"
    typecode, values = spec
    if typecode == "b":  # raw bytes: the module reads int8 buffers byte for byte
        return f"bytearray(binascii.unhexlify({bytes(array('b', values)).hex()!r}))"
    return f"array({typecode!r}, {list(values)!r})"


def test_natmod_fast_paths_match_python_on_random_geometries(port, deployed):
    # The armv6m module's Cortex-M0 forms (asm in natmod/kernels) in the board's own
    # firmware, against kernels_py on the host: seeded random geometries inside the fast
    # paths, small enough for the emulated USB. A failure names the case to rerun.
    from kernel_cases import fast_path_cases

    from minerva import kernels_py

    seed, count = 5, 24
    cases = fast_path_cases(seed, count, max_bytes=1200)
    with connect(port) as board:
        board.exec("import binascii, minerva_nat\nfrom array import array")
        for index, case in enumerate(cases):
            out_type, out_count = case["out"]
            code = (f"o = bytearray({out_count})\n"
                    f"minerva_nat.{case['op']}("
                    + ", ".join(_board_buffer(spec) for spec in case["inputs"])
                    + f", o, array('i', {case['args']!r}))\n"
                    "print(binascii.hexlify(o).decode())")
            got = bytes.fromhex(board.exec(code, timeout=60).decode().strip())
            expected = array(out_type, [0] * out_count)
            getattr(kernels_py, case["op"])(
                *[None if spec is None else array(*spec) for spec in case["inputs"]],
                expected, array("i", case["args"]))
            assert got == bytes(expected), \
                f"fast_path_cases({seed}, {count}, max_bytes=1200)[{index}]: {case['name']}"


def test_viper_grouped_kernels_match_python_on_random_geometries(port, deployed):
    # The viper tier's grouped conv and depthwise kernels, their requantization and its fully
    # connected kernel, compiled by mpy-cross for armv6m and run with the board's 32-bit ints,
    # against kernels_py on the host: the random geometries of test_random_geometries.py
    # small enough for the emulated USB (a fifth with biases that push accumulators past
    # 2**20). A failure names the case.
    import geometries

    from minerva import kernels_py

    picked = []
    for kernel, wanted in (("conv_2d", 14), ("depthwise_conv_2d", 14), ("fully_connected", 8)):
        index, found = 0, 0
        while found < wanted:
            case = geometries.GENERATORS[kernel](geometries.case_rng(3, kernel, index))
            sizes = [len(v) for t, v in case[1] if v is not None]
            if sum(sizes) <= 1500 and case[3][1] <= 1500:
                picked.append((kernel, index, case))
                found += 1
            index += 1
    with connect(port) as board:
        board.exec("import binascii\nfrom array import array\nfrom minerva import kernels_viper")
        for kernel, index, (op, bufs, args, (out_type, out_count)) in picked:
            code = (f"o = bytearray({out_count})\n"
                    f"kernels_viper.{op}("
                    + ", ".join(_board_buffer(None if v is None else (t, v)) for t, v in bufs)
                    + f", o, array('i', {args!r}))\n"
                    "print(binascii.hexlify(o).decode())")
            got = bytes.fromhex(board.exec(code, timeout=120).decode().strip())
            expected = array(out_type, [0] * out_count)
            getattr(kernels_py, op)(*[None if v is None else array(t, v) for t, v in bufs],
                                    expected, array("i", args))
            assert got == bytes(expected), \
                f"geometries {kernel} case_rng(3, {kernel!r}, {index}): args={args}"


def test_stage_two_versions_and_shadow_feed(port, deployed, digits_versions, tmp_path):
    samples = tmp_path / "heldout.npy"
    np.save(samples, np.load(HELDOUT_X)[:12].astype(np.int8))
    out = tool("minerva", "deploy", "--stage", "--no-runtime", "--port", port,
               digits_versions["v1"], timeout=300).stdout
    assert re.search(r"active: +digits 1\.0\.0", out)
    out = tool("minerva", "deploy", "--stage", "--no-runtime", "--port", port,
               digits_versions["v2"], timeout=300).stdout
    assert re.search(r"candidate: +digits 2\.0\.0", out)
    out = tool("minerva", "shadow", "feed", "--port", port, samples, timeout=300).stdout
    assert "served 12 inputs" in out
    status = json.loads(tool("minerva", "shadow", "status", "--json", "--port", port).stdout)
    assert status["active"]["version"] == "1.0.0"
    assert status["candidate"]["version"] == "2.0.0"
    assert status["shadow"]["samples"] == 12


# -- the reference models, packed for the board ------------------------------------------------
@pytest.fixture(scope="module")
def packed(shared_models, tmp_path_factory):
    """KWS, IC, AD packed `--board rp2040`, and AD packed whole (no paging), by the real CLI."""
    require_pico()
    if not NATMOD.exists():
        pytest.skip(f"{NATMOD} is not built (make natmod-armv6m)")
    folder = tmp_path_factory.mktemp("pico_models")
    capsules = {}
    for key, model in MODELS.items():
        capsules[key] = folder / f"{key}.cap"
        tool("minerva", "pack", shared_models / model, "--board", "rp2040", "-o",
             capsules[key])
    # Unpaged packs (weights used in place need no paging plan) and IC re-packed as 2.0.0,
    # a candidate for shadow testing.
    for key, version in (("ad", "1.0.0"), ("ic", "1.0.0"), ("ic_v2", "2.0.0")):
        name = key if key != "ic_v2" else "ic"
        capsules[f"{key}_whole" if key != "ic_v2" else key] = path = folder / (
            f"{key}_whole.cap" if key != "ic_v2" else "ic_v2.cap")
        tool("minerva", "pack", shared_models / MODELS[name], "--ram-budget", 10**6,
             "--version", version, "-o", path)
    image = folder / "models.lfs"
    tool("minerva", "image", "--board", "rp2040", "-o", image, *capsules.values())
    return capsules, image


@pytest.fixture(scope="module")
def models_port(packed, tmp_path_factory):
    _, image = packed
    with emulated_pico(tmp_path_factory.mktemp("pico_models_board"), image=image) as port:
        yield port


def _input(key, capsule, shared_models):
    if key == "kws":
        sample = shared_models / "samples" / "kws01_sample0_int8_49x10.npy"
        return np.load(sample).astype(np.int8).tobytes()
    size = read_capsule(capsule).meta["inputs"][0]["shape"]
    return np.random.default_rng(7).integers(-128, 128, int(np.prod(size)),
                                             dtype=np.int8).tobytes()


@pytest.mark.parametrize("key", ["kws", "ic", "ad"])
def test_packed_for_rp2040_runs_on_the_pico_bit_exact(key, packed, models_port, shared_models):
    capsule = packed[0][key]
    assert read_capsule(capsule).meta["heap_bytes"] <= available_bytes(BOARD)
    x = _input(key, capsule, shared_models)
    outputs, tier = run_on_board(models_port, capsule, [x])
    assert tier == "natmod"
    assert outputs == host_outputs(capsule, [x])


@pytest.mark.parametrize("key", ["ic", "ad"])
def test_memory_model_bounds_the_pico(key, packed, models_port, shared_models):
    """On the real firmware, the runtime and the model take no more than the memory model
    says (it is measured on the 64-bit virtual board, an upper bound), and the model runs while
    the application holds its reserve."""
    meta = read_capsule(packed[0][key]).meta
    x = _input(key, packed[0][key], shared_models)
    out = on_board(models_port, f"""
import gc
gc.collect(); start = gc.mem_alloc()
import minerva
app = bytearray({APP_RESERVE_BYTES})
m = minerva.load('/capsules/{key}.cap')
m.run({x!r})
gc.collect(); print(gc.mem_alloc() - start - len(app), gc.mem_free())
""", timeout=300)
    used, free = map(int, out.split())
    assert used <= figures(BOARD)["runtime_bytes"] + meta["heap_bytes"], out
    print(f"{key}: runtime + model {used} B on the Pico; predicted "
          f"{figures(BOARD)['runtime_bytes'] + meta['heap_bytes']}; {free} B free")


def test_capsule_too_big_for_the_heap_is_out_of_memory(packed, models_port):
    assert read_capsule(packed[0]["ad_whole"]).meta["ram_bytes"] > BOARD["heap_bytes"]
    out = on_board(models_port, """
import minerva
try:
    minerva.load('/capsules/ad_whole.cap', paged=False)
    print('LOADED')
except minerva.OutOfMemoryError as e:
    print('OOM', e)
""")
    assert out.startswith("OOM"), out
    need = int(re.search(r"needs (\d+) bytes", out).group(1))
    assert need > BOARD["heap_bytes"]


_ED25519_ON_PICO = """
import binascii, minerva_nat
from minerva import ed25519
from minerva.errors import CapsuleError
from minerva.staging import inspect_capsule
u = binascii.unhexlify
pk, msg, sig = u({pk!r}), u({msg!r}), u({sig!r})
keys = {{u({kid!r}): u({capsule_pk!r})}}
for tier, native in (("natmod", minerva_nat.ed25519_verify), ("python", None)):
    ed25519._native = native  # None: verify() runs the pure-Python verifier
    try:
        inspect_capsule("/tampered.cap", keys)
        verdict = "staged"
    except CapsuleError as e:
        verdict = "refused" if "altered after signing" in str(e) else repr(e)
    print(tier, ed25519.verify(pk, msg, sig), verdict)
"""


def test_ed25519_natmod_and_python_decide_alike_on_the_pico(port, deployed, tmp_path):
    # The armv6m verifier and the pure-Python one on the board's own interpreter: an RFC 8032
    # vector accepted, a signed capsule altered after signing (and resealed) refused.
    from capsule_surgery import split
    from ed25519_cases import RFC8032

    from minerva_packager.capsule.container import encode_capsule
    from minerva_packager.capsule.signing import key_id, load_private_key, new_key, sign_capsule

    public = new_key(tmp_path / "release.key")
    signed = sign_capsule(DIGITS_CAPSULE.read_bytes(), load_private_key(tmp_path / "release.key"))
    sections = [(name, raw if name != "WEIGHTS" else bytes([raw[0] ^ 1]) + raw[1:], required)
                for name, raw, required in split(signed)]
    with connect(port) as board:
        board.write_file("/tampered.cap", encode_capsule(sections))
    capsule_pk = bytes.fromhex(public.read_text().split()[1])
    _, pk, msg, sig = RFC8032[0]
    out = on_board(port, _ED25519_ON_PICO.format(pk=pk, msg=msg, sig=sig,
                                                 kid=key_id(capsule_pk).hex(),
                                                 capsule_pk=capsule_pk.hex()), timeout=300)
    assert out.split() == ["natmod", "True", "refused", "python", "True", "refused"], out


# -- weights in place from flash (device/minerva/flashstore.py) --------------------------------
# TFLite Micro's arenas for the same models (issue 17), to which a loaded model's heap compares.
TFLM_ARENA = {"kws": 22_820, "ic": 54_980, "ad": 2_580}
IN_PLACE = {"kws": "kws", "ic": "ic_whole", "ad": "ad_whole"}


@pytest.mark.parametrize("key,tier", [("kws", "natmod"), ("ic", "natmod"), ("ad", "natmod"),
                                      ("kws", "viper"), ("ic", "viper"), ("ad", "viper")])
def test_weights_in_place_from_flash_bit_exact(key, tier, packed, models_port, shared_models):
    capsule = packed[0][IN_PLACE[key]]
    x = _input(key, capsule, shared_models)
    out = on_board(models_port, f"""
import gc, time, binascii, minerva
from minerva.flashstore import platform_store
store = platform_store('/capsules')
held = store.put({key!r}, '/capsules/{capsule.name}')
# Loaded once first: the runtime's code (modules, the native module) is not the model's heap.
m = minerva.load(held, kernels={tier!r})
m = None
gc.collect()
free = gc.mem_free()
m = minerva.load(held, kernels={tier!r})
gc.collect()
used = free - gc.mem_free()
x = binascii.unhexlify({x.hex()!r})
m.run(x)
t = time.ticks_us()
y = m.run(x)
us = time.ticks_diff(time.ticks_us(), t)
print(binascii.hexlify(bytes(y)).decode(), m.in_place, m.info()['kernels'], used, us,
      m.info()['arena_bytes'], store.capacity(), gc.mem_free())
""", timeout=600)
    hexed, in_place, used_tier, used, us, arena, capacity, free = out.split()
    assert (in_place, used_tier) == ("True", tier)
    assert bytes.fromhex(hexed) == host_outputs(capsule, [x])[0]
    weights = read_capsule(capsule).meta["weights_bytes"]
    # The heap holds the arena and the model's bookkeeping; the weights stay in flash.
    assert int(used) < int(arena) + 12_000 < weights + int(arena), (used, arena, weights)
    ratio = int(used) / TFLM_ARENA[key]
    print(f"\nIN PLACE {key} ({tier}): heap {used} B after load ({ratio:.2f}x "
          f"TFLM's arena {TFLM_ARENA[key]}), arena {arena}, {us} us = "
          f"{int(us) * BOARD['cpu_hz'] // 10**6 / 1e6:.2f} M cycles per inference, store "
          f"{capacity} B, {free} B free")


def test_shadowing_ic_in_place_on_the_pico_then_promote(packed, models_port, shared_models):
    capsules = packed[0]
    inputs = [np.random.default_rng(seed).integers(-128, 128, 32 * 32 * 3, dtype=np.int8)
              .tobytes() for seed in (1, 2, 3)]
    out = on_board(models_port, f"""
import gc, os, time, binascii, minerva
def copy(src, dst):
    buf = bytearray(4096)
    with open(src, 'rb') as a, open(dst, 'wb') as b:
        while True:
            n = a.readinto(buf)
            if not n:
                break
            b.write(memoryview(buf)[:n])
for d in ('/ric', '/ric/inbox'):
    try:
        os.mkdir(d)
    except OSError:
        pass
copy('/capsules/ic_whole.cap', '/ric/inbox/ic.cap')
rt = minerva.Runtime('/ric')
print('ACTIVE', rt.active.in_place, rt.active.info()['version'])
copy('/capsules/ic_v2.cap', '/ric/inbox/ic_v2.cap')
rt.poll()
gc.collect()
print('CANDIDATE', rt.candidate is not None and rt.candidate.in_place,
      rt.candidate is not None and rt.candidate.arena is rt.active.arena, gc.mem_free())
for h in {[x.hex() for x in inputs]!r}:
    t = time.ticks_us()
    y = rt.infer(binascii.unhexlify(h))
    print('OUT', binascii.hexlify(bytes(y)).decode(), time.ticks_diff(time.ticks_us(), t))
s = rt.status()
print('SHADOW', s['shadow']['samples'], s['shadow']['agreement'])
rt.promote(force=True)
y = rt.infer(binascii.unhexlify({inputs[0].hex()!r}))
print('PROMOTED', rt.status()['active']['version'], rt.active.in_place,
      binascii.hexlify(bytes(y)).decode())
""", timeout=900)
    lines = {}
    for line in out.splitlines():
        lines.setdefault(line.split()[0], []).append(line.split()[1:])
    assert lines["ACTIVE"] == [["True", "1.0.0"]], out
    assert lines["CANDIDATE"][0][:2] == ["True", "True"], out
    want = host_outputs(capsules["ic_whole"], inputs)
    assert [bytes.fromhex(o[0]) for o in lines["OUT"]] == want
    assert lines["SHADOW"][0][0] == "3", out
    assert lines["PROMOTED"][0][:2] == ["2.0.0", "True"], out
    assert bytes.fromhex(lines["PROMOTED"][0][2]) == host_outputs(capsules["ic_v2"],
                                                                  inputs[:1])[0]
    us = [int(o[1]) for o in lines["OUT"]]
    print(f"\nSHADOW IC in place: {lines['CANDIDATE'][0][2]} B free with both loaded, "
          f"{[u // 1000 for u in us]} ms per shadowed inference (active + candidate)")


# -- on-device training on the board's own firmware (docs/training.md) -------------------------

_TRAIN = """
import gc, json, binascii, minerva
from minerva.trainer import Trainer
gc.collect()
m = minerva.load({cap!r})
data = open({inputs!r}, "rb").read()
labels = {labels!r}
size = len(data) // len(labels)
gc.collect()
base = gc.mem_alloc()
t = Trainer(m, {cap!r}, scratch="/train.scratch", measure=True)
for k in range(len(labels)):
    t.learn(data[k * size:(k + 1) * size], labels[k])
peak = t.peak_heap - base
print("JSON " + json.dumps({{"peak": peak, "paged": t.paged_bytes, "tier": t.tier,
                             "planned": t.planned}}))
for k in range(0, len(t.params), 256):
    print("P " + binascii.hexlify(bytes(t.params[k:k + 256])).decode())
"""


@pytest.mark.parametrize("model", ["digits", "conv_chain"])
def test_training_on_the_pico_follows_the_plan(port, deployed, model, tmp_path):
    """On the RP2040 firmware (single-precision floats, the Python training kernels: armv6m
    has no float natmod), with its own heap and littlefs: the trainer's weights after a few
    samples equal the numpy reference to single-precision tolerance; at the conv chain's
    smallest budget the plan pages a tensor, and the flash bytes written equal the plan's; the
    heap the trainer holds stays within the budget and the plan's peak plus the reserve."""
    from test_training import DIGITS, conv_chain_tflite, pack, train_header
    from train_reference import chain_spec, chain_train_ref

    from minerva_packager.capsule.trainable import TRAINER_RESERVE_BYTES
    from minerva_packager.errors import PackagerError

    if model == "digits":
        path, count = pack(tmp_path, DIGITS, "all", batch=2, lr=0.02), 4
    else:
        tflite = conv_chain_tflite(tmp_path, in_channels=32)
        try:
            pack(tmp_path, tflite, "all", train_ram=1)
        except PackagerError as exc:
            smallest = int(str(exc).split("works is ")[1].split()[0])
        path, count = pack(tmp_path, tflite, "all", train_ram=smallest), 1
    capsule = read_capsule(path)
    rng = np.random.default_rng(5)
    inp = capsule.tensors[capsule.inputs[0]]
    xs = rng.integers(-128, 128, (count, inp.nbytes)).astype(np.int8)
    labels = rng.integers(0, 10, count).tolist()
    with connect(port) as board:
        board.write_file("/train.cap", path.read_bytes())
        board.write_file("/train_x.bin", xs.tobytes())
    out = on_board(port, _TRAIN.format(cap="/train.cap", inputs="/train_x.bin",
                                       labels=labels), timeout=900)
    got = json.loads(re.search(r"JSON (.*)", out).group(1))
    params = np.frombuffer(bytes.fromhex("".join(
        line[2:] for line in out.splitlines() if line.startswith("P "))), "<f4")
    plan = capsule.train_schedule
    predicted = plan["predicted"]
    budget = plan["limits"]["ram_bytes"] + TRAINER_RESERVE_BYTES
    print(f"pico {model}: trainer holds {got['peak']} B (plan {predicted['peak_ram_bytes']}, "
          f"budget {budget}), flash {got['paged']} B for {count} samples (plan "
          f"{predicted['flash_bytes_written']} each), {got['tier']} kernels")
    assert got["tier"] == "python"
    assert got["paged"] == count * predicted["flash_bytes_written"]
    assert predicted["peak_ram_bytes"] <= got["peak"] <= budget
    header, masters = train_header(capsule)
    spec = chain_spec(capsule, header)
    boundary = (xs.astype(np.float64) - inp.zero_point) * np.float32(inp.scale)
    opt = header["optimizer"]
    _, expected = chain_train_ref(spec, masters, boundary, labels, opt["lr"], opt["momentum"],
                                  opt["batch"])
    if model == "digits":
        np.testing.assert_allclose(params, expected, rtol=1e-3,
                                   atol=1e-4 * np.abs(expected).max())
    else:
        assert predicted["flash_bytes_written"] > 0
