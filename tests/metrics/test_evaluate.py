"""``evaluate``: which metrics each task kind gets, where, and the scenario options' defaults."""

from __future__ import annotations

import numpy as np
import pytest

from unicon_bench.errors import ConfigError
from unicon_bench.metrics.evaluate import EvalOptions, Targets, default_horizons, evaluate, resolve_options
from unicon_bench.scenario import EvaluationSpec, get_scenario, load_scenario_file


def _seg_targets(extra="seen"):
    mask = np.zeros((3, 1, 8, 8, 8), np.float32)
    mask[:2, 0, 2:5, 2:5, 2:5] = 1.0
    clinical = np.zeros((3, 5), np.float32)
    return Targets("segmentation", mask, clinical, (2.0, 2.0, 3.0), options=EvalOptions(nsd_tolerance_mm=3.0, extra=extra))


def test_segmentation_values_are_subject_means():
    t = _seg_targets()
    logits = np.where(t.mask > 0.5, 4.0, -4.0)
    logits[1, 0, 7, 7, 7] = 4.0  # a false-positive voxel on subject 1
    ev = evaluate(logits, t)
    assert set(ev.values) == {"dice", "hd95", "nsd", "lesion_tp", "lesion_fp", "lesion_fn", "lesion_f1",
                              "fp_volume_ml", "fn_volume_ml"}
    assert ev.subjects["lesion_fp"] == [0.0, 1.0, 0.0]
    assert ev.values["fp_volume_ml"] == pytest.approx(2 * 2 * 3 / 1000 / 3)
    assert ev.subjects["lesion_f1"][2] == 1.0 and ev.subjects["hd95"][2] == 0.0  # both empty: perfect
    for key, values in ev.subjects.items():
        assert ev.values[key] == pytest.approx(np.mean(values))
    assert set(evaluate(logits, t, extra=False).values) == {"dice"}


def test_prognosis_needs_the_training_outputs():
    clinical = np.array([[0, 5.0, 1, 60, 0], [1, 2.0, 1, 70, 1], [0, 9.0, 0, 50, 0]], np.float32)
    t = Targets("prognosis", None, clinical, train_clinical=clinical, options=EvalOptions(horizons=(4.0,)))
    with pytest.raises(ValueError, match="train_output"):
        evaluate(np.array([0.1, 0.9, -0.2]), t)
    ev = evaluate(np.array([0.1, 0.9, -0.2]), t, train_output=np.array([0.0, 1.0, -1.0]))
    assert {"c_index", "uno_c_index", "td_auc@4", "ibs"} == set(ev.values)
    assert ev.values["c_index"] == 1.0
    assert set(evaluate(np.array([0.1, 0.9, -0.2]), t, extra=False).values) == {"c_index"}


def test_where_the_extra_metrics_go():
    seen, every, none = EvalOptions(extra="seen"), EvalOptions(extra="all"), EvalOptions(extra="none")
    assert [seen.extra_at(i, 1) for i in (-1, 0, 1, 2)] == [False, False, True, True]
    assert all(every.extra_at(i, 1) for i in (-1, 0, 1)) and not any(none.extra_at(i, 1) for i in (-1, 0, 1))


def test_option_defaults():
    spec = EvaluationSpec()
    train = np.array([[0, t, e, 0, 0] for t, e in [(1, 1), (2, 1), (3, 0), (4, 1), (5, 1), (9, 0)]], float)
    seg = resolve_options("segmentation", spec, (8.0, 8.0, 10.0), None)
    assert seg.nsd_tolerance_mm == 10.0 and seg.extra == "seen"  # one voxel
    prog = resolve_options("prognosis", spec, (1.0, 1.0, 1.0), train)
    assert prog.horizons == default_horizons(train[:, 1], train[:, 2]) == (1.8, 3.0, 4.2)  # event-time quartiles
    assert prog.breslow_subjects == 16
    custom = resolve_options("prognosis", EvaluationSpec(horizons=[6, 12], nsd_tolerance_mm=2.0), (1.0,) * 3, train)
    assert custom.horizons == (6.0, 12.0)


def test_scenario_evaluation_block(tmp_path):
    assert get_scenario("ct_tasks").evaluation == EvaluationSpec()  # built-ins: the defaults
    text = (tmp_path / "s.yaml")
    base = get_scenario("ct_to_pet").model_dump(mode="json")
    import yaml

    text.write_text(yaml.safe_dump({**base, "evaluation": {"nsd_tolerance_mm": 4.0, "extra_metrics": "all"}}))
    assert load_scenario_file(text).evaluation.nsd_tolerance_mm == 4.0
    text.write_text(yaml.safe_dump({**base, "evaluation": {"horizons": [-3]}}))
    with pytest.raises(ConfigError, match="horizons"):
        load_scenario_file(text)
