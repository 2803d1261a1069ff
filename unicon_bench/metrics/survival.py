"""Survival metrics of Cox risk scores, computed with torchsurv.

Harrell's C-index (the primary metric), and beside it Uno's C-index, the cumulative/dynamic
time-dependent AUC at given horizons and the integrated Brier score. The last three weight subjects
by the inverse probability of censoring, a Kaplan-Meier estimate of the *training* split's censoring
distribution (Uno et al. 2011; Graf et al. 1999). The Brier score needs survival curves, which a Cox
risk does not give alone: ``breslow_survival`` fits Breslow's baseline hazard on the training
split's risks, times and events and returns S_i(t) = S_0(t) ** exp(risk_i).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from unicon_bench.metrics._common import to_numpy
from unicon_bench.metrics.registry import metric_key, register_metric

if TYPE_CHECKING:
    from unicon_bench.metrics.evaluate import PrognosisInputs


def _has_comparable_pair(time: np.ndarray, event: np.ndarray) -> bool:
    # Harrell: (i, j) is comparable when i has an event and T_i < T_j, or
    # T_i == T_j with j censored (same rule as torchsurv and lifelines).
    if not event.any():
        return False
    event_times = time[event]
    if (event_times < time.max()).any():
        return True
    return bool(np.isin(time[~event], event_times).any())


def c_index(risk: Any, time: Any, event: Any) -> float:
    """Harrell's C-index where a higher ``risk`` means shorter survival.

    ``time`` is the event or censoring time, ``event`` is 1/True when the event
    was observed. Tied risks in a comparable pair count 1/2; pairs with tied
    event times are not comparable. Equals
    ``lifelines.utils.concordance_index(time, -risk, event)``. Returns nan when
    there are no events or no comparable pair.
    """
    r = to_numpy(risk, dtype=np.float64).ravel()
    t = to_numpy(time, dtype=np.float64).ravel()
    e = to_numpy(event).ravel().astype(bool)
    if not r.size == t.size == e.size:
        raise ValueError(f"risk, time and event lengths differ: {r.size}, {t.size}, {e.size}")
    if not (np.isfinite(r).all() and np.isfinite(t).all()):
        raise ValueError("risk and time must be finite")
    if not _has_comparable_pair(t, e):
        return float("nan")

    import torch
    from torchsurv.metrics.cindex import ConcordanceIndex

    # torchsurv casts to float32 and ties risks within 1e-8; the C-index only
    # depends on orderings and ties, so pass dense ranks, which float32 holds exactly.
    r_rank = np.unique(r, return_inverse=True)[1]
    t_rank = np.unique(t, return_inverse=True)[1]
    value = ConcordanceIndex()(
        torch.from_numpy(r_rank.astype(np.float64)),
        torch.from_numpy(e),
        torch.from_numpy(t_rank.astype(np.float64)),
        instate=False,
    )
    return float(value)


def _tensor(x: Any):
    import torch

    return torch.from_numpy(np.ascontiguousarray(to_numpy(x, dtype=np.float64).ravel()))


def _survival_data(time: Any, event: Any):
    import torch

    t = _tensor(time)
    e = torch.from_numpy(to_numpy(event).ravel().astype(bool))
    if t.numel() != e.numel() or t.numel() == 0:
        raise ValueError(f"time and event must be non-empty and of one length, got {t.numel()} and {e.numel()}")
    return t, e


def _ipcw(train_time: Any, train_event: Any, at):
    """1 / G(at), G the Kaplan-Meier censoring survival of the training split (0 where G is 0)."""
    from torchsurv.stats.ipcw import get_ipcw

    t, e = _survival_data(train_time, train_event)
    return get_ipcw(e, t, at).double()


def _no_events(*events: Any) -> bool:
    """Whether any of the event vectors holds no event (torchsurv refuses those; the metric is undefined)."""
    return any(not to_numpy(e).astype(bool).any() for e in events)


def uno_c_index(risk: Any, time: Any, event: Any, train_time: Any, train_event: Any) -> float:
    """Uno's C-index: Harrell's pairs weighted by 1 / G(T_i)^2 (G from the training split); nan if undefined."""
    from torchsurv.metrics.cindex import ConcordanceIndex

    r = _tensor(risk)
    t, e = _survival_data(time, event)
    if _no_events(event, train_event):
        return float("nan")
    if r.numel() != t.numel():
        raise ValueError(f"risk and time lengths differ: {r.numel()} vs {t.numel()}")
    if not _has_comparable_pair(t.numpy(), e.numpy()):
        return float("nan")
    weight = _ipcw(train_time, train_event, t)
    if not weight[e].gt(0).any():
        return float("nan")
    return float(ConcordanceIndex()(r, e, t, weight=weight, instate=False))


def td_auc(risk: Any, time: Any, event: Any, horizons: Any, train_time: Any, train_event: Any) -> np.ndarray:
    """Cumulative/dynamic AUC at each horizon (cases: event by t; controls: still at risk after t).

    Cases are weighted by the inverse probability of censoring at their time (training split's
    Kaplan-Meier). A horizon without a case or a control in ``time`` gets nan.
    """
    from torchsurv.metrics.auc import Auc

    r = _tensor(risk)
    t, e = _survival_data(time, event)
    h = np.asarray(horizons, dtype=np.float64).ravel()
    out = np.full(h.size, np.nan)
    if _no_events(event, train_event):
        return out
    weight = _ipcw(train_time, train_event, t)
    for k, horizon in enumerate(h):
        cases = (t <= horizon) & e & (weight > 0)
        if not cases.any() or not (t > horizon).any():
            continue
        at = _tensor([horizon])
        value = Auc()(r, e, t, auc_type="cumulative", weight=weight, new_time=at,
                      weight_new_time=_ipcw(train_time, train_event, at), instate=False)
        out[k] = float(value.reshape(-1)[0])
    return out


def breslow_survival(train_risk: Any, train_time: Any, train_event: Any, risk: Any, times: Any) -> np.ndarray:
    """S_i(t) at ``times`` for each of ``risk``: Cox model with a Breslow baseline fitted on the training split.

    nan when the training subjects hold no event (no baseline hazard can be fitted).
    """
    from torchsurv.loss.cox import baseline_survival_function, survival_function_cox

    t, e = _survival_data(train_time, train_event)
    if not e.any():
        return np.full((len(to_numpy(risk).ravel()), len(to_numpy(times).ravel())), np.nan)
    baseline = baseline_survival_function(_tensor(train_risk), e, t)
    surv = survival_function_cox(baseline, _tensor(risk), _tensor(times))
    return surv.reshape(len(to_numpy(risk).ravel()), -1).double().numpy()


def brier_grid(time: Any, event: Any, n: int = 20) -> np.ndarray:
    """Times at which the integrated Brier score is evaluated: ``n`` points from the 10th to the
    90th percentile of the observed times (inside the follow-up, as scikit-survival requires)."""
    t = to_numpy(time, dtype=np.float64).ravel()
    lo, hi = np.percentile(t, [10, 90])
    return np.unique(np.linspace(lo, hi, n))


def integrated_brier_score(survival: Any, time: Any, event: Any, times: Any, train_time: Any, train_event: Any) -> float:
    """IPCW integrated Brier score of survival curves ``survival[i, k] = S_i(times[k])``.

    The Brier score at each time (Graf et al. 1999, censoring weights from the training split),
    integrated by the trapezoidal rule over ``times`` and divided by their range; nan if undefined.
    """
    import torch
    from torchsurv.metrics.brier_score import BrierScore

    t, e = _survival_data(time, event)
    grid = _tensor(times)
    s = _tensor(survival).reshape(t.numel(), grid.numel())
    if grid.numel() < 2 or _no_events(event, train_event) or not bool(torch.isfinite(s).all()):
        return float("nan")
    metric = BrierScore()
    metric(s, e, t, new_time=grid, weight=_ipcw(train_time, train_event, t),
           weight_new_time=_ipcw(train_time, train_event, grid))
    return float(metric.integral())


@register_metric("c_index", task="prognosis", direction="higher", unit="1", label="C-index",
                 description="Harrell's concordance index (torchsurv)", primary=True)
def _c_index_metric(x: PrognosisInputs) -> dict[str, float]:
    return {"c_index": c_index(x.risk, x.time, x.event)}


@register_metric("uno_c_index", task="prognosis", direction="higher", unit="1", label="Uno's C-index",
                 description="concordance weighted by the training split's inverse probability of censoring (torchsurv)")
def _uno_c_index_metric(x: PrognosisInputs) -> dict[str, float]:
    return {"uno_c_index": uno_c_index(x.risk, x.time, x.event, x.train_time, x.train_event)}


@register_metric("td_auc", task="prognosis", direction="higher", unit="1", label="time-dependent AUC",
                 description="cumulative/dynamic AUC at each of the scenario's horizons, IPCW-weighted (torchsurv)",
                 horizons=True)
def _td_auc_metric(x: PrognosisInputs) -> dict[str, float]:
    """One key per horizon (``td_auc@24``), all from one IPCW fit."""
    horizons = x.options.horizons
    aucs = td_auc(x.risk, x.time, x.event, horizons, x.train_time, x.train_event)
    return {metric_key("td_auc", h): float(a) for h, a in zip(horizons, aucs)}


@register_metric("ibs", task="prognosis", direction="lower", unit="1", label="integrated Brier score",
                 description="IPCW integrated Brier score of Cox survival curves with a Breslow baseline from the "
                 "training split (torchsurv)", needs_train_output=True)
def _ibs_metric(x: PrognosisInputs) -> dict[str, float]:
    grid = brier_grid(x.time, x.event)
    k = x.train_risk.size  # the first k training subjects were predicted (EvalOptions.breslow_subjects)
    curves = breslow_survival(x.train_risk, x.train_time[:k], x.train_event[:k], x.risk, grid)
    return {"ibs": integrated_brier_score(curves, x.time, x.event, grid, x.train_time, x.train_event)}
