"""Run a capsule on a board: ``minerva run --port PORT CAPSULE INPUT``.

The capsule must already be on the board (``minerva deploy``); its hash is checked first so the
board never runs a different model than the file named. Inputs travel as hex in the code
snippet and outputs come back as hex, so the bytes compared with the host are exact.
"""

from pathlib import Path

import numpy as np

from .capsule import read_capsule
from .errors import PackagerError
from .runtime import sha256_hex
from .transport import DeviceError, connect

_RUN = """
import minerva, binascii, sys
from array import array
m = minerva.load(%(path)r)
info = m.info()
for h in %(inputs)r:
    x = binascii.unhexlify(h)
    if info["inputs"][0]["dtype"] == "float32":
        x = array("f", x)
    print("OUT", binascii.hexlify(bytes(m.run(x))).decode())
print("TIER", info["kernels"])
"""

RUN_TIMEOUT_S = 600
_NUMPY_DTYPES = {"int8": np.int8, "uint8": np.uint8, "int16": np.int16, "int32": np.int32,
                 "float32": np.float32}


def load_inputs(path, capsule):
    """Read ``.npy`` (one sample, or a batch along axis 0) or raw ``.bin`` as input bytes."""
    spec = capsule.meta["inputs"][0]
    size = int(np.prod(spec["shape"])) * np.dtype(_NUMPY_DTYPES[spec["dtype"]]).itemsize
    path = Path(path)
    if path.suffix == ".npy":
        array = np.load(path)
        array = array.astype(_NUMPY_DTYPES[spec["dtype"]], copy=False)
        raw = array.tobytes()
    else:
        raw = path.read_bytes()
    if not raw or len(raw) % size:
        raise PackagerError(f"{path}: {len(raw)} bytes is not a whole number of inputs of "
                            f"{size} bytes ({spec['dtype']} {spec['shape']})",
                            "pass one sample or a batch of samples of the input shape")
    return [raw[i:i + size] for i in range(0, len(raw), size)]


def run_on_board(port, capsule_path, inputs, via="mpremote", capsule_dir="/capsules"):
    """Run ``capsule_path`` (already deployed) on each of ``inputs`` (bytes) on the board.

    Returns ``(outputs, tier)``: the output bytes per input and the kernel tier it used.
    """
    capsule = read_capsule(capsule_path)
    device_path = f"{capsule_dir}/{Path(capsule_path).name}"
    from .deploy import remote_hashes

    with connect(port, via) as transport:
        remote = remote_hashes(transport, [device_path]).get(device_path)
        if remote != (capsule.size, sha256_hex(capsule.raw)):
            state = "is not" if remote is None else "differs from the file"
            raise PackagerError(f"{device_path} {state} on the board",
                                f"deploy it first: minerva deploy --port {port} {capsule_path}")
        outputs, tier = [], None
        # Batches keep each snippet (and the board's line buffer) small.
        for start in range(0, len(inputs), 32):
            batch = [bytes(x).hex() for x in inputs[start:start + 32]]
            # A pure-Python tier on a slow board can be silent for a long time per input.
            try:
                out = transport.exec(_RUN % {"path": device_path, "inputs": batch},
                                     timeout=RUN_TIMEOUT_S).decode()
            except DeviceError as exc:
                if "no module named 'minerva'" in exc.traceback:
                    raise PackagerError("the minerva runtime is not on the board",
                                        f"install it: minerva deploy --port {port} "
                                        f"{capsule_path}")
                raise
            for line in out.splitlines():
                if line.startswith("OUT "):
                    outputs.append(bytes.fromhex(line[4:].strip()))
                elif line.startswith("TIER "):
                    tier = line[5:].strip()
    return outputs, tier


def describe_output(capsule, output, top_k=3):
    """Text lines for one output: dequantized values, and top-k for a classifier."""
    spec = capsule.meta["outputs"][0]
    values = np.frombuffer(output, dtype=_NUMPY_DTYPES[spec["dtype"]])
    if spec["dtype"] != "float32" and spec.get("scale"):
        real = (values.astype(np.float64) - spec.get("zero_point", 0)) * spec["scale"]
    else:
        real = values.astype(np.float64)
    lines = ["output " + " ".join(str(int(v)) if spec["dtype"] != "float32" else f"{v:.6g}"
                                  for v in values)]
    if len(spec["shape"]) == 2 and spec["shape"][-1] > 1:
        order = np.argsort(-real, kind="stable")[:top_k]
        lines.append("top-%d " % len(order) + ", ".join(f"{int(i)}: {real[i]:.3f}"
                                                         for i in order))
    return lines
