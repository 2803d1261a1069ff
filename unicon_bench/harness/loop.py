"""The one loop: for each experience, train the strategy on it, then evaluate every experience.

It produces the trained x evaluated matrix ``R[i][j]`` of every registered metric (``metrics.evaluator``;
the primary one, Dice, AUC or C-index, feeds the summary) plus the row of the untrained model
(``trained_upto = -1``, needed for forward transfer), derives the continual-learning summary and the
cost, and writes the result file.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from unicon_bench.fileio import check_output_folder
from unicon_bench.harness.checkpoint import Progress, Resume, RunCheckpoint
from unicon_bench.harness.provenance import environment, peak_rss_mb, seed_everything
from unicon_bench.harness.reporters import Reporter, SilentReporter
from unicon_bench.harness.request import RunRequest
from unicon_bench.metrics.evaluate import Evaluation
from unicon_bench.metrics.evaluator import Evaluator
from unicon_bench.results import METRIC_OF_TASK, SCHEMA_VERSION, RunResult, clean_float, write_result


def plain_evaluation(ev: Evaluation) -> dict[str, Any]:
    """An ``Evaluation`` as plain floats (a checkpoint loads with ``weights_only=True``)."""
    def num(x):
        return None if x is None else float(x)

    return {"values": {k: num(v) for k, v in ev.values.items()},
            "subjects": {k: [num(x) for x in v] for k, v in ev.subjects.items()}}


def execute(
    request: RunRequest,
    out: str | Path | None = "results",
    reporter: Reporter | None = None,
    loggers: list[str] | None = None,
    *,
    on_experience: Callable[[int, float | None], None] | None = None,
    resume: Resume = False,
    checkpoints: bool = True,
) -> tuple[RunResult, Path | None]:
    """Run ``request`` and write its result file; returns the result and its path.

    ``loggers`` (``tensorboard``, ``mlflow``, ``csv``) receive the losses and the matrix as it fills.
    ``on_experience(i, running_average)`` is called after experience ``i`` is trained and evaluated,
    with the mean score over the experiences trained so far (Optuna's pruning; it may raise to stop
    the run). With ``out=None`` no file (result or checkpoint) is written and the path is ``None``. A
    checkpoint is saved after every experience (unless ``checkpoints=False``); ``resume`` (True: must
    resume, ``"auto"``: if a checkpoint of this exact run exists) continues an interrupted run from
    its last finished experience (``unicon_bench.harness.checkpoint``).
    """
    t0 = time.perf_counter()
    if out is not None:
        check_output_folder(out)  # a read-only or mistyped --out fails now, not after the first experience

    def new_progress() -> Progress:
        started = datetime.now(timezone.utc)
        return Progress(run_id=f"s{request.seed}-{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}",
                        started=started.isoformat())

    ckpt = RunCheckpoint.open("." if out is None else out, request.spec, request.strategy, request.recorded_params,
                              request.seed, request.quick, resume, new_progress,
                              enabled=checkpoints and out is not None, precision=request.precision)
    finished = False
    try:
        from unicon_bench.harness.loggers import open_trackers

        tracker = open_trackers(loggers or [], "." if out is None else out, ckpt.progress.run_id, request.spec,
                                request.strategy, request.seed, request.recorded_params)
        from unicon_bench.strategy.base import PRECISION

        token = PRECISION.set(request.precision)  # every autocast of this run, plugins' included
        try:
            result = _loop(request, ckpt, tracker, reporter or SilentReporter(), on_experience, t0)
        finally:
            PRECISION.reset(token)
        path = write_result(result, out, overwrite=False) if out is not None else None
        finished = True
    finally:
        ckpt.close(finished)
    tracker.finish(result, path)
    return result, path


def _loop(request: RunRequest, ckpt: RunCheckpoint, tracker, reporter: Reporter, on_experience, t0: float) -> RunResult:
    """Train and evaluate experience after experience, resumed from ``ckpt`` if it holds a checkpoint."""
    seed_everything(request.seed)
    from unicon_bench.data.streams import build_stream
    from unicon_bench.metrics import continual

    spec, prog = request.spec, ckpt.progress
    stream = build_stream(spec, cache_dir=request.cache_dir, validation=request.validation, split_seed=request.seed)
    strat = request.strategy_cls(request.params, stream, device=request.device)
    evaluator = Evaluator(stream)
    n = len(evaluator.evals)
    rows: list[list[Evaluation]] = []  # every metric of each evaluation: the untrained model's, then one per experience

    def evaluate_all(label: str) -> None:
        rows.append(evaluator.row(strat, len(rows) - 1, reporter, label))
        tracker.row(len(rows) - 2, evaluator.primary(rows[-1]))

    resumed = ckpt.restore(strat)
    if not resumed:
        _share_stage0(request, strat)
    if resumed:  # a resumed run continues after its last checkpoint
        rows.extend([Evaluation(**ev) for ev in row] for row in prog.rows)
        evaluator.eval_time_s = prog.eval_time_s
        for i, row in enumerate(rows):  # the trackers get the rows done before
            tracker.row(i - 1, evaluator.primary(row))
    else:
        evaluate_all("untrained model")
    for i, exp in enumerate(stream.train_stream):
        if i < len(rows) - 1:
            continue
        reporter.phase(f"train {i + 1}/{n} {spec.experiences[i].name}", 0)

        def on_step(done, total, loss, i=i):
            reporter.advance(done, total, f"loss {loss:.3f}")
            tracker.loss(i, loss)

        strat.on_step = on_step
        t_train = time.perf_counter()
        strat.train(exp)
        prog.train_time.append(time.perf_counter() - t_train)
        prog.trainable.append(int(strat.last_trainable_params()))
        evaluate_all(f"after {spec.experiences[i].name}")
        prog.peak_rss_mb = max(prog.peak_rss_mb, peak_rss_mb())
        prog.rows = [[plain_evaluation(ev) for ev in row] for row in rows]
        prog.eval_time_s = evaluator.eval_time_s
        ckpt.save(strat, elapsed_s=time.perf_counter() - t0)
        if on_experience is not None:
            seen = [v for v in evaluator.primary(rows[-1])[: i + 1] if clean_float(v) is not None]
            on_experience(i, sum(seen) / len(seen) if seen else None)
    reporter.done()

    init_row, *matrix = [evaluator.primary(row) for row in rows]
    summary = {k: clean_float(v) for k, v in continual.summarize(matrix, init_row).items()}
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
            "quick": request.quick,
            "evaluation": evaluator.settings(),
        },
        strategy={"name": request.strategy, "params": request.recorded_params},
        seed=request.seed,
        matrix=evaluator.entries(rows),
        per_subject=evaluator.per_subject(rows),
        summary=summary,
        cost={
            "trainable_params": prog.trainable,
            "total_params": int(strat.total_params()),
            "wall_time_s": prog.elapsed_s + time.perf_counter() - t0,
            "train_time_s": prog.train_time,
            "peak_rss_mb": max(prog.peak_rss_mb, peak_rss_mb()),
            "buffer_bytes": int(strat.buffer_bytes()),
            **strat.cost_fields(),
            "eval_time_s": evaluator.eval_time_s,
        },
        env=environment(request.device, request.seed, request.precision),
        extras=strat.extras(),
        tuning=request.tuning,
        resumed_after=prog.resumed_after,
        stage0=getattr(strat, "stage0_used", None),
    )


def _share_stage0(request: RunRequest, strat) -> None:
    """Give the strategy the shared stage-0 store of its family, when sharing is on and it can share."""
    family = getattr(strat, "stage0_family", None)
    if request.share_dir is None or family is None or strat.foundation.stage0 is not None or request.validation:
        return  # off, a strategy whose experience 0 is its own, a pretrain-folder stage 0, or a tuning trial
    from unicon_bench.strategy.stage0 import Stage0Store, stage0_key

    key = stage0_key(family, request.spec, request.seed, strat.stage0_params(), request.precision, request.device)
    strat.stage0_store = Stage0Store(request.share_dir, key)
