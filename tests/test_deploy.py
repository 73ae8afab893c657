"""Deploy and run over a serial port: the virtual board, and a real one on MINERVA_PORT."""

import hashlib
import json
import os
import pty
import tty

import numpy as np
import pytest
from board_helpers import DIGITS_CAPSULE, DIGITS_X, DIGITS_Y, host_outputs, tool, vboard

from minerva_packager.board.deploy import deploy, identify_board
from minerva_packager.board.run import run_on_board
from minerva_packager.board.transport import DeviceError, connect
from minerva_packager.capsule.container import read_capsule
from minerva_packager.capsule.pack import pack_tflite
from minerva_packager.errors import PackagerError

SAMPLES = 24


@pytest.fixture(scope="module")
def port(tmp_path_factory):
    with vboard(tmp_path_factory.mktemp("deploy")) as port:
        yield port


@pytest.fixture(scope="module")
def deployed(port):
    """The runtime and the digits capsule, installed once with the real CLI."""
    proc = tool("minerva", "deploy", "--port", port, "--board", "rp2040", DIGITS_CAPSULE)
    return proc.stdout


def _samples(n=SAMPLES):
    return [bytes(x) for x in np.load(DIGITS_X)[:n]]


def test_deploy_reports_and_verifies(deployed):
    assert "Uploading" in deployed
    last = deployed.strip().splitlines()[-1]
    assert last.startswith("Verified") and "SHA-256 of every file matches" in last
    assert "/capsules/digits.cap" in deployed and "/lib/minerva/model.mpy" in deployed


def test_run_on_board_matches_host_bytes(port, deployed):
    inputs = _samples()
    outputs, tier = run_on_board(port, DIGITS_CAPSULE, inputs)
    assert outputs == host_outputs(DIGITS_CAPSULE, inputs)
    assert tier in ("natmod", "viper", "python")
    predicted = [int(np.argmax(np.frombuffer(o, np.int8))) for o in outputs]
    labels = np.load(DIGITS_Y)[:SAMPLES]
    assert np.mean(np.array(predicted) == labels) > 0.85


def test_run_cli_prints_output_and_top_k(port, deployed, tmp_path):
    sample = tmp_path / "one.npy"
    np.save(sample, np.load(DIGITS_X)[0])
    out = tool("minerva", "run", "--port", port, DIGITS_CAPSULE, sample).stdout.splitlines()
    expected = host_outputs(DIGITS_CAPSULE, _samples(1))[0]
    assert out[0] == "output " + " ".join(str(v) for v in np.frombuffer(expected, np.int8))
    best = int(np.argmax(np.frombuffer(expected, np.int8)))
    assert out[1].startswith(f"top-3 {best}: ")
    raw = tmp_path / "one.bin"
    raw.write_bytes(_samples(1)[0])
    assert tool("minerva", "run", "--port", port, DIGITS_CAPSULE, raw).stdout.splitlines() == out


def test_run_batch_of_40_kws_inputs_streams_and_the_board_lives(port, deployed, shared_models,
                                                                tmp_path):
    # 40 KWS inputs were one 39 KB hex snippet of 32: the board ran out of RAM for it (the
    # virtual board died of it). Now inputs go in bounded chunks to a model loaded once.
    from minerva_packager.capsule.pack import pack_file

    cap = tmp_path / "kws.cap"
    pack_file(shared_models / "kws01_dscnn_int8.tflite", cap)
    tool("minerva", "deploy", "--port", port, "--no-runtime", "-q", cap)
    sample = np.load(shared_models / "samples" / "kws01_sample0_int8_49x10.npy")
    rng = np.random.default_rng(40)
    batch = np.concatenate([sample[None], rng.integers(-128, 128, (39, 49, 10, 1), np.int8)])
    np.save(tmp_path / "batch40.npy", batch)
    proc = tool("minerva", "run", "--port", port, cap, tmp_path / "batch40.npy", timeout=600)
    lines = [ln for ln in proc.stdout.splitlines() if " output " in ln]
    expected = host_outputs(cap, [x.tobytes() for x in batch])
    assert lines == [f"[{i}] output " + " ".join(str(v) for v in np.frombuffer(e, np.int8))
                     for i, e in enumerate(expected)]
    assert "ran 40 input(s)" in proc.stderr and "Traceback" not in proc.stderr
    # The same board answers afterwards.
    outputs, _ = run_on_board(port, DIGITS_CAPSULE, _samples(2))
    assert outputs == host_outputs(DIGITS_CAPSULE, _samples(2))


def test_run_quantizes_float_input_and_says_so(port, deployed, tmp_path):
    x = np.load(DIGITS_X)[:3]
    spec = read_capsule(DIGITS_CAPSULE).meta["inputs"][0]
    np.save(tmp_path / "real.npy", ((x.astype(np.float32) - spec["zero_point"])
                                    * spec["scale"]))
    np.save(tmp_path / "int8.npy", x)
    as_float = tool("minerva", "run", "--port", port, DIGITS_CAPSULE, tmp_path / "real.npy")
    as_int8 = tool("minerva", "run", "--port", port, DIGITS_CAPSULE, tmp_path / "int8.npy")
    assert as_float.stdout == as_int8.stdout
    assert "quantized float32 input to int8 with the model's scale" in as_float.stderr
    np.save(tmp_path / "wide.npy", x.astype(np.int16) * 3)
    proc = tool("minerva", "run", "--port", port, DIGITS_CAPSULE, tmp_path / "wide.npy",
                check=False)
    assert proc.returncode == 1 and "does not fit the model's int8 input" in proc.stderr
    assert proc.stdout == "" and "Traceback" not in proc.stderr


def test_second_deploy_skips_unchanged(port, deployed):
    proc = tool("minerva", "deploy", "--port", port, DIGITS_CAPSULE)
    assert "Uploading" not in proc.stdout
    assert "up to date: /capsules/digits.cap" in proc.stdout
    assert ": 0 uploaded (0 bytes)" in proc.stdout


def test_deploy_with_ampy_and_import_at_the_board(port, deployed, tmp_path):
    other = tmp_path / "digits_v2.cap"
    other.write_bytes(pack_tflite(DIGITS_CAPSULE.with_suffix(".tflite"), name="digits",
                                  version="2.0.0"))
    steps = []

    class Bar:
        def __init__(self, total):
            self.total = total

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n):
            steps.append(n)

    report = deploy(port, [other], via="ampy", runtime=False, say=lambda text: None,
                    progress=Bar)
    assert report.uploaded == ["/capsules/digits_v2.cap"]
    # The bar moves with the bytes: one step per 256-byte chunk, adding up to the file.
    moves = [n for n in steps if n]
    assert len(moves) == -(-other.stat().st_size // 256) and sum(moves) == other.stat().st_size
    out = tool("ampy", "--port", port, "run", _write(tmp_path / "info.py",
               "import minerva\nprint(minerva.load('/capsules/digits_v2.cap').info()"
               "['version'])\n")).stdout
    assert out.strip() == "2.0.0"


def _write(path, text):
    path.write_text(text)
    return path


def test_wrong_board_is_refused(port, deployed):
    proc = tool("minerva", "deploy", "--port", port, "--board", "esp32", DIGITS_CAPSULE,
                check=False)
    assert proc.returncode == 1
    assert "wrong board" in proc.stderr and "--board rp2040" in proc.stderr


def test_missing_port_and_unknown_capsule_location(port, deployed, tmp_path):
    proc = tool("minerva", "deploy", "--port", "/dev/no-such-board", DIGITS_CAPSULE,
                check=False)
    assert proc.returncode == 1 and "minerva: no port /dev/no-such-board" in proc.stderr
    renamed = tmp_path / "not_deployed.cap"
    renamed.write_bytes(DIGITS_CAPSULE.read_bytes())
    with pytest.raises(PackagerError, match="not_deployed.cap is not on the board"):
        run_on_board(port, renamed, _samples(1))


def test_not_a_micropython_board():
    # A serial port where nothing answers the raw REPL, like a board without MicroPython.
    master, slave = pty.openpty()
    tty.setraw(slave)
    try:
        with pytest.raises(PackagerError, match="not a MicroPython board"):
            deploy(os.ttyname(slave), [DIGITS_CAPSULE], say=lambda text: None)
    finally:
        os.close(master)
        os.close(slave)


def test_interrupted_transfer_leaves_previous_version_active(port, deployed, tmp_path):
    newer = tmp_path / "digits.cap"
    newer.write_bytes(pack_tflite(DIGITS_CAPSULE.with_suffix(".tflite"), name="digits",
                                  version="9.9.9"))

    class CtrlC:
        """A progress bar whose user presses Ctrl-C once the first chunk is on the board."""

        def __init__(self, total):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n):
            if n:
                raise KeyboardInterrupt

    with pytest.raises(PackagerError, match="interrupted: nothing new was activated"):
        deploy(port, [newer], runtime=False, say=lambda text: None, progress=CtrlC)
    check = "import minerva, os\nprint(minerva.load('/capsules/digits.cap').info()['version'], " \
            "sorted(os.listdir('/capsules')))\n"
    out = tool("mpremote", "connect", port, "exec", check).stdout.split(maxsplit=1)
    # `import minerva` dropped the uncommitted part (named in /minerva.pending).
    assert out[0] == "1.0.0" and ".part" not in out[1]
    # The next deploy installs the new version.
    deploy(port, [newer], runtime=False, say=lambda text: None)
    out = tool("mpremote", "connect", port, "exec", check).stdout.split(maxsplit=1)
    assert out[0] == "9.9.9" and ".part" not in out[1]
    deploy(port, [DIGITS_CAPSULE], runtime=False, say=lambda text: None)


def test_sigterm_during_deploy_says_what_was_left(port, deployed, shared_models, tmp_path):
    # Python's default SIGTERM ended deploy silently, in the middle of the upload.
    import signal
    import subprocess

    from board_helpers import BIN

    from minerva_packager.capsule.pack import pack_file

    cap = tmp_path / "kws_term.cap"
    pack_file(shared_models / "kws01_dscnn_int8.tflite", cap)  # 33 KB: a long upload
    proc = subprocess.Popen([str(BIN / "minerva"), "deploy", "--port", port, "--no-runtime",
                             cap], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith("uploading /capsules/kws_term.cap"):
            break
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, (out, err)
    assert err.startswith("minerva: deploy interrupted by SIGTERM: nothing new was activated")
    assert "Traceback" not in err and len(err.splitlines()) == 1
    listing = tool("mpremote", "connect", port, "exec",
                   "import minerva, os\nprint(os.listdir('/capsules'))").stdout
    assert "kws_term" not in listing and "digits.cap" in listing


def test_full_filesystem_is_refused_before_writing(tmp_path):
    tiny = json.loads((DIGITS_CAPSULE.parents[1] / "boards" / "rp2040.json").read_text())
    tiny.update(name="tiny", machine="Tiny test board")
    tiny["filesystem"] = dict(tiny["filesystem"], offset=0, size=16 * 4096)
    board_file = tmp_path / "tiny.json"
    board_file.write_text(json.dumps(tiny))
    with vboard(tmp_path / "state", board=board_file) as tiny_port:
        with pytest.raises(PackagerError, match="filesystem full") as err:
            deploy(tiny_port, [DIGITS_CAPSULE], board=str(board_file), say=lambda text: None)
        assert "deploy fewer capsules" in err.value.hint
        listing = tool("mpremote", "connect", tiny_port, "exec",
                       "import os; print(os.listdir('/'))").stdout.strip()
        assert listing == "[]"


@pytest.fixture(scope="module")
def real_port():
    found = os.environ.get("MINERVA_PORT")
    if not found:
        pytest.skip("MINERVA_PORT is not set (it names a real board's serial port)")
    return found


@pytest.mark.board
def test_real_board_tools_without_flags(real_port, tmp_path):
    # The same mpremote and ampy calls the virtual board answers.
    blob = tmp_path / "minerva_probe.bin"
    blob.write_bytes(os.urandom(1000))
    tool("mpremote", "connect", real_port, "fs", "cp", blob, ":minerva_probe.bin")
    digest = tool("mpremote", "connect", real_port, "fs", "sha256sum",
                  ":minerva_probe.bin").stdout
    assert hashlib.sha256(blob.read_bytes()).hexdigest() in digest
    assert "/minerva_probe.bin" in tool("ampy", "--port", real_port, "ls").stdout
    tool("mpremote", "connect", real_port, "fs", "rm", ":minerva_probe.bin")


@pytest.mark.board
def test_real_board_deploy_run_skip_and_wrong_board(real_port):
    report = deploy(real_port, [DIGITS_CAPSULE], say=print)
    inputs = _samples(8)
    outputs, _ = run_on_board(real_port, DIGITS_CAPSULE, inputs)
    assert outputs == host_outputs(DIGITS_CAPSULE, inputs)
    again = deploy(real_port, [DIGITS_CAPSULE], say=print)
    assert again.uploaded == []
    other = "esp32" if report.board["name"].startswith("rp2040") else "rp2040"
    with pytest.raises(PackagerError, match="wrong board"):
        deploy(real_port, [DIGITS_CAPSULE], board=other, say=print)


class _Probe:
    def __init__(self, machine):
        self.machine = machine


@pytest.mark.parametrize("machine, board", [
    ("Raspberry Pi Pico with RP2040", "rp2040"),
    ("Raspberry Pi Pico W with RP2040", "rp2040w"),
    ("Arduino Nano RP2040 Connect with RP2040", "rp2040"),
    ("Generic ESP32 module with ESP32", "esp32"),
    ("Generic ESP32S3 module with Octal-SPIRAM with ESP32S3", "esp32s3"),
    ("linux [GCC 14.2.1] version", "unix"),
])
def test_board_identified_from_machine_name(machine, board):
    assert identify_board(_Probe(machine))["name"] == board
    assert identify_board(_Probe(machine), board)["name"] == board


@pytest.mark.parametrize("machine, requested", [
    ("Raspberry Pi Pico W with RP2040", "rp2040"),
    ("Raspberry Pi Pico with RP2040", "rp2040w"),
    ("Generic ESP32 module with ESP32", "esp32s3"),
    ("Generic ESP32S3 module with ESP32S3", "rp2040"),
])
def test_wrong_board_names_the_right_one(machine, requested):
    with pytest.raises(PackagerError, match="wrong board") as err:
        identify_board(_Probe(machine), requested)
    assert "--board " in err.value.hint


def test_unknown_board_asks_for_board():
    with pytest.raises(PackagerError, match="unknown board"):
        identify_board(_Probe("Some STM32 board with STM32F405RG"))


def test_run_without_runtime_says_to_deploy(tmp_path):
    with vboard(tmp_path) as fresh:
        deploy(fresh, [DIGITS_CAPSULE], runtime=False, say=lambda text: None)
        with pytest.raises(PackagerError, match="runtime is not on the board") as err:
            run_on_board(fresh, DIGITS_CAPSULE, _samples(1))
        assert "minerva deploy --port" in err.value.hint
        failed = tool("mpremote", "connect", fresh, "exec", "import minerva", check=False)
        assert failed.returncode == 1


@pytest.mark.parametrize("via", ["mpremote", "ampy"])
def test_transport_exec_eval_and_device_errors(port, via):
    with connect(port, via) as board:
        assert board.eval("6 * 7") == 42
        assert board.exec("print('x' * 3)").strip() == b"xxx"
        with pytest.raises(DeviceError) as err:
            board.exec("def f():\n    return 1 / 0\nf()")
    assert str(err.value) == ("the board raised ZeroDivisionError: divide by zero "
                              "(at File \"<stdin>\", line 2, in f)")


def test_deploy_warns_when_a_capsule_cannot_fit_the_board(port, deployed, shared_models,
                                                          tmp_path):
    # IC packed for no board keeps all its weights in RAM: more than an RP2040's heap has
    # beside the runtime and the application's reserve.
    capsule = tmp_path / "ic_whole.cap"
    capsule.write_bytes(pack_tflite(shared_models / "ic01_resnet8_int8.tflite"))
    out = tool("minerva", "deploy", "--port", port, "--no-runtime", capsule).stdout
    assert f"warning: {capsule} needs" in out and "--board rp2040" in out, out
    fitted = tmp_path / "ic_rp2040.cap"
    tool("minerva", "pack", shared_models / "ic01_resnet8_int8.tflite", "-b", "rp2040", "-o",
         fitted)
    out = tool("minerva", "deploy", "--port", port, "--no-runtime", fitted).stdout
    assert "warning" not in out, out
    tool("mpremote", "connect", port, "rm", ":/capsules/ic_whole.cap", ":/capsules/ic_rp2040.cap")


KWS_LABELS = ["down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes", "silence",
              "unknown"]  # MLPerf Tiny KWS's output order


def test_labels_in_the_capsule_printed_by_run_and_on_the_board(port, deployed, shared_models,
                                                               tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(KWS_LABELS) + "\n\n")
    capsule = tmp_path / "kws_labels.cap"
    tool("minerva", "pack", shared_models / "kws01_dscnn_int8.tflite", "-b", "rp2040",
         "--labels", labels, "-o", capsule)
    assert "labels       12: down, go, left" in tool("minerva", "inspect", capsule).stdout
    tool("minerva", "deploy", "--port", port, "--no-runtime", capsule)
    sample = shared_models / "samples" / "kws01_sample0_int8_49x10.npy"
    out = tool("minerva", "run", "--port", port, capsule, sample).stdout.splitlines()
    # The reference kernels classify this sample as "on" (../shared/models/README.md).
    assert out[1].startswith("top-3 5 on: "), out
    with connect(port) as board:
        got = board.exec("import minerva\nm = minerva.load('kws_labels.cap')\n"
                         "print(m.labels == m.info()['labels'], m.labels[5])").decode()
    assert got.split() == ["True", "on"]
    tool("mpremote", "connect", port, "rm", ":/capsules/kws_labels.cap")


def test_wrong_labels_are_refused(shared_models, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(KWS_LABELS[:11]))
    proc = tool("minerva", "pack", shared_models / "kws01_dscnn_int8.tflite", "--labels", labels,
                "-o", tmp_path / "k.cap", check=False)
    assert proc.returncode == 1 and "11 labels for 12 classes" in proc.stderr
    proc = tool("minerva", "pack", shared_models / "hello_world_int8.tflite",
                "--labels", labels, "-o", tmp_path / "a.cap", check=False)
    assert proc.returncode == 1 and "labels need a classifier's output" in proc.stderr
