"""Riemannian Walk (Chaudhry et al., "Riemannian Walk for Incremental Learning: Understanding
Forgetting and Intransigence", ECCV 2018) on Avalanche's RWalkPlugin."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from avalanche.training.plugins import RWalkPlugin
from avalanche.training.utils import ParamData, copy_params_dict, zerolike_params_dict

from unicon_bench.registry import register_strategy
from unicon_bench.strategy.state import CheckpointAttributes
from unicon_bench.strategy import AvalancheStrategy, BaseParams, autocast


@dataclass(frozen=True)
class RWalkParams(BaseParams):
    # Avalanche defaults to 0.1; on quick ct_to_pet its penalty was 0.6 % of the task loss late in the
    # second experience against 2 % for our EWC default, 1.0 gives 4 % (chosen by that, not by scores).
    ewc_lambda: float = 1.0  # weight of the penalty
    ewc_alpha: float = 0.9  # EWC++ moving-average factor of the Fisher (weight of the newest)
    delta_t: int = 10  # iterations between updates of the parameter scores

    def __post_init__(self):
        super().__post_init__()
        if not self.ewc_lambda >= 0:
            raise ValueError(f"ewc_lambda must be >= 0, got {self.ewc_lambda}")
        if not 0.0 <= self.ewc_alpha <= 1.0:
            raise ValueError(f"ewc_alpha must be in [0, 1], got {self.ewc_alpha}")
        if not self.delta_t >= 1:
            raise ValueError(f"delta_t must be >= 1, got {self.delta_t}")


class TaskAwareRWalkPlugin(CheckpointAttributes, RWalkPlugin):
    """RWalkPlugin with the task-aware loss, scores flushed at the end of each experience and a
    normalisation that cannot divide by zero.

    Avalanche's version computes the per-iteration gradient with ``criterion(model(x), y)`` (it
    assumes classification) and leaves the model in eval mode; it adds the path scores only every
    ``delta_t`` iterations, dropping the last partial interval, and divides by the largest score,
    which is 0 (NaN penalties) when an experience has fewer than ``delta_t`` iterations.
    A checkpoint keeps every running quantity: weights, Fisher, scores and penalties.
    """

    checkpoint_attributes = (
        "checkpoint_params", "checkpoint_loss", "checkpoint_scores", "iter_grad", "iter_importance",
        "iter_params", "exp_scores", "exp_params", "exp_importance", "exp_penalties",
    )

    def _update_grad(self, strategy):
        model = strategy.model
        was_training = model.training
        model.eval()  # as Avalanche: the gradient of the loss without dropout
        strategy.optimizer.zero_grad()
        batch = strategy.mbatch
        with autocast(torch.device(strategy.device)):
            groups = strategy.grouped_forward(model, batch[0], strategy.train_routes(), batch[3])
        strategy.batch_loss(groups, batch).backward()
        self.iter_grad = copy_params_dict(model, copy_grad=True)
        model.train(was_training)

    def after_training_exp(self, strategy, *args, **kwargs):
        if (strategy.clock.train_iterations % self.delta_t) != 0:  # the last, partial interval
            self._update_score(strategy)
        self.exp_importance = self.iter_importance
        self.exp_params = copy_params_dict(strategy.model)
        if self.exp_scores is None:
            self.exp_scores = self.checkpoint_scores
        else:  # Avalanche: the running scores are the mean of the old ones and this experience's
            self.exp_scores = {
                k: ParamData(k, device=s.device, init_tensor=0.5 * (self.exp_scores[k].expand(s.data.shape) + s.data))
                for k, s in self.checkpoint_scores.items()
                if k in self.exp_scores
            }
        # Eq. 8 with both terms scaled into [0, 1] by their largest value (negative scores relu-ed)
        tiny = torch.finfo(torch.float32).tiny
        max_score = max(max(F.relu(s.data).max() for s in self.exp_scores.values()), tiny)
        max_imp = max(max(i.data.max() for i in self.exp_importance.values()), tiny)
        self.exp_penalties = {}
        for k, score in self.exp_scores.items():
            if k in self.exp_importance:
                imp = self.exp_importance[k].data
                init = imp / max_imp + F.relu(score.expand(imp.shape)) / max_score
                self.exp_penalties[k] = ParamData(k, device=imp.device, init_tensor=init)
        self.checkpoint_scores = zerolike_params_dict(strategy.model)


@register_strategy("rwalk")
class RWalk(AvalancheStrategy):
    """Riemannian Walk: EWC++ Fisher plus path-integral scores anchor important weights.

    Paper: an online (moving-average, "EWC++") diagonal Fisher, plus a path score per weight - the
    loss change along its trajectory over the change of the Fisher-weighted distance, updated every
    ``delta_t`` iterations - both scaled into [0, 1]; later tasks pay
    ``lambda * (Fisher + score) * (w - w_end)**2``. The paper also rehearses a few samples in
    class-incremental settings; like Avalanche's plugin, this strategy does not (see ``replay``).
    Kept between experiences: the weights at the end of the last experience, the running Fisher and
    the running path scores.
    Ours: the gradients behind Fisher and scores are those of the task-aware loss (DiceCE / BCE /
    Cox) through each sample's route; the last partial ``delta_t`` interval of an experience is
    scored, and an all-zero score or Fisher no longer divides by zero.
    """

    family = "regularisation"
    trainable = "all parameters, every experience"
    params = RWalkParams

    def plugins(self):
        return [TaskAwareRWalkPlugin(self.p.ewc_lambda, self.p.ewc_alpha, self.p.delta_t)]
