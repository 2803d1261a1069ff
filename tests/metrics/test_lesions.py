"""Lesion-wise TP/FP/FN, F1 and AutoPET FP/FN volumes on masks with known connected components."""

from __future__ import annotations

import numpy as np
import pytest

from unicon_bench.metrics.lesions import lesion_counts, lesion_metrics

SPACING = (2.0, 1.0, 1.5)  # one voxel = 3 mm^3 = 0.003 ml
VOXEL_ML = 0.003


def cube(mask, z, y, x, size):
    mask[z:z + size, y:y + size, x:x + size] = True


def test_known_components():
    target = np.zeros((20, 20, 20), bool)
    pred = np.zeros_like(target)
    cube(target, 1, 1, 1, 3)     # lesion 1 (27 voxels): found by a shifted prediction
    cube(pred, 2, 2, 2, 3)
    cube(target, 10, 10, 10, 2)  # lesion 2 (8 voxels): missed
    cube(target, 1, 12, 1, 2)    # lesion 3 (8 voxels): found by one voxel of overlap
    cube(pred, 2, 13, 2, 4)      # (64 voxels, touches lesion 3)
    cube(pred, 15, 1, 15, 2)     # false positive (8 voxels)
    pred[15, 15, 1] = True       # false positive (1 voxel)
    c = lesion_counts(pred, target, SPACING)
    assert (c.tp, c.fp, c.fn) == (2, 2, 1)
    assert c.fn_volume_ml == pytest.approx(8 * VOXEL_ML)
    assert c.fp_volume_ml == pytest.approx(9 * VOXEL_ML)
    assert c.f1 == pytest.approx(2 * 2 / (2 * 2 + 2 + 1))


def test_eighteen_connectivity():
    """Voxels sharing an edge are one component; voxels sharing only a corner are two (AutoPET: cc3d, 18)."""
    target = np.zeros((6, 6, 6), bool)
    target[1, 1, 1] = target[2, 2, 1] = True  # edge neighbours: one lesion
    pred = np.zeros_like(target)
    pred[4, 4, 4] = pred[5, 5, 5] = True      # corner neighbours: two false positives
    c = lesion_counts(pred, target, SPACING)
    assert (c.tp, c.fp, c.fn) == (0, 2, 1)
    assert c.fn_volume_ml == pytest.approx(2 * VOXEL_ML) and c.fp_volume_ml == pytest.approx(2 * VOXEL_ML)


def test_empty_cases_follow_metrics_reloaded():
    empty = np.zeros((5, 5, 5), bool)
    lesion = empty.copy()
    lesion[1:3, 1:3, 1:3] = True
    both = lesion_counts(empty, empty)
    assert (both.tp, both.fp, both.fn, both.f1) == (0, 0, 0, 1.0)  # nothing to find, nothing found: perfect
    missed = lesion_counts(empty, lesion)
    assert (missed.fn, missed.f1) == (1, 0.0)
    spurious = lesion_counts(lesion, empty)
    assert (spurious.fp, spurious.f1) == (1, 0.0)
    perfect = lesion_counts(lesion, lesion)
    assert (perfect.tp, perfect.f1, perfect.fp_volume_ml, perfect.fn_volume_ml) == (1, 1.0, 0.0, 0.0)


def test_batch_returns_one_value_per_subject():
    target = np.zeros((3, 1, 6, 6, 6), bool)
    target[0, 0, 1:3, 1:3, 1:3] = True
    pred = target.copy()
    pred[1, 0, 4, 4, 4] = True
    out = lesion_metrics(pred, target, SPACING)
    assert list(out["lesion_tp"]) == [1, 0, 0] and list(out["lesion_fp"]) == [0, 1, 0]
    assert list(out["lesion_f1"]) == [1.0, 0.0, 1.0]
    assert out["fp_volume_ml"][1] == pytest.approx(VOXEL_ML)
    with pytest.raises(ValueError, match="shape"):
        lesion_metrics(pred[:, :, :5], target, SPACING)
