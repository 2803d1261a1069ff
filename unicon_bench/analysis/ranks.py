"""Rankings with their uncertainty: bootstrap ranks per board, Friedman + Nemenyi across boards.

``board_ranks``: every method of a board resampled with one ``resampling.Bootstrap`` (the same seed
and subject draws for all, so the ranks of a replicate are those of one possible world), ranked per
replicate (1 = best in the column's direction, ties averaged); per method the point rank, the mean
rank, the 95 % rank interval and the distribution over ranks (challengeR's blob plot), with the
mean and 95 % interval of the value itself. Leaderboard cells and ``--format json`` come from here.

``critical_difference``: Demšar (2006). Blocks are (board, experience) final scores averaged over
seeds, for the methods present on every block; the Friedman test (scipy.stats.friedmanchisquare, with
the Iman-Davenport F beside it), the average ranks, and the Nemenyi critical difference
``CD = q_alpha / sqrt(2) * sqrt(k (k + 1) / (6 N))``, q_alpha the studentized range quantile for k
groups and infinite degrees of freedom (scipy.stats.studentized_range).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from unicon_bench.analysis.aggregate import Board, Run, higher_is_better
from unicon_bench.analysis.resampling import SEEDS, CONFIDENCE, N_BOOT, Bootstrap, Estimate, columns_for, is_column

ALPHA = 0.05
LEGEND = ("mean over seeds; 95 % percentile interval of a hierarchical bootstrap (training seeds, then eval "
          "subjects where per-subject values are recorded: see `resampled`); rank 1 is best, its interval the "
          "2.5-97.5 % quantiles of the ranks over the same bootstrap replicates")


@dataclass
class MethodRank:
    """One method on one column of a board: value with interval, rank with interval and distribution."""

    method: str
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    rank: float | None
    mean_rank: float | None
    rank_low: float | None
    rank_high: float | None
    rank_freq: list[float]  # share of replicates at rank 1..k (ties averaged, rounded up)
    n_seeds: int
    resampled: str
    median_rank: float | None = None  # median of the bootstrap ranks


def rank_rows(values: np.ndarray, higher_better: bool) -> np.ndarray:
    """Ranks (1 = best, ties averaged) of each row of ``values`` (B, k); nan values rank last."""
    from scipy.stats import rankdata

    v = np.where(np.isfinite(values), values if higher_better else -values, -np.inf)
    return rankdata(-v, axis=-1, method="average")


def board_ranks(board: Board, column: str = "final_average", boot: Bootstrap | None = None,
                confidence: float = CONFIDENCE) -> list[MethodRank]:
    """Every method of ``board`` on ``column`` with its bootstrap interval and rank uncertainty, in board order."""
    boot = boot or Bootstrap(N_BOOT)
    methods = board.methods()
    estimates: list[Estimate] = [boot.estimate([r.result for r in board.runs_of(m)], column) for m in methods]
    hib = higher_is_better(column)
    reps = np.stack([e.replicates if e.point is not None else np.full(boot.n_boot, np.nan) for e in estimates], axis=1)
    ranks = rank_rows(reps, hib)  # (B, k)
    points = np.array([np.nan if e.point is None else e.point for e in estimates])
    point_ranks = rank_rows(points[None], hib)[0]
    alpha = (1 - confidence) / 2
    k = len(methods)
    out = []
    for i, (m, e) in enumerate(zip(methods, estimates)):
        lo, hi = e.interval(confidence)
        defined = e.point is not None
        freq = np.bincount(np.ceil(ranks[:, i]).astype(int) - 1, minlength=k)[:k] / boot.n_boot
        out.append(MethodRank(
            method=m, mean=e.point, ci_low=lo, ci_high=hi,
            rank=float(point_ranks[i]) if defined else None,
            mean_rank=float(ranks[:, i].mean()) if defined else None,
            rank_low=float(np.quantile(ranks[:, i], alpha, method="lower")) if defined else None,
            rank_high=float(np.quantile(ranks[:, i], 1 - alpha, method="higher")) if defined else None,
            rank_freq=[float(x) for x in freq], n_seeds=e.n_seeds, resampled=e.resampled,
            median_rank=float(np.median(ranks[:, i])) if defined else None))
    return out


def values_estimate(runs: Sequence[Run], column: str, boot: Bootstrap) -> Estimate:
    """The mean over ``runs`` of a per-run value (a cost column: ``Run.values``) and its bootstrap over seeds.

    Such a value has no eval subjects: the seed draws are the ones ``boot`` uses for every other number, so
    estimates of methods with the same seeds stay paired.
    """
    runs = sorted(runs, key=lambda r: r.result.seed)
    x = np.array([np.nan if r.values.get(column) is None else float(r.values[column]) for r in runs])
    finite = x[np.isfinite(x)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a replicate whose every drawn value is nan stays nan
        reps = np.nanmean(x[boot.seed_index(len(runs))], axis=1)
    return Estimate(column=column, point=float(finite.mean()) if finite.size else None, replicates=reps,
                    resampled=SEEDS, seeds=tuple(r.result.seed for r in runs), n_subjects=None)


def column_estimate(board: Board, method: str, column: str, boot: Bootstrap) -> Estimate:
    """Any overview column of one method: matrix numbers by the hierarchical bootstrap (seeds, then eval
    subjects where recorded), per-run values (costs) over seeds (``values_estimate``)."""
    runs = board.runs_of(method)
    if is_column(column, board.experiences):
        return boot.estimate([r.result for r in runs], column)
    return values_estimate(runs, column, boot)


def overview_intervals(board: Board, boot: Bootstrap | None = None) -> dict[str, dict[str, Estimate]]:
    """Per overview column (``board.columns``) and method, its ``Estimate`` (interval: ``Estimate.interval``)."""
    boot = boot or Bootstrap(N_BOOT)
    return {col: {m: column_estimate(board, m, col, boot) for m in board.methods()} for col in board.columns}


def board_statistics(board: Board, n_boot: int = N_BOOT, seed: int = 0) -> dict[str, list[MethodRank]]:
    """``board_ranks`` of every matrix column of the board (summaries, each experience's final score)."""
    boot = Bootstrap(n_boot, seed)
    return {col: board_ranks(board, col, boot) for col in columns_for(board.experiences)}


# -- across boards: Friedman + Nemenyi (Demšar 2006)

def average_ranks(table: np.ndarray, higher_better: bool = True) -> np.ndarray:
    """Mean rank (1 = best, ties averaged) of each column of an (N blocks, k methods) table."""
    return rank_rows(np.asarray(table, dtype=float), higher_better).mean(axis=0)


def nemenyi_cd(k: int, n_blocks: int, alpha: float = ALPHA) -> float:
    """Nemenyi critical difference of average ranks for k methods over N blocks (Demšar 2006, eq. 5)."""
    from scipy.stats import studentized_range

    q = studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2)
    return float(q * math.sqrt(k * (k + 1) / (6 * n_blocks)))


def iman_davenport(chi2: float, n: int, k: int) -> float:
    """Iman and Davenport's F_F = (N - 1) chi2_F / (N (k - 1) - chi2_F) (Demšar 2006, eq. 4)."""
    return (n - 1) * chi2 / (n * (k - 1) - chi2) if n * (k - 1) != chi2 else math.inf


def friedman(table: np.ndarray) -> tuple[float, float, float, float]:
    """(chi2_F, p, Iman-Davenport F_F, its p) of an (N, k) table; scipy's chi2 (with its tie correction)."""
    from scipy.stats import f as f_dist
    from scipy.stats import friedmanchisquare

    t = np.asarray(table, dtype=float)
    n, k = t.shape
    chi2, p = friedmanchisquare(*t.T)
    ff = iman_davenport(chi2, n, k)
    p_ff = float(f_dist.sf(ff, k - 1, (k - 1) * (n - 1))) if math.isfinite(ff) else 0.0
    return float(chi2), float(p), float(ff), p_ff


@dataclass
class CriticalDifference:
    """Average ranks of methods over blocks, the Friedman test and the Nemenyi critical difference."""

    methods: list[str]
    avg_ranks: list[float]
    blocks: list[str]
    chi2: float
    p: float
    iman_davenport: float
    p_iman_davenport: float
    cd: float
    alpha: float
    groups: list[list[str]] = field(default_factory=list)  # maximal sets whose ranks differ by < CD


def _cliques(methods: list[str], ranks: list[float], cd: float) -> list[list[str]]:
    order = sorted(range(len(methods)), key=lambda i: ranks[i])
    groups: list[list[str]] = []
    for a in range(len(order)):
        members = [order[b] for b in range(a, len(order)) if ranks[order[b]] - ranks[order[a]] < cd]
        if len(members) > 1 and not any(set(members) <= set(g) for g in groups):
            groups.append(members)
    return [[methods[i] for i in g] for g in groups]


def critical_difference(table: np.ndarray, methods: Sequence[str], blocks: Sequence[str],
                        higher_better: bool = True, alpha: float = ALPHA) -> CriticalDifference:
    """Friedman + Nemenyi on an (N blocks, k methods) table of scores."""
    t = np.asarray(table, dtype=float)
    if t.ndim != 2 or t.shape[1] < 3 or t.shape[0] < 2:
        raise ValueError(f"need at least 2 blocks and 3 methods, got a table of shape {t.shape}")
    ranks = average_ranks(t, higher_better)
    chi2, p, ff, p_ff = friedman(t if higher_better else -t)
    cd = nemenyi_cd(t.shape[1], t.shape[0], alpha)
    return CriticalDifference(methods=list(methods), avg_ranks=[float(r) for r in ranks], blocks=list(blocks),
                              chi2=chi2, p=p, iman_davenport=ff, p_iman_davenport=p_ff, cd=cd, alpha=alpha,
                              groups=_cliques(list(methods), [float(r) for r in ranks], cd))


def across_boards(boards: Sequence[Board], alpha: float = ALPHA) -> CriticalDifference | None:
    """Friedman + Nemenyi over every (board, experience) final score, for the methods on every board.

    None when fewer than 3 methods or 2 blocks are common to all boards.
    """
    common = set.intersection(*(set(b.methods()) for b in boards)) if boards else set()
    methods = sorted(common)
    rows, names = [], []
    for b in boards:
        cells = {row["method"]: row["cells"] for row in b.rows}
        for e in b.experiences:
            values = [cells[m][f"final:{e}"]["mean"] for m in methods]
            if all(v is not None for v in values):
                rows.append(values)
                names.append(f"{b.title} {e}")
    if len(methods) < 3 or len(rows) < 2:
        return None
    return critical_difference(np.array(rows), methods, names, True, alpha)
