"""Dice similarity for binary 3D segmentation masks, computed with MONAI.

Convention for empty masks (MONAI ``compute_dice(..., ignore_empty=False)``):
both prediction and target empty -> 1.0 (perfect agreement); exactly one of
them empty -> 0.0. Every sample therefore has a finite score and none is
dropped from the mean.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from unicon_bench.metrics._common import to_numpy
from unicon_bench.metrics.registry import Score, register_metric

if TYPE_CHECKING:
    from unicon_bench.metrics.evaluate import SegmentationInputs


def _per_sample_dice(pred: Any, target: Any) -> np.ndarray:
    """Dice of each sample of binary masks shaped (N, 1, *spatial); returns shape (N,)."""
    import torch
    from monai.metrics import compute_dice

    p = to_numpy(pred)
    t = to_numpy(target)
    if p.shape != t.shape:
        raise ValueError(f"pred and target shapes differ: {p.shape} vs {t.shape}")
    if p.ndim < 3 or p.shape[1] != 1:
        raise ValueError(f"expected masks shaped (N, 1, *spatial), got {p.shape}")
    for name, a in (("pred", p), ("target", t)):
        # Soft probabilities would silently give a soft Dice; demand thresholded masks.
        if a.dtype != np.bool_ and not np.isin(a, (0, 1)).all():
            raise ValueError(f"{name} must be a binary mask (bool or 0/1 values)")
    scores = compute_dice(
        torch.from_numpy(p.astype(np.float32)),
        torch.from_numpy(t.astype(np.float32)),
        include_background=True,
        ignore_empty=False,
    )
    return scores[:, 0].double().numpy()


def dice_per_subject(pred: Any, target: Any) -> np.ndarray:
    """Dice of each sample of binary masks shaped (N, 1, D, H, W) (empty-mask convention above)."""
    return _per_sample_dice(pred, target)


@register_metric("dice", task="segmentation", direction="higher", unit="1", label="Dice",
                 description="Dice similarity coefficient (MONAI)", primary=True, per_subject=True)
def _dice_metric(x: SegmentationInputs) -> dict[str, Score]:
    return {"dice": Score.per_subject(dice_per_subject(x.pred, x.mask))}


def dice(pred: Any, target: Any) -> float:
    """Mean over samples of the Dice score of binary masks shaped (N, 1, D, H, W).

    Accepts torch tensors or numpy arrays of bool or 0/1 values. Empty-mask
    convention: see the module docstring (both empty = 1.0, one empty = 0.0).
    """
    return float(_per_sample_dice(pred, target).mean())


class DiceAccumulator:
    """Streaming Dice for evaluation loops: per-sample scores kept, mean at the end.

    ``compute()`` after any sequence of ``update`` calls equals ``dice`` on the
    concatenation of all batches. It returns nan if nothing was accumulated.
    """

    def __init__(self) -> None:
        self._scores: list[float] = []

    def update(self, pred: Any, target: Any) -> None:
        """Add a batch of binary masks shaped (N, 1, D, H, W)."""
        self._scores.extend(_per_sample_dice(pred, target).tolist())

    def compute(self) -> float:
        """Mean Dice over all accumulated samples (nan when empty)."""
        if not self._scores:
            return float("nan")
        return float(np.mean(self._scores))

    @property
    def scores(self) -> list[float]:
        """Per-sample Dice scores in the order they were added."""
        return list(self._scores)

    def reset(self) -> None:
        """Forget all accumulated samples."""
        self._scores.clear()

    def __len__(self) -> int:
        return len(self._scores)
