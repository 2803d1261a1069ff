"""Backbone registry: the architectures medical foundation models use, behind one interface.

Every backbone is an ``nn.Module`` whose ``forward(h)`` returns a list of multi-scale feature maps,
finest first, so the task heads work on any of them (``GlobalHead`` pools the deepest, a
segmentation decoder walks the list back up). Besides ``forward`` a backbone has:

- ``channels``: the channel count of each feature level;
- ``make_stem(in_channels)``: a modality's input path (a new modality gets a new one), handing
  ``stem_channels`` channels to the backbone;
- ``make_seg_decoder(light)``: the pixel decoder that fits its pyramid;
- ``stages()``: its parameterised stages, input side first (``freeze="partial:N"`` freezes N);
- ``divisor``: volume sides must be multiples of it (``check_shape`` says so in one line).

Built-ins: ``unet`` (the model zoo's residual 3D U-Net encoder, the default), ``swin_unetr``
(MONAI SwinUNETR's Swin transformer and encoder blocks), ``vit`` (MONAI ViT with UNETR's encoder
blocks), ``segresnet`` (MONAI SegResNet's encoder), ``segresenc`` (MONAI's ``SegResEncoder``, CT-FM's
encoder: ``segresenc.py``) and ``resnet`` (MONAI's 3D ResNet), registered in the one ``Registry`` with
``@register_backbone`` (plugins: group ``unicon_bench.backbones``). The foreign backbones keep
MONAI's module names, so the corresponding MONAI checkpoints load by key (their decoder keys, which
the backbone lacks, are reported as unexpected). Default sizes are tiny (but ``segresenc``'s, CT-FM's)
so that 16^3 and 32^3 runs stay fast on a CPU; ``backbone_options`` sets any builder argument (e.g. SwinUNETR's
``feature_size: 48`` and ``depths: [2, 2, 2, 2]`` to load MONAI model-zoo weights).

The foreign backbones see the volume at full resolution through a per-modality ``InputStem`` that
starts as the identity, so pretrained first layers get the input they were trained on; their
segmentation decoder is a UNETR-style ``PyramidDecoder``.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from unicon_bench.errors import ConfigError, UnknownNameError
from unicon_bench.registry import Registry

DEFAULT = "unet"


class BackboneError(ConfigError):
    """An unknown backbone, a bad option, or a volume shape the backbone cannot take."""


@dataclass(frozen=True)
class BackboneInfo:
    name: str
    summary: str
    builder: Callable[..., nn.Module]
    defaults: dict[str, Any]


# Built-ins as "module:object" entries of the one ``Registry`` (``unicon_bench.registry``); plugins come
# from the entry-point group ``unicon_bench.backbones`` (``name = "pkg.module:builder"``).
BUILTINS = {"unet": "unicon_bench.models.backbones:_unet", "swin_unetr": "unicon_bench.models.backbones:_swin",
            "vit": "unicon_bench.models.backbones:_vit", "segresnet": "unicon_bench.models.backbones:_segresnet",
            "resnet": "unicon_bench.models.backbones:_resnet", "segresenc": "unicon_bench.models.segresenc:_segresenc"}
BACKBONES = Registry("backbone", __name__, "unicon_bench.backbones", "register_backbone")


def register_backbone(name: str, summary: str, **defaults: Any):
    """Register ``builder(shape, **options)`` under ``name`` with its default options."""

    def deco(builder):
        builder.summary, builder.defaults = summary, defaults
        return BACKBONES.register(name)(builder)

    return deco


def list_backbones() -> list[str]:
    return BACKBONES.names()


def backbone_info(name: str) -> BackboneInfo:
    """The builder of backbone ``name`` (imported on first use) with its summary and default options."""
    try:
        builder = BACKBONES.get(name)
    except UnknownNameError:
        raise BackboneError(f"unknown backbone '{name}'; available: {', '.join(list_backbones())}") from None
    defaults = getattr(builder, "defaults", None)
    if defaults is None:  # a plugin builder without @register_backbone: its keyword defaults
        defaults = {p.name: p.default for p in inspect.signature(builder).parameters.values()
                    if p.name != "shape" and p.default is not inspect.Parameter.empty}
    return BackboneInfo(name, getattr(builder, "summary", "") or (builder.__doc__ or "").strip(), builder, defaults)


def backbone_options(name: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The full option set of ``name``: its defaults updated by ``options`` (unknown keys are an error)."""
    info = backbone_info(name)
    unknown = sorted(set(options or {}) - set(info.defaults))
    if unknown:
        raise BackboneError(
            f"unknown option(s) {', '.join(unknown)} for backbone '{name}'; known: {', '.join(sorted(info.defaults))}"
        )
    return {**info.defaults, **(options or {})}


def build_backbone(name: str = DEFAULT, shape: tuple[int, ...] | None = None, options: dict[str, Any] | None = None) -> nn.Module:
    """Build backbone ``name`` for volumes of ``shape`` (checked when given)."""
    opts = backbone_options(name, options)
    try:
        net = backbone_info(name).builder(shape=tuple(shape) if shape else None, **opts)
    except (TypeError, ValueError, AssertionError) as exc:
        raise BackboneError(f"backbone '{name}' cannot be built with {opts}: {exc}") from None
    net.backbone_name, net.backbone_options = name, opts
    if shape is not None:
        check_shape(net, shape)
    return net


def check_shape(net: nn.Module, shape: tuple[int, ...]) -> None:
    d = net.divisor
    if any(s % d or s < d for s in shape):
        raise BackboneError(
            f"backbone '{getattr(net, 'backbone_name', type(net).__name__)}' needs volume sides that are multiples "
            f"of {d}; the scenario's volumes are {tuple(shape)} (change the backbone's options or the volume shape)"
        )


# -- parts shared by the foreign backbones ---------------------------------------------------------


class InputStem(nn.Module):
    """A modality's input path at full resolution: ``x[:, :1] + up(act(down(x)))``, one channel out.

    The identity of the first channel at start (``up`` is zero), so a pretrained backbone first sees
    the image it was trained on; further channels (PET + CT) enter through the learned residual.
    """

    def __init__(self, in_channels: int = 1, hidden: int = 4):
        super().__init__()
        self.in_channels = in_channels
        self.down = nn.Conv3d(in_channels, hidden, kernel_size=3, padding=1)
        self.act = nn.GELU()
        self.up = nn.Conv3d(hidden, 1, kernel_size=1)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :1] + self.up(self.act(self.down(x)))


class PyramidDecoder(nn.Module):
    """UNETR-style decoder over any feature pyramid, finest first.

    From the deepest level up: trilinear upsampling to the next skip's size, concatenation, a MONAI
    ``UnetrBasicBlock`` (residual); finally upsampling by ``first_stride`` to the input size and a
    1x1x1 convolution to logits. ``light`` halves the widths (heads added on a frozen backbone).
    """

    def __init__(self, channels: tuple[int, ...], first_stride: int = 1, light: bool = False, out_channels: int = 1):
        super().__init__()
        from monai.networks.blocks import UnetrBasicBlock

        blocks, cin = [], channels[-1]
        for skip in reversed(channels[:-1]):
            cout = max(skip // 2, 4) if light else skip
            blocks.append(UnetrBasicBlock(3, cin + skip, cout, kernel_size=3, stride=1, norm_name="instance", res_block=True))
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.out = nn.Conv3d(cin, out_channels, kernel_size=1)
        self.first_stride = first_stride

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        h = feats[-1]
        for block, skip in zip(self.blocks, feats[-2::-1]):
            h = F.interpolate(h, size=skip.shape[2:], mode="trilinear", align_corners=False)
            h = block(torch.cat([h, skip], dim=1))
        if self.first_stride > 1:
            h = F.interpolate(h, scale_factor=self.first_stride, mode="trilinear", align_corners=False)
        return self.out(h)


class PyramidBackbone(nn.Module):
    """Base of the foreign backbones: full-resolution input stem and the pyramid decoder."""

    channels: tuple[int, ...] = ()
    first_stride: int = 1  # resolution of the finest feature level relative to the input
    divisor: int = 1
    stem_channels: int = 1  # the backbone's own first layer takes the one-channel image

    def make_stem(self, in_channels: int = 1) -> nn.Module:
        return InputStem(in_channels)

    def make_seg_decoder(self, light: bool = False) -> nn.Module:
        return PyramidDecoder(self.channels, self.first_stride, light=light)

    @property
    def out_channels(self) -> int:
        return self.channels[-1]


def _ints(value) -> tuple[int, ...]:
    return tuple(int(v) for v in value)


def _norm(norm: str):
    """``instance`` (affine, no running statistics: a frozen layer stays frozen) or any MONAI norm name."""
    return ("instance", {"affine": True}) if norm == "instance" else norm


# -- the registry ----------------------------------------------------------------------------------


@register_backbone("unet", "residual 3D U-Net encoder from MONAI blocks (the model zoo's default)", channels=(16, 32, 64, 128))
def _unet(shape, channels):
    from unicon_bench.models.unet import Encoder3D

    return Encoder3D(_ints(channels))


class SwinUNETRBackbone(PyramidBackbone):
    """MONAI SwinUNETR's encoder side: ``swinViT`` + ``encoder1..4`` and ``encoder10``."""

    def __init__(self, shape, feature_size: int, depths, num_heads, window_size: int, patch_size: int):
        super().__init__()
        from monai.networks.nets import SwinUNETR

        net = SwinUNETR(
            in_channels=1, out_channels=1, patch_size=patch_size, depths=_ints(depths), num_heads=_ints(num_heads),
            window_size=window_size, feature_size=feature_size, norm_name="instance",
        )
        for key in ("swinViT", "encoder1", "encoder2", "encoder3", "encoder4", "encoder10"):
            setattr(self, key, getattr(net, key))
        self.normalize = net.normalize
        f = feature_size
        # Four exact halvings after the patch embedding; the bottleneck merge pads odd sizes.
        self.divisor = patch_size * 8
        # Levels of one voxel (16^3 volumes) cannot be instance-normalised: the last stage's
        # output then goes on without encoder10, and a one-voxel hs[3] leaves the pyramid.
        side = min(shape) if shape else 10**6
        self.tiny_bottleneck = side // (patch_size * 16) <= 1
        self.keep_hs3 = side // (patch_size * 8) > 1
        self.channels = (f, f, 2 * f, 4 * f, *((8 * f,) if self.keep_hs3 else ()), 16 * f)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        hs = self.swinViT(x, self.normalize)
        feats = [self.encoder1(x), self.encoder2(hs[0]), self.encoder3(hs[1]), self.encoder4(hs[2])]
        if self.keep_hs3:
            feats.append(hs[3])
        return feats + [hs[4] if self.tiny_bottleneck else self.encoder10(hs[4])]

    def stages(self):
        v = self.swinViT
        return [(v.patch_embed, self.encoder1, self.encoder2), (v.layers1, self.encoder3), (v.layers2, self.encoder4),
                (v.layers3,), (v.layers4, self.encoder10)]


@register_backbone(
    "swin_unetr", "MONAI SwinUNETR encoder (Swin transformer + UNETR blocks), tiny by default",
    feature_size=12, depths=(1, 1, 1, 1), num_heads=(3, 6, 12, 24), window_size=4, patch_size=2,
)
def _swin(shape, **opts):
    return SwinUNETRBackbone(shape, **opts)


class ViTBackbone(PyramidBackbone):
    """MONAI ViT with UNETR's encoder blocks: ``vit`` + ``encoder1`` (input) + ``encoder2..L``.

    With a patch of ``2^L`` voxels the pyramid has ``L + 1`` levels: the input through
    ``encoder1``, level ``k`` (1 <= k < L) from the hidden state of block ``k * num_layers // L``
    upsampled by ``UnetrPrUpBlock`` to ``1/2^k`` resolution, and the final tokens at ``1/2^L``.
    With UNETR's sizes (patch 16, hidden 768, 12 layers, feature size 16) the names and shapes are
    UNETR's, so a UNETR checkpoint's ``vit.*`` and ``encoder1..4`` keys load.
    """

    def __init__(self, shape, patch_size: int, hidden_size: int, num_layers: int, num_heads: int, mlp_dim: int,
                 feature_size: int):
        super().__init__()
        from monai.networks.blocks import UnetrBasicBlock, UnetrPrUpBlock
        from monai.networks.nets import ViT

        levels = int(round(math.log2(patch_size)))
        if 2**levels != patch_size or levels < 1:
            raise ValueError("patch_size must be a power of two >= 2")
        if shape is None:
            raise ValueError("the ViT backbone needs the volume shape (learned position embeddings)")
        self.vit = ViT(in_channels=1, img_size=shape, patch_size=patch_size, hidden_size=hidden_size, mlp_dim=mlp_dim,
                       num_layers=num_layers, num_heads=num_heads, proj_type="conv", classification=False)
        self.encoder1 = UnetrBasicBlock(3, 1, feature_size, kernel_size=3, stride=1, norm_name="instance", res_block=True)
        for k in range(1, levels):
            setattr(self, f"encoder{k + 1}", UnetrPrUpBlock(
                3, hidden_size, feature_size * 2**k, num_layer=levels - k - 1, kernel_size=3, stride=1,
                upsample_kernel_size=2, norm_name="instance", conv_block=True, res_block=True,
            ))
        self.levels, self.num_layers = levels, num_layers
        self.grid = tuple(s // patch_size for s in shape)
        self.channels = (feature_size, *(feature_size * 2**k for k in range(1, levels)), hidden_size)
        self.divisor = patch_size

    def _volume(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], *self.grid)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out, hidden = self.vit(x)
        feats = [self.encoder1(x)]
        for k in range(1, self.levels):
            block = hidden[min(k * self.num_layers // self.levels, self.num_layers - 1)]
            feats.append(getattr(self, f"encoder{k + 1}")(self._volume(block)))
        return feats + [self._volume(out)]

    def stages(self):
        return [(self.vit.patch_embedding,), *((b,) for b in self.vit.blocks)]


@register_backbone(
    "vit", "MONAI ViT with UNETR encoder blocks (hidden 96, 2 layers by default)",
    patch_size=4, hidden_size=96, num_layers=2, num_heads=4, mlp_dim=192, feature_size=16,
)
def _vit(shape, **opts):
    return ViTBackbone(shape, **opts)


class SegResNetBackbone(PyramidBackbone):
    """MONAI SegResNet's encoder: ``convInit`` + ``down_layers`` (one level each, finest first)."""

    def __init__(self, init_filters: int, blocks_down, norm: str, num_groups: int):
        super().__init__()
        from monai.networks.nets import SegResNet

        norm_arg = ("GROUP", {"num_groups": num_groups}) if norm == "group" else _norm(norm)
        net = SegResNet(spatial_dims=3, init_filters=init_filters, in_channels=1, out_channels=1,
                        blocks_down=_ints(blocks_down), norm=norm_arg)
        self.convInit, self.down_layers = net.convInit, net.down_layers
        self.channels = tuple(init_filters * 2**i for i in range(len(self.down_layers)))
        self.divisor = 2 ** (len(self.down_layers) - 1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats, h = [], self.convInit(x)
        for down in self.down_layers:
            h = down(h)
            feats.append(h)
        return feats

    def stages(self):
        return [(self.convInit, self.down_layers[0]), *((d,) for d in self.down_layers[1:])]


@register_backbone(
    "segresnet", "MONAI SegResNet encoder (group norm, 8 initial filters)",
    init_filters=8, blocks_down=(1, 1, 1, 1), norm="group", num_groups=8,
)
def _segresnet(shape, **opts):
    return SegResNetBackbone(**opts)


class ResNetBackbone(PyramidBackbone):
    """MONAI's 3D ResNet (MedicalNet layout): ``conv1``/``bn1`` then ``layer1..4``.

    Batch normalisation, as MONAI builds its blocks; a frozen stage's running statistics are frozen
    too (``unicon_bench.models.weights.apply_freeze``). ``conv1_stride: 2`` is MedicalNet's layout
    (the default 1 keeps two voxels at the bottom of a 16^3 volume).
    """

    def __init__(self, block: str, layers, block_inplanes, conv1_stride: int, max_pool: bool):
        super().__init__()
        from monai.networks.nets import ResNet

        net = ResNet(block=block, layers=list(_ints(layers)), block_inplanes=list(_ints(block_inplanes)), spatial_dims=3,
                     n_input_channels=1, conv1_t_size=7, conv1_t_stride=conv1_stride, no_max_pool=not max_pool,
                     feed_forward=False)
        for key in ("conv1", "bn1", "act", "layer1", "layer2", "layer3", "layer4"):
            setattr(self, key, getattr(net, key))
        self.maxpool = net.maxpool if max_pool else None
        expansion = 4 if block == "bottleneck" else 1
        planes = _ints(block_inplanes)
        self.channels = (planes[0], *(p * expansion for p in planes))
        self.first_stride = conv1_stride
        self.divisor = conv1_stride * 8 * (2 if max_pool else 1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = self.act(self.bn1(self.conv1(x)))
        feats = [h]
        if self.maxpool is not None:
            h = self.maxpool(h)
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            h = layer(h)
            feats.append(h)
        return feats

    def stages(self):
        return [(self.conv1, self.bn1), (self.layer1,), (self.layer2,), (self.layer3,), (self.layer4,)]


@register_backbone(
    "resnet", "MONAI 3D ResNet (basic blocks, 1-1-1-1 layers, batch norm)",
    block="basic", layers=(1, 1, 1, 1), block_inplanes=(16, 32, 64, 128), conv1_stride=1, max_pool=False,
)
def _resnet(shape, **opts):
    return ResNetBackbone(**opts)
