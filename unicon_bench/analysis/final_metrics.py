"""Every metric of the final models, with two kinds of 95 % interval, for the leaderboard's metric selector.

Per board and metric key (``primary`` = each experience's primary metric; ``hd95``, ``td_auc@24``...):
one row per method and one cell per experience that has the metric, holding the mean over seeds with
its t-interval (across seeds, as the overview), and a percentile bootstrap interval over *subjects*
(``per_subject`` of the results): subjects are resampled with replacement (the same draw for every
seed, as all seeds share the scenario's evaluation subjects), the metric recomputed per seed and
averaged over seeds. The bootstrap exists for metrics that are means of per-subject values (Dice,
HD95, NSD, lesion counts and volumes, Brier score) and for the AUC (recomputed from the stored
probabilities and labels); C-indices, ECE, balanced accuracy, time-dependent AUC and IBS get none.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from unicon_bench.analysis.aggregate import (
    CONFIDENCE,
    EXP_PREFIX,
    Board,
    Run,
    _mark,
    mean_ci,
    metric_column,
)
from unicon_bench.metrics.registry import METRICS, get_metric, split_key

PRIMARY = "primary"
N_BOOT = 1000


def metric_options(board: Board) -> list[str]:
    """``primary`` and every metric key of the board's final models, in registry order."""
    found: dict[str, tuple[int, float]] = {}
    order = list(METRICS)
    for run in board.runs:
        for j in range(len(board.experiences)):
            for key in run.result.metric_keys(j)[1:]:
                name, horizon = split_key(key)
                found[key] = (order.index(name), horizon or 0.0)
    return [PRIMARY, *sorted(found, key=lambda k: found[k])]


def column_of(board: Board, j: int, key: str) -> str | None:
    """The run-value column of experience ``j`` for ``key``; None if the experience lacks the metric."""
    name = board.experiences[j]
    if key == PRIMARY or key == board.metrics[j]:
        return EXP_PREFIX + name
    col = metric_column(name, key)
    return col if any(col in r.values for r in board.runs) else None


def bootstrap_ci(runs: list[Run], j: int, metric: str, n_boot: int = N_BOOT, seed: int = 0,
                 confidence: float = CONFIDENCE) -> tuple[float | None, float | None]:
    """Percentile bootstrap interval over subjects of the seed-averaged ``metric`` on experience ``j``."""
    spec = get_metric(metric)
    subjects = [r.result.subjects(j) for r in runs]
    if not runs or not all(subjects):
        return None, None
    sizes = {len(next(iter(s.values()))) for s in subjects}
    if len(sizes) != 1 or 0 in sizes:
        return None, None
    n = sizes.pop()
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))

    def column(s: dict, field: str) -> np.ndarray:
        return np.array([np.nan if v is None else v for v in s[field]], dtype=float)

    if spec.per_subject and all(metric in s for s in subjects):
        stats = np.stack([np.nanmean(column(s, metric)[idx], axis=1) for s in subjects])
    elif metric == "auc" and all("probability" in s and "label" in s for s in subjects):
        from unicon_bench.metrics.classification import roc_auc_rows

        stats = np.stack([roc_auc_rows(column(s, "probability")[idx], column(s, "label")[idx]) for s in subjects])
    else:
        return None, None
    per_replicate = np.mean(stats, axis=0)
    per_replicate = per_replicate[np.isfinite(per_replicate)]
    if per_replicate.size < n_boot // 2:
        return None, None
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(per_replicate, [alpha, 1 - alpha])
    return float(lo), float(hi)


def metric_table(board: Board, key: str) -> dict[str, Any]:
    """The final-model table of one metric key: experiences having it, one row of cells per method."""
    exps = [(j, col) for j in range(len(board.experiences)) if (col := column_of(board, j, key)) is not None]
    rows = []
    for brow in board.rows:
        runs = board.runs_of(brow["method"])
        cells = {}
        for j, col in exps:
            mean, lo, hi, n = mean_ci(r.values.get(col) for r in runs)
            metric = board.metrics[j] if key == PRIMARY else key
            b_lo, b_hi = bootstrap_ci(runs, j, metric)
            cells[col] = {"mean": mean, "lo": lo, "hi": hi, "n": n, "boot_lo": b_lo, "boot_hi": b_hi,
                          "best": False, "tied": False}
        rows.append({"method": brow["method"], "cells": cells})
    for _j, col in exps:
        _mark(rows, board.runs, col)
    if key == PRIMARY:
        label, unit, direction = "primary metric", "", "higher"
    else:
        spec = get_metric(key)
        label, unit, direction = spec.label + (f" at {split_key(key)[1]:g}" if spec.horizons else ""), spec.unit, spec.direction
    return {"key": key, "label": label, "unit": unit, "direction": direction,
            "experiences": [(board.experiences[j], board.metrics[j] if key == PRIMARY else key, col) for j, col in exps],
            "rows": rows}
