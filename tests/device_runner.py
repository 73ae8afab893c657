"""Run a capsule on inputs, on CPython or on MicroPython, and return output bytes."""

from pathlib import Path

_MP_RUNNER = """
import minerva, binascii
from array import array
# The input buffer is allocated before the model, as an application on a small heap would.
buf = bytearray({size})
m = minerva.load({capsule!r}, kernels={kernels!r})
print("TIER", m.tier)
x = array("f", buf) if m.info()["inputs"][0]["dtype"] == "float32" else buf
with open({inputs!r}, "rb") as f:
    for i in range({count}):
        f.readinto(buf)
        if x is not buf:
            x = array("f", buf)
        print("OUT", binascii.hexlify(bytes(m.run(x))).decode())
"""


def run_on_micropython(micropython, capsule, inputs, tmp_path, kernels=None, heapsize="4M",
                       extra_path=()):
    """Run ``capsule`` on each input (bytes) on MicroPython; return a list of output bytes."""
    inputs = [bytes(x) for x in inputs]
    inputs_file = Path(tmp_path) / "inputs.bin"
    inputs_file.write_bytes(b"".join(inputs))
    script = _MP_RUNNER.format(capsule=str(capsule), inputs=str(inputs_file), kernels=kernels,
                               size=len(inputs[0]), count=len(inputs))
    proc = micropython.run(script, heapsize=heapsize, extra_path=extra_path)
    outs = [bytes.fromhex(line[4:]) for line in proc.stdout.splitlines()
            if line.startswith("OUT ")]
    assert len(outs) == len(inputs), proc.stdout + proc.stderr
    return outs


def run_on_cpython(capsule, inputs, kernels="python"):
    from array import array

    import minerva

    m = minerva.load(str(capsule), kernels=kernels)
    is_float = m.info()["inputs"][0]["dtype"] == "float32"
    return [bytes(m.run(array("f", bytes(x)) if is_float else bytes(x))) for x in inputs]
