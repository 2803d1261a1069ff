"""Two sweeps of one suite into one folder at once do each run once (issue #22): a sweep claims a run
(a lock the kernel drops when the process dies) and leaves runs claimed or finished by the other."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from conftest import SUBPROCESS_THREADS, _cli_prefix
from test_resume import TINY  # two tiny segmentation experiences
from unicon_bench.results import find_results, read_result

pytestmark = pytest.mark.slow


def test_two_sweeps_of_one_suite_run_each_job_once(tmp_path, phantom_cache):
    (tmp_path / "tiny.yaml").write_text(json.dumps(TINY), encoding="utf-8")
    suite = tmp_path / "suite.yaml"
    suite.write_text(json.dumps({"name": "twice", "strategies": ["naive", "ewc"], "scenarios": [str(tmp_path / "tiny.yaml")],
                                 "seeds": [0, 1, 2], "quick": True, "out": str(tmp_path / "out")}), encoding="utf-8")
    env = {**os.environ, **SUBPROCESS_THREADS, "UNICON_BENCH_CACHE": str(phantom_cache)}
    cmd = _cli_prefix() + ["sweep", str(suite), "--no-progress"]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    results = [read_result(p) for p in find_results(tmp_path / "out")]
    runs = sorted((r.strategy.name, r.seed) for r in results)
    assert runs == sorted((s, seed) for s in ("naive", "ewc") for seed in (0, 1, 2))  # six runs, each once
    # between them the two sweeps account for every run once: ran here, or left to the other
    ran = [int(o[0].split(": ", 1)[1].split(" ran")[0]) for o in outs]
    assert sum(ran) == 6, outs
