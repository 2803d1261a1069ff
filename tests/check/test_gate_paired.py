"""The paired gate (baseline schema 3): the current runs against the baseline's own runs, resampled together.

Hand-derived cases: a shift of every per-subject Dice by d gives the paired difference d in every bootstrap
replicate, so the interval is exactly (d, d); an identical copy gives 0 and no verdict; the seeds-only
numbers pair too. The unpaired rule stays for other seeds.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from unicon_bench import check as gate
from unicon_bench.results import write_result


def _load_make_result():
    # the statistics tests' synthetic results (tests/analysis/conftest.py), shared rather than copied
    import importlib.util

    spec = importlib.util.spec_from_file_location("_analysis_fixtures", Path(__file__).parent.parent / "analysis" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_result


make_result = _load_make_result()


def folder(root: Path, shift: float = 0.0, seeds=range(3), noise_seed=None) -> Path:
    for seed in seeds:
        write_result(make_result("naive", seed, shift=shift, noise_seed=noise_seed), root)
    return root


def report_for(tmp_path: Path, current: Path) -> gate.Report:
    base = gate.build_baseline(folder(tmp_path / "base"))
    path = tmp_path / "baseline.json"
    gate.write_baseline(base, path)
    return gate.compare(gate.load_baseline(path), current)


def rows(report: gate.Report) -> dict[str, gate.Row]:
    return {r.row: r for r in report.rows}


def test_the_baseline_keeps_its_runs_and_reads_them_back(tmp_path):
    base = gate.build_baseline(folder(tmp_path / "base"))
    path = tmp_path / "baseline.json"
    gate.write_baseline(base, path)
    entry = gate.load_baseline(path).entries[0]
    assert json.loads(path.read_text())["baseline_schema_version"] == 3
    assert sorted(entry.runs) == [0, 1, 2] and [r.seed for r in entry.results()] == [0, 1, 2]
    assert entry.results()[1].subjects(2, 2)["dice"] == make_result("naive", 1).subjects(2, 2)["dice"]


def test_an_identical_copy_gives_zero_and_never_a_verdict(tmp_path):
    report = report_for(tmp_path, folder(tmp_path / "cur"))
    assert report.exit_code == 0 and {r.verdict for r in report.rows} == {"ok"}
    assert all(r.interval == (0.0, 0.0) and r.delta == 0.0 for r in report.rows)
    assert not report.notes


@pytest.mark.parametrize("shift, verdict", [(-0.2, "regressed"), (-0.04, "ok"), (0.2, "improved")])
def test_a_per_subject_shift_is_the_paired_difference_in_every_replicate(tmp_path, shift, verdict):
    report = report_for(tmp_path, folder(tmp_path / "cur", shift=shift))
    seg = rows(report)["final:ct_seg"]
    assert seg.delta == pytest.approx(shift) and seg.interval == pytest.approx((shift, shift))
    assert seg.verdict == verdict and seg.allowed == gate.DEFAULT_TOLERANCES["dice"]


def test_a_drop_whose_interval_reaches_back_is_within_ci_and_passes(tmp_path):
    # noise of other draws: the per-seed differences scatter around -0.08, the interval crosses -0.05
    rng = np.random.default_rng(0)
    cur = tmp_path / "cur"
    for seed in range(3):
        r = make_result("naive", seed, shift=-0.08 + rng.normal(0, 0.06), noise_seed=seed)
        write_result(r, cur)
    seg = rows(report_for(tmp_path, cur))["final:ct_seg"]
    lo, hi = seg.interval
    assert lo < -0.05 < hi or hi < -0.05
    assert seg.verdict == ("within CI" if hi >= -0.05 else "regressed")


def test_other_seeds_fall_back_to_the_unpaired_rule_with_a_note(tmp_path):
    report = report_for(tmp_path, folder(tmp_path / "cur", seeds=(3, 4, 5)))
    assert all(r.interval is None for r in report.rows)
    assert any("other seeds than the baseline's; unpaired comparison" in n for n in report.notes)


def test_a_schema_2_baseline_still_gates_unpaired(tmp_path):
    base = gate.build_baseline(folder(tmp_path / "base"))
    data = json.loads(base.model_dump_json())
    data["baseline_schema_version"] = 2
    for e in data["entries"]:
        del e["runs"]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    report = gate.compare(gate.load_baseline(path), folder(tmp_path / "cur", shift=-0.2))
    seg = rows(report)["final:ct_seg"]
    # the unpaired rule: a drop of 0.2 hides in the two 3-seed t-intervals (t = 4.3), which the paired one finds
    assert seg.interval is None and seg.delta == pytest.approx(-0.2)
    assert seg.allowed > 0.2 and seg.verdict == "within CI"
    assert rows(report_for(tmp_path / "paired", folder(tmp_path / "cur2", shift=-0.2)))["final:ct_seg"].verdict == "regressed"


def test_judge_paired_directions():
    assert gate.judge_paired(-0.1, (-0.12, -0.08), 0.05) == "regressed"
    assert gate.judge_paired(-0.1, (-0.2, 0.01), 0.05) == "within CI"
    assert gate.judge_paired(0.1, (0.08, 0.12), 0.05, up=False) == "regressed"  # a higher HD95 is worse
    assert gate.judge_paired(0.0, (None, None), 0.05) == "undefined"
