"""What the harness drives: the ``Strategy`` interface (train on an experience, predict an
experience, report cost, checkpoint its state), plus the pieces every strategy shares: mixed
precision, routing a batch by task label, parameter and buffer counting.

``unicon_bench.strategy.avalanche`` implements this interface on Avalanche's training loop.
"""

from __future__ import annotations

import contextvars
from typing import Callable, ClassVar

import numpy as np
import torch

from unicon_bench.data.streams import Stream
from unicon_bench.registry import STRATEGY_DEFAULTS
from unicon_bench.strategy.params import BaseParams, default_precision


# The arithmetic of the run in progress ("fp32" or "bf16"), set by the harness for the run's duration;
# unset (a strategy used outside a run): the device's default, ``default_precision``.
PRECISION: contextvars.ContextVar[str | None] = contextvars.ContextVar("unicon_bench_precision", default=None)


def autocast(device: torch.device):
    """The run's precision as an autocast context: bfloat16 autocast for ``bf16`` (CPU or CUDA), none for ``fp32``."""
    precision = PRECISION.get() or default_precision(device)
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


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


class Strategy:
    """What the harness drives. Subclasses register with ``@register_strategy``."""

    name: ClassVar[str] = ""
    # ``ls`` reads these from the class body (as literals), a parent's, or these defaults (one home).
    family: ClassVar[str] = STRATEGY_DEFAULTS["family"]  # one of ``registry.FAMILIES``
    compatible: ClassVar[set[str]] = set(STRATEGY_DEFAULTS["compatible"])
    trainable: ClassVar[str] = STRATEGY_DEFAULTS["trainable"]
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
                groups = grouped_forward(self.stream.inferer(model), x, self.eval_routes(x, t), text)
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

    # -- checkpoints (see unicon_bench.harness.checkpoint) ----------------------------------------------
    def state_dict(self) -> dict | None:
        """Everything carried from one experience to the next, as tensors and plain containers.

        ``None`` (this default) means the strategy cannot be checkpointed: its runs cannot resume.
        """
        return None

    def load_state_dict(self, state: dict) -> None:
        """Restore ``state_dict()`` into a strategy freshly built for the same run."""
        raise NotImplementedError(f"{type(self).__name__} cannot be restored from a checkpoint")


def count_params(module: torch.nn.Module, ids: set[int] | None = None) -> int:
    return sum(p.numel() for p in module.parameters() if ids is None or id(p) in ids)


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
