"""Versions of the digits example for the Minerva core tests: v1 is capsules/digits.cap; v2 is
trained from another seed (agrees with v1 on ~99 % of held-out digits); "weak" is trained for
two epochs only (agrees on ~87 %)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
V1 = ROOT / "capsules" / "digits.cap"
HELDOUT_X = ROOT / "capsules" / "digits_heldout_x.npy"
_RECIPES = {"v2": (11, 60, "2.0.0"), "weak": (5, 2, "3.0.0")}


def build(out_dir, extra_sections=()):
    """``{"v1": path, "v2": path, "weak": path}``; v2 and weak are trained and packed here."""
    from minerva_packager.capsule.pack import pack_tflite
    from minerva_packager.examples import digits

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    x, y, _, _ = digits.load_split()
    paths = {"v1": V1}
    for label, (seed, epochs, version) in _RECIPES.items():
        tflite = out_dir / f"digits_{label}.tflite"
        tflite.write_bytes(digits.to_tflite(digits.train(x, y, seed=seed, epochs=epochs), x))
        capsule = out_dir / f"digits_{label}.cap"
        capsule.write_bytes(pack_tflite(tflite, name="digits", version=version,
                                        extra_sections=extra_sections))
        paths[label] = capsule
    return paths
