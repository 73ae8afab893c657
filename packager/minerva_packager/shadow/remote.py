"""The Minerva core from the desktop: status, decisions, inputs and reports of a board's
``minerva.Runtime`` (device/minerva/runtime.py), over the same transports as deploy.

Every call opens the board (a soft reset: a new boot for the board's runtime), makes a
``Runtime`` on its capsule root, and prints what the host parses; inputs travel in bounded
chunks, so a board never holds more than one chunk of them.
"""

import json

from ..board.transport import DeviceError, connect
from ..errors import PackagerError

ROOT = "/capsules"

_OPEN = """
import gc, minerva, json, binascii
_rt = None  # a runtime an earlier command left in the REPL scope: freed before a new one
gc.collect()
try:
    _rt = minerva.Runtime(%(root)r)
except minerva.CapsuleError as e:
    _rt = None
    print("ERROR " + str(e))
"""
_STATUS = "print('STATUS ' + json.dumps(_rt.status()))\n"
_IO = "print('IO ' + json.dumps(_rt.active.info()['inputs'] if _rt.active else None))\n"
_ACTIONS = {
    "promote": "_rt.promote(force=%(force)r, now=False)\n",
    "reject": "_rt.reject(%(reason)r)\n",
    "rollback": "_rt.rollback()\n",
    "confirm": "_rt.confirm()\n",
}
# Inputs reach the board in 1 KB pieces written into one buffer (board_run._snippets), so a
# board never parses more than a kilobyte of hex at a time whatever the input size.
_FEED_SETUP = """
import gc
gc.collect()
_mx = bytearray(%(size)d)
def _mp(o, h):
    _mx[o:o + len(h) // 2] = binascii.unhexlify(h)
def _mo():
    print("OUT " + binascii.hexlify(bytes(_rt.infer(_mx))).decode())
"""


def _run(transport, code, timeout=60):
    try:
        out = transport.exec(code, timeout=timeout).decode()
    except DeviceError as exc:
        if "no module named 'minerva'" in exc.traceback:
            raise PackagerError("the minerva runtime is not on the board",
                                "install it: minerva deploy --port PORT")
        if "CapsuleError" in exc.traceback:
            raise PackagerError(exc.traceback.strip().splitlines()[-1].split(": ", 1)[-1])
        raise
    for line in out.splitlines():
        if line.startswith("ERROR "):
            raise PackagerError(line[6:])
    return out


def _lines(out, prefix):
    return [line[len(prefix):] for line in out.splitlines() if line.startswith(prefix)]


def status(port, via="mpremote", root=ROOT):
    """The board runtime's ``status()`` dict."""
    with connect(port, via) as board:
        _run(board, _OPEN % {"root": root})
        return json.loads(_lines(_run(board, _STATUS), "STATUS ")[0])


def act(port, action, via="mpremote", root=ROOT, force=False, reason="rejected by the user"):
    """``promote`` (the trial starts at the board's next start), ``reject``, ``rollback`` or
    ``confirm`` on the board; returns the status after it."""
    if action not in _ACTIONS:
        raise PackagerError(f"no shadow action {action!r}", "use " + ", ".join(_ACTIONS))
    with connect(port, via) as board:
        _run(board, _OPEN % {"root": root})
        _run(board, _ACTIONS[action] % {"force": force, "reason": reason})
        return json.loads(_lines(_run(board, _STATUS), "STATUS ")[0])


def load_inputs(path, spec):
    """The samples in ``path`` as bytes per sample, checked against the model's input
    ``spec`` as `minerva run` checks them (float values are quantized, and said so)."""
    from ..board.run import load_inputs as run_inputs

    class _Spec:
        meta = {"inputs": [spec]}

    samples, _note = run_inputs(path, _Spec())
    return samples


def feed(port, path, via="mpremote", root=ROOT, progress=None):
    """Serve every sample in ``path`` with the board's runtime (the active model answers, a
    staged candidate is shadow-tested on it); returns (answers as bytes, status after)."""
    outputs = []
    with connect(port, via) as board:
        _run(board, _OPEN % {"root": root})
        spec = json.loads(_lines(_run(board, _IO), "IO ")[0])
        if spec is None:
            raise PackagerError("the board has no active model",
                                "stage one: minerva deploy --stage --port PORT model.cap")
        samples = load_inputs(path, spec[0])
        from ..board.run import _snippets

        _run(board, _FEED_SETUP % {"size": len(samples[0]) if samples else 0})
        for code in _snippets(samples):
            out = _run(board, code, timeout=600)
            outputs += [bytes.fromhex(h) for h in _lines(out, "OUT ")]
            if progress:
                progress(len(outputs), len(samples))
        _run(board, "_rt.flush()\n")
        return outputs, json.loads(_lines(_run(board, _STATUS), "STATUS ")[0])


def pull(port, via="mpremote", root=ROOT):
    """The board's report lines (``Runtime.report``), parsed (shadow_report.parse_pull)."""
    from .report import parse_pull

    with connect(port, via) as board:
        _run(board, _OPEN % {"root": root})
        out = _run(board, "_rt.report()\n", timeout=120)
    return parse_pull(out.splitlines())


def describe(st):
    """Text lines for a status dict, as `minerva shadow status` prints them."""
    def slot(info):
        if not info:
            return "-"
        signed = f", signed by {info['signed_by']}" if info.get("signed_by") else ""
        return f"{info['name']} {info['version']} ({info['file']}{signed})"

    lines = [f"active:    {slot(st['active'])}", f"candidate: {slot(st['candidate'])}",
             f"previous:  {slot(st['previous'])}"]
    if st.get("trial"):
        t = st["trial"]
        lines.append(f"trial:     on trial, confirmed after {t['needed']} healthy inferences"
                     + ("" if t.get("started") else " (from its first inference after the "
                                                       "board's next start)"))
    sh = st.get("shadow")
    if sh and sh["samples"]:
        lines.append(f"shadow:    {sh['samples']} inputs compared, {sh['agree']} agree "
                     f"({sh['metric']}), errors {sh['errors']}")
        lines.append(f"decision:  {sh['decision']}: {sh['reason']}")
    elif st.get("candidate"):
        lines.append("shadow:    no inputs compared yet")
    if st.get("candidate_load_error"):
        lines.append(f"waiting:   {st['candidate_load_error']}")
    for r in st.get("rejected", [])[-3:]:
        lines.append(f"refused:   {r['file']}: {r['reason']}")
    if st.get("events"):
        lines.append(f"last:      {st['events'][-1][2]}")
    return lines
