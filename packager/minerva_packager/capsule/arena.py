"""Arena planning: tensor lifetimes -> offsets in one arena, computed on the host.

A planner takes buffers (size, first step, last step) and returns an offset for each so that
buffers alive at the same step never overlap. The device only applies the offsets.
"""

ALIGNMENT = 16


def _align(n):
    return (n + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


class Buffer:
    """A tensor that needs arena space from step ``first`` to step ``last`` inclusive."""

    def __init__(self, size, first, last):
        self.size = size
        self.first = first
        self.last = last

    def overlaps_in_time(self, other):
        return self.first <= other.last and other.first <= self.last


class Planner:
    """The interface: ``plan(buffers) -> list of offsets`` (one per buffer, same order)."""

    name = "?"

    def plan(self, buffers):
        raise NotImplementedError

    @staticmethod
    def arena_bytes(buffers, offsets):
        return max((o + b.size for b, o in zip(buffers, offsets)), default=0)


class LinearPlanner(Planner):
    """Every buffer gets its own space: the baseline, and a fallback that cannot be wrong."""

    name = "linear"

    def plan(self, buffers):
        offsets, end = [], 0
        for b in buffers:
            offsets.append(end)
            end = _align(end + b.size)
        return offsets


class GreedyPlanner(Planner):
    """Largest buffer first, each at the lowest offset free during its lifetime (as TFLite
    Micro's GreedyMemoryPlanner)."""

    name = "greedy"

    def plan(self, buffers):
        order = sorted(range(len(buffers)), key=lambda i: (-buffers[i].size, buffers[i].first))
        offsets = [None] * len(buffers)
        placed = []
        for i in order:
            b = buffers[i]
            live = sorted((offsets[j], buffers[j].size) for j in placed
                          if buffers[j].overlaps_in_time(b))
            candidate = 0
            for start, size in live:
                if candidate + b.size <= start:
                    break
                candidate = max(candidate, _align(start + size))
            offsets[i] = candidate
            placed.append(i)
        return offsets


PLANNERS = {p.name: p for p in (GreedyPlanner(), LinearPlanner())}


def check_plan(buffers, offsets):
    """Raise AssertionError if two buffers alive at the same step overlap in memory."""
    for i, a in enumerate(buffers):
        for j in range(i + 1, len(buffers)):
            b = buffers[j]
            if a.overlaps_in_time(b) and a.size and b.size:
                oa, ob = offsets[i], offsets[j]
                assert oa + a.size <= ob or ob + b.size <= oa, (i, j)
