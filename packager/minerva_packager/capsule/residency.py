"""Which weights stay in RAM and which are paged from flash, planned on the host.

A board's heap may not hold every weight next to the arena. A paged filter gets a slot in the
arena, alive only while its op runs, and the device reads it from the capsule file into that
slot (``readinto``, no allocation) just before the op. RAM needed is then
``arena (activations + page slots) + resident weights``, in one arena allocation plus the
small resident tensors, which a fragmented board heap can still satisfy.
"""

import json

from ..errors import PackagerError

# Heap kept for the runtime and the parsed graph besides the model's buffers. Measured on the
# 64-bit unix port (the virtual board), where objects take twice a 32-bit board's bytes, with
# the runtime deployed as .mpy: `import minerva` 40.7 KB, the python tier 5.4 KB (imported
# before the model's buffers), parsing IC's graph 15.6 KB. With a 196,608-byte heap (RP2040)
# and this reserve, IC and AD packed with --board rp2040 load and run with 34.6 KB and 32.5 KB
# still free (KWS 91 KB). On the real firmware (MicroPython v1.28.0 RPI_PICO on the emulated
# Pico, tests/test_pico.py) with its measured 245,888-byte heap: `import minerva` leaves
# 209,800 B free, and KWS, IC and AD packed with --board rp2040 (budget 163,968) load and run
# leaving 139,920, 51,408 and 30,816 B free with the native module (IC 37,088, AD 16,384 with
# viper, whose modules are larger). Issue 11 replaces this constant with a measured memory model.
RUNTIME_RESERVE_BYTES = 80 * 1024


def board_budget(board):
    """Heap a model may use on ``board`` (a board profile dict)."""
    return int(board["heap_bytes"]) - RUNTIME_RESERVE_BYTES


def filters(ops):
    """Indices of the int8 filters of conv/fc ops: the tensors that can be paged."""
    return sorted({op.inputs[1] for op in ops
                   if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")})


def ram_needed(tensors, arena_bytes, paged):
    """RAM a model needs: the arena plus every weight that is not paged."""
    return arena_bytes + sum(t.nbytes for i, t in enumerate(tensors)
                             if t.storage != "arena" and i not in paged)


def plan_residency(tensors, budget_bytes, plan_arena, candidates):
    """Page the largest filters until the model fits ``budget_bytes``.

    ``plan_arena(paged)`` returns ``(arena bytes, {filter: slot offset})`` for a set of paged
    filters. Returns that pair for the chosen set (nothing paged when ``budget_bytes`` is
    None). Raises PackagerError when even paging every filter does not fit.
    """
    paged = []
    arena_bytes, slots = plan_arena(paged)
    if budget_bytes is None:
        return arena_bytes, slots
    remaining = sorted(candidates, key=lambda i: -tensors[i].nbytes)
    while ram_needed(tensors, arena_bytes, paged) > budget_bytes:
        if not remaining:
            raise PackagerError(
                f"the model needs {ram_needed(tensors, arena_bytes, paged)} bytes of RAM even "
                f"with every filter paged from flash; the budget is {budget_bytes}",
                "choose a board with more RAM or a smaller model")
        paged.append(remaining.pop(0))
        arena_bytes, slots = plan_arena(paged)
    return arena_bytes, slots


def residency_section(slots):
    """The RESIDENCY section's bytes (``{"paged": [[tensor, arena offset], ...]}``), or None
    when everything stays resident."""
    if not slots:
        return None
    return json.dumps({"paged": sorted([i, off] for i, off in slots.items())},
                      separators=(",", ":")).encode()
