"""Strategy state as plain tensors: datasets and RNG states survive a weights_only round trip."""

from __future__ import annotations

import io
import random

import numpy as np
import torch

from unicon_bench import state
from unicon_bench.data.streams import _avalanche_dataset


def _roundtrip(obj):
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def _dataset(n: int, task: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    tensors = (torch.rand(n, 1, 4, 4, 4, generator=g), (torch.rand(n, 1, 4, 4, 4, generator=g) > 0.5).float(),
               torch.rand(n, 5, generator=g).round(), torch.randint(0, 50, (n, 8), generator=g))
    return _avalanche_dataset(tensors, task)


def test_dataset_roundtrip_keeps_samples_order_and_task_labels():
    # a buffer-like dataset: subsets of two experiences with different task labels, concatenated
    original = _dataset(6, 0, 1).subset([4, 1, 3]).concat(_dataset(5, 2, 2).subset([0, 2]))
    rebuilt = state.dataset_from_state(_roundtrip(state.dataset_state(original)))
    assert len(rebuilt) == len(original) == 5
    for i in range(len(original)):
        a, b = original[i], rebuilt[i]
        assert len(a) == len(b) == 5
        for x, y in zip(a, b):
            assert torch.equal(torch.as_tensor(x), torch.as_tensor(y))
    assert list(rebuilt.targets_task_labels) == [0, 0, 0, 2, 2]
    assert list(rebuilt.targets) == list(original.targets)
    assert sorted(rebuilt.targets_task_labels.uniques) == [0, 2]


def test_empty_dataset_roundtrip():
    empty = _dataset(3, 0, 0).subset([])
    assert len(state.dataset_from_state(_roundtrip(state.dataset_state(empty)))) == 0


def test_rng_state_roundtrip_replays_every_generator():
    saved = _roundtrip(state.rng_state())
    first = (random.random(), np.random.rand(3).tolist(), np.random.randn(), torch.rand(3).tolist())
    random.random(), np.random.rand(7), torch.rand(9)  # move every generator on
    state.set_rng_state(saved)
    assert (random.random(), np.random.rand(3).tolist(), np.random.randn(), torch.rand(3).tolist()) == first
