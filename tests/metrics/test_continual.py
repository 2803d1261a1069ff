import math

import numpy as np
import pytest

from unicon_bench.metrics import continual

R = [
    [0.80, 0.10, 0.20],
    [0.85, 0.90, 0.30],
    [0.50, 0.70, 0.95],
]
INIT = [0.05, 0.15, 0.10]


def test_final_average():
    # mean(R[2]) = (0.5 + 0.7 + 0.95) / 3 = 2.15 / 3
    assert continual.final_average(R) == pytest.approx(2.15 / 3)


def test_bwt():
    # ((R20 - R00) + (R21 - R11)) / 2 = ((0.5 - 0.8) + (0.7 - 0.9)) / 2 = -0.25
    assert continual.bwt(R) == pytest.approx(-0.25)


def test_fwt():
    # ((R01 - init1) + (R12 - init2)) / 2 = ((0.1 - 0.15) + (0.3 - 0.1)) / 2 = 0.075
    assert continual.fwt(R, INIT) == pytest.approx(0.075)
    assert math.isnan(continual.fwt(R, None))


def test_forgetting():
    # j=0: max(R00, R10) - R20 = max(0.8, 0.85) - 0.5 = 0.35
    # j=1: max(R11) - R21 = 0.9 - 0.7 = 0.2
    # mean = 0.275  (differs from -bwt because the peak on exp 0 came after exp 1)
    assert continual.forgetting(R) == pytest.approx(0.275)


def test_plasticity():
    # (R00 + R11 + R22) / 3 = (0.8 + 0.9 + 0.95) / 3 = 2.65 / 3
    assert continual.plasticity(R) == pytest.approx(2.65 / 3)


def test_summarize():
    s = continual.summarize(R, INIT)
    assert set(s) == {"final_average", "bwt", "fwt", "forgetting", "plasticity"}
    assert s["bwt"] == pytest.approx(-0.25)
    assert s["fwt"] == pytest.approx(0.075)
    assert all(isinstance(v, float) for v in s.values())
    assert math.isnan(continual.summarize(R)["fwt"])
    assert continual.summarize(np.array(R), np.array(INIT)) == s


def test_partial_run_uses_seen_experiences():
    partial = R[:2]  # trained on 2 of 3 experiences
    # final_average: (R10 + R11) / 2 = (0.85 + 0.9) / 2 = 0.875
    # bwt: R10 - R00 = 0.05; forgetting: max(R00) - R10 = -0.05
    # fwt: j in {1, 2}: same terms as the full run = 0.075; plasticity: (0.8 + 0.9) / 2 = 0.85
    s = continual.summarize(partial, INIT)
    assert s == pytest.approx(
        {"final_average": 0.875, "bwt": 0.05, "fwt": 0.075, "forgetting": -0.05, "plasticity": 0.85}
    )


def test_single_experience():
    s = continual.summarize([[0.7]], [0.1])
    assert s["final_average"] == pytest.approx(0.7)
    assert s["plasticity"] == pytest.approx(0.7)
    assert math.isnan(s["bwt"]) and math.isnan(s["fwt"]) and math.isnan(s["forgetting"])


def test_nan_entries_propagate():
    with_nan = [row[:] for row in R]
    with_nan[0][0] = float("nan")
    s = continual.summarize(with_nan, INIT)
    assert math.isnan(s["bwt"]) and math.isnan(s["forgetting"]) and math.isnan(s["plasticity"])
    assert s["final_average"] == pytest.approx(2.15 / 3)  # last row has no nan


@pytest.mark.parametrize(
    "bad, match",
    [
        ([[0.1, 0.2], [0.3]], "ragged"),
        ([], "empty"),
        ([[]], "empty"),
        ([[0.1], [0.2]], "more rows"),
    ],
)
def test_invalid_matrix_raises(bad, match):
    with pytest.raises(ValueError, match=match):
        continual.summarize(bad)


def test_init_length_checked():
    with pytest.raises(ValueError, match="init"):
        continual.fwt(R, [0.0, 0.0])
