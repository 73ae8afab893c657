"""One table of limits: the loader (device/minerva/graph.py) and the C kernels
(natmod/kernels/mnv_limits.h) name the same limits with the same values, and the C uses the
header rather than numbers of its own. Behaviour at the limits is in test_load_limits.py."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADER = ROOT / "natmod" / "kernels" / "mnv_limits.h"
LOADER = [ROOT / "device" / "minerva" / name
          for name in ("graph.py", "graph_math.py", "plan.py")]


def _c_limits():
    text = HEADER.read_text()
    return {m[1]: int(eval(m[2].replace("(", "").replace(")", ""), {}))  # noqa: S307
            for m in re.finditer(r"#define MNV_(\w+) (\(?-?(?:0x)?[0-9A-Fa-f]+\)?)", text)}


def _loader_limits():
    limits = {}
    for path in LOADER:
        for m in re.finditer(r"^_(\w+) = const\((-?(?:0x)?[0-9A-Fa-f]+)\)", path.read_text(),
                             re.M):
            assert limits.get(m[1], int(m[2], 0)) == int(m[2], 0), f"_{m[1]} differs"
            limits[m[1]] = int(m[2], 0)
    return limits


def test_loader_and_c_share_every_limit():
    c, loader = _c_limits(), _loader_limits()
    assert c, "no limits parsed from mnv_limits.h"
    for name, value in c.items():
        assert name in loader, f"graph.py has no _{name} (mnv_limits.h: {value})"
        assert loader[name] == value, f"_{name}: graph.py {loader[name]}, C {value}"


def test_c_kernels_use_the_table_not_their_own_numbers():
    # The numbers the table names appear in no kernel source but the header.
    for source in (ROOT / "natmod" / "kernels").glob("*.c"):
        text = source.read_text()
        for literal in ("1LL << 30", "1LL << 23", "4095", "< -31", "> 30"):
            assert literal not in text, f"{source.name} uses {literal!r}; use mnv_limits.h"
