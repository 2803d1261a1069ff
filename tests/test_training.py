"""Task-aware losses of the Avalanche adapter."""

from __future__ import annotations

import torch

from unicon_bench.strategy.losses import TaskLoss


def test_cox_loss_matches_torchsurv_and_handles_degenerate_groups():
    from torchsurv.loss.cox import neg_partial_log_likelihood

    loss = TaskLoss()
    risk = torch.tensor([0.3, -0.2, 1.1, 0.0], requires_grad=True)
    clinical = torch.tensor([[0, 5.0, 1, 0, 0], [0, 8.0, 0, 0, 0], [1, 2.0, 1, 0, 0], [0, 9.0, 1, 0, 0]])
    expected = neg_partial_log_likelihood(risk, clinical[:, 2].bool(), clinical[:, 1], reduction="mean")
    assert torch.allclose(loss("prognosis", risk, None, clinical), expected)
    # one sample (a replay batch can hold a single prognosis subject) or no event: no comparable
    # pair, so the group contributes a zero that still back-propagates
    for r, c in ((risk[:1], clinical[:1]), (risk[1:2], clinical[1:2]), (risk[:2], clinical[[1, 1]])):
        value = loss("prognosis", r, None, c)
        assert value.item() == 0.0
        value.backward()


def test_classification_loss_is_bce_on_the_malignancy_column():
    logits = torch.tensor([2.0, -1.0])
    clinical = torch.tensor([[1.0, 3, 1, 0, 0], [0.0, 4, 0, 0, 0]])
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, clinical[:, 0])
    assert torch.allclose(TaskLoss()("classification", logits, None, clinical), expected)


def test_mixed_channel_batches_are_zero_padded_and_each_route_reads_its_own():
    """Replay/joint batches mix CT (1 channel) and PET/CT (2 channels) samples."""
    import torch

    from unicon_bench.data.streams import collate_samples
    from unicon_bench.models.net import MultiTaskNet

    ct = (torch.rand(1, 16, 16, 16), torch.zeros(1, 16, 16, 16), torch.zeros(5), torch.zeros(4, dtype=torch.long), 0)
    petct = (torch.rand(2, 16, 16, 16), torch.zeros(1, 16, 16, 16), torch.zeros(5), torch.zeros(4, dtype=torch.long), 1)
    x, *_ = collate_samples([ct, petct])
    assert x.shape == (2, 2, 16, 16, 16)
    assert torch.equal(x[0, :1], ct[0]) and torch.count_nonzero(x[0, 1]) == 0
    assert torch.equal(x[1], petct[0])
    net = MultiTaskNet.for_experiences([("segmentation", "CT", 1), ("segmentation", "PET", 2)]).eval()
    assert net.stems["shared"].in_channels == 1 and net.stems["sharedx2"].in_channels == 2
    with torch.no_grad():  # the padding never reaches the CT route
        assert torch.equal(net(x[:1], 0), net(ct[0][None], 0))
