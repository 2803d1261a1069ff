"""Suites: run the cross product strategies x scenarios x seeds listed in a YAML file.

A suite file looks like::

    name: default
    strategies: all            # or a list of names
    scenarios: [ct_to_pet]     # or "all"
    seeds: [0, 1, 2]           # or a count: 3 means seeds 0, 1, 2
    quick: false
    out: results/              # relative to the working directory
    params:                    # optional, per strategy
      replay: {mem_size: 50}
    pretrain: true             # optional: train stage 0 once per scenario, every strategy reuses it
                               # (or a mapping: {seed: 0, backbone: swin_unetr, epochs: 20, ...})

Sweeps are resumable: a run interrupted mid-way continues from its last checkpoint (see
``unicon_bench.harness.checkpoint``), and a run is skipped when ``<out>/<scenario>/<strategy>/`` already holds a valid
result with the same scenario name and version, strategy name, seed, quick flag and parameters.
Incompatible strategy x scenario pairs are listed as skipped, not failed; a failing run is recorded
and the others still run.

With ``pretrain``, stage 0 of each scenario (``unicon_bench.harness.pretrain``) is trained once into
``<out>/pretrain/<scenario>[-quick]/`` (kept and reused by a resumed sweep) and every strategy gets
``backbone_weights`` = that folder (and the pretrain's ``backbone``/``backbone_options``), so no run
trains the first experience itself.
"""

from __future__ import annotations

import json
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from unicon_bench import harness
from unicon_bench.harness.reporters import LineReporter
from unicon_bench.harness.request import check_params, check_seed, recorded_params
from unicon_bench.errors import ConfigError, IncompatibleError, UniconBenchError
from unicon_bench.sweep.executors import ExecutorConfig, Outcome, one_line, run_jobs
from unicon_bench.fileio import Int, check_output_folder, read_yaml_mapping, validate
from unicon_bench.registry import list_strategies
from unicon_bench.results import ResultError, parse_result, read_result, write_result
from unicon_bench.scenario import list_scenarios


MAX_SEEDS = 10_000  # a seed count beyond this is a typo, not a sweep


class Suite(BaseModel):
    """A validated suite file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    strategies: list[str] | Literal["all"] = Field(min_length=1)
    scenarios: list[str] | Literal["all"] = Field(min_length=1)
    seeds: list[Int] | Int = Field(description="a list of seeds, or a count N meaning seeds 0..N-1")
    quick: bool = False
    out: str = "results"
    params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    pretrain: bool | dict[str, Any] = Field(False, description="train stage 0 once per scenario and share it")

    @field_validator("seeds", "params", "pretrain")
    @classmethod
    def _values(cls, value: Any, info: ValidationInfo) -> Any:
        """Seeds in range; known strategies' known parameters (and stage 0's) coerced and checked as a run
        would, at load (unknown names and keys are reported by ``load_suite`` and ``plan``)."""
        try:
            if info.field_name == "seeds":
                for seed in value if isinstance(value, list) else []:
                    check_seed(seed, "each seed")
            elif info.field_name == "params":
                for name, values in value.items():
                    if name in list_strategies():
                        check_params(name, values)
            elif isinstance(value, dict):
                from unicon_bench.harness.pretrain import STAGE0_KEYS, STRATEGY

                check_seed(value.get("seed", 0), "pretrain seed")
                check_params(STRATEGY, {k: v for k, v in value.items() if k in STAGE0_KEYS})
        except UniconBenchError as exc:
            raise ValueError(str(exc)) from None
        return value

    def pretrain_params(self) -> dict[str, Any] | None:
        """Stage-0 parameters (``seed`` taken out), or None without ``pretrain``."""
        if self.pretrain is False:
            return None
        return {k: v for k, v in (self.pretrain if isinstance(self.pretrain, dict) else {}).items() if k != "seed"}

    def pretrain_seed(self) -> int:
        return int(self.pretrain.get("seed", 0)) if isinstance(self.pretrain, dict) else 0

    def strategy_names(self) -> list[str]:
        return list_strategies() if self.strategies == "all" else list(self.strategies)

    def scenario_names(self) -> list[str]:
        return list_scenarios() if self.scenarios == "all" else list(self.scenarios)

    def seed_list(self) -> list[int]:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)


def load_suite(path: str | Path) -> Suite:
    """Parse and validate a suite YAML file; any problem is one ``ConfigError``."""
    raw = read_yaml_mapping(path, "suite", " (name, strategies, scenarios, seeds, ...)")
    suite = validate(Suite, raw, f"invalid suite {path}")
    if isinstance(suite.seeds, int) and suite.seeds > MAX_SEEDS:
        raise ConfigError(f"invalid suite {path}: seeds: a count of at most {MAX_SEEDS}, got {suite.seeds}")
    seeds = suite.seed_list()
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ConfigError(f"invalid suite {path}: seeds must be distinct non-negative integers (or a positive count)")
    for kind, names, known in (
        ("strategy", suite.strategy_names(), list_strategies()),
        ("scenario", suite.scenario_names(), list_scenarios()),
    ):
        for name in names:
            if name not in known and not (kind == "scenario" and name.endswith((".yaml", ".yml"))):
                raise ConfigError(f"invalid suite {path}: unknown {kind} '{name}'; available: {', '.join(known)}")
    extra = sorted(set(suite.params) - set(suite.strategy_names()))
    if extra:
        raise ConfigError(f"invalid suite {path}: params given for strategies not in the suite: {', '.join(extra)}")
    if suite.pretrain_params() is not None:
        from unicon_bench.harness.pretrain import STAGE0_KEYS

        bad = sorted(set(suite.pretrain_params()) - set(STAGE0_KEYS))
        clash = sorted(s for s, p in suite.params.items() if "backbone_weights" in p)
        if bad:
            raise ConfigError(f"invalid suite {path}: pretrain: unknown key(s) {', '.join(bad)}; known: seed, {', '.join(STAGE0_KEYS)}")
        if clash:
            raise ConfigError(f"invalid suite {path}: pretrain gives every strategy its backbone_weights; "
                              f"remove backbone_weights from the params of {', '.join(clash)}")
    return suite


def pretrain_folder(out: str | Path, scenario: str, quick: bool) -> Path:
    from unicon_bench.scenario import get_scenario

    return Path(out) / "pretrain" / (get_scenario(scenario).name + ("-quick" if quick else ""))


def ensure_pretrained(suite: Suite, out: str | Path, device: str = "cpu", cache_dir=None, console=None) -> dict[str, Path]:
    """Per scenario, the stage-0 checkpoint folder of a ``pretrain`` suite (trained unless reusable)."""
    from unicon_bench.harness.pretrain import pretrain, reusable

    folders = {}
    for scenario in suite.scenario_names():
        folder = pretrain_folder(out, scenario, suite.quick)
        params, seed = suite.pretrain_params(), suite.pretrain_seed()
        if not reusable(folder, scenario, suite.quick, seed, params):
            if console is not None:
                console.print(f"pretraining stage 0 of {scenario} (seed {seed}) into {folder}")
            pretrain(scenario, folder, seed=seed, quick=suite.quick, device=device, overrides=params, cache_dir=cache_dir)
        folders[scenario] = folder
    return folders


def _overrides(suite: Suite, strategy: str, scenario: str, out: Path) -> dict[str, Any]:
    """A strategy's parameters in the suite, plus the shared stage 0 of a ``pretrain`` suite."""
    overrides = dict(suite.params.get(strategy, {}))
    stage0 = suite.pretrain_params()
    if stage0 is not None:
        overrides["backbone_weights"] = str(pretrain_folder(out, scenario, suite.quick))
        for key in ("backbone", "backbone_options"):
            if key in stage0:
                overrides[key] = stage0[key]
    return overrides


@dataclass(frozen=True)
class PlannedRun:
    strategy: str
    scenario: str
    seed: int
    overrides: dict[str, Any] = field(default_factory=dict, compare=False)

    def label(self) -> str:
        return f"{self.strategy} on {self.scenario}, seed {self.seed}"


@dataclass
class SweepReport:
    """What a sweep did; ``failed`` holds ``(run, one-line error, traceback)``."""

    suite: str
    out: Path
    completed: list[tuple[PlannedRun, Path]] = field(default_factory=list)
    existing: list[tuple[PlannedRun, Path]] = field(default_factory=list)
    incompatible: list[tuple[str, str, str]] = field(default_factory=list)
    failed: list[tuple[PlannedRun, str, str]] = field(default_factory=list)
    todo: list[PlannedRun] = field(default_factory=list)
    resumed: list[tuple[PlannedRun, int]] = field(default_factory=list)  # (run, experiences it resumed after)

    @property
    def ok(self) -> bool:
        return not self.failed


def _normalised(params: dict) -> Any:
    """Parameters as they read back from a result JSON (tuples become lists, ...)."""
    return json.loads(json.dumps(params))


def find_existing(out: Path, spec, strategy: str, quick: bool, params: dict) -> dict[int, Path]:
    """Per seed, the first valid result of exactly this run in ``out`` (each file read once)."""
    folder = Path(out) / spec.name / strategy
    if not folder.is_dir():
        return {}
    wanted = _normalised(params)
    found: dict[int, Path] = {}
    for path in sorted(folder.glob("*.json")):
        try:
            r = read_result(path)
        except ResultError:
            continue
        if (
            r.scenario.name == spec.name
            and r.scenario.version == spec.version
            and r.strategy.name == strategy
            and r.scenario.quick == quick
            and _normalised(r.strategy.params) == wanted
        ):
            found.setdefault(r.seed, path)
    return found


def plan(suite: Suite, out: str | Path | None = None) -> SweepReport:
    """Resolve every pair (names, compatibility, parameters) and find the runs already done.

    Raises ``ConfigError`` for parameters that do not fit a strategy: the suite itself is wrong.
    """
    out_dir = Path(out if out is not None else suite.out)
    report = SweepReport(suite=suite.name, out=out_dir)
    for scenario in suite.scenario_names():
        for strategy in suite.strategy_names():
            overrides = _overrides(suite, strategy, scenario, out_dir)
            try:
                request = harness.resolve(strategy, scenario, suite.quick, None, overrides)
                spec, params = request.spec, request.params
            except IncompatibleError as exc:
                report.incompatible.append((strategy, scenario, str(exc)))
                continue
            except UniconBenchError as exc:
                raise ConfigError(f"suite '{suite.name}': {strategy} on {scenario}: {exc}") from None
            existing = find_existing(out_dir, spec, strategy, suite.quick, recorded_params(params))
            for seed in suite.seed_list():
                run = PlannedRun(strategy, scenario, seed, overrides)
                done = existing.get(seed)
                if done is not None:
                    report.existing.append((run, done))
                else:
                    report.todo.append(run)
    return report


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


def execute_run(job: RunJob) -> tuple[str, Any, str | None]:
    """Run one job: ``("ok", result JSON, None)``, ``("written", {"path", "resumed_after"}, None)`` or ``("failed", one-line
    error, traceback)``; never raises.

    The worker returns the result instead of writing it, so Ray nodes need no shared file system:
    the driver writes each result file (atomically) as it arrives. With loggers the worker writes it
    itself, beside the loggers' files (on a cluster that needs an output folder every node shares).
    """
    run = job.run
    try:
        result, path = harness.run(
            run.strategy, run.scenario, seed=run.seed, out=job.out if job.loggers or job.resume else None,
            quick=job.quick, device=job.device, overrides=run.overrides, reporter=job.reporter,
            cache_dir=job.cache_dir, loggers=list(job.loggers), resume="auto" if job.resume else False,
        )
        if path is not None:
            return "written", {"path": str(path), "resumed_after": list(result.resumed_after)}, None
        return "ok", result.model_dump(mode="json"), None
    except Exception as exc:  # noqa: BLE001 - one failing run must not stop the sweep
        return "failed", one_line(exc), traceback.format_exc()


def run_suite(
    suite: Suite,
    out: str | Path | None = None,
    device: str = "cpu",
    cache_dir: str | Path | None = None,
    console=None,
    loggers: list[str] | None = None,
    executor: ExecutorConfig | None = None,
    resume: bool = True,
) -> SweepReport:
    """Run every planned run not done yet; failures are recorded, not raised.

    With ``resume`` (the default) a run interrupted earlier continues from its last checkpoint.

    ``executor`` (default: local, one run at a time in this process) picks where runs go: a local
    process pool or Ray tasks (``unicon_bench.sweep.executors``); each run writes its own result file
    atomically, so workers never conflict. With a rich ``console`` an overall progress bar shows the
    runs done and the current phase (in this process) or the runs in flight (pool, Ray).
    ``loggers`` go to every run (``unicon_bench.harness.loggers``). A ``pretrain`` suite first trains (or
    finds) each scenario's stage 0.
    """
    executor = executor or ExecutorConfig()
    if suite.pretrain_params() is not None:
        check_output_folder(out if out is not None else suite.out, "sweep output folder")
        ensure_pretrained(suite, out if out is not None else suite.out, device=device, cache_dir=cache_dir, console=console)
    report = plan(suite, out)
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
                           reporter, tuple(loggers or ()), str(Path(report.out).resolve()), resume))

    def done(outcome: Outcome) -> None:
        run = report.todo[outcome.index]
        status, detail, trace = outcome.value if outcome.error is None else ("failed", outcome.error, outcome.trace)
        if status == "written":
            report.completed.append((run, Path(detail["path"])))
            if detail["resumed_after"]:
                report.resumed.append((run, detail["resumed_after"][-1]))
        elif status == "ok":
            report.completed.append((run, write_result(parse_result(detail, run.label()), report.out)))
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
    for run, done in report.resumed:
        lines.append(f"  resumed from a checkpoint after {done} experience(s): {run.label()}")
    for strategy, scenario, _why in report.incompatible:
        lines.append(f"  skipped (incompatible): {strategy} on {scenario}")
    for run, error, _tb in report.failed:
        lines.append(f"  FAILED: {run.label()}: {error}")
    return lines
