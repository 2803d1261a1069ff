"""A 3D residual U-Net split into stem, encoder and pixel decoder, built from MONAI blocks.

The layout follows MONAI's ``UNet`` (strided residual units down, transposed convolutions up, the
first layer already at stride 2), so its speed matches: ~80 ms per training step at 32^3, batch 4,
on 2 CPU cores. Splitting it lets strategies give each modality its own stem, share or freeze the
encoder, and put several heads on one encoder.

Instance normalisation is used throughout: it has no running statistics, so a frozen encoder is
truly frozen (BatchNorm running stats keep drifting in train mode), and it suits the small batches
3D volumes force on a CPU.
"""

from __future__ import annotations

import torch
from monai.networks.blocks import Convolution, ResidualUnit
from monai.networks.layers import Norm
from torch import nn

NORM = Norm.INSTANCE
ACT = "PRELU"
CHANNELS = (16, 32, 64, 128)
STEM_STRIDE = 2
LEVEL_STRIDES = (2, 2, 1)


def stem(in_channels: int = 1, out_channels: int = CHANNELS[0]) -> nn.Module:
    """The input path of one modality: a strided residual unit to half resolution."""
    return ResidualUnit(3, in_channels, out_channels, strides=STEM_STRIDE, subunits=2, norm=NORM, act=ACT)


class Encoder3D(nn.Module):
    """Residual encoder over stem features; returns every level's features, finest first."""

    def __init__(self, channels: tuple[int, ...] = CHANNELS, strides: tuple[int, ...] = LEVEL_STRIDES):
        super().__init__()
        if len(strides) != len(channels) - 1:
            raise ValueError("need one stride per encoder level (len(channels) - 1)")
        self.channels, self.strides = tuple(channels), tuple(strides)
        self.levels = nn.ModuleList(
            ResidualUnit(3, cin, cout, strides=s, subunits=2, norm=NORM, act=ACT)
            for cin, cout, s in zip(channels[:-1], channels[1:], strides)
        )

    def forward(self, h: torch.Tensor) -> list[torch.Tensor]:
        feats = [h]
        for level in self.levels:
            feats.append(level(feats[-1]))
        return feats

    @property
    def out_channels(self) -> int:
        return self.channels[-1]

    # -- the backbone interface (``unicon_bench.models.backbones``) -------------------------------
    def make_stem(self, in_channels: int = 1) -> nn.Module:
        return stem(in_channels, self.channels[0])

    @property
    def stem_channels(self) -> int:
        """Channels a stem hands to the encoder."""
        return self.channels[0]

    def make_seg_decoder(self, light: bool = False) -> nn.Module:
        return SegDecoder(self.channels, self.strides, light=light)

    def stages(self) -> list[tuple[nn.Module, ...]]:
        return [(level,) for level in self.levels]

    @property
    def divisor(self) -> int:
        """Volume sides must be multiples of this (stem and level strides, undone by the decoder)."""
        d = STEM_STRIDE
        for s in self.strides:
            d *= s
        return d


class SegDecoder(nn.Module):
    """Pixel decoder: concatenate the skip, transposed convolution up; 1-channel logits at input size."""

    def __init__(
        self,
        channels: tuple[int, ...] = CHANNELS,
        strides: tuple[int, ...] = LEVEL_STRIDES,
        out_channels: int = 1,
        light: bool = False,
    ):
        """``light`` squeezes each concatenation with a 1x1x1 convolution before upsampling,
        which cuts the decoder's parameters ~3x (for heads added on a frozen encoder)."""
        super().__init__()
        all_strides = (STEM_STRIDE, *strides)
        ups = []
        cin = channels[-1]
        for i in range(len(channels) - 1, 0, -1):
            last = i == 1
            cout = out_channels if last else channels[i - 2]
            width = cin + channels[i - 1]
            squeeze = None
            if light and not last:
                squeeze = Convolution(3, width, cout, strides=1, kernel_size=1, norm=NORM, act=ACT)
                width = cout
            up = Convolution(
                3, width, cout, strides=all_strides[i - 1], kernel_size=3, norm=NORM, act=ACT,
                is_transposed=True, conv_only=last,
            )
            if not last:
                up = nn.Sequential(
                    *([squeeze] if squeeze is not None else []),
                    up,
                    ResidualUnit(3, cout, cout, strides=1, subunits=1, norm=NORM, act=ACT),
                )
            ups.append(up)
            cin = cout
        self.ups = nn.ModuleList(ups)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        h = feats[-1]
        for up, skip in zip(self.ups, feats[-2::-1]):
            h = up(torch.cat([h, skip], dim=1))
        return h


def global_pool(h: torch.Tensor) -> torch.Tensor:
    """Mean and max over space, concatenated: (N, C, D, H, W) -> (N, 2C).

    The mean sees diffuse evidence (burden), the max a single small lesion that the mean dilutes
    in a whole-chest volume (multiple-instance pooling); with the mean alone a head trained from
    scratch on tens of subjects memorised them instead of finding the lesions.
    """
    return torch.cat([h.mean(dim=(2, 3, 4)), h.amax(dim=(2, 3, 4))], dim=1)


class GlobalHead(nn.Module):
    """Semantic head on the deepest features: :func:`global_pool` then a small MLP to one output.

    A logit for classification, a log-hazard (risk) for prognosis.
    """

    def __init__(self, in_channels: int = CHANNELS[-1], hidden: int = 64, dropout: float = 0.1):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(2 * in_channels, hidden),
            nn.PReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, 1),
        )

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        return self.mlp(global_pool(feats[-1])).squeeze(1)
