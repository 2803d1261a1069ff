"""Balanced accuracy, Brier score and ECE on a hand-computed case; the bootstrap AUC against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest

from unicon_bench.metrics.classification import balanced_accuracy, brier, brier_per_subject, ece, roc_auc_rows

PROBS = [0.05, 0.15, 0.35, 0.72, 0.78, 0.95]
LABELS = [0, 0, 1, 1, 0, 1]


def test_ece_hand_case():
    # ten bins (i/10, (i+1)/10]: 0.05 | 0.15 | 0.35 | 0.72 and 0.78 together | 0.95
    # |label mean - prob mean| per bin: 0.05, 0.15, 0.65, |0.5 - 0.75| = 0.25 (two subjects), 0.05
    want = (0.05 + 0.15 + 0.65 + 2 * 0.25 + 0.05) / 6
    assert ece(PROBS, LABELS) == pytest.approx(want)
    # one bin: |mean label - mean probability|
    assert ece(PROBS, LABELS, n_bins=1) == pytest.approx(abs(3 / 6 - np.mean(PROBS)))


def test_perfect_calibration_has_zero_ece():
    probs = [0.25] * 4 + [0.75] * 4
    labels = [1, 0, 0, 0, 1, 1, 1, 0]
    assert ece(probs, labels) == pytest.approx(0.0)


def test_brier_hand_case():
    want = (0.05**2 + 0.15**2 + 0.65**2 + 0.28**2 + 0.78**2 + 0.05**2) / 6
    assert brier(PROBS, LABELS) == pytest.approx(want)
    assert np.mean(brier_per_subject(PROBS, LABELS)) == pytest.approx(want)


def test_balanced_accuracy_at_the_threshold():
    # at 0.5: positives (0.35, 0.72, 0.95) -> 2 of 3 found; negatives (0.05, 0.15, 0.78) -> 2 of 3 rejected
    assert balanced_accuracy(PROBS, LABELS) == pytest.approx(2 / 3)
    # at 0.3 every positive is found, still 2 of 3 negatives rejected
    assert balanced_accuracy(PROBS, LABELS, threshold=0.3) == pytest.approx((1 + 2 / 3) / 2)
    assert np.isnan(balanced_accuracy([0.2, 0.7], [1, 1]))  # one class: undefined


def test_invalid_probabilities_refused():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        brier([0.2, 1.5], [0, 1])
    with pytest.raises(ValueError, match="0/1"):
        ece([0.2, 0.5], [0, 2])


def test_roc_auc_rows_equals_sklearn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    scores = rng.normal(size=(50, 20)).round(1)  # ties included
    labels = rng.random((50, 20)) > 0.6
    labels[0] = False  # one class: nan
    got = roc_auc_rows(scores, labels)
    assert np.isnan(got[0])
    want = [roc_auc_score(labels[b], scores[b]) for b in range(1, 50)]
    np.testing.assert_allclose(got[1:], want, atol=1e-12)
