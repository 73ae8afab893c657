"""Signed and delta capsules: Ed25519 on the board (RFC 8032 vectors, differential against
`cryptography`), a provisioned board refusing unsigned, foreign, tampered and downgraded
capsules, and deltas rebuilt on the board, all on the real MicroPython."""

import json
import os
import random
import sys
from pathlib import Path

import pytest
from capsule_surgery import split

from minerva_packager.capsule.container import encode_capsule
from minerva_packager.capsule.delta import apply_delta, make_delta
from minerva_packager.capsule.signing import (
    key_id,
    load_private_key,
    load_public_key,
    new_key,
    public_text,
    sign_capsule,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "device"))

# RFC 8032 section 7.1, TEST 1-3: public key, message, signature (hex).
RFC8032 = [
    ("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39"
     "701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
    ("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f36"
     "13d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
    ("fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f7"
     "60984dc6594a7c15e9716ed28dc027beceea1ec40a"),
]


def _flip(hexstr, bit):
    data = bytearray(bytes.fromhex(hexstr))
    data[bit // 8 % len(data)] ^= 1 << (bit % 8)
    return bytes(data).hex()


def test_rfc8032_vectors_and_tampering_on_micropython(micropython):
    cases = [(pk, m, s, True) for pk, m, s in RFC8032]
    for k, (pk, m, s) in enumerate(RFC8032):
        cases.append((pk, m, _flip(s, 7 * k + 3), False))        # R changed
        cases.append((pk, m, _flip(s, 300 + 5 * k), False))      # S changed
        cases.append((_flip(pk, 11 + k), m, s, False))           # another key
        cases.append((pk, m + "00", s, False))                   # another message
    script = "from minerva.ed25519 import verify\nimport binascii as b\n" + "".join(
        f"print(verify(b.unhexlify({pk!r}), b.unhexlify({m!r}), b.unhexlify({s!r})))\n"
        for pk, m, s, _ in cases)
    out = micropython.run(script).stdout.split()
    assert out == [str(ok) for *_, ok in cases]


def test_ed25519_and_sha512_against_cryptography():
    import hashlib

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from minerva import ed25519

    rng = random.Random(8032)
    for n in range(0, 300, 7):
        data = rng.randbytes(n)
        assert ed25519.sha512(data) == hashlib.sha512(data).digest(), f"--sha512-len {n}"
    for case in range(200):
        key = Ed25519PrivateKey.generate()
        pk = key.public_key().public_bytes(serialization.Encoding.Raw,
                                           serialization.PublicFormat.Raw)
        message = rng.randbytes(32)
        sig = key.sign(message)
        assert ed25519.verify(pk, message, sig), f"case {case}"
        bad = bytearray(sig)
        bad[rng.randrange(64)] ^= 1 << rng.randrange(8)
        assert not ed25519.verify(pk, message, bytes(bad)), f"case {case}: {bad.hex()}"


@pytest.fixture()
def signed(tmp_path, digits_versions):
    key = tmp_path / "release.key"
    new_key(key)
    other = tmp_path / "other.key"
    new_key(other)
    caps = {}
    for label in ("v1", "v2", "weak"):
        data = Path(digits_versions[label]).read_bytes()
        caps[label] = sign_capsule(data, load_private_key(key))
        caps[label + "_other"] = sign_capsule(data, load_private_key(other))
        caps[label + "_unsigned"] = data
    return {"key": key, "pub": Path(str(key) + ".pub"), "caps": caps}


PRELUDE = """
import json
from minerva.runtime import Runtime
def show(rt):
    print("STATUS " + json.dumps(rt.status()))
"""


def _board(micropython, root, keys, script):
    proc = micropython.run(PRELUDE + f"ROOT = {str(root)!r}\nKEYS = {str(keys)!r}\n" + script,
                           heapsize="236304")
    return [json.loads(line[7:]) for line in proc.stdout.splitlines()
            if line.startswith("STATUS ")]


def _drop(root, name, data):
    (root / "inbox").mkdir(parents=True, exist_ok=True)
    (root / "inbox" / name).write_bytes(data)


def _provisioned_board(micropython, signed, tmp_path):
    # A board trusting the release key, serving signed v1: (capsule root, keys folder).
    root, keys = tmp_path / "capsules", tmp_path / "keys"
    keys.mkdir()
    pub = load_public_key(signed["pub"])
    (keys / f"{key_id(pub).hex()}.pub").write_text(public_text(pub))
    _drop(root, "v1.cap", signed["caps"]["v1"])
    _start(micropython, root, keys)
    return root, keys


def _start(micropython, root, keys):
    return _board(micropython, root, keys,
                  "show(Runtime(ROOT, kernels='viper', keys=KEYS))")[0]


def test_a_provisioned_board_stages_only_what_its_key_signed(micropython, signed, tmp_path):
    caps = signed["caps"]
    root, keys = tmp_path / "capsules", tmp_path / "keys"
    keys.mkdir()
    _drop(root, "v1.cap", caps["v1_unsigned"])
    st = _start(micropython, root, keys)
    assert st["accepts_unsigned"] and st["active"]["version"] == "1.0.0"
    pub = load_public_key(signed["pub"])
    (keys / f"{key_id(pub).hex()}.pub").write_text(public_text(pub))
    kid = key_id(pub).hex()
    _drop(root, "unsigned.cap", caps["v2_unsigned"])
    _drop(root, "foreign.cap", caps["v2_other"])
    st = _start(micropython, root, keys)
    assert not st["accepts_unsigned"] and st["trusted_keys"] == [kid]
    reasons = {r["file"]: r["reason"] for r in st["rejected"]}
    assert "unsigned, and this board accepts only capsules signed by key " + kid in \
        reasons["unsigned.cap"]
    assert "which this board does not trust" in reasons["foreign.cap"]
    assert st["candidate"] is None
    _drop(root, "v2.cap", caps["v2"])
    st = _start(micropython, root, keys)
    assert st["candidate"]["version"] == "2.0.0" and st["candidate"]["signed_by"] == kid


def _resealed(data, section, rng):
    # An attacker's edit: one byte of ``section`` changed, every CRC and the SHA-256 redone.
    out = []
    for name, raw, required in split(data):
        if name == section:
            raw = bytearray(raw)
            raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
            raw = bytes(raw)
        out.append((name, raw, required))
    return encode_capsule(out)


def test_tampering_with_any_section_of_a_signed_capsule_is_refused(micropython, signed,
                                                                   tmp_path):
    caps = signed["caps"]
    root, keys = _provisioned_board(micropython, signed, tmp_path)
    rng = random.Random(13)
    sections = [name for name, _, _ in split(caps["v2"])]
    assert {"META", "GRAPH", "WEIGHTS", "SIGNATURE"} <= set(sections)
    for section in sections:
        _drop(root, f"{section.lower()}.cap", _resealed(caps["v2"], section, rng))
    st = _start(micropython, root, keys)
    reasons = {r["file"]: r["reason"] for r in st["rejected"]}
    assert set(reasons) == {f"{s.lower()}.cap" for s in sections}
    for section in sections:
        reason = reasons[f"{section.lower()}.cap"]
        if section == "SIGNATURE":  # the key id, the scheme or the signature itself
            assert "does not match" in reason or "does not trust" in reason or \
                "scheme" in reason, reason
        else:
            assert "does not match its contents: altered after signing" in reason, reason
    assert st["candidate"] is None and st["active"]["version"] == "1.0.0"


def test_older_versions_are_refused_unless_allowed(micropython, signed, tmp_path):
    caps = signed["caps"]
    root, keys = tmp_path / "capsules", tmp_path / "keys"
    keys.mkdir()
    _drop(root, "v2.cap", caps["v2"])
    _start(micropython, root, keys)
    _drop(root, "v1.cap", caps["v1"])  # an older version, properly signed: a replay
    st = _start(micropython, root, keys)
    assert "older than 2.0.0" in st["rejected"][-1]["reason"]
    assert st["security_version"] == "2.0.0" and st["candidate"] is None
    _drop(root, "v1.cap", caps["v1"])
    st = _board(micropython, root, keys, """
rt = Runtime(ROOT, kernels="viper", keys=KEYS, policy={"allow_downgrade": True})
show(rt)
""")[0]
    assert st["candidate"]["version"] == "1.0.0", "forced"


def test_deltas_rebuild_on_the_board_and_wrong_bases_are_refused(micropython, signed,
                                                                tmp_path):
    caps = signed["caps"]
    root, keys = _provisioned_board(micropython, signed, tmp_path)
    delta = make_delta(caps["v1"], caps["v2"])
    assert apply_delta(caps["v1"], delta) == caps["v2"]
    wrong_base = make_delta(caps["weak"], caps["v2"])
    damaged = bytearray(delta)
    damaged[-5] ^= 0x20
    _drop(root, "v2.delta", delta)
    _drop(root, "wrong.delta", wrong_base)
    _drop(root, "damaged.delta", bytes(damaged))
    _drop(root, "short.delta", delta[:len(delta) // 2])
    st = _start(micropython, root, keys)
    reasons = {r["file"]: r["reason"] for r in st["rejected"]}
    assert "is not on this board" in reasons["wrong.delta"]
    assert "CRC-32 mismatch" in reasons["damaged.delta"]
    assert "truncated" in reasons["short.delta"]
    assert st["candidate"]["version"] == "2.0.0"
    assert st["candidate"]["sha256"] == caps["v2"][-32:].hex()
    assert sorted(os.listdir(root / "inbox")) == []
    assert (root / "slots" / st["candidate"]["file"]).read_bytes() == caps["v2"]


def test_staging_verifies_in_the_native_module_where_it_loads(micropython, signed, tmp_path):
    from test_natmod import build_natmod

    natmod = build_natmod("x64")
    pub = load_public_key(signed["pub"])
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / f"{key_id(pub).hex()}.pub").write_text(public_text(pub))
    good, tampered = tmp_path / "good.cap", tmp_path / "tampered.cap"
    good.write_bytes(signed["caps"]["v2"])
    tampered.write_bytes(_resealed(signed["caps"]["v2"], "WEIGHTS", random.Random(5)))
    out = micropython.run(f"""
from minerva import ed25519
from minerva.errors import CapsuleError
from minerva.staging import inspect_capsule, read_trusted_keys
keys = read_trusted_keys({str(keys)!r})
for path in ({str(good)!r}, {str(tampered)!r}):
    try:
        print("STAGED", inspect_capsule(path, keys)["signed_by"])
    except CapsuleError as e:
        print("REFUSED", e)
import minerva_nat
print("NATIVE", ed25519._native is minerva_nat.ed25519_verify)
""", extra_path=[natmod.parent]).stdout.splitlines()
    assert out[0] == f"STAGED {key_id(pub).hex()}"
    assert out[1].startswith("REFUSED") and "altered after signing" in out[1], out[1]
    assert out[2] == "NATIVE True"
