# Big buffers first. On a board the heap fragments as soon as parsing scatters small objects
# over it, so the arena and every resident weight are allocated (largest first) from a pre-scan
# of the tensor table, before the full parse. parse_graph() validates the same bytes after.
import gc
import json
import struct
from array import array

from .capsule import (CIRCUITPYTHON, MICROPYTHON_FAMILY, SECTION_GRAPH, SECTION_RESIDENCY,
                      SECTION_WEIGHTS)

TYPECODES = ("b", "B", "h", "i", "f")
_SIZES = (1, 1, 2, 4, 4)
_WEIGHTS = 1
_OWN = 2


def collect():
    # Gathers the heap's free blocks before a large allocation on a board. CPython's heap does
    # not fragment that way, and a full collection there costs tens of milliseconds.
    if MICROPYTHON_FAMILY:
        gc.collect()


def new_buffer(dtype, nbytes):
    # One allocation of exactly nbytes, for a buffer whose contents are written before they
    # are read. On MicroPython, array(typecode, range(n)) sizes the array from len() and
    # stores truncated values, needing no temporary (array(typecode, bytes(n)) would need
    # both at once, which a fragmented board heap often cannot give). CPython has the RAM.
    if dtype > 4:
        raise ValueError("dtype")
    if CIRCUITPYTHON:
        # CircuitPython's array() range-checks each value (OverflowError past 127), but it
        # can repeat an array, sized once, which MicroPython's cannot.
        return array(TYPECODES[dtype], [0]) * (nbytes // _SIZES[dtype])
    if MICROPYTHON_FAMILY:
        return array(TYPECODES[dtype], range(nbytes // _SIZES[dtype]))
    return array(TYPECODES[dtype], bytes(nbytes))


def planned_pages(f, sections):
    # The RESIDENCY plan as read from the file; check_residency() validates it at parse.
    if SECTION_RESIDENCY not in sections:
        return {}
    off, n, _ = sections[SECTION_RESIDENCY]
    f.seek(off)
    try:
        return {e[0]: e[1] for e in json.loads(f.read(n))["paged"]}
    except (ValueError, KeyError, TypeError, IndexError, RuntimeError, AttributeError):
        return {}


def preallocate(f, sections, forced, shared=None, in_place=False):
    # Returns (arena, {tensor index: (dtype, nbytes, weights offset, filled buffer)}); the
    # loader uses an entry only if the parsed tensor agrees. Any inconsistency is left for the
    # parse to report; a MemoryError propagates to load(), which explains it. ``shared`` is
    # an arena another model already holds: used when large enough, instead of a new one.
    # ``in_place``: weights are used where the capsule lies, so none is read into the heap
    # (Model reads them after all if its kernels cannot use them in place).
    g_off, g_len, _ = sections[SECTION_GRAPH]
    w_off, w_len, _ = sections[SECTION_WEIGHTS]
    f.seek(g_off)
    head = f.read(16)
    n_tensors, _, n_in, n_out, arena_bytes = struct.unpack_from("<HHHHI", head, 0)
    pos = 16 + 2 * (n_in + n_out)
    pos += -pos % 4
    pages = planned_pages(f, sections)
    wanted = []
    # The furthest any activation or page slot reaches: an arena_bytes past it is refused by
    # the parse, so it is not worth allocating (a hostile capsule may claim 2 GB).
    reach = 0
    record = bytearray(12)
    for i in range(n_tensors):
        if pos + 36 * (i + 1) > g_len:
            break
        f.seek(g_off + pos + 36 * i)
        f.readinto(record)
        dtype, _, storage, _, offset, nbytes = struct.unpack_from("<BBBBII", record, 0)
        if storage == 0 and offset + nbytes > reach:
            reach = offset + nbytes
        if i in pages and isinstance(pages[i], int) and pages[i] + nbytes > reach:
            reach = pages[i] + nbytes
        # Unvalidated bytes: skip anything the parse would reject anyway.
        if dtype > 4 or not 0 < nbytes <= w_len + (1 << 20) or nbytes % _SIZES[dtype]:
            continue
        paged = (i in pages) if forced is None else (forced and dtype == 0)
        if (storage == _WEIGHTS and not paged and not in_place and offset + nbytes <= w_len) \
                or storage == _OWN:
            wanted.append((nbytes, i, dtype, storage, offset))
    if arena_bytes > reach:
        return None, None
    wanted.sort(reverse=True)
    collect()
    arena = shared if shared is not None and len(shared) >= arena_bytes else \
        new_buffer(0, arena_bytes)
    buffers = {}
    for nbytes, i, dtype, storage, offset in wanted:
        buf = new_buffer(dtype, nbytes)
        if storage == _WEIGHTS:
            f.seek(w_off + offset)
            f.readinto(buf)
        buffers[i] = (dtype, nbytes, offset, buf)
    return arena, buffers
