# ruff: noqa: F821 - the names come from slot_power_cuts.py, which this is appended to
# Appended to tests/slot_power_cuts.py (its drive() left out) by tests/test_flashstore.py: power
# cuts at every write of a capsule's copy into the flash store (flashstore.py). The store's
# region is a RAM stand-in for the RP2040's raw flash whose block writes count in the same
# sequence as LittleFS's program/erase operations and lose power at the same operation k (a
# torn block: the sector erased and half the new bytes programmed). After each cut the board
# restarts from what both flashes hold and must serve the old model, in place, bit-exact.
from minerva.flashstore import FlashStore

STORE = [None]  # the raw region's bytes, as the flash holds them


class Halt(BaseException):
    # A power cut stops the CPU: nothing runs after it. (slot_power_cuts.py's PowerCut is an
    # OSError, which the runtime may catch and go on; here the runtime also copes with a
    # failing store write, so the cut must stop everything, as on a board. Going on over a
    # LittleFS whose operation was cut half-way crashed the unix port, SIGSEGV in lfs2.)
    pass


_HALT = [Halt()]
_powered_until_cut = RamFlash._powered


def _powered_or_halt(self, buf=None, pos=0):
    try:
        _powered_until_cut(self, buf, pos)
    except PowerCut:
        raise _HALT[0]


RamFlash._powered = _powered_or_halt


def run_cut(image, op, cut_at, tear):
    # run_op's twin for a cut that halts: files a previous cut left open are finalised first.
    gc.collect()
    FLASH[0] = mount(bytearray(image), cut_at, tear)
    reset()
    try:
        op()
    except Halt:
        pass
    return bool(FLASH[0].cut_at and FLASH[0].writes >= FLASH[0].cut_at)
RAW_WRITES = [0]  # block writes into the region in the last uncut run


class RawRegion:
    def writeblocks(self, block, buf):
        data = STORE[0]
        flash = FLASH[0]
        pos = block * BLOCK
        try:
            flash._powered()
        except Halt:
            if flash.tear and flash.writes == flash.cut_at:
                data[pos:pos + BLOCK] = b"\xff" * BLOCK
                data[pos:pos + BLOCK // 2] = buf[:BLOCK // 2]
            raise
        data[pos:pos + BLOCK] = buf
        if not flash.cut_at:
            RAW_WRITES[0] += 1


def store():
    return FlashStore(ROOT, RawRegion(), STORE[0], 0)


_Runtime = Runtime


def Runtime(root, kernels=None):  # noqa: N802 - check_board's constructor, with the store
    return _Runtime(root, kernels=kernels, store=store())


def check_store(allowed):
    reset()
    rt = Runtime(ROOT, kernels=CONFIG["kernels"])
    st = rt.slots.state
    active = label_of(st["active"])
    assert active in allowed, "active %r, allowed %r" % (active, allowed)
    assert rt.active.in_place, "the active model is not used in place"
    assert bytes(rt.infer(PROBE)) == CAPSULES[active][1]
    if rt.candidate is not None:
        assert rt.candidate.in_place
        assert bytes(rt.candidate.run(PROBE)) == CAPSULES[label_of(st["candidate"])][1]
    rt.close()


def store_sweep(name, image, raw, op, check):
    started = time.ticks_ms()
    STORE[0] = bytearray(raw)
    RAW_WRITES[0] = 0
    run_cut(image, op, 0, 0)
    total = FLASH[0].writes
    raw_writes = RAW_WRITES[0]
    for k in range(1, total + 1):
        for tear in (0, 1):
            _HALT[0] = Halt()  # its traceback starts afresh
            STORE[0] = bytearray(raw)
            assert run_cut(image, op, k, tear), "%s: write %d never came" % (name, k)
            FLASH[0] = mount(bytearray(FLASH[0].data))
            try:
                check()
            except Exception as exc:  # noqa: BLE001 - the repro line is the point
                print("FAIL %s cut_at=%d tear=%d: %r" % (name, k, tear, exc))
                raise
    STORE[0] = bytearray(raw)
    RAW_WRITES[0] = 0
    run_cut(image, op, 0, 0)
    assert RAW_WRITES[0] == raw_writes
    print("SWEEP %s writes=%d store_writes=%d cuts=%d entries=%d ms=%d" % (
        name, total, RAW_WRITES[0], 2 * total, len(store().entries),
        time.ticks_diff(time.ticks_ms(), started)))
    return FLASH[0].data, STORE[0]


def drive_store():
    expected_outputs()
    kern = CONFIG["kernels"]
    first, second = CONFIG["pair"]
    blank = bytearray(b"\xff" * (CONFIG["flash_blocks"] * BLOCK))
    vfs.VfsLfs2.mkfs(RamFlash(blank))
    FLASH[0] = mount(blank)
    os.mkdir(ROOT)
    os.mkdir(ROOT + "/inbox")
    put(ROOT + "/inbox/" + CONFIG["inbox_name"][first], CAPSULES[first][0])
    STORE[0] = bytearray(b"\xff" * (CONFIG["store_blocks"] * BLOCK))
    Runtime(ROOT, kernels=kern).close()  # v1 installed, copied into the store, in place
    put(ROOT + "/inbox/" + CONFIG["inbox_name"][second], CAPSULES[second][0])
    installed = snapshot()

    def stage():
        # v2 staged as the candidate and copied into the store beside v1, which serves.
        rt = Runtime(ROOT, kernels=kern)
        # (The uncut run leaves both in the store: the test checks entries=2.)
        rt.poll()
        rt.close()

    image, raw = store_sweep("stage+copy", installed, STORE[0], stage,
                             lambda: check_store((first,)))

    def promote():
        rt = Runtime(ROOT, kernels=kern)
        rt.promote(force=True)
        rt.infer(PROBE)
        rt.close()

    store_sweep("promote", bytearray(image), raw, promote,
                lambda: check_store((first, second)))
    print("TOTAL done")


drive_store()
