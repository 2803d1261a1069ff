"""A baseline with a NaN or Infinity anywhere is refused naming where (it would pass every row), and a
baseline is never written with such a token (issue #22). Works on the committed CI baseline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from unicon_bench import check as gate
from unicon_bench.cli import app

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "baselines" / "ci.json"
FIXTURE = ROOT / "tests" / "fixtures" / "result_schema1_ct_tasks.json"


def _spoiled(tmp_path: Path, spoil) -> Path:
    data = json.loads(COMMITTED.read_text(encoding="utf-8"))
    spoil(data)
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(data), encoding="utf-8")  # Python writes NaN / Infinity tokens
    assert "NaN" in path.read_text() or "Infinity" in path.read_text()
    return path


def _entry(data, k=2):
    return data["entries"][k]


CASES = {
    "mean": (lambda d: _entry(d)["rows"]["final_average"].__setitem__("mean", float("nan")), "entry {s} {m}"),
    "half-width": (lambda d: _entry(d)["rows"]["bwt"].__setitem__("ci_half_width", float("inf")), "entry {s} {m}"),
    "seed value": (lambda d: _entry(d)["rows"]["final_average"]["values"].__setitem__("1", float("-inf")), "entry {s} {m}"),
    "tolerance": (lambda d: d["tolerances"].__setitem__("dice", float("nan")), "tolerances.dice"),
    "confidence": (lambda d: d.__setitem__("confidence", float("nan")), "confidence"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_non_finite_number_anywhere_is_refused_naming_it(tmp_path, case):
    spoil, where = CASES[case]
    path = _spoiled(tmp_path, spoil)
    entry = _entry(json.loads(COMMITTED.read_text(encoding="utf-8")))
    where = where.format(s=entry["scenario"], m=entry["method"])
    with pytest.raises(gate.CheckError, match="not a finite number") as err:
        gate.load_baseline(path)
    assert where in str(err.value)
    out = CliRunner().invoke(app, ["check", str(tmp_path), "--baseline", str(path)])
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.exit_code == 2 and len(lines) == 1 and where in lines[0] and "Traceback" not in out.output


def test_a_negative_tolerance_is_refused(tmp_path):
    data = json.loads(COMMITTED.read_text(encoding="utf-8"))
    data["tolerances"]["dice"] = -0.05  # every drop would fail, every improvement pass as "ok"
    path = tmp_path / "b.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(gate.CheckError, match="tolerances.dice"):
        gate.load_baseline(path)


def test_update_baseline_writes_standard_json(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / "r.json").write_text(FIXTURE.read_text())
    target = tmp_path / "new.json"
    out = CliRunner().invoke(app, ["check", str(results), "--baseline", str(target), "--update-baseline"])
    assert out.exit_code == 0, out.output
    text = target.read_text()
    json.loads(text, parse_constant=lambda token: pytest.fail(f"{token} written into the baseline"))
    gate.load_baseline(target)


def test_the_writer_refuses_a_non_finite_value(tmp_path):
    baseline = gate.load_baseline(COMMITTED)
    baseline.entries[0].rows["final_average"].__dict__["mean"] = float("nan")  # past validation, as a bug would
    with pytest.raises(ValueError, match="not JSON compliant"):
        gate.write_baseline(baseline, tmp_path / "b.json")
    assert not (tmp_path / "b.json").exists()


def test_check_skips_a_result_whose_summary_contradicts_its_matrix(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    data = json.loads(FIXTURE.read_text())
    (results / "good.json").write_text(json.dumps(data))
    base = tmp_path / "base.json"
    assert CliRunner().invoke(app, ["check", str(results), "--baseline", str(base), "--update-baseline"]).exit_code == 0
    liar = dict(data, run_id="liar", seed=1, summary={**data["summary"], "final_average": 0.99})
    (results / "liar.json").write_text(json.dumps(liar))
    out = CliRunner().invoke(app, ["check", str(results), "--baseline", str(base)])
    assert out.exit_code == 0, out.output  # the baseline's rows come from the valid run, which is unchanged
    notes = [line for line in out.stderr.splitlines() if line.startswith("note: skipped invalid result")]
    assert len(notes) == 1 and "liar.json" in notes[0] and "contradicts the matrix" in notes[0]
    assert out.stderr.strip().splitlines()[-1].startswith("PASS")
    # a baseline is never built from a folder holding an invalid result
    out = CliRunner().invoke(app, ["check", str(results), "--baseline", str(tmp_path / "b2.json"), "--update-baseline"])
    assert out.exit_code == 2 and "contradicts the matrix" in out.stderr
