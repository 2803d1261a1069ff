"""Memory Aware Synapses (Aljundi et al., "Memory Aware Synapses: Learning what (not) to forget",
ECCV 2018) on Avalanche's MASPlugin."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from avalanche.training.plugins import MASPlugin
from avalanche.training.utils import zerolike_params_dict

from unicon_bench.registry import register_strategy
from unicon_bench.strategy.state import CheckpointAttributes
from unicon_bench.strategy import AvalancheStrategy, BaseParams, TaskTemplate, autocast


@dataclass(frozen=True)
class MASParams(BaseParams):
    lambda_reg: float = 1.0  # weight of the importance-weighted penalty
    alpha: float = 0.5  # old importance's share when the importances of two experiences are merged

    def __post_init__(self):
        super().__post_init__()
        if not self.lambda_reg >= 0:
            raise ValueError(f"lambda_reg must be >= 0, got {self.lambda_reg}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}")


def output_sensitivity(model, x: torch.Tensor, routes: torch.Tensor, text=None) -> torch.Tensor:
    """MAS's unsupervised objective for one batch: each sample's mean squared output, averaged.

    The paper's ``||F(x)||_2^2`` of a sample's output vector, divided by the number of outputs so
    that a lesion logit map (one output per voxel) and a single logit or risk weigh alike.
    """
    with autocast(x.device):
        groups = TaskTemplate.grouped_forward(model, x, routes, text)
    total = sum(len(idx) for idx, _, _ in groups)
    return sum(out.float().pow(2).reshape(len(idx), -1).mean(dim=1).sum() for idx, _, out in groups) / total


class TaskAwareMASPlugin(CheckpointAttributes, MASPlugin):
    """MASPlugin whose importance runs each sample through its own route.

    Avalanche's version unpacks ``(x, y, t)`` batches and calls ``avalanche_forward(model, x, t)``,
    which our 5-field samples and routed model do not fit; the penalty, the importance merge and
    the bookkeeping are Avalanche's. A checkpoint keeps the anchor weights and the importances.
    """

    checkpoint_attributes = ("params", "importance")

    def _get_importance(self, strategy):
        model = strategy.model
        importance = dict(zerolike_params_dict(model))
        dataset = strategy.experience.dataset
        loader = torch.utils.data.DataLoader(dataset, batch_size=strategy.train_mb_size,
                                             collate_fn=getattr(dataset, "collate_fn", None))
        model.train()
        for batch in loader:
            strategy.optimizer.zero_grad()
            x, text, t = (batch[i].to(strategy.device) for i in (0, 3, -1))
            output_sensitivity(model, x, t, text).backward()
            for name, param in model.named_parameters():
                if param.requires_grad and param.grad is not None:  # other heads get no gradient
                    importance[name].data += param.grad.abs()
        strategy.optimizer.zero_grad()
        for imp in importance.values():
            imp.data /= float(len(loader))
        return importance

    def before_backward(self, strategy, **kwargs):
        """Avalanche's penalty, without its ``if not strategy.loss`` check.

        That check takes a loss that is exactly 0 for a missing one, and a Cox minibatch without an
        event has a partial likelihood of exactly 0 (``losses.TaskLoss``): Avalanche then raised
        "Loss is not available" in the middle of a prognosis experience.
        """
        if strategy.clock.train_exp_counter == 0:
            return
        if not self.importance or not self.params:
            raise ValueError("MAS has no importances or anchor weights from the previous experience")
        if strategy.loss is None:
            raise ValueError("MAS needs the minibatch loss before the backward pass")
        penalty = sum(torch.sum(self.importance[name].expand(param.shape)
                                * (param - self.params[name].expand(param.shape)).pow(2))
                      for name, param in strategy.model.named_parameters() if name in self.importance)
        strategy.loss += self._lambda * penalty


@register_strategy("mas")
class MAS(AvalancheStrategy):
    """Memory Aware Synapses: weights the outputs are most sensitive to are anchored.

    Paper: after each task, a weight's importance is the mean absolute gradient of the squared L2
    norm of the network's output over the task's data (no labels needed); later tasks pay
    ``lambda * importance * (w - w_end)**2``.
    Kept between experiences: the weights at the end of the last experience and the importances,
    merged over experiences as ``alpha * old + (1 - alpha) * new`` (Avalanche/FACIL's choice).
    Ours: each sample's output is that of its own route (head), and the squared norm of a lesion
    logit map is divided by its number of voxels (a mean, not a sum), so segmentation does not
    outweigh the single-logit tasks by the volume size.
    """

    family = "regularisation"
    stage0_family = "plain"  # experience 0 is plain training: a shared stage 0 replaces it bit-identically
    trainable = "all parameters, every experience"
    params = MASParams

    def plugins(self):
        return [TaskAwareMASPlugin(lambda_reg=self.p.lambda_reg, alpha=self.p.alpha)]
