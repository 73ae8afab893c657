"""Edit a capsule's sections and op parameters, then reseal it (fresh CRC-32s and SHA-256), so
a test exercises the loader's structural checks rather than its checksums."""

import struct

from minerva_packager.capsule.container import SECTION_TYPES, encode_capsule

NAMES = {v: k for k, v in SECTION_TYPES.items()}


def split(data):
    """``[(section name, bytes, required)]`` of a capsule, in file order."""
    count = struct.unpack_from("<H", data, 12)[0]
    out = []
    for i in range(count):
        kind, flags, off, n, _ = struct.unpack_from("<HHIII", data, 32 + 16 * i)
        out.append((NAMES.get(kind, kind), bytes(data[off:off + n]), bool(flags & 1)))
    return out


def join(sections):
    return encode_capsule(sections)


def graph_ops(graph):
    """Each op of a GRAPH section: (code, index position, n_in, n_out, params position,
    n_params)."""
    n_tensors, n_ops, n_in, n_out = struct.unpack_from("<HHHH", graph, 0)
    pos = 16 + 2 * (n_in + n_out)
    pos += -pos % 4
    pos += 36 * n_tensors
    ops = []
    for _ in range(n_ops):
        code, ni, no, np_ = struct.unpack_from("<BBBB", graph, pos)
        idx = pos + 4
        pos = idx + 2 * (ni + no)
        pos += -pos % 4
        ops.append((code, idx, ni, no, pos, np_))
        pos += 4 * np_
    return ops


def with_graph(data, edit):
    """The capsule with ``edit(bytearray of GRAPH)`` applied, resealed."""
    sections = split(data)
    out = []
    for name, raw, required in sections:
        if name == "GRAPH":
            raw = bytearray(raw)
            edit(raw)
            raw = bytes(raw)
        out.append((name, raw, required))
    return join(out)


def with_param(data, code, k, value, nth=0):
    """The capsule with parameter ``k`` of the ``nth`` op of opcode ``code`` set to
    ``value``."""
    def edit(graph):
        ops = [op for op in graph_ops(graph) if op[0] == code]
        struct.pack_into("<i", graph, ops[nth][4] + 4 * k, value)
    return with_graph(data, edit)
