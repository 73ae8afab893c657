# A trainer's result as a new capsule version (docs/training.md): the masters re-quantized
# into the base capsule's WEIGHTS, the masters themselves into TRAIN, META with the next version
# and its provenance; written as <name>.new and renamed, so a reset leaves no half capsule.
# Export allocates (it runs once, after training); the base capsule is only read.
import json
import math
import os
import struct

from .capsule import (MAGIC, SECTION_GRAPH, SECTION_META, SECTION_SIGNATURE, SECTION_WEIGHTS,
                      crc32, hexlify, sha256, verified_sections)
from .errors import CapsuleError
from .graph import parse_graph
from .train_setup import SECTION_TRAIN, read_section, read_train

_CHUNK = 512


def quantize_multiplier(real):
    # TFLite's QuantizeMultiplier: real = m * 2**(shift - 31), m in [2**30, 2**31).
    if real <= 0:
        return 0, 0
    q, shift = math.frexp(real)
    fixed = int(math.floor(q * 2147483648.0 + 0.5))
    if fixed == 2147483648:
        fixed //= 2
        shift += 1
    return (0, 0) if shift < -31 else (fixed, shift)


def _round(x, lo, hi):
    v = int(math.floor(abs(x) + 0.5))
    v = -v if x < 0 else v
    return lo if v < lo else (hi if v > hi else v)


def requantize(trainer, g, op_index, layer):
    # [(WEIGHTS offset, bytes)] for one chain op: int8 weights, int32 bias, multipliers and
    # shifts. A channel keeps its scale unless its weights outgrew it (then max|w| / 127), so
    # unchanged masters give back the base bytes.
    op = g.ops[op_index]
    step = trainer.model._steps[op_index][2]
    mult, shift = step[3], step[4]
    w, b = layer[6], layer[7]
    out_c = len(b)
    per = len(w) // out_c
    s_in, s_out = g.tensors[op.inputs[0]].scale, g.tensors[op.outputs[0]].scale
    q, bias = bytearray(len(w)), bytearray(4 * out_c)
    mults, shifts = bytearray(4 * out_c), bytearray(4 * out_c)
    for c in range(out_c):
        m, sh = mult[c], shift[c]
        scale = m * math.pow(2.0, sh - 31) * s_out / s_in
        top = 0.0
        for k in range(c * per, (c + 1) * per):
            top = max(top, abs(w[k]))
        # float32 masters round: only growth past that rounding changes the channel's scale.
        if top / 127.0 > scale * 1.00001:
            scale = top / 127.0
            m, sh = quantize_multiplier(s_in * scale / s_out)
        for k in range(c * per, (c + 1) * per):
            q[k] = _round(w[k] / scale, -127, 127) & 255
        struct.pack_into("<i", bias, 4 * c, _round(b[c] / (s_in * scale), -2147483648,
                                                     2147483647))
        struct.pack_into("<i", mults, 4 * c, m)
        struct.pack_into("<i", shifts, 4 * c, sh)
    t = g.tensors
    return [(t[op.inputs[1]].offset, q), (t[op.inputs[2]].offset, bias),
            (t[op.inputs[3]].offset, mults), (t[op.inputs[4]].offset, shifts)]


def next_version(version, name):
    parts = (version or "").split("+")[0].split("-")[0].split(".")
    try:
        major, minor, patch = [int(p) for p in parts]
    except ValueError:
        raise CapsuleError("%s: version %r is not MAJOR.MINOR.PATCH; cannot number the "
                           "trained version" % (name, version))
    return "%d.%d.%d" % (major, minor, patch + 1)


def _emit(f, off, n, patches, buf, sink):
    # Bytes [off, off + n) of the base file, with patches (offset in the range, data) laid
    # over them, fed to sink() chunk by chunk.
    view = memoryview(buf)
    pos = 0
    while pos < n:
        k = min(len(buf), n - pos)
        f.seek(off + pos)
        if f.readinto(view[:k]) != k:
            raise CapsuleError("base capsule truncated while exporting")
        for at, data in patches:
            lo, hi = max(at, pos), min(at + len(data), pos + k)
            if lo < hi:
                view[lo - pos:hi - pos] = data[lo - at:hi - at]
        sink(view[:k])
        pos += k


class _Crc:
    def __init__(self):
        self.value = 0

    def __call__(self, data):
        self.value = crc32(data, self.value)


def export(trainer, folder):
    # Write the trained capsule into ``folder`` (a Runtime's inbox); returns its path.
    path = trainer.path
    with open(path, "rb") as f:
        size = os.stat(path)[6]
        sections = verified_sections(f, path, size)
        f.seek(size - 32)
        base_sha = hexlify(f.read(32)).decode()
        g = parse_graph(read_section(f, sections, SECTION_GRAPH, path, "GRAPH")[1], path,
                        sections[SECTION_WEIGHTS][1])
        header, data_at, _ = read_train(f, path, sections)
        meta = json.loads(read_section(f, sections, SECTION_META, path, "META")[1])
        patches = {SECTION_WEIGHTS: [], SECTION_TRAIN: [
            (data_at - sections[SECTION_TRAIN][0], bytes(trainer.params))]}
        for entry, layer in zip(header["layers"], trainer.layers):
            patches[SECTION_WEIGHTS] += requantize(trainer, g, entry["op"], layer)
        version = next_version(meta.get("version"), path)
        meta["version"] = version
        meta["trained"] = {"base_sha256": base_sha, "samples_seen": trainer.samples,
                           "epochs": trainer.epochs, "loss": trainer.loss,
                           "chain_ops": [e["op"] for e in header["layers"]]}
        meta_bytes = json.dumps(meta).encode()
        order = sorted((off, kind) for kind, (off, _, _) in sections.items()
                       if kind != SECTION_SIGNATURE)
        buf = bytearray(_CHUNK)
        table, offset = [], 32 + 16 * len(order)
        for _, kind in order:
            offset += -offset % 16
            n = len(meta_bytes) if kind == SECTION_META else sections[kind][1]
            crc = _Crc()
            if kind == SECTION_META:
                crc(meta_bytes)
            else:
                _emit(f, sections[kind][0], n, patches.get(kind, ()), buf, crc)
            table.append((kind, offset, n, crc.value & 0xFFFFFFFF))
            offset += n
        offset += -offset % 16
        target = "%s/%s-%s.cap" % (folder, meta.get("name", "model"), version)
        tmp = target + ".new"
        digest = sha256()
        with open(tmp, "wb") as out:
            def sink(data):
                digest.update(data)
                out.write(data)

            sink(MAGIC + struct.pack("<HHIHH16x", 1, 0, offset + 32, len(order), 32))
            f.seek(32)
            raw = f.read(16 * len(sections))
            flags = {}
            for k in range(len(sections)):
                kind, sflags = struct.unpack_from("<HH", raw, 16 * k)
                flags[kind] = sflags
            for kind, at, n, crc in table:
                sink(struct.pack("<HHIII", kind, flags[kind], at, n, crc))
            written = 32 + 16 * len(order)
            for kind, at, n, _ in table:
                sink(bytes(at - written))
                if kind == SECTION_META:
                    sink(meta_bytes)
                else:
                    _emit(f, sections[kind][0], n, patches.get(kind, ()), buf, sink)
                written = at + n
            sink(bytes(offset - written))
            out.write(digest.digest())
    try:
        os.remove(target)
    except OSError:
        pass
    os.rename(tmp, target)
    return target
