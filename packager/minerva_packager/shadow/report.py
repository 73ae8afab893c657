"""What ``minerva shadow report`` makes of a board's shadow test: an HTML page with plots.

:func:`parse_pull` reads the lines ``rt.report()`` prints on the board (STATUS, COUNTS, IO and
one LOG line per disagreement); :func:`write_report` writes the page, its PNG plots and,
optionally, the disagreeing inputs as .npy files with an index, for a person to label.
"""

import html
import json
import math
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..errors import PackagerError

PREFIXES = ("STATUS", "COUNTS", "IO", "LOG")
MAX_INPUT_PLOTS = 32
RECENT_EVENTS = 10
# The board's latency histogram: bin 0 is under 128 us, bin k holds [2^(k-1), 2^k) x 128 us.
LATENCY_UNIT_US = 128
NUMPY_DTYPES = {"int8": "<i1", "uint8": "<u1", "int16": "<i2", "int32": "<i4",
                "float32": "<f4"}


def parse_pull(lines):
    """The board's report lines -> {"status", "counts", "io", "log"}; LOG hex decoded."""
    pull = {"status": None, "counts": None, "io": None, "log": []}
    for line in lines:
        prefix, _, payload = line.strip().partition(" ")
        if prefix not in PREFIXES:
            continue
        try:
            value = json.loads(payload)
        except ValueError:
            raise PackagerError(f"the board's {prefix} line is not JSON: {payload[:60]!r}",
                                "pull the report again; the serial line may have lost bytes")
        if prefix == "LOG":
            pull["log"].append(_decode_record(value))
        else:
            pull[prefix.lower()] = value
    if not isinstance(pull["status"], dict):
        raise PackagerError("the board's report has no STATUS line",
                            "check that the board runs minerva.Runtime and that rt.report() "
                            "printed its lines")
    return pull


def _decode_record(record):
    decoded = dict(record)
    for key in ("active", "candidate", "input"):
        decoded[key] = bytes.fromhex(record.get(key) or "")
    return decoded


def wilson(agree, n, z):
    """Wilson score interval (lo, hi) of agree/n, the board's own formula
    (minerva.shadow.wilson), point by point over arrays."""
    from minerva.shadow import wilson as board_wilson

    scalar = np.ndim(agree) == 0
    pairs = np.array([board_wilson(int(a), int(k), z)
                      for a, k in zip(np.atleast_1d(agree), np.atleast_1d(n))]).reshape(-1, 2)
    if scalar:
        return float(pairs[0, 0]), float(pairs[0, 1])
    return pairs[:, 0], pairs[:, 1]


def confusion_summary(counts):
    """The plotted confusion matrix and its totals, or None when the board kept none."""
    if not counts or not counts.get("confusion"):
        return None
    matrix = np.asarray(counts["confusion"], dtype=np.int64)
    same = int(np.trace(matrix))
    return {"matrix": matrix, "total": int(matrix.sum()), "agree": same,
            "disagree": int(matrix.sum()) - same}


def latency_edges_ms(bins):
    """Bin edges in ms of a latency histogram of ``bins`` bins (the last bin is open-ended)."""
    return np.array([0] + [LATENCY_UNIT_US << k for k in range(bins)]) / 1000.0


def input_array(data, spec):
    """A record's raw input bytes as an array of the spec's dtype, in its shape if it fits."""
    dtype = np.dtype(NUMPY_DTYPES.get(spec["dtype"], "<i1"))
    values = np.frombuffer(data[:len(data) - len(data) % dtype.itemsize], dtype)
    if values.size == math.prod(spec["shape"]):
        return values.reshape(spec["shape"])
    return values


def _dequantize(values, spec):
    if spec["dtype"] == "float32" or not spec.get("scale"):
        return values.astype(float)
    return (values.astype(float) - spec["zero_point"]) * spec["scale"]


def _image_layout(shape):
    # [1, H, W, C] is an image; [1, N] is one when N is a perfect square (e.g. 8x8 digits).
    if len(shape) == 4 and shape[0] == 1:
        return shape[1], shape[2], shape[3]
    if len(shape) == 2 and shape[0] == 1 and math.isqrt(shape[1]) ** 2 == shape[1] > 1:
        side = math.isqrt(shape[1])
        return side, side, 1
    return None


def _save(fig, path, plots):
    FigureCanvasAgg(fig)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plots.append(path)
    return path.name


def _plot_agreement(counts, policy, path, plots):
    history = np.asarray(counts["history"], dtype=float).reshape(-1, 2)
    n, agree = history[:, 0], history[:, 1]
    lo, hi = wilson(agree, n, policy["z"])
    fig = Figure(figsize=(7, 3.5))
    ax = fig.add_subplot()
    ax.fill_between(n, lo, hi, alpha=0.25, label="Wilson interval")
    ax.plot(n, agree / n, marker=".", label="agreement so far")
    ax.axhline(policy["promote_at"], color="green", linestyle="--",
               label="promote at %.1f%%" % (100 * policy["promote_at"]))
    bottom = min(lo.min(), policy["promote_at"], 0.5) - 0.02
    ax.set(xlabel="inputs compared", ylabel="agreement", ylim=(bottom, 1.01))
    ax.legend(loc="lower right")
    return _save(fig, path, plots)


def _plot_confusion(summary, path, plots):
    matrix = summary["matrix"]
    size = max(4.0, 0.45 * len(matrix) + 1.5)
    fig = Figure(figsize=(size + 1, size))
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax)
    for (row, col), value in np.ndenumerate(matrix):
        if value:
            ax.text(col, row, str(value), ha="center", va="center", fontsize=7,
                    color="white" if value > matrix.max() / 2 else "black")
    ax.set(xlabel="candidate's top-1 class", ylabel="active's top-1 class",
           xticks=range(len(matrix)), yticks=range(len(matrix)))
    return _save(fig, path, plots)


def _plot_latency(counts, path, plots):
    lat = {who: np.asarray(counts["lat_" + who]) for who in ("active", "candidate")}
    used = np.flatnonzero(lat["active"] + lat["candidate"])
    first, last = (int(used.min()), int(used.max())) if used.size else (0, 0)
    edges = latency_edges_ms(len(lat["active"]))[first:last + 2]
    fig = Figure(figsize=(7, 3.5))
    ax = fig.add_subplot()
    for (who, hist), colour in zip(lat.items(), ("tab:blue", "tab:orange")):
        mean_ms = counts["us_" + who] / counts["n"] / 1000.0
        ax.stairs(hist[first:last + 1], edges, color=colour, linewidth=2,
                  label="%s (mean %.3f ms)" % (who, mean_ms))
        ax.axvline(mean_ms, color=colour, linestyle=":")
    # Power-of-two bins read best on a log axis; bin 0 starts at 0, which only symlog shows.
    if first == 0:
        ax.set_xscale("symlog", linthresh=LATENCY_UNIT_US / 1000.0, linscale=math.log10(2))
    else:
        ax.set_xscale("log", base=2)
    ax.set_xticks(edges, ["%.3g" % e for e in edges], minor=False, rotation=45)
    ax.minorticks_off()
    ax.set(xlabel="latency (ms)", ylabel="inferences", xlim=(edges[0], edges[-1]))
    ax.legend()
    return _save(fig, path, plots)


def _plot_confidence(counts, path, plots):
    fig = Figure(figsize=(7, 3.5))
    ax = fig.add_subplot()
    edges = np.linspace(0.0, 1.0, len(counts["conf_active"]) + 1)
    for who in ("active", "candidate"):
        mean = counts["sum_conf_" + who] / counts["n"]
        ax.stairs(counts["conf_" + who], edges, linewidth=2,
                  label="%s (mean %.3f)" % (who, mean))
    ax.set(xlabel="top-1 probability", ylabel="inferences")
    ax.legend(loc="upper left")
    return _save(fig, path, plots)


def _plot_inputs(records, spec, path, plots):
    shown = records[-MAX_INPUT_PLOTS:]
    cols = min(8, len(shown))
    rows = -(-len(shown) // cols)
    fig = Figure(figsize=(1.8 * cols, 2.0 * rows))
    layout = _image_layout(spec["shape"])
    for k, rec in enumerate(shown):
        ax = fig.add_subplot(rows, cols, k + 1)
        values = _dequantize(input_array(rec["input"], spec), spec)
        if layout and values.size == math.prod(layout):
            image = values.reshape(layout)
            if layout[2] == 3:
                span = np.ptp(image) or 1.0
                ax.imshow((image - image.min()) / span)
            else:
                ax.imshow(image[:, :, 0], cmap="gray")
            ax.set(xticks=[], yticks=[])
        else:
            ax.plot(values.ravel(), linewidth=0.8)
            ax.tick_params(labelsize=6)
        active_class, candidate_class = rec.get("classes", [-1, -1])
        title = "#%d" % rec["seq"]
        if active_class >= 0:
            title += ": %d vs %d" % (active_class, candidate_class)
        ax.set_title(title, fontsize=8)
    return _save(fig, path, plots)


def export_inputs(records, spec, export_dir):
    """Each record's input as disagreement_<seq>.npy plus index.json; the .npy paths."""
    export_dir = Path(export_dir)
    export_dir.mkdir(parents=True, exist_ok=True)
    index, written = [], []
    for rec in records:
        name = None
        if rec["input"] and spec is not None:
            name = "disagreement_%d.npy" % rec["seq"]
            np.save(export_dir / name, input_array(rec["input"], spec))
            written.append(export_dir / name)
        active_class, candidate_class = rec.get("classes", [-1, -1])
        index.append({"seq": rec["seq"], "time": rec.get("time"), "digest": rec.get("digest"),
                      "active_class": active_class, "candidate_class": candidate_class,
                      "file": name})
    (export_dir / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    return written


def _slot_text(info):
    if not info:
        return "none"
    return "%s %s (sha256 %s…)" % (info.get("name", "?"), info.get("version", "?"),
                                   str(info.get("sha256", ""))[:12])


def _summary_rows(status):
    shadow, policy = status.get("shadow") or {}, status.get("policy") or {}
    rows = [(slot, _slot_text(status.get(slot))) for slot in ("active", "candidate", "previous")]
    if status.get("candidate_load_error"):
        rows.append(("candidate not loaded", status["candidate_load_error"]))
    if shadow:
        coverage = math.erf(policy.get("z", 1.96) / math.sqrt(2))
        lo, hi = shadow["wilson"]
        agreement = shadow["agreement"]
        rows += [("samples", "%d compared, %d skipped" % (shadow["samples"],
                                                            shadow.get("skipped", 0))),
                 ("metric", shadow["metric"]),
                 ("agreement", "n/a" if agreement is None else "%.1f%% (%d of %d)" % (
                     100 * agreement, shadow["agree"], shadow["samples"])),
                 ("Wilson interval", "%.1f%% to %.1f%% (%.0f%% confidence)"
                  % (100 * lo, 100 * hi, 100 * coverage)),
                 ("decision", "%s: %s" % (shadow["decision"], shadow["reason"])),
                 ("candidate errors", str(shadow["errors"])),
                 ("mean latency", "active %d us, candidate %d us" % tuple(shadow["mean_us"]))]
    trial = status.get("trial")
    rows.append(("trial", "none" if not trial else "%d of %d healthy inferences needed" % (
        trial.get("healthy", 0), trial.get("needed", 0))))
    rejected = status.get("rejected") or []
    rows.append(("rejected files", "; ".join("%s: %s" % (r.get("file"), r.get("reason"))
                                             for r in rejected) or "none"))
    events = (status.get("events") or [])[-RECENT_EVENTS:]
    rows.append(("recent events", "\n".join("#%s %s" % (e[0], e[2]) for e in events)
                 or "none"))
    return rows


def write_report(pull, html_path, export_dir=None):
    """Write the HTML report and its plots; {"html", "plots", "exported"} paths."""
    html_path = Path(html_path)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    status, counts, io, records = pull["status"], pull.get("counts"), pull.get("io") or {}, \
        pull.get("log") or []
    input_spec = (io.get("inputs") or [None])[0]
    plots, body = [], []
    classifier = (status.get("shadow") or {}).get("metric") == "top1"

    def png(name):
        return html_path.with_name("%s_%s.png" % (html_path.stem, name))

    def section(title, image, caption):
        body.append("<h2>%s</h2><p>%s</p><img src=\"%s\" alt=\"%s\">"
                    % (title, caption, html.escape(image), title))

    table = "".join("<tr><th>%s</th><td>%s</td></tr>" % (html.escape(key), html.escape(value))
                    for key, value in _summary_rows(status))
    body.append("<h2>Summary</h2><table>%s</table>" % table)
    if not status.get("candidate") or not counts or not counts.get("n"):
        body.append("<p>Nothing to plot: %s.</p>" % (
            "no candidate is being shadow-tested" if not status.get("candidate")
            else "the candidate has not been compared on any input yet"))
    else:
        policy = status["policy"]
        if counts.get("history"):
            section("Agreement over time", _plot_agreement(counts, policy, png("agreement"),
                                                           plots),
                    "Cumulative agreement with its Wilson interval; the dashed line is the "
                    "agreement the policy needs to promote.")
        summary = confusion_summary(counts)
        if classifier and summary:
            section("Active versus candidate", _plot_confusion(summary, png("confusion"), plots),
                    "Top-1 classes of %d inputs: %d on the diagonal (agree), %d off it."
                    % (summary["total"], summary["agree"], summary["disagree"]))
        section("Latency", _plot_latency(counts, png("latency"), plots),
                "Inferences per latency bin (bin edges at powers of two of 128 us; the last "
                "bin is open-ended); dotted lines are the means.")
        if classifier:
            section("Top-1 confidence", _plot_confidence(counts, png("confidence"), plots),
                    "Distribution of each model's top-1 probability.")
        else:
            body.append("<p>Not a classifier: the largest difference between the two "
                        "outputs was %g.</p>" % counts.get("max_diff", 0.0))
    body.append("<h2>Disagreements</h2>")
    if not records:
        body.append("<p>No disagreement records were pulled.</p>")
    else:
        body.append("<p>%d disagreement records pulled (seq %d to %d).</p>"
                    % (len(records), records[0]["seq"], records[-1]["seq"]))
        with_input = [rec for rec in records if rec["input"]]
        if with_input and input_spec:
            section("Disagreeing inputs", _plot_inputs(with_input, input_spec, png("inputs"),
                                                       plots),
                    "The last %d of %d records that kept their input, dequantized."
                    % (min(len(with_input), MAX_INPUT_PLOTS), len(with_input)))
        else:
            body.append("<p>The records carry no inputs (the policy's log_inputs is off or "
                        "the inputs exceed log_input_bytes).</p>")
    exported = export_inputs(records, input_spec, export_dir) if export_dir else []
    html_path.write_text(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Minerva shadow report"
        "</title><style>body{font-family:sans-serif;max-width:60em}th{text-align:left;"
        "vertical-align:top;padding-right:1em}td{white-space:pre-wrap}img{max-width:100%}"
        "</style></head><body><h1>Minerva shadow report</h1>\n" + "\n".join(body)
        + "\n</body></html>\n", encoding="utf-8")
    return {"html": html_path, "plots": plots, "exported": exported}
