"""Plain-text output of ``minerva plan``, and writing the schedule into a capsule."""

from pathlib import Path

from .schedule import schedule_section

_CORE_SECTIONS = ("META", "GRAPH", "WEIGHTS")


def format_result(result, budget, deadline=None):
    """The comparison table and the solver line, as text."""
    rows = result.table()
    best = rows[0]["energy_j"]
    lines = [f"{'schedule':<12} {'fits':<4} {'energy J':>11} {'vs plan':>8} {'time s':>9} "
             f"{'peak RAM':>9} {'flash W':>8} {'remat':>5} {'pg-in':>5}  note"]
    for row in rows:
        if row["energy_j"] is None:
            lines.append(f"{row['schedule']:<12} {'no':<4} {'-':>11} {'-':>8} {'-':>9} "
                         f"{'-':>9} {'-':>8} {'-':>5} {'-':>5}  {row['note']}")
            continue
        ratio = row["energy_j"] / best if best else float("nan")
        lines.append(f"{row['schedule']:<12} {'yes' if row['feasible'] else 'no':<4} "
                     f"{row['energy_j']:>11.5g} {ratio:>7.3f}x {row['time_s']:>9.4g} "
                     f"{row['peak_ram_bytes']:>9} {row['flash_bytes_written']:>8} "
                     f"{row['recomputations']:>5} {row['page_ins']:>5}  {row['note']}")
    solve = result.solve
    gap = "?" if solve["gap"] is None else f"{100 * solve['gap']:.3f}%"
    start = solve["warm_start_j"]
    start = "no warm start" if start is None else f"warm start {start:.5g} J"
    size = (f"{solve['variables']} variables, {solve['rows']} rows" if not solve.get("presolved")
            else f"no MILP: {solve['presolved']}")
    lines.append(f"solver {solve['solver']}: {solve['status']} in {solve['seconds']:.2f} s, "
                 f"proven gap {gap}, {size}; {start}")
    limit = f"{budget} bytes RAM" + (f", deadline {deadline:.6g} s" if deadline else "")
    steps = len(result.best.document["steps"])
    lines.append(f"verified: the independent checker replayed {steps} steps within {limit}: "
                 "dependencies, RAM at every step, deadline and energy OK")
    return "\n".join(lines)


def capsule_with_schedule(model_path, document):
    """Capsule bytes of ``model_path`` (.tflite or capsule) with a TRAIN_SCHEDULE section."""
    from ..capsule.container import SECTION_TYPES, encode_capsule, read_capsule

    section = ("TRAIN_SCHEDULE", schedule_section(document), False)
    if Path(model_path).suffix == ".tflite":
        from ..capsule.pack import pack_tflite

        return pack_tflite(str(model_path), extra_sections=[section])
    capsule = read_capsule(str(model_path))
    kept = []
    for name, (offset, length) in capsule.sections.items():
        if name != "TRAIN_SCHEDULE" and name in SECTION_TYPES:
            kept.append((name, capsule.raw[offset:offset + length], name in _CORE_SECTIONS))
    return encode_capsule(kept + [section])
