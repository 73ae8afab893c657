"""Rebuild the example models and capsules committed in this folder.

    .venv/bin/python capsules/build_examples.py

Trains the digits classifier (minerva_packager.examples.digits), writes digits.tflite and its
held-out samples here, packs digits.cap, and prints the accuracy figures that README.md quotes.
"""

import json
import sys
from pathlib import Path

from minerva_packager.examples import digits

HERE = Path(__file__).resolve().parent


def main():
    result = digits.build(HERE)
    try:
        from minerva_packager.capsule.pack import pack_tflite
    except ImportError:
        print("minerva_packager.capsule.pack is not available: digits.cap not written",
              file=sys.stderr)
    else:
        capsule = HERE / "digits.cap"
        capsule.write_bytes(pack_tflite(result["tflite"], name="digits", version="1.0.0"))
        result["capsule"] = str(capsule)
    shown = {k: (Path(v).name if k in ("tflite", "heldout_x", "heldout_y", "report", "capsule")
                 else v) for k, v in result.items()}
    print(json.dumps(shown, indent=2))


if __name__ == "__main__":
    main()
