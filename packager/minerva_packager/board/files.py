"""What capsules a board holds, and removing one: ``minerva ls`` and ``minerva rm``.

A board keeps capsules in two ways: ``minerva deploy`` puts them in ``/capsules`` (loaded by
name with ``minerva.load``), and ``minerva.Runtime`` keeps its active, candidate and previous
capsules in ``/capsules/slots`` with its ``state.json`` naming which is which.
"""

import json

from ..errors import PackagerError
from .transport import connect

ROOT = "/capsules"

_LS = """
import os, json
def _ls(p):
    try:
        return sorted(os.listdir(p))
    except OSError:
        return []
_out = {"capsules": [[n, os.stat(%(root)r + "/" + n)[6]] for n in _ls(%(root)r)
                     if n.endswith(".cap")],
        "inbox": _ls(%(root)r + "/inbox"), "rejected": _ls(%(root)r + "/rejected"),
        "state": None}
try:
    with open(%(root)r + "/state.json") as _f:
        _out["state"] = json.load(_f)
except (OSError, ValueError):
    pass
print("LS " + json.dumps(_out))
"""


def list_capsules(port, via="mpremote", root=ROOT):
    """``{"capsules": [[name, bytes]], "inbox": [...], "rejected": [...], "state": {...}}``."""
    with connect(port, via) as board:
        out = board.exec(_LS % {"root": root}).decode()
    return json.loads([ln for ln in out.splitlines() if ln.startswith("LS ")][0][3:])


def describe_listing(listing):
    """Text lines for ``minerva ls``."""
    lines = []
    state = listing["state"] or {}
    info = state.get("info", {})
    for role in ("active", "candidate", "previous"):
        name = state.get(role)
        if name:
            i = info.get(name, {})
            trial = " (on trial)" if role == "active" and state.get("trial") else ""
            lines.append(f"{role:<10} {i.get('name', '?')} {i.get('version', '?')}{trial}  "
                         f"slots/{name}")
    for name, size in listing["capsules"]:
        lines.append(f"{'deployed':<10} {name}  {size} bytes")
    for name in listing["inbox"]:
        lines.append(f"{'inbox':<10} {name}  (staged at the runtime's next start or poll)")
    for name in listing["rejected"]:
        lines.append(f"{'rejected':<10} {name}")
    if not lines:
        lines.append("no capsules on the board")
    return lines


_RM = """
import os
os.remove(%(path)r)
print("RM")
"""


def remove_capsule(port, name, via="mpremote", root=ROOT):
    """Remove capsule ``name`` (deployed, in the inbox or refused); returns its board path.
    A slot's capsule is the runtime's: it leaves by reject or rollback, never by rm."""
    listing = list_capsules(port, via, root)
    state = listing["state"] or {}
    held = {state.get(role): role for role in ("active", "candidate", "previous")}
    base = name.rsplit("/", 1)[-1]
    if base in held:
        raise PackagerError(f"{base} is the runtime's {held[base]} capsule",
                            "use `minerva shadow reject` or `minerva shadow rollback`")
    for folder, names in ((root, [n for n, _ in listing["capsules"]]),
                          (root + "/inbox", listing["inbox"]),
                          (root + "/rejected", listing["rejected"])):
        if base in names:
            path = f"{folder}/{base}"
            with connect(port, via) as board:
                board.exec(_RM % {"path": path})
            return path
    raise PackagerError(f"no capsule {base} on the board", "see `minerva ls`")
