"""Power cuts at every flash write of an update: after each, the board reboots into a working
installation -- the runtime files all of one release, `import minerva` works, the capsule
loads, and runtime and capsule switched together.

The virtual board's flash stops at write k of the deploy (MINERVA_VBOARD_POWER,
vboard_agent.FileFlash; every other cut tears that write in half), as a board whose power went
there; it is then restarted on the same image. The update is a new runtime release (three
modules changed, as when an API changes) with a new capsule version, deployed with the real
deploy code."""

import ast
import os
import shutil

import numpy as np
import pytest
from board_helpers import DIGITS_CAPSULE, ROOT, vboard

from minerva_packager.board import device_files as runtime
from minerva_packager.board.deploy import deploy
from minerva_packager.board.profiles import load_board
from minerva_packager.board.transport import connect
from minerva_packager.capsule.pack import pack_file
from minerva_packager.errors import PackagerError

_STATE = """
import minerva, os
m = minerva.load("/capsules/digits.cap")
# After `import minerva` (which recovers), no part, journal or pending list may remain.
print(repr((m.info()["version"], sorted(os.listdir("/lib/minerva")),
            [n for n in os.listdir("/") if "journal" in n or "pending" in n]
            + [d + "/" + n for d in ("/lib/minerva", "/capsules") for n in os.listdir(d)
               if n.endswith(".part")])))
del m  # the board's globals outlive this snippet; the next check needs the heap
"""


def _release_b(tmp):
    """device/minerva with three modules changed the way a new release changes them."""
    pkg = tmp / "minerva"
    shutil.copytree(ROOT / "device" / "minerva", pkg)
    for name in ("__init__.py", "model.py", "graph.py"):
        path = pkg / name
        path.write_text(path.read_text() + '\n_RELEASE = "B"\n')
    return pkg


def _state(port):
    with connect(port) as t:
        version, names, journals = ast.literal_eval(t.exec(_STATE).decode().strip())
        hashes = {n: t.eval("__import__('hashlib').sha256(open('/lib/minerva/%s','rb')"
                            ".read()).digest().hex()" % n) for n in names}
    return version, hashes, journals


def _loads(port, path):
    """'OK' if the capsule at ``path`` loads on the board, else why not."""
    with connect(port) as t:
        # The smallest tier with every filter paged: the check is about the file, not the heap
        # (the x64 native module alone takes 54 KB of the virtual Pico's heap).
        return t.exec("import gc, minerva\ngc.collect()\ntry:\n"
                      "    minerva.load(%r, kernels='python', paged=True).close()\n"
                      "    print('OK')\n"
                      "except (OSError, minerva.CapsuleError) as e:\n    print(e)\n"
                      % path).decode().strip()


def _release_hashes(port):
    return _state(port)[1]


@pytest.fixture(scope="module")
def update(tmp_path_factory):
    """(base image with release A + capsule 1.0.0, release B dir, capsule 2.0.0, hashes of
    A and B as installed, number of flash writes the update takes)."""
    tmp = tmp_path_factory.mktemp("power")
    b_pkg = _release_b(tmp)
    v2 = tmp / "v2" / "digits.cap"
    v2.parent.mkdir()
    pack_file(ROOT / "capsules" / "digits.tflite", v2, name="digits", version="2.0.0")
    image = tmp / "base.img"
    with vboard(tmp / "state-a", image=str(image)) as port:
        deploy(port, [DIGITS_CAPSULE], board="rp2040", say=lambda s: None)
        a_hashes = _release_hashes(port)
    base = tmp / "base-copy.img"
    shutil.copy(image, base)
    power = tmp / "power"
    power.write_text("0 0 0")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MINERVA_VBOARD_POWER", str(power))
        with vboard(tmp / "state-b", image=str(image)) as port:
            # Counts the writes of the deploy alone (across the soft resets it makes).
            power.write_text("0 0 0")
            _deploy_b(port, b_pkg, v2)
            writes = int(power.read_text().split()[0])
    with vboard(tmp / "state-b2", image=str(image)) as port:
        b_hashes = _release_hashes(port)
    assert a_hashes != b_hashes
    return base, b_pkg, v2, a_hashes, b_hashes, writes


def _deploy_b(port, b_pkg, capsules):
    saved = runtime.DEVICE_PACKAGE
    runtime.DEVICE_PACKAGE = b_pkg
    try:
        deploy(port, capsules if isinstance(capsules, list) else [capsules], board="rp2040",
               say=lambda s: None)
    finally:
        runtime.DEVICE_PACKAGE = saved


def test_power_cut_at_every_write_leaves_one_whole_release(update, tmp_path, monkeypatch):
    base, b_pkg, v2, a_hashes, b_hashes, writes = update
    assert writes > 5, writes
    # MINERVA_POWER_CUT_STRIDE=n cuts at every n-th write only (a quicker look).
    stride = int(os.environ.get("MINERVA_POWER_CUT_STRIDE", "1"))
    _cut_and_reboot(update, range(1, writes + 1, stride), tmp_path, monkeypatch)


def test_power_cut_at_random_writes_of_a_large_update(update, shared_models, tmp_path,
                                                      monkeypatch):
    # The new release with a 33 KB keyword-spotting capsule besides the new digits: hundreds
    # more writes.
    base, b_pkg, v2, a_hashes, b_hashes, _ = update
    kws = v2.parent / "kws.cap"
    pack_file(shared_models / "kws01_dscnn_int8.tflite", kws,
              board=load_board("rp2040"))
    large = (base, b_pkg, [v2, kws], a_hashes, b_hashes, None)
    image = tmp_path / "count.img"
    shutil.copy(base, image)
    power = tmp_path / "count"
    power.write_text("0 0 0")
    monkeypatch.setenv("MINERVA_VBOARD_POWER", str(power))
    with vboard(tmp_path / "count-state", image=str(image)) as port:
        power.write_text("0 0 0")
        _deploy_b(port, b_pkg, [v2, kws])
        writes = int(power.read_text().split()[0])
    monkeypatch.delenv("MINERVA_VBOARD_POWER")
    rng = np.random.default_rng(11)
    cuts = sorted({int(k) for k in rng.integers(1, writes + 1, 10)} | {writes - 1})
    _cut_and_reboot(large, cuts, tmp_path, monkeypatch, extra="kws.cap")


def _cut_and_reboot(update, cuts, tmp_path, monkeypatch, extra=None):
    base, b_pkg, v2, a_hashes, b_hashes, _ = update
    writes = max(cuts)
    outcomes = {"old": 0, "new": 0}
    for k in cuts:
        image = tmp_path / f"cut{k}.img"
        shutil.copy(base, image)
        power = tmp_path / f"power{k}"
        power.write_text("0 0 0")
        monkeypatch.setenv("MINERVA_VBOARD_POWER", str(power))
        with vboard(tmp_path / f"cut{k}", image=str(image)) as port:
            # Armed once the board is up: the cut falls among the deploy's own writes.
            power.write_text("0 %d %d" % (k, k % 2))
            try:
                _deploy_b(port, b_pkg, v2)
            except PackagerError:
                pass  # the board died mid-update, as expected
        monkeypatch.delenv("MINERVA_VBOARD_POWER")
        with vboard(tmp_path / f"reboot{k}", image=str(image)) as port:
            version, hashes, journals = _state(port)
            extra_loads = extra and _loads(port, "/capsules/" + extra)
        where = f"cut at write {k} (of at least {writes})"
        assert hashes in (a_hashes, b_hashes), f"{where}: a mix of releases: {hashes}"
        release = "old" if hashes == a_hashes else "new"
        assert version == {"old": "1.0.0", "new": "2.0.0"}[release], \
            f"{where}: {release} runtime with capsule {version}"
        assert not journals, f"{where}: left after import: {journals}"
        if extra:
            assert (extra_loads == "OK") == (release == "new"), \
                f"{where}: {extra} with the {release} runtime: {extra_loads}"
        outcomes[release] += 1
    # The cuts fall on both sides of the commit.
    assert outcomes["old"] and outcomes["new"], outcomes


@pytest.mark.parametrize("via", ["mpremote", "ampy"])
@pytest.mark.parametrize("when", ["uploading", "verifying"])
def test_losing_the_port_mid_deploy_is_one_error_and_keeps_the_release(update, tmp_path, when,
                                                                       via):
    # The board goes away (unplugged, or the virtual board stopped) while a file is uploading,
    # or just after, while the parts are verified: deploy ends in one PackagerError, not a
    # traceback, and the board still has its release.
    from board_helpers import tool

    base, b_pkg, v2, a_hashes, _, _ = update
    image = tmp_path / "unplug.img"
    shutil.copy(base, image)
    state = tmp_path / "unplug"

    class Unplug:
        """A progress bar during which the cable is pulled once the first chunk is sent."""

        def __init__(self, total):
            self.done = False

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            if when == "verifying":
                tool("minerva", "vboard", "stop", "--state-dir", state)
            return False

        def update(self, n):
            if n and not self.done and when == "uploading":
                self.done = True
                tool("minerva", "vboard", "stop", "--state-dir", state)

    try:
        with vboard(state, image=str(image)) as port:
            saved = runtime.DEVICE_PACKAGE
            runtime.DEVICE_PACKAGE = b_pkg
            try:
                with pytest.raises(PackagerError, match="lost the board|write failed"):
                    deploy(port, [v2], board="rp2040", via=via, say=lambda s: None,
                           progress=Unplug)
            finally:
                runtime.DEVICE_PACKAGE = saved
    except AssertionError as exc:
        # vboard()'s own stop finds the board already stopped.
        assert "vboard stop" in str(exc), exc
    with vboard(tmp_path / "replug", image=str(image)) as port:
        version, hashes, _ = _state(port)
    assert (version, hashes) == ("1.0.0", a_hashes)


def test_capsule_the_boards_runtime_cannot_read_is_not_activated(update, tmp_path):
    # A capsule deployed without the runtime must suit the runtime already on the board: one
    # with an op that runtime does not know is refused before the commit, and the board keeps
    # what it had.
    from opmodels import build_op_model

    base, _, _, a_hashes, _, _ = update
    old = tmp_path / "old"
    shutil.copytree(ROOT / "device" / "minerva", old / "minerva")
    graph = old / "minerva" / "graph.py"
    # A runtime from before GATHER existed: opcode 11 is unknown to it.
    graph.write_text(graph.read_text().replace('    11: ("GATHER"', '    99: ("GATHER"'))
    src, cap = tmp_path / "transpose.tflite", tmp_path / "transpose.cap"
    src.write_bytes(build_op_model("conv_transpose_slice", 0).tflite)
    pack_file(src, cap)
    image = tmp_path / "old.img"
    shutil.copy(base, image)
    with vboard(tmp_path / "old-state", image=str(image)) as port:
        _deploy_b(port, old / "minerva", [DIGITS_CAPSULE])
        with pytest.raises(PackagerError, match="runtime cannot load.*opcode 11"):
            deploy(port, [cap], board="rp2040", runtime=False, say=lambda s: None)
        with connect(port) as t:
            names = t.eval("__import__('os').listdir('/capsules')")
        assert names == ["digits.cap"], names
