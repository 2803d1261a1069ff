"""The one loop: for each experience, train the strategy on it, then evaluate every experience.

It produces the trained x evaluated matrix ``R[i][j]`` of every registered metric (``evaluation``;
the primary one, Dice, AUC or C-index, feeds the summary) plus the row of the untrained model
(``trained_upto = -1``, needed for forward transfer), derives the continual-learning summary and the
cost, and writes the result file.
"""

from __future__ import annotations

import os
import platform
import random
import resource
import subprocess
import time
import uuid
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np

from unicon_bench.checkpoint import Progress, Resume, RunCheckpoint
from unicon_bench.config import build_params, load_config_file, load_tuning_info, recorded_params
from unicon_bench.errors import IncompatibleError
from unicon_bench.evaluation import Evaluator
from unicon_bench.metrics.evaluate import Evaluation
from unicon_bench.registry import STRATEGIES
from unicon_bench.results import (
    METRIC_OF_TASK,
    SCHEMA_VERSION,
    RunResult,
    clean_float,
    write_result,
)
from unicon_bench.scenario import ScenarioSpec, get_scenario


class Reporter(Protocol):
    """Progress callbacks (the CLI shows them as rich progress bars)."""

    def phase(self, description: str, total: int) -> None: ...
    def advance(self, done: int, total: int, info: str = "") -> None: ...
    def done(self) -> None: ...


class SilentReporter:
    def phase(self, description: str, total: int) -> None:
        pass

    def advance(self, done: int, total: int, info: str = "") -> None:
        pass

    def done(self) -> None:
        pass


def seed_everything(seed: int) -> None:
    """Seed every RNG the run touches and ask torch for deterministic kernels."""
    import torch

    # cuBLAS needs this before CUDA starts to run its GEMMs deterministically (no effect on CPU)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


def determinism(seed: int) -> dict[str, Any]:
    """The seed and the settings that make a run reproducible, as the result records them."""
    import torch

    return {
        "seed": seed,
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
        "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "intra_op_threads": torch.get_num_threads(),
        "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    }


def plain_evaluation(ev) -> dict[str, Any]:
    """An ``Evaluation`` as plain floats (a checkpoint loads with ``weights_only=True``)."""
    def num(x):
        return None if x is None else float(x)

    return {"values": {k: num(v) for k, v in ev.values.items()},
            "subjects": {k: [num(x) for x in v] for k, v in ev.subjects.items()}}


def _git_commit() -> str | None:
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
        if out.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=here, capture_output=True, text=True, timeout=5
        ).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _pkg(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def environment(device: str, seed: int | None = None) -> dict[str, Any]:
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "avalanche": _pkg("avalanche-lib"),
        "monai": _pkg("monai"),
        "unicon_bench": _pkg("unicon-bench"),
        "git_commit": _git_commit(),
        "platform": f"{platform.system()} {platform.machine()}",
        "device": device,
        "threads": torch.get_num_threads(),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        **({} if seed is None else {"determinism": determinism(seed)}),
    }


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def resolve(strategy: str, scenario: str | ScenarioSpec, quick: bool, config: str | None, overrides: dict[str, Any]):
    """Check names, compatibility and parameters before any heavy work starts."""
    entry = STRATEGIES.entry(strategy)
    spec = scenario if isinstance(scenario, ScenarioSpec) else get_scenario(scenario)
    cls = STRATEGIES.get(strategy)
    if spec.kind not in cls.compatible:
        raise IncompatibleError(
            f"strategy '{entry.name}' does not support {spec.kind}-incremental scenarios like "
            f"'{spec.name}' (it supports: {', '.join(sorted(cls.compatible))})"
        )
    values = {**(load_config_file(config) if config else {}), **overrides}
    params = build_params(cls.params, values)
    return cls, (spec.quick_version() if quick else spec), params


def run(
    strategy: str,
    scenario: str | ScenarioSpec,
    seed: int = 0,
    out: str | Path = "results",
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
) -> tuple[RunResult, Path | None]:
    """Train ``strategy`` over ``scenario`` and write the result file; returns it and its path.

    ``loggers`` (``tensorboard``, ``mlflow``, ``csv``) receive the losses and the matrix as it fills.
    ``on_experience(i, running_average)`` is called after experience ``i`` is trained and evaluated,
    with the mean score over the experiences trained so far (Optuna's pruning; it may raise to stop
    the run). ``validation`` (a fraction) evaluates on a split of the training subjects instead of
    the eval subjects (tuning). With ``out=None`` no file (result or checkpoint) is written and the
    path is ``None``. A checkpoint is saved after every experience (unless ``checkpoints=False``);
    ``resume`` (True: must resume, ``"auto"``: if a checkpoint of this exact run exists) continues an
    interrupted run from its last finished experience (``unicon_bench.checkpoint``).
    """
    reporter = reporter or SilentReporter()
    cls, spec, params = resolve(strategy, scenario, quick, config, overrides or {})
    tuning = load_tuning_info(config) if config else None
    t0 = time.perf_counter()

    def new_progress() -> Progress:
        started = datetime.now(timezone.utc)
        return Progress(run_id=f"s{seed}-{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}", started=started.isoformat())

    ckpt = RunCheckpoint.open("." if out is None else out, spec, strategy, recorded_params(params), seed, quick,
                              resume, new_progress, enabled=checkpoints and out is not None)
    finished = False
    try:
        result, tracker = _run(cls, spec, params, strategy, seed, quick, device, reporter, cache_dir, ckpt, t0,
                               out, loggers, on_experience, validation, tuning)
        path = write_result(result, out, overwrite=False) if out is not None else None
        finished = True
    finally:
        ckpt.close(finished)
    tracker.finish(result, path)
    return result, path


def _run(cls, spec, params, strategy, seed, quick, device, reporter, cache_dir, ckpt: RunCheckpoint, t0: float,
         out, loggers, on_experience=None, validation=None, tuning=None):
    """The loop of ``run``: ``(result, tracker)``, resumed from ``ckpt`` if it holds a checkpoint."""
    seed_everything(seed)
    from unicon_bench.loggers import open_trackers

    prog = ckpt.progress
    tracker = open_trackers(loggers or [], "." if out is None else out, prog.run_id, spec, strategy, seed,
                            recorded_params(params))

    from unicon_bench.data.streams import build_stream
    from unicon_bench.metrics import continual

    stream = build_stream(spec, cache_dir=cache_dir, validation=validation, split_seed=seed)
    strat = cls(params, stream, device=device)
    evaluator = Evaluator(stream)
    n = len(evaluator.evals)
    rows = []  # every metric of each evaluation: the untrained model's, then one per trained experience

    def evaluate_all(label: str) -> list[float]:
        rows.append(evaluator.row(strat, len(rows) - 1, reporter, label))
        return evaluator.primary(rows[-1])

    if ckpt.restore(strat):  # a resumed run continues after its last checkpoint
        rows.extend([Evaluation(**ev) for ev in row] for row in prog.rows)
        evaluator.eval_time_s = prog.eval_time_s
    else:
        prog.init_row = evaluate_all("untrained model")
    matrix, trainable, train_time, init_row = prog.matrix, prog.trainable, prog.train_time, prog.init_row
    for i, row in enumerate([init_row, *matrix]):  # a resumed run's trackers get the rows done before
        tracker.row(i - 1, row)
    for i, exp in enumerate(stream.train_stream):
        if i < len(matrix):
            continue
        reporter.phase(f"train {i + 1}/{n} {spec.experiences[i].name}", 0)

        def on_step(done, total, loss, i=i):
            reporter.advance(done, total, f"loss {loss:.3f}")
            tracker.loss(i, loss)

        strat.on_step = on_step
        t_train = time.perf_counter()
        strat.train(exp)
        train_time.append(time.perf_counter() - t_train)
        trainable.append(int(strat.last_trainable_params()))
        matrix.append(evaluate_all(f"after {spec.experiences[i].name}"))
        tracker.row(i, matrix[-1])
        prog.peak_rss_mb = max(prog.peak_rss_mb, peak_rss_mb())
        prog.rows = [[plain_evaluation(ev) for ev in row] for row in rows]
        prog.eval_time_s = evaluator.eval_time_s
        ckpt.save(strat, elapsed_s=time.perf_counter() - t0)
        if on_experience is not None:
            seen = [v for v in matrix[-1][: i + 1] if clean_float(v) is not None]
            on_experience(i, sum(seen) / len(seen) if seen else None)
    reporter.done()

    summary = {k: clean_float(v) for k, v in continual.summarize(matrix, init_row).items()}
    entries = evaluator.entries(rows)
    return RunResult(
        schema_version=SCHEMA_VERSION,
        run_id=prog.run_id,
        started=prog.started,
        finished=datetime.now(timezone.utc).isoformat(),
        scenario={
            "name": spec.name,
            "version": spec.version,
            "kind": spec.kind,
            "task_identity_at_test": spec.task_identity_at_test,
            "experiences": [e.name for e in spec.experiences],
            "metrics": [METRIC_OF_TASK[k] for k in evaluator.kinds],
            "quick": quick,
            "evaluation": evaluator.settings(),
        },
        strategy={"name": strategy, "params": recorded_params(params)},
        seed=seed,
        matrix=entries,
        per_subject=evaluator.per_subject(rows[-1]),
        summary=summary,
        cost={
            "trainable_params": trainable,
            "total_params": int(strat.total_params()),
            "wall_time_s": prog.elapsed_s + time.perf_counter() - t0,
            "train_time_s": train_time,
            "peak_rss_mb": max(prog.peak_rss_mb, peak_rss_mb()),
            "buffer_bytes": int(strat.buffer_bytes()),
            **strat.cost_fields(),
            "eval_time_s": evaluator.eval_time_s,
        },
        env=environment(device, seed),
        extras=strat.extras(),
        tuning=tuning,
        resumed_after=prog.resumed_after,
    ), tracker


