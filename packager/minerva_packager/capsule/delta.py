"""Delta capsules: ship only what changed since a capsule the board holds.

The format and why it is built from COPY and INSERT operations are in device/minerva/delta.py
(the board's side). Here: :func:`make_delta` finds the new capsule's runs in the old one (every
16-byte-aligned 32-byte block of the old capsule is indexed, since sections and tensors sit on
16-byte boundaries; a match is then extended byte by byte both ways) and :func:`apply_delta`
is the host's mirror of the board's rebuild, used to check a delta before it ships.
"""

import binascii
import struct

from ..errors import PackagerError

MAGIC = b"MNVD"
_HEAD = "<4sHH32s32sIII"
_BLOCK = 32
_ALIGN = 16
_MIN_COPY = 24  # a COPY costs 9 bytes; shorter runs go inline


def make_delta(old, new):
    """The delta that rebuilds ``new`` from ``old`` (both whole capsules, as bytes)."""
    index = {}
    for pos in range(0, len(old) - _BLOCK + 1, _ALIGN):
        index.setdefault(old[pos:pos + _BLOCK], pos)
    ops = bytearray()
    pending = bytearray()

    def flush():
        if pending:
            ops.extend(struct.pack("<BI", 2, len(pending)) + pending)
            pending.clear()

    i = 0
    while i < len(new):
        j = index.get(new[i:i + _BLOCK]) if i + _BLOCK <= len(new) else None
        if j is None:
            pending.append(new[i])
            i += 1
            continue
        length = _BLOCK
        while i + length < len(new) and j + length < len(old) and \
                new[i + length] == old[j + length]:
            length += 1
        back = 0
        while pending and j - back > 0 and pending[-1] == old[j - back - 1]:
            pending.pop()
            back += 1
        if length + back < _MIN_COPY:
            pending.extend(new[i:i + length])
        else:
            flush()
            ops.extend(struct.pack("<BII", 1, j - back, length + back))
        i += length
    flush()
    header = struct.pack(_HEAD, MAGIC, 1, 0, old[-32:], new[-32:], len(new), len(ops),
                         binascii.crc32(ops))
    return header + bytes(ops)


def read_header(delta):
    if len(delta) < struct.calcsize(_HEAD) or delta[:4] != MAGIC:
        raise PackagerError("not a delta capsule", "make one with `minerva delta OLD NEW`")
    _, version, _, base, target, size, ops_len, crc = struct.unpack_from(_HEAD, delta)
    return {"version": version, "base": base, "target": target, "size": size,
            "ops": ops_len, "crc": crc}


def apply_delta(old, delta):
    """``new`` rebuilt from ``old``; raises PackagerError when the delta is not for ``old``."""
    head = read_header(delta)
    if head["base"] != old[-32:]:
        raise PackagerError(f"the delta is for base {head['base'].hex()[:16]}, not "
                            f"{old[-32:].hex()[:16]}", "make it against the board's capsule")
    pos = struct.calcsize(_HEAD)
    out = bytearray()
    while pos < len(delta):
        kind = delta[pos]
        if kind == 1:
            offset, length = struct.unpack_from("<II", delta, pos + 1)
            out += old[offset:offset + length]
            pos += 9
        else:
            length = struct.unpack_from("<I", delta, pos + 1)[0]
            out += delta[pos + 5:pos + 5 + length]
            pos += 5 + length
    if bytes(out[-32:]) != head["target"] or len(out) != head["size"]:
        raise PackagerError("the delta does not rebuild the capsule it announces",
                            "make it again")
    return bytes(out)


def delta_summary(old, new, delta):
    """Bytes shipped and what they are, for the CLI and the benchmark."""
    pos = struct.calcsize(_HEAD)
    copied = inserted = copies = 0
    while pos < len(delta):
        if delta[pos] == 1:
            copied += struct.unpack_from("<II", delta, pos + 1)[1]
            copies += 1
            pos += 9
        else:
            n = struct.unpack_from("<I", delta, pos + 1)[0]
            inserted += n
            pos += 5 + n
    return {"delta_bytes": len(delta), "capsule_bytes": len(new), "copied": copied,
            "inserted": inserted, "copies": copies}
