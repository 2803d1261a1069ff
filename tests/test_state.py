"""Strategy state as plain tensors: datasets and RNG states survive a weights_only round trip."""

from __future__ import annotations

import io
import random

import numpy as np
import torch

from unicon_bench.strategy import state
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


def test_plain_rebuild_roundtrip_of_plugin_attributes():
    from avalanche.training.utils import ParamData

    w = torch.randn(3, 2)
    value = (
        {"conv.weight": ParamData("conv.weight", init_tensor=w)},  # SI's ewc_data: a tuple of dicts
        {"old_theta": {"b": ParamData("b", init_tensor=torch.arange(4.0))}, "count": 3, "none": None},
    )
    rebuilt = state.rebuild(_roundtrip(state.plain(value)))
    assert isinstance(rebuilt, tuple) and len(rebuilt) == 2
    param = rebuilt[0]["conv.weight"]
    assert isinstance(param, ParamData) and param.name == "conv.weight" and torch.equal(param.data, w)
    assert param.data.data_ptr() != w.data_ptr()  # a copy, not the live tensor
    assert torch.equal(rebuilt[1]["old_theta"]["b"].data, torch.arange(4.0))
    assert rebuilt[1]["count"] == 3 and rebuilt[1]["none"] is None


def test_plain_refuses_objects_it_cannot_rebuild():
    import pytest

    with pytest.raises(state.NotCheckpointable, match="object"):
        state.plain({"x": object()})


def test_dataset_roundtrip_keeps_stored_outputs_of_every_shape():
    # DER's buffer: each sample carries the model's output as a data attribute returned last
    from avalanche.benchmarks.utils.data_attribute import DataAttribute

    original = _dataset(4, 1, 3)
    outputs = [torch.randn(1, 4, 4, 4), torch.randn(1, 4, 4, 4), torch.randn(1, 4, 4, 4), torch.randn(1, 4, 4, 4)]
    original = original.update_data_attribute("der_output", DataAttribute(outputs, name="der_output", use_in_getitem=True))
    rebuilt = state.dataset_from_state(_roundtrip(state.dataset_state(original)))
    for i in range(4):
        assert len(rebuilt[i]) == len(original[i]) == 6
        assert torch.equal(rebuilt[i][-1], outputs[i])
        assert rebuilt[i][-2] == 1  # the task label, before the stored output
