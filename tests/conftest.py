"""Shared fixtures: one phantom cache per session, memoised quick runs, a CLI runner."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def phantom_cache(tmp_path_factory) -> Path:
    """A phantom cache shared by the whole session, so each cohort is generated once.

    ``UNICON_BENCH_CACHE`` points at it too, so code that falls back on the default cache (and CLI
    subprocesses, which inherit the environment) never writes to the user's cache.
    """
    cache = tmp_path_factory.mktemp("phantom_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("UNICON_BENCH_CACHE", str(cache))
        yield cache


# One intra-op thread for the training runs of the suite: the quick models are tiny, and on a
# shared 2-core machine two OpenMP threads competing with other processes made runs 5-20x slower.
SUBPROCESS_THREADS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture(scope="session")
def torch_one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def quick_run(phantom_cache, tmp_path_factory, torch_one_thread):
    """``quick_run(strategy, scenario, seed=0) -> (RunResult, path)``, each run done once per session."""
    out = tmp_path_factory.mktemp("quick_results")
    memo: dict[tuple[str, str, int], tuple] = {}

    def get(strategy: str, scenario: str, seed: int = 0):
        key = (strategy, scenario, seed)
        if key not in memo:
            from unicon_bench import harness

            memo[key] = harness.run(strategy, scenario, seed=seed, quick=True, out=out, cache_dir=phantom_cache)
        return memo[key]

    return get


def _cli_prefix() -> list[str]:
    script = Path(sys.executable).parent / "unicon-bench"
    if script.exists():
        return [str(script)]
    found = shutil.which("unicon-bench")
    return [found] if found else [sys.executable, "-m", "unicon_bench.cli"]


@pytest.fixture(scope="session")
def cli(phantom_cache):
    """Run the ``unicon-bench`` console script in a subprocess: ``cli(*args, cwd=..., env=...)``."""

    def run(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 300, module: bool = False):
        cmd = ([sys.executable, "-m", "unicon_bench.cli"] if module else _cli_prefix()) + [str(a) for a in args]
        full_env = {**os.environ, **SUBPROCESS_THREADS, "COLUMNS": "200", "UNICON_BENCH_CACHE": str(phantom_cache),
                    **(env or {})}
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)
        proc.elapsed = time.perf_counter() - t0
        return proc

    return run


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def load_json(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def dump_json(data: dict, path: Path) -> Path:
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path
