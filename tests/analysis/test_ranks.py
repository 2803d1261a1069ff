"""Rank uncertainty and Friedman/Nemenyi against scipy, autorank and Demšar (2006)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from unicon_bench.analysis.aggregate import aggregate, load_results
from unicon_bench.analysis.ranks import (
    average_ranks,
    board_ranks,
    critical_difference,
    friedman,
    iman_davenport,
    nemenyi_cd,
    rank_rows,
)
from unicon_bench.analysis.resampling import Bootstrap

# Demšar (2006), Table 5: q_0.05 of the Nemenyi test for k = 2..10 classifiers
DEMSAR_Q05 = [1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164]


@pytest.mark.parametrize("k,q", list(zip(range(2, 11), DEMSAR_Q05)))
def test_nemenyi_q_matches_demsar_table(k, q):
    assert nemenyi_cd(k, 6) / math.sqrt(k * (k + 1) / 36) == pytest.approx(q, abs=1.5e-3)


def test_demsar_worked_example():
    """Demšar sec. 3.2.4: 4 classifiers on 14 data sets, average ranks 3.143, 2.000, 2.893, 1.964."""
    ranks = np.array([3.143, 2.000, 2.893, 1.964])
    n, k = 14, 4
    chi2 = 12 * n / (k * (k + 1)) * (np.sum(ranks**2) - k * (k + 1) ** 2 / 4)
    assert chi2 == pytest.approx(9.28, abs=0.02)
    assert iman_davenport(chi2, n, k) == pytest.approx(3.69, abs=0.01)
    assert nemenyi_cd(k, n) == pytest.approx(1.25, abs=0.005)  # CD = 2.569 sqrt(4*5 / (6*14))


def test_friedman_matches_scipy_and_autorank_cd():
    rng = np.random.default_rng(0)
    table = rng.normal(size=(12, 5)) + np.arange(5) * 0.4
    chi2, p, _ff, _pff = friedman(table)
    ref = stats.friedmanchisquare(*table.T)
    assert (chi2, p) == pytest.approx((ref.statistic, ref.pvalue))
    ranks = average_ranks(table, higher_better=True)
    n, k = table.shape
    by_hand = 12 * n / (k * (k + 1)) * (np.sum(ranks**2) - k * (k + 1) ** 2 / 4)  # no ties: scipy's = Demšar's
    assert chi2 == pytest.approx(by_hand)
    autorank = pytest.importorskip("autorank._util")
    assert nemenyi_cd(k, n) == pytest.approx(autorank._critical_distance(0.05, k, n), rel=2e-3)  # its qsturng table
    cd = critical_difference(table, list("abcde"), [str(i) for i in range(n)])
    assert cd.avg_ranks[0] == max(cd.avg_ranks)  # the smallest column ranks worst
    assert all(max(cd.avg_ranks[cd.methods.index(m)] for m in g) - min(cd.avg_ranks[cd.methods.index(m)] for m in g)
               < cd.cd for g in cd.groups)


def test_rank_rows_direction_ties_and_nan():
    v = np.array([[0.9, 0.5, 0.5, np.nan]])
    np.testing.assert_array_equal(rank_rows(v, True), [[1, 2.5, 2.5, 4]])
    np.testing.assert_array_equal(rank_rows(v, False), [[3, 1.5, 1.5, 4]])


def test_board_ranks_give_rank_intervals(synthetic_folder):
    (board,) = aggregate(load_results(synthetic_folder)[0])
    ranks = {r.method: r for r in board_ranks(board, "final_average", Bootstrap(500))}
    best = ranks["better"]
    assert best.rank == 1 and best.rank_low == 1 and best.rank_high == 1 and best.rank_freq[0] == 1.0
    tied = ranks["naive"], ranks["copy"]
    assert all(r.rank == 2.5 and r.rank_low == 2.5 == r.rank_high for r in tied)
    assert best.ci_low <= best.mean <= best.ci_high and best.n_seeds == 5
