"""Synaptic Intelligence (Zenke, Poole & Ganguli, "Continual Learning Through Synaptic
Intelligence", ICML 2017) on Avalanche's SynapticIntelligencePlugin."""

from __future__ import annotations

from dataclasses import dataclass

from avalanche.training.plugins import SynapticIntelligencePlugin

from unicon_bench.registry import register_strategy
from unicon_bench.strategy.state import CheckpointAttributes
from unicon_bench.strategy import AvalancheStrategy, BaseParams


@dataclass(frozen=True)
class SIParams(BaseParams):
    si_lambda: float = 1000.0  # weight of the surrogate-loss penalty
    eps: float = 1e-7  # damping of the importance denominator

    def __post_init__(self):
        super().__post_init__()
        if not self.si_lambda >= 0:
            raise ValueError(f"si_lambda must be >= 0, got {self.si_lambda}")
        if not self.eps > 0:
            raise ValueError(f"eps must be positive, got {self.eps}")


class CopyingSIPlugin(CheckpointAttributes, SynapticIntelligencePlugin):
    """Avalanche's plugin with its weight snapshots copied, so that it also works on the CPU.

    Avalanche stores snapshots as ``param.detach().cpu().flatten()``: on a CUDA model that is a
    copy, on a CPU model a *view* of the live weights. The start-of-experience anchor and the
    before-step weights then follow every update, so the path integral, the importances and the
    penalty all stay exactly 0 and SI reduces to naive fine-tuning. Cloning the two snapshots right
    after Avalanche takes them restores the algorithm; everything else is Avalanche's.
    A checkpoint keeps the anchor, the importances and the path-integral buffers.
    """

    checkpoint_attributes = ("ewc_data", "syn_data")

    @staticmethod
    def _own(params: dict) -> None:
        for data in params.values():
            data.data = data.data.clone()

    def before_training_exp(self, strategy, **kwargs):
        super().before_training_exp(strategy, **kwargs)
        self._own(self.ewc_data[0])  # anchor: the weights at the start of the experience

    def before_training_iteration(self, strategy, **kwargs):
        super().before_training_iteration(strategy, **kwargs)
        self._own(self.syn_data["old_theta"])  # the weights before this step


@register_strategy("si")
class SI(AvalancheStrategy):
    """Synaptic Intelligence: each weight's contribution to the loss drop along its path anchors it.

    Paper: during training every weight accumulates ``-grad * delta`` (its share of the decrease of
    the loss) over the parameter trajectory; at the end of a task this path integral, divided by
    the squared total displacement plus a damping ``eps``, is added to the weight's importance, and
    later tasks pay ``lambda * importance * (w - w_end)**2``.
    Kept between experiences: the weights at the end of the last experience and the accumulated
    importance of every weight.
    Ours: nothing is task-specific in SI - it follows whatever loss the template computes, here the
    task-aware DiceCE / BCE / Cox loss - so Avalanche's plugin runs with its choices: the path
    integral uses the gradient of the full (penalised) loss, and importances are clipped to at most
    1e-3 per weight (hence a large default ``si_lambda``); ``CopyingSIPlugin`` fixes its CPU bug.
    """

    family = "regularisation"
    trainable = "all parameters, every experience"
    params = SIParams

    def plugins(self):
        return [CopyingSIPlugin(si_lambda=self.p.si_lambda, eps=self.p.eps)]
