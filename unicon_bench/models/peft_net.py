"""PeftNet: a foundation encoder frozen after stage 0, grown per experience with PEFT modules.

Every experience gets a *route*: a modality stem, a named LoRA set (or bottleneck adapters) and a
head. Stage 0 trains stem + encoder + first head; afterwards the encoder is frozen and a route adds
only parameter-efficient modules: a LoRA set across the encoder's convolutions (and across the
reused head, if an earlier experience already trained a head of the same kind), a new stem for a
new modality, and a new head where no head of that kind exists. Nothing that an earlier route uses
is ever updated, so earlier outputs stay bit-identical.

``merged=True`` changes how routes read the LoRA sets: every route applies *all* sets at once (their
sum), as O-LoRA / InfLoRA do at inference, and a set may be kept training across experiences
(``add_route(..., lora_name="seq")``: the naive PEFT baseline). Earlier outputs then do change.

The prognosis head fuses the image embedding with the report text (UNICON): an MLP adapter on the
pooled image features, the built-in text encoder with its MLP adapter, and a fusion adapter.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from unicon_bench.models import lora as L
from unicon_bench.models.net import make_head
from unicon_bench.models.text import TextEncoder, mlp_adapter
from unicon_bench.models.weights import freeze_batch_norm
from unicon_bench.models.unet import CHANNELS, Encoder3D, global_pool


@dataclass(frozen=True)
class PeftRoute:
    kind: str
    modality: str
    stem: str
    head: str
    peft: str | None  # name of the LoRA/adapter set, None = the stage-0 weights alone
    ct_stem: str | None = None  # PET + CT samples: the frozen CT stem also reads the CT channel


def _ensure_lora(module: nn.Module, name: str, rank: int, alpha: float) -> None:
    """Give ``module`` the LoRA set ``name``: a new one, or the existing one made trainable again."""
    L.inject_lora(module)
    if name in L.lora_names(module):
        L.set_trainable(module, name)
    else:
        L.add_lora(module, name, rank, alpha)


class FusionPrognosisHead(nn.Module):
    """Risk from image features fused with report text (image adapter, text adapter, fusion)."""

    def __init__(self, in_channels: int = CHANNELS[-1], dim: int = 32):
        super().__init__()
        self.image_adapter = mlp_adapter(2 * in_channels, dim)
        self.text = TextEncoder(out_dim=dim)
        self.text_adapter = mlp_adapter(dim, dim)
        self.fusion = nn.Sequential(nn.Linear(2 * dim, dim), nn.GELU(), nn.Dropout(0.1), nn.Linear(dim, 1))

    def forward(self, feats: list[torch.Tensor], text: torch.Tensor | None) -> torch.Tensor:
        if text is None:
            raise ValueError("the fused prognosis head needs the report text tokens")
        img = self.image_adapter(global_pool(feats[-1]))
        txt = self.text_adapter(self.text(text))
        return self.fusion(torch.cat([img, txt], dim=1)).squeeze(1)


class LevelAdapters(nn.Module):
    """Bottleneck adapters after each encoder level (the alternative to LoRA)."""

    def __init__(self, channels: tuple[int, ...], reduction: int):
        super().__init__()
        self.adapters = nn.ModuleList(L.BottleneckAdapter(c, reduction) for c in channels)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        return [a(f) for a, f in zip(self.adapters, feats)]


class PeftNet(nn.Module):
    """Frozen foundation encoder + per-route stems, PEFT sets and heads."""

    def __init__(self, channels: tuple[int, ...] = CHANNELS, fuse_text: bool = True, merged: bool = False,
                 encoder: nn.Module | None = None):
        super().__init__()
        self.fuse_text = fuse_text
        self.merged = merged
        self.encoder = encoder if encoder is not None else Encoder3D(tuple(channels))
        self.channels = tuple(self.encoder.channels)
        self.stems = nn.ModuleDict()
        self.heads = nn.ModuleDict()
        self.level_adapters = nn.ModuleDict()
        self.stem_gates = nn.ParameterDict()
        self.routes: dict[int, PeftRoute] = {}

    # -- growing --------------------------------------------------------------------------------
    def add_route(self, index: int, kind: str, modality: str, peft: str = "lora", rank: int = 4,
                  alpha: float = 8.0, reduction: int = 4, with_ct: bool = False, lora_name: str | None = None,
                  head_lora: bool = True) -> PeftRoute:
        """Add the modules of experience ``index``; the first route is the foundation (stage 0).

        ``with_ct``: the samples are (modality, CT) channel pairs. When a CT stem exists (PEMMA), the
        frozen CT stem reads the CT channel and a new stem reads the other one, added through a
        per-channel gate that starts at zero: the route starts as the CT model on the CT channel.
        ``lora_name`` names the route's LoRA set (default ``exp<index>``); naming a set that exists
        keeps it and makes it trainable again. ``head_lora=False`` leaves a reused head frozen
        without a LoRA set of its own.
        """
        stage0 = not self.routes
        if not stage0:
            self.freeze()
        ct_stem = "CT" if with_ct and "CT" in self.stems else None
        stem_key = modality if not with_ct else f"{modality}+CT" if ct_stem else f"{modality}x2"
        if stem_key not in self.stems:
            self.stems[stem_key] = self.encoder.make_stem(2 if with_ct and not ct_stem else 1)
            if ct_stem:
                self.stem_gates[stem_key] = nn.Parameter(torch.zeros(1, self.encoder.stem_channels, 1, 1, 1))
        head_key = next((r.head for r in self.routes.values() if r.kind == kind), None)
        if head_key is None:
            head_key = f"{kind}_{index}"
            self.heads[head_key] = self._new_head(kind)
        peft_name = None
        if not stage0:
            peft_name = lora_name or f"exp{index}"
            if peft == "lora":
                _ensure_lora(self.encoder, peft_name, rank, alpha)
                if head_lora and any(r.head == head_key for r in self.routes.values()):
                    # a reused head adapts through LoRA only
                    _ensure_lora(self.heads[head_key], peft_name, rank, alpha)
            elif peft == "adapter" and self.merged:
                raise ValueError("merged LoRA sets need peft='lora'")
            elif peft == "adapter":
                self.level_adapters[peft_name] = LevelAdapters(self.channels, reduction)
            else:
                raise ValueError(f"unknown PEFT kind {peft!r} (lora or adapter)")
        route = PeftRoute(kind, modality, stem_key, head_key, peft_name, ct_stem)
        self.routes[index] = route
        device = next(self.encoder.parameters()).device
        self.to(device)
        return route

    def _new_head(self, kind: str) -> nn.Module:
        if kind == "prognosis" and self.fuse_text:
            return FusionPrognosisHead(self.channels[-1])
        # On a frozen encoder a segmentation head is the light decoder.
        return make_head(kind, self.encoder, light=kind == "segmentation" and bool(self.routes))

    def freeze(self) -> None:
        """Freeze every parameter that exists now (called before a new route adds its own), and the
        running statistics of batch-norm layers (``resnet``, ``segresenc``), which earlier routes read."""
        for p in self.parameters():
            p.requires_grad_(False)
        freeze_batch_norm(self)

    # -- running --------------------------------------------------------------------------------
    def features(self, x: torch.Tensor, index: int) -> list[torch.Tensor]:
        route = self.routes[int(index)]
        L.set_active(self, L.lora_names(self) if self.merged else route.peft)
        feats = self.encoder(self.stem_features(x, route))
        if route.peft in self.level_adapters:
            feats = self.level_adapters[route.peft](feats)
        return feats

    def stem_features(self, x: torch.Tensor, route: PeftRoute) -> torch.Tensor:
        """The route's stem on its own channels (a mixed batch may be zero-padded beyond them)."""
        if route.ct_stem is None:
            return self.stems[route.stem](x[:, : self.stems[route.stem].in_channels])
        own = self.stems[route.stem](x[:, :1])
        return self.stems[route.ct_stem](x[:, 1:2]) + self.stem_gates[route.stem] * own

    def _foundation_stem(self, x: torch.Tensor, channels: tuple[str, ...] | None = None) -> torch.Tensor:
        """The stage-0 stem on the channel of the foundation's modality (``channels`` names x's)."""
        first = self.routes[min(self.routes)]
        c = channels.index(first.modality) if channels and first.modality in channels else 0
        return self.stems[first.stem](x[:, c : c + 1])

    def foundation_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled stage-0 features (first route's stem, no PEFT): mean and std of every level."""
        L.set_active(self, None)
        feats = self.encoder(self._foundation_stem(x))
        return torch.cat([torch.cat([f.mean(dim=(2, 3, 4)), f.std(dim=(2, 3, 4))], dim=1) for f in feats], dim=1)

    def forward(self, x: torch.Tensor, index: int = 0, text: torch.Tensor | None = None) -> torch.Tensor:
        if int(index) not in self.routes:
            return self._provisional_forward(x, int(index), text)
        route = self.routes[int(index)]
        feats = self.features(x, index)
        head = self.heads[route.head]
        if isinstance(head, FusionPrognosisHead):
            return head(feats, text)
        return head(feats)

    def _provisional_forward(self, x: torch.Tensor, index: int, text: torch.Tensor | None) -> torch.Tensor:
        """An experience without a route yet: foundation features into an untrained head.

        ``self.provisional`` (set by the strategy, not a submodule) maps the index to that head, and
        ``self.input_channels`` the index to its samples' channel names.
        """
        head = getattr(self, "provisional", {}).get(index)
        if head is None or not self.routes:
            raise KeyError(f"no route for experience {index}")
        L.set_active(self, None)
        feats = self.encoder(self._foundation_stem(x, getattr(self, "input_channels", {}).get(index)))
        return head(feats, text) if isinstance(head, FusionPrognosisHead) else head(feats)
