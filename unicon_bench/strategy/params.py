"""A strategy's hyper-parameters: the frozen ``BaseParams`` dataclass every strategy's params extend,
with the Optuna search space declared beside the defaults.

Cheap to import (no torch): the command line and ``tune`` read parameters before any model is built.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar

# A search space maps a parameter to ``("float", lo, hi)``, ``("float_log", lo, hi)``, ``("int", lo, hi)``,
# ``("int_log", lo, hi)`` or ``("categorical", [choices])``; ``unicon-bench tune`` samples it with Optuna.
SearchSpace = dict[str, tuple]


@dataclass(frozen=True)
class BaseParams:
    """Hyper-parameters every strategy has; ``None`` means the scenario's training budget.

    The foundation model (``unicon_bench.models.foundation``): ``backbone`` (a name from
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
        for f in dataclasses.fields(self):  # every strategy's numbers, however its params were made
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{f.name} must be a finite number, got {value}")
        for name in ("epochs", "lr", "batch_size"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive (or none for the scenario's budget), got {value}")
        if not self.weight_decay >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        from unicon_bench.models.foundation import check_params

        check_params(self)


PRECISIONS = ("fp32", "bf16")  # the arithmetic a run trains and evaluates in


def default_precision(device) -> str:
    """The precision of ``device`` unless asked otherwise: bfloat16 autocast on CUDA (no loss scaling
    needed), fp32 on the CPU."""
    return "bf16" if str(device).split(":")[0] == "cuda" else "fp32"
