"""Signed capsules: Ed25519 keys, signing, and the public key a board trusts.

A capsule's last 32 bytes are the SHA-256 of everything before them but the SIGNATURE
section's own bytes, so signing never changes that hash: the signature is Ed25519 over those
32 bytes, kept in an 80-byte SIGNATURE section (b"ED25", the key id = the first 8 bytes of the
public key's SHA-256, the 64-byte signature, 4 zero bytes). The board verifies it with the
public key provisioned in /keys (device/minerva/staging.py).
"""

import hashlib
import os
import struct
from pathlib import Path

from ..errors import PackagerError
from .container import SECTION_TYPES, SIGNATURE_BYTES, encode_capsule

BOARD_KEYS_DIR = "/keys"
_SCHEME = b"ED25"


def _crypto():
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise PackagerError("signing needs the `cryptography` package",
                            "pip install cryptography")
    return serialization, ed25519


def new_key(path):
    """Write a new private key to ``path`` (PEM, mode 0600) and its public key beside it as
    ``<path>.pub``; return the public key file's path."""
    serialization, ed25519 = _crypto()
    path = Path(path)
    if path.exists():
        raise PackagerError(f"{path} exists", "choose another name; a key is never overwritten")
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    public = path.with_name(path.name + ".pub")
    public.write_text(public_text(public_key_bytes(key)))
    return public


def public_key_bytes(private_key):
    serialization, _ = _crypto()
    return private_key.public_key().public_bytes(serialization.Encoding.Raw,
                                                 serialization.PublicFormat.Raw)


def public_text(raw):
    """The public key file's text, as the board reads it: ``ed25519 <hex>``."""
    return f"ed25519 {raw.hex()}\n"


def key_id(public_raw):
    return hashlib.sha256(public_raw).digest()[:8]


def load_private_key(path):
    serialization, ed25519 = _crypto()
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise PackagerError(f"{path}: not a private key ({exc})",
                            "make one with `minerva keys new NAME`")
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise PackagerError(f"{path}: not an Ed25519 key", "make one with `minerva keys new`")
    return key


def load_public_key(path):
    """The 32 raw bytes of a ``.pub`` file written by :func:`new_key`."""
    try:
        kind, hexkey = Path(path).read_text().split()
        raw = bytes.fromhex(hexkey)
    except (OSError, ValueError) as exc:
        raise PackagerError(f"{path}: not a Minerva public key ({exc})",
                            "use the .pub file `minerva keys new` wrote")
    if kind != "ed25519" or len(raw) != 32:
        raise PackagerError(f"{path}: not an Ed25519 public key", "use the .pub file")
    return raw


def split_sections(data):
    """``[(section name, bytes, required)]`` of a capsule, in file order."""
    names = {v: k for k, v in SECTION_TYPES.items()}
    count = struct.unpack_from("<H", data, 12)[0]
    out = []
    for i in range(count):
        kind, flags, off, n, _ = struct.unpack_from("<HHIII", data, 32 + 16 * i)
        out.append((names[kind], bytes(data[off:off + n]), bool(flags & 1)))
    return out


def sign_capsule(data, private_key):
    """``data`` (a verified capsule) signed by ``private_key``; an earlier signature is
    replaced."""
    sections = [s for s in split_sections(data) if s[0] != "SIGNATURE"]
    placeholder = encode_capsule(sections + [("SIGNATURE", bytes(SIGNATURE_BYTES), False)])
    digest = placeholder[-32:]
    signature = private_key.sign(digest)
    payload = _SCHEME + key_id(public_key_bytes(private_key)) + signature + bytes(4)
    signed = encode_capsule(sections + [("SIGNATURE", payload, False)])
    assert signed[-32:] == digest
    return signed


def signature_of(data):
    """``(key id hex, signature)`` of a capsule, or None when it is unsigned."""
    for name, raw, _ in split_sections(data):
        if name == "SIGNATURE":
            return raw[4:12].hex(), raw[12:76]
    return None


_PROVISION = """
import os
try:
    os.mkdir(%(dir)r)
except OSError:
    pass
held = [n for n in os.listdir(%(dir)r) if n.endswith(".pub")]
print(repr(held))
"""


def provision(port, public_key_path, via="mpremote", replace=False):
    """Make the board at ``port`` trust the key in ``public_key_path``; returns (key id hex,
    key ids dropped). The key lives in /keys, which deploys never write."""
    import ast

    from ..board.transport import connect

    raw = load_public_key(public_key_path)
    kid = key_id(raw).hex()
    name = f"{kid}.pub"
    with connect(port, via) as board:
        held = ast.literal_eval(board.exec(_PROVISION % {"dir": BOARD_KEYS_DIR}).decode()
                                .strip().splitlines()[-1])
        others = [n for n in held if n != name]
        if others and not replace:
            raise PackagerError(f"{port}: the board already trusts key(s) "
                                f"{', '.join(n[:-4] for n in others)}",
                                "pass --replace to trust only the new key")
        path = f"{BOARD_KEYS_DIR}/{name}"
        board.write_file(path + ".part", public_text(raw).encode())
        commit = [f"os.rename({path + '.part'!r}, {path!r})"]
        commit += [f"os.remove({BOARD_KEYS_DIR + '/' + n!r})" for n in others]
        board.exec("import os\n" + "\n".join(commit) + "\n")
    return kid, [n[:-4] for n in others]
