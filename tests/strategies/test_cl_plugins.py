"""The shared per-task-kind distillation (unicon_bench.strategy.plugins) on all three task kinds."""

from __future__ import annotations

import math

import pytest
import torch

from unicon_bench.strategy.plugins import (
    OutputDistillationPlugin,
    channels_for,
    distillation_loss,
    frozen_copy,
    grouped_distillation,
    route_key,
    route_outputs,
)
from unicon_bench.models.net import MultiTaskNet

SHAPES = {"classification": (4,), "prognosis": (4,), "segmentation": (2, 1, 3, 3, 3)}


def bernoulli_kl(p: float, q: float) -> float:
    """KL(Bern(p) || Bern(q)) written out."""
    return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


@pytest.mark.parametrize("kind", sorted(SHAPES))
@pytest.mark.parametrize("mode", ["soft", "mse"])
def test_zero_when_student_equals_teacher(kind, mode):
    out = torch.randn(SHAPES[kind], generator=torch.Generator().manual_seed(0)) * 3
    loss = distillation_loss(kind, out.clone().requires_grad_(), out, temperature=2.0, mode=mode)
    assert abs(float(loss.detach())) < 1e-6
    other = out + 0.5
    assert float(distillation_loss(kind, other, out, temperature=2.0, mode=mode)) > 1e-4


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_classification_is_the_bernoulli_kl_at_temperature(temperature):
    student = torch.tensor([0.0, 2.0])
    teacher = torch.tensor([math.log(3.0), -1.0])
    want = sum(
        bernoulli_kl(sigmoid(t / temperature), sigmoid(s / temperature)) for s, t in [(0.0, math.log(3.0)), (2.0, -1.0)]
    ) / 2 * temperature**2
    got = float(distillation_loss("classification", student, teacher, temperature))
    assert got == pytest.approx(want, rel=1e-5)
    # the first term by hand at T=1: KL(Bern(3/4) || Bern(1/2)) = 3/4 ln(3/2) + 1/4 ln(1/2)
    if temperature == 1.0:
        first = float(distillation_loss("classification", student[:1], teacher[:1], 1.0))
        assert first == pytest.approx(0.75 * math.log(1.5) + 0.25 * math.log(0.5), rel=1e-5)


def test_segmentation_is_the_per_voxel_soft_mask_kl():
    teacher = torch.tensor([math.log(3.0), 0.0, -math.log(3.0), 0.0]).view(1, 1, 1, 2, 2)
    student = torch.zeros_like(teacher)
    # voxels: KL(3/4 || 1/2), 0, KL(1/4 || 1/2) = KL(3/4 || 1/2), 0 -> mean over 4 voxels
    want = 2 * (0.75 * math.log(1.5) + 0.25 * math.log(0.5)) / 4
    assert float(distillation_loss("segmentation", student, teacher, 1.0)) == pytest.approx(want, rel=1e-5)


def test_prognosis_is_the_squared_error_of_risks():
    student, teacher = torch.tensor([0.0, 1.0]), torch.tensor([1.0, 3.0])
    assert float(distillation_loss("prognosis", student, teacher, temperature=5.0)) == pytest.approx(2.5)
    assert float(distillation_loss("segmentation", torch.zeros(1, 1, 2, 2, 2), torch.ones(1, 1, 2, 2, 2),
                                   mode="mse")) == pytest.approx(1.0)


@pytest.mark.parametrize("kind", sorted(SHAPES))
def test_gradient_points_the_student_to_the_teacher(kind):
    g = torch.Generator().manual_seed(1)
    teacher = torch.randn(SHAPES[kind], generator=g) * 2
    start = teacher + torch.randn(SHAPES[kind], generator=g) * 2
    t = 2.0
    losses = [float(distillation_loss(kind, start + a * (teacher - start), teacher, t)) for a in (0, 0.25, 0.5, 0.75, 1)]
    assert all(x > y for x, y in zip(losses, losses[1:])), losses
    assert losses[-1] == pytest.approx(0.0, abs=1e-6)

    student = start.clone().requires_grad_()
    distillation_loss(kind, student, teacher, t).backward()
    n = teacher.numel()
    if kind == "prognosis":  # d/ds mean (s - t)^2 = 2 (s - t) / n
        want = 2 * (start - teacher) / n
    else:  # d/ds T^2 KL(sig(t/T) || sig(s/T)) = T (sig(s/T) - sig(t/T)) / n
        want = t * (torch.sigmoid(start / t) - torch.sigmoid(teacher / t)) / n
    torch.testing.assert_close(student.grad, want, rtol=1e-4, atol=1e-7)


def test_bad_kind_mode_or_shape_is_an_error():
    x = torch.zeros(3)
    with pytest.raises(ValueError, match="kind"):
        distillation_loss("detection", x, x)
    with pytest.raises(ValueError, match="mode"):
        distillation_loss("classification", x, x, mode="kl")
    with pytest.raises(ValueError, match="shape"):
        distillation_loss("classification", x, torch.zeros(4))


def test_grouped_distillation_weights_groups_by_share():
    kinds = {0: "classification", 1: "prognosis"}
    outs = [(torch.tensor([0, 2]), 0, torch.tensor([0.0, 0.0])), (torch.tensor([1]), 1, torch.tensor([1.0]))]
    teacher = [torch.tensor(0.0), torch.tensor(3.0), torch.tensor(0.0)]  # sample 1 (prognosis) is off by 2
    assert float(grouped_distillation(kinds, outs, teacher)) == pytest.approx(4.0 / 3)


# -- the LwF plugin on a real three-task network -----------------------------------------------------------

KINDS = {0: "classification", 1: "prognosis", 2: "segmentation"}


@pytest.fixture
def net():
    torch.manual_seed(0)
    return MultiTaskNet.for_experiences([(KINDS[t], "CT") for t in range(3)], channels=(4, 8, 8, 8)).eval()


def plugin_for(model, labels):
    plugin = OutputDistillationPlugin(KINDS, alpha=1.0, temperature=2.0)
    plugin.teacher = frozen_copy(model)
    for t in labels:
        plugin.seen.setdefault(route_key(model, t), t)
    return plugin


def test_plugin_is_zero_for_an_unchanged_model_on_every_kind(net):
    x = torch.randn(3, 1, 16, 16, 16)
    plugin = plugin_for(net, [0, 1, 2])
    assert len(plugin.seen) == 3
    assert float(plugin.penalty(net, x)) == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("perturbed", [0, 1, 2])
def test_plugin_distils_each_route_with_its_own_kind(net, perturbed):
    x = torch.randn(3, 1, 16, 16, 16)
    plugin = plugin_for(net, [0, 1, 2])
    head = net.heads[net.routes[perturbed].head]
    with torch.no_grad():
        for p in head.parameters():
            p.add_(0.3 * torch.randn_like(p))
    penalty = float(plugin.penalty(net, x))
    with torch.no_grad():  # only the perturbed route's term is non-zero, and it uses that route's kind
        want = distillation_loss(KINDS[perturbed], net(x, perturbed), plugin.teacher(x, perturbed), 2.0)
    assert penalty > 1e-6
    assert penalty == pytest.approx(float(want), rel=1e-5)


def test_plugin_penalty_decreases_under_its_own_gradient(net):
    x = torch.randn(3, 1, 16, 16, 16)
    plugin = plugin_for(net, [0, 1, 2])
    with torch.no_grad():
        for p in net.encoder.parameters():
            p.add_(0.05 * torch.randn_like(p))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)  # the training budget's optimizer and rate
    losses = []
    for _ in range(4):
        opt.zero_grad()
        loss = plugin.penalty(net, x)
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert losses[0] > 0 and losses[-1] < losses[0], losses


def test_routes_sharing_stem_and_head_are_distilled_once():
    model = MultiTaskNet.for_experiences([("segmentation", "CT"), ("segmentation", "PET")], channels=(4, 8, 8, 8))
    assert route_key(model, 0) == route_key(model, 1)
    x = torch.randn(2, 1, 16, 16, 16)
    outs = route_outputs(model.eval(), {0: x, 1: x})
    torch.testing.assert_close(outs[0], model(x, 0))
    torch.testing.assert_close(outs[0], outs[1])


def test_channels_for_picks_the_old_routes_modality():
    x = torch.arange(2 * 2 * 1 * 1 * 1, dtype=torch.float32).view(2, 2, 1, 1, 1)  # channels PET, CT
    torch.testing.assert_close(channels_for(x, ("PET", "CT"), ("CT",)), x[:, 1:2])
    assert channels_for(x, ("PET", "CT"), ("PET", "CT")) is x
    assert channels_for(x, ("PET",), ("CT",)) is x  # the modality is absent: the input as it is
    assert channels_for(x, None, ("CT",)) is x
    ct = x[:, 1:2]  # CT-only samples for an old PET/CT route: zeros where the PET would be
    torch.testing.assert_close(channels_for(ct, ("CT",), ("PET", "CT")), torch.cat([torch.zeros_like(ct), ct], 1))
    pet = x[:, :1]  # samples of none of the route's modalities: as they are, zero-padded to its width
    torch.testing.assert_close(channels_for(pet, ("MR",), ("CT", "PET")), torch.cat([pet, torch.zeros_like(pet)], 1))


def test_old_ct_route_is_distilled_on_the_ct_channel_of_pet_ct_samples():
    torch.manual_seed(0)
    model = MultiTaskNet.for_experiences([("segmentation", "CT", 1), ("segmentation", "PET", 2)],
                                         channels=(4, 8, 8, 8)).eval()
    assert route_key(model, 0) != route_key(model, 1)  # PET/CT has a stem of its own
    plugin = OutputDistillationPlugin({0: "segmentation", 1: "segmentation"}, temperature=2.0,
                                      channels={0: ("CT",), 1: ("PET", "CT")})
    plugin.teacher = frozen_copy(model)
    plugin.seen[route_key(model, 0)] = 0
    with torch.no_grad():
        for p in model.encoder.parameters():
            p.add_(0.05 * torch.randn_like(p))
    x = torch.randn(2, 2, 16, 16, 16)
    penalty = float(plugin.penalty(model, x, label=1))
    with torch.no_grad():
        ct, pet = x[:, 1:2], x[:, 0:1]
        want = distillation_loss("segmentation", model(ct, 0), plugin.teacher(ct, 0), 2.0)
        on_pet = distillation_loss("segmentation", model(pet, 0), plugin.teacher(pet, 0), 2.0)
    assert penalty == pytest.approx(float(want), rel=1e-5)
    assert float(want) != pytest.approx(float(on_pet), rel=1e-3)
