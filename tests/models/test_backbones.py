"""The backbone registry: every backbone gives a feature pyramid its heads fit, at 16^3 and 32^3."""

from __future__ import annotations

import pytest
import torch

from unicon_bench.errors import ConfigError
from unicon_bench.models.backbones import BackboneError, build_backbone, list_backbones
from unicon_bench.models.net import MultiTaskNet, make_head


def test_registry_lists_the_field_architectures():
    assert {"unet", "swin_unetr", "vit", "segresnet", "resnet"} <= set(list_backbones())


@pytest.mark.parametrize("name", ["unet", "swin_unetr", "vit", "segresnet", "resnet"])
@pytest.mark.parametrize("side", [16, 32])
def test_pyramid_fits_heads(name, side, torch_one_thread):
    torch.manual_seed(0)
    backbone = build_backbone(name, (side,) * 3)
    net = MultiTaskNet.for_experiences([("segmentation", "CT"), ("classification", "CT")], encoder=backbone)
    x = torch.randn(2, 1, side, side, side)
    feats = net.features(x, 0)
    assert [f.shape[1] for f in feats] == list(backbone.channels)
    sizes = [f.shape[2] for f in feats]
    assert sizes == sorted(sizes, reverse=True)  # finest first
    mask_logits = net(x, 0)
    assert mask_logits.shape == (2, 1, side, side, side)
    assert net(x, 1).shape == (2,)
    light = make_head("segmentation", backbone, light=True)
    assert light(feats).shape == (2, 1, side, side, side)
    assert sum(p.numel() for p in light.parameters()) < sum(p.numel() for p in net.heads["segmentation"].parameters())


def test_default_backbone_is_the_models_zoo_unet():
    """``backbone=unet`` builds the same modules, from the same random stream, as before."""
    from unicon_bench.models.unet import Encoder3D

    torch.manual_seed(3)
    old = MultiTaskNet.for_experiences([("segmentation", "CT")])
    torch.manual_seed(3)
    new = MultiTaskNet.for_experiences([("segmentation", "CT")], encoder=build_backbone("unet", (32, 32, 32)))
    assert isinstance(new.encoder, Encoder3D)
    a, b = old.state_dict(), new.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_foreign_stem_starts_as_identity():
    backbone = build_backbone("segresnet", (16, 16, 16))
    x = torch.randn(1, 1, 16, 16, 16)
    assert torch.equal(backbone.make_stem()(x), x)


def test_shape_and_option_errors():
    with pytest.raises(BackboneError, match=r"multiples of 4.*\(18, 18, 18\)"):
        build_backbone("vit", (18, 18, 18))
    with pytest.raises(BackboneError, match="multiples of 32"):
        build_backbone("swin_unetr", (16, 16, 16), {"patch_size": 4})
    with pytest.raises(BackboneError, match="unknown backbone 'vgg'.*swin_unetr"):
        build_backbone("vgg", (16, 16, 16))
    with pytest.raises(BackboneError, match="unknown option.*hidden.*known: .*feature_size"):
        build_backbone("swin_unetr", (32, 32, 32), {"hidden": 3})
    assert issubclass(BackboneError, ConfigError)  # the CLI prints it as one line, exit code 2
