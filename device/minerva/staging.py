# What a capsule must be to be staged: whole (checksums, graph), signed by a trusted key when
# the board has one, not older than what the board has run (anti-rollback, as MCUboot's
# security counter), and, for a delta, rebuilt from a base the board holds. No slots here.
import os

from .capsule import (SECTION_SHADOW_POLICY, read_capsule_file, read_signature,
                      verified_sections)
from .errors import CapsuleError
from .graph import DTYPE_NAMES
from .schema import ANY_OBJECT, parse
from .shadow import make_policy

KEYS = "/keys"


def read_trusted_keys(folder=KEYS):
    # {key id (8 bytes): public key (32 bytes)} from <folder>/*.pub ("ed25519 <hex>").
    from .capsule import sha256, unhexlify

    keys = {}
    try:
        names = os.listdir(folder)
    except OSError:
        return keys
    for name in names:
        if not name.endswith(".pub"):
            continue
        try:
            with open(folder + "/" + name) as f:
                kind, hexkey = f.read().split()
            key = unhexlify(hexkey)
        except (OSError, ValueError):
            continue
        if kind == "ed25519" and len(key) == 32:
            keys[sha256(key).digest()[:8]] = key
    return keys


def _hex(data):
    return "".join("%02x" % b for b in data)


def check_signature(f, path, sections, digest, trusted):
    # The signing key's id (hex), or None for an unsigned capsule on a board with no key.
    signed = read_signature(f, path, sections)
    if not trusted:
        return _hex(signed[0]) if signed else None
    ids = ", ".join(_hex(k) for k in trusted)
    if signed is None:
        raise CapsuleError("%s: unsigned, and this board accepts only capsules signed by key "
                           "%s; sign it with `minerva sign`" % (path, ids))
    key_id, signature = signed
    key = trusted.get(bytes(key_id))
    if key is None:
        raise CapsuleError("%s: signed by key %s, which this board does not trust (it trusts "
                           "%s)" % (path, _hex(key_id), ids))
    from .ed25519 import verify

    if not verify(key, digest, signature):
        raise CapsuleError("%s: its signature does not match its contents: altered after "
                           "signing" % path)
    return _hex(key_id)


def inspect_capsule(path, trusted=None):
    # Verify the capsule at ``path``; return what the slots record of it. Raises CapsuleError.
    try:
        size = os.stat(path)[6]
        f = open(path, "rb")
    except OSError as exc:
        raise CapsuleError("%s: cannot open (%s)" % (path, exc))
    try:
        sections = verified_sections(f, path, size)
        f.seek(size - 32)
        digest = f.read(32)
        signed_by = check_signature(f, path, sections, digest, trusted or {})
        cap = read_capsule_file(f, path, size, sections)
        policy = {}
        if SECTION_SHADOW_POLICY in sections:
            off, n, _ = sections[SECTION_SHADOW_POLICY]
            f.seek(off)
            policy = parse(f.read(n), ANY_OBJECT, path, "SHADOW_POLICY")
        make_policy(path, policy)
    finally:
        f.close()
    g = cap.graph

    def sig(indices):
        return ",".join("%s%s" % (DTYPE_NAMES[g.tensors[i].dtype], list(g.tensors[i].dims))
                        for i in indices)

    return {"name": cap.meta.get("name", ""), "version": cap.meta.get("version", "?"),
            "sha256": _hex(digest), "size": size, "io": sig(g.inputs) + "->" + sig(g.outputs),
            "policy": policy, "signed_by": signed_by}


def _version_key(version):
    parts = []
    for part in str(version).split("-")[0].split("."):
        try:
            parts.append(int(part))
        except ValueError:
            return None
    return parts


def newer_or_same(version, floor):
    # Semantic versions compared as numbers; a version that is not one never blocks.
    a, b = _version_key(version), _version_key(floor)
    return a is None or b is None or a >= b
