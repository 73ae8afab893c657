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

from minerva_packager.board_run import run_on_board
from minerva_packager.boards import load_board
from minerva_packager.capsule import read_capsule
from minerva_packager.residency import board_budget
from minerva_packager.runtime import DIST_DIR, arch_from_mpy
from minerva_packager.transport import connect

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
    capsules["ad_whole"] = folder / "ad_whole.cap"
    tool("minerva", "pack", shared_models / MODELS["ad"], "--ram-budget", 10**6, "-o",
         capsules["ad_whole"])
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
    assert read_capsule(capsule).meta["ram_bytes"] <= board_budget(BOARD)
    x = _input(key, capsule, shared_models)
    outputs, tier = run_on_board(models_port, capsule, [x])
    assert tier == "natmod"
    assert outputs == host_outputs(capsule, [x])


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

    from minerva_packager.errors import PackagerError
    from minerva_packager.trainable import TRAINER_RESERVE_BYTES

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
