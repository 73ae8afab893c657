"""Run a capsule on a board: ``minerva run --port PORT CAPSULE INPUT``.

The capsule must already be on the board (``minerva deploy``); its hash is checked first so the
board never runs a different model than the file named. Inputs travel as hex in the code
snippet and outputs come back as hex, so the bytes compared with the host are exact.
"""

from pathlib import Path

import numpy as np

from ..capsule.container import read_capsule
from ..errors import PackagerError
from .device_files import sha256_hex
from .transport import DeviceError, connect

# The model is loaded once; then each exec brings at most CHUNK_BYTES of input as hex into a
# preallocated buffer, and runs the model once an input is whole. Snippets (and the board's
# RAM for them) stay small whatever the batch, and outputs come back as each chunk ends.
_LOAD = """
import minerva, binascii, gc
from array import array
_mr = None
gc.collect()
_mr = minerva.load(%(path)r)
_mi = _mr.info()
_mx = bytearray(%(size)d)
_mf = _mi["inputs"][0]["dtype"] == "float32"
def _mp(o, h):
    _mx[o:o + len(h) // 2] = binascii.unhexlify(h)
def _mo():
    print("OUT", binascii.hexlify(bytes(_mr.run(array("f", _mx) if _mf else _mx))).decode())
gc.collect()
print("TIER", _mi["kernels"])
"""
_END = """
_mr.close()
_mr = _mx = None
import gc
gc.collect()
"""
CHUNK_BYTES = 1024
RUN_TIMEOUT_S = 600
_NUMPY_DTYPES = {"int8": np.int8, "uint8": np.uint8, "int16": np.int16, "int32": np.int32,
                 "float32": np.float32}


def load_inputs(path, capsule, raw_dtype=None):
    """The inputs in ``path`` as bytes per sample, and a note on any conversion (or None).

    ``.npy``: one sample of the input's shape, or a batch along axis 0 (size-1 axes may be
    left out, never reordered; a sample may be flat). Float values for an integer input are
    quantized with the input's scale and zero point; integers of another type are taken only
    when every value fits. Anything else is bytes in the input's dtype, or in ``raw_dtype``
    ("float32" for a raw float file, then quantized).
    """
    spec = capsule.meta["inputs"][0]
    target = np.dtype(_NUMPY_DTYPES[spec["dtype"]])
    path = Path(path)
    if path.suffix == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise PackagerError(f"{path}: not a readable .npy file ({exc})",
                                "save it with numpy.save")
        array = _batch(array, spec, path)
    else:
        raw = path.read_bytes()
        dtype = np.dtype(_NUMPY_DTYPES[raw_dtype]) if raw_dtype else target
        if dtype != np.float32 and target != np.float32 and _looks_float32(raw):
            raise PackagerError(f"{path}: the bytes read as plausible float32 values, not "
                                f"{spec['dtype']} ones",
                                "pass --raw-dtype float32 to quantize them, or save an .npy")
        count = int(np.prod(spec["shape"]))
        step = count * dtype.itemsize
        if not raw or len(raw) % step:
            raise PackagerError(f"{path}: {len(raw)} bytes is not a whole number of inputs "
                                f"of {step} bytes ({dtype.name} {spec['shape']})",
                                "pass one sample or a batch of samples of the input shape")
        array = np.frombuffer(raw, dtype).reshape(-1, count)
    array, note = _convert(array, spec, target, path)
    size = array[0].nbytes
    raw = np.ascontiguousarray(array).tobytes()
    return [raw[i:i + size] for i in range(0, len(raw), size)], note


def _squeezed(shape):
    return tuple(d for d in shape if d != 1)


def _batch(array, spec, path):
    # (N, sample) from one sample or a batch, matching dimensions in order.
    want = _squeezed(spec["shape"])
    count = int(np.prod(spec["shape"]))
    if _squeezed(array.shape) == want or array.shape == (count,):
        return array.reshape(1, count)
    if array.ndim == 2 and array.shape[1] == count and array.shape[0] > 0:
        return array  # flattened samples
    if array.ndim >= 1 and _squeezed(array.shape[1:]) == want and array.shape[0] > 0:
        return array.reshape(array.shape[0], count)
    raise PackagerError(f"{path}: shape {tuple(array.shape)} is neither one input of shape "
                        f"{tuple(spec['shape'])} nor a batch of them along axis 0",
                        "reshape (or transpose) it to the model's input shape")


def _convert(array, spec, target, path):
    # The array as the input's dtype; a float array for an integer input is quantized.
    if array.dtype == target:
        return array, None
    kind = array.dtype.kind
    if kind == "f" and target.kind == "i":
        if not np.all(np.isfinite(array)):
            raise PackagerError(f"{path}: holds NaN or infinite values", "clean the input")
        scale, zero = spec.get("scale"), spec.get("zero_point", 0)
        if not scale:
            raise PackagerError(f"{path}: {array.dtype} values, but the model's input has no "
                                "scale to quantize them with", f"pass {target.name} values")
        info = np.iinfo(target)
        q = np.round(array.astype(np.float64) / scale) + zero
        clipped = int(np.sum((q < info.min) | (q > info.max)))
        note = (f"quantized {array.dtype} input to {target.name} with the model's scale "
                f"{scale:.7g} and zero point {zero}"
                + (f" ({clipped} values clipped to the {target.name} range)" if clipped else ""))
        return np.clip(q, info.min, info.max).astype(target), note
    if kind in "iub" and target.kind == "f":
        return array.astype(target), None
    if kind == "f" and target.kind == "f":
        return array.astype(target), None
    if kind in "iu" and target.kind == "i":
        info = np.iinfo(target)
        bad = (array < info.min) | (array > info.max)
        if np.any(bad):
            value = array[bad].flat[0]
            raise PackagerError(f"{path}: {array.dtype} value {value} does not fit the model's "
                                f"{target.name} input (range {info.min}..{info.max})",
                                f"quantize the values to {target.name} first")
        return array.astype(target), None
    raise PackagerError(f"{path}: {array.dtype} values cannot be an {target.name} input",
                        f"pass {target.name} values, or float values to be quantized")


def _looks_float32(raw):
    # Real float32 data (a log-mel .bin) read as int8 would run as garbage. Read as float32,
    # int8 data rarely gives finite values of moderate size throughout.
    if len(raw) < 16 or len(raw) % 4:
        return False
    values = np.frombuffer(raw, np.float32)
    nonzero = values[values != 0]
    if len(nonzero) < len(values) // 2:
        return False
    with np.errstate(invalid="ignore", over="ignore"):
        magnitude = np.abs(nonzero)
        return bool(np.all(np.isfinite(nonzero)) and np.all((magnitude > 1e-6)
                                                              & (magnitude < 1e6)))


def _snippets(inputs, chunk=CHUNK_BYTES):
    # Code that fills the board's input buffer and runs each input, chunk bytes per snippet.
    lines, budget = [], chunk
    for x in inputs:
        x = bytes(x)
        for offset in range(0, len(x), chunk):
            piece = x[offset:offset + chunk]
            if len(piece) > budget:
                yield "\n".join(lines)
                lines, budget = [], chunk
            lines.append(f"_mp({offset}, {piece.hex()!r})")
            budget -= len(piece)
        lines.append("_mo()")
    if lines:
        yield "\n".join(lines)


def run_on_board(port, capsule_path, inputs, via="mpremote", capsule_dir="/capsules",
                 each=None):
    """Run ``capsule_path`` (already deployed) on each of ``inputs`` (bytes) on the board.

    Returns ``(outputs, tier)``: the output bytes per input and the kernel tier it used.
    ``each(index, output)`` is called as each output arrives.
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
        size = len(inputs[0]) if inputs else 0
        if any(len(x) != size for x in inputs):
            raise PackagerError("inputs of different sizes", "pass inputs of one shape")
        try:
            out = transport.exec(_LOAD % {"path": device_path, "size": size},
                                 timeout=RUN_TIMEOUT_S).decode()
        except DeviceError as exc:
            if "no module named 'minerva'" in exc.traceback:
                raise PackagerError("the minerva runtime is not on the board",
                                    f"install it: minerva deploy --port {port} "
                                    f"{capsule_path}")
            if "MemoryError" in exc.traceback or "OutOfMemoryError" in exc.traceback:
                last = exc.traceback.strip().splitlines()[-1].split(": ", 1)[-1]
                raise PackagerError(f"{port}: the board has no RAM for {device_path}: {last}",
                                    "the heap was swept first: nothing else holds it")
            raise
        tier = next((line[5:].strip() for line in out.splitlines()
                     if line.startswith("TIER ")), None)
        outputs = []
        for code in _snippets(inputs):
            # A pure-Python tier on a slow board can be silent for a long time per input.
            out = transport.exec(code, timeout=RUN_TIMEOUT_S).decode()
            for line in out.splitlines():
                if line.startswith("OUT "):
                    outputs.append(bytes.fromhex(line[4:].strip()))
                    if each:
                        each(len(outputs) - 1, outputs[-1])
        transport.exec(_END)
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
        labels = capsule.meta.get("labels") or []
        names = [f"{int(i)} {labels[i]}" if i < len(labels) else f"{int(i)}" for i in order]
        lines.append("top-%d " % len(order) + ", ".join(f"{name}: {real[i]:.3f}"
                                                         for name, i in zip(names, order)))
    return lines
