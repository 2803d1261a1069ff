"""The metric registry: one primary metric per task, directions and units the leaderboard and check rely on."""

from __future__ import annotations

import pytest

from unicon_bench.errors import UnknownNameError
from unicon_bench.metrics import registry


def test_one_primary_metric_per_task():
    assert registry.PRIMARY_OF_TASK == {"segmentation": "dice", "classification": "auc", "prognosis": "c_index"}
    for task in registry.TASKS:
        specs = registry.metrics_of(task)
        assert sum(m.primary for m in specs) == 1 and specs[0].primary


def test_directions_and_units():
    lower = {m.name for m in registry.METRICS.values() if m.direction == "lower"}
    assert lower == {"hd95", "lesion_fp", "lesion_fn", "fp_volume_ml", "fn_volume_ml", "brier", "ece", "ibs"}
    assert registry.get_metric("hd95").unit == "mm" and registry.get_metric("fp_volume_ml").unit == "ml"
    assert registry.higher_is_better("nsd") and not registry.higher_is_better("hd95")
    assert not registry.get_metric("hd95").accepts(-1.0) and registry.get_metric("hd95").accepts(500.0)
    assert not registry.get_metric("dice").accepts(1.5)


def test_horizon_keys():
    assert registry.metric_key("td_auc", 24.0) == "td_auc@24"
    assert registry.split_key("td_auc@6.5") == ("td_auc", 6.5)
    assert registry.get_metric("td_auc@12").name == "td_auc"
    with pytest.raises(UnknownNameError, match="metric"):
        registry.get_metric("accuracy")
    with pytest.raises(UnknownNameError):
        registry.split_key("td_auc@soon")
