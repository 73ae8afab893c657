# The disagreement log: a bounded ring of records on flash that survives resets. Record k
# of the ring is its own small file, written as <name>.new and renamed over the old one, so
# an append cut off by a reset leaves the previous record whole (LittleFS renames are atomic)
# and the log never grows past `records` files. Each record carries a CRC-32 against bit rot.
import os
import struct

from .capsule import crc32, hexlify
from .slots import listdir as _listdir
from .slots import makedirs as _makedirs
from .slots import remove as _remove

_MAGIC = b"MNVR"
# magic, seq, time, crc, len(active), len(candidate), len(input), class a, class c, digest
_HEAD = "<4sIIIHHHhh8s"
_HEAD_SIZE = struct.calcsize(_HEAD)
_CRC_FROM = 16
_MAX_RECORDS = 256


class RingLog:
    def __init__(self, folder, records):
        self.folder = folder
        self.records = min(max(records, 1), _MAX_RECORDS)
        _makedirs(folder)
        self.seq = 0
        # After a change of size, the newest records move to their slots in the new ring and
        # the rest go; otherwise nothing is written.
        kept = {}
        for seq, path in self._sequence():
            self.seq = seq
            kept[self._path((seq - 1) % self.records)] = path
        moving = [path for path in kept if kept[path] != path]
        for path in moving:  # in two steps, so no move lands on a record still to move
            os.rename(kept[path], path + ".mv")
        for path in moving:
            os.rename(path + ".mv", path)
        for name in _listdir(folder):
            if folder + "/" + name not in kept:
                _remove(folder + "/" + name)

    def _sequence(self):
        # (seq, path) of each record whose header and length hold, oldest first: headers only,
        # so starting never holds the whole log in RAM (its CRCs are checked when read).
        head = bytearray(_HEAD_SIZE)
        found = []
        for name in _listdir(self.folder):
            path = self.folder + "/" + name
            if name.endswith(".new"):
                _remove(path)
                continue
            try:
                with open(path, "rb") as f:
                    n = f.readinto(head)
                size = os.stat(path)[6]
            except OSError:
                continue
            if n != _HEAD_SIZE or head[:4] != _MAGIC:
                continue
            _, seq, _, _, na, nc, nx, _, _, _ = struct.unpack_from(_HEAD, head, 0)
            if size == _HEAD_SIZE + na + nc + nx:
                found.append((seq, path))
        found.sort()
        return found

    def _path(self, slot):
        return "%s/r%03d" % (self.folder, slot)

    def append(self, when, digest, active, candidate, inp, classes):
        # One record: the two raw outputs, the input (b"" when not kept), the two top-1
        # classes (-1 when not a classifier) and the input's digest.
        self.seq += 1
        body = struct.pack(_HEAD, _MAGIC, self.seq, when & 0xFFFFFFFF, 0, len(active),
                           len(candidate), len(inp), classes[0], classes[1],
                           bytes(digest[:8])) + bytes(active) + bytes(candidate) + bytes(inp)
        crc = crc32(memoryview(body)[_CRC_FROM:]) & 0xFFFFFFFF
        path = self._path((self.seq - 1) % self.records)
        with open(path + ".new", "wb") as f:
            f.write(body[:12])
            f.write(struct.pack("<I", crc))
            f.write(memoryview(body)[_CRC_FROM:])
        os.rename(path + ".new", path)
        return self.seq

    def read(self, paths=False):
        # The readable records, oldest first; a damaged record is skipped, never raised.
        out = []
        for name in _listdir(self.folder):
            if name.endswith(".new"):
                _remove(self.folder + "/" + name)
                continue
            try:
                with open(self.folder + "/" + name, "rb") as f:
                    data = f.read()
            except OSError:
                continue
            rec = _parse(data)
            if rec is not None:
                if paths:
                    rec["file"] = self.folder + "/" + name
                out.append(rec)
        out.sort(key=lambda r: r["seq"])
        return out

    def clear(self):
        for name in _listdir(self.folder):
            _remove(self.folder + "/" + name)
        self.seq = 0


def _parse(data):
    if len(data) < _HEAD_SIZE or data[:4] != _MAGIC:
        return None
    _, seq, when, crc, na, nc, nx, ka, kc, digest = struct.unpack_from(_HEAD, data, 0)
    if len(data) != _HEAD_SIZE + na + nc + nx:
        return None
    if crc32(memoryview(data)[_CRC_FROM:]) & 0xFFFFFFFF != crc:
        return None
    pos = _HEAD_SIZE
    return {"seq": seq, "time": when, "digest": hexlify(digest).decode(),
            "active": data[pos:pos + na], "candidate": data[pos + na:pos + na + nc],
            "input": data[pos + na + nc:], "classes": [ka, kc]}
