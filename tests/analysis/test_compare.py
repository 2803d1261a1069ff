"""Paired comparisons: p-values, Holm, verdicts and power against references and hand-derived cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from unicon_bench.analysis.aggregate import aggregate, load_results
from unicon_bench.analysis.compare import (
    bootstrap_p,
    compare_boards,
    holm,
    minimum_detectable,
    seeds_needed,
    t_calibrated,
    verdict,
    z_sum,
)


def test_holm_matches_statsmodels_and_hand_case():
    from statsmodels.stats.multitest import multipletests

    ps = [0.01, 0.04, 0.03, 0.005]
    assert holm(ps) == pytest.approx(list(multipletests(ps, method="holm")[1]))
    # by hand: sorted 0.005*4, 0.01*3, 0.03*2, 0.04*1 -> 0.02, 0.03, 0.06, 0.06 (monotone)
    assert holm(ps) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([None, 0.02]) == [None, 0.02]


def test_bootstrap_p_by_hand():
    assert bootstrap_p(np.zeros(99)) == 1.0
    d = np.r_[np.full(95, 1.0), np.full(4, -1.0)]  # 4 of 99 at or below 0
    assert bootstrap_p(d) == pytest.approx(2 * 5 / 100)
    assert bootstrap_p(np.ones(999)) == pytest.approx(2 / 1000)


def test_t_calibration_over_seeds_is_the_paired_t_test():
    a, b = np.array([0.61, 0.55, 0.70]), np.array([0.50, 0.52, 0.58])
    diff = a - b
    boot = diff[np.random.default_rng(0).integers(0, 3, size=(200000, 3))].mean(1)
    lo, hi, p, _mde = t_calibrated(diff.mean(), boot.std(ddof=1), 3)
    ref = stats.ttest_rel(a, b)
    assert p == pytest.approx(ref.pvalue, rel=0.01)
    ci = ref.confidence_interval()
    assert (lo, hi) == pytest.approx((ci.low, ci.high), rel=0.01)


def test_power_by_hand():
    assert z_sum() == pytest.approx(1.959964 + 0.841621, abs=1e-5)
    assert minimum_detectable(0.01) == pytest.approx(0.028016, abs=1e-5)
    # SE 0.02 with 3 seeds, all of it from seeds: SE(k) = 0.02 sqrt(3/k); d = 0.05 -> k >= 3 (2.8016 * 0.02 / 0.05)^2
    assert seeds_needed(0.05, 0.02, 0.02, 3) == math.ceil(3 * (2.801585 * 0.02 / 0.05) ** 2)
    # a subject part of SE 0.02 alone exceeds (0.05 / 2.8016)^2: no number of seeds reaches d
    assert seeds_needed(0.05, math.hypot(0.02, 0.01), 0.01, 3) is None


@pytest.mark.parametrize("lo,hi,p,delta,hib,want", [
    (-0.005, 0.008, 0.9, 0.001, True, "equivalent"),
    (0.02, 0.08, 0.001, 0.05, True, "better"),
    (0.02, 0.08, 0.001, 0.05, False, "worse"),  # a higher forgetting is worse
    (-0.08, -0.02, 0.001, -0.05, False, "better"),
    (0.02, 0.08, 0.2, 0.05, True, "inconclusive"),
    (0.0, 0.0, 1.0, 0.0, True, "equivalent"),
])
def test_verdicts(lo, hi, p, delta, hib, want):
    assert verdict(lo, hi, p, delta, hib, rope=0.01) == want


def test_identical_copy_gives_zero_and_never_better_or_worse(synthetic_folder):
    boards = aggregate(load_results(synthetic_folder)[0])
    for rope in (0.01, 0.0):
        for col in ("final_average", "final:ct_seg", "bwt", "forgetting"):
            for test in ("bootstrap", "t"):
                (c,) = compare_boards(boards, "naive", ["copy"], [col], rope=rope, n_boot=300, test=test)
                assert c.delta == 0 and c.ci_low == 0 and c.ci_high == 0 and c.p == 1.0
                assert c.verdict == ("equivalent" if rope > 0 else "inconclusive")


def test_shift_is_found_paired_and_resampled_as_recorded(synthetic_folder):
    boards = aggregate(load_results(synthetic_folder)[0])
    rows = compare_boards(boards, "better", None, ["final_average", "final:ct_seg", "forgetting"], n_boot=1000)
    by = {(c.against, c.metric): c for c in rows}
    fa = by[("naive", "final_average")]
    assert fa.delta == pytest.approx(0.15, abs=0.01) and fa.verdict == "better" and fa.resampled == "seeds"
    seg = by[("naive", "final:ct_seg")]
    assert seg.resampled == "seeds+subjects" and seg.n_subjects == 12 and seg.verdict == "better"
    assert seg.ci_low <= seg.delta <= seg.ci_high and seg.mde >= 0
    assert len({c.p_holm for c in rows}) >= 1 and all(c.p_holm >= c.p for c in rows)
    assert fa.n_seeds == 5 and fa.seeds == [0, 1, 2, 3, 4]
