"""Leaderboard aggregation: t-intervals, best / not-significant marks, never mixing versions or quick runs.

Result files are written from a real quick run with modified values, so every file obeys the schema.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from conftest import load_json
from unicon_bench.analysis.aggregate import (
    aggregate,
    load_results,
    mean_ci,
    paired_not_different,
    paradigm,
    run_values,
)
from unicon_bench.metrics.continual import summarize
from unicon_bench.results import clean_float, parse_result, read_result


@pytest.fixture(scope="module")
def base(quick_run) -> dict:
    """A real quick result (naive on ct_to_pet, two experiences) as a JSON dict."""
    _result, path = quick_run("naive", "ct_to_pet", 0)
    return load_json(path)


def variant(base: dict, out: Path, strategy: str, seed: int, *, version: int | None = None, quick: bool | None = None,
            params: dict | None = None, finished: str | None = None, last_row: list[float] | None = None,
            cost: dict | None = None, **summary) -> Path:
    """Write a copy of ``base`` with the given strategy, seed and values; returns its path."""
    data = copy.deepcopy(base)
    data["strategy"]["name"] = strategy
    data["seed"] = seed
    data["run_id"] = f"s{seed}-{strategy}-{version or 1}-{quick}-{len(list(out.rglob('*.json')))}"
    if version is not None:
        data["scenario"]["version"] = version
    if quick is not None:
        data["scenario"]["quick"] = quick
    if params is not None:
        data["strategy"]["params"] = params
    if finished is not None:
        data["finished"] = finished
    cells = {}  # (trained_upto, evaluated_on) -> the primary value to set
    if last_row is not None:
        cells.update({(1, j): v for j, v in enumerate(last_row)})
    if summary:
        # The summary is derived from the matrix (and checked against it on reading), so the wanted summary
        # values are made by the matrix of this two-experience scenario: R = [[a, b], [c, d]] gives
        # final average (c + d) / 2 and forgetting a - c, all within Dice's [0, 1].
        assert set(summary) <= {"final_average", "forgetting"} and len(data["scenario"]["experiences"]) == 2
        f, g = summary.get("final_average"), summary.get("forgetting")
        if f is not None:
            lo, hi = max(0.0, 2 * f - 1), min(2 * f, 1.0 - (g or 0.0))
            assert lo <= hi, "no Dice matrix gives this final average and forgetting"
            c = (lo + hi) / 2
            cells.update({(1, 0): c, (1, 1): 2 * f - c})
            if g is not None:
                cells[(0, 0)] = c + g
    for e in data["matrix"]:
        if e["metric"] == data["scenario"]["metrics"][e["evaluated_on"]] and (e["trained_upto"], e["evaluated_on"]) in cells:
            e["value"] = cells[(e["trained_upto"], e["evaluated_on"])]
    data["cost"].update(cost or {})
    init, rows = _rows(data)
    data["summary"] = {k: clean_float(v) for k, v in summarize(rows, init).items()}
    for key, want in summary.items():
        assert data["summary"][key] == pytest.approx(want, abs=1e-12)
    parse_result(data)  # still a valid result
    path = out / data["scenario"]["name"] / strategy / f"{data['run_id']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _rows(data: dict):
    """``(init, R)`` of the primary metric, read from the JSON dict without validating it."""
    n = len(data["scenario"]["experiences"])
    grid = {(e["trained_upto"], e["evaluated_on"]): e["value"] for e in data["matrix"]
            if e["metric"] == data["scenario"]["metrics"][e["evaluated_on"]]}
    return [grid[(-1, j)] for j in range(n)], [[grid[(i, j)] for j in range(n)] for i in range(n)]


def boards_of(root: Path):
    results, problems = load_results(root)
    assert not problems
    return aggregate(results)


def row_of(board, method: str) -> dict:
    (row,) = [r for r in board.rows if r["method"] == method]
    return row


def test_ci_is_scipy_t_interval_for_three_seeds(base, tmp_path):
    values = [0.52, 0.61, 0.80]
    for seed, v in enumerate(values):
        variant(base, tmp_path, "naive", seed, final_average=v)
    (board,) = boards_of(tmp_path)
    cell = row_of(board, "naive")["cells"]["final_average"]

    x = np.array(values)
    mean = x.mean()
    half = stats.t.ppf(0.975, df=2) * x.std(ddof=1) / math.sqrt(3)  # by hand
    lo, hi = stats.t.interval(0.95, 2, loc=mean, scale=stats.sem(x))
    assert cell["n"] == 3
    assert cell["mean"] == pytest.approx(mean, abs=1e-12)
    assert (cell["lo"], cell["hi"]) == (pytest.approx(lo, abs=1e-12), pytest.approx(hi, abs=1e-12))
    assert (cell["lo"], cell["hi"]) == (pytest.approx(mean - half, abs=1e-12), pytest.approx(mean + half, abs=1e-12))
    assert row_of(board, "naive")["n_seeds"] == 3


def test_ci_undefined_for_one_seed_and_undefined_values_skipped():
    assert mean_ci([0.4]) == (0.4, None, None, 1)
    assert mean_ci([None, None]) == (None, None, None, 0)
    mean, lo, hi, n = mean_ci([0.2, None, 0.4])
    assert (mean, n) == (pytest.approx(0.3), 2)
    assert (lo, hi) == tuple(pytest.approx(b) for b in stats.t.interval(0.95, 1, loc=0.3, scale=stats.sem([0.2, 0.4])))
    assert mean_ci([0.5, 0.5, 0.5]) == (0.5, 0.5, 0.5, 3)  # no spread: a zero-width interval, not NaN


def test_best_and_not_significantly_different(base, tmp_path):
    scores = {
        "alpha": [0.80, 0.82, 0.81],   # best
        "beta": [0.79, 0.83, 0.80],    # paired differences +-0.01: not significantly different
        "gamma": [0.50, 0.52, 0.515],  # consistently 0.3 worse: significantly different
    }
    # (beta's forgetting is below alpha's so that a Dice matrix can give both it and beta's final average)
    forgetting = {"alpha": [0.20, 0.25, 0.22], "beta": [0.10, 0.15, 0.13], "gamma": [0.01, 0.02, 0.015]}
    for name, values in scores.items():
        for seed, v in enumerate(values):
            variant(base, tmp_path, name, seed, final_average=v, forgetting=forgetting[name][seed],
                    cost={"wall_time_s": 10.0 + seed + (0 if name == "gamma" else 50)})
    # no shared seed with the best: cannot tell
    variant(base, tmp_path, "delta", 7, final_average=0.2, forgetting=0.9, cost={"wall_time_s": 99.0})
    # the example is what it claims to be
    assert stats.ttest_rel(scores["alpha"], scores["beta"]).pvalue >= 0.05
    assert stats.ttest_rel(scores["alpha"], scores["gamma"]).pvalue < 0.05

    (board,) = boards_of(tmp_path)
    fa = {r["method"]: r["cells"]["final_average"] for r in board.rows}
    assert [m for m, c in fa.items() if c["best"]] == ["alpha"]
    assert fa["beta"]["tied"] and fa["delta"]["tied"]
    assert not fa["gamma"]["tied"] and not fa["alpha"]["tied"]
    # lower is better for forgetting and costs
    fg = {r["method"]: r["cells"]["forgetting"] for r in board.rows}
    assert fg["gamma"]["best"] and not fg["alpha"]["tied"] and not fg["beta"]["tied"]
    wt = {r["method"]: r["cells"]["wall_time_s"] for r in board.rows}
    assert wt["gamma"]["best"]
    # rows are ordered by final average, best first
    assert board.methods()[0] == "alpha"


def test_paired_test_edge_cases():
    assert paired_not_different({0: 0.5}, {0: 0.1})  # one shared seed: cannot tell
    assert paired_not_different({0: 0.5, 1: 0.6}, {0: 0.5, 1: 0.6})  # identical: p is NaN, not different
    assert paired_not_different({0: 0.5, 1: None, 2: 0.7}, {0: 0.1, 1: 0.2, 3: 0.3})  # one usable pair
    assert not paired_not_different({0: 0.9, 1: 0.8, 2: 0.85}, {0: 0.1, 1: 0.0, 2: 0.06})


def test_versions_and_quick_runs_never_mixed(base, tmp_path):
    variant(base, tmp_path, "naive", 0, version=1, quick=True, final_average=0.1)
    variant(base, tmp_path, "naive", 1, version=1, quick=True, final_average=0.2)
    variant(base, tmp_path, "naive", 0, version=2, quick=True, final_average=0.9)
    variant(base, tmp_path, "naive", 0, version=1, quick=False, final_average=0.5)
    boards = boards_of(tmp_path)
    by_key = {(b.scenario, b.version, b.quick): b for b in boards}
    assert set(by_key) == {("ct_to_pet", 1, True), ("ct_to_pet", 2, True), ("ct_to_pet", 1, False)}
    v1q = row_of(by_key[("ct_to_pet", 1, True)], "naive")
    assert v1q["n_seeds"] == 2 and v1q["cells"]["final_average"]["mean"] == pytest.approx(0.15)
    assert row_of(by_key[("ct_to_pet", 2, True)], "naive")["cells"]["final_average"]["mean"] == pytest.approx(0.9)
    assert row_of(by_key[("ct_to_pet", 1, False)], "naive")["cells"]["final_average"]["mean"] == pytest.approx(0.5)
    for b in boards:
        assert {(r.result.scenario.version, r.result.scenario.quick) for r in b.runs} == {(b.version, b.quick)}
    assert "(quick)" in by_key[("ct_to_pet", 2, True)].title and "v2" in by_key[("ct_to_pet", 2, True)].title


def test_paradigm_column(base, tmp_path):
    assert (paradigm("specialized"), paradigm("joint"), paradigm("ewc"), paradigm("unicon")) == (
        "specialized", "joint", "continual", "continual")
    for name in ("specialized", "joint", "naive", "replay"):
        variant(base, tmp_path, name, 0)
    (board,) = boards_of(tmp_path)
    assert {r["method"]: r["paradigm"] for r in board.rows} == {
        "specialized": "specialized", "joint": "joint", "naive": "continual", "replay": "continual"}
    assert set(board.frame()["paradigm"]) == {"specialized", "joint", "continual"}


def test_run_values_cost_and_last_row(quick_run):
    _r, path = quick_run("naive", "ct_sites", 0)  # three experiences
    data = load_json(path)
    data["cost"].update({"trainable_params": [1000, 300, 500], "total_params": 1000, "buffer_bytes": 3 * 2**20})
    result = parse_result(data)
    values = run_values(result)
    assert values["trainable_share"] == pytest.approx(0.4)  # mean over experiences after the first
    assert values["trainable_share_max"] == pytest.approx(0.5)
    assert values["buffer_mb"] == pytest.approx(3.0)
    assert values["wall_time_s"] == result.cost.wall_time_s and values["peak_rss_mb"] == result.cost.peak_rss_mb
    _init, rows = result.rows()
    assert [values[f"final:{e}"] for e in result.scenario.experiences] == rows[-1]


def test_per_experience_columns_and_params_and_reruns(base, tmp_path):
    variant(base, tmp_path, "naive", 0, last_row=[0.2, 0.4])
    variant(base, tmp_path, "naive", 1, last_row=[0.4, 0.6])
    # a re-run of seed 1 that finished later replaces the earlier one
    variant(base, tmp_path, "naive", 1, last_row=[0.6, 0.8], finished="2999-01-01T00:00:00+00:00")
    # one strategy with two parameter sets is two methods, labelled by the parameter that differs
    for mem in (10, 20):
        variant(base, tmp_path, "replay", 0, params={"mem_size": mem, "weight_decay": 0.0})
    (board,) = boards_of(tmp_path)
    assert board.replaced == 1
    naive = row_of(board, "naive")
    assert naive["n_seeds"] == 2
    assert naive["cells"]["final:ct_seg"]["mean"] == pytest.approx(0.4)
    assert naive["cells"]["final:pet_seg"]["mean"] == pytest.approx(0.6)
    assert {"replay [mem_size=10]", "replay [mem_size=20]"} <= set(board.methods())


def test_invalid_files_are_reported_not_fatal(base, tmp_path):
    good = variant(base, tmp_path, "naive", 0)
    (tmp_path / "broken.json").write_text("{not json", encoding="utf-8")
    newer = load_json(good) | {"schema_version": 99}
    (tmp_path / "newer.json").write_text(json.dumps(newer), encoding="utf-8")
    results, problems = load_results(tmp_path)
    assert [p for p, _ in results] == [good]
    assert len(problems) == 2 and any("newer" in p for p in problems)
    assert read_result(good).strategy.name == "naive"
