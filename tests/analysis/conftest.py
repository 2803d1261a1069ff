"""Synthetic result folders for the statistics tests: the ct_tasks fixture with edited matrices.

Experiences: ct_cls (auc), ct_prog (c_index), ct_seg (dice). The Dice experience gets per-subject
values in every cell (schema 3), so final:ct_seg resamples seeds and subjects; the AUC and C-index
experiences have none, so the summaries over all experiences resample seeds only.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from unicon_bench.metrics import continual
from unicon_bench.results import parse_result, write_result

FIXTURE = Path(__file__).parent.parent / "fixtures" / "result_schema1_ct_tasks.json"
N_SUBJECTS = 12


def make_result(strategy: str, seed: int, shift: float = 0.0, noise_seed: int | None = None):
    """A valid RunResult: the fixture's matrix + ``shift`` on every trained cell, with per-subject Dice.

    ``noise_seed`` (default: ``seed``) draws the per-seed matrix noise and the Dice values, so two
    strategies given the same seed and shift are identical copies.
    """
    data = copy.deepcopy(json.loads(FIXTURE.read_text()))
    rng = np.random.default_rng(1000 + (seed if noise_seed is None else noise_seed))
    data["run_id"] = f"s{seed}-{strategy}"
    data["strategy"]["name"] = strategy
    data["seed"] = seed
    per_subject = []
    for e in data["matrix"]:
        i, j = e["trained_upto"], e["evaluated_on"]
        bump = 0.0 if i < 0 else shift
        if j == 2:
            dice = np.clip(rng.uniform(0.2, 0.8, N_SUBJECTS) + bump, 0, 1)
            e["value"] = float(np.mean(dice))
            per_subject.append({"trained_upto": i, "evaluated_on": j, "values": {"dice": dice.tolist()}})
        else:
            e["value"] = float(np.clip(e["value"] + bump + rng.normal(0, 0.02), 0, 1))
    data["per_subject"] = per_subject
    n = 3
    grid = {(e["trained_upto"], e["evaluated_on"]): e["value"] for e in data["matrix"]}
    R = [[grid[(i, j)] for j in range(n)] for i in range(n)]
    data["summary"] = continual.summarize(R, [grid[(-1, j)] for j in range(n)])
    return parse_result(data, "synthetic")


@pytest.fixture
def synthetic_folder(tmp_path) -> Path:
    """naive (base), better (+0.15 everywhere), copy (naive's identical twin); seeds 0-4."""
    root = tmp_path / "results"
    for seed in range(5):
        write_result(make_result("naive", seed), root)
        write_result(make_result("better", seed, shift=0.15), root)
        write_result(make_result("copy", seed, noise_seed=seed), root)
    return root
