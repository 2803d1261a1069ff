"""Averaged Gradient Episodic Memory (Chaudhry et al., "Efficient Lifelong Learning with A-GEM",
ICLR 2019) on Avalanche's AGEMPlugin."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from avalanche.training.plugins import AGEMPlugin

from unicon_bench.errors import ConfigError
from unicon_bench.registry import register_strategy
from unicon_bench.strategy import AvalancheStrategy, BaseParams, autocast, tensor_bytes


@dataclass(frozen=True)
class AGEMParams(BaseParams):
    patterns_per_experience: int = 8  # subjects kept from each experience
    sample_size: int = 8  # memory subjects behind each reference gradient (split over experiences)

    def __post_init__(self):
        super().__post_init__()
        if not self.patterns_per_experience >= 1:
            raise ValueError(f"patterns_per_experience must be >= 1, got {self.patterns_per_experience}")
        if not self.sample_size >= 1:
            raise ValueError(f"sample_size must be >= 1, got {self.sample_size}")


def project_gradient(current: torch.Tensor, ref: torch.Tensor) -> torch.Tensor | None:
    """A-GEM's ``g - (g . g_ref / g_ref . g_ref) g_ref`` where ``g . g_ref < 0``, else None (keep ``g``).

    In float64: once the memory samples are fitted, their loss is ~1e-10 and its gradient entries
    ~1e-23, whose squares underflow float32 to 0 while ``g . g_ref`` stays negative; the float32
    quotient was then infinite and the weights NaN (default ct_tasks seeds 1 and 2 died of it).
    """
    current64, ref64 = current.double(), ref.double()
    dot, norm = torch.dot(current64, ref64), torch.dot(ref64, ref64)
    if not dot < 0 or not norm > 0:
        return None
    return (current64 - ref64 * (dot / norm)).to(current.dtype)


class TaskAwareAGEMPlugin(AGEMPlugin):
    """AGEMPlugin whose reference gradient comes from the task-aware loss of a memory minibatch,
    and whose projected step reaches every parameter.

    Avalanche's version computes the reference as ``criterion(avalanche_forward(model, x, t), y)``,
    which assumes classification targets and a model without routes. Its projection also skips
    parameters the current minibatch gave no gradient (another task's head), so the step actually
    taken can still oppose the memory gradient; here it is applied to all of them, as in the paper.
    The memory and its sampling are Avalanche's.
    """

    def checkpoint_state(self) -> dict:
        """The memory: each past experience's kept subjects (``unicon_bench.strategy.state``)."""
        from unicon_bench.strategy import state

        return {"buffers": [state.dataset_state(b) for b in self.buffers]}

    def restore_checkpoint_state(self, saved: dict, strategy) -> None:
        from unicon_bench.strategy import state

        self.buffers = []
        for buffer in saved["buffers"]:  # each is already cut to size: nothing is drawn again
            self.update_memory(state.dataset_from_state(buffer))

    def before_training_iteration(self, strategy, **kwargs):
        if not self.buffers:
            return
        model = strategy.model
        model.train()
        strategy.optimizer.zero_grad()
        batch = [b.to(strategy.device) for b in self.sample_from_memory()]
        with autocast(torch.device(strategy.device)):
            groups = strategy.grouped_forward(model, batch[0], batch[-1], batch[3])
        strategy.batch_loss(groups, batch).backward()
        # a head this minibatch does not use has no gradient: it counts as zero
        self.reference_gradients = torch.cat([
            p.grad.view(-1) if p.grad is not None else torch.zeros(p.numel(), device=strategy.device)
            for p in model.parameters()
        ])
        strategy.optimizer.zero_grad()

    @torch.no_grad()
    def after_backward(self, strategy, **kwargs):
        if not self.buffers:
            return
        params = list(strategy.model.parameters())
        current = torch.cat([p.grad.view(-1) if p.grad is not None else torch.zeros(p.numel(), device=p.device)
                             for p in params])
        projected = project_gradient(current, self.reference_gradients)
        if projected is None:
            return
        start = 0
        for p in params:
            step = projected[start : start + p.numel()].view_as(p)
            start += p.numel()
            if p.grad is None:
                p.grad = step.clone()
            else:
                p.grad.copy_(step)


@register_strategy("agem")
class AGEM(AvalancheStrategy):
    """A-GEM: a step that would raise the loss on stored subjects is projected so it does not.

    Paper: a small episodic memory per task; each step computes the gradient of the loss on a random
    memory minibatch, and if the current gradient ``g`` points against it (``g . g_ref < 0``) uses
    ``g - (g . g_ref / g_ref . g_ref) g_ref`` instead, so the average memory loss does not increase.
    Kept between experiences: ``patterns_per_experience`` random subjects of each past experience.
    Ours: the reference loss is the task-aware loss (DiceCE / BCE / Cox) with each memory sample
    through its own route; the memory minibatch is balanced over past experiences (Avalanche).
    """

    family = "rehearsal"
    stage0_family = "plain"  # experience 0 is plain training: a shared stage 0 replaces it bit-identically
    trainable = "all parameters, every experience"
    params = AGEMParams

    def plugins(self):
        past = len(self.spec.experiences) - 1
        if self.p.sample_size < past:  # Avalanche draws sample_size // experiences from each
            raise ConfigError(f"agem: sample_size ({self.p.sample_size}) must be at least the number of past "
                              f"experiences ({past}) of scenario '{self.spec.name}'")
        self.agem = TaskAwareAGEMPlugin(self.p.patterns_per_experience, self.p.sample_size)
        return [self.agem]

    def buffer_bytes(self) -> int:
        return sum(tensor_bytes(b) for b in self.agem.buffers)
