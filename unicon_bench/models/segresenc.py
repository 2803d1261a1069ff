"""The ``segresenc`` backbone: MONAI's ``SegResEncoder`` as it is, CT-FM's image encoder by default.

CT-FM (project-lighter; self-supervised on 148 k CT scans) publishes its weights as a MONAI
``monai.networks.nets.segresnet_ds.SegResEncoder(spatial_dims=3, in_channels=1, init_filters=32,
blocks_down=(1, 2, 2, 4, 4))``: 161 tensors (batch-norm running statistics included), 77.8 M
parameters. This backbone *is* that class (a subclass that adds the pyramid interface and changes
no module), so such a state dict loads by key: no ``weights_map``, nothing to ignore.

Its feature list is ``SegResEncoder``'s own: one level per entry of ``blocks_down``, finest first,
at full resolution for the first level, ``init_filters * 2**i`` channels. The input reaches it
through the per-modality ``InputStem`` of the foreign backbones (one channel out, the identity of
the first input channel at start), so PET + CT samples feed a one-channel pretrained encoder.
Batch normalisation, as CT-FM was trained: ``freeze=frozen`` (and UNICON's later stages) stop the
running statistics (``unicon_bench.models.weights.freeze_batch_norm``).

Defaults are CT-FM's configuration (too large for a CPU at 32^3 in the tests); ``backbone_options``
such as ``{init_filters: 8, blocks_down: [1, 1, 1, 1]}`` give a small one.
"""

from __future__ import annotations

import torch

from unicon_bench.models.backbones import PyramidBackbone, _ints, _norm, register_backbone

CT_FM = {"init_filters": 32, "blocks_down": (1, 2, 2, 4, 4)}


def _segres_encoder_class():
    from monai.networks.nets.segresnet_ds import SegResEncoder

    return SegResEncoder


class SegResEncBackbone(PyramidBackbone):
    """MONAI ``SegResEncoder`` (``conv_init`` + ``layers[i].blocks/downsample``), batch norm by default."""

    def __init__(self, init_filters: int, blocks_down, norm: str, num_groups: int, act: str):
        super().__init__()
        blocks = _ints(blocks_down)
        if not blocks or min(blocks) < 1:
            raise ValueError("blocks_down needs one or more levels of at least one block each")
        norm_arg = ("GROUP", {"num_groups": num_groups}) if norm == "group" else _norm(norm)
        encoder = _segres_encoder_class()(spatial_dims=3, in_channels=1, init_filters=init_filters, norm=norm_arg,
                                          act=act, blocks_down=blocks)
        # Its modules (and so its state-dict keys) are the encoder's own: conv_init, layers.
        self.conv_init, self.layers = encoder.conv_init, encoder.layers
        self.channels = tuple(init_filters * 2**i for i in range(len(blocks)))
        self.divisor = 2 ** (len(blocks) - 1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``SegResEncoder._forward``: each level's blocks, the output kept, then its downsampling."""
        feats, h = [], self.conv_init(x)
        for level in self.layers:
            h = level["blocks"](h)
            feats.append(h)
            h = level["downsample"](h)
        return feats

    def stages(self):
        return [(self.conv_init, self.layers[0]), *((level,) for level in self.layers[1:])]


@register_backbone(
    "segresenc", "MONAI SegResEncoder (CT-FM's encoder: 32 filters, blocks 1-2-2-4-4, batch norm)",
    init_filters=CT_FM["init_filters"], blocks_down=CT_FM["blocks_down"], norm="batch", num_groups=8, act="relu",
)
def _segresenc(shape, **opts):
    return SegResEncBackbone(**opts)
