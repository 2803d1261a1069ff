"""Classification metrics: ROC AUC of scores; balanced accuracy, Brier score and ECE of probabilities."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from unicon_bench.metrics._common import to_numpy
from unicon_bench.metrics.registry import Score, register_metric

if TYPE_CHECKING:
    from unicon_bench.metrics.evaluate import ClassificationInputs


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


@register_metric("auc", task="classification", direction="higher", unit="1", label="AUC",
                 description="area under the ROC curve (scikit-learn)", primary=True)
def _auc_metric(x: ClassificationInputs) -> dict[str, float]:
    return {"auc": roc_auc(x.logits, x.labels)}


def _probabilities(probs: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    p = to_numpy(probs, dtype=float).ravel()
    y = to_numpy(labels).ravel()
    if p.shape != y.shape or p.size == 0:
        raise ValueError(f"probabilities and labels must be non-empty and of one length, got {p.size} and {y.size}")
    if not (np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()):
        raise ValueError("probabilities must lie in [0, 1]")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0/1")
    return p, y.astype(int)


def balanced_accuracy(probs: Any, labels: Any, threshold: float = 0.5) -> float:
    """Balanced accuracy of ``probs >= threshold`` (scikit-learn); nan when the labels hold one class."""
    from sklearn.metrics import balanced_accuracy_score

    p, y = _probabilities(probs, labels)
    if np.unique(y).size < 2:
        return float("nan")
    return float(balanced_accuracy_score(y, (p >= threshold).astype(int)))


def brier_per_subject(probs: Any, labels: Any) -> np.ndarray:
    """Squared error of each probability; their mean is the Brier score."""
    p, y = _probabilities(probs, labels)
    return (p - y) ** 2


def brier(probs: Any, labels: Any) -> float:
    """Brier score, the mean squared error of the predicted probability (scikit-learn)."""
    from sklearn.metrics import brier_score_loss

    p, y = _probabilities(probs, labels)
    return float(brier_score_loss(y, p, pos_label=1))


def ece(probs: Any, labels: Any, n_bins: int = 10) -> float:
    """Expected calibration error over ``n_bins`` equal-width bins of [0, 1].

    ECE = sum over non-empty bins b of (n_b / N) |mean label in b - mean probability in b|; the
    per-bin means are scikit-learn's ``calibration_curve(strategy="uniform")``, the bin counts use
    its binning (bins (i / n_bins, (i + 1) / n_bins]; 0 falls in the first bin).
    """
    from sklearn.calibration import calibration_curve

    p, y = _probabilities(probs, labels)
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    prob_true, prob_pred = calibration_curve(y, p, n_bins=n_bins, strategy="uniform")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    counts = np.bincount(np.searchsorted(edges[1:-1], p), minlength=n_bins)
    counts = counts[counts > 0]
    return float(np.sum(counts / p.size * np.abs(prob_true - prob_pred)))


@register_metric("balanced_accuracy", task="classification", direction="higher", unit="1", label="balanced accuracy",
                 description="balanced accuracy at the scenario's probability threshold (scikit-learn)")
def _balanced_accuracy_metric(x: ClassificationInputs) -> dict[str, float]:
    return {"balanced_accuracy": balanced_accuracy(x.probs, x.labels, x.options.threshold)}


@register_metric("brier", task="classification", direction="lower", unit="1", label="Brier score",
                 description="mean squared error of the predicted probability (scikit-learn)", per_subject=True)
def _brier_metric(x: ClassificationInputs) -> dict[str, Score]:
    # scikit-learn's value, not the mean of the squared errors kept beside it
    return {"brier": Score(brier(x.probs, x.labels), brier_per_subject(x.probs, x.labels).tolist())}


@register_metric("ece", task="classification", direction="lower", unit="1", label="ECE",
                 description="expected calibration error over equal-width probability bins")
def _ece_metric(x: ClassificationInputs) -> dict[str, float]:
    return {"ece": ece(x.probs, x.labels, x.options.ece_bins)}


def roc_auc_rows(scores: Any, labels: Any) -> np.ndarray:
    """ROC AUC of each row of (B, n) ``scores`` against (B, n) binary ``labels`` (bootstrap replicates).

    The Mann-Whitney form with average ranks for ties, as ``_rank_auc`` (equal to scikit-learn's
    ``roc_auc_score`` row by row); nan for a row holding one class.
    """
    from scipy.stats import rankdata

    s = to_numpy(scores, dtype=float)
    pos = to_numpy(labels).astype(bool)
    if s.ndim != 2 or s.shape != pos.shape:
        raise ValueError(f"expected (B, n) scores and labels of one shape, got {s.shape} and {pos.shape}")
    ranks = rankdata(s, axis=1)
    n_pos = pos.sum(1).astype(float)
    n_neg = s.shape[1] - n_pos
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = ((ranks * pos).sum(1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    auc[(n_pos == 0) | (n_neg == 0)] = np.nan
    return auc
