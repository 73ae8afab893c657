"""What ``minerva inspect`` shows: a capsule summarised as a dict, and as text."""

from .container import ChecksumFailed, read_capsule

_PARAM_NAMES = {
    "CONV_2D": ("batches in_h in_w in_c out_h out_w out_c k_h k_w stride_h stride_w dil_h "
                "dil_w pad_top pad_left input_offset output_offset act_min act_max"),
    "FULLY_CONNECTED": "batches depth out_c input_offset filter_offset output_offset act_min "
                       "act_max",
    "AVERAGE_POOL_2D": ("batches in_h in_w channels out_h out_w filter_h filter_w stride_h "
                        "stride_w pad_top pad_left act_min act_max"),
    "ADD": ("size input1_offset input2_offset output_offset left_shift input1_mult input1_shift "
            "input2_mult input2_shift output_mult output_shift act_min act_max"),
    "RESHAPE": "nbytes",
    "SOFTMAX": "rows depth input_beta_multiplier input_beta_left_shift diff_min",
    "QUANTIZE": "mode size p2 p3 p4 p5",
    "DEQUANTIZE": "size zero_point scale_bits",
    "GATHER": "in_bytes d0 d1 d2 d3 pad_value",
}
_PARAM_NAMES["DEPTHWISE_CONV_2D"] = _PARAM_NAMES["CONV_2D"] + " depth_multiplier"
_PARAM_NAMES["MAX_POOL_2D"] = _PARAM_NAMES["AVERAGE_POOL_2D"]
# math ops (opcodes 20-23)
_PARAM_NAMES.update({
    "LOOKUP": "size",
    "BINARY": ("kind d0 d1 d2 d3 a_stride0 a_stride1 a_stride2 a_stride3 b_stride0 b_stride1 "
               "b_stride2 b_stride3 a_offset b_offset output_offset left_shift a_mult a_shift "
               "b_mult b_shift output_mult output_shift act_min act_max"),
    "MEAN": "k0 r0 k1 r1 k2 input_zero_point output_zero_point mult shift",
    "QUANTIZE_INT16": "size input_zero_point output_zero_point mult shift",
})
_BINARY_KINDS = ("ADD", "SUB", "MUL", "MAXIMUM", "MINIMUM")


def summarize(path):
    """Verify the capsule at ``path`` and return a JSON-ready summary dict.

    A capsule whose checksums fail but whose structure still reads is summarised with
    ``checksums`` saying what failed; any other problem raises PackagerError.
    """
    try:
        cap = read_capsule(path)
        status = "OK"
    except ChecksumFailed as exc:
        cap = read_capsule(path, verify=False)
        status = f"FAILED: {exc.what}"
    ops = []
    for op in cap.ops:
        if op.name == "CONCATENATION":  # variable arity: one inner size per input
            names = ["outer"] + [f"inner{k}" for k in range(len(op.inputs))]
        else:
            names = _PARAM_NAMES[op.name].split()
        ops.append({"index": op.index, "op": op.name, "inputs": op.inputs,
                    "outputs": op.outputs, "params": dict(zip(names, op.params))})
    tensors = [{"index": t.index, "dtype": t.dtype, "shape": list(t.shape),
                "storage": t.storage, "offset": t.offset, "bytes": t.nbytes,
                "scale": t.scale, "zero_point": t.zero_point} for t in cap.tensors]
    return {
        "file": str(path),
        "bytes": cap.size,
        "sha256": cap.sha256,
        "checksums": status,
        "meta": cap.meta,
        "sections": {k: {"offset": o, "bytes": n} for k, (o, n) in cap.sections.items()},
        "arena_bytes": cap.arena_bytes,
        "weights_bytes": len(cap.weights),
        "ops": ops,
        "tensors": tensors,
    }


def format_summary(s):
    """Human-readable text for a :func:`summarize` dict."""
    m = s["meta"]
    lines = [f"{s['file']}: {m.get('name')} {m.get('version')} ({s['bytes']} bytes)",
             f"  checksums    {s['checksums']} (CRC-32 per section, SHA-256 {s['sha256'][:16]}…)",
             f"  source       {m.get('source_name')} sha256 {m.get('source_sha256', '')[:16]}…",
             f"  created      {m.get('created')} by {m.get('packager')}",
             f"  arena        {s['arena_bytes']} bytes ({m.get('planner')} plan)",
             f"  weights      {s['weights_bytes']} bytes"]
    if "ram_bytes" in m:
        paged = m.get("paged_tensors", [])
        lines.append(f"  RAM          {m['ram_bytes']} bytes (arena and resident weights); "
                     + (f"{len(paged)} {'filter' if len(paged) == 1 else 'filters'} paged from "
                        f"flash: tensors {', '.join(map(str, paged))}" if paged
                        else "no weights paged from flash"))
    if m.get("labels"):
        shown = ", ".join(m["labels"][:12]) + (", …" if len(m["labels"]) > 12 else "")
        lines.append(f"  labels       {len(m['labels'])}: {shown}")
    if "board" in m and "load_peak_bytes" in m:
        lines.append(f"  board        packed for {m['board']}: {m['heap_bytes']} bytes of heap "
                     f"once loaded, {m['load_peak_bytes']} while loading, with "
                     f"{m['app_reserve_bytes']} bytes left for the application")
    for kind, io in (("input", m.get("inputs", [])), ("output", m.get("outputs", []))):
        for t in io:
            lines.append(f"  {kind:<12} {t['name']} {t['dtype']}{t['shape']} "
                         f"scale={t['scale']:.7g} zero_point={t['zero_point']}")
    lines.append(f"  ops          {len(s['ops'])}")
    for op in s["ops"]:
        p = op["params"]
        keys = [k for k in ("in_h", "in_w", "in_c", "out_h", "out_w", "out_c", "k_h", "k_w",
                            "stride_h", "stride_w", "dil_h", "dil_w", "filter_h", "filter_w",
                            "depth", "size", "rows", "depth_multiplier", "act_min", "act_max",
                            "d0", "d1", "d2", "d3", "pad_value", "outer", "inner0", "inner1",
                            "inner2")
                if k in p]
        if op["op"] == "BINARY":
            keys = ["d0", "d1", "d2", "d3", "act_min", "act_max"]
        elif op["op"] == "MEAN":
            keys = ["k0", "r0", "k1", "r1", "k2"]
        detail = " ".join(f"{k}={p[k]}" for k in keys)
        if op["op"] == "BINARY" and 0 <= p["kind"] < len(_BINARY_KINDS):
            detail = f"{_BINARY_KINDS[p['kind']]} {detail}"
        lines.append(f"    {op['index']:>3} {op['op']:<18} {detail}")
    lines.append("  tensors")
    for t in s["tensors"]:
        lines.append(f"    {t['index']:>3} {t['dtype']:<7} {str(t['shape']):<18} "
                     f"{t['storage']:<7} @{t['offset']:<7} {t['bytes']} B")
    return "\n".join(lines)
