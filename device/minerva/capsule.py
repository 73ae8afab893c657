# Capsule container (docs/capsule-format.md): header, section table, checksums, META.
# No arithmetic here: this layer decides what runs, never how.
import struct
import sys

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x


from .errors import CapsuleChecksumError, CapsuleError, CapsuleVersionError
from .graph import check_residency, parse_graph
from .schema import ANY_OBJECT, META, RESIDENCY, parse

# Integrity primitives for every module (kept here, not in a module of their own: each file in
# /lib/minerva costs the board heap). CircuitPython boards have hashlib only on Wi-Fi builds
# (and then only hashlib.new("sha256")), and binascii.crc32 only where both CIRCUITPY_BINASCII
# and CIRCUITPY_ZLIB are on: a Pico or an nRF board has neither. The pure-Python versions
# (digest_py.py) are imported only when the C ones are missing; they are slow (README,
# "CircuitPython"), so the runtime then verifies a capsule once, when it is staged.
# True on MicroPython and CircuitPython (same VM, same heap rules, same .mpy family), False on
# CPython. Code that asks "am I on a board-like interpreter?" asks this, never the name.
MICROPYTHON_FAMILY = sys.implementation.name in ("micropython", "circuitpython")
CIRCUITPYTHON = sys.implementation.name == "circuitpython"


# Chosen once at import, by plain top-level code: a board keeps only the names below, not
# the code that chose them (this module is imported on every board, and heap is tight there).
try:
    import hashlib
except ImportError:
    hashlib = None
NATIVE_SHA256 = hasattr(hashlib, "sha256") or hasattr(hashlib, "new")
if hasattr(hashlib, "sha256"):  # MicroPython, CPython, CircuitPython's unix port
    sha256 = hashlib.sha256
elif NATIVE_SHA256:  # CircuitPython boards with CIRCUITPY_HASHLIB: only hashlib.new()

    def sha256(data=None):
        h = hashlib.new("sha256")
        if data is not None:
            h.update(data)
        return h
else:
    from .digest_py import PySha256 as sha256  # noqa: F401 - this module's API

try:
    import binascii
except ImportError:
    binascii = None
NATIVE_CRC32 = hasattr(binascii, "crc32")
if NATIVE_CRC32:
    crc32 = binascii.crc32
else:
    from .digest_py import py_crc32 as crc32  # noqa: F401 - this module's API
if hasattr(binascii, "hexlify"):
    hexlify = binascii.hexlify
    unhexlify = binascii.unhexlify
else:  # lower-case hex as bytes, from bytes.hex()/fromhex()

    def hexlify(data):
        return bytes(data).hex().encode()

    def unhexlify(text):
        return bytes.fromhex(text.decode() if isinstance(text, (bytes, bytearray)) else text)

MAGIC = b"MNVC"
# v2: a SIGNATURE section may be present; its bytes are left out of the SHA-256 (which is
# what it signs) and its CRC field is 0. v1 readers refuse v2 as too new.
FORMAT_VERSION = const(2)
_HEADER_SIZE = const(32)
_ENTRY_SIZE = const(16)
_MAX_SECTIONS = const(64)
_SHA_SIZE = const(32)
_CHUNK = const(512)
_REQUIRED = const(1)

SECTION_META = const(1)
SECTION_GRAPH = const(2)
SECTION_WEIGHTS = const(3)
SECTION_SIGNATURE = const(16)
SECTION_SHADOW_POLICY = const(17)
SECTION_TRAIN_SCHEDULE = const(18)
SECTION_RESIDENCY = const(19)
_KNOWN_SECTIONS = (1, 2, 3, 16, 17, 18, 19)
_MAX_META = const(65536)
_MAX_GRAPH = const(1048576)


class Capsule:
    # A verified capsule: name, size, sections {type: (offset, length, crc)}, meta, graph.
    pass


def _read_exact(f, n, name, what):
    data = f.read(n)
    if data is None or len(data) != n:
        raise CapsuleError("%s: truncated while reading %s" % (name, what))
    return data


def read_sections(f, name, size):
    # Header and section table; every offset checked against the file's real size.
    if size < _HEADER_SIZE + _ENTRY_SIZE + _SHA_SIZE:
        raise CapsuleError("%s: %d bytes is too small to be a capsule" % (name, size))
    f.seek(0)
    head = _read_exact(f, _HEADER_SIZE, name, "the header")
    if head[0:4] != MAGIC:
        raise CapsuleError("%s: not a capsule (magic %r, expected %r)" % (name, head[0:4], MAGIC))
    version, flags, file_size, count, header_size = struct.unpack_from("<HHIHH", head, 4)
    if version > FORMAT_VERSION:
        raise CapsuleVersionError(
            "%s: capsule format v%d is newer than this runtime (reads v%d); update minerva "
            "on the board" % (name, version, FORMAT_VERSION))
    if version < 1:
        raise CapsuleError("%s: capsule format v%d is not valid" % (name, version))
    if file_size != size:
        raise CapsuleError("%s: header says %d bytes but the file has %d (truncated or "
                           "appended to)" % (name, file_size, size))
    if not 1 <= count <= _MAX_SECTIONS or header_size < _HEADER_SIZE:
        raise CapsuleError("%s: bad section count %d or header size %d"
                           % (name, count, header_size))
    table_end = header_size + _ENTRY_SIZE * count
    body_end = size - _SHA_SIZE
    if table_end > body_end:
        raise CapsuleError("%s: section table runs past the end of the file" % name)
    f.seek(header_size)
    table = _read_exact(f, _ENTRY_SIZE * count, name, "the section table")
    sections = {}
    spans = []
    for i in range(count):
        kind, sflags, offset, length, crc = struct.unpack_from("<HHIII", table, i * _ENTRY_SIZE)
        if offset % 16 or offset < table_end or offset + length > body_end:
            raise CapsuleError("%s: section %d (type %d) at %d+%d lies outside the file"
                               % (name, i, kind, offset, length))
        if kind in sections:
            raise CapsuleError("%s: section type %d appears twice" % (name, kind))
        if kind not in _KNOWN_SECTIONS and sflags & _REQUIRED:
            raise CapsuleError("%s: required section type %d is unknown to this runtime; "
                               "update minerva on the board" % (name, kind))
        spans.append((offset, offset + length))
        sections[kind] = (offset, length, crc)
    spans.sort()
    for i in range(1, len(spans)):
        if spans[i][0] < spans[i - 1][1]:
            raise CapsuleError("%s: sections overlap" % name)
    for kind in (SECTION_META, SECTION_GRAPH, SECTION_WEIGHTS):
        if kind not in sections:
            raise CapsuleError("%s: required section %d is missing" % (name, kind))
    return sections


def verify_checksums(f, name, size, sections):
    # One streaming pass: SHA-256 of the whole body and CRC-32 of each section, in chunks
    # so a capsule larger than the heap can still be checked.
    buf = bytearray(_CHUNK)
    view = memoryview(buf)
    sha = sha256()
    crcs = {}
    ranges = [(off, off + n, kind) for kind, (off, n, _) in sections.items()]
    unsigned = sections.get(SECTION_SIGNATURE, (0, 0, 0))
    body_end = size - _SHA_SIZE
    f.seek(0)
    pos = 0
    while pos < body_end:
        n = f.readinto(buf) if body_end - pos >= _CHUNK else f.readinto(view[:body_end - pos])
        if not n:
            raise CapsuleError("%s: truncated at byte %d" % (name, pos))
        chunk = view[:n]
        lo = unsigned[0] - pos
        hi = lo + unsigned[1]
        if hi <= 0 or lo >= n:
            sha.update(chunk)
        else:  # the signature's own bytes are not part of what it signs
            if lo > 0:
                sha.update(chunk[:lo])
            if hi < n:
                sha.update(chunk[hi:])
        for start, end, kind in ranges:
            lo = start if start > pos else pos
            hi = end if end < pos + n else pos + n
            if lo < hi:
                crcs[kind] = crc32(chunk[lo - pos:hi - pos], crcs.get(kind, 0))
        pos += n
    # Section CRCs first: they say where the damage is.
    for kind, (_, _, crc) in sections.items():
        if kind == SECTION_SIGNATURE:
            if crc:
                raise CapsuleError("%s: the SIGNATURE section's CRC field must be 0" % name)
            continue
        if crcs.get(kind, 0) & 0xFFFFFFFF != crc:
            raise CapsuleChecksumError("%s: CRC-32 mismatch in section type %d: the file is "
                                       "damaged" % (name, kind))
    expected = _read_exact(f, _SHA_SIZE, name, "the SHA-256")
    if sha.digest() != expected:
        raise CapsuleChecksumError("%s: SHA-256 mismatch: the file is damaged" % name)


def read_signature(f, name, sections):
    # (key id: 8 bytes, signature: 64 bytes) from the SIGNATURE section, or None if unsigned.
    if SECTION_SIGNATURE not in sections:
        return None
    off, n, _ = sections[SECTION_SIGNATURE]
    if n != 80:
        raise CapsuleError("%s: SIGNATURE section is %d bytes, not 80" % (name, n))
    f.seek(off)
    raw = _read_exact(f, n, name, "SIGNATURE")
    if raw[:4] != b"ED25":
        raise CapsuleError("%s: SIGNATURE uses scheme %r; this runtime verifies Ed25519"
                           % (name, raw[:4]))
    return raw[4:12], raw[12:76]


def verified_sections(f, name, size, recorded=None):
    # The section table, after every checksum has been checked. ``recorded`` is the SHA-256
    # noted when this file was verified in full as it was staged (signature included): a file
    # not ending with it is not that capsule and is refused. Where the digests are pure Python
    # (a CircuitPython board without hashlib or binascii.crc32: seconds per capsule on an
    # RP2040) a file ending with it is not hashed again at every boot; the section table and
    # the structure are still checked, and only bit rot after staging goes unseen there.
    sections = read_sections(f, name, size)
    if recorded is not None:
        f.seek(size - _SHA_SIZE)
        if _read_exact(f, _SHA_SIZE, name, "the SHA-256") != recorded:
            raise CapsuleChecksumError("%s: SHA-256 mismatch: not the capsule verified when "
                                       "it was staged" % name)
        if not (NATIVE_SHA256 and NATIVE_CRC32):
            return sections
    verify_checksums(f, name, size, sections)
    return sections


def arena_bytes_of(f, name, sections):
    # The arena size from the GRAPH header, so the caller can allocate the arena before
    # parsing scatters small objects over the heap. parse_graph() checks it again.
    off, n, _ = sections[SECTION_GRAPH]
    if n < 16:
        raise CapsuleError("%s: GRAPH section too short" % name)
    f.seek(off + 8)
    return struct.unpack("<I", _read_exact(f, 4, name, "GRAPH"))[0]


def read_capsule_file(f, name, size, sections=None):
    # Verify everything and parse META and GRAPH. Changes nothing outside the returned object.
    if sections is None:
        sections = verified_sections(f, name, size)
    meta_off, meta_len, _ = sections[SECTION_META]
    graph_off, graph_len, _ = sections[SECTION_GRAPH]
    if meta_len > _MAX_META or graph_len > _MAX_GRAPH:
        raise CapsuleError("%s: META (%d bytes) or GRAPH (%d bytes) is implausibly large"
                           % (name, meta_len, graph_len))
    f.seek(meta_off)
    meta = parse(_read_exact(f, meta_len, name, "META"), META, name, "META")
    # Not used on the device yet, but a capsule that carries them must carry them well formed.
    for kind, label in ((SECTION_SHADOW_POLICY, "SHADOW_POLICY"),
                        (SECTION_TRAIN_SCHEDULE, "TRAIN_SCHEDULE")):
        if kind in sections:
            off, n, _ = sections[kind]
            if n > _MAX_META:
                raise CapsuleError("%s: %s (%d bytes) is implausibly large" % (name, label, n))
            f.seek(off)
            parse(_read_exact(f, n, name, label), ANY_OBJECT, name, label)
    f.seek(graph_off)
    graph = parse_graph(_read_exact(f, graph_len, name, "GRAPH"), name,
                        sections[SECTION_WEIGHTS][1])
    cap = Capsule()
    paged = []
    if SECTION_RESIDENCY in sections:
        off, n, _ = sections[SECTION_RESIDENCY]
        if n > _MAX_META:
            raise CapsuleError("%s: RESIDENCY (%d bytes) is implausibly large" % (name, n))
        f.seek(off)
        paged = parse(_read_exact(f, n, name, "RESIDENCY"), RESIDENCY, name,
                      "RESIDENCY")["paged"]
    # {filter tensor: arena slot}: the host's plan of what is read from flash per run.
    cap.paged = check_residency(graph, paged, name)
    cap.name = name
    cap.size = size
    cap.sections = sections
    cap.meta = meta
    cap.graph = graph
    return cap
