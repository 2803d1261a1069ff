"""MultiTaskNet: modality stems -> shared encoder -> decomposed task heads.

The decomposed decoder (pixel head for masks, semantic heads for labels and risks on one encoder)
approximates UniMed's design. Each *route* maps an Avalanche task label to the modality stem and the
head it uses, so one model serves task-, modality- and domain-incremental streams.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from unicon_bench.models.unet import CHANNELS, Encoder3D, GlobalHead, SegDecoder


@dataclass(frozen=True)
class Route:
    """How samples of one task label flow through the network."""

    kind: str  # segmentation | classification | prognosis
    modality: str  # CT | PET
    head: str  # key into ``MultiTaskNet.heads``
    stem: str  # key into ``MultiTaskNet.stems``
    in_channels: int = 1  # 2 for PET samples that carry the co-registered CT


def make_head(kind: str, backbone: nn.Module | tuple[int, ...], light: bool = False) -> nn.Module:
    """The head for a task kind on ``backbone`` (or the default U-Net's ``channels``): the
    backbone's pixel decoder for segmentation, an MLP on the pooled deepest features otherwise."""
    channels = tuple(backbone) if isinstance(backbone, (tuple, list)) else backbone.channels
    if kind == "segmentation":
        return SegDecoder(channels, light=light) if isinstance(backbone, (tuple, list)) else backbone.make_seg_decoder(light)
    if kind in ("classification", "prognosis"):
        return GlobalHead(channels[-1])
    raise ValueError(f"unknown task kind {kind!r}")


class MultiTaskNet(nn.Module):
    """Shared 3D encoder with per-modality stems and per-route heads.

    ``forward(x, task_label)`` runs a batch that belongs to one task label. ``encoder`` is any
    backbone of ``unicon_bench.models.backbones`` (default: the residual U-Net of ``channels``).
    """

    def __init__(self, routes: dict[int, Route], channels: tuple[int, ...] = CHANNELS, encoder: nn.Module | None = None):
        super().__init__()
        self.routes = dict(routes)
        self.encoder = encoder if encoder is not None else Encoder3D(tuple(channels))
        self.channels = tuple(self.encoder.channels)
        self.stems = nn.ModuleDict()
        self.heads = nn.ModuleDict()
        for route in self.routes.values():
            if route.stem not in self.stems:
                self.stems[route.stem] = self.encoder.make_stem(route.in_channels)
            if route.head not in self.heads:
                self.heads[route.head] = make_head(route.kind, self.encoder)

    @classmethod
    def for_experiences(
        cls,
        experiences: list[tuple],
        channels: tuple[int, ...] = CHANNELS,
        head_per: str = "kind",
        stem_per_modality: bool = False,
        encoder: nn.Module | None = None,
    ) -> "MultiTaskNet":
        """Build routes from ``[(task_kind, modality[, in_channels]), ...]`` indexed by task label.

        ``head_per="kind"`` shares one head between experiences of the same task kind (the
        classic fine-tuning set-up); ``"experience"`` gives each experience its own head. Inputs
        with a different channel count (PET + CT) always get a stem of their own.
        """
        routes = {}
        for t, (kind, modality, *rest) in enumerate(experiences):
            in_channels = int(rest[0]) if rest else 1
            head = kind if head_per == "kind" else f"{kind}_{t}"
            stem_key = modality if stem_per_modality else "shared"
            if in_channels != 1:
                stem_key = f"{stem_key}x{in_channels}"
            routes[t] = Route(kind, modality, head, stem_key, in_channels)
        return cls(routes, channels, encoder)

    def features(self, x: torch.Tensor, task_label: int) -> list[torch.Tensor]:
        route = self.routes[int(task_label)]
        return self.encoder(self.stems[route.stem](x[:, : route.in_channels]))

    def forward(self, x: torch.Tensor, task_label: int = 0, text: torch.Tensor | None = None) -> torch.Tensor:
        """Output of the head of ``task_label``'s route; ``text`` is unused (image-only model)."""
        route = self.routes[int(task_label)]
        return self.heads[route.head](self.features(x, task_label))
