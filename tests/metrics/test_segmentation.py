import numpy as np
import pytest
import torch

from unicon_bench.metrics import DiceAccumulator, dice


def _numpy_dice(p: np.ndarray, t: np.ndarray) -> float:
    scores = []
    for ps, ts in zip(p.astype(bool), t.astype(bool)):
        denom = ps.sum() + ts.sum()
        scores.append(1.0 if denom == 0 else 2.0 * (ps & ts).sum() / denom)
    return float(np.mean(scores))


def test_hand_case():
    pred = np.zeros((1, 1, 2, 2, 2), dtype=bool)
    target = np.zeros_like(pred)
    pred[0, 0, 0, 0, :] = True  # voxels a, b
    pred[0, 0, 1, 1, 1] = True  # voxel c
    target[0, 0, 0, 0, :] = True  # voxels a, b
    target[0, 0, 1, 0, 0] = True  # voxel d
    # |P| = |T| = 3, |P & T| = 2  ->  2 * 2 / (3 + 3) = 2/3
    assert dice(pred, target) == pytest.approx(2 / 3)


def test_matches_numpy_reference_on_random_masks():
    rng = np.random.default_rng(0)
    pred = rng.random((6, 1, 5, 6, 7)) < 0.3
    target = rng.random((6, 1, 5, 6, 7)) < 0.4
    assert dice(pred, target) == pytest.approx(_numpy_dice(pred, target), abs=1e-6)
    # Same masks as 0/1 torch tensors of another dtype.
    as_torch = dice(torch.from_numpy(pred).to(torch.uint8), torch.from_numpy(target).float())
    assert as_torch == pytest.approx(_numpy_dice(pred, target), abs=1e-6)


def test_empty_mask_conventions():
    empty = np.zeros((1, 1, 3, 3, 3), dtype=bool)
    full = np.ones_like(empty)
    assert dice(empty, empty) == 1.0  # both empty: perfect agreement
    assert dice(full, empty) == 0.0  # prediction where there is nothing
    assert dice(empty, full) == 0.0  # missed the whole target
    # Mean over samples includes the empty-empty sample as 1.0: (1 + 0) / 2.
    assert dice(np.concatenate([empty, full]), np.concatenate([empty, empty])) == 0.5


def test_rejects_bad_input():
    m = np.zeros((2, 1, 3, 3, 3))
    with pytest.raises(ValueError, match="shapes differ"):
        dice(m, m[:1])
    with pytest.raises(ValueError, match="binary"):
        dice(m + 0.5, m)
    with pytest.raises(ValueError, match=r"\(N, 1"):
        dice(np.zeros((2, 2, 3, 3, 3)), np.zeros((2, 2, 3, 3, 3)))


def test_accumulator_equals_dice_on_concatenation():
    rng = np.random.default_rng(1)
    pred = rng.random((7, 1, 4, 4, 4)) < 0.5
    target = rng.random((7, 1, 4, 4, 4)) < 0.5
    target[3] = False
    pred[3] = False  # an empty-empty sample inside a batch
    acc = DiceAccumulator()
    assert np.isnan(acc.compute())
    for lo, hi in [(0, 2), (2, 3), (3, 7)]:
        acc.update(torch.from_numpy(pred[lo:hi]), torch.from_numpy(target[lo:hi]))
    assert len(acc) == 7
    assert acc.scores[3] == 1.0
    assert acc.compute() == pytest.approx(dice(pred, target), abs=1e-12)
    acc.reset()
    assert len(acc) == 0
