"""The thin adapter between our strategies and Avalanche's training loop.

``AvalancheStrategy`` implements ``Strategy`` on Avalanche's ``SupervisedTemplate``: subclasses pick
the model and the Avalanche plugins. ``TaskTemplate`` makes Avalanche's loop task-aware for 3D CT/PET:
each minibatch is split by task label, routed through the right stem/head, and given the right loss
(DiceCE for masks, BCE for malignancy, Cox partial likelihood for survival), so replay buffers and
joint training may mix tasks in one batch.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, ClassVar

import torch

from unicon_bench.data.streams import Stream
from unicon_bench.strategy.base import Strategy, autocast, count_params, grouped_forward
from unicon_bench.strategy.losses import TaskLoss
from unicon_bench.errors import UniconBenchError
from unicon_bench.strategy.params import BaseParams
from unicon_bench.strategy.stage0 import Stage0Plugin, Stage0Store

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="no QP solver found", category=UserWarning)
    from avalanche.core import SupervisedPlugin
    from avalanche.training.plugins import EvaluationPlugin
    from avalanche.training.templates import SupervisedTemplate


class TaskTemplate(SupervisedTemplate):
    """SupervisedTemplate whose forward and loss group each minibatch by task label."""

    def __init__(self, *, kinds: dict[int, str], **kwargs):
        super().__init__(**kwargs)
        self.kinds = kinds
        self.task_loss = TaskLoss()

    def make_optimizer(self, **kwargs):
        # A fresh optimizer state per experience (and new parameters, e.g. LoRA, get added).
        kwargs["reset_optimizer_state"] = True
        super().make_optimizer(**kwargs)

    def forward(self):
        with autocast(torch.device(self.device)):
            return self.grouped_forward(self.model, self.mb_x, self.train_routes(), self.mbatch[3])

    def train_routes(self) -> torch.Tensor:
        """Route of each training sample: its task label (strategies may route differently)."""
        return self.mb_task_id

    grouped_forward = staticmethod(grouped_forward)

    def criterion(self):
        return self.batch_loss(self.mb_output, self.mbatch)

    def batch_loss(self, groups, mbatch) -> torch.Tensor:
        """Loss of a grouped forward: each task's loss weighted by its share of the batch."""
        mask, clinical = mbatch[1], mbatch[2]
        total = len(mask)
        loss = 0.0
        for idx, t, out in groups:
            loss = loss + self.task_loss(self.kinds[t], out.float(), mask[idx], clinical[idx]) * (len(idx) / total)
        return loss


class ProgressPlugin(SupervisedPlugin):
    """Reports training steps to a callback and records which parameters received gradients."""

    def __init__(self, on_step: Callable[[int, int, float], None] | None = None):
        super().__init__()
        self.on_step = on_step
        self.updated: set[int] = set()

    def before_training_exp(self, strategy, **kwargs):
        self.updated = set()
        self.total = None  # known once plugins (e.g. replay) have replaced the dataloader
        self.done = 0

    def after_backward(self, strategy, **kwargs):
        for p in strategy.model.parameters():
            if p.grad is not None:
                self.updated.add(id(p))

    def after_training_iteration(self, strategy, **kwargs):
        if self.total is None:
            self.total = strategy.train_epochs * len(strategy.dataloader)
        self.done += 1
        if self.on_step is not None:
            self.on_step(self.done, self.total, float(strategy.loss.detach()))


def quiet_evaluator():
    """Avalanche's evaluator with no loggers: the harness does its own evaluation and printing."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No loggers specified")
        return EvaluationPlugin(loggers=[])


class AvalancheStrategy(Strategy):
    """A strategy run by Avalanche's SupervisedTemplate; subclasses add plugins or a model."""

    # False: state outside the model, optimizer and known plugins that state_dict() does not cover
    checkpointable: ClassVar[bool] = True
    # "plain" or "peft": experience 0 is the family's common training, which a shared stage 0 can
    # replace bit-identically (unicon_bench.strategy.stage0; verified per strategy in tests/test_stage0.py)
    stage0_family: ClassVar[str | None] = None

    template_cls: ClassVar[type[TaskTemplate]] = TaskTemplate

    def __init__(self, params: BaseParams, stream: Stream, device: str = "cpu"):
        super().__init__(params, stream, device)
        from unicon_bench.models.foundation import Foundation

        self.model = self.build_model().to(self.device)
        self.foundation = Foundation.prepare(self.model, self.p, self.spec)
        self.progress = ProgressPlugin(self._step)
        self.stage0_plugin = Stage0Plugin(self)
        self.stage0_store: Stage0Store | None = None  # set by the harness when the run may share stage 0
        self.stage0_used: dict | None = None  # the shared stage 0 this run started from
        self.template = self.make_template(self.model)

    def _step(self, done: int, total: int, loss: float) -> None:
        if self.on_step is not None:
            self.on_step(done, total, loss)

    def build_model(self) -> torch.nn.Module:
        from unicon_bench.models.net import MultiTaskNet

        routes = [(e.task, e.modality, len(e.channels)) for e in self.spec.experiences]
        if not self.spec.task_identity_at_test:
            routes = routes[:1]  # one task label: the stream gives no identity
        return MultiTaskNet.for_experiences(routes, encoder=self.make_backbone())

    def make_backbone(self) -> torch.nn.Module:
        """The backbone the parameters name, for this scenario's volumes."""
        from unicon_bench.models.foundation import build_backbone

        return build_backbone(self.p, self.spec)

    def plugins(self) -> list[Any]:
        return []

    def make_template(self, model: torch.nn.Module) -> TaskTemplate:
        optimizer = torch.optim.Adam(model.parameters(), lr=self.lr, weight_decay=self.p.weight_decay)
        return self.template_cls(
            model=model,
            optimizer=optimizer,
            criterion=torch.nn.Identity(),  # unused: TaskTemplate.criterion computes the loss
            train_mb_size=self.batch_size,
            train_epochs=self.epochs,
            eval_mb_size=self.spec.train.eval_batch_size,
            device=self.device,
            plugins=[self.stage0_plugin, self.progress, *self.plugins()],
            evaluator=quiet_evaluator(),
            kinds=self.kinds(),
        )

    def train(self, experience) -> None:
        if experience.current_experience == 0 and self.foundation.stage0 is not None:
            # Stage 0 comes from a pretrain checkpoint: no training step, but the plugins' hooks
            # (EWC's Fisher, replay's buffer, ...) still see the first experience.
            self.foundation.load_stage0(self.model)
            self._hooks_only(experience)
            return
        if experience.current_experience == 0 and self.stage0_store is not None:
            self._train_shared_stage0(experience)
            return
        self.template.train(experience, num_workers=0)

    def _hooks_only(self, experience) -> None:
        """Run Avalanche's loop on ``experience`` with zero epochs: no training step, every plugin hook."""
        epochs, self.template.train_epochs = self.template.train_epochs, 0
        try:
            self.template.train(experience, num_workers=0)
        finally:
            self.template.train_epochs = epochs

    def stage0_params(self) -> dict[str, Any]:
        """The parameters experience 0 of the family depends on: the common ones (``BaseParams``)."""
        import dataclasses

        return {f.name: getattr(self.p, f.name) for f in dataclasses.fields(BaseParams)}

    def _train_shared_stage0(self, experience) -> None:
        """Experience 0 from the shared stage 0 if one is stored, else trained and stored for the others."""
        self.stage0_store.bind(self)
        found = self.stage0_store.load()
        if found is None:
            self.stage0_plugin.mode = "capture"
            self.template.train(experience, num_workers=0)
            captured, self.stage0_plugin.captured = self.stage0_plugin.captured, None
            try:
                self.stage0_store.save({**captured, "trained_by": self.name})
            except UniconBenchError as exc:  # the run itself is fine: the next one trains its own stage 0
                warnings.warn(f"shared stage 0 not stored: {exc}", stacklevel=2)
            return
        payload, digest = found
        self.stage0_plugin.mode, self.stage0_plugin.payload = "restore", payload
        self._hooks_only(experience)
        self.stage0_used = {"key": self.stage0_store.key, "sha256": digest, "trained_by": payload["trained_by"]}

    def cost_fields(self) -> dict:
        return self.foundation.cost_fields()

    def eval_model(self, experience) -> torch.nn.Module:
        return self.model

    def last_trainable_params(self) -> int:
        return count_params(self.model, self.progress.updated)

    def total_params(self) -> int:
        return count_params(self.model)

    def state_dict(self) -> dict:
        """Model weights and trainable flags, optimizer, and the state of every template plugin.

        Avalanche's clock, EWC, replay buffers and plugins defining ``checkpoint_state()`` are
        covered (``unicon_bench.strategy.state``); subclasses add what they keep outside the template.
        """
        from unicon_bench.strategy import state

        if not self.checkpointable:
            return None
        try:
            plugins = [state.plugin_state(p) for p in self.template.plugins]
        except state.NotCheckpointable:
            return None
        return {
            "model": self.model.state_dict(),
            "requires_grad": {n: p.requires_grad for n, p in self.model.named_parameters()},
            "optimizer": self.template.optimizer.state_dict(),
            "plugins": plugins,
        }

    def load_state_dict(self, saved: dict) -> None:
        from unicon_bench.strategy import state
        from unicon_bench.errors import CheckpointError

        self.model.load_state_dict(saved["model"])
        for n, p in self.model.named_parameters():
            p.requires_grad_(saved["requires_grad"][n])
        state.restore_optimizer(self.template.optimizer, self.model, saved["optimizer"])
        if len(saved["plugins"]) != len(self.template.plugins):
            raise CheckpointError(f"the checkpoint has {len(saved['plugins'])} plugins, the strategy {len(self.template.plugins)}")
        for plugin, plugin_state in zip(self.template.plugins, saved["plugins"]):
            state.restore_plugin(plugin, plugin_state, self)
