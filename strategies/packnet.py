"""PackNet: adding multiple tasks to a single network by iterative pruning (Mallya & Lazebnik, CVPR 2018).

Paper: train the free weights of a shared network on the new task, prune a fraction of them by
magnitude (they are released to later tasks), retrain the rest briefly, and fix them: each task
owns a subset of the weights. At test time, task ``t`` sees the weights owned by tasks ``0..t`` and
no others, so earlier tasks' outputs never change. Biases (and other non-prunable parameters) are
trained with the first task only. Needs the task identity at test time.

Kept between experiences: the network's weights, a per-weight owner index (which task trained and
fixed it, or free) and one head per experience.

Built on Avalanche's PackNet: its ``PackNetPlugin`` (prune after ``epochs - retrain_epochs`` epochs
of the experience's budget, fix the masks after the experience, fresh optimizer) and its wrapped
``Conv3d``/``Linear`` layers (owner index, gradient masking, task-specific visible weights).
Avalanche's ``PackNetModel`` refuses modules with parameters of their own, such as the PReLU
activations of MONAI's residual units, so ``PackNetNet`` wraps the convolutions of the shared stem
and encoder itself and treats PReLU slopes like biases (first task only).

Our adaptation: the shared part is the model zoo's 3D encoder and the stems that several
experiences use (a PET/CT stem of one experience is trained fully by it); every experience gets its own
head (a pixel decoder for segmentation, an MLP for classification and prognosis), trained fully on
its experience and never pruned, as PackNet gives each task its own classifier. The retraining after
pruning is part of the experience's epoch budget (the same budget every strategy gets). An
experience not trained yet is evaluated on the weights as they stand (no mask is defined for it).
Adam's weight decay would move fixed weights despite their zeroed gradients, so it is refused.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import torch
from avalanche.models.packnet import PackNetModel, PackNetModule, PackNetPlugin
from torch import nn

from unicon_bench.errors import ConfigError
from unicon_bench.registry import register_strategy
from unicon_bench.strategy import AvalancheStrategy, BaseParams


@dataclass(frozen=True)
class PackNetParams(BaseParams):
    prune_ratio: float = 0.5  # share of the task's free weights released to later tasks
    retrain_fraction: float = 0.25  # share of the epoch budget spent retraining after pruning

    def __post_init__(self):
        super().__post_init__()
        if not 0.0 <= self.prune_ratio < 1.0:
            raise ValueError(f"prune_ratio must be in [0, 1), got {self.prune_ratio}")
        if not 0.0 < self.retrain_fraction < 1.0:
            raise ValueError(f"retrain_fraction must be in (0, 1), got {self.retrain_fraction}")
        if self.weight_decay:
            raise ValueError("packnet needs weight_decay=0: Adam's weight decay would move the fixed weights")


def _wrap_layers(module: nn.Module) -> None:
    """Replace every Conv3d/Linear below ``module`` (in place) by Avalanche's PackNet wrapper."""
    for name, child in list(module.named_children()):
        if isinstance(child, (nn.Conv3d, nn.Linear)):
            setattr(module, name, PackNetModel.wrap(child))
        elif not isinstance(child, PackNetModule):
            _wrap_layers(child)


class PackNetNet(PackNetModule):
    """A MultiTaskNet whose shared stem and encoder carry PackNet's per-task weight masks."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        uses = Counter(route.stem for route in net.routes.values())
        # the encoder and every stem more than one experience uses; a stem of one experience only
        # (PET/CT inputs) is trained fully by it, like a head
        self.shared = [net.encoder, *(net.stems[key] for key, n in uses.items() if n > 1)]
        for part in self.shared:
            _wrap_layers(part)

    def layers(self) -> list[PackNetModule]:
        return [m for m in self.modules() if isinstance(m, PackNetModule) and m is not self]

    def _prune(self, prune_proportion: float) -> None:
        for m in self.layers():
            m.prune(prune_proportion)

    def _freeze_pruned(self) -> None:
        for m in self.layers():
            m.freeze_pruned()  # Avalanche also freezes each wrapped layer's bias
        for part in self.shared:
            for module in part.modules():
                if isinstance(module, nn.PReLU):
                    module.requires_grad_(False)

    def _activate_task(self, task_id: int) -> None:
        for m in self.layers():
            m.activate_task(task_id)

    def forward(self, x: torch.Tensor, task_label: int = 0, text: torch.Tensor | None = None) -> torch.Tensor:
        with torch.inference_mode(False):  # masks made during evaluation are reused in training
            self.activate_task(min(int(task_label), self.task_count))
        return self.net(x, task_label)


@register_strategy("packnet")
class PackNet(AvalancheStrategy):
    """PackNet: per-task weight masks by iterative magnitude pruning; earlier tasks' weights stay fixed."""

    compatible = {"task", "modality"}  # the mask to apply is chosen by the task identity
    trainable = "the free weights of stem + encoder, and the experience's own head"
    family = "architecture"
    params = PackNetParams

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._owner = {id(m.wrappee.weight): m for m in self.model.layers()}

    def build_model(self) -> PackNetNet:
        from unicon_bench.models.net import MultiTaskNet

        routes = [(e.task, e.modality, len(e.channels)) for e in self.spec.experiences]
        return PackNetNet(MultiTaskNet.for_experiences(routes, head_per="experience"))

    def plugins(self):
        retrain = max(1, round(self.epochs * self.p.retrain_fraction))
        if retrain >= self.epochs:
            raise ConfigError(f"packnet needs at least 2 epochs per experience (train, then retrain after pruning), got {self.epochs}")
        return [PackNetPlugin(post_prune_epochs=retrain, prune_proportion=self.p.prune_ratio)]

    def owner_index(self) -> dict[str, torch.Tensor]:
        """Per masked weight: the task that owns each entry (the next task's index = still free)."""
        return {name: m.task_index.clone() for name, m in self.model.named_modules()
                if isinstance(m, PackNetModule) and m is not self.model}

    def last_trainable_params(self) -> int:
        """Weights the experience trained: its free share of the masked layers, plus whole tensors."""
        task = self.model.task_count - 1
        total = 0
        for p in self.model.parameters():
            if id(p) in self.progress.updated:
                layer = self._owner.get(id(p))
                total += int((layer.task_index >= task).sum()) if layer is not None else p.numel()
        return total
