"""Kernel tier selection: the fastest available by default, forced tiers fail clearly."""

import pytest

import minerva
from minerva_packager.capsule.pack import pack_file

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
NATMOD_X64 = ROOT / "dist" / "x64_6.3" / "minerva_nat.mpy"


@pytest.fixture(scope="module")
def capsule(shared_models, tmp_path_factory):
    path = tmp_path_factory.mktemp("tiers") / "hello.cap"
    pack_file(shared_models / "hello_world_int8.tflite", path)
    return path


def _load_on_micropython(micropython, capsule, kernels, extra_path=()):
    return micropython.run(f"""
import minerva
try:
    m = minerva.load({str(capsule)!r}, kernels={kernels!r})
    info = m.info()
    print("TIER", info["kernels"], info["arch"])
except minerva.UnsupportedError as e:
    print("UNSUPPORTED", e)
""", extra_path=extra_path).stdout.strip()


def test_micropython_reports_its_arch_and_picks_a_tier(micropython, capsule):
    extra = [NATMOD_X64.parent] if NATMOD_X64.exists() else []
    out = _load_on_micropython(micropython, capsule, None, extra)
    expected = "natmod" if NATMOD_X64.exists() else "viper"
    assert out == f"TIER {expected} x64", out


def test_forced_python_tier(micropython, capsule):
    assert _load_on_micropython(micropython, capsule, "python") == "TIER python x64"


def test_numpy_tier_is_not_offered_on_micropython(micropython, capsule):
    out = _load_on_micropython(micropython, capsule, "numpy")
    assert out.startswith("UNSUPPORTED") and "'numpy' is not available" in out
    assert str(capsule) in out


def test_natmod_without_the_module_fails_clearly(micropython, capsule):
    out = _load_on_micropython(micropython, capsule, "natmod")
    assert out.startswith("UNSUPPORTED") and "'natmod' is not available" in out


def test_unknown_tier(capsule):
    with pytest.raises(minerva.UnsupportedError, match="unknown kernel tier 'fast'"):
        minerva.load(str(capsule), kernels="fast")


def test_cpython_has_no_native_arch(capsule):
    info = minerva.load(str(capsule), kernels="python").info()
    assert info["kernels"] == "python" and info["arch"] is None
