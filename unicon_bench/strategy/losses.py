"""The loss of each task kind: MONAI DiceCE, BCE, and torchsurv's Cox partial likelihood."""

from __future__ import annotations

import torch


class TaskLoss:
    """Per-kind losses from MONAI / torch / torchsurv."""

    def __init__(self):
        from monai.losses import DiceCELoss

        self.dice_ce = DiceCELoss(sigmoid=True)
        self.bce = torch.nn.BCEWithLogitsLoss()

    def __call__(self, kind: str, output: torch.Tensor, mask: torch.Tensor, clinical: torch.Tensor) -> torch.Tensor:
        if kind == "segmentation":
            return self.dice_ce(output, mask)
        if kind == "classification":
            return self.bce(output, clinical[:, 0])
        if kind == "prognosis":
            from torchsurv.loss.cox import neg_partial_log_likelihood

            event = clinical[:, 2].bool()
            if len(event) < 2 or not event.any():  # no comparable pair: the partial likelihood is empty
                return output.sum() * 0.0
            return neg_partial_log_likelihood(output, event, clinical[:, 1], reduction="mean")
        raise ValueError(f"unknown task kind {kind!r}")
