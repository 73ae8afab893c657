# Delta capsules: a new capsule rebuilt on the board from one it already holds (the base),
# by a list of COPY (a range of the base) and INSERT (bytes carried in the delta) operations,
# in output order. Why this encoding: the board streams it front to back with one 512-byte
# buffer, reads the base by seeks on flash, and writes the new file once, so RAM stays
# bounded whatever the sizes; capsules keep sections 16-byte aligned, so a retrained layer
# or new metadata changes whole aligned runs and the rest is a few COPYs. A compressor would
# need a window in RAM and would shrink int8 weights little.
#
#   header (84 bytes): b"MNVD", version u16, flags u16, base SHA-256 (32), target SHA-256
#   (32, the capsule's last 32 bytes), target size u32, ops length u32, CRC-32 of the ops u32
#   ops: 1, offset u32, length u32 (COPY) | 2, length u32, bytes (INSERT)
#
# The result is checked like any capsule afterwards (checksums, signature), so a delta can at
# worst produce a file that is refused; here every offset and length is bounded first.
import os
import struct

from .capsule import crc32, hexlify
from .errors import CapsuleError

MAGIC = b"MNVD"
_HEAD = "<4sHH32s32sIII"
HEAD_SIZE = struct.calcsize(_HEAD)
_COPY = 1
_INSERT = 2
_CHUNK = 512


def read_header(f, name):
    head = f.read(HEAD_SIZE)
    if head is None or len(head) != HEAD_SIZE or head[:4] != MAGIC:
        raise CapsuleError("%s: not a delta capsule" % name)
    _, version, _, base, target, size, ops_len, crc = struct.unpack(_HEAD, head)
    if version != 1:
        raise CapsuleError("%s: delta format v%d is not one this runtime reads (v1)"
                           % (name, version))
    if size < 96:
        raise CapsuleError("%s: announces a %d-byte capsule, too small to be one" % (name, size))
    return {"base": hexlify(base).decode(), "target": target, "size": size,
            "ops": ops_len, "crc": crc}


def rebuild(delta_path, base_path, out_path, limit):
    # Writes the capsule ``delta_path`` describes to ``out_path`` from ``base_path``; at most
    # ``limit`` bytes. Raises CapsuleError naming the delta when anything does not add up.
    name = delta_path
    buf = bytearray(_CHUNK)
    view = memoryview(buf)
    with open(delta_path, "rb") as d:
        head = read_header(d, name)
        if head["size"] > limit:
            raise CapsuleError("%s: rebuilds a %d-byte capsule, more than the %d bytes free"
                               % (name, head["size"], limit))
        total = os.stat(delta_path)[6]
        if HEAD_SIZE + head["ops"] != total:
            raise CapsuleError("%s: truncated (%d of %d bytes)"
                               % (name, total, HEAD_SIZE + head["ops"]))
        crc = 0
        while True:  # the ops' CRC first: a damaged delta writes nothing
            n = d.readinto(buf)
            if not n:
                break
            crc = crc32(view[:n], crc)
        if crc & 0xFFFFFFFF != head["crc"]:
            raise CapsuleError("%s: CRC-32 mismatch: the delta is damaged" % name)
        d.seek(HEAD_SIZE)
        base_size = os.stat(base_path)[6]
        written = 0
        with open(base_path, "rb") as base, open(out_path, "wb") as out:
            left = head["ops"]
            while left:
                kind = d.read(1)
                if kind == bytes((_COPY,)) and left >= 9:
                    offset, length = struct.unpack("<II", d.read(8))
                    left -= 9
                    if offset + length > base_size:
                        raise CapsuleError("%s: copies bytes %d..%d of a %d-byte base"
                                           % (name, offset, offset + length, base_size))
                    src = base
                    base.seek(offset)
                elif kind == bytes((_INSERT,)) and left >= 5:
                    length = struct.unpack("<I", d.read(4))[0]
                    left -= 5
                    if length > left:
                        raise CapsuleError("%s: an insert runs past the end" % name)
                    left -= length
                    src = d
                else:
                    raise CapsuleError("%s: bad operation %r" % (name, kind))
                if written + length > head["size"]:
                    raise CapsuleError("%s: writes past the %d bytes it announced"
                                       % (name, head["size"]))
                while length:
                    n = src.readinto(view[:min(length, _CHUNK)])
                    if not n:
                        raise CapsuleError("%s: ran out of bytes to copy" % name)
                    out.write(view[:n])
                    length -= n
                    written += n
        if written != head["size"]:
            raise CapsuleError("%s: rebuilt %d bytes, announced %d" % (name, written,
                                                                       head["size"]))
    with open(out_path, "rb") as out:
        out.seek(written - 32)
        if out.read(32) != head["target"]:
            raise CapsuleError("%s: the rebuilt capsule is not the one announced" % name)
    return head
