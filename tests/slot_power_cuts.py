# Runs on the MicroPython unix port (tests/test_slot_power_cuts.py feeds it CONFIG): the
# Minerva core's flash writes on a real LittleFS (vfs.VfsLfs2) over a RAM block device that
# counts program/erase operations and loses power at operation k (optionally tearing it: half
# its bytes land), as the virtual board's FileFlash does. After each cut the filesystem is
# mounted afresh from the bytes the flash holds and the RAM a reset would clear is cleared;
# then the board must start and serve a verified capsule, whole, with its slots readable.
import gc
import os
import random
import time

import vfs

import minerva
from minerva import slots as slots_module
from minerva.ringlog import RingLog
from minerva.runtime import Runtime

CONFIG = globals().get("CONFIG")  # set by the test's prelude
MOUNT = "/lfs"
ROOT = MOUNT + "/capsules"
BLOCK = 4096


class PowerCut(OSError):
    pass


# Raised without allocating: a file a cut left open is closed by the garbage collector, whose
# finaliser writes with the heap locked.
_CUT = PowerCut(5)


class RamFlash:
    def __init__(self, data, cut_at=0, tear=0):
        self.data = data
        self.writes = 0
        self.cut_at = cut_at
        self.tear = tear

    def _powered(self, buf=None, pos=0):
        self.writes += 1
        if not self.cut_at or self.writes < self.cut_at:
            return
        if self.writes == self.cut_at and self.tear and buf is not None:
            half = len(buf) // 2
            self.data[pos:pos + half] = buf[:half]
        raise _CUT

    def readblocks(self, block, buf, offset=0):
        pos = block * BLOCK + offset
        buf[:] = self.data[pos:pos + len(buf)]

    def writeblocks(self, block, buf, offset=None):
        pos = block * BLOCK + (offset or 0)
        self._powered(buf, pos)
        self.data[pos:pos + len(buf)] = buf

    def ioctl(self, op, arg):
        if op == 4:
            return len(self.data) // BLOCK
        if op == 5:
            return BLOCK
        if op == 6:
            self._powered()
            self.data[arg * BLOCK:(arg + 1) * BLOCK] = b"\xff" * BLOCK
        return 0


def mount(data, cut_at=0, tear=0):
    try:
        vfs.umount(MOUNT)
    except OSError:
        pass
    flash = RamFlash(data, cut_at, tear)
    vfs.mount(vfs.VfsLfs2(flash), MOUNT)
    return flash


def reset():
    # What a reset clears: RAM, so the trials started in this boot are forgotten.
    del slots_module.TRIALS_THIS_BOOT[:]


def host_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def put(path, data):
    # A capsule arriving by a file copy (mpremote cp, a USB drive): 512-byte writes.
    with open(path, "wb") as f:
        for i in range(0, len(data), 512):
            f.write(data[i:i + 512])


CAPSULES = {}   # label -> (bytes, expected output on PROBE, sha16)
PROBE = None


def expected_outputs():
    global PROBE
    PROBE = bytes((i * 37) & 0xFF for i in range(CONFIG["input_bytes"]))
    for label, path in CONFIG["capsules"].items():
        m = minerva.load(path, kernels=CONFIG["kernels"])
        out = bytes(m.run(PROBE))
        m.close()
        data = host_bytes(path)
        sha = "".join("%02x" % b for b in data[-32:])[:16]
        CAPSULES[label] = (data, out, sha + ".cap")


def label_of(slot):
    for label, (_, _, name) in CAPSULES.items():
        if name == slot:
            return label
    return None


def check_board(allowed_active, must_hold=()):
    # After a reset: start, serve, and account for every capsule. Returns the active's label.
    reset()
    rt = Runtime(ROOT, kernels=CONFIG["kernels"])
    st = rt.slots.state
    active = label_of(st["active"])
    assert active in allowed_active, "active %r, allowed %r" % (active, allowed_active)
    if active is not None:
        out = bytes(rt.infer(PROBE))
        assert out == CAPSULES[active][1], "active %s answers something else" % active
    held = [label_of(n) for n in (st["active"], st["candidate"], st["previous"])]
    inbox = os.listdir(ROOT + "/inbox")
    for label in must_hold:
        name = CONFIG["inbox_name"][label]
        assert label in held or name in inbox, "%s lost: held %r inbox %r" % (label, held,
                                                                           inbox)
    for name in os.listdir(ROOT + "/slots"):
        assert name in (st["active"], st["candidate"], st["previous"]), "stray " + name
    RingLog(ROOT + "/log", 8).read()
    rt.status()
    rt.close()
    return active


def snapshot():
    return bytearray(FLASH[0].data)


FLASH = [None]


def run_op(image, op, cut_at, tear):
    # Files a previous cut left open are finalised now, on the flash they belonged to.
    gc.collect()
    data = bytearray(image)
    FLASH[0] = mount(data, cut_at, tear)
    reset()
    flash = FLASH[0]
    try:
        op()
    except OSError as exc:
        if not (flash.cut_at and flash.writes >= flash.cut_at):
            raise exc
    # A cut may also land in a write whose failure the code ignores (removing a stray file).
    return bool(flash.cut_at and flash.writes >= flash.cut_at)


def sweep(name, image, op, check, points=None, seed=0):
    # Every write of ``op`` (or ``points`` random ones), each with and without a tear.
    started = time.ticks_ms()
    run_op(image, op, 0, 0)
    total = FLASH[0].writes
    cuts = [(k, t) for k in range(1, total + 1) for t in (0, 1)]
    if points is not None and points < len(cuts):
        rng = random.Random(seed) if hasattr(random, "Random") else None
        if rng is None:
            random.seed(seed)
            cuts = [cuts[random.getrandbits(16) % len(cuts)] for _ in range(points)]
        else:
            cuts = rng.sample(cuts, points)
    for k, tear in cuts:
        cut = run_op(image, op, k, tear)
        assert cut, "%s: write %d never came (op made %d writes)" % (name, k, total)
        data = FLASH[0].data
        FLASH[0] = mount(bytearray(data))
        try:
            check()
        except Exception as exc:  # noqa: BLE001 - the repro line is the point
            print("FAIL %s cut_at=%d tear=%d: %r" % (name, k, tear, exc))
            raise
    print("SWEEP %s writes=%d cuts=%d ms=%d" % (name, total, len(cuts),
                                              time.ticks_diff(time.ticks_ms(), started)))
    return len(cuts)


def drive():
    expected_outputs()
    kern = CONFIG["kernels"]
    first, second = CONFIG["pair"]
    in1, in2 = CONFIG["inbox_name"][first], CONFIG["inbox_name"][second]
    blank = bytearray(b"\xff" * (CONFIG["flash_blocks"] * BLOCK))
    vfs.VfsLfs2.mkfs(RamFlash(blank))
    FLASH[0] = mount(blank)
    os.mkdir(ROOT)
    os.mkdir(ROOT + "/inbox")
    empty = snapshot()
    points = CONFIG.get("points")
    total = 0

    def install():
        put(ROOT + "/inbox/" + in1, CAPSULES[first][0])
        Runtime(ROOT, kernels=kern)

    total += sweep("install", empty, install, lambda: check_board((None, first)), points)
    run_op(empty, install, 0, 0)
    installed = snapshot()

    def stage():
        put(ROOT + "/inbox/" + in2, CAPSULES[second][0])
        Runtime(ROOT, kernels=kern)

    def staged_check():
        check_board((first,))

    total += sweep("stage", installed, stage, staged_check, points)
    run_op(installed, stage, 0, 0)
    staged = snapshot()

    def shadow():
        rt = Runtime(ROOT, kernels=kern)
        rt.set_policy(flush_every=3, log_records=4)
        for i in range(CONFIG["shadow_inputs"]):
            rt.infer(bytes(((i + 1) * j * 13) & 0xFF for j in range(CONFIG["input_bytes"])))

    total += sweep("shadow+log", staged, shadow, lambda: check_board((first,), (second,)),
                   points)
    run_op(staged, shadow, 0, 0)
    shadowed = snapshot()
    assert len(RingLog(ROOT + "/log", 4).read()) > 0 or CONFIG["shadow_inputs"] < 8

    def promote():
        Runtime(ROOT, kernels=kern).promote(force=True, now=False)

    total += sweep("promote", shadowed, promote,
                   lambda: check_board((first, second), (first, second)), points)
    run_op(shadowed, promote, 0, 0)
    promoted = snapshot()

    def confirm():
        rt = Runtime(ROOT, kernels=kern)
        for _ in range(rt.policy()["confirm_after"]):
            rt.infer(PROBE)
        assert rt.slots.state["trial"] is None

    # A cut before the confirmation is a reset on trial: either v2 confirmed or v1 back.
    total += sweep("confirm", promoted, confirm,
                   lambda: check_board((first, second), (first,)), points)
    run_op(promoted, confirm, 0, 0)
    confirmed = snapshot()

    def rollback():
        Runtime(ROOT, kernels=kern).rollback()

    total += sweep("rollback", confirmed, rollback,
                   lambda: check_board((first, second), (first,)), points)

    def reject():
        Runtime(ROOT, kernels=kern).reject()

    total += sweep("reject", shadowed, reject, lambda: check_board((first,)), points)

    third = CONFIG.get("third")
    if third:
        def supersede():
            # A newer candidate replaces the one being shadow-tested.
            put(ROOT + "/inbox/" + CONFIG["inbox_name"][third], CAPSULES[third][0])
            Runtime(ROOT, kernels=kern)

        total += sweep("supersede", shadowed, supersede,
                       lambda: check_board((first,)), points)

    if CONFIG.get("delta"):
        def delta():
            # v2 arriving as a delta against v1 and rebuilt on the board.
            put(ROOT + "/inbox/v2.delta", host_bytes(CONFIG["delta"]))
            rt = Runtime(ROOT, kernels=kern)
            assert label_of(rt.slots.state["candidate"]) == second

        total += sweep("delta", installed, delta, lambda: check_board((first,)), points)

    def refuse():
        # A damaged file in the inbox is refused and moved aside; the active keeps serving.
        data = bytearray(CAPSULES[second][0])
        data[len(data) // 2] ^= 0x40
        put(ROOT + "/inbox/damaged.cap", data)
        rt = Runtime(ROOT, kernels=kern)
        assert rt.slots.state["rejected"][-1]["file"] == "damaged.cap"

    total += sweep("refuse", confirmed, refuse, lambda: check_board((second,), (first,)),
                   points)
    print("TOTAL", total)


drive()
