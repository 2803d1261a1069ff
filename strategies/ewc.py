"""Elastic Weight Consolidation (Kirkpatrick et al., PNAS 2017) on Avalanche's EWCPlugin."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from avalanche.training.plugins import EWCPlugin
from avalanche.training.utils import zerolike_params_dict

from unicon_bench.registry import register_strategy
from unicon_bench.strategy import AvalancheStrategy, BaseParams, SearchSpace


@dataclass(frozen=True)
class EWCParams(BaseParams):
    ewc_lambda: float = 1000.0
    mode: Literal["separate", "online"] = "separate"
    decay_factor: float = 0.9

    search_space: ClassVar[SearchSpace] = {
        **BaseParams.search_space,
        "ewc_lambda": ("float_log", 1.0, 1e5),
        "mode": ("categorical", ["separate", "online"]),
    }

    def __post_init__(self):
        super().__post_init__()
        if not self.ewc_lambda >= 0:
            raise ValueError(f"ewc_lambda must be >= 0, got {self.ewc_lambda}")
        if not 0 <= self.decay_factor <= 1:
            raise ValueError(f"decay_factor must be in [0, 1], got {self.decay_factor}")


class TaskAwareEWCPlugin(EWCPlugin):
    """EWCPlugin whose Fisher estimate uses the task-aware loss (masks, labels, survival).

    Avalanche's version calls ``criterion(model(x), y)``, which assumes classification; the
    penalty, the online/separate modes and the bookkeeping are Avalanche's.
    """

    def after_training_exp(self, strategy, **kwargs):
        self._strategy = strategy
        super().after_training_exp(strategy, **kwargs)

    def compute_importances(self, model, criterion, optimizer, dataset, device, batch_size, num_workers=0):
        strategy = self._strategy
        model.eval()
        importances = zerolike_params_dict(model)
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=num_workers)
        for batch in loader:
            batch = [b.to(device) for b in batch]
            optimizer.zero_grad()
            groups = strategy.grouped_forward(model, batch[0], batch[-1], batch[3])
            strategy.batch_loss(groups, batch).backward()
            for (name, p), (key, imp) in zip(model.named_parameters(), importances.items()):
                assert name == key
                if p.grad is not None:
                    imp.data += p.grad.data.clone().pow(2)
        for imp in importances.values():
            imp.data /= float(len(loader))
        optimizer.zero_grad()
        model.train()
        return importances


@register_strategy("ewc")
class EWC(AvalancheStrategy):
    """Elastic Weight Consolidation: a Fisher-weighted quadratic penalty anchors important weights."""

    family = "regularisation"
    stage0_family = "plain"  # experience 0 is plain training: a shared stage 0 replaces it bit-identically
    trainable = "all parameters, every experience"
    params = EWCParams

    def plugins(self):
        return [
            TaskAwareEWCPlugin(
                ewc_lambda=self.p.ewc_lambda,
                mode=self.p.mode,
                decay_factor=self.p.decay_factor if self.p.mode == "online" else None,
            )
        ]
