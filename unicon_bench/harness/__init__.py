"""Running one experiment: resolve the request once, then train and evaluate experience by experience.

- ``request``: ``RunRequest`` (frozen) and ``resolve``: names, scenario and parameters checked once;
- ``loop``: ``execute``, the one loop that fills the trained x evaluated matrix and writes the result;
- ``checkpoint``: save after every experience, resume a killed run to the same final matrix;
- ``provenance``: seeding and the environment a result records (versions, git commit, threads);
- ``reporters``: progress callbacks (silent, rich bars, one line in a sweep's bar);
- ``loggers``: trackers fed as the matrix fills (TensorBoard, MLflow, CSV);
- ``pretrain``: train a scenario's stage 0 once and save it for others to start from.

The harness uses data, metrics, models and results; it never imports the command line or the
leaderboard.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from unicon_bench.harness.checkpoint import Resume
from unicon_bench.harness.loop import execute
from unicon_bench.harness.provenance import environment, seed_everything
from unicon_bench.harness.reporters import Reporter, SilentReporter
from unicon_bench.harness.request import RunRequest, resolve


def run(
    strategy: str,
    scenario: Any,
    seed: int = 0,
    out: str | Path | None = "results",
    quick: bool = False,
    device: str = "cpu",
    config: str | None = None,
    overrides: dict[str, Any] | None = None,
    reporter: Reporter | None = None,
    cache_dir: str | Path | None = None,
    loggers: list[str] | None = None,
    *,
    on_experience: Callable[[int, float | None], None] | None = None,
    validation: float | None = None,
    resume: Resume = False,
    checkpoints: bool = True,
    precision: str | None = None,
):
    """Resolve and execute one run: ``(result, path)``. See ``resolve`` and ``execute`` for the arguments."""
    request = resolve(strategy, scenario, quick, config, overrides, seed=seed, device=device,
                      validation=validation, cache_dir=cache_dir, precision=precision)
    return execute(request, out, reporter, loggers, on_experience=on_experience, resume=resume,
                   checkpoints=checkpoints)


__all__ = ["Reporter", "RunRequest", "SilentReporter", "environment", "execute", "resolve", "run", "seed_everything"]
