import numpy as np
import pytest
import torch
from lifelines.utils import concordance_index

from unicon_bench.metrics import c_index


def test_hand_case():
    #          A    B    C    D
    risk = [3.0, 1.0, 4.0, 3.0]
    time = [1.0, 2.0, 3.0, 4.0]
    event = [1, 0, 1, 0]
    # Comparable pairs need the earlier time to be an event (B is censored, so none from B):
    #   A-B: 3 > 1 concordant (1), A-C: 3 < 4 discordant (0),
    #   A-D: 3 = 3 tied risk (1/2), C-D: 4 > 3 concordant (1)
    #   -> (1 + 0 + 0.5 + 1) / 4 = 0.625
    assert c_index(risk, time, event) == pytest.approx(0.625)
    assert concordance_index(time, -np.array(risk), event) == pytest.approx(0.625)


def test_event_and_censoring_at_same_time_are_comparable():
    # The censored subject was still alive at t=2 when the other had its event.
    assert c_index([2.0, 1.0], [2.0, 2.0], [1, 0]) == 1.0


def test_matches_lifelines_on_random_censored_data():
    rng = np.random.default_rng(0)
    for n in (10, 57, 200):
        risk = rng.normal(size=n)
        time = rng.exponential(scale=np.exp(-risk))  # higher risk -> earlier event
        event = rng.random(n) < 0.6
        expected = concordance_index(time, -risk, event)
        assert c_index(risk, time, event) == pytest.approx(expected, abs=1e-6)
        # Ties in time and in risk, as torch tensors.
        t_int, r_round = np.ceil(time * 3), np.round(risk, 1)
        expected = concordance_index(t_int, -r_round, event)
        got = c_index(torch.from_numpy(r_round), torch.from_numpy(t_int), torch.from_numpy(event))
        assert got == pytest.approx(expected, abs=1e-6)


def test_near_ties_are_not_merged():
    # Differences below float32 resolution must still order subjects.
    risk = np.array([1.0 + 1e-12, 1.0, 2.0])
    time = np.array([1.0, 1.0 + 1e-10, 3.0])
    event = np.array([1, 1, 0])
    # A-B concordant (A earlier, higher risk), A-C and B-C discordant -> 1/3;
    # merging the float32 ties would drop A-B and give 0.
    assert c_index(risk, time, event) == pytest.approx(1 / 3)
    assert concordance_index(time, -risk, event) == pytest.approx(1 / 3)


def test_undefined_cases_are_nan():
    assert np.isnan(c_index([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [0, 0, 0]))  # no events
    assert np.isnan(c_index([1.0, 2.0], [5.0, 5.0], [1, 1]))  # only tied event times
    assert np.isnan(c_index([1.0, 2.0], [1.0, 5.0], [0, 1]))  # event is the last time
    assert np.isnan(c_index([1.0], [1.0], [1]))


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="lengths differ"):
        c_index([1.0, 2.0], [1.0, 2.0, 3.0], [1, 1, 1])
    with pytest.raises(ValueError, match="finite"):
        c_index([np.nan, 2.0], [1.0, 2.0], [1, 1])
