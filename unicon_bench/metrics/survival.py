"""Harrell's concordance index for survival risk scores, computed with torchsurv."""

from __future__ import annotations

from typing import Any

import numpy as np

from unicon_bench.metrics._common import to_numpy


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
