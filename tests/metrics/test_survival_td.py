"""Uno's C-index, time-dependent AUC, Breslow survival curves and the integrated Brier score vs scikit-survival."""

from __future__ import annotations

import numpy as np
import pytest

from unicon_bench.metrics import survival as surv

sksurv = pytest.importorskip("sksurv")  # the test extra


@pytest.fixture(scope="module")
def cohort():
    """Cox-like train and test data with censoring; test times within the train follow-up.

    Times are rounded to 0.01, which leaves a few ties inside each split. Where a test event time
    equals a training *censoring* time, torchsurv's censoring Kaplan-Meier weight and scikit-survival's
    differ by their tie convention (a shift of about 0.002 in Uno's C was seen at 0.1 rounding).
    """
    rng = np.random.default_rng(1)

    def draw(n):
        x = rng.normal(size=n)
        t = rng.exponential(10 * np.exp(-0.7 * x))
        c = rng.exponential(15, size=n)
        return x, np.minimum(t, c).round(2) + 0.01, t <= c

    x_tr, t_tr, e_tr = draw(80)
    x_te, t_te, e_te = draw(50)
    keep = t_te < t_tr.max()
    x_te, t_te, e_te = x_te[keep], t_te[keep], e_te[keep]
    risk_tr = 0.7 * x_tr + rng.normal(scale=0.5, size=x_tr.size)
    risk_te = 0.7 * x_te + rng.normal(scale=0.5, size=x_te.size)
    return dict(t_tr=t_tr, e_tr=e_tr, t_te=t_te, e_te=e_te, risk_tr=risk_tr, risk_te=risk_te)


def _surv(event, time):
    from sksurv.util import Surv

    return Surv.from_arrays(event.astype(bool), time)


def test_uno_c_index_equals_sksurv(cohort):
    from sksurv.metrics import concordance_index_ipcw

    c = cohort
    want = concordance_index_ipcw(_surv(c["e_tr"], c["t_tr"]), _surv(c["e_te"], c["t_te"]), c["risk_te"])[0]
    got = surv.uno_c_index(c["risk_te"], c["t_te"], c["e_te"], c["t_tr"], c["e_tr"])
    assert got == pytest.approx(want, abs=1e-6)
    # it weights pairs differently from Harrell's
    assert got != pytest.approx(surv.c_index(c["risk_te"], c["t_te"], c["e_te"]), abs=1e-4)


def test_time_dependent_auc_equals_sksurv(cohort):
    from sksurv.metrics import cumulative_dynamic_auc

    c = cohort
    horizons = np.percentile(c["t_tr"][c["e_tr"]], [25, 50, 75])
    want = cumulative_dynamic_auc(_surv(c["e_tr"], c["t_tr"]), _surv(c["e_te"], c["t_te"]), c["risk_te"], horizons)[0]
    got = surv.td_auc(c["risk_te"], c["t_te"], c["e_te"], horizons, c["t_tr"], c["e_tr"])
    np.testing.assert_allclose(got, want, atol=1e-6)
    # a horizon before any event has no case: undefined
    assert np.isnan(surv.td_auc(c["risk_te"], c["t_te"], c["e_te"], [0.01], c["t_tr"], c["e_tr"])[0])


def test_breslow_survival_equals_sksurv(cohort):
    from sksurv.linear_model.coxph import BreslowEstimator

    c = cohort
    grid = surv.brier_grid(c["t_te"], c["e_te"])
    got = surv.breslow_survival(c["risk_tr"], c["t_tr"], c["e_tr"], c["risk_te"], grid)
    fns = BreslowEstimator().fit(c["risk_tr"], c["e_tr"], c["t_tr"]).get_survival_function(c["risk_te"])
    want = np.array([f(grid) for f in fns])
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert (np.diff(got, axis=1) <= 1e-12).all()  # survival curves never rise


def test_integrated_brier_score_equals_sksurv(cohort):
    from sksurv.metrics import integrated_brier_score

    c = cohort
    grid = surv.brier_grid(c["t_te"], c["e_te"])
    curves = surv.breslow_survival(c["risk_tr"], c["t_tr"], c["e_tr"], c["risk_te"], grid)
    want = integrated_brier_score(_surv(c["e_tr"], c["t_tr"]), _surv(c["e_te"], c["t_te"]), curves, grid)
    got = surv.integrated_brier_score(curves, c["t_te"], c["e_te"], grid, c["t_tr"], c["e_tr"])
    assert got == pytest.approx(want, abs=1e-6)


def test_undefined_cases_are_nan():
    t = np.array([1.0, 2.0, 3.0])
    no_event = np.zeros(3, bool)
    events = np.ones(3, bool)
    # a training split without events: no censoring weights, no baseline hazard
    assert np.isnan(surv.uno_c_index([0.3, 0.2, 0.1], t, events, t, no_event))
    assert np.isnan(surv.td_auc([0.3, 0.2, 0.1], t, events, [1.5], t, no_event)).all()
    curves = surv.breslow_survival([0.1, 0.2, 0.3], t, no_event, [0.3, 0.2, 0.1], [1.0, 2.0])
    assert np.isnan(curves).all()
    assert np.isnan(surv.integrated_brier_score(curves, t, events, [1.0, 2.0], t, events))
    assert np.isnan(surv.uno_c_index([0.1, 0.2, 0.3], t, no_event, t, np.ones(3, bool)))
    assert np.isnan(surv.integrated_brier_score(np.full((3, 2), 0.5), t, no_event, [1.0, 2.0], t, np.ones(3, bool)))
