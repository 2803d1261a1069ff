"""Area under the ROC curve for binary classification scores."""

from __future__ import annotations

from typing import Any

import numpy as np

from unicon_bench.metrics._common import to_numpy


def _rank_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Mann-Whitney form of the AUC (ties count 1/2), used when scikit-learn is absent."""
    from scipy.stats import rankdata

    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    ranks = rankdata(scores)  # average ranks for ties
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def roc_auc(scores: Any, labels: Any) -> float:
    """ROC AUC of ``scores`` (higher = more likely positive) against binary ``labels``.

    Labels may be bool, 0/1 or any two values (the larger one is the positive
    class). Computed with ``sklearn.metrics.roc_auc_score``; if scikit-learn is
    not installed (it is a test-only dependency), the identical Mann-Whitney
    rank formula is used. When ``labels`` contain a single class the AUC is
    undefined and nan is returned instead of raising.
    """
    s = to_numpy(scores, dtype=float).ravel()
    y = to_numpy(labels).ravel()
    if s.shape != y.shape:
        raise ValueError(f"scores and labels lengths differ: {s.size} vs {y.size}")
    if s.size == 0:
        raise ValueError("scores and labels are empty")
    if not np.isfinite(s).all():
        raise ValueError("scores contain nan or inf")
    classes = np.unique(y)
    if classes.size > 2:
        raise ValueError(f"labels must be binary, got {classes.size} classes")
    if classes.size < 2:
        return float("nan")
    positive = y == classes[1]
    try:
        from sklearn.metrics import roc_auc_score
    except ImportError:
        return _rank_auc(s, positive)
    return float(roc_auc_score(positive, s))
