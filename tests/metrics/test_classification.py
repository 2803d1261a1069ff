import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from unicon_bench.metrics import roc_auc
from unicon_bench.metrics.classification import _rank_auc


def test_hand_cases():
    labels = [0, 0, 1, 1]
    assert roc_auc([0.1, 0.2, 0.8, 0.9], labels) == 1.0  # every positive above every negative
    assert roc_auc([0.9, 0.8, 0.2, 0.1], labels) == 0.0  # reversed ranking
    assert roc_auc([0.5, 0.5, 0.5, 0.5], labels) == 0.5  # all ties count 1/2
    # Positives 0.35, 0.8 vs negatives 0.1, 0.4: 0.35>0.1, 0.35<0.4, 0.8>0.1, 0.8>0.4 -> 3/4
    assert roc_auc([0.1, 0.4, 0.35, 0.8], labels) == pytest.approx(0.75)


def test_matches_sklearn_on_random_data():
    rng = np.random.default_rng(0)
    labels = rng.random(200) < 0.3
    scores = rng.normal(size=200) + labels
    scores[:20] = np.round(scores[:20])  # some ties
    expected = roc_auc_score(labels, scores)
    assert roc_auc(scores, labels) == pytest.approx(expected, abs=1e-12)
    assert roc_auc(torch.from_numpy(scores), torch.from_numpy(labels)) == pytest.approx(expected, abs=1e-12)
    # Non-0/1 labels: the larger value is the positive class.
    assert roc_auc(scores, np.where(labels, 2, 1)) == pytest.approx(expected, abs=1e-12)
    # Fallback used without scikit-learn agrees.
    assert _rank_auc(scores, labels) == pytest.approx(expected, abs=1e-12)


def test_single_class_is_nan():
    assert np.isnan(roc_auc([0.1, 0.7, 0.3], [1, 1, 1]))
    assert np.isnan(roc_auc([0.1, 0.7, 0.3], [0, 0, 0]))


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="binary"):
        roc_auc([0.1, 0.2, 0.3], [0, 1, 2])
    with pytest.raises(ValueError, match="lengths differ"):
        roc_auc([0.1, 0.2], [0, 1, 1])
