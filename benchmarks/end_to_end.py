"""End to end: the README's default run, and (with --suite) the full default suite."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

from benchmarks.common import ROOT, cli_run


def run(quick: bool = False, suite: bool = False) -> dict:
    args = ["--strategy", "unicon", "--scenario", "ct_to_pet"] + (["--quick"] if quick else [])
    res = cli_run(args)
    out = {"unicon_ct_to_pet": {"quick": quick, "wall_s": res["cost"]["wall_time_s"],
                                "peak_rss_mb": res["cost"]["peak_rss_mb"]}}
    if suite:  # hours on 2 cores: only on request (python -m benchmarks end_to_end --suite)
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "unicon_bench.cli", "sweep", "suites/default.yaml", "--out", tmp,
                            "--no-progress"], check=True, cwd=ROOT, env=dict(os.environ))
            out["default_suite_wall_s"] = time.perf_counter() - t
    out["targets"] = {"unicon_ct_to_pet_max_s": 180, "default_suite_max_s": 3600, "peak_rss_max_mb": 3072}
    return out
