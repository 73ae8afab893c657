"""Independent schedule checker: replays a schedule document against a training graph document.

It reads only the two JSON objects (the graph file format and the schedule format of
docs/poet.md) and imports nothing else from the planner, so a bug in the formulations, the
heuristics or the step builder cannot hide itself here. It verifies, step by step: every op and
index is valid; a computation's inputs are all in RAM and its output is not already there;
"compute" is a node's first computation and "recompute" a later one; page-outs read RAM, and
page-ins read flash into RAM; frees release held tensors; RAM (static bytes included) stays
within the limit after every step. At the end: every node was computed, the time is within the
deadline (paging time counted when the document says so), flash bytes written are within the
flash limit, and the predicted energy, time, peak RAM and flash bytes equal the replay's.
"""

OPS = ("compute", "recompute", "page_out", "page_in", "free")
_REL = 1e-6


class CheckReport:
    """``ok``, the ``errors`` found, and the replay's own figures."""

    def __init__(self):
        self.errors = []
        self.energy_j = 0.0
        self.time_s = 0.0
        self.peak_ram_bytes = 0
        self.flash_bytes_written = 0

    @property
    def ok(self):
        return not self.errors

    def __repr__(self):
        return f"CheckReport(ok={self.ok}, errors={self.errors[:3]})"


def _close(a, b):
    return abs(a - b) <= _REL * max(abs(a), abs(b), 1e-12)


def check_schedule(graph_doc, schedule_doc, partial=False):
    """Replay ``schedule_doc`` on ``graph_doc``; ``partial`` checks a prefix (no end checks)."""
    report = CheckReport()
    err = report.errors.append
    if schedule_doc.get("format") != "minerva-train-schedule":
        err("not a minerva-train-schedule document")
        return report
    if schedule_doc.get("version") != 1:
        err(f"schedule version {schedule_doc.get('version')} is not 1")
        return report
    nodes = graph_doc["nodes"]
    count = len(nodes)
    inputs = [[] for _ in range(count)]
    for producer, consumer in graph_doc["edges"]:
        inputs[consumer].append(producer)
    limits = schedule_doc.get("limits", {})
    ram_limit = limits.get("ram_bytes")
    paging_time = bool(schedule_doc.get("paging_time_counts", True))
    ram = int(schedule_doc.get("static_bytes", 0))
    peak = ram
    in_ram, in_flash, computed = set(), set(), [0] * count
    for number, step in enumerate(schedule_doc.get("steps", [])):
        op, i = step.get("op"), step.get("node")
        where = f"step {number} ({op} {i})"
        if op not in OPS or not isinstance(i, int) or not 0 <= i < count:
            err(f"{where}: unknown op or node index")
            continue
        node = nodes[i]
        if op in ("compute", "recompute"):
            missing = [p for p in inputs[i] if p not in in_ram]
            if missing:
                err(f"{where}: inputs {missing} are not in RAM")
            if i in in_ram:
                err(f"{where}: its output is already in RAM")
            if (op == "compute") != (computed[i] == 0):
                err(f"{where}: 'compute' must be the first computation, 'recompute' a later one")
            computed[i] += 1
            in_ram.add(i)
            ram += node["out_bytes"]
            report.energy_j += node["compute_j"]
            report.time_s += node["compute_s"]
        elif op == "page_out":
            if i not in in_ram:
                err(f"{where}: the tensor is not in RAM")
            if i in in_flash:
                err(f"{where}: the tensor is already in flash")
            in_flash.add(i)
            report.flash_bytes_written += node["out_bytes"]
            report.energy_j += node.get("pageout_j", 0.0)
            report.time_s += node.get("pageout_s", 0.0) if paging_time else 0.0
        elif op == "page_in":
            if i not in in_flash:
                err(f"{where}: the tensor is not in flash")
            if i in in_ram:
                err(f"{where}: the tensor is already in RAM")
            in_ram.add(i)
            ram += node["out_bytes"]
            report.energy_j += node.get("pagein_j", 0.0)
            report.time_s += node.get("pagein_s", 0.0) if paging_time else 0.0
        else:
            if i not in in_ram:
                err(f"{where}: freeing a tensor that is not in RAM")
            else:
                in_ram.discard(i)
                ram -= node["out_bytes"]
        peak = max(peak, ram)
        if ram_limit is not None and ram > ram_limit:
            err(f"{where}: RAM {ram} bytes exceeds the limit {ram_limit}")
    report.peak_ram_bytes = peak
    if partial:
        return report
    never = [i for i in range(count) if not computed[i]]
    if never:
        err(f"nodes never computed: {never[:10]}")
    deadline = limits.get("deadline_s")
    if deadline is not None and report.time_s > deadline * (1 + _REL):
        err(f"time {report.time_s:.6g} s exceeds the deadline {deadline:.6g} s")
    flash_limit = limits.get("flash_bytes")
    if flash_limit is not None and report.flash_bytes_written > flash_limit:
        err(f"{report.flash_bytes_written} bytes written to flash exceed {flash_limit}")
    predicted = schedule_doc.get("predicted", {})
    for key, value in (("energy_j", report.energy_j), ("time_s", report.time_s),
                       ("peak_ram_bytes", peak),
                       ("flash_bytes_written", report.flash_bytes_written)):
        if key not in predicted or not _close(float(predicted[key]), float(value)):
            err(f"predicted {key} {predicted.get(key)} but the replay gives {value}")
    return report
