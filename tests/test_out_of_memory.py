"""Out of memory at load, on MicroPython's real heap: every failure is a CapsuleError
(OutOfMemoryError) that says what was needed, what was free, the largest free block (and
whether the heap is fragmented), and a fix that applies -- never a bare MemoryError."""

from pathlib import Path

import pytest

from minerva_packager.capsule.pack import pack_file

NATMOD = Path(__file__).resolve().parents[1] / "dist" / "x64_6.3"

# Leaves about ``keep`` bytes free in blocks of ``block`` bytes (fragmented when ``holes``:
# every other block is kept, so no large block is left).
_SCRIPT = """
import gc, minerva
from minerva import kernels_py, kernels_viper
gc.collect()
hog = []
try:
    while True:
        hog.append(bytearray({block}))
except MemoryError:
    pass
hog.pop()  # room for the next few lines (popping allocates nothing)
if {holes}:
    for i in range(0, len(hog), 2):
        hog[i] = None
else:
    for i in range({keep} // {block}):
        hog.pop()
gc.collect()
result = None
try:
    minerva.load({path!r}, kernels={tier!r}, paged={paged})
except Exception as e:  # no allocation here: the heap is full
    result = e
hog = None  # the report needs heap to print
gc.collect()
if result is None:
    print("LOADED")
elif isinstance(result, minerva.OutOfMemoryError):
    print("OOM", result)
elif isinstance(result, minerva.CapsuleError):
    print("CAPSULE", result)
else:
    print("BARE", type(result).__name__, result)
"""


@pytest.fixture(scope="module")
def ic(shared_models, tmp_path_factory):
    cap = tmp_path_factory.mktemp("oom") / "ic.cap"
    pack_file(shared_models / "ic01_resnet8_int8.tflite", cap)
    return str(cap)


def _load(micropython, path, block=256, keep=0, holes=False, tier="python", paged=None):
    out = micropython.run(_SCRIPT.format(path=path, block=block, keep=keep, holes=holes,
                                         tier=tier, paged=paged), heapsize="400K",
                          extra_path=[NATMOD]).stdout.strip()
    return out.splitlines()[-1]


@pytest.mark.parametrize("keep", [0, 512, 1024, 2048, 4096])
def test_almost_no_heap_is_an_out_of_memory_error(ic, micropython, keep):
    line = _load(micropython, ic, keep=keep)
    assert line.startswith("OOM "), line
    if "or even to say how much" in line:
        # Too little heap to format a report: the error made at import says so.
        assert keep <= 2048, line
    else:
        assert "bytes free, largest free block" in line and "ic.cap" in line, line


def test_fragmented_heap_is_named(ic, micropython):
    line = _load(micropython, ic, block=4096, holes=True)
    assert line.startswith("OOM "), line
    assert "the model needs 140" in line or "needs" in line
    assert "fragmented" in line, line
    assert "paged=True" in line  # IC's filters are not paged yet, so paging applies


def test_paged_load_that_fails_does_not_advise_paging(ic, micropython):
    line = _load(micropython, ic, block=256, keep=60_000, paged=True)
    assert line.startswith("OOM "), line
    assert "paged=True" not in line and "already paged" in line, line


@pytest.mark.parametrize("keep", [50_000, 60_000, 70_000, 80_000])
def test_room_for_the_arena_but_not_the_parse_still_names_the_need(ic, micropython, keep):
    # With about one arena's worth free the loader takes the arena, then the parse runs out;
    # the error must still be about the model (what it needs), not about loading the runtime.
    line = _load(micropython, ic, block=256, keep=keep, paged=True)
    assert line.startswith("OOM ") and "the model needs 90168 bytes" in line, line


def test_forced_tier_that_cannot_import_says_out_of_memory(ic, micropython):
    # Fill the heap before importing the natmod-less viper module... it is imported in the
    # script's prelude, so use a tier not yet imported: natmod needs heap to load its .mpy.
    line = _load(micropython, ic, keep=0, tier="natmod")
    assert line.startswith("OOM "), line
