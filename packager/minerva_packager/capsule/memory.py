"""One memory model for pack, plan, deploy and the board's loader: what a model takes of a
board's heap, and what the board has for it.

A board's heap holds, besides the user's application (``app_reserve``, stated, default
:data:`APP_RESERVE_BYTES`):

* the runtime: ``import minerva``, the kernel tier and the loader's modules, measured once per
  board (``memory.runtime_bytes`` in boards/*.json, from bench/memory_model.py);
* the model's buffers: the arena and every resident weight (``ram_bytes`` in a capsule's
  META, what the device's loader allocates first);
* the model's Python objects (the parsed graph, the op steps): ``fixed + per_op * ops +
  per_tensor * tensors``, fitted by bench/memory_model.py on the four shared models;
* while it loads, headroom for what loading holds for a moment (the modules of the kernel
  tier being imported, section reads, the parse's temporaries) and for the holes that leaves:
  ``load_fixed + load_per_op * ops``, from the smallest heap each shared model loads and runs
  in (bench/memory_model.py bisects it).

The figures are measured on the 64-bit MicroPython unix port that the virtual boards run, where
objects take twice a 32-bit board's bytes, so they bound the 32-bit boards from above (the
emulated Pico, the real RP2040 firmware, checks that in tests/test_pico.py).
"""

from ..errors import PackagerError

# Heap kept for the user's application unless they say otherwise (`--app-reserve`): room for
# a sensor driver, a few buffers and a network stack's objects beside the model.
APP_RESERVE_BYTES = 16 * 1024

_DEFAULTS = {"runtime_bytes": 71 * 1024, "model_fixed_bytes": 5120, "per_op_bytes": 448,
             "per_tensor_bytes": 16, "load_fixed_bytes": 12800, "load_per_op_bytes": 1664}


def figures(board):
    """The board's measured memory figures (boards/*.json ``memory``), defaults filled in."""
    return {**_DEFAULTS, **board.get("memory", {})}


def model_objects_bytes(board, n_ops, n_tensors):
    """Heap the loaded model's Python objects take beyond its buffers."""
    f = figures(board)
    return f["model_fixed_bytes"] + f["per_op_bytes"] * n_ops + f["per_tensor_bytes"] * n_tensors


def model_heap_bytes(board, ram_bytes, n_ops, n_tensors):
    """Heap a loaded model takes: its buffers (``ram_bytes``) and its objects."""
    return ram_bytes + model_objects_bytes(board, n_ops, n_tensors)


def load_headroom_bytes(board, n_ops):
    """Heap a model needs for a moment while it loads, beyond what it keeps."""
    f = figures(board)
    return f["load_fixed_bytes"] + f["load_per_op_bytes"] * n_ops


def load_peak_bytes(board, ram_bytes, n_ops, n_tensors):
    """Heap a model needs free to load: what it keeps and the load's headroom."""
    return model_heap_bytes(board, ram_bytes, n_ops, n_tensors) + load_headroom_bytes(board, n_ops)


def available_bytes(board, app_reserve=None):
    """Heap left for models (and training) on ``board`` once the runtime is imported and the
    application holds ``app_reserve`` bytes."""
    reserve = APP_RESERVE_BYTES if app_reserve is None else int(app_reserve)
    if reserve < 0:
        raise PackagerError(f"--app-reserve {reserve}: negative", "pass 0 or more bytes")
    left = int(board["heap_bytes"]) - figures(board)["runtime_bytes"] - reserve
    if left <= 0:
        raise PackagerError(
            f"{board['name']}: its heap ({board['heap_bytes']} bytes) holds the runtime "
            f"({figures(board)['runtime_bytes']}) and an application reserve of {reserve} "
            "with nothing left for a model", "pass a smaller --app-reserve")
    return left


def buffers_budget(board, n_ops, n_tensors, app_reserve=None):
    """What the model's buffers (arena + resident weights) may take: the packer's RAM budget."""
    return available_bytes(board, app_reserve) - load_peak_bytes(board, 0, n_ops, n_tensors)


def fit_report(board, meta, n_ops, n_tensors, app_reserve=None):
    """None when a capsule (its META, op and tensor counts) fits ``board`` with the reserve;
    otherwise one sentence saying by how much it does not."""
    need = load_peak_bytes(board, meta["ram_bytes"], n_ops, n_tensors)
    have = available_bytes(board, app_reserve)
    if need <= have:
        return None
    reserve = APP_RESERVE_BYTES if app_reserve is None else int(app_reserve)
    return (f"needs {need} bytes of heap to load on {board['name']} ({meta['ram_bytes']} of "
            f"buffers, {need - meta['ram_bytes']} of objects and load headroom) but {have} are "
            "left once the runtime "
            f"({figures(board)['runtime_bytes']}) and the application reserve ({reserve}) "
            f"are taken from its {board['heap_bytes']}")
