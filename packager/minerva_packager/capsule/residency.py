"""Which weights stay in RAM and which are paged from flash, planned on the host.

A board's heap may not hold every weight next to the arena. A paged filter gets a slot in the
arena, alive only while its op runs, and the device reads it from the capsule file into that
slot (``readinto``, no allocation) just before the op. RAM needed is then
``arena (activations + page slots) + resident weights``, in one arena allocation plus the
small resident tensors, which a fragmented board heap can still satisfy.
"""

import json

from ..errors import PackagerError


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
