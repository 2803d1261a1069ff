"""LoRA and bottleneck adapters for 3D convolutional (and linear) layers, with named adapter sets.

``inject_lora(module)`` wraps every Conv3d / ConvTranspose3d / Linear of a module in a
:class:`LoRALayer`. Each wrapper holds any number of named low-rank updates; the one named by
``set_active(module, name)`` is added to the frozen base output, so one frozen network serves
several tasks, each with its own adapter set (as PEFT's ``set_adapter`` does for transformers).
Several names may be active at once: their updates are summed, which is how O-LoRA / InfLoRA answer
every task with one merged model (``W0 + sum_t B_t A_t``) and how ``seq_lora`` keeps one set.

A LoRA update is ``scale * B(A(x))``: ``A`` has the base layer's kernel, stride and padding and
``rank`` output channels (Kaiming-uniform init), ``B`` is a 1x1x1 projection to the base's output
channels, initialised to **zero**, so a new adapter starts as the identity of the base layer
(LoRA, Hu et al. 2021; the conv form of loralib's ConvLoRA).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

TARGETS = (nn.Conv3d, nn.ConvTranspose3d, nn.Linear)


def _low_rank_pair(base: nn.Module, rank: int) -> tuple[nn.Module, nn.Module]:
    if isinstance(base, nn.Linear):
        return nn.Linear(base.in_features, rank, bias=False), nn.Linear(rank, base.out_features, bias=False)
    common = dict(kernel_size=base.kernel_size, stride=base.stride, padding=base.padding, dilation=base.dilation, bias=False)
    if isinstance(base, nn.ConvTranspose3d):
        down = nn.ConvTranspose3d(base.in_channels, rank, output_padding=base.output_padding, **common)
    else:
        down = nn.Conv3d(base.in_channels, rank, **common)
    return down, nn.Conv3d(rank, base.out_channels, kernel_size=1, bias=False)


class LoRAUpdate(nn.Module):
    """One low-rank update ``scale * B(A(x))`` with ``B`` zero-initialised."""

    def __init__(self, base: nn.Module, rank: int, alpha: float):
        super().__init__()
        self.down, self.up = _low_rank_pair(base, rank)
        nn.init.kaiming_uniform_(self.down.weight, a=math.sqrt(5))
        nn.init.zeros_(self.up.weight)
        self.scale = alpha / rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.down(x)) * self.scale


    def down_rows(self) -> torch.Tensor:
        """``A`` as a ``(rank, fan_in)`` matrix: each row is one direction of the input subspace
        (for a convolution, a flattened kernel acting on the im2col patch of its input)."""
        return self.down.weight.reshape(self.down.weight.shape[0], -1)

    @torch.no_grad()
    def set_down_rows(self, rows: torch.Tensor, trainable: bool = False) -> None:
        """Set ``A`` from ``(rank, fan_in)`` rows (a designed subspace, InfLoRA) and (un)freeze it."""
        self.down.weight.copy_(rows.reshape(self.down.weight.shape).to(self.down.weight))
        self.down.weight.requires_grad_(trainable)


class LoRALayer(nn.Module):
    """A frozen-able base layer plus named LoRA updates; the active ones are applied (summed)."""

    def __init__(self, base: nn.Module):
        super().__init__()
        self.base = base
        self.updates = nn.ModuleDict()
        self.active: tuple[str, ...] = ()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)
        for name in self.active:
            if name in self.updates:
                y = y + self.updates[name](x)
        return y


def inject_lora(module: nn.Module) -> list[LoRALayer]:
    """Wrap every target layer of ``module`` (in place) in a LoRALayer; idempotent."""
    for name, child in list(module.named_children()):
        if isinstance(child, LoRALayer):
            continue
        if isinstance(child, TARGETS):
            setattr(module, name, LoRALayer(child))
        else:
            inject_lora(child)
    return lora_layers(module)


def lora_layers(module: nn.Module) -> list[LoRALayer]:
    return [m for m in module.modules() if isinstance(m, LoRALayer)]


def add_lora(module: nn.Module, name: str, rank: int = 4, alpha: float = 8.0) -> int:
    """Add an update called ``name`` to every LoRALayer of ``module``; returns its parameter count."""
    count = 0
    for layer in lora_layers(module):
        update = LoRAUpdate(layer.base, rank, alpha).to(next(layer.base.parameters()).device)
        layer.updates[name] = update
        count += sum(p.numel() for p in update.parameters())
    return count


def set_active(module: nn.Module, name: str | Sequence[str] | None) -> None:
    """Select the update(s) applied by every LoRALayer of ``module`` (None: the base alone).

    A sequence of names sums those updates (one merged model for all tasks)."""
    names = () if name is None else (name,) if isinstance(name, str) else tuple(name)
    for layer in lora_layers(module):
        layer.active = names


def lora_names(module: nn.Module) -> list[str]:
    """Names of the LoRA sets present in ``module``, in the order they were added."""
    names: dict[str, None] = {}
    for layer in lora_layers(module):
        names.update(dict.fromkeys(layer.updates))
    return list(names)


def set_trainable(module: nn.Module, name: str, trainable: bool = True) -> None:
    """(Un)freeze every update called ``name`` (e.g. one LoRA kept training across tasks)."""
    for layer in lora_layers(module):
        if name in layer.updates:
            layer.updates[name].requires_grad_(trainable)


class BottleneckAdapter(nn.Module):
    """Residual 1x1x1 bottleneck on a feature map (Houlsby-style), zero-initialised up-projection."""

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.down = nn.Conv3d(channels, hidden, kernel_size=1)
        self.act = nn.GELU()
        self.up = nn.Conv3d(hidden, channels, kernel_size=1)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.up(self.act(self.down(h)))
