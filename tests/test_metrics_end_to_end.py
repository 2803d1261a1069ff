"""Issue 13, acceptance 2: a quick run writes every metric of every task kind, the leaderboard shows
them, ``check`` gates on HD95 in its direction, and schema-1 result files still read."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from unicon_bench.scenario import get_scenario
from conftest import load_json

from unicon_bench import check as gate
from unicon_bench.metrics.registry import METRICS, metrics_of
from unicon_bench.results import SCHEMA_VERSION, parse_result, read_result

pytestmark = pytest.mark.slow
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def unicon(quick_run):
    """naive on the quick ``unicon`` scenario: classification, prognosis, two segmentations."""
    return quick_run("naive", "unicon")


def test_quick_run_writes_every_metric(unicon):
    result, path = unicon
    back = read_result(path)
    assert back == result and back.schema_version == SCHEMA_VERSION == 3
    kinds = ["classification", "prognosis", "segmentation", "segmentation"]
    settings = back.scenario.evaluation
    horizons = settings["ct_prog"]["horizons"]
    assert horizons and settings["ct_seg"]["nsd_tolerance_mm"] == max(settings["ct_seg"]["spacing_mm"])
    last = len(kinds) - 1
    for j, kind in enumerate(kinds):
        names = [m.name for m in metrics_of(kind)]
        want = [f"td_auc@{h:g}" if n == "td_auc" else n for n in names for h in (horizons if n == "td_auc" else [None])]
        assert back.metric_keys(j) == want
        final = {key: back.rows(key)[1][last][j] for key in want}
        defined = [k for k, v in final.items() if v is not None]
        assert set(defined) >= set(want) - {k for k in want if k.startswith("td_auc")}  # a horizon may lack cases
        for key, value in final.items():
            assert value is None or METRICS[key.split("@")[0]].accepts(value)
        # experiences not trained yet (and the untrained model) carry the primary metric only
        for i in range(-1, j):
            assert {e.metric for e in back.matrix if e.trained_upto == i and e.evaluated_on == j} == {names[0]}
    seg = back.subjects(2)
    n_eval = get_scenario("unicon").quick.n_eval
    assert set(seg) == {m.name for m in metrics_of("segmentation")} and len(seg["dice"]) == n_eval
    assert sum(seg["dice"]) / n_eval == pytest.approx(back.rows()[1][last][2])
    assert set(back.subjects(0)) == {"probability", "label", "brier"}
    assert set(back.subjects(1)) == {"risk", "time", "event"}
    assert back.cost.eval_time_s > 0


def test_schema_1_files_still_read(tmp_path):
    path = FIXTURES / "result_schema1_ct_tasks.json"
    raw = load_json(path)
    assert raw["schema_version"] == 1
    result = read_result(path)
    assert result.schema_version == SCHEMA_VERSION and result.per_subject == [] and result.cost.eval_time_s is None
    assert result.env.precision == "fp32" and result.stage0 is None  # upgraded: a CPU run of schema 1 was fp32
    init, R = result.rows()
    grid = {(e["trained_upto"], e["evaluated_on"]): e["value"] for e in raw["matrix"]}
    assert R[2][1] == grid[(2, 1)] and init[0] == grid[(-1, 0)]
    assert [result.metric_keys(j) for j in range(3)] == [["auc"], ["c_index"], ["dice"]]
    older = copy.deepcopy(raw) | {"schema_version": 0}
    with pytest.raises(Exception, match="older"):
        parse_result(older)


def test_leaderboard_shows_every_metric(unicon, tmp_path, cli):
    from unicon_bench.leaderboard.render import write_leaderboard

    results = tmp_path / "results"
    (results / "old").mkdir(parents=True)
    (results / "old" / "v1.json").write_text((FIXTURES / "result_schema1_ct_tasks.json").read_text())
    (results / "new").mkdir()
    (results / "new" / "run.json").write_text(unicon[1].read_text())
    html, problems = write_leaderboard(results, tmp_path / "lb.html")
    assert problems == []
    assert 'class="metric-select"' in html
    for key in ("primary", "hd95", "nsd", "lesion_f1", "fp_volume_ml", "balanced_accuracy", "brier", "ece",
                "uno_c_index", "ibs"):
        assert f'data-metric="{key}"' in html, key
    assert 'data-metric="td_auc@' in html
    assert "bootstrap interval over subjects" in html and "per subject of each method" in html
    proc = cli("leaderboard", str(results), "--format", "md", "--metric", "hd95")
    assert proc.returncode == 0, proc.stderr
    assert "final HD95 (mm) (lower is better" in proc.stdout and "| naive |" in proc.stdout
    bad = cli("leaderboard", str(results), "--format", "md", "--metric", "accuracy")
    assert bad.returncode == 2 and "unknown metric 'accuracy'" in bad.stderr


def _with_hd95(base: dict, out: Path, seed: int, hd95: float) -> None:
    data = copy.deepcopy(base)
    data["seed"] = seed
    last = len(data["scenario"]["experiences"]) - 1
    for e in data["matrix"]:
        if e["trained_upto"] == last and e["metric"] == "hd95":
            e["value"] = hd95
    for cell in data["per_subject"]:  # the per-subject values the paired gate resamples: consistent with the cell
        if cell["trained_upto"] == last and "hd95" in cell["values"]:
            cell["values"]["hd95"] = [hd95] * len(cell["values"]["hd95"])
    parse_result(data)
    data["run_id"] = f"s{seed}-hd95-{hd95}"
    path = out / "unicon" / "naive" / f"{data['run_id']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


def test_check_gates_on_hd95_in_its_direction(unicon, tmp_path, cli):
    base = load_json(unicon[1])
    for name, values in {"base": [20.0, 21.0, 22.0], "worse": [30.0, 31.0, 32.0], "better": [10.0, 11.0, 12.0],
                         "same": [20.5, 21.0, 21.5]}.items():
        for seed, v in enumerate(values):
            _with_hd95(base, tmp_path / name, seed, v)
    baseline = tmp_path / "baseline.json"
    made = cli("check", str(tmp_path / "base"), "--baseline", str(baseline), "--update-baseline", "--metric", "hd95")
    assert made.returncode == 0, made.stderr
    rows = {r for e in gate.load_baseline(baseline).entries for r in e.rows}
    assert {"final:ct_seg/hd95", "final:pet_seg/hd95"} <= rows
    assert gate.load_baseline(baseline).tolerances["hd95"] == METRICS["hd95"].tolerance

    report = gate.compare(gate.load_baseline(baseline), tmp_path / "worse")
    verdict = {r.row: r.verdict for r in report.rows}
    assert verdict["final:ct_seg/hd95"] == "regressed" and verdict["final:pet_seg/hd95"] == "regressed"
    assert verdict["final:ct_seg"] == "ok"  # the Dice did not move
    assert cli("check", str(tmp_path / "worse"), "--baseline", str(baseline)).returncode == 1

    report = gate.compare(gate.load_baseline(baseline), tmp_path / "better")
    assert {r.verdict for r in report.rows if r.row.endswith("/hd95")} == {"improved"}
    assert cli("check", str(tmp_path / "better"), "--baseline", str(baseline)).returncode == 0
    assert cli("check", str(tmp_path / "same"), "--baseline", str(baseline)).returncode == 0


def test_primary_metric_cannot_be_added(unicon, tmp_path):
    _with_hd95(load_json(unicon[1]), tmp_path / "r", 0, 20.0)
    with pytest.raises(gate.CheckError, match="primary"):
        gate.build_baseline(tmp_path / "r", metrics=("dice",))
