# minerva.load(): open and verify a capsule, take its buffers, build the Model; every failure
# a CapsuleError naming the file (OutOfMemoryError with what was needed and what was free).
import gc
import os

from .capsule import read_capsule_file, verified_sections
from .errors import CapsuleError, OutOfMemoryError
from .graph import ARENA
from .memory import collect, preallocate
from .model import Model, _paged_slots
from .tiers import select_kernels


def _free_heap():
    return gc.mem_free() if hasattr(gc, "mem_free") else -1


def heap_report():
    # "N bytes free, largest block M": the largest block is found by trying allocations
    # (MicroPython has no call for it), which is fine on an error path.
    free = _free_heap()
    if free < 0:
        return "free heap unknown"
    collect()
    lo, hi = 0, free
    while lo < hi:
        mid = (lo + hi + 1) // 2
        try:
            block = bytearray(mid)
            del block
            lo = mid
        except MemoryError:
            hi = mid - 1
    return "%d bytes free, largest free block %d%s" % (
        free, lo, " (the heap is fragmented)" if lo < free // 2 else "")


def _needed_bytes(g, paged):
    total = g.arena_bytes
    page = 0
    for i, t in enumerate(g.tensors):
        if i in paged:
            page = max(page, t.nbytes if paged[i] < 0 else 0)
        elif t.storage != ARENA:
            total += t.nbytes
    return total + page


# Raised when the heap cannot even hold the report of what did not fit; made at import so
# raising it allocates nothing.
_NO_HEAP = OutOfMemoryError("minerva: not enough RAM to load a capsule, or even to say how "
                            "much more it needs (the heap is all but full); free memory first")


# Where deploy puts capsules on a board; load() looks here for a bare file name.
CAPSULE_DIR = "/capsules"


def load(path, kernels=None, paged=None, arena=None, verified=None):
    # Verify and prepare the capsule at ``path`` (a bare name found in the current folder or
    # in CAPSULE_DIR). Raises CapsuleError (naming the file) and
    # changes nothing if anything is wrong; OutOfMemoryError (a CapsuleError) when the heap
    # cannot hold it. ``kernels`` forces a tier: "natmod", "viper", "python" (or "numpy" on
    # CPython); the default picks the fastest available. ``paged`` overrides the capsule's
    # residency plan: True pages every filter from flash, False keeps all weights in RAM.
    # ``arena`` (another model's ``.arena``) is shared when large enough: the two models must
    # then run one after the other, never interleaved. ``verified`` is the SHA-256 (32 bytes)
    # recorded when the file was verified in full (capsule.verified_sections says when it counts).
    try:
        return _load(path, kernels, paged, arena, verified)
    except MemoryError:
        raise _NO_HEAP


def _open(path):
    # A bare name is looked up in the current folder, then in CAPSULE_DIR, where
    # `minerva deploy` and `minerva image` put capsules. A capsule held in a flash store
    # (flashstore.InPlace) is read where it lies.
    if not isinstance(path, str):
        return path.name, path.size, path
    try:
        return path, os.stat(path)[6], open(path, "rb")
    except OSError as exc:
        first = exc
    if "/" not in path:
        where = CAPSULE_DIR + "/" + path
        try:
            return where, os.stat(where)[6], open(where, "rb")
        except OSError:
            raise CapsuleError("%s: cannot open (%s); looked in the current folder and in %s"
                               % (path, first, CAPSULE_DIR))
    raise CapsuleError("%s: cannot open (%s)" % (path, first))


def _load(path, kernels, paged, shared, verified):
    path, size, f = _open(path)
    model = cap = arena = ready = sections = None
    try:
        try:
            sections = verified_sections(f, path, size, verified)
            # The kernel tier's code first: importing it needs contiguous heap, which the
            # model's large buffers would otherwise have cut up.
            if not isinstance(kernels, tuple):  # (module, tier) already imported
                kernels = select_kernels(kernels, path)
            try:
                arena, ready = preallocate(f, sections, paged, shared,
                                           getattr(f, "view", None) is not None)
            except MemoryError:
                arena = ready = None
            cap = read_capsule_file(f, path, size, sections)
            model = Model(cap, f, kernels, paged, arena if arena is not None else shared, ready)
        except MemoryError:
            arena = ready = kernels = None
            if cap is None and sections is not None:
                # The buffers were taken and the parse ran out: without them it may fit, and
                # then the error can say what the model needs.
                gc.collect()
                try:
                    cap = read_capsule_file(f, path, size, sections)
                except MemoryError:
                    pass
            if cap is None:
                raise OutOfMemoryError(
                    "%s: not enough RAM to load the runtime and check the capsule (%s); "
                    "load models before the application allocates, or free memory first"
                    % (path, heap_report()))
            planned = _paged_slots(cap.graph, cap.paged, paged)
            need = _needed_bytes(cap.graph, planned)
            every = _paged_slots(cap.graph, cap.paged, True)
            fix = ("page weights from flash with minerva.load(path, paged=True) or repack "
                   "with --board" if len(every) > len(planned)
                   else "every filter is already paged: free memory first (load models "
                   "before the application allocates) or use a board with more RAM")
            raise OutOfMemoryError("%s: not enough RAM: the model needs %d bytes (arena %d), "
                                   "%s; %s" % (path, need, cap.graph.arena_bytes,
                                               heap_report(), fix))
        return model
    finally:
        if model is None or model._file is None:
            f.close()
