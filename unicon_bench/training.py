"""The thin adapter between our strategies and Avalanche's training loop.

``Strategy`` is the interface the harness drives (train on an experience, predict an experience,
report cost). ``AvalancheStrategy`` implements it on Avalanche's ``SupervisedTemplate``: subclasses
pick the model and the Avalanche plugins. ``TaskTemplate`` makes Avalanche's loop task-aware for
3D CT/PET: each minibatch is split by task label, routed through the right stem/head, and given the
right loss (DiceCE for masks, BCE for malignancy, Cox partial likelihood for survival), so replay
buffers and joint training may mix tasks in one batch.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import numpy as np
import torch

from unicon_bench.data.streams import Stream
from unicon_bench.losses import TaskLoss

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="no QP solver found", category=UserWarning)
    from avalanche.core import SupervisedPlugin
    from avalanche.training.plugins import EvaluationPlugin
    from avalanche.training.templates import SupervisedTemplate


# A search space maps a parameter to ``("float", lo, hi)``, ``("float_log", lo, hi)``, ``("int", lo, hi)``,
# ``("int_log", lo, hi)`` or ``("categorical", [choices])``; ``unicon-bench tune`` samples it with Optuna.
SearchSpace = dict[str, tuple]


@dataclass(frozen=True)
class BaseParams:
    """Hyper-parameters every strategy has; ``None`` means the scenario's training budget.

    The foundation model (``unicon_bench.foundation``): ``backbone`` (a name from
    ``unicon_bench.models.backbones``), ``backbone_options`` (YAML mapping of builder options),
    ``backbone_weights`` (state dict, safetensors file, MONAI bundle folder or ``unicon-bench
    pretrain`` folder), ``weights_map`` (prefix rules ``OLD->NEW``, comma-separated),
    ``weights_ignore`` (globs of keys allowed to be missing/unexpected) and ``freeze``
    (``none`` | ``frozen`` | ``partial:N``).
    """

    # The epoch budget is the scenario's (fairness): tuned are the optimiser's settings only.
    search_space: ClassVar[SearchSpace] = {
        "lr": ("float_log", 1e-4, 1e-2),
        "weight_decay": ("categorical", [0.0, 1e-5, 1e-4]),
    }

    epochs: int | None = None
    lr: float | None = None
    batch_size: int | None = None
    weight_decay: float = 0.0
    backbone: str = "unet"
    backbone_options: str = ""
    backbone_weights: str | None = None
    weights_map: str = ""
    weights_ignore: str = ""
    freeze: str = "none"

    def __post_init__(self):
        for name in ("epochs", "lr", "batch_size"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive (or none for the scenario's budget), got {value}")
        if not self.weight_decay >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        from unicon_bench.foundation import check_params

        check_params(self)


def autocast(device: torch.device):
    """Mixed precision where it pays: bfloat16 autocast on CUDA (no loss scaling needed), none on CPU."""
    return torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")


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

    @staticmethod
    def grouped_forward(model, x, routes, text=None) -> list[tuple[torch.Tensor, int, torch.Tensor]]:
        """``[(index, route, output)]`` for each route (task label) present in the batch."""
        labels = routes.tolist()
        if len(set(labels)) == 1:
            return [(torch.arange(len(labels), device=x.device), labels[0], model(x, labels[0], text))]
        groups = []
        for t in sorted(set(labels)):
            idx = (routes == t).nonzero(as_tuple=True)[0]
            groups.append((idx, t, model(x[idx], t, None if text is None else text[idx])))
        return groups

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


class Strategy:
    """What the harness drives. Subclasses register with ``@register_strategy``."""

    name: ClassVar[str] = ""
    # One of ``registry.FAMILIES``; declare it in the class body: ``ls`` reads it from the source.
    family: ClassVar[str] = ""
    compatible: ClassVar[set[str]] = {"domain", "task", "modality"}
    trainable: ClassVar[str] = "all"
    params: ClassVar[type[BaseParams]] = BaseParams

    def __init__(self, params: BaseParams, stream: Stream, device: str = "cpu"):
        self.p = params
        self.stream = stream
        self.spec = stream.spec
        self.device = torch.device(device)
        self.on_step: Callable[[int, int, float], None] | None = None

    # -- budget shared by all strategies, overridable per run ----------------------------------
    @property
    def epochs(self) -> int:
        return self.spec.train.epochs if self.p.epochs is None else self.p.epochs

    @property
    def lr(self) -> float:
        return self.spec.train.lr if self.p.lr is None else self.p.lr

    @property
    def batch_size(self) -> int:
        return self.spec.train.batch_size if self.p.batch_size is None else self.p.batch_size

    def kinds(self) -> dict[int, str]:
        return {t: e.task for t, e in zip(self.stream.task_labels, self.spec.experiences)}

    # -- the interface ---------------------------------------------------------------------------
    def train(self, experience) -> None:
        raise NotImplementedError

    def eval_model(self, experience) -> torch.nn.Module:
        """The model that answers for ``experience`` at test time."""
        raise NotImplementedError

    @torch.inference_mode()
    def predict(self, experience) -> torch.Tensor:
        """Raw outputs (logits, risks) for every eval sample of ``experience``, on the CPU."""
        model = self.eval_model(experience)
        model.eval()
        loader = torch.utils.data.DataLoader(experience.dataset, batch_size=self.spec.train.eval_batch_size)
        outs = []
        for batch in loader:
            x, text, t = batch[0].to(self.device), batch[3].to(self.device), batch[-1].to(self.device)
            with autocast(self.device):
                groups = TaskTemplate.grouped_forward(self.stream.inferer(model), x, self.eval_routes(x, t), text)
            out = torch.empty((len(x), *groups[0][2].shape[1:]))
            for idx, _, part in groups:  # an experience has one task, but keep sample order anyway
                out[idx.cpu()] = part.float().cpu()
            outs.append(out)
        return torch.cat(outs)

    def eval_routes(self, x: torch.Tensor, task_labels: torch.Tensor) -> torch.Tensor:
        """Route of each test sample: its task label, unless the strategy infers one."""
        return task_labels

    def last_trainable_params(self) -> int:
        raise NotImplementedError

    def total_params(self) -> int:
        raise NotImplementedError

    def buffer_bytes(self) -> int:
        return 0

    def extras(self) -> dict:
        """Strategy-specific facts for the result file (e.g. routing accuracy)."""
        return {}

    def cost_fields(self) -> dict:
        """Optional cost fields of the result (pretrained weights and their hash, what was frozen)."""
        return {}

    # -- checkpoints (see unicon_bench.checkpoint) ----------------------------------------------
    def state_dict(self) -> dict | None:
        """Everything carried from one experience to the next, as tensors and plain containers.

        ``None`` (this default) means the strategy cannot be checkpointed: its runs cannot resume.
        """
        return None

    def load_state_dict(self, state: dict) -> None:
        """Restore ``state_dict()`` into a strategy freshly built for the same run."""
        raise NotImplementedError(f"{type(self).__name__} cannot be restored from a checkpoint")


def quiet_evaluator():
    """Avalanche's evaluator with no loggers: the harness does its own evaluation and printing."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No loggers specified")
        return EvaluationPlugin(loggers=[])


def count_params(module: torch.nn.Module, ids: set[int] | None = None) -> int:
    return sum(p.numel() for p in module.parameters() if ids is None or id(p) in ids)


class AvalancheStrategy(Strategy):
    """A strategy run by Avalanche's SupervisedTemplate; subclasses add plugins or a model."""

    # False: state outside the model, optimizer and known plugins that state_dict() does not cover
    checkpointable: ClassVar[bool] = True

    template_cls: ClassVar[type[TaskTemplate]] = TaskTemplate

    def __init__(self, params: BaseParams, stream: Stream, device: str = "cpu"):
        super().__init__(params, stream, device)
        from unicon_bench.foundation import Foundation

        self.model = self.build_model().to(self.device)
        self.foundation = Foundation.prepare(self.model, self.p, self.spec)
        self.progress = ProgressPlugin(self._step)
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
        from unicon_bench.foundation import build_backbone

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
            plugins=[self.progress, *self.plugins()],
            evaluator=quiet_evaluator(),
            kinds=self.kinds(),
        )

    def train(self, experience) -> None:
        if experience.current_experience == 0 and self.foundation.stage0 is not None:
            # Stage 0 comes from a pretrain checkpoint: no training step, but the plugins' hooks
            # (EWC's Fisher, replay's buffer, ...) still see the first experience.
            self.foundation.load_stage0(self.model)
            epochs, self.template.train_epochs = self.template.train_epochs, 0
            try:
                self.template.train(experience, num_workers=0)
            finally:
                self.template.train_epochs = epochs
            return
        self.template.train(experience, num_workers=0)

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
        covered (``unicon_bench.state``); subclasses add what they keep outside the template.
        """
        from unicon_bench import state

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
        from unicon_bench import state
        from unicon_bench.errors import CheckpointError

        self.model.load_state_dict(saved["model"])
        for n, p in self.model.named_parameters():
            p.requires_grad_(saved["requires_grad"][n])
        state.restore_optimizer(self.template.optimizer, self.model, saved["optimizer"])
        if len(saved["plugins"]) != len(self.template.plugins):
            raise CheckpointError(f"the checkpoint has {len(saved['plugins'])} plugins, the strategy {len(self.template.plugins)}")
        for plugin, plugin_state in zip(self.template.plugins, saved["plugins"]):
            state.restore_plugin(plugin, plugin_state, self)


def tensor_bytes(samples) -> int:
    """Bytes held by the tensors of a dataset's samples (for replay buffer cost)."""
    total = 0
    for i in range(len(samples)):
        for item in samples[i]:
            if isinstance(item, torch.Tensor):
                total += item.element_size() * item.nelement()
            elif isinstance(item, np.ndarray):
                total += item.nbytes
    return total
