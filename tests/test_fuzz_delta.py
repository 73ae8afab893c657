"""Fuzzing the board's delta rebuild and signature reading: a mutated delta or SIGNATURE
section gives a CapsuleError (or, for a delta, a rebuilt file no larger than announced and
refused at staging when it is not the capsule announced), never another exception.

A failure prints its case: `pytest tests/test_fuzz_delta.py --fuzz-case K`."""

import io
import random
import struct

import pytest

from minerva_packager.capsule.delta import make_delta
from minerva_packager.capsule.signing import load_private_key, new_key, sign_capsule

CASES = 2000


def _mutate(data, rng):
    data = bytearray(data)
    for _ in range(rng.randrange(1, 4)):
        kind = rng.randrange(4)
        if kind == 0 and data:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif kind == 1 and len(data) > 92:  # a length or offset field in the ops
            pos = rng.randrange(84, len(data) - 4)
            struct.pack_into("<I", data, pos, rng.choice([0, 1, 0xFFFFFFFF, rng.getrandbits(32),
                                                          rng.randrange(1 << 16)]))
        elif kind == 2:
            cut = rng.randrange(len(data) + 1)
            data = data[:cut]
        else:  # header fields: size, ops length
            pos = rng.choice([72, 76])
            if len(data) >= pos + 4:
                struct.pack_into("<I", data, pos, rng.getrandbits(rng.choice([8, 16, 32])))
    return bytes(data)


def _fix_crc(data):
    # Half the cases get a valid ops CRC, so the op parser itself is reached.
    import binascii

    if len(data) < 84:
        return data
    data = bytearray(data)
    struct.pack_into("<I", data, 76, len(data) - 84)
    struct.pack_into("<I", data, 80, binascii.crc32(bytes(data[84:])))
    return bytes(data)


def test_mutated_deltas_are_refused_cleanly(tmp_path, digits_versions, request):
    from minerva import CapsuleError
    from minerva.delta import rebuild
    from minerva.staging import inspect_capsule

    old = digits_versions["v1"].read_bytes()
    new = digits_versions["v2"].read_bytes()
    good = make_delta(old, new)
    base = tmp_path / "base.cap"
    base.write_bytes(old)
    only = request.config.getoption("--fuzz-case")
    refused = rebuilt = 0
    for case in range(CASES) if only is None else [only]:
        rng = random.Random(case)
        data = _mutate(good, rng)
        if case % 2:
            data = _fix_crc(data)
        delta = tmp_path / "x.delta"
        delta.write_bytes(data)
        out = tmp_path / "x.cap"
        try:
            rebuild(str(delta), str(base), str(out), 1 << 20)
            rebuilt += 1
            assert out.stat().st_size <= 1 << 20
            if out.read_bytes() != new:
                # Not the capsule announced: staging's full check must refuse it.
                with pytest.raises(CapsuleError):
                    inspect_capsule(str(out))
        except CapsuleError:
            refused += 1
        except Exception as exc:  # noqa: BLE001 - the point of the test
            pytest.fail(f"--fuzz-case {case}: {type(exc).__name__}: {exc}")
    if only is None:
        assert refused + rebuilt == CASES and refused > CASES // 2, (refused, rebuilt)


def test_mutated_signature_sections_are_refused_cleanly(tmp_path, digits_versions):
    from minerva import CapsuleError
    from minerva.capsule import SECTION_SIGNATURE, read_sections
    from minerva.staging import check_signature

    key = tmp_path / "k.key"
    pub = new_key(key)
    signed = sign_capsule(digits_versions["v1"].read_bytes(), load_private_key(key))
    raw = bytes.fromhex(pub.read_text().split()[1])
    import hashlib

    trusted = {hashlib.sha256(raw).digest()[:8]: raw}
    sections = read_sections(io.BytesIO(signed), "s.cap", len(signed))
    offset, length, _ = sections[SECTION_SIGNATURE]
    verified = 0
    for case in range(500):
        rng = random.Random(case)
        data = bytearray(signed)
        for _ in range(rng.randrange(1, 3)):
            data[offset + rng.randrange(length)] ^= 1 << rng.randrange(8)
        f = io.BytesIO(bytes(data))
        try:
            check_signature(f, "s.cap", sections, signed[-32:], trusted)
            verified += 1
        except CapsuleError:
            pass
        except Exception as exc:  # noqa: BLE001
            pytest.fail(f"case {case}: {type(exc).__name__}: {exc}")
    # Only flips in the 4 reserved bytes leave a valid signature.
    assert verified < 100
