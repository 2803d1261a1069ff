"""Continual-learning summaries of an accuracy matrix.

``R[i][j]`` is the score on experience ``j`` after training on experience
``i``. ``R`` has ``n`` rows (experiences trained so far) of equal length ``T``
(experiences in the stream), with ``1 <= n <= T``; for a finished run
``n == T``. Metrics that look at past experiences use the seen ones
(``j < n``). ``init[j]`` is the score of the untrained model on experience
``j``. Any nan in the entries a metric uses propagates to its result.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def _matrix(R: Any) -> np.ndarray:
    """Validate ``R`` and return it as an (n, T) float array."""
    rows = [np.asarray(row, dtype=float) for row in R]
    if not rows:
        raise ValueError("R is empty: need at least one row of scores")
    if any(row.ndim != 1 for row in rows):
        raise ValueError("each row of R must be a 1-D sequence of scores")
    lengths = {row.size for row in rows}
    if len(lengths) > 1:
        raise ValueError(f"R is ragged: row lengths {[row.size for row in rows]}")
    n, T = len(rows), lengths.pop()
    if T == 0:
        raise ValueError("rows of R are empty: need at least one experience")
    if n > T:
        raise ValueError(f"R has more rows ({n}) than columns ({T}): one row per trained experience")
    return np.stack(rows)


def final_average(R: Sequence[Sequence[float]]) -> float:
    """Mean score of the last model on the experiences seen so far: mean_j<n R[n-1][j]."""
    m = _matrix(R)
    n = m.shape[0]
    return float(np.mean(m[n - 1, :n]))


def bwt(R: Sequence[Sequence[float]]) -> float:
    """Backward transfer (Lopez-Paz & Ranzato 2017): mean_j<n-1 (R[n-1][j] - R[j][j]); nan if n == 1."""
    m = _matrix(R)
    n = m.shape[0]
    if n == 1:
        return float("nan")
    j = np.arange(n - 1)
    return float(np.mean(m[n - 1, j] - m[j, j]))


def fwt(R: Sequence[Sequence[float]], init: Sequence[float] | None) -> float:
    """Forward transfer (Lopez-Paz & Ranzato 2017): mean over 1 <= j <= min(n, T-1) of R[j-1][j] - init[j].

    nan if ``T == 1`` or ``init`` is None.
    """
    m = _matrix(R)
    n, T = m.shape
    if init is None or T == 1:
        return float("nan")
    b = np.asarray(init, dtype=float)
    if b.shape != (T,):
        raise ValueError(f"init must have one score per experience ({T}), got shape {b.shape}")
    j = np.arange(1, min(n, T - 1) + 1)
    return float(np.mean(m[j - 1, j] - b[j]))


def forgetting(R: Sequence[Sequence[float]]) -> float:
    """Average forgetting (Chaudhry et al. 2018): mean_j<n-1 (max_{j<=l<=n-2} R[l][j]) - R[n-1][j]; nan if n == 1."""
    m = _matrix(R)
    n = m.shape[0]
    if n == 1:
        return float("nan")
    drops = [np.max(m[j : n - 1, j]) - m[n - 1, j] for j in range(n - 1)]
    return float(np.mean(drops))


def plasticity(R: Sequence[Sequence[float]]) -> float:
    """Learning accuracy: mean_j<n R[j][j], the score on each experience right after training on it."""
    m = _matrix(R)
    j = np.arange(m.shape[0])
    return float(np.mean(m[j, j]))


def summarize(R: Sequence[Sequence[float]], init: Sequence[float] | None = None) -> dict[str, float]:
    """All metrics of this module as a dict keyed final_average, bwt, fwt, forgetting, plasticity."""
    return {
        "final_average": final_average(R),
        "bwt": bwt(R),
        "fwt": fwt(R, init),
        "forgetting": forgetting(R),
        "plasticity": plasticity(R),
    }
