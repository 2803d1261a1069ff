"""Schema 3 keeps per-subject values for every cell of the matrix and of the untrained row (issue #24),
so BWT, forgetting and FWT can be resampled over subjects; older files (final model only) still read."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from unicon_bench.results import parse_result

pytestmark = pytest.mark.slow
FIXTURE = Path(__file__).parent / "fixtures" / "result_schema1_ct_tasks.json"


def test_every_cell_has_its_subjects_and_they_give_the_matrix(quick_run):
    result = quick_run("naive", "ct_tasks", 0)[0]
    n = len(result.scenario.experiences)
    cells = {(s.trained_upto, s.evaluated_on) for s in result.per_subject}
    assert cells == {(i, j) for i in range(-1, n) for j in range(n)}
    for i in range(-1, n):
        for j, metric in enumerate(result.scenario.metrics):
            value = (result.rows()[0] if i == -1 else result.rows()[1][i])[j]
            subjects = result.subjects(j, i)
            if metric == "dice":  # the matrix value is the mean over subjects
                assert np.mean(subjects["dice"]) == pytest.approx(value, abs=1e-12)
            elif metric == "auc":  # recomputed from the stored probabilities with scikit-learn
                assert roc_auc_score(subjects["label"], subjects["probability"]) == pytest.approx(value, abs=1e-12)
            else:
                assert set(subjects) == {"risk", "time", "event"} and len(subjects["risk"]) == len(subjects["time"])
    assert result.subjects(0) == result.subjects(0, n - 1)  # the default is the final model


def test_a_file_with_the_final_model_only_still_reads():
    data = json.loads(FIXTURE.read_text())
    data["per_subject"] = [{"evaluated_on": 0, "values": {"probability": [0.2, 0.9], "label": [0, 1]}}]
    result = parse_result(data)
    assert result.subjects(0) == {"probability": [0.2, 0.9], "label": [0, 1]} and result.subjects(0, -1) == {}


def test_two_entries_for_one_cell_are_invalid():
    data = json.loads(FIXTURE.read_text())
    entry = {"trained_upto": 1, "evaluated_on": 0, "values": {"probability": [0.2], "label": [0]}}
    data["per_subject"] = [entry, dict(entry)]
    with pytest.raises(Exception, match="one entry per cell"):
        parse_result(data)
