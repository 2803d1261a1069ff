"""Hierarchical bootstrap of every number a board reports: training seeds, then eval subjects.

One replicate draws the training seeds with replacement and, independently, the eval subjects of
each experience with replacement. The subject draw is applied to every seed and every method: all
runs of a scenario are evaluated on the same subjects in the same order, so the subject effect is
crossed with seeds and methods, not nested in them. Each cell of a run's matrix is recomputed on the
drawn subjects (the mean for per-subject metrics such as Dice; the AUC and Harrell's C-index from the
stored predictions), the continual summaries (BWT, FWT, forgetting, plasticity; the vectorised forms
of ``unicon_bench.metrics.continual``) are computed per run from the recomputed matrix, and the
replicate's number is their mean over the drawn seeds. Intervals are percentile intervals (95 %).

Subjects are resampled for a number only when every cell it uses has per-subject values in every
run: result schema 3 keeps them for every cell, older files for the final model only (so there BWT,
FWT, forgetting and plasticity vary over seeds only) or not at all. ``Estimate.resampled`` says
which: ``"seeds+subjects"`` or ``"seeds"``.

The draws are a pure function of (bootstrap seed, number of training seeds) and (bootstrap seed,
experience, number of subjects), so methods that share their seeds get the same replicates:
comparisons and ranks built on them are paired by construction.

With very few seeds the seed level is coarse: 3 seeds give 10 distinct multisets, and the bootstrap
standard error of a mean of n values is sqrt((n - 1) / n) of the textbook one (0.82 for n = 3).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Sequence

import numpy as np

from unicon_bench.results import RunResult

__all__ = ["Bootstrap", "Estimate", "SUMMARIES", "c_index_rows", "metric_replicates", "percentile_interval",
           "summary_of"]

N_BOOT = 2000
CONFIDENCE = 0.95
SUMMARIES = ("final_average", "bwt", "fwt", "forgetting", "plasticity")
FINAL = "final:"  # the column prefix of one experience's final score (unicon_bench.analysis.aggregate)
BOTH, SEEDS = "seeds+subjects", "seeds"
Cell = tuple[int, int]  # (trained_upto in -1..T-1, evaluated_on)


# -- the continual summaries, vectorised over leading axes of M (..., T + 1, T): row 0 the untrained model,
#    row i + 1 the model trained up to i (the same formulas as unicon_bench.metrics.continual, tested equal).

def _rows(M: np.ndarray) -> np.ndarray:
    return M[..., 1:, :]


def _final_average(M: np.ndarray) -> np.ndarray:
    return M[..., -1, :].mean(-1)


def _bwt(M: np.ndarray) -> np.ndarray:
    T = M.shape[-1]
    if T == 1:
        return np.full(M.shape[:-2], np.nan)
    j = np.arange(T - 1)
    R = _rows(M)
    return (R[..., T - 1, j] - R[..., j, j]).mean(-1)


def _fwt(M: np.ndarray) -> np.ndarray:
    T = M.shape[-1]
    if T == 1:
        return np.full(M.shape[:-2], np.nan)
    j = np.arange(1, T)
    return (M[..., j, j] - M[..., 0, j]).mean(-1)  # R[j - 1][j] is row j of M


def _forgetting(M: np.ndarray) -> np.ndarray:
    T = M.shape[-1]
    if T == 1:
        return np.full(M.shape[:-2], np.nan)
    R = _rows(M)
    drops = [R[..., j:T - 1, j].max(-1) - R[..., T - 1, j] for j in range(T - 1)]
    return np.mean(drops, axis=0)


def _plasticity(M: np.ndarray) -> np.ndarray:
    j = np.arange(M.shape[-1])
    return _rows(M)[..., j, j].mean(-1)


_SUMMARY_FN = {"final_average": _final_average, "bwt": _bwt, "fwt": _fwt, "forgetting": _forgetting,
               "plasticity": _plasticity}


def _cells_of(summary: str, T: int) -> list[Cell]:
    """The matrix cells a summary reads."""
    last = T - 1
    if summary == "final_average":
        return [(last, j) for j in range(T)]
    if summary == "bwt":
        return [(last, j) for j in range(last)] + [(j, j) for j in range(last)]
    if summary == "fwt":
        return [(j - 1, j) for j in range(1, T)] + [(-1, j) for j in range(1, T)]
    if summary == "forgetting":
        return [(i, j) for j in range(last) for i in range(j, T)]
    return [(j, j) for j in range(T)]  # plasticity


def summary_of(summary: str, M: Any) -> np.ndarray:
    """A continual summary of stacked (..., T + 1, T) matrices whose row 0 is the untrained model."""
    return _SUMMARY_FN[summary](np.asarray(M, dtype=float))


# -- one cell recomputed on drawn subjects

def c_index_rows(risk: Any, time: Any, event: Any, chunk: int = 256) -> np.ndarray:
    """Harrell's C-index of each row of (B, n) arrays (bootstrap replicates), as ``metrics.survival.c_index``.

    A pair is comparable when the shorter time is an observed event, or when the times tie and only one
    of them is an event (lifelines' convention); tied risks in a comparable pair count 1/2; nan for a
    row without a comparable pair.
    """
    r, t = np.asarray(risk, dtype=float), np.asarray(time, dtype=float)
    e = np.asarray(event).astype(bool)
    out = np.empty(r.shape[0])
    for a in range(0, r.shape[0], chunk):
        rr, tt, ee = r[a:a + chunk], t[a:a + chunk], e[a:a + chunk]
        ti, tk, ei, ek = tt[:, :, None], tt[:, None, :], ee[:, :, None], ee[:, None, :]
        comparable = ei & ((ti < tk) | ((ti == tk) & ~ek))  # i's event came before k's last follow-up
        ri, rk = rr[:, :, None], rr[:, None, :]
        concordant = (comparable & (ri > rk)).sum((1, 2)) + 0.5 * (comparable & (ri == rk)).sum((1, 2))
        pairs = comparable.sum((1, 2))
        with np.errstate(invalid="ignore", divide="ignore"):
            out[a:a + chunk] = np.where(pairs > 0, concordant / pairs, np.nan)
    return out


def _column(values: dict, name: str) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values[name]], dtype=float)


def metric_replicates(values: dict[str, list], metric: str, idx: np.ndarray) -> np.ndarray | None:
    """``metric`` recomputed on each row of subject indices ``idx`` (B, n); None if ``values`` cannot give it.

    Per-subject metrics (Dice, HD95, ...) are the mean of the drawn subjects' values; the AUC and
    Harrell's C-index are recomputed from the stored probabilities/labels and risks/times/events.
    """
    from unicon_bench.metrics.registry import METRICS

    if metric == "auc" and {"probability", "label"} <= values.keys():
        from unicon_bench.metrics.classification import roc_auc_rows

        return roc_auc_rows(_column(values, "probability")[idx], _column(values, "label")[idx])
    if metric == "c_index" and {"risk", "time", "event"} <= values.keys():
        return c_index_rows(_column(values, "risk")[idx], _column(values, "time")[idx], _column(values, "event")[idx])
    if metric in METRICS and METRICS[metric].per_subject and metric in values:
        with np.errstate(invalid="ignore"):
            return _column(values, metric)[idx].mean(axis=1)
    return None


# -- draws and estimates

@lru_cache(maxsize=256)
def _draw(n_boot: int, seed: int, level: int, j: int, k: int) -> np.ndarray:
    idx = np.random.default_rng([seed, level, j, k]).integers(0, k, size=(n_boot, k))
    idx.flags.writeable = False
    return idx


def percentile_interval(replicates: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float | None, float | None]:
    """Percentile interval of the finite replicates (None if fewer than half are finite)."""
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0 or finite.size < replicates.size / 2:
        return None, None
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(finite, [alpha, 1 - alpha])
    return float(lo), float(hi)


@dataclass
class Estimate:
    """One reported number: its value (mean over seeds), its bootstrap replicates and how they were drawn."""

    column: str
    point: float | None
    replicates: np.ndarray  # (n_boot,)
    resampled: str  # "seeds+subjects" or "seeds"
    seeds: tuple[int, ...]
    n_subjects: int | None  # eval subjects of the experiences the number uses (None: none recorded)

    @property
    def n_seeds(self) -> int:
        return len(self.seeds)

    def interval(self, confidence: float = CONFIDENCE) -> tuple[float | None, float | None]:
        return percentile_interval(self.replicates, confidence) if self.point is not None else (None, None)


def _nanmean(x: np.ndarray, axis: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a replicate whose every drawn value is nan stays nan
        return np.nanmean(x, axis=axis)


class Bootstrap:
    """The hierarchical bootstrap of a set of runs, with the recomputed cells cached per run.

    ``n_boot`` replicates drawn from ``seed``; one instance per board (or per command) shares the
    subject draws, and hence pairs every estimate it makes.
    """

    def __init__(self, n_boot: int = N_BOOT, seed: int = 0):
        if n_boot < 1:
            raise ValueError("n_boot must be at least 1")
        self.n_boot, self.seed = n_boot, seed
        self._cells: dict[tuple[int, Cell, str | None], tuple[RunResult, np.ndarray | None, int]] = {}

    def seed_index(self, k: int) -> np.ndarray:
        """(n_boot, k) positions of the drawn seeds among k sorted seeds."""
        return _draw(self.n_boot, self.seed, 0, 0, k)

    def subject_index(self, j: int, n: int) -> np.ndarray:
        """(n_boot, n) drawn subjects of experience j (n eval subjects); the same for every run."""
        return _draw(self.n_boot, self.seed, 1, j, n)

    def cell(self, run: RunResult, cell: Cell, key: str | None = None) -> tuple[np.ndarray | None, int]:
        """Replicates of one matrix cell on the drawn subjects, and the number of subjects (None, 0 if not recorded)."""
        ck = (id(run), cell, key)
        if ck not in self._cells:
            i, j = cell
            values = run.subjects(j, i)
            metric = run.scenario.metrics[j] if key is None else key
            n = len(next(iter(values.values()))) if values else 0
            reps = metric_replicates(values, metric, self.subject_index(j, n)) if n else None
            self._cells[ck] = (run, reps, n if reps is not None else 0)  # the run is kept so its id stays unique
        return self._cells[ck][1:]

    def subjects_available(self, runs: Sequence[RunResult], column: str) -> bool:
        """Whether every cell ``column`` reads has per-subject values, of equal count, in every run."""
        key, cells, _fn = _plan(column, runs[0].scenario.experiences)
        for c in cells:
            sizes = {self.cell(r, c, key)[1] for r in runs}
            if 0 in sizes or len(sizes) != 1:
                return False
        return True

    def estimate(self, runs: Sequence[RunResult], column: str, subjects: bool = True) -> Estimate:
        """The mean over ``runs`` (one per seed) of ``column`` and its hierarchical bootstrap replicates.

        ``column``: a continual summary (``final_average``, ``bwt``, ``fwt``, ``forgetting``,
        ``plasticity``), ``final:<experience>`` (the primary metric's final score) or
        ``final:<experience>/<metric key>``. ``subjects=False`` resamples seeds only.
        """
        runs = sorted(runs, key=lambda r: r.seed)
        if not runs:
            raise ValueError("no runs to resample")
        experiences = runs[0].scenario.experiences
        key, cells, fn = _plan(column, experiences)
        T, S = len(experiences), len(runs)
        base = np.full((S, T + 1, T), np.nan)
        for s, run in enumerate(runs):
            init, R = run.rows(key)
            base[s] = [[np.nan if v is None else v for v in row] for row in [init, *R]]
        per_run = fn(base)  # (S,)
        finite = per_run[np.isfinite(per_run)]
        point = float(finite.mean()) if finite.size else None
        use = subjects and self.subjects_available(runs, column)
        if use:
            M = np.repeat(base[None], self.n_boot, axis=0)
            for s, run in enumerate(runs):
                for i, j in cells:
                    M[:, s, i + 1, j] = self.cell(run, (i, j), key)[0]
            per_rep = fn(M)  # (B, S)
            drawn = np.take_along_axis(per_rep, self.seed_index(S), axis=1)
        else:
            drawn = per_run[self.seed_index(S)]
        n_subj = sum(self.cell(runs[0], (T - 1, j), key)[1] for j in sorted({j for _i, j in cells}))
        return Estimate(column=column, point=point, replicates=_nanmean(drawn, axis=1),
                        resampled=BOTH if use else SEEDS, seeds=tuple(r.seed for r in runs),
                        n_subjects=n_subj or None)


def columns_for(experiences: Sequence[str]) -> list[str]:
    """The numbers a board reports from the matrix: the summaries, then each experience's final score."""
    return [*SUMMARIES, *(FINAL + e for e in experiences)]


def _plan(column: str, experiences: Sequence[str]) -> tuple[str | None, list[Cell], Callable[[np.ndarray], np.ndarray]]:
    """(metric key or None for the primary metrics, the cells the column reads, the function of M)."""
    T = len(experiences)
    if column in _SUMMARY_FN:
        return None, _cells_of(column, T), _SUMMARY_FN[column]
    if column.startswith(FINAL):
        exp, _, key = column[len(FINAL):].partition("/")
        if exp in experiences:
            j = list(experiences).index(exp)
            return (key or None), [(T - 1, j)], lambda M: M[..., -1, j]
    raise KeyError(column)


def is_column(column: str, experiences: Sequence[str]) -> bool:
    """Whether ``column`` names a number of a board with these experiences (the metric key is not checked)."""
    try:
        _plan(column, experiences)
    except KeyError:
        return False
    return True


def is_finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)
