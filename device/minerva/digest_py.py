# Pure-Python SHA-256 and CRC-32, for boards whose build has no hashlib or binascii.crc32
# (most CircuitPython boards). capsule.py imports this module only then, so a board with the C
# functions never spends heap on this code. Self-contained (deploy sends it to a board as a
# script to check hashes there).
import struct

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x


_MASK = const(0xFFFFFFFF)
_K = (
    0x428A2F98, 0x71374491, 0xB5C0FBCF, 0xE9B5DBA5, 0x3956C25B, 0x59F111F1, 0x923F82A4,
    0xAB1C5ED5, 0xD807AA98, 0x12835B01, 0x243185BE, 0x550C7DC3, 0x72BE5D74, 0x80DEB1FE,
    0x9BDC06A7, 0xC19BF174, 0xE49B69C1, 0xEFBE4786, 0x0FC19DC6, 0x240CA1CC, 0x2DE92C6F,
    0x4A7484AA, 0x5CB0A9DC, 0x76F988DA, 0x983E5152, 0xA831C66D, 0xB00327C8, 0xBF597FC7,
    0xC6E00BF3, 0xD5A79147, 0x06CA6351, 0x14292967, 0x27B70A85, 0x2E1B2138, 0x4D2C6DFC,
    0x53380D13, 0x650A7354, 0x766A0ABB, 0x81C2C92E, 0x92722C85, 0xA2BFE8A1, 0xA81A664B,
    0xC24B8B70, 0xC76C51A3, 0xD192E819, 0xD6990624, 0xF40E3585, 0x106AA070, 0x19A4C116,
    0x1E376C08, 0x2748774C, 0x34B0BCB5, 0x391C0CB3, 0x4ED8AA4A, 0x5B9CCA4F, 0x682E6FF3,
    0x748F82EE, 0x78A5636F, 0x84C87814, 0x8CC70208, 0x90BEFFFA, 0xA4506CEB, 0xBEF9A3F7,
    0xC67178F2)
_H0 = (0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB,
       0x5BE0CD19)


class PySha256:
    # FIPS 180-4 SHA-256 in plain Python: update()/digest() as hashlib's, nothing else.

    def __init__(self, data=None):
        self._h = list(_H0)
        self._w = [0] * 64
        self._block = bytearray(64)
        self._fill = 0
        self._length = 0
        if data is not None:
            self.update(data)

    def _compress(self, block):
        w = self._w
        for i in range(16):
            j = 4 * i
            w[i] = (block[j] << 24) | (block[j + 1] << 16) | (block[j + 2] << 8) | block[j + 3]
        for i in range(16, 64):
            x = w[i - 15]
            y = w[i - 2]
            s0 = ((x >> 7) | (x << 25)) ^ ((x >> 18) | (x << 14)) ^ (x >> 3)
            s1 = ((y >> 17) | (y << 15)) ^ ((y >> 19) | (y << 13)) ^ (y >> 10)
            w[i] = (w[i - 16] + s0 + w[i - 7] + s1) & _MASK
        h = self._h
        a, b, c, d, e, f, g, hh = h
        for i in range(64):
            s1 = ((e >> 6) | (e << 26)) ^ ((e >> 11) | (e << 21)) ^ ((e >> 25) | (e << 7))
            t1 = hh + (s1 & _MASK) + ((e & f) ^ (~e & g)) + _K[i] + w[i]
            s0 = ((a >> 2) | (a << 30)) ^ ((a >> 13) | (a << 19)) ^ ((a >> 22) | (a << 10))
            t2 = (s0 & _MASK) + ((a & b) ^ (a & c) ^ (b & c))
            hh = g
            g = f
            f = e
            e = (d + t1) & _MASK
            d = c
            c = b
            b = a
            a = (t1 + t2) & _MASK
        h[0] = (h[0] + a) & _MASK
        h[1] = (h[1] + b) & _MASK
        h[2] = (h[2] + c) & _MASK
        h[3] = (h[3] + d) & _MASK
        h[4] = (h[4] + e) & _MASK
        h[5] = (h[5] + f) & _MASK
        h[6] = (h[6] + g) & _MASK
        h[7] = (h[7] + hh) & _MASK

    def update(self, data):
        data = memoryview(data)
        n = len(data)
        self._length += n
        pos = 0
        block = self._block
        if self._fill:
            take = min(64 - self._fill, n)
            block[self._fill:self._fill + take] = data[:take]
            self._fill += take
            pos = take
            if self._fill < 64:
                return
            self._compress(block)
            self._fill = 0
        while n - pos >= 64:
            self._compress(data[pos:pos + 64])
            pos += 64
        if pos < n:
            block[:n - pos] = data[pos:]
            self._fill = n - pos

    def digest(self):
        # Pads a copy, so update() may continue after (as hashlib allows).
        tail = bytearray(self._block[:self._fill])
        tail.append(0x80)
        tail.extend(bytes((55 - self._fill) % 64))
        tail.extend(struct.pack(">Q", self._length * 8))
        saved = (list(self._h), self._fill, self._length, bytearray(self._block))
        for i in range(0, len(tail), 64):
            self._compress(tail[i:i + 64])
        out = struct.pack(">8I", *self._h)
        self._h, self._fill, self._length, self._block = saved
        return out


_crc_table = None


def py_crc32(data, crc=0):
    # Table-driven CRC-32 (the zlib/binascii polynomial), same contract as binascii.crc32.
    global _crc_table
    if _crc_table is None:
        table = [0] * 256
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
            table[i] = c
        _crc_table = table
    table = _crc_table
    crc = ~crc & _MASK
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return ~crc & _MASK
