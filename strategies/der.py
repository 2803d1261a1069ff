"""Dark Experience Replay++ (Buzzega et al., "Dark Experience for General Continual Learning: a
Strong, Simple Baseline", NeurIPS 2020) with Avalanche's experience-balanced reservoir buffer."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Literal

import torch
from avalanche.benchmarks.utils.data_attribute import DataAttribute
from avalanche.training.storage_policy import ExperienceBalancedBuffer
from avalanche.training.utils import cycle

from unicon_bench.strategy.plugins import grouped_distillation
from unicon_bench.data.streams import collate_samples
from unicon_bench.strategy import state
from unicon_bench.registry import register_strategy
from unicon_bench.strategy import AvalancheStrategy, BaseParams, TaskTemplate, autocast, tensor_bytes

OUTPUT = "der_output"  # the data attribute holding each buffer sample's stored output


@dataclass(frozen=True)
class DERParams(BaseParams):
    mem_size: int = 16  # subjects kept in memory, split evenly across past experiences
    alpha: float = 0.1  # weight of the stored-output (logit) replay term
    beta: float = 0.5  # weight of the buffer samples' task loss (0 gives plain DER)
    mem_batch_size: int | None = None  # buffer samples per step; None: the training batch size
    distill: Literal["mse", "soft"] = "mse"  # "soft": per-kind soft targets as LwF's
    temperature: float = 1.0  # of the soft targets (distill="soft" only)

    def __post_init__(self):
        super().__post_init__()
        if not self.mem_size >= 1:
            raise ValueError(f"mem_size must be >= 1, got {self.mem_size}")
        if not (self.alpha >= 0 and self.beta >= 0):
            raise ValueError(f"alpha and beta must be >= 0, got {self.alpha}, {self.beta}")
        if self.mem_batch_size is not None and not self.mem_batch_size >= 1:
            raise ValueError(f"mem_batch_size must be >= 1, got {self.mem_batch_size}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")


@torch.no_grad()
def model_outputs(model, dataset, device, batch_size: int) -> list[torch.Tensor]:
    """Each sample's output through its own route (task label), in eval mode, on the CPU."""
    was_training = model.training
    model.eval()
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=getattr(dataset, "collate_fn", None))
    outputs: list[torch.Tensor] = []
    for batch in loader:
        x, text, t = (batch[i].to(device) for i in (0, 3, -1))
        part: list = [None] * len(x)
        with autocast(x.device):
            groups = TaskTemplate.grouped_forward(model, x, t, text)
        for idx, _, out in groups:
            for i, o in zip(idx.tolist(), out.float().cpu()):
                part[i] = o.clone()
        outputs.extend(part)
    model.train(was_training)
    return outputs


def collate_with_outputs(samples):
    """Collate the usual fields; stored outputs stay a list (their shape depends on the task kind)."""
    return [*collate_samples([s[:-1] for s in samples]), [s[-1] for s in samples]]


class OutputBuffer(ExperienceBalancedBuffer):
    """Avalanche's experience-balanced reservoir buffer whose samples carry the model's outputs.

    After each experience, every sample of it gets the output of the model as it is then (the
    ``der_output`` attribute, returned last by ``__getitem__``); Avalanche's reservoir then picks
    the experience's share of ``max_size``. Stored outputs are never recomputed: a checkpoint keeps
    them with the samples (a data attribute, which ``unicon_bench.strategy.state`` saves like the others).
    """

    def checkpoint_state(self) -> dict:
        return state.balanced_buffer_state(self)

    def restore_checkpoint_state(self, saved: dict, strategy) -> None:
        state.restore_balanced_buffer(self, saved, strategy)

    def post_adapt(self, agent, exp):
        data = exp.dataset
        outputs = model_outputs(agent.model, data, agent.device, agent.eval_mb_size)
        data = data.update_data_attribute(OUTPUT, DataAttribute(outputs, name=OUTPUT, use_in_getitem=True))
        super().post_adapt(agent, SimpleNamespace(dataset=data))  # the parent reads only ``.dataset``


class DERTemplate(TaskTemplate):
    """Task loss on the current minibatch plus, from the buffer, ``alpha`` x output replay and
    ``beta`` x the task loss of one buffer minibatch."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.buffer = OutputBuffer(max_size=16, adaptive_size=True)  # the strategy sets these
        self.alpha, self.beta, self.mem_batch_size = 0.1, 0.5, self.train_mb_size
        self.distill, self.temperature = "mse", 1.0
        self.replay_loader = None

    def _before_training_exp(self, **kwargs):
        memory = self.buffer.buffer
        self.replay_loader = None
        if len(memory) > 0:
            loader = torch.utils.data.DataLoader(memory, batch_size=self.mem_batch_size, shuffle=True,
                                                 collate_fn=collate_with_outputs)
            self.replay_loader = cycle(loader)
        super()._before_training_exp(**kwargs)

    def _after_training_exp(self, **kwargs):
        self.replay_loader = None
        self.buffer.post_adapt(self, self.experience)
        super()._after_training_exp(**kwargs)

    def criterion(self):
        loss = super().criterion()
        if self.replay_loader is None:
            return loss
        *fields, stored = next(self.replay_loader)
        fields = [f.to(self.device) for f in fields]
        with autocast(torch.device(self.device)):
            groups = self.grouped_forward(self.model, fields[0], fields[-1], fields[3])
        replay = grouped_distillation(self.kinds, groups, stored, self.temperature, self.distill)
        return loss + self.alpha * replay + self.beta * self.batch_loss(groups, fields)


@register_strategy("der")
class DER(AvalancheStrategy):
    """DER++: rehearsal that replays stored samples' labels and the model outputs stored with them.

    Paper: a reservoir buffer over the stream keeps samples together with the network's logits at
    the time they were stored; each step adds ``alpha`` x the MSE between the current and the stored
    logits of one buffer minibatch and ``beta`` x the loss of another buffer minibatch's labels.
    Kept between experiences: ``mem_size`` subjects balanced over past experiences, each with its
    stored output (a lesion logit map, a malignancy logit or a risk).
    Ours: as Avalanche's ``DER``, outputs are stored at the end of each experience (not at the step
    a sample was seen) and one buffer minibatch serves both terms; Avalanche's class-balanced buffer
    becomes its experience-balanced reservoir (our tasks have no common classes). Stored outputs of
    every kind are matched by MSE (``distill=soft``: LwF's per-kind soft targets instead), each
    sample through its own route, and the label term is our task loss (DiceCE / BCE / Cox).
    """

    family = "rehearsal"
    trainable = "all parameters, every experience"
    params = DERParams
    template_cls = DERTemplate

    def make_template(self, model):
        template = super().make_template(model)
        self.buffer = template.buffer = OutputBuffer(max_size=self.p.mem_size, adaptive_size=True)
        template.alpha, template.beta = self.p.alpha, self.p.beta
        template.mem_batch_size = self.p.mem_batch_size or self.batch_size
        template.distill, template.temperature = self.p.distill, self.p.temperature
        return template

    def state_dict(self) -> dict | None:
        """The template's state plus the buffer of samples and stored outputs (it lives on the template)."""
        base = super().state_dict()
        if base is None:  # not checkpointable
            return None
        return {**base, "buffer": state.storage_state(self.buffer)}

    def load_state_dict(self, saved: dict) -> None:
        super().load_state_dict(saved)
        state.restore_storage(self.buffer, saved["buffer"], self)

    def buffer_bytes(self) -> int:
        return tensor_bytes(self.buffer.buffer)
