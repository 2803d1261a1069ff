"""Running a planned suite: one job per run on an executor, each run claimed so that two sweeps of
one suite into one folder do it once, results written atomically as they arrive, and the account of
what ran, what was already done or left to another sweep, and what failed."""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unicon_bench import harness
from unicon_bench.fileio import check_output_folder
from unicon_bench.harness.reporters import LineReporter
from unicon_bench.results import parse_result, write_result
from unicon_bench.sweep.executors import ExecutorConfig, Outcome, one_line, run_jobs
from unicon_bench.sweep.suite import PlannedRun, Suite, SweepReport, ensure_pretrained, find_existing, plan


@dataclass
class RunJob:
    """One run as an executor ships it to a worker (picklable unless ``reporter`` is set)."""

    run: PlannedRun
    quick: bool
    device: str
    cache_dir: str | None
    reporter: Any = None  # only for runs in this process: feeds the overall bar
    loggers: tuple[str, ...] = ()
    out: str = ""  # absolute; workers write there themselves with loggers or resume (checkpoints)
    resume: bool = False
    precision: str = "fp32"  # resolved by the plan for the sweep's device
    share_dir: str | None = None  # shared stage-0 folder (OUT/.stage0 unless the sweep runs --no-share)


def execute_run(job: RunJob) -> tuple[str, Any, str | None]:
    """Run one job: ``("ok", result JSON, None)``, ``("written", {"path", "resumed_after"}, None)`` or ``("failed", one-line
    error, traceback)``; never raises.

    The worker returns the result instead of writing it, so Ray nodes need no shared file system:
    the driver writes each result file (atomically) as it arrives. With loggers the worker writes it
    itself, beside the loggers' files (on a cluster that needs an output folder every node shares).
    """
    run = job.run
    claim = None
    try:
        request = harness.resolve(run.strategy, run.scenario, job.quick, None, run.overrides, seed=run.seed,
                                  device=job.device, cache_dir=job.cache_dir, precision=job.precision,
                                  share_dir=job.share_dir)
        if job.out and job.resume:  # the worker writes the result itself: claim the run for as long as it lasts
            claim = _claim(request, Path(job.out))
            if claim is None:
                return "elsewhere", None, None
        result, path = harness.execute(request, job.out if job.loggers or job.resume else None, job.reporter,
                                       list(job.loggers), resume="auto" if job.resume else False)
        if path is not None:
            return "written", {"path": str(path), "resumed_after": list(result.resumed_after)}, None
        return "ok", result.model_dump(mode="json"), None
    except Exception as exc:  # noqa: BLE001 - one failing run must not stop the sweep
        return "failed", one_line(exc), traceback.format_exc()
    finally:
        if claim is not None:
            os.close(claim)


STAGE0 = ".stage0"  # under the output folder: the shared stage-0 states of the sweep's runs
CLAIMS = ".sweep-claims"  # under the output folder: one lock file per run a sweep has claimed


def _claim(request: harness.RunRequest, out: Path) -> int | None:
    """An exclusive lock on this run for this process, or None when another sweep holds it or has
    written its result meanwhile (two sweeps of one suite into one folder then do each run once).

    The kernel drops the lock when the process ends, even by SIGKILL; the lock files stay (removing
    a lock file that another process may be opening would let two processes hold "the" lock)."""
    from unicon_bench.harness.checkpoint import lock_file, run_key

    key = run_key(request.spec, request.strategy, request.recorded_params, request.seed, request.quick,
                  request.precision)
    folder = out / CLAIMS
    folder.mkdir(parents=True, exist_ok=True)
    fd = lock_file(folder / f"{key}.lock")
    if fd is not None and request.seed in find_existing(out, request.spec, request.strategy, request.quick,
                                                        request.recorded_params, request.precision):
        os.close(fd)  # finished by another sweep between our plan and our claim
        return None
    return fd


def run_suite(
    suite: Suite,
    out: str | Path | None = None,
    device: str = "cpu",
    cache_dir: str | Path | None = None,
    console=None,
    loggers: list[str] | None = None,
    executor: ExecutorConfig | None = None,
    resume: bool = True,
    precision: str | None = None,
    share: bool = True,
) -> SweepReport:
    """Run every planned run not done yet; failures are recorded, not raised.

    With ``resume`` (the default) a run interrupted earlier continues from its last checkpoint.

    ``executor`` (default: local, one run at a time in this process) picks where runs go: a local
    process pool or Ray tasks (``unicon_bench.sweep.executors``); each run writes its own result file
    atomically, so workers never conflict. With a rich ``console`` an overall progress bar shows the
    runs done and the current phase (in this process) or the runs in flight (pool, Ray).
    ``loggers`` go to every run (``unicon_bench.harness.loggers``). A ``pretrain`` suite first trains (or
    finds) each scenario's stage 0. ``precision`` (fp32, bf16, auto) overrides the suite's ``precision``.
    With ``share`` (the default) the strategies of a stage-0 family share experience 0 through
    ``OUT/.stage0`` (``unicon_bench.strategy.stage0``: the results are bit-identical to training it in
    every run; each result records the stage 0 it started from).
    """
    executor = executor or ExecutorConfig()
    if suite.pretrain_params() is not None:
        check_output_folder(out if out is not None else suite.out, "sweep output folder")
        ensure_pretrained(suite, out if out is not None else suite.out, device=device, cache_dir=cache_dir,
                          console=console, precision=precision)
    report = plan(suite, out, device, precision)
    if report.todo:  # a read-only or mistyped output folder fails now, before the first run trains
        check_output_folder(report.out, "sweep output folder")
    progress = task = None
    if console is not None and report.todo:
        from unicon_bench.harness.reporters import progress_bar

        progress = progress_bar(console, "info")
        where = "" if executor.in_process else f" ({executor.kind})"
        task = progress.add_task(f"sweep {suite.name}{where}", total=len(report.todo), info="")
    jobs = []
    for run in report.todo:
        reporter = None
        if progress is not None and executor.in_process:
            label = run.label()
            reporter = LineReporter(
                lambda text, label=label: progress.update(task, info=f"{label}: {text}" if text else label)
            )
        jobs.append(RunJob(run, suite.quick, device, None if cache_dir is None else str(Path(cache_dir).resolve()),
                           reporter, tuple(loggers or ()), str(Path(report.out).resolve()), resume, report.precision,
                           str(Path(report.out).resolve() / STAGE0) if share else None))

    def done(outcome: Outcome) -> None:
        run = report.todo[outcome.index]
        status, detail, trace = outcome.value if outcome.error is None else ("failed", outcome.error, outcome.trace)
        if status == "written":
            report.completed.append((run, Path(detail["path"])))
            if detail["resumed_after"]:
                report.resumed.append((run, detail["resumed_after"][-1]))
        elif status == "ok":
            report.completed.append((run, write_result(parse_result(detail, run.label()), report.out)))
        elif status == "elsewhere":
            report.elsewhere.append(run)
        else:
            report.failed.append((run, detail, trace))
        if progress is not None:
            progress.advance(task)

    def tick(running: int) -> None:
        if progress is not None:
            progress.update(task, info=f"{running} run(s) in flight")

    try:
        run_jobs(execute_run, jobs, executor, done, tick)
    finally:
        if progress is not None:
            progress.stop()
    return report


def summary_lines(report: SweepReport) -> list[str]:
    """A plain-text account of the sweep for the terminal."""
    lines = [
        f"suite {report.suite}: {len(report.completed)} ran, {len(report.existing)} already done, "
        f"{len(report.incompatible)} incompatible pairs skipped, {len(report.failed)} failed (results in {report.out})"
    ]
    if report.elsewhere:
        lines.append(f"  {len(report.elsewhere)} run(s) left to another sweep of this folder (running or done there)")
    for run, done in report.resumed:
        lines.append(f"  resumed from a checkpoint after {done} experience(s): {run.label()}")
    for strategy, scenario, _why in report.incompatible:
        lines.append(f"  skipped (incompatible): {strategy} on {scenario}")
    for run, error, _tb in report.failed:
        lines.append(f"  FAILED: {run.label()}: {error}")
    return lines
