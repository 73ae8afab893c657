# Capsules kept whole in a raw flash region that the CPU reads in place (the RP2040 maps its
# flash at 0x10000000, XIP), so a loaded model's weights stay in flash as TFLite Micro's do and
# only the activation arena takes heap.
#
# The store is a cache of slot files, never the only copy: every capsule in it is also a file
# in <root>/slots/ on LittleFS, which the slot guarantees cover. <root>/flash.json (replaced as
# .new + rename) lists {slot name: [first block, bytes]}; an entry is dropped (and saved)
# before its blocks are erased and added only after the copy was read back equal, and the
# loader verifies every checksum of the bytes in place before use. A power cut during a copy
# therefore leaves, at worst, blocks that no entry names; the model being served reads other
# blocks (the runtime names the slots in use, which are never overwritten).
import json
import os

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

INDEX = "flash.json"
_BLOCK = const(4096)
_XIP_BASE = const(0x10000000)
# pico-sdk binary info (picotool reads the same): the header markers in the first 256 bytes
# after boot2, and the entry holding the address where the firmware's image ends.
_BI_START = const(0x7188EBF2)
_BI_END = const(0xE71AA390)
_BI_ID_AND_INT = const(5)
_BI_TAG_RP = const(0x5052)
_BI_BINARY_END = const(0x68F465DE)


class InPlace:
    # A capsule in the store, read like a file (load() verifies it through this); ``view``
    # is the memory the weights are used from.
    def __init__(self, name, view):
        self.name = name
        self.view = view
        self.size = len(view)
        self._pos = 0

    def seek(self, pos, whence=0):
        self._pos = pos + (self._pos if whence == 1 else self.size if whence == 2 else 0)
        return self._pos

    def read(self, n=-1):
        end = self.size if n < 0 else min(self.size, self._pos + n)
        data = bytes(self.view[self._pos:end])
        self._pos = end
        return data

    def readinto(self, buf):
        n = min(len(buf), self.size - self._pos)
        buf[:n] = self.view[self._pos:self._pos + n]
        self._pos += n
        return n

    def close(self):
        pass


class FlashStore:
    # ``device.writeblocks(block, buf)`` erases and programs one 4096-byte block of the region;
    # ``view`` is the region as memory. ``origin`` identifies where the region lies, so an index
    # written for another layout (a firmware that grew) is discarded rather than trusted.
    def __init__(self, root, device, view, origin):
        self.index_path = root.rstrip("/") + "/" + INDEX
        self.device = device
        self.view = memoryview(view)
        self.blocks = len(view) // _BLOCK
        self.origin = origin
        self.entries = {}
        try:
            with open(self.index_path) as f:
                saved = json.loads(f.read())
            if saved["origin"] == origin and saved["blocks"] == self.blocks:
                self.entries = saved["entries"]
        except (OSError, ValueError, KeyError, TypeError):
            pass

    def _save(self):
        with open(self.index_path + ".new", "w") as f:
            json.dump({"origin": self.origin, "blocks": self.blocks, "entries": self.entries}, f)
        os.rename(self.index_path + ".new", self.index_path)

    def capacity(self):
        return self.blocks * _BLOCK

    def find(self, name):
        # The capsule's bytes in place, or None when the store does not hold it.
        entry = self.entries.get(name)
        if entry is None:
            return None
        start = entry[0] * _BLOCK
        return InPlace(name, self.view[start:start + entry[1]])

    def _free_run(self, count, keep):
        # First block of ``count`` free blocks, evicting entries not in ``keep`` if needed.
        while True:
            used = sorted((e[0], e[0] + (e[1] + _BLOCK - 1) // _BLOCK)
                          for e in self.entries.values())
            at = 0
            for lo, hi in used + [(self.blocks, self.blocks)]:
                if lo - at >= count:
                    return at
                at = max(at, hi)
            spare = [n for n in self.entries if n not in keep]
            if not spare:
                return -1
            del self.entries[spare[0]]

    def put(self, name, path, keep=()):
        # Copies the file at ``path`` into the store as ``name`` unless it is there already;
        # returns its InPlace, or None when it does not fit beside the capsules in ``keep``.
        held = self.find(name)
        size = os.stat(path)[6]
        if held is not None and held.size == size and size >= 32:
            # The same capsule if it ends with the same SHA-256 (load() verifies the rest).
            with open(path, "rb") as f:
                f.seek(size - 32)
                if f.read(32) == bytes(held.view[size - 32:]):
                    return held
        count = (size + _BLOCK - 1) // _BLOCK
        if count > self.blocks:
            return None
        before = dict(self.entries)
        self.entries.pop(name, None)
        first = self._free_run(count, keep)
        if first < 0:
            self.entries = before
            return None
        if self.entries != before:
            self._save()  # the entries whose blocks are about to be erased are gone first
        buf = bytearray(_BLOCK)
        with open(path, "rb") as f:
            for k in range(count):
                n = f.readinto(buf)
                for i in range(n, _BLOCK):
                    buf[i] = 0xFF
                self.device.writeblocks(first + k, buf)
                if bytes(self.view[(first + k) * _BLOCK:(first + k + 1) * _BLOCK]) != buf:
                    raise OSError("flash store: block %d did not read back as written"
                                  % (first + k))
        self.entries[name] = [first, size]
        self._save()
        return self.find(name)

    def prune(self, names):
        # Forgets every capsule but ``names`` (their blocks are reused by later copies).
        gone = [n for n in self.entries if n not in names]
        for n in gone:
            del self.entries[n]
        if gone:
            self._save()


class _Rp2Region:
    # Blocks counted from the region's start, written through rp2.Flash(), whose block numbers
    # count from the filesystem's start: the region lies just below it (where a ROMFS build
    # keeps its ROMFS), so its blocks are the negative ones. MicroPython v1.28's rp2.Flash
    # accepts them (README, "weights in place"); its erase and program run with interrupts
    # off and XIP restored, as for the filesystem.
    def __init__(self, flash, first):
        self.flash = flash
        self.first = first

    def writeblocks(self, block, buf):
        self.flash.writeblocks(self.first + block, buf)


def _binary_end(mem):
    # The flash address where the running firmware's image ends, from its binary info, or 0.
    import struct

    head = bytes(mem(_XIP_BASE + 0x100, 256))
    for at in range(0, 256 - 20, 4):
        start_marker, start, end, _, end_marker = struct.unpack_from("<5I", head, at)
        if start_marker == _BI_START and end_marker == _BI_END:
            break
    else:
        return 0
    if not _XIP_BASE <= start < end < _XIP_BASE + 0x1000000:
        return 0
    for ptr in struct.unpack("<%dI" % ((end - start) // 4), bytes(mem(start, end - start))):
        if not _XIP_BASE <= ptr < _XIP_BASE + 0x1000000:
            continue  # an entry kept in RAM: not the one sought
        kind, tag, ident, value = struct.unpack("<HHII", bytes(mem(ptr, 12)))
        if kind == _BI_ID_AND_INT and tag == _BI_TAG_RP and ident == _BI_BINARY_END:
            return value
    return 0


def platform_store(root):
    # The store this board offers, or None: on an RP2040, the flash between the firmware's end
    # and the filesystem. Other ports keep their capsules on the filesystem only.
    import sys

    if sys.platform != "rp2":
        return None
    import rp2
    import uctypes

    fs_base = uctypes.addressof(rp2.Flash())
    end = _binary_end(uctypes.bytearray_at)
    if not end:
        return None
    lo = (end + _BLOCK - 1) // _BLOCK * _BLOCK
    hi = fs_base
    try:
        # A firmware built with ROMFS keeps it just below the filesystem: the store ends there.
        import vfs

        if vfs.rom_ioctl(1) > 0:
            hi = min(hi, uctypes.addressof(vfs.rom_ioctl(2, 0)))
    except (ImportError, AttributeError, OSError, TypeError, ValueError):
        pass
    blocks = (hi - lo) // _BLOCK
    if blocks < 1:
        return None
    return FlashStore(root, _Rp2Region(rp2.Flash(), (lo - fs_base) // _BLOCK),
                      memoryview(uctypes.bytearray_at(lo, blocks * _BLOCK)), lo - _XIP_BASE)
