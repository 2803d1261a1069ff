"""Learning without Forgetting (Li & Hoiem, "Learning without Forgetting", ECCV 2016 / TPAMI 2017)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from unicon_bench.strategy.plugins import OutputDistillationPlugin
from unicon_bench.registry import register_strategy
from unicon_bench.strategy import AvalancheStrategy, BaseParams


@dataclass(frozen=True)
class LwFParams(BaseParams):
    alpha: float = 1.0  # weight of the distillation term
    temperature: float = 2.0  # of the sigmoid soft targets (logits and soft masks)
    distill: Literal["soft", "mse"] = "soft"  # "mse": match raw outputs instead

    def __post_init__(self):
        super().__post_init__()
        if not self.alpha >= 0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")


@register_strategy("lwf")
class LwF(AvalancheStrategy):
    """Learning without Forgetting: the previous model's outputs on the new data are distilled.

    Paper: after each task the network is copied; while the next task is learned, the copy's
    outputs for the *new* inputs on every old head are soft targets (KL at temperature 2) for the
    current network's old heads. No data are stored.
    Kept between experiences: one frozen copy of the model (the teacher) and the routes (stem +
    head) trained so far.
    Ours: the soft targets are per task kind (``unicon_bench.strategy.plugins``):
    sigmoid soft targets (Bernoulli KL at temperature ``T``, times ``T**2``) on the malignancy logit,
    the same per voxel on the lesion logit map (soft masks), and the squared error between risks
    for prognosis. When an experience reuses a head (sites A -> B), the previous model's soft masks on
    the new site are the targets of that same head; an old route whose modality the new samples carry
    (the CT channel of PET/CT samples) reads that channel, otherwise the new input as it is. Avalanche's
    ``LwFPlugin`` is not used: it softmaxes class logits and calls ``model(x)`` without a route.
    """

    family = "regularisation"
    stage0_family = "plain"  # experience 0 is plain training: a shared stage 0 replaces it bit-identically
    trainable = "all parameters, every experience"
    params = LwFParams

    def plugins(self):
        channels = {t: e.channels for t, e in zip(self.stream.task_labels, self.spec.experiences)}
        self.distill = OutputDistillationPlugin(self.kinds(), self.p.alpha, self.p.temperature, self.p.distill, channels)
        return [self.distill]
