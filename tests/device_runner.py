"""Run a capsule on inputs, on CPython or on MicroPython, and return output bytes."""

from pathlib import Path

_MP_RUNNER = """
import minerva, binascii
from array import array
m = minerva.load({capsule!r}, kernels={kernels!r})
print("TIER", m.tier)
is_float = m.info()["inputs"][0]["dtype"] == "float32"
for line in open({inputs!r}):
    x = binascii.unhexlify(line.strip())
    out = m.run(array("f", x) if is_float else x)
    print("OUT", binascii.hexlify(bytes(out)).decode())
"""


def run_on_micropython(micropython, capsule, inputs, tmp_path, kernels=None, heapsize="4M",
                       extra_path=()):
    """Run ``capsule`` on each input (bytes) on MicroPython; return a list of output bytes."""
    inputs_file = Path(tmp_path) / "inputs.hex"
    inputs_file.write_text("".join(bytes(x).hex() + "\n" for x in inputs))
    script = _MP_RUNNER.format(capsule=str(capsule), inputs=str(inputs_file), kernels=kernels)
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
