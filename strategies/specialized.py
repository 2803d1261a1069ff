"""Specialized models: one network per experience, all from the same initialisation."""

from __future__ import annotations

import copy

from unicon_bench.registry import register_strategy
from unicon_bench.strategy import AvalancheStrategy, BaseParams, count_params


@register_strategy("specialized")
class Specialized(AvalancheStrategy):
    """One model per experience from the same initialisation; test-time identity picks the model."""

    family = "bound"
    stage0_family = "plain"  # experience 0 is plain training: a shared stage 0 replaces it bit-identically
    compatible = {"task", "modality"}  # picking the model needs the task identity at test time
    trainable = "a whole new model per experience"
    params = BaseParams

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.init_state = copy.deepcopy(self.model.state_dict())
        self.untrained = copy.deepcopy(self.model)
        self.experts: dict[int, object] = {}

    def train(self, experience) -> None:
        self.model.load_state_dict(self.init_state)
        super().train(experience)
        self.experts[experience.current_experience] = copy.deepcopy(self.model)

    def eval_model(self, experience):
        # An experience not trained yet has no specialist: the untrained model answers (no transfer).
        return self.experts.get(experience.current_experience, self.untrained)

    def state_dict(self) -> dict | None:
        base = super().state_dict()
        if base is None:  # not checkpointable
            return None
        return {**base, "experts": {i: m.state_dict() for i, m in self.experts.items()}}

    def load_state_dict(self, saved: dict) -> None:
        super().load_state_dict(saved)
        for i, weights in saved["experts"].items():
            self.experts[i] = copy.deepcopy(self.model)
            self.experts[i].load_state_dict(weights)

    def total_params(self) -> int:
        return sum(count_params(m) for m in self.experts.values()) or count_params(self.model)
