"""Write capsules (format v1, docs/capsule-format.md) and read them back for tools.

Reading goes through the device runtime's own parser (``minerva.capsule``, which also runs on
CPython), so the host and the board can never disagree about what a capsule says.
"""

import binascii
import hashlib
import io
import json
import struct
from pathlib import Path

from ..errors import PackagerError

MAGIC = b"MNVC"
FORMAT_VERSION = 1
# Capsules with a SIGNATURE section are v2: its bytes are left out of the SHA-256 it signs.
SIGNED_FORMAT_VERSION = 2
SIGNATURE_BYTES = 80
HEADER_SIZE = 32
SECTION_ENTRY_SIZE = 16
SECTION_ALIGN = 16
TENSOR_RECORD_SIZE = 36
ABSENT = 0xFFFF

SECTION_TYPES = {"META": 1, "GRAPH": 2, "WEIGHTS": 3, "SIGNATURE": 16, "SHADOW_POLICY": 17,
                 "TRAIN_SCHEDULE": 18, "RESIDENCY": 19, "TRAIN": 20}
REQUIRED_FLAG = 1

DTYPES = {"int8": (0, 1), "uint8": (1, 1), "int16": (2, 2), "int32": (3, 4), "float32": (4, 4)}
STORAGE = {"arena": 0, "weights": 1, "own": 2}

# name: (opcode, inputs, outputs, params); None: variable (the op record says how many).
OPS = {
    "CONV_2D": (1, 5, 1, 19),
    "DEPTHWISE_CONV_2D": (2, 5, 1, 20),
    "FULLY_CONNECTED": (3, 5, 1, 8),
    "AVERAGE_POOL_2D": (4, 1, 1, 14),
    "MAX_POOL_2D": (5, 1, 1, 14),
    "ADD": (6, 2, 1, 13),
    "RESHAPE": (7, 1, 1, 1),
    "SOFTMAX": (8, 1, 1, 5),
    "QUANTIZE": (9, 1, 1, 6),
    "DEQUANTIZE": (10, 1, 1, 3),
    "GATHER": (11, 2, 1, 6),
    "CONCATENATION": (12, None, 1, None),
    # math ops (device/minerva/graph_math.py): int8 unary ops as a 256-byte table, binary
    # element-wise ops with broadcasting, MEAN, and int16 -> int8 QUANTIZE.
    "LOOKUP": (20, 2, 1, 1),
    "BINARY": (21, 2, 1, 25),
    "MEAN": (22, 1, 1, 9),
    "QUANTIZE_INT16": (23, 1, 1, 5),
}


class CapsuleTensor:
    """A tensor as the packager builds it; ``offset`` is set when the capsule is laid out."""

    def __init__(self, name, dtype, shape, storage, data, zero_point, scale):
        self.name = name
        self.dtype = dtype
        self.shape = tuple(int(d) for d in shape)
        self.storage = storage
        self.data = data
        self.zero_point = int(zero_point)
        self.scale = float(scale)
        self.offset = 0

    @property
    def nbytes(self):
        n = DTYPES[self.dtype][1]
        for d in self.shape:
            n *= d
        return n


class CapsuleOp:
    def __init__(self, name, inputs, outputs, params):
        self.name = name
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.params = list(params)


def _pad16(buf):
    buf.extend(b"\0" * (-len(buf) % SECTION_ALIGN))


def layout_weights(tensors):
    """Give each weights tensor a 16-byte-aligned offset; return the WEIGHTS section bytes."""
    section = bytearray()
    for t in tensors:
        if t.storage == "weights":
            _pad16(section)
            t.offset = len(section)
            section.extend(t.data)
    return bytes(section)


def encode_graph(tensors, ops, inputs, outputs, arena_bytes):
    """The GRAPH section's bytes."""
    try:
        out = bytearray(struct.pack("<HHHHII", len(tensors), len(ops), len(inputs),
                                    len(outputs), arena_bytes, 0))
        out += struct.pack(f"<{len(inputs)}H{len(outputs)}H", *inputs, *outputs)
    except struct.error:
        raise PackagerError(f"{len(tensors)} tensors, {len(ops)} ops or an arena of "
                            f"{arena_bytes} bytes do not fit the capsule format",
                            "a model this large cannot run on a microcontroller")
    out.extend(b"\0" * (-len(out) % 4))
    for t in tensors:
        if len(t.shape) > 4:
            raise PackagerError(f"tensor {t.name!r} has rank {len(t.shape)}",
                                "capsules hold tensors of rank 4 at most")
        dims = list(t.shape) + [0] * (4 - len(t.shape))
        try:
            out += struct.pack("<BBBBIIif4I", DTYPES[t.dtype][0], len(t.shape),
                               STORAGE[t.storage], 0, t.offset, t.nbytes, t.zero_point, t.scale,
                               *dims)
        except (struct.error, OverflowError):
            raise PackagerError(f"tensor {t.name!r} (shape {list(t.shape)}, {t.nbytes} bytes) "
                                "does not fit the capsule format's 32-bit fields",
                                "a model this large cannot run on a microcontroller")
    for op in ops:
        code, _, _, _ = OPS[op.name]
        ins = [ABSENT if i is None else i for i in op.inputs]
        rec = bytearray(struct.pack("<BBBB", code, len(ins), len(op.outputs), len(op.params)))
        rec += struct.pack(f"<{len(ins)}H{len(op.outputs)}H", *ins, *op.outputs)
        rec.extend(b"\0" * (-len(rec) % 4))
        try:
            rec += struct.pack(f"<{len(op.params)}i", *op.params)
        except struct.error:
            raise PackagerError(f"op {op.name}: a parameter does not fit 32 bits "
                                f"({op.params})", "the model's sizes are out of range")
        out += rec
    return bytes(out)


def encode_capsule(sections, flags=0):
    """Assemble a capsule from ``[(type_name, bytes, required), ...]``; return its bytes."""
    count = len(sections)
    table_end = HEADER_SIZE + SECTION_ENTRY_SIZE * count
    body = bytearray(b"\0" * (-table_end % SECTION_ALIGN))
    entries = []
    unsigned = None
    for name, data, required in sections:
        offset = table_end + len(body)
        signature = name == "SIGNATURE"
        if signature:
            unsigned = (offset, len(data))
        entries.append(struct.pack("<HHIII", SECTION_TYPES[name], REQUIRED_FLAG if required
                                   else 0, offset, len(data),
                                   0 if signature else binascii.crc32(data)))
        body += data
        _pad16(body)
    file_size = table_end + len(body) + 32
    version = FORMAT_VERSION if unsigned is None else SIGNED_FORMAT_VERSION
    flags |= 0 if unsigned is None else 1
    header = MAGIC + struct.pack("<HHIHH16x", version, flags, file_size, count, HEADER_SIZE)
    content = header + b"".join(entries) + bytes(body)
    return content + content_sha256(content, unsigned)


def content_sha256(content, unsigned=None):
    """The SHA-256 a capsule ends with: of everything before it but a signature's own bytes
    (``unsigned``: their offset and length)."""
    if unsigned is None:
        return hashlib.sha256(content).digest()
    offset, length = unsigned
    return hashlib.sha256(content[:offset] + content[offset + length:]).digest()


def write_atomic(path, data):
    """Write ``data`` to ``path`` via a temporary file, so a failure never leaves half a file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise PackagerError(f"{path}: cannot write: {exc.strerror}", "check the output folder")


# -- reading -------------------------------------------------------------------------------

_DTYPE_NAMES = {code: name for name, (code, _) in DTYPES.items()}
_STORAGE_NAMES = {code: name for name, code in STORAGE.items()}
_OP_NAMES = {spec[0]: name for name, spec in OPS.items()}


class ReadTensor:
    def __init__(self, index, t):
        self.index = index
        self.dtype = _DTYPE_NAMES[t.dtype]
        self.shape = tuple(t.dims)
        self.storage = _STORAGE_NAMES[t.storage]
        self.offset = t.offset
        self.nbytes = t.nbytes
        self.zero_point = t.zero_point
        self.scale = t.scale


class ReadOp:
    def __init__(self, index, op):
        self.index = index
        self.code = op.code
        self.name = _OP_NAMES[op.code]
        self.inputs = [None if i == ABSENT else i for i in op.inputs]
        self.outputs = list(op.outputs)
        self.params = list(op.params)


class ReadCapsule:
    """A verified capsule: ``meta`` (dict), ``tensors``, ``ops``, ``inputs``, ``outputs``,
    ``arena_bytes``, ``weights`` (bytes), ``sections`` ({type name: (offset, length)}),
    ``sha256`` (hex), ``size``."""


class ChecksumFailed(PackagerError):
    """The capsule's structure reads, but a CRC-32 or the SHA-256 does not match."""


def read_capsule(source, name=None, verify=True):
    """Verify and parse a capsule from a path or from bytes; raise PackagerError if bad.

    With ``verify=False`` checksums are not checked (for showing what a damaged file holds).
    """
    from minerva import CapsuleChecksumError, CapsuleError
    from minerva.capsule import read_capsule_file, read_sections

    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
        name = name or "<capsule bytes>"
    else:
        name = name or str(source)
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise PackagerError(f"{name}: cannot read: {exc.strerror}", "check the path")
    try:
        f = io.BytesIO(data)
        sections = None if verify else read_sections(f, name, len(data))
        cap = read_capsule_file(f, name, len(data), sections)
    except CapsuleChecksumError as exc:
        raise ChecksumFailed(str(exc), "copy the file again or rebuild it with `minerva pack`")
    except CapsuleError as exc:
        raise PackagerError(str(exc), "rebuild it with `minerva pack`")
    result = ReadCapsule()
    result.meta = cap.meta
    result.tensors = [ReadTensor(i, t) for i, t in enumerate(cap.graph.tensors)]
    result.ops = [ReadOp(i, op) for i, op in enumerate(cap.graph.ops)]
    result.inputs = list(cap.graph.inputs)
    result.outputs = list(cap.graph.outputs)
    result.arena_bytes = cap.graph.arena_bytes
    names = {v: k for k, v in SECTION_TYPES.items()}
    result.sections = {names.get(t, f"type{t}"): (o, n) for t, (o, n, _) in cap.sections.items()}
    w_off, w_len = result.sections["WEIGHTS"]
    result.weights = data[w_off:w_off + w_len]
    result.sha256 = hashlib.sha256(data).hexdigest()
    result.size = len(data)
    result.raw = data
    result.train_schedule = None
    if "TRAIN_SCHEDULE" in result.sections:
        o, n = result.sections["TRAIN_SCHEDULE"]
        result.train_schedule = json.loads(data[o:o + n])
    return result
