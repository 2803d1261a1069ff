"""`unicon-bench check`: the CI regression gate against a baseline, with tolerances and t-intervals.

Every result file is a real quick run's JSON (the session's ``quick_run``), copied and edited: its last
matrix row is set to known scores and its final average and BWT recomputed from the matrix, so each
file obeys the schema and a degradation moves the final score, final average and BWT together.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import error_lines, load_json
from scipy import stats

from unicon_bench import check as gate
from unicon_bench.metrics.continual import bwt, final_average, summarize
from unicon_bench.results import SCHEMA_VERSION, clean_float, parse_result
from unicon_bench.scenario import get_scenario

ROOT = Path(__file__).resolve().parents[2]
V = get_scenario("ct_to_pet").version  # the built-in scenario's current version


@pytest.fixture(scope="module")
def pet(quick_run) -> dict:
    """naive on ct_to_pet: two Dice experiences (ct_seg, pet_seg)."""
    return load_json(quick_run("naive", "ct_to_pet", 0)[1])


@pytest.fixture(scope="module")
def tasks(quick_run) -> dict:
    """naive on ct_tasks (v3): Dice (ct_seg), AUC (ct_cls), C-index (ct_prog)."""
    return load_json(quick_run("naive", "ct_tasks", 0)[1])


def write_run(base: dict, out: Path, seed: int, last_row: list[float], *, strategy: str | None = None,
              schema_version: int | None = None, version: int | None = None, quick: bool | None = None) -> Path:
    """A copy of ``base`` for ``seed`` whose trained-on-everything row is ``last_row``."""
    data = copy.deepcopy(base)
    data["seed"] = seed
    if strategy is not None:
        data["strategy"]["name"] = strategy
    if version is not None:
        data["scenario"]["version"] = version
    if quick is not None:
        data["scenario"]["quick"] = quick
    last = len(data["scenario"]["experiences"]) - 1
    for e in data["matrix"]:
        if e["trained_upto"] == last:
            e["value"] = last_row[e["evaluated_on"]]
    # keep the per-subject values (what the paired gate resamples) consistent with the edited cells: Dice
    # values shift by the edit; AUC/C-index cells cannot be edited that way and lose theirs
    kept = []
    for cell in data.get("per_subject") or []:
        j = cell["evaluated_on"]
        if cell["trained_upto"] == last:
            if "dice" not in cell["values"]:
                continue
            vals = np.asarray(cell["values"]["dice"], float)
            cell["values"] = {"dice": (vals + last_row[j] - vals.mean()).tolist()}
        kept.append(cell)
    data["per_subject"] = kept
    # the summary is derived from the matrix (and checked against it on reading): recompute all of it
    n = last + 1
    grid = {(e["trained_upto"], e["evaluated_on"]): e["value"] for e in data["matrix"]
            if e["metric"] == data["scenario"]["metrics"][e["evaluated_on"]]}
    R = [[grid[(i, j)] for j in range(n)] for i in range(n)]
    data["summary"] = {k: clean_float(v) for k, v in summarize(R, [grid[(-1, j)] for j in range(n)]).items()}
    assert data["summary"]["final_average"] == final_average(R) and data["summary"]["bwt"] == clean_float(bwt(R))
    parse_result(data)  # still a valid result
    if schema_version is not None:
        data["schema_version"] = schema_version
    data["run_id"] = f"s{seed}-edited-{len(list(out.rglob('*.json')))}"
    path = out / data["scenario"]["name"] / data["strategy"]["name"] / f"{data['run_id']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def runs(base: dict, out: Path, rows: dict[int, list[float]], **kw) -> Path:
    for seed, row in rows.items():
        write_run(base, out, seed, row, **kw)
    return out


def baseline_of(tmp_path: Path, results: Path) -> Path:
    path = tmp_path / "baseline.json"
    gate.write_baseline(gate.build_baseline(results), path)
    return path


def verdicts(report: gate.Report) -> dict[tuple[str, str], str]:
    return {(r.entry.method, r.row): r.verdict for r in report.rows}


def check(tmp_path: Path, base_dir: Path, cur_dir: Path, **kw) -> gate.Report:
    return gate.compare(gate.load_baseline(baseline_of(tmp_path, base_dir)), cur_dir, **kw)


def test_identical_results_pass_with_zero_delta(pet, tmp_path):
    results = runs(pet, tmp_path / "r", {0: [0.6, 0.7], 1: [0.62, 0.71]})
    report = check(tmp_path, results, results)
    assert report.exit_code == 0 and len(report.rows) == 4  # final avg, ct_seg, pet_seg, BWT
    assert {r.verdict for r in report.rows} == {"ok"} and {r.delta for r in report.rows} == {0.0}


def test_drop_beyond_tolerance_fails_and_names_the_row(pet, tmp_path, cli):
    base = runs(pet, tmp_path / "base", {0: [0.6, 0.7]})
    cur = runs(pet, tmp_path / "cur", {0: [0.6, 0.62]})  # pet_seg Dice -0.08, final average -0.04
    report = check(tmp_path, base, cur)
    assert verdicts(report) == {("naive", "final_average"): "ok", ("naive", "final:ct_seg"): "ok",
                                ("naive", "final:pet_seg"): "regressed", ("naive", "bwt"): "ok"}
    (row,) = report.failed
    assert row.delta == pytest.approx(-0.08) and row.allowed == 0.05 and row.label == "final pet_seg (dice)"
    proc = cli("check", "--baseline", tmp_path / "baseline.json", cur, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    (line,) = [ln for ln in proc.stdout.splitlines() if "regressed" in ln and "pet_seg" in ln]
    assert f"ct_to_pet v{V} (quick)" in line and "naive" in line and "final pet_seg (dice)" in line and "-0.080" in line
    assert error_lines(proc.stderr)[-1].startswith("FAIL: 1 failing row")


def test_auc_drop_fails(tasks, tmp_path):
    base = runs(tasks, tmp_path / "base", {0: [0.5, 0.8, 0.7]})  # v3: ct_seg, ct_cls, ct_prog
    cur = runs(tasks, tmp_path / "cur", {0: [0.5, 0.7, 0.7]})  # AUC -0.1: final average -0.033, BWT -0.05
    report = check(tmp_path, base, cur)
    assert [r.label for r in report.failed] == ["final ct_cls (auc)"]
    assert verdicts(report)[("naive", "bwt")] == "ok"  # exactly the tolerance: passes


def test_drop_within_tolerance_passes(pet, tmp_path, cli):
    base = runs(pet, tmp_path / "base", {0: [0.6, 0.7]})
    cur = runs(pet, tmp_path / "cur", {0: [0.56, 0.66]})
    report = check(tmp_path, base, cur)
    assert report.exit_code == 0 and {r.verdict for r in report.rows} == {"ok"}
    assert [round(r.delta, 6) for r in report.rows] == [-0.04] * 4
    proc = cli("check", "--baseline", tmp_path / "baseline.json", cur, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert error_lines(proc.stderr)[-1] == "PASS: no regression (4 ok; 4 rows)"


def test_improvements_are_reported_and_pass(pet, tmp_path, cli):
    base = runs(pet, tmp_path / "base", {0: [0.5, 0.5]})
    cur = runs(pet, tmp_path / "cur", {0: [0.8, 0.9]})
    report = check(tmp_path, base, cur)
    assert report.exit_code == 0
    assert verdicts(report) == {("naive", "final_average"): "improved", ("naive", "final:ct_seg"): "improved",
                                ("naive", "final:pet_seg"): "improved", ("naive", "bwt"): "improved"}
    proc = cli("check", "--baseline", tmp_path / "baseline.json", cur, "--format", "md", cwd=tmp_path)
    assert proc.returncode == 0 and "🟢 improved" in proc.stdout and proc.stdout.startswith("### ✅")


def test_missing_rows_fail_unless_allowed(pet, tmp_path, cli):
    base = runs(pet, tmp_path / "base", {0: [0.6, 0.7]})
    runs(pet, base, {0: [0.6, 0.7]}, strategy="ewc")
    cur = runs(pet, tmp_path / "cur", {0: [0.6, 0.7]})  # ewc did not run
    report = check(tmp_path, base, cur)
    assert [(r.entry.method, r.verdict) for r in report.failed] == [("ewc", "missing")] * 4
    proc = cli("check", "--baseline", tmp_path / "baseline.json", cur, cwd=tmp_path)
    assert proc.returncode == 1
    assert "4 missing" in error_lines(proc.stderr)[-1]
    proc = cli("check", "--baseline", tmp_path / "baseline.json", cur, "--allow-missing", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    # nothing of the baseline in the results at all: nothing to compare, a usage error
    other = runs(pet, tmp_path / "other", {0: [0.6, 0.7]}, strategy="replay")
    proc = cli("check", "--baseline", tmp_path / "baseline.json", other, "--allow-missing", cwd=tmp_path)
    assert proc.returncode == 2 and len(error_lines(proc.stderr)) == 1
    assert "nothing to compare" in proc.stderr


def test_newer_result_schema_is_a_usage_error(pet, tmp_path, cli):
    base = runs(pet, tmp_path / "base", {0: [0.6, 0.7]})
    cur = runs(pet, tmp_path / "cur", {0: [0.6, 0.7]}, schema_version=99)
    baseline_of(tmp_path, base)
    proc = cli("check", "--baseline", tmp_path / "baseline.json", cur, cwd=tmp_path)
    assert proc.returncode == 2
    (line,) = error_lines(proc.stderr)
    assert "schema_version 99 is newer" in line and "upgrade unicon-bench" in line


@pytest.mark.parametrize("change", [{"version": V + 1}, {"quick": False}])
def test_other_scenario_version_or_quick_flag_is_one_clear_line(pet, tmp_path, cli, change):
    base = runs(pet, tmp_path / "base", {0: [0.6, 0.7]})
    cur = runs(pet, tmp_path / "cur", {0: [0.6, 0.7]}, **change)
    baseline_of(tmp_path, base)
    proc = cli("check", "--baseline", tmp_path / "baseline.json", cur, cwd=tmp_path)
    assert proc.returncode == 2
    (line,) = error_lines(proc.stderr)
    assert f"the baseline is ct_to_pet v{V} (quick)" in line and "never compared" in line


def without_runs(path: Path) -> Path:
    """The baseline as schema 2 wrote it: no runs, so the unpaired rule judges every row."""
    data = json.loads(path.read_text())
    data["baseline_schema_version"] = 2
    for entry in data["entries"]:
        entry.pop("runs")
    path.write_text(json.dumps(data))
    return path


def test_drop_within_the_combined_interval_passes_with_several_seeds(pet, tmp_path):
    seeds = {0: [0.5, 0.6], 1: [0.6, 0.7], 2: [0.7, 0.8]}  # sd 0.1 per row
    base = runs(pet, tmp_path / "base", seeds)
    cur = runs(pet, tmp_path / "cur", {s: [v - 0.1 for v in row] for s, row in seeds.items()})
    # paired (schema 3): the same drop of 0.1 on every seed and subject is found, whatever the seeds' spread
    paired = check(tmp_path, base, cur)
    row = next(r for r in paired.rows if r.row == "final:pet_seg")
    assert row.interval == pytest.approx((-0.1, -0.1)) and row.verdict == "regressed"
    # unpaired (schema 2): the seeds' spread widens what passes
    report = gate.compare(gate.load_baseline(without_runs(tmp_path / "baseline.json")), cur)
    half = stats.t.ppf(0.975, 2) * 0.1 / math.sqrt(3)  # 95 % t-interval half-width of three seeds
    row = next(r for r in report.rows if r.row == "final:pet_seg")
    assert row.delta == pytest.approx(-0.1) and row.allowed == pytest.approx(math.hypot(half, half))
    assert row.verdict == "within CI" and report.exit_code == 0
    # a drop beyond the combined interval fails even with three seeds
    far = runs(pet, tmp_path / "far", {s: [v - 0.4 for v in row] for s, row in seeds.items()})
    assert gate.compare(gate.load_baseline(tmp_path / "baseline.json"), far).exit_code == 1
    without_runs(baseline_of(tmp_path, base))
    # the same drop of 0.1 measured on one seed has no interval: only the tolerance holds, and it fails
    one = check(tmp_path, runs(pet, tmp_path / "base1", {0: seeds[0]}),
                runs(pet, tmp_path / "cur1", {0: [v - 0.1 for v in seeds[0]]}))
    assert one.exit_code == 1 and {r.verdict for r in one.rows} == {"regressed"}


def test_update_baseline_records_provenance_and_keeps_tolerances(pet, tmp_path, cli):
    results = runs(pet, tmp_path / "r", {0: [0.6, 0.7], 1: [0.62, 0.71]})
    path = tmp_path / "b.json"
    proc = cli("check", "--update-baseline", "--baseline", path, results, "--suite", ROOT / "suites" / "ci.yaml",
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = load_json(path)
    assert data["baseline_schema_version"] == gate.BASELINE_SCHEMA_VERSION and data["result_schema_version"] == SCHEMA_VERSION
    assert data["suite"]["name"] == "ci" and data["environment"]["threads"] == pet["env"]["threads"]
    (entry,) = data["entries"]
    assert (entry["scenario"], entry["scenario_version"], entry["quick"], entry["strategy"]) == ("ct_to_pet", V, True, "naive")
    assert entry["rows"]["final:pet_seg"]["values"] == {"0": 0.7, "1": 0.71}
    data["tolerances"]["dice"] = 0.2
    path.write_text(json.dumps(data), encoding="utf-8")
    assert cli("check", "--update-baseline", "--baseline", path, results, cwd=tmp_path).returncode == 0
    assert load_json(path)["tolerances"]["dice"] == 0.2


def test_markdown_to_a_file(pet, tmp_path, cli):
    base = runs(pet, tmp_path / "base", {0: [0.6, 0.7]})
    cur = runs(pet, tmp_path / "cur", {0: [0.6, 0.5]})
    baseline_of(tmp_path, base)
    proc = cli("check", "--baseline", tmp_path / "baseline.json", cur, "--format", "md", "-o", tmp_path / "gate.md",
               cwd=tmp_path)
    assert proc.returncode == 1 and proc.stdout == ""
    text = (tmp_path / "gate.md").read_text(encoding="utf-8")
    assert text.startswith("### ❌ unicon-bench check")
    assert "| scenario | method | metric | baseline | current | Δ [paired 95 % CI] | allowed drop | verdict |" in text
    assert ("| final pet\\_seg (dice) | 0.700 (n=1) | 0.500 (n=1) | -0.200 \\[-0.200, -0.200\\] | 0.050 | "
            "❌ regressed |") in text


def test_usage_errors_exit_2(pet, tmp_path, cli):
    results = runs(pet, tmp_path / "r", {0: [0.6, 0.7]})
    for args, message in [
        (("--baseline", tmp_path / "nope.json", results), "cannot read baseline"),
        (("--baseline", baseline_of(tmp_path, results), tmp_path / "absent"), "no such file"),
        (("--baseline", baseline_of(tmp_path, results), tmp_path / "empty"), "no result files"),
    ]:
        (tmp_path / "empty").mkdir(exist_ok=True)
        proc = cli("check", *args, cwd=tmp_path)
        assert proc.returncode == 2 and message in error_lines(proc.stderr)[0], proc.stderr
    data = load_json(tmp_path / "baseline.json")
    data["baseline_schema_version"] = gate.BASELINE_SCHEMA_VERSION + 1
    (tmp_path / "newer.json").write_text(json.dumps(data), encoding="utf-8")
    proc = cli("check", "--baseline", tmp_path / "newer.json", results, cwd=tmp_path)
    assert proc.returncode == 2 and "is newer than this unicon-bench supports" in proc.stderr


def test_committed_baseline_matches_the_ci_suite():
    suite = yaml.safe_load((ROOT / "suites" / "ci.yaml").read_text(encoding="utf-8"))
    baseline = gate.load_baseline(ROOT / "baselines" / "ci.json")
    assert baseline.suite["name"] == suite["name"] == "ci" and baseline.environment["threads"] == 1
    assert {(e.scenario, e.strategy) for e in baseline.entries} == \
        {(c, s) for c in suite["scenarios"] for s in suite["strategies"]}
    for e in baseline.entries:
        assert e.quick is suite["quick"] is True and e.seeds == suite["seeds"]
        assert e.params["epochs"] == suite["params"][e.strategy]["epochs"]
        assert all(row.mean is not None for name, row in e.rows.items() if name != "bwt")
