"""A result file holds only what its run computed: finite numbers, costs that can be, and a summary
that the matrix gives (issue #22). Works on the committed schema-1 fixture, no training."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from unicon_bench.cli import app
from unicon_bench.metrics import continual
from unicon_bench.results import ResultError, parse_result

FIXTURE = Path(__file__).parent / "fixtures" / "result_schema1_ct_tasks.json"


@pytest.fixture
def data() -> dict:
    return json.loads(FIXTURE.read_text())


def _write(tmp_path: Path, data: dict, name: str = "r.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))  # json.dumps writes NaN/Infinity tokens as Python does
    return path


def test_fixture_summary_is_the_matrix_summary(data):
    """Hand check of the recomputation the reader does: the fixture's stored summary is what
    metrics.continual gives from its matrix."""
    result = parse_result(data)
    init, rows = result.rows()
    expected = continual.summarize(rows, init)
    assert result.summary.final_average == pytest.approx(expected["final_average"], abs=1e-12)
    assert result.summary.bwt == pytest.approx(expected["bwt"], abs=1e-12)


@pytest.mark.parametrize("key, value", [("final_average", 0.99), ("bwt", 0.5), ("plasticity", 0.0)])
def test_summary_contradicting_the_matrix_is_invalid(data, key, value):
    data["summary"][key] = value
    with pytest.raises(ResultError, match=f"summary.{key} .* contradicts the matrix"):
        parse_result(data)


def test_summary_of_an_undefined_value_must_be_null(data):
    data["summary"]["final_average"] = None
    with pytest.raises(ResultError, match="contradicts the matrix"):
        parse_result(data)


@pytest.mark.parametrize("where, key, value", [
    ("summary", "bwt", math.nan), ("summary", "final_average", math.inf),
    ("cost", "wall_time_s", math.inf), ("cost", "wall_time_s", -1.0), ("cost", "peak_rss_mb", -3.0),
    ("cost", "buffer_bytes", -5), ("cost", "total_params", -1), ("cost", "eval_time_s", math.nan),
])
def test_non_finite_or_negative_numbers_are_invalid(data, where, key, value):
    data[where][key] = value
    with pytest.raises(ResultError, match=f"{where}.{key}"):
        parse_result(data)


def test_non_finite_list_entries_are_invalid(data):
    data["cost"]["train_time_s"][0] = math.inf
    with pytest.raises(ResultError, match="train_time_s"):
        parse_result(data)


def test_validate_says_why(tmp_path, data):
    bad = copy.deepcopy(data)
    bad["summary"]["final_average"] = 0.99
    _write(tmp_path, bad, "bad.json")
    _write(tmp_path, data, "good.json")
    out = CliRunner().invoke(app, ["validate", str(tmp_path)])
    assert out.exit_code == 1
    assert "ok    " in out.output and "good.json" in out.output
    assert "bad.json" in out.output and "contradicts the matrix" in out.output


def test_leaderboard_skips_a_contradicting_result_with_a_warning(tmp_path, data):
    folder = tmp_path / "results"
    folder.mkdir()
    bad = copy.deepcopy(data)
    bad["run_id"] = "liar"
    bad["summary"]["final_average"] = 0.99  # would top the board
    _write(folder, bad, "bad.json")
    _write(folder, data, "good.json")
    out = CliRunner().invoke(app, ["leaderboard", str(folder), "--format", "md"])
    assert out.exit_code == 0, out.output
    assert "warning: skipped" in out.output and "contradicts the matrix" in out.output
    assert "0.990" not in out.output
