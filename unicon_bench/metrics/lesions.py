"""Lesion-wise detection metrics by connected components, as the AutoPET challenge defines them.

Components are found with ``scipy.ndimage.label`` at 18-connectivity (AutoPET's
``cc3d.connected_components(..., connectivity=18)``). Per subject:

- a ground-truth lesion is a *true positive* when the prediction touches it (one shared voxel
  suffices) and a *false negative* otherwise;
- a predicted component is a *false positive* when it touches no ground-truth lesion;
- *false-negative volume* (ml): the volume of the missed ground-truth lesions; *false-positive
  volume* (ml): the volume of the false-positive components (AutoPET's FN/FP volume);
- lesion F1 = 2 TP / (2 TP + FP + FN). Metrics Reloaded's empty-case convention: no lesion in the
  ground truth and none predicted is perfect (F1 1); exactly one of them empty gives F1 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from unicon_bench.metrics._common import to_numpy
from unicon_bench.metrics.registry import MetricSpec, Score, register_metrics

if TYPE_CHECKING:
    from unicon_bench.metrics.evaluate import SegmentationInputs

CONNECTIVITY = 18
FIELDS = ("lesion_tp", "lesion_fp", "lesion_fn", "lesion_f1", "fp_volume_ml", "fn_volume_ml")


@dataclass(frozen=True)
class LesionCounts:
    """Lesion-wise results of one subject."""

    tp: int
    fp: int
    fn: int
    fp_volume_ml: float
    fn_volume_ml: float

    @property
    def f1(self) -> float:
        denominator = 2 * self.tp + self.fp + self.fn
        return 1.0 if denominator == 0 else 2 * self.tp / denominator


def _structure():
    from scipy import ndimage

    # rank 3, connectivity 2: faces and edges (18 neighbours), not corners
    return ndimage.generate_binary_structure(3, 2)


def lesion_counts(pred: Any, target: Any, spacing: Sequence[float] = (1.0, 1.0, 1.0)) -> LesionCounts:
    """Lesion-wise TP/FP/FN and FP/FN volume (ml) of one subject's binary 3D masks (D, H, W)."""
    from scipy import ndimage

    p, t = to_numpy(pred).astype(bool), to_numpy(target).astype(bool)
    if p.shape != t.shape or p.ndim != 3:
        raise ValueError(f"expected two 3D masks of one shape, got {p.shape} and {t.shape}")
    voxel_ml = float(np.prod(spacing)) / 1000.0
    structure = _structure()
    t_lab, n_t = ndimage.label(t, structure)
    p_lab, n_p = ndimage.label(p, structure)
    hit_t = np.unique(t_lab[p & t])  # ground-truth lesions the prediction touches
    hit_p = np.unique(p_lab[p & t])  # predicted components touching a lesion
    t_sizes = np.bincount(t_lab.ravel(), minlength=n_t + 1)
    p_sizes = np.bincount(p_lab.ravel(), minlength=n_p + 1)
    missed = np.setdiff1d(np.arange(1, n_t + 1), hit_t)
    spurious = np.setdiff1d(np.arange(1, n_p + 1), hit_p)
    return LesionCounts(tp=int(hit_t.size), fp=int(spurious.size), fn=int(missed.size),
                        fp_volume_ml=float(p_sizes[spurious].sum()) * voxel_ml,
                        fn_volume_ml=float(t_sizes[missed].sum()) * voxel_ml)


def lesion_metrics(pred: Any, target: Any, spacing: Sequence[float] = (1.0, 1.0, 1.0)) -> dict[str, np.ndarray]:
    """Per-subject lesion metrics of (N, 1, D, H, W) masks: arrays keyed by ``FIELDS``."""
    p, t = to_numpy(pred), to_numpy(target)
    if p.shape != t.shape or p.ndim != 5 or p.shape[1] != 1:
        raise ValueError(f"expected masks shaped (N, 1, D, H, W) of one shape, got {p.shape} and {t.shape}")
    counts = [lesion_counts(p[i, 0], t[i, 0], spacing) for i in range(len(p))]
    return {
        "lesion_tp": np.array([c.tp for c in counts], dtype=float),
        "lesion_fp": np.array([c.fp for c in counts], dtype=float),
        "lesion_fn": np.array([c.fn for c in counts], dtype=float),
        "lesion_f1": np.array([c.f1 for c in counts], dtype=float),
        "fp_volume_ml": np.array([c.fp_volume_ml for c in counts], dtype=float),
        "fn_volume_ml": np.array([c.fn_volume_ml for c in counts], dtype=float),
    }


def _lesion_spec(name: str, direction: str, unit: str, label: str, description: str, **options) -> MetricSpec:
    return MetricSpec(name, "segmentation", direction, unit, label, description, per_subject=True, **options)  # type: ignore[arg-type]


@register_metrics(
    _lesion_spec("lesion_f1", "higher", "1", "lesion F1",
                 "lesion-wise F1 = 2TP / (2TP + FP + FN) over connected components"),
    _lesion_spec("lesion_tp", "higher", "lesions", "TP lesions",
                 "true-positive lesions per subject: ground-truth components touched by the prediction",
                 high=None, tolerance=0.5),
    _lesion_spec("lesion_fp", "lower", "lesions", "FP lesions",
                 "false-positive lesions per subject: predicted components touching no ground truth",
                 high=None, tolerance=0.5),
    _lesion_spec("lesion_fn", "lower", "lesions", "FN lesions",
                 "false-negative lesions per subject: ground-truth components the prediction misses",
                 high=None, tolerance=0.5),
    _lesion_spec("fp_volume_ml", "lower", "ml", "FP volume (ml)",
                 "false-positive volume per subject (AutoPET): predicted components touching no ground truth",
                 high=None, tolerance=0.5),
    _lesion_spec("fn_volume_ml", "lower", "ml", "FN volume (ml)",
                 "false-negative volume per subject (AutoPET): ground-truth components the prediction misses",
                 high=None, tolerance=0.5),
)
def _lesion_metrics(x: SegmentationInputs) -> dict[str, Score]:
    """All lesion metrics from one connected-components pass per subject (keys in ``FIELDS`` order)."""
    return {k: Score.per_subject(v) for k, v in lesion_metrics(x.pred, x.mask, x.spacing_mm).items()}
