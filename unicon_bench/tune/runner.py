"""Hyper-parameter tuning with Optuna: ``unicon-bench tune``.

A study (``unicon_bench.tune.study``) searches the space declared beside the strategy's params
dataclass (``search_space``); parameters given with ``--set`` are fixed and left out of the search.
Every trial trains on the scenario's training subjects minus a validation split carved from them (``data.streams``) and is
scored on that split, never on the eval subjects. After each experience the harness reports the
running average, and a MedianPruner stops trials that fall below the median of earlier trials at the
same experience. The study lives in an Optuna RDB storage - by default a SQLite file in the output
folder; a PostgreSQL URL lets tune processes on several machines share one study. Trials run in this
process, in a local process pool or as Ray tasks (``unicon_bench.sweep.executors``), one job per trial.

Outputs in ``<out>/<study>/``: ``best_params.yaml`` (``params:`` that ``run --config`` accepts and a
``tuning:`` block the result of that run records), ``pareto.yaml`` for multi-objective studies and
``trials.csv``.
"""

from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unicon_bench.errors import ConfigError
from unicon_bench.harness.request import check_seed
from unicon_bench.fileio import SAFE_NAME, check_output_folder, inside
from unicon_bench.sweep.executors import ExecutorConfig, Outcome, run_jobs
from unicon_bench.tune.study import (
    COSTS,
    TuneSpec,
    best_trial,
    check_space,
    describe_best,
    finished,
    objective,
    open_study,
    parse_objective,
    quiet_optuna,
    run_trial,
    storage_kind,
)


def build_spec(
    strategy: str,
    scenario: str,
    *,
    out: str | Path = "tuning",
    storage: str | None = None,
    study_name: str | None = None,
    fixed: dict[str, Any] | None = None,
    objective: str = "final_average",
    cost: str | None = None,
    quick: bool = False,
    seed: int = 0,
    device: str = "cpu",
    validation: float = 0.25,
    pruning: bool = True,
    prune_after: int = 3,
    cache_dir: str | Path | None = None,
    sampler_seed: int | None = None,
    budget_minutes: float | None = None,
    space: dict[str, tuple] | None = None,
    precision: str | None = None,
) -> TuneSpec:
    """Check everything (names, fixed parameters, space, objective, storage) before any trial runs.

    ``precision`` (fp32, bf16, auto/None: the device's default) is every trial's; the default study name
    ends in ``-bf16`` for bf16 so that the two precisions never share a study."""
    from unicon_bench import harness

    request = harness.resolve(strategy, scenario, quick, None, dict(fixed or {}), seed=seed, device=device,
                              cache_dir=cache_dir, precision=precision)
    if sampler_seed is not None:
        check_seed(sampler_seed, "--sampler-seed")
    cls, scen, params = request.strategy_cls, request.spec, request.params
    names = {f.name for f in dataclasses.fields(cls.params)}
    typed = _plain({k: getattr(params, k) for k in (fixed or {})})
    space = {k: v for k, v in (cls.params.search_space if space is None else space).items() if k not in typed}
    check_space(space, names)
    if not space:
        raise ConfigError(f"nothing to tune for {strategy}: every parameter of its search space is fixed by --set")
    parse_objective(objective)
    if cost is not None and cost not in COSTS:
        raise ConfigError(f"unknown second objective '{cost}'; use one of {', '.join(COSTS)}")
    if not 0.0 < validation < 1.0:
        raise ConfigError(f"--validation must be a fraction in (0, 1), got {validation}")
    if study_name is not None and not re.match(SAFE_NAME, study_name):
        raise ConfigError(f"--study-name {study_name!r}: a study name names the folder OUT/STUDY of its outputs; "
                          "use letters, digits, '.', '_' and '-' (starting with a letter or digit)")
    check_output_folder(out, "tune --out")
    if storage is None:
        Path(out).mkdir(parents=True, exist_ok=True)
        storage = f"sqlite:///{(Path(out) / 'optuna.db').resolve()}"
    storage_kind(storage)
    return TuneSpec(
        strategy=strategy, scenario=str(scenario), storage=storage,
        study_name=study_name or f"{strategy}-{scen.name}" + ("-quick" if quick else "")
        + ("" if request.precision == "fp32" else f"-{request.precision}"),
        space=space, fixed=typed, objective=objective, cost=cost, quick=quick, seed=seed, device=device,
        validation=validation, pruning=pruning, prune_after=prune_after,
        cache_dir=None if cache_dir is None else str(Path(cache_dir).resolve()), sampler_seed=sampler_seed,
        deadline=None if budget_minutes is None else time.time() + 60.0 * budget_minutes,
        precision=request.precision,
    )


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """Parameter values as YAML/JSON write them (tuples become lists)."""
    import json

    return json.loads(json.dumps(values))


@dataclass
class TuneReport:
    """What a tune command did and wrote."""

    study_name: str
    ran: int = 0
    pruned: int = 0
    failed: list[str] = field(default_factory=list)
    total: int = 0  # finished trials in the study, from every process that contributed
    best: str = ""
    best_params: Path | None = None
    pareto: Path | None = None
    trials_csv: Path | None = None


class _TrialBar:
    """A rich bar over this command's trials whose text is the study's best value so far."""

    def __init__(self, console, study, trials: int):
        from unicon_bench.harness.reporters import progress_bar

        self.study, self.start = study, {t.number for t in finished(study)}
        self.progress = progress_bar(console, "info")
        self.task = self.progress.add_task(f"tune {study.study_name}", total=trials, info="")

    def refresh(self, *_args) -> None:
        done = len({t.number for t in finished(self.study)} - self.start)
        self.progress.update(self.task, completed=done, info=describe_best(self.study))

    def stop(self) -> None:
        self.refresh()
        self.progress.stop()


def run_tuning(spec: TuneSpec, trials: int, executor: ExecutorConfig | None = None, out: str | Path = "tuning",
               console=None) -> TuneReport:
    """Run ``trials`` trials of the study (here, in a process pool or as Ray tasks) and write its outputs."""
    import optuna

    if trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {trials}")
    executor = executor or ExecutorConfig()
    quiet_optuna()
    study = open_study(spec, spec.sampler_seed)
    waiting = optuna.trial.TrialState.WAITING  # enqueued trials are run by whoever comes first
    before = {t.number for t in study.get_trials(deepcopy=False) if t.state != waiting}
    bar = _TrialBar(console, study, trials) if console is not None else None
    errors: list[str] = []  # jobs that could not even run their trial (storage unreachable, worker lost)
    try:
        if executor.in_process:
            timeout = None if spec.deadline is None else max(0.0, spec.deadline - time.time())
            study.optimize(lambda t: objective(t, spec), n_trials=trials, timeout=timeout, catch=(Exception,),
                           callbacks=[bar.refresh] if bar else None)
        else:
            seeds = [None if spec.sampler_seed is None else spec.sampler_seed + i for i in range(trials)]

            def done(outcome: Outcome) -> None:
                if outcome.error:
                    errors.append(outcome.error)
                if bar:
                    bar.refresh()

            run_jobs(run_trial, [(spec, s) for s in seeds], executor, done, bar.refresh if bar else None)
    finally:
        if bar:
            bar.stop()
    mine = [t for t in study.get_trials(deepcopy=False) if t.number not in before]
    states = optuna.trial.TrialState
    report = TuneReport(
        study_name=spec.study_name, ran=sum(t.state == states.COMPLETE for t in mine),
        pruned=sum(t.state == states.PRUNED for t in mine),
        failed=[f"trial {t.number}: {t.user_attrs.get('error', 'failed (objective undefined, e.g. NaN)')}"
                for t in mine if t.state == states.FAIL] + [f"job: {e}" for e in errors],
        total=len(finished(study)), best=describe_best(study),
    )
    write_outputs(study, spec, inside(out, spec.study_name), report)
    return report


def write_outputs(study, spec: TuneSpec, folder: Path, report: TuneReport) -> None:
    """``best_params.yaml`` (and ``pareto.yaml``), ``trials.csv``; nothing but the CSV without a complete trial."""
    import yaml

    from unicon_bench.results import atomic_write_text

    folder.mkdir(parents=True, exist_ok=True)
    report.trials_csv = folder / "trials.csv"
    atomic_write_text(report.trials_csv, study.trials_dataframe().to_csv(index=False))
    best = best_trial(study)
    if best is None:
        return
    objectives = spec.objective if not spec.cost else [spec.objective, spec.cost]
    tuning = {"study": spec.study_name, "trials": report.total, "storage": storage_kind(spec.storage),
              "objective": objectives, "best_trial": best.number, "best_value": best.values[0],
              "strategy": spec.strategy, "scenario": spec.scenario, "quick": spec.quick, "seed": spec.seed,
              "validation": spec.validation, "precision": spec.precision, "searched": sorted(spec.space)}
    header = (f"# Best parameters of Optuna study {spec.study_name} ({report.total} trials, scored on a validation\n"
              f"# split of the training subjects). Use them with:\n"
              f"#   unicon-bench run --strategy {spec.strategy} --scenario {spec.scenario}"
              f"{' --quick' if spec.quick else ''} --precision {spec.precision} --config {folder / 'best_params.yaml'}\n")
    body = {"params": {**spec.fixed, **best.params}, "tuning": tuning}
    report.best_params = folder / "best_params.yaml"
    atomic_write_text(report.best_params, header + yaml.safe_dump(body, sort_keys=False))
    if spec.cost:
        front = [{"trial": t.number, "score": t.values[0], COSTS[spec.cost]: t.values[1],
                  "params": {**spec.fixed, **t.params}}
                 for t in sorted(study.best_trials, key=lambda t: -t.values[0])]
        report.pareto = folder / "pareto.yaml"
        atomic_write_text(report.pareto, yaml.safe_dump({"study": spec.study_name, "objectives": objectives,
                                                          "front": front}, sort_keys=False))


def summary_lines(report: TuneReport) -> list[str]:
    lines = [f"study {report.study_name}: {report.ran} trial(s) completed, {report.pruned} pruned, "
             f"{len(report.failed)} failed here; {report.total} finished in the study; {report.best}"]
    lines += [f"  FAILED {f}" for f in report.failed[:5]]
    for label, path in (("best params", report.best_params), ("pareto front", report.pareto),
                        ("trials", report.trials_csv)):
        if path is not None:
            lines.append(f"{label}: {path}")
    return lines
