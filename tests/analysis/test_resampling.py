"""The hierarchical bootstrap: vectorised summaries and recomputed metrics against the reference code."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from unicon_bench.analysis.resampling import (
    BOTH,
    SEEDS,
    SUMMARIES,
    Bootstrap,
    c_index_rows,
    metric_replicates,
    percentile_interval,
    summary_of,
)
from unicon_bench.metrics import continual
from unicon_bench.metrics.classification import roc_auc
from unicon_bench.metrics.survival import c_index

from .conftest import make_result


@pytest.mark.parametrize("T", [1, 2, 3, 4])
def test_vectorised_summaries_equal_continual(T):
    rng = np.random.default_rng(T)
    M = rng.uniform(0, 1, size=(7, T + 1, T))
    for name in SUMMARIES:
        got = summary_of(name, M)
        want = [continual.summarize(m[1:], m[0])[name] for m in M]
        np.testing.assert_allclose(got, want, equal_nan=True)


def test_c_index_rows_equal_c_index_on_bootstrap_draws():
    rng = np.random.default_rng(0)
    n = 20
    risk, time = rng.normal(size=n), rng.integers(1, 8, n).astype(float)  # tied times on purpose
    risk[:4] = risk[4:8]  # and tied risks
    event = rng.integers(0, 2, n)
    idx = rng.integers(0, n, size=(30, n))  # duplicates tie everything with their copy
    got = c_index_rows(risk[idx], time[idx], event[idx])
    want = [c_index(risk[i], time[i], event[i]) for i in idx]
    np.testing.assert_allclose(got, want, equal_nan=True)


def test_auc_and_dice_replicates_recompute_the_metric():
    rng = np.random.default_rng(1)
    n = 30
    values = {"probability": rng.uniform(size=n).tolist(), "label": rng.integers(0, 2, n).tolist(),
              "dice": rng.uniform(size=n).tolist()}
    idx = rng.integers(0, n, size=(25, n))
    p, lab, d = (np.array(values[k]) for k in ("probability", "label", "dice"))
    auc = metric_replicates(values, "auc", idx)
    want = [roc_auc(p[i], lab[i]) if len(set(lab[i])) == 2 else np.nan for i in idx]
    np.testing.assert_allclose(auc, want, equal_nan=True)
    np.testing.assert_allclose(metric_replicates(values, "dice", idx), d[idx].mean(1))
    assert metric_replicates({"risk": [1.0]}, "auc", idx) is None


def test_one_seed_interval_matches_scipy_bootstrap_percentile():
    """With one seed the hierarchical bootstrap of a final Dice is the subject bootstrap of its mean."""
    run = make_result("naive", 0)
    boot = Bootstrap(n_boot=20000, seed=3)
    est = boot.estimate([run], "final:ct_seg")
    assert est.resampled == BOTH and est.n_seeds == 1 and est.n_subjects == 12
    dice = np.array(run.subjects(2)["dice"])
    assert est.point == pytest.approx(dice.mean())
    ref = stats.bootstrap((dice,), np.mean, n_resamples=20000, method="percentile", confidence_level=0.95,
                          random_state=np.random.default_rng(5)).confidence_interval
    lo, hi = est.interval()
    assert lo == pytest.approx(ref.low, abs=0.004) and hi == pytest.approx(ref.high, abs=0.004)


def test_seed_level_only_without_subjects_and_point_is_the_mean_of_run_summaries():
    runs = [make_result("naive", s) for s in range(4)]
    boot = Bootstrap(n_boot=500)
    est = boot.estimate(runs, "final_average")  # ct_cls and ct_prog have no per-subject values
    assert est.resampled == SEEDS
    assert est.point == pytest.approx(np.mean([r.summary.final_average for r in runs]))
    per_seed = np.array([r.summary.final_average for r in runs])
    np.testing.assert_allclose(est.replicates, per_seed[boot.seed_index(4)].mean(1))
    assert boot.estimate(runs, "final:ct_seg").resampled == BOTH
    assert boot.estimate(runs, "final:ct_seg", subjects=False).resampled == SEEDS


def test_same_seeds_same_draws_and_percentile_interval():
    a, b = Bootstrap(100, seed=7), Bootstrap(100, seed=7)
    np.testing.assert_array_equal(a.seed_index(3), b.seed_index(3))
    np.testing.assert_array_equal(a.subject_index(2, 16), b.subject_index(2, 16))
    x = np.arange(1001, dtype=float)
    assert percentile_interval(x) == pytest.approx((25.0, 975.0))
    assert percentile_interval(np.full(10, np.nan)) == (None, None)


def test_suite_runs_in_seconds():
    import time
    from pathlib import Path

    from unicon_bench.analysis.aggregate import aggregate, load_results
    from unicon_bench.analysis.resampling import columns_for

    root = Path(__file__).parents[2] / "benchmarks" / "results" / "cpu-default-suite"
    boards = aggregate(load_results(root)[0])
    start = time.perf_counter()
    for board in boards:
        boot = Bootstrap(1000)
        for m in board.methods():
            for col in columns_for(board.experiences):
                boot.estimate([r.result for r in board.runs_of(m)], col)
    assert time.perf_counter() - start < 30  # about 2 s on a free core
