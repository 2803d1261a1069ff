"""Registration: each metric once, with its compute function, in its own module; evaluate computes
exactly the registered metrics of a task, and a metric added in one place reaches evaluate."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from unicon_bench.metrics import registry
from unicon_bench.metrics.evaluate import EvalOptions, Targets, computed_metrics, evaluate, needs_train_output
from unicon_bench.metrics.lesions import lesion_metrics
from unicon_bench.metrics.registry import MetricRegistryError, MetricSpec, Score, register_metric, register_metrics
from unicon_bench.metrics.segmentation import dice_per_subject
from unicon_bench.metrics.surface import surface_metrics

ORDER = ["dice", "hd95", "nsd", "lesion_f1", "lesion_tp", "lesion_fp", "lesion_fn", "fp_volume_ml", "fn_volume_ml",
         "auc", "balanced_accuracy", "brier", "ece", "c_index", "uno_c_index", "td_auc", "ibs"]
HOME = {"dice": "segmentation", "hd95": "surface", "nsd": "surface", "auc": "classification", "brier": "classification",
        "lesion_f1": "lesions", "fn_volume_ml": "lesions", "c_index": "survival", "td_auc": "survival", "ibs": "survival"}


def test_each_metric_once_with_its_compute_in_its_own_module():
    assert list(registry.METRICS) == ORDER  # the display order
    assert len(registry._registered) == len({s.name for s in registry._registered})
    for spec in registry.METRICS.values():
        assert callable(spec.compute), spec.name
        assert spec.compute.__module__ in registry.BUILTIN_MODULES
    for name, module in HOME.items():
        assert registry.METRICS[name].compute.__module__ == f"unicon_bench.metrics.{module}"
    # metrics computed together share one function
    assert registry.METRICS["hd95"].compute is registry.METRICS["nsd"].compute
    assert len({registry.METRICS[m].compute for m in ORDER if m.startswith("lesion") or "volume" in m}) == 1


def test_registering_a_metric_twice_is_an_error():
    before = list(registry.METRICS.items())
    with pytest.raises(MetricRegistryError, match="dice registered twice"):
        register_metric("dice", task="segmentation", direction="higher", unit="1", label="Dice", description="again")
    with pytest.raises(MetricRegistryError, match="twice"):
        register_metrics(MetricSpec("x", "segmentation", "higher", "1", "x", "x"),
                         MetricSpec("x", "segmentation", "higher", "1", "x", "x"))
    with pytest.raises(MetricRegistryError, match="task"):
        register_metric("y", task="detection", direction="higher", unit="1", label="y", description="y")
    assert list(registry.METRICS.items()) == before


def test_order_and_cheap_import_whatever_module_comes_first():
    code = ("import sys; import unicon_bench.metrics.survival, unicon_bench.metrics.surface; "
            "from unicon_bench.metrics.registry import METRICS, PRIMARY_OF_TASK; "
            "print(list(METRICS)); print(sorted(PRIMARY_OF_TASK.values())); "
            "print([k for k in ('torch', 'monai', 'sklearn', 'torchsurv') if k in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == [str(ORDER), str(["auc", "c_index", "dice"]), "[]"]


def _segmentation():
    rng = np.random.default_rng(3)
    mask = np.zeros((3, 1, 10, 10, 10), np.float32)
    mask[0, 0, 2:5, 2:5, 2:5] = 1.0
    mask[1, 0, 6:9, 1:3, 4:8] = 1.0
    logits = np.where(rng.random(mask.shape) < 0.1, 1.0, -1.0) + 3 * (mask - 0.5)
    options = EvalOptions(nsd_tolerance_mm=2.0)
    return logits, Targets("segmentation", mask, np.zeros((3, 5), np.float32), (1.0, 1.5, 2.0), options=options)


def test_segmentation_is_the_registered_functions_in_order():
    logits, t = _segmentation()
    pred, mask = logits > 0, t.mask > 0.5
    want = {"dice": dice_per_subject(pred, mask)}
    want["hd95"], want["nsd"] = surface_metrics(pred, mask, 2.0, (1.0, 1.5, 2.0))
    want.update(lesion_metrics(pred, mask, (1.0, 1.5, 2.0)))
    ev = evaluate(logits, t)
    assert list(ev.values) == list(ev.subjects) == list(want)  # the order the matrix is written in
    for key, values in want.items():
        assert ev.subjects[key] == np.asarray(values).tolist()
        assert ev.values[key] == float(np.mean(values))


def test_each_task_computes_exactly_its_registered_metrics():
    clinical = np.array([[0, 5.0, 1, 60, 0], [1, 2.0, 1, 70, 1], [0, 9.0, 0, 50, 0], [1, 3.0, 1, 40, 1]], np.float32)
    cases = {
        "classification": (np.array([-1.0, 2.0, 0.5, 1.0]), Targets("classification", None, clinical), None),
        "prognosis": (np.array([0.1, 0.9, -0.2, 0.4]),
                      Targets("prognosis", None, clinical, train_clinical=clinical, options=EvalOptions(horizons=(4.0, 6.0))),
                      np.array([0.0, 1.0, -1.0, 0.5])),
    }
    cases["segmentation"] = (*_segmentation(), None)
    for kind, (output, targets, train_output) in cases.items():
        names = [m.name for m in registry.metrics_of(kind)]
        ev = evaluate(output, targets, train_output=train_output)
        assert {registry.split_key(k)[0] for k in ev.values} == set(names) == {m.name for m in computed_metrics(kind, True)}
        assert list(evaluate(output, targets, train_output=train_output, extra=False).values) == [names[0]]
        assert needs_train_output(kind, True) == (kind == "prognosis") and not needs_train_output(kind, False)
    ev = evaluate(*cases["classification"][:2])
    assert ev.values["auc"] == 1.0  # hand-derived: both positives (1.0, 2.0) outrank both negatives
    assert list(ev.subjects) == ["probability", "label", "brier"]
    assert [k for k in evaluate(*cases["prognosis"][:2], train_output=cases["prognosis"][2]).values if "@" in k] == [
        "td_auc@4", "td_auc@6"]


def test_a_metric_registered_in_one_place_reaches_evaluate_and_aggregate(monkeypatch):
    monkeypatch.setattr(registry, "_registered", list(registry._registered))
    monkeypatch.setattr(registry, "_ordered", None)

    @register_metric("voxel_share", task="segmentation", direction="lower", unit="1", label="voxel share",
                     description="share of voxels predicted foreground", per_subject=True, tolerance=0.1)
    def _voxel_share(x):
        return {"voxel_share": Score.per_subject(x.pred.reshape(len(x.pred), -1).mean(1))}

    from unicon_bench.analysis.aggregate import higher_is_better, metric_column

    logits, t = _segmentation()
    ev = evaluate(logits, t)
    assert list(ev.values)[-1] == "voxel_share" and len(ev.subjects["voxel_share"]) == 3
    assert list(registry.METRICS)[-1] == "voxel_share"
    assert not higher_is_better(metric_column("CT", "voxel_share"))

    @register_metric("stray", task="segmentation", direction="lower", unit="1", label="stray", description="stray")
    def _stray(x):
        return {"not_mine": 0.0}

    with pytest.raises(ValueError, match="not_mine"):
        evaluate(logits, t)
