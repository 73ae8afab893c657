"""Run a capsule on inputs, on CPython or on MicroPython, and return output bytes."""

from pathlib import Path

_MP_RUNNER = """
import minerva, binascii
from array import array
# Input buffers are allocated before the model, as an application on a small heap would.
bufs = [bytearray(n) for n in {sizes!r}]
m = minerva.load({capsule!r}, kernels={kernels!r})
print("TIER", m.tier)
floats = [t["dtype"] == "float32" for t in m.info()["inputs"]]
with open({inputs!r}, "rb") as f:
    for i in range({count}):
        xs = []
        for buf, is_float in zip(bufs, floats):
            f.readinto(buf)
            xs.append(array("f", buf) if is_float else buf)
        print("OUT", binascii.hexlify(bytes(m.run(xs[0] if len(xs) == 1 else xs))).decode())
"""


def _as_lists(inputs):
    """Each case as a list of per-input bytes (a bare bytes object is a one-input case)."""
    return [[bytes(x)] if isinstance(x, (bytes, bytearray)) else [bytes(v) for v in x]
            for x in inputs]


def run_on_micropython(micropython, capsule, inputs, tmp_path, kernels=None, heapsize="4M",
                       extra_path=()):
    """Run ``capsule`` on each case on MicroPython; return a list of output bytes.

    A case is the input's bytes, or a list of bytes for a model with several inputs.
    """
    cases = _as_lists(inputs)
    inputs_file = Path(tmp_path) / "inputs.bin"
    inputs_file.write_bytes(b"".join(b"".join(case) for case in cases))
    script = _MP_RUNNER.format(capsule=str(capsule), inputs=str(inputs_file), kernels=kernels,
                               sizes=[len(v) for v in cases[0]], count=len(cases))
    proc = micropython.run(script, heapsize=heapsize, extra_path=extra_path)
    outs = [bytes.fromhex(line[4:]) for line in proc.stdout.splitlines()
            if line.startswith("OUT ")]
    assert len(outs) == len(cases), proc.stdout + proc.stderr
    return outs


def run_on_cpython(capsule, inputs, kernels="python"):
    """The same on CPython."""
    from array import array

    import minerva

    m = minerva.load(str(capsule), kernels=kernels)
    floats = [t["dtype"] == "float32" for t in m.info()["inputs"]]
    outs = []
    for case in _as_lists(inputs):
        xs = [array("f", v) if f else v for v, f in zip(case, floats)]
        outs.append(bytes(m.run(xs[0] if len(xs) == 1 else xs)))
    return outs
