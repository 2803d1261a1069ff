"""Task-generic pieces the classic continual-learning baselines share: output distillation per task
kind, and the Learning-without-Forgetting plugin built on it.

Avalanche's ``LwFPlugin`` and ``DER`` assume classification: a softmax over class logits (KL at a
temperature, or MSE on the class logits) and a model called as ``model(x)``. Our outputs are
one malignancy logit ``(N,)``, one prognosis risk ``(N,)`` or a lesion logit map ``(N, 1, D, H, W)``,
and the network is called per route, ``model(x, task_label, text)``. ``distillation_loss`` gives
each kind its own soft-target loss, once, for LwF and for DER's logit replay:

- classification and segmentation (``mode="soft"``): the Bernoulli KL divergence between the
  teacher's and the student's sigmoid at temperature ``T`` — on the logit for classification, per
  voxel for segmentation (soft masks) — averaged over elements and scaled by ``T**2`` (Hinton et
  al., 2015). It is the BCE with the teacher's soft targets minus the teacher's own entropy, so its
  gradient is the BCE's and it is 0 exactly when student == teacher;
- prognosis: the mean squared error between the two risks (a Cox risk has no probability to soften);
- ``mode="mse"``: the mean squared error between raw outputs for every kind (DER's logit matching).
"""

from __future__ import annotations

import copy
from typing import Literal

import torch
import torch.nn.functional as F

# Avalanche's SupervisedPlugin as training.py imports it (with Avalanche's QP-solver warning silenced)
from avalanche.core import SupervisedPlugin

from unicon_bench.strategy.base import autocast

DistillMode = Literal["soft", "mse"]
KINDS = ("classification", "prognosis", "segmentation")


def distillation_loss(
    kind: str,
    student: torch.Tensor,
    teacher: torch.Tensor,
    temperature: float = 1.0,
    mode: DistillMode = "soft",
) -> torch.Tensor:
    """Distillation of ``teacher``'s outputs into ``student``'s for one task kind (see module doc).

    Both have the same shape; the teacher is treated as a constant. Returns a scalar >= 0, 0 where
    ``student == teacher``.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown task kind {kind!r}")
    if mode not in ("soft", "mse"):
        raise ValueError(f"unknown distillation mode {mode!r}")
    if student.shape != teacher.shape:
        raise ValueError(f"student {tuple(student.shape)} and teacher {tuple(teacher.shape)} outputs differ in shape")
    student, teacher = student.float(), teacher.detach().float()  # bfloat16 outputs under CUDA autocast
    if mode == "mse" or kind == "prognosis":
        return F.mse_loss(student, teacher)
    t = float(temperature)
    target = torch.sigmoid(teacher / t)
    cross = F.binary_cross_entropy_with_logits(student / t, target)
    entropy = F.binary_cross_entropy_with_logits(teacher / t, target)
    return (cross - entropy) * t * t


def frozen_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A deep copy in eval mode with no gradients: the teacher of distillation."""
    teacher = copy.deepcopy(model).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def route_key(model: torch.nn.Module, label: int):
    """Routes with the same stem and head compute the same function: distil them once."""
    routes = getattr(model, "routes", None)
    if routes is None or int(label) not in routes:
        return int(label)
    route = routes[int(label)]
    return (route.stem, route.head)


def route_outputs(model, inputs: dict[int, torch.Tensor], text=None) -> dict[int, torch.Tensor]:
    """``{label: model(inputs[label], label, text)}``, computing encoder features once per stem and input.

    For a ``MultiTaskNet`` (``features`` + ``heads``) routes that share a stem and an input share
    the features; any other model is called once per label.
    """
    if not all(hasattr(model, a) for a in ("features", "heads", "routes")):
        return {t: model(x, t, text) for t, x in inputs.items()}
    features, out = {}, {}
    for t, x in inputs.items():
        route = model.routes[t]
        key = (route.stem, id(x))
        if key not in features:
            features[key] = model.features(x, t)
        out[t] = model.heads[route.head](features[key])
    return out


def channels_for(x: torch.Tensor, have: tuple[str, ...] | None, want: tuple[str, ...] | None) -> torch.Tensor:
    """The input a route reading channels ``want`` gets from samples ``x`` whose channels are ``have``.

    The route's modalities the samples carry are picked (an old CT route reads the CT channel of
    PET/CT samples), the others are zeros, as the stream's collate pads missing channels. Samples
    with none of its modalities (PET for a CT route) are given as they are, zero-padded to the
    route's width: plain LwF on a new domain.
    """
    if not have or not want or tuple(have) == tuple(want):
        return x
    if set(want) & set(have):
        zeros = x.new_zeros(x[:, 0].shape)
        return torch.stack([x[:, have.index(m)] if m in have else zeros for m in want], dim=1)
    if x.shape[1] < len(want):
        return torch.cat([x, x.new_zeros((len(x), len(want) - x.shape[1], *x.shape[2:]))], dim=1)
    return x


class OutputDistillationPlugin(SupervisedPlugin):
    """Learning without Forgetting on any of our task kinds (Li & Hoiem, TPAMI 2017).

    After each experience the model is frozen as the teacher and the routes it was trained on are
    remembered. On every later training minibatch, the current inputs go through every remembered
    route of both teacher and student, and ``alpha * sum over routes of distillation_loss`` is added
    to the loss before the backward pass (routes sharing stem and head are distilled once; a route
    whose function the current minibatch already computed reuses that output).

    ``kinds`` maps each task label to its task kind, ``channels`` (optional) to the modalities of its
    input channels: an old route then reads the current samples' channels of its own modalities
    where they have them (``channels_for``). The teacher runs in eval mode (no dropout).
    """

    def __init__(self, kinds: dict[int, str], alpha: float = 1.0, temperature: float = 2.0,
                 mode: DistillMode = "soft", channels: dict[int, tuple[str, ...]] | None = None):
        super().__init__()
        self.kinds = dict(kinds)
        self.channels = dict(channels or {})
        self.alpha = float(alpha)
        self.temperature = float(temperature)
        self.mode = mode
        self.teacher: torch.nn.Module | None = None
        self.seen: dict[object, int] = {}  # route key -> a task label that uses it
        self.last_penalty = 0.0

    def after_training_exp(self, strategy, **kwargs):
        self.teacher = frozen_copy(strategy.model)
        for t in sorted(int(t) for t in strategy.experience.dataset.targets_task_labels.uniques):
            self.seen.setdefault(route_key(strategy.model, t), t)

    def checkpoint_state(self) -> dict:
        """The teacher's weights and the remembered routes (``unicon_bench.strategy.state``)."""
        return {
            "teacher": None if self.teacher is None else self.teacher.state_dict(),
            "seen": [[list(k) if isinstance(k, tuple) else k, t] for k, t in self.seen.items()],
        }

    def restore_checkpoint_state(self, state: dict, strategy) -> None:
        self.teacher = None
        if state["teacher"] is not None:  # the model's structure (routes) is restored by now
            self.teacher = frozen_copy(strategy.model)
            self.teacher.load_state_dict(state["teacher"])
        self.seen = {(tuple(k) if isinstance(k, list) else k): int(t) for k, t in state["seen"]}

    def penalty(self, model, x: torch.Tensor, text=None, current=None, label: int | None = None) -> torch.Tensor:
        """The distillation term for inputs ``x`` of task label ``label`` (``None``: channels as they are).

        ``current`` is ``{route key: output}`` the minibatch already computed from ``x``.
        """
        current = current or {}
        have = self.channels.get(label)
        picked: dict[tuple, torch.Tensor] = {}  # one tensor per channel selection: features are shared
        for t in self.seen.values():
            want = tuple(self.channels.get(t) or ())
            if want not in picked:
                picked[want] = channels_for(x, have, want)
        inputs = {t: picked[tuple(self.channels.get(t) or ())] for t in self.seen.values()}
        with torch.no_grad(), autocast(x.device):
            teacher_out = route_outputs(self.teacher, inputs, text)
        missing = {t: inputs[t] for key, t in self.seen.items() if key not in current or inputs[t] is not x}
        with autocast(x.device):
            student_out = route_outputs(model, missing, text) if missing else {}
        total = x.new_zeros(())
        for key, t in self.seen.items():
            student = student_out[t] if t in student_out else current[key]
            total = total + distillation_loss(self.kinds[t], student, teacher_out[t], self.temperature, self.mode)
        return total

    def before_backward(self, strategy, **kwargs):
        if self.teacher is None or not self.seen:
            return
        groups = strategy.mb_output
        current, label = {}, None
        if len(groups) == 1:  # the usual case: one task per minibatch without a buffer
            _, label, out = groups[0]
            current[route_key(strategy.model, label)] = out
        penalty = self.penalty(strategy.model, strategy.mb_x, strategy.mbatch[3], current, label)
        self.last_penalty = float(penalty.detach())
        strategy.loss += self.alpha * penalty


def grouped_distillation(kinds: dict[int, str], groups, teacher: list[torch.Tensor] | torch.Tensor,
                         temperature: float = 1.0, mode: DistillMode = "soft") -> torch.Tensor:
    """Distillation of a grouped forward (``TaskTemplate.grouped_forward``) towards per-sample targets.

    ``teacher[i]`` is sample ``i``'s target output; each group's loss is weighted by its share of
    the batch, as ``TaskTemplate.batch_loss`` weights the task losses.
    """
    total = sum(len(idx) for idx, _, _ in groups)
    loss = 0.0
    for idx, t, out in groups:
        target = torch.stack([teacher[i] for i in idx.tolist()]).to(out.device)
        loss = loss + distillation_loss(kinds[t], out, target, temperature, mode) * (len(idx) / total)
    return loss


__all__ = [
    "KINDS",
    "OutputDistillationPlugin",
    "distillation_loss",
    "frozen_copy",
    "grouped_distillation",
    "channels_for",
    "route_key",
    "route_outputs",
]
