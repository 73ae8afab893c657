"""`minerva shadow report` on a real pull: the device runtime (device/minerva on CPython)
shadow-tests a second digits model on the held-out set, and its rt.report() lines are parsed,
plotted and exported."""

import copy
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import minerva
import minerva.runtime
from minerva.shadow import wilson as board_wilson
from minerva_packager.capsule.pack import pack_tflite
from minerva_packager.errors import PackagerError
from minerva_packager.examples import digits
from minerva_packager.shadow.report import (
    confusion_summary,
    parse_pull,
    wilson,
    write_report,
)

ROOT = Path(__file__).resolve().parents[1]
ACTIVE_CAPSULE = ROOT / "capsules" / "digits.cap"
HELDOUT_X = ROOT / "capsules" / "digits_heldout_x.npy"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def shadow_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("shadow")
    x, y, _, _ = digits.load_split()
    tflite = root / "v2.tflite"
    tflite.write_bytes(digits.to_tflite(digits.train(x, y, seed=5, epochs=2), x))
    candidate = root / "v2.cap"
    candidate.write_bytes(pack_tflite(tflite, name="digits", version="2.0.0"))
    rows = np.load(HELDOUT_X)
    board = root / "board"
    (board / "inbox").mkdir(parents=True)
    shutil.copy(ACTIVE_CAPSULE, board / "inbox" / "digits.cap")
    rt = minerva.Runtime(str(board), kernels="numpy")
    shutil.copy(candidate, board / "inbox" / "v2.cap")
    assert rt.poll() == ["v2.cap"]
    for row in rows:
        rt.infer(row.tobytes())
    rt.flush()
    lines = []
    rt.report(out=lines.append)
    rt.close()
    return {"lines": lines, "rows": rows, "candidate": candidate}


@pytest.fixture(scope="module")
def host_answers(shadow_run):
    # Both capsules run on the host, outside the runtime: the truth the report is checked by.
    answers = {}
    for who, path in (("active", ACTIVE_CAPSULE), ("candidate", shadow_run["candidate"])):
        model = minerva.load(str(path), kernels="numpy")
        answers[who] = [bytes(model.run(row.tobytes())) for row in shadow_run["rows"]]
        model.close()
    classes = {who: np.array([np.argmax(np.frombuffer(a, np.int8)) for a in outs])
               for who, outs in answers.items()}
    return {"outputs": answers, "classes": classes,
            "disagree": np.flatnonzero(classes["active"] != classes["candidate"])}


@pytest.fixture(scope="module")
def pull(shadow_run):
    return parse_pull(shadow_run["lines"])


@pytest.fixture(scope="module")
def report(pull, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    return write_report(pull, out / "report.html", out / "export")


def test_parse_pull_round_trips_the_disagreement_records(pull, shadow_run, host_answers):
    rows, disagree = shadow_run["rows"], host_answers["disagree"]
    assert pull["counts"]["n"] == len(rows)
    assert pull["counts"]["agree"] == len(rows) - len(disagree)
    # The ring log keeps the newest log_records disagreements.
    kept = disagree[-pull["status"]["policy"]["log_records"]:]
    assert len(kept) > 0
    assert len(pull["log"]) == len(kept)
    for record, index in zip(pull["log"], kept):
        assert record["input"] == rows[index].tobytes()
        assert record["active"] == host_answers["outputs"]["active"][index]
        assert record["candidate"] == host_answers["outputs"]["candidate"][index]
        assert record["classes"] == [host_answers["classes"]["active"][index],
                                     host_answers["classes"]["candidate"][index]]
        assert record["digest"] == hashlib.sha256(rows[index].tobytes()).digest()[:8].hex()


def test_parse_pull_ignores_other_board_output(pull, shadow_run):
    noisy = ["MicroPython v1.24 on 2025-01-01", ">>> rt.report()", "", "LOGGING started"]
    for line in shadow_run["lines"]:
        noisy += [line + "\r\n", "gc: 1234 free"]
    assert parse_pull(noisy) == pull


def test_pull_without_status_raises(shadow_run):
    without_status = [line for line in shadow_run["lines"] if not line.startswith("STATUS")]
    with pytest.raises(PackagerError, match="STATUS"):
        parse_pull(without_status)


def test_wilson_band_matches_the_board(pull):
    shadow, policy, counts = pull["status"]["shadow"], pull["status"]["policy"], pull["counts"]
    lo, hi = wilson(counts["agree"], counts["n"], policy["z"])
    assert (float(lo), float(hi)) == pytest.approx(shadow["wilson"])
    history = np.array(counts["history"])
    los, his = wilson(history[:, 1], history[:, 0], policy["z"])
    for (n, agree), low, high in zip(history, los, his):
        assert (low, high) == pytest.approx(board_wilson(agree, n, policy["z"]))


def test_confusion_summary_matches_the_host(pull, host_answers):
    summary = confusion_summary(pull["counts"])
    counts = pull["counts"]
    assert summary["total"] == counts["n"]
    assert summary["disagree"] == counts["n"] - counts["agree"]
    expected = np.zeros_like(summary["matrix"])
    np.add.at(expected, (host_answers["classes"]["active"],
                         host_answers["classes"]["candidate"]), 1)
    assert np.array_equal(summary["matrix"], expected)


def test_report_html_and_plots(report, pull):
    page = report["html"].read_text()
    counts, shadow = pull["counts"], pull["status"]["shadow"]
    assert shadow["decision"] in page
    assert "%.1f%%" % (100 * counts["agree"] / counts["n"]) in page
    names = {path.stem.split("_", 1)[1] for path in report["plots"]}
    assert names == {"agreement", "confusion", "latency", "confidence", "inputs"}
    for path in report["plots"]:
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000, path
        assert path.parent == report["html"].parent
        assert 'src="%s"' % path.name in page


def test_export_writes_one_labelled_input_per_record(report, pull, shadow_run):
    by_digest = {hashlib.sha256(row.tobytes()).digest()[:8].hex(): row
                 for row in shadow_run["rows"]}
    assert len(report["exported"]) == len(pull["log"])
    for path, record in zip(report["exported"], pull["log"]):
        assert path.name == "disagreement_%d.npy" % record["seq"]
        saved = np.load(path)
        assert saved.dtype == np.int8 and saved.shape == (1, 64)
        assert np.array_equal(saved[0], by_digest[record["digest"]])
    index = json.loads((report["exported"][0].parent / "index.json").read_text())
    assert [entry["seq"] for entry in index] == [record["seq"] for record in pull["log"]]
    assert [[e["active_class"], e["candidate_class"]] for e in index] == \
        [record["classes"] for record in pull["log"]]
    assert all(entry["file"] == "disagreement_%d.npy" % entry["seq"] for entry in index)


def test_status_only_pull(tmp_path):
    board = tmp_path / "board"
    (board / "inbox").mkdir(parents=True)
    shutil.copy(ACTIVE_CAPSULE, board / "inbox" / "digits.cap")
    rt = minerva.Runtime(str(board), kernels="numpy")
    lines = []
    rt.report(out=lines.append)
    rt.close()
    pull = parse_pull(lines)
    assert pull["counts"] is None and pull["log"] == []
    result = write_report(pull, tmp_path / "out" / "status.html", tmp_path / "export")
    page = result["html"].read_text()
    assert result["plots"] == [] and result["exported"] == []
    assert "Nothing to plot" in page and "No disagreement records" in page
    assert json.loads((tmp_path / "export" / "index.json").read_text()) == []


def test_non_classifier_pull_without_inputs(pull, tmp_path):
    crafted = copy.deepcopy(pull)
    crafted["status"]["shadow"]["metric"] = "max_abs"
    crafted["counts"]["max_diff"] = 0.4375
    del crafted["counts"]["confusion"]
    for record in crafted["log"]:
        record["classes"] = [-1, -1]
        record["input"] = b""
    result = write_report(crafted, tmp_path / "regression.html", tmp_path / "export")
    page = result["html"].read_text()
    assert {path.stem for path in result["plots"]} == {"regression_agreement",
                                                       "regression_latency"}
    assert "0.4375" in page and "carry no inputs" in page
    assert result["exported"] == []
    index = json.loads((tmp_path / "export" / "index.json").read_text())
    assert len(index) == len(crafted["log"]) and all(e["file"] is None for e in index)


def test_board_text_is_escaped(pull, tmp_path):
    crafted = copy.deepcopy(pull)
    crafted["status"]["events"].append([99, 0, "<script>alert(1)</script>"])
    crafted["status"]["candidate"]["name"] = "a&b"
    crafted["log"] = []
    page = write_report(crafted, tmp_path / "r.html")["html"].read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page and "a&amp;b" in page
    assert "No disagreement records" in page


@pytest.mark.parametrize("shape", [[1, 8, 8, 1], [1, 2, 32], [1, 8, 8]])
def test_inputs_of_other_layouts_are_drawn(pull, tmp_path, shape):
    crafted = copy.deepcopy(pull)
    crafted["io"]["inputs"][0]["shape"] = shape
    result = write_report(crafted, tmp_path / "r.html", tmp_path / "export")
    assert (tmp_path / "r_inputs.png").read_bytes().startswith(PNG_MAGIC)
    assert all(np.load(path).shape == tuple(shape) for path in result["exported"])
