"""A checkpoint is read as hostile input: a progress record that does not fit its file or its scenario,
or a malformed random-generator state, is one CheckpointError, never a traceback (issue #22)."""

from __future__ import annotations

from pathlib import Path

import pytest

from unicon_bench.errors import CheckpointError
from unicon_bench.harness import checkpoint

KEY = "0123456789abcdef"


def _raw(run_id="s0-20260101T000000-abcd1234", rows=2, costs=1, **extra):
    return {"run_id": run_id, "started": "2026-01-01T00:00:00+00:00", "rows": [[{}]] * rows,
            "trainable": [10] * costs, "train_time": [1.0] * costs, **extra}


def _path(run_id="s0-20260101T000000-abcd1234") -> Path:
    return Path("/out/sc/naive/checkpoints") / f"{KEY}-{run_id}.pt"


def test_a_well_formed_progress_record_is_read():
    progress = checkpoint._progress(_raw(), _path(), KEY, n_experiences=2)
    assert progress.experiences_done == 1 and progress.trainable == [10]


@pytest.mark.parametrize("raw, why", [
    (_raw(run_id="../../x"), "run id"),
    (_raw(run_id="/abs"), "run id"),
    (_raw(run_id="s0-other"), "run id"),  # not the id its file name gives
    (_raw(rows=4, costs=3), "evaluated rows"),  # more rows than the scenario has experiences
    (_raw(rows=1, costs=0), "evaluated rows"),  # a checkpoint is written after an experience, never before
    (_raw(rows=2, costs=2), "evaluated rows"),  # cost entries that do not match the rows
    (_raw(unknown=1), "unexpected keyword"),
    ({**_raw(), "rows": "nope"}, "must be lists"),
    ("progress", "not a mapping"),
])
def test_a_malformed_progress_record_is_one_error(raw, why):
    run_id = raw.get("run_id") if isinstance(raw, dict) and raw.get("run_id") != "s0-other" else None
    path = _path() if run_id is None or "/" in run_id else _path(run_id)
    with pytest.raises(CheckpointError, match=f"malformed progress record .*{why}"):
        checkpoint._progress(raw, path, KEY, n_experiences=2)


class _Fits:
    def load_state_dict(self, state):
        pass


@pytest.mark.parametrize("rng", [{}, {"python": {"version": 3}}, {"python": "x", "numpy": 1, "torch": 2}])
def test_a_malformed_generator_state_is_one_error(tmp_path, rng):
    ckpt = checkpoint.RunCheckpoint(tmp_path, KEY, checkpoint.Progress(run_id="r", started="t"), None)
    ckpt._pending = {"strategy": {}, "rng": rng}
    with pytest.raises(CheckpointError, match="malformed random-generator state"):
        ckpt.restore(_Fits())
