"""Ed25519 verification cases shared by the C, MicroPython and Pico tests: the RFC 8032 section
7.1 vectors, seeded random keys and messages signed by `cryptography` (each with a copy with one
bit flipped), and encodings RFC 8032 5.1.7 says to refuse. A case is a dict with name, pk, msg,
sig (bytes) and want: the C kernel's return code (0 valid; -1 mismatch; -2 bad key; -3 bad R;
-4 bad S), or None where only valid/invalid is known (from `cryptography`)."""

import hashlib
import random

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
VALID, MISMATCH, BAD_KEY, BAD_R, BAD_S = 0, -1, -2, -3, -4

# RFC 8032 section 7.1: TEST 1, 2, 3 and SHA(abc): secret key, public key, message, signature.
RFC8032 = [
    ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39"
     "701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
    ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f36"
     "13d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
    ("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f7"
     "60984dc6594a7c15e9716ed28dc027beceea1ec40a"),
    ("833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
     "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
     hashlib.sha512(b"abc").hexdigest(),
     "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b589093"
     "51fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704"),
]


def case(name, pk, msg, sig, want):
    return {"name": name, "pk": bytes(pk), "msg": bytes(msg), "sig": bytes(sig), "want": want}


def repro(c):
    """One line that names the case and carries everything needed to rerun it."""
    return (f"{c['name']}: pk={c['pk'].hex()} msg={c['msg'].hex()} sig={c['sig'].hex()} "
            f"want={c['want']}")


def _private(seed32):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(seed32)


def _public_bytes(key):
    from cryptography.hazmat.primitives import serialization

    return key.public_key().public_bytes(serialization.Encoding.Raw,
                                         serialization.PublicFormat.Raw)


def cryptography_says(pk, msg, sig):
    """`cryptography`'s (OpenSSL's) answer: True, or False for any refusal."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(pk).verify(sig, msg)
        return True
    except (InvalidSignature, ValueError):
        return False


def rfc_cases():
    out = []
    for n, (secret, pk, msg, sig) in enumerate(RFC8032):
        key = _private(bytes.fromhex(secret))
        # The typed vectors are checked against `cryptography` deriving and signing them.
        assert _public_bytes(key).hex() == pk and key.sign(bytes.fromhex(msg)).hex() == sig
        out.append(case(f"rfc8032-{n}", bytes.fromhex(pk), bytes.fromhex(msg),
                        bytes.fromhex(sig), VALID))
    return out


def _flip(data, bit):
    data = bytearray(data)
    data[bit // 8] ^= 1 << (bit % 8)
    return bytes(data)


def random_cases(seed, count):
    """``count`` seeded keys and messages (0-300 bytes, a third of them 32 like a capsule's
    SHA-256): each signature, and a copy with one bit of the signature, message or key
    flipped, whose verdict `cryptography` gives."""
    rng = random.Random(seed)
    out = []
    for n in range(count):
        key = _private(rng.randbytes(32))
        pk = _public_bytes(key)
        msg = rng.randbytes(32 if n % 3 == 0 else rng.randrange(301))
        sig = key.sign(msg)
        out.append(case(f"seed {seed} case {n}", pk, msg, sig, VALID))
        where = rng.choice(["sig", "sig", "msg", "pk"] if msg else ["sig", "pk"])
        parts = {"pk": pk, "msg": msg, "sig": sig}
        parts[where] = _flip(parts[where], rng.randrange(8 * len(parts[where])))
        ok = cryptography_says(parts["pk"], parts["msg"], parts["sig"])
        out.append(case(f"seed {seed} case {n} flipped {where}", parts["pk"], parts["msg"],
                        parts["sig"], VALID if ok else None))
    return out


def _y_encoding(y, sign=0):
    return (y | sign << 255).to_bytes(32, "little")


def _undecodable_ys(count):
    # Canonical y values (below p) for which (y^2 - 1)/(d y^2 + 1) has no square root.
    from minerva.ed25519 import _decode

    found, y = [], 2
    while len(found) < count:
        if _decode(_y_encoding(y)) is None:
            found.append(y)
        y += 1
    return found


def refused_cases():
    """Encodings RFC 8032 5.1.3 and 5.1.7 refuse, each inside an otherwise valid signature
    where one exists: S >= L (S + L would pass the group equation), y >= p, x^2 with no
    root, x = 0 with the sign bit set; and the identity as public key (a valid, if weak, key:
    R = identity and S = 0 verify any message), whose non-canonical encodings are refused."""
    key = _private(bytes(range(32)))
    pk, msg = _public_bytes(key), bytes(32)
    sig = key.sign(msg)
    r, s = sig[:32], int.from_bytes(sig[32:], "little")
    out = [case("valid base", pk, msg, sig, VALID)]
    for name, bad_s in (("S + L", s + L), ("S = L", L), ("S = 2^256 - 1", 2**256 - 1),
                        ("S + 15L", s + 15 * L)):
        if bad_s < 2**256:
            out.append(case(name, pk, msg, r + bad_s.to_bytes(32, "little"), BAD_S))
    bad_points = [("y = p", _y_encoding(P)), ("y = p + 1", _y_encoding(P + 1)),
                  ("y = 2^255 - 1", _y_encoding(2**255 - 1)),
                  ("y = p + 18, sign", _y_encoding(P + 18, 1)),
                  ("x = 0 (y = 1) with sign", _y_encoding(1, 1)),
                  ("x = 0 (y = p - 1) with sign", _y_encoding(P - 1, 1))]
    bad_points += [(f"no root (y = {y})", _y_encoding(y)) for y in _undecodable_ys(3)]
    for name, encoding in bad_points:
        out.append(case(f"key {name}", encoding, msg, sig, BAD_KEY))
        out.append(case(f"R {name}", pk, msg, encoding + sig[32:], BAD_R))
    identity, zero_s = _y_encoding(1), bytes(32)
    out.append(case("identity key, R = identity, S = 0", identity, msg, identity + zero_s,
                    VALID))
    out.append(case("identity key, other message", identity, b"x", identity + zero_s,
                    VALID))
    out.append(case("identity key encoded y = p + 1", _y_encoding(P + 1), msg,
                    identity + zero_s, BAD_KEY))
    out.append(case("R = identity encoded y = p + 1", identity, msg,
                    _y_encoding(P + 1) + zero_s, BAD_R))
    out.append(case("identity key, S = 1", identity, msg, identity + _y_encoding(1),
                    MISMATCH))
    return out


def all_cases(seed=8032, count=256):
    return rfc_cases() + random_cases(seed, count) + refused_cases()
