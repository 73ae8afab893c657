"""Stage plan -> step list -> the versioned schedule JSON the device trainer executes.

Steps are ``{"stage": t, "op": op, "node": i}`` with op one of compute, recompute, page_out,
page_in, free (docs/poet.md). The two cost models order a stage differently, exactly as their
formulations count memory:

* ``minerva``: page-ins first, then the computations in node order; a tensor is paged out right
  after it is computed and freed as soon as nothing later in the stage needs it and it is not
  kept into the next stage.
* ``poet``: page-outs of kept tensors first, then the computations, freeing an input after its
  last reader in the stage; at the end of the stage, what is not kept is freed and the page-ins
  for the next stage are read.
"""

import hashlib
import json

SCHEDULE_FORMAT = "minerva-train-schedule"
SCHEDULE_VERSION = 1
MODELS = ("minerva", "poet")


def plan_steps(graph, plan, model="minerva"):
    """The step list of ``plan`` (a :class:`StagePlan`) under cost model ``model``."""
    steps = []
    present = set()
    for t in range(len(graph)):
        order = plan.compute[t]
        keep = plan.retain[t + 1]
        # The last position in the stage that reads each tensor (the planners call this for
        # thousands of candidate plans, so "is x read later" must not rescan the stage).
        last_read = {}
        for position, k in enumerate(order):
            for p in graph.preds[k]:
                last_read[p] = position

        def needed(x, position, keep=keep, last_read=last_read):
            return x in keep or last_read.get(x, -1) >= position

        if model == "poet":
            steps += [(t, "page_out", i) for i in sorted(plan.page_out[t])]
        else:
            for i in sorted(plan.page_in[t]):
                steps.append((t, "page_in", i))
                present.add(i)
            for x in sorted(present):
                if not needed(x, 0):
                    steps.append((t, "free", x))
                    present.discard(x)
        # Of what is present, only the tensors read since the last check (and the new one)
        # can have become free: checking just those gives the same steps as checking all.
        unchecked = set()
        for position, k in enumerate(order):
            unchecked.update(graph.preds[k])
            if k != t and k in present:
                # POET's formulation lets a held tensor be "recomputed" (it counts the RAM
                # twice); the tensor is already there, so the step would only cost energy.
                continue
            steps.append((t, "compute" if k == t else "recompute", k))
            present.add(k)
            if model != "poet" and k in plan.page_out[t]:
                steps.append((t, "page_out", k))
            candidates = sorted(unchecked | {k}) if model != "poet" else sorted(graph.preds[k])
            unchecked.clear()
            for x in candidates:
                if x in present and not needed(x, position + 1):
                    steps.append((t, "free", x))
                    present.discard(x)
        for x in sorted(present - keep):
            steps.append((t, "free", x))
            present.discard(x)
        if model == "poet":
            # A page-in that is not kept, or of a tensor still held, changes nothing.
            for i in sorted(plan.page_in[t] & keep - present):
                steps.append((t, "page_in", i))
                present.add(i)
    return [{"stage": t, "op": op, "node": i} for t, op, i in steps]


def simulate(graph, steps, model="minerva"):
    """Energy, time, peak RAM, flash bytes written and the RAM after every step."""
    nodes = graph.nodes
    static = graph.static_bytes if model != "poet" else 0
    ram, energy, seconds, written = static, 0.0, 0.0, 0
    timeline, counts = [], {"recompute": 0, "page_in": 0, "page_out": 0}
    for step in steps:
        node, op = nodes[step["node"]], step["op"]
        if op in ("compute", "recompute"):
            ram += node.out_bytes
            energy += node.compute_j
            seconds += node.compute_s
        elif op == "page_in":
            ram += node.out_bytes
            energy += node.pagein_j
            seconds += node.pagein_s if model != "poet" else 0.0
        elif op == "page_out":
            energy += node.pageout_j
            seconds += node.pageout_s if model != "poet" else 0.0
            written += node.out_bytes
        elif op == "free":
            ram -= node.out_bytes
        counts[op] = counts.get(op, 0) + 1
        timeline.append(ram)
    return {"energy_j": energy, "time_s": seconds, "peak_ram_bytes": max(timeline, default=ram),
            "flash_bytes_written": written, "recomputations": counts["recompute"],
            "page_ins": counts["page_in"], "page_outs": counts["page_out"],
            "ram_timeline": timeline}


def graph_digest(graph):
    text = json.dumps(graph.to_json(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def schedule_json(graph, steps, model, limits, solver=None, name="poet"):
    """The versioned schedule document (docs/poet.md) with its predicted figures."""
    predicted = simulate(graph, steps, model)
    predicted.pop("ram_timeline")
    return {"format": SCHEDULE_FORMAT, "version": SCHEDULE_VERSION, "name": name,
            "graph": graph.name, "graph_sha256": graph_digest(graph), "cost_model": model,
            "static_bytes": graph.static_bytes if model != "poet" else 0,
            "paging_time_counts": model != "poet",
            "limits": dict(limits),
            "tensors": [node.name for node in graph.nodes],
            "steps": steps, "predicted": predicted, "solver": solver or {}}


def schedule_section(document):
    """The schedule as the bytes of a capsule TRAIN_SCHEDULE section."""
    return json.dumps(document, separators=(",", ":")).encode()
