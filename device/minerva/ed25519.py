# Ed25519 signature verification (RFC 8032, section 5.1.7). Only verification: the board never
# holds a private key. verify() runs it in the native module (natmod/kernels/ed25519.c) where
# that loads, else verify_py() in plain Python integers, which MicroPython has at any size;
# both give the same answer. The message Minerva signs is a capsule's 32-byte SHA-256, so the
# SHA-512 inside Ed25519 hashes 128 bytes at most (MicroPython's hashlib has no SHA-512 on
# most ports; this one is here).
import struct
import sys

_P = (1 << 255) - 19
_Q = (1 << 252) + 27742317777372353535851937790883648493
_MASK64 = 0xFFFFFFFFFFFFFFFF


def _inverse(x):
    return pow(x, _P - 2, _P)


_D = (-121665 * _inverse(121666)) % _P
_D2 = (2 * _D) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)
_BASE_Y = (4 * _inverse(5)) % _P

# SHA-512 round constants: the first 64 bits of the fractional parts of the cube roots of the
# first 80 primes (FIPS 180-4, 4.2.3), computed here rather than written out.


def _primes(count):
    found = []
    n = 2
    while len(found) < count:
        if all(n % p for p in found if p * p <= n):
            found.append(n)
        n += 1
    return found


def _root_bits(n, root):
    # floor(frac(n ** (1/root)) * 2**64), exactly, with integers.
    shift = 64 * root
    lo, hi = 0, 1 << (64 + 8)
    target = n << shift
    while lo < hi:  # the largest x with x**root <= n * 2**(64*root)
        mid = (lo + hi + 1) >> 1
        if mid ** root <= target:
            lo = mid
        else:
            hi = mid - 1
    return lo & _MASK64


_K = None
_H0 = None


def _constants():
    global _K, _H0
    if _K is None:
        primes = _primes(80)
        _K = [_root_bits(p, 3) for p in primes]
        _H0 = [_root_bits(p, 2) for p in primes[:8]]
    return _K, _H0


def _rotr(x, n):
    return ((x >> n) | (x << (64 - n))) & _MASK64


def sha512(data):
    k, h0 = _constants()
    h = list(h0)
    n = len(data)
    padded = bytes(data) + b"\x80" + bytes((111 - n) % 128) + struct.pack(">QQ", 0, n * 8)
    for start in range(0, len(padded), 128):
        w = list(struct.unpack(">16Q", padded[start:start + 128]))
        for i in range(16, 80):
            s0 = _rotr(w[i - 15], 1) ^ _rotr(w[i - 15], 8) ^ (w[i - 15] >> 7)
            s1 = _rotr(w[i - 2], 19) ^ _rotr(w[i - 2], 61) ^ (w[i - 2] >> 6)
            w.append((w[i - 16] + s0 + w[i - 7] + s1) & _MASK64)
        a, b, c, d, e, f, g, hh = h
        for i in range(80):
            s1 = _rotr(e, 14) ^ _rotr(e, 18) ^ _rotr(e, 41)
            t1 = (hh + s1 + ((e & f) ^ (~e & g)) + k[i] + w[i]) & _MASK64
            s0 = _rotr(a, 28) ^ _rotr(a, 34) ^ _rotr(a, 39)
            t2 = (s0 + ((a & b) ^ (a & c) ^ (b & c))) & _MASK64
            hh, g, f, e, d, c, b, a = g, f, e, (d + t1) & _MASK64, c, b, a, (t1 + t2) & _MASK64
        h = [(x + y) & _MASK64 for x, y in zip(h, (a, b, c, d, e, f, g, hh))]
    return struct.pack(">8Q", *h)


# Points in extended coordinates (X, Y, Z, T) with x = X/Z, y = Y/Z, x*y = T/Z, on the curve
# -x^2 + y^2 = 1 + d x^2 y^2.


def _add(p1, p2):
    x1, y1, z1, t1 = p1
    x2, y2, z2, t2 = p2
    a = (y1 - x1) * (y2 - x2) % _P
    b = (y1 + x1) * (y2 + x2) % _P
    c = t1 * _D2 * t2 % _P
    d = 2 * z1 * z2 % _P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _decode(s):
    # The point a 32-byte encoding names, or None when it names none.
    y = int.from_bytes(s, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    if y >= _P:
        return None
    u = (y * y - 1) % _P
    v = (_D * y * y + 1) % _P
    x = (u * _inverse(v)) % _P
    root = pow(x, (_P + 3) // 8, _P)
    if (root * root - x) % _P:
        root = root * _SQRT_M1 % _P
        if (root * root - x) % _P:
            return None
    if root == 0 and sign:
        return None
    if root & 1 != sign:
        root = _P - root
    return (root, y, 1, root * y % _P)


def _encode(point):
    x, y, z, _ = point
    zi = _inverse(z)
    x, y = x * zi % _P, y * zi % _P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


_BASE = None


def _base():
    global _BASE
    if _BASE is None:
        x = _decode(_BASE_Y.to_bytes(32, "little"))
        _BASE = x
    return _BASE


def _negate(point):
    x, y, z, t = point
    return ((_P - x) % _P, y, z, (_P - t) % _P)


_native = 0  # minerva_nat.ed25519_verify, or None where it does not load; 0: not looked up


def _native_verify():
    global _native
    if _native == 0:
        if sys.implementation.name != "micropython":
            _native = None  # CPython has no native module; CircuitPython cannot load one
        else:
            try:
                import minerva_nat

                _native = getattr(minerva_nat, "ed25519_verify", None)  # None: an older build
            except MemoryError:
                return None  # too little heap now; the module may load next time
            except (ImportError, SyntaxError, ValueError):
                _native = None  # not installed, or built for another architecture
    return _native


def verify(public_key, message, signature):
    # True when ``signature`` (64 bytes) is ``public_key``'s (32 bytes) on ``message``; in C
    # where the native module loads (milliseconds on a Pico), else in Python (1.6 s there).
    if len(public_key) != 32 or len(signature) != 64:
        return False
    native = _native_verify()
    if native is not None:
        return native(public_key, message, signature)
    return verify_py(public_key, message, signature)


def verify_py(public_key, message, signature):
    # verify() in Python integers: the spec the C is checked against.
    if len(public_key) != 32 or len(signature) != 64:
        return False
    a = _decode(public_key)
    r_bytes = bytes(signature[:32])
    if a is None or _decode(r_bytes) is None:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= _Q:
        return False
    k = int.from_bytes(sha512(r_bytes + bytes(public_key) + bytes(message)), "little") % _Q
    # [s]B - [k]A in one pass over the bits (Shamir's trick): 253 doublings, not 506.
    b = _base()
    minus_a = _negate(a)
    both = _add(b, minus_a)
    acc = (0, 1, 1, 0)
    for i in range(252, -1, -1):  # s and k are below q < 2**253
        acc = _add(acc, acc)
        sb, kb = (s >> i) & 1, (k >> i) & 1
        if sb and kb:
            acc = _add(acc, both)
        elif sb:
            acc = _add(acc, b)
        elif kb:
            acc = _add(acc, minus_a)
    return _encode(acc) == r_bytes
