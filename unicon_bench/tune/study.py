"""The Optuna layer of ``unicon-bench tune``: search spaces, the study, the objective of one trial.

A study searches the space declared beside the strategy's params dataclass (``search_space``).
Every trial trains on the scenario's training subjects minus a validation split carved from them
(``data.streams``) and is scored on that split, never on the eval subjects. After each experience
the harness reports the running average; a MedianPruner stops trials that fall below the median of
earlier trials at the same experience. Studies live in an Optuna RDB storage (SQLite file,
PostgreSQL, ...), so trials from several processes, pool workers or Ray tasks add up in one study.
"""

from __future__ import annotations

import math
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from unicon_bench.errors import ConfigError, UniconBenchError
from unicon_bench.sweep.executors import one_line

SUMMARY_KEYS = ("final_average", "bwt", "fwt", "forgetting", "plasticity")
# Second objectives (minimised) of a multi-objective study: score against cost, a Pareto front.
# The value is the key each Pareto-front entry of pareto.yaml gives the cost.
COSTS = {"params": "trainable_params", "time": "wall_time_s"}
SQLITE_TIMEOUT_S = 60  # several processes writing one SQLite study wait for the lock this long


class TuneError(UniconBenchError):
    """A study that cannot be created, loaded or summarised."""


@dataclass(frozen=True)
class TuneSpec:
    """Everything a worker needs to run trials of a study (picklable)."""

    strategy: str
    scenario: str
    storage: str
    study_name: str
    space: dict[str, tuple]
    fixed: dict[str, Any] = field(default_factory=dict)
    objective: str = "final_average"
    cost: str | None = None
    quick: bool = False
    seed: int = 0
    device: str = "cpu"
    validation: float = 0.25
    pruning: bool = True
    prune_after: int = 3  # trials that complete before the pruner may stop any
    cache_dir: str | None = None
    sampler_seed: int | None = None
    deadline: float | None = None  # epoch seconds (--budget-minutes): no trial starts after it
    precision: str = "fp32"  # of every trial's run (resolved for the device); a study holds one precision

    @property
    def directions(self) -> list[str]:
        return ["maximize"] + (["minimize"] if self.cost else [])


def parse_objective(name: str) -> tuple[str, float]:
    """``final_average`` -> (key, +1); ``-forgetting`` -> (key, -1): the study maximises sign * value."""
    key, sign = (name[1:], -1.0) if name.startswith("-") else (name, 1.0)
    if key not in SUMMARY_KEYS:
        raise ConfigError(f"unknown objective '{name}'; use one of {', '.join(SUMMARY_KEYS)}, "
                          "optionally with a leading '-' to minimise it (e.g. -forgetting)")
    return key, sign


def check_space(space: dict[str, tuple], fields: set[str]) -> None:
    """Every entry names a parameter and has a known kind with valid bounds."""
    for name, spec in space.items():
        if name not in fields:
            raise ConfigError(f"search space names '{name}', which is not a parameter ({', '.join(sorted(fields))})")
        kind, *args = spec
        if kind == "categorical":
            if len(args) != 1 or not list(args[0]):
                raise ConfigError(f"search space '{name}': categorical needs a non-empty list of choices")
        elif kind in ("float", "float_log", "int", "int_log"):
            if len(args) != 2 or not args[0] < args[1] or (kind.endswith("_log") and args[0] <= 0):
                raise ConfigError(f"search space '{name}': {kind} needs lo < hi (lo > 0 on a log scale), got {args}")
        else:
            raise ConfigError(f"search space '{name}': unknown kind '{kind}' (float, float_log, int, int_log, categorical)")


def suggest(trial, space: dict[str, tuple]) -> dict[str, Any]:
    """Sample one value per parameter of ``space`` through Optuna's ``suggest_*``."""
    values = {}
    for name, (kind, *args) in space.items():
        if kind == "categorical":
            values[name] = trial.suggest_categorical(name, list(args[0]))
        elif kind.startswith("float"):
            values[name] = trial.suggest_float(name, args[0], args[1], log=kind == "float_log")
        else:
            values[name] = trial.suggest_int(name, args[0], args[1], log=kind == "int_log")
    return values


def storage_kind(url: str) -> str:
    """``sqlite``, ``postgresql``, ``mysql``, ... from an RDB URL."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).get_backend_name()
    except ArgumentError:
        raise ConfigError(f"--storage {url!r} is not a database URL (e.g. sqlite:///tuning.db, "
                          "postgresql://user@host/db)") from None


def make_storage(url: str):
    import optuna

    from sqlalchemy.engine import make_url

    kwargs = {"connect_args": {"timeout": SQLITE_TIMEOUT_S}} if storage_kind(url) == "sqlite" else None
    for attempt in range(3):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
        except Exception as exc:  # noqa: BLE001 - a driver missing, a server down: one line for the user
            missing_driver = "import" in str(exc)
            if not missing_driver and attempt < 2:  # e.g. another process creating the tables meanwhile
                time.sleep(0.5 + attempt)
                continue
            hint = " (pip install 'unicon-bench[postgres]')" if missing_driver else ""
            shown = make_url(url).render_as_string(hide_password=True)
            raise TuneError(f"cannot open study storage {shown}: {' '.join(str(exc).split())[:300]}{hint}") from None


def open_study(spec: TuneSpec, sampler_seed: int | None = None):
    """Create the study or load it if it exists (several processes may race to create it)."""
    import optuna

    storage = make_storage(spec.storage)
    sampler = optuna.samplers.TPESampler(seed=sampler_seed)
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=spec.prune_after, n_warmup_steps=0)
              if spec.pruning and not spec.cost else optuna.pruners.NopPruner())
    for _attempt in range(3):
        try:
            study = optuna.create_study(storage=storage, study_name=spec.study_name, sampler=sampler, pruner=pruner,
                                        directions=spec.directions, load_if_exists=True)
            break
        except optuna.exceptions.DuplicatedStudyError:  # created by another process meanwhile
            time.sleep(0.2)
    else:
        raise TuneError(f"study {spec.study_name}: cannot create or load it in {spec.storage}")
    if [d.name.lower() for d in study.directions] != spec.directions:
        raise TuneError(f"study {spec.study_name} exists with directions "
                        f"{[d.name.lower() for d in study.directions]}; this tune asks for {spec.directions}")
    held = study.user_attrs.get("precision")
    if held is None:
        study.set_user_attr("precision", spec.precision)
    elif held != spec.precision:  # trials of two precisions would be ranked against each other
        raise TuneError(f"study {spec.study_name} holds {held} trials; this tune asks for {spec.precision} "
                        "(use another --study-name, or --precision " + held + ")")
    return study


def objective(trial, spec: TuneSpec) -> float | tuple[float, float]:
    """Train one trial's parameters and score them on the validation split."""
    import optuna

    from unicon_bench import harness

    params = {**spec.fixed, **suggest(trial, spec.space)}
    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")

    def report(i: int, running_average: float | None) -> None:
        if running_average is None:
            return
        trial.report(running_average, step=i)
        if trial.should_prune():
            raise optuna.TrialPruned(f"running average {running_average:.4f} after experience {i} below the median")

    try:
        result, _ = harness.run(spec.strategy, spec.scenario, seed=spec.seed, out=None, quick=spec.quick,
                                device=spec.device, overrides=params, cache_dir=spec.cache_dir,
                                on_experience=report if spec.pruning and not spec.cost else None,
                                validation=spec.validation, precision=spec.precision)
    except optuna.TrialPruned:
        raise
    except Exception as exc:  # recorded on the trial (Optuna marks it failed), the study goes on
        trial.set_user_attr("error", one_line(exc))
        raise
    key, sign = parse_objective(spec.objective)
    summary = result.summary.model_dump()
    trial.set_user_attr("summary", summary)
    trial.set_user_attr("wall_time_s", result.cost.wall_time_s)
    value = summary[key]
    score = math.nan if value is None else sign * value
    if not spec.cost:
        return score
    trainable = result.cost.trainable_params
    cost = result.cost.wall_time_s if spec.cost == "time" else sum(trainable) / len(trainable)
    return score, float(cost)


def run_trial(job: tuple[TuneSpec, int | None]) -> int:
    """One trial as a worker job (pool process or Ray task): load the shared study, run, return its number."""
    spec, sampler_seed = job
    if spec.deadline is not None and time.time() >= spec.deadline:
        return -1  # the budget ran out before this trial's turn
    quiet_optuna()
    study = open_study(spec, sampler_seed)
    numbers: list[int] = []
    study.optimize(lambda t: numbers.append(t.number) or objective(t, spec), n_trials=1, catch=(Exception,))
    return numbers[0] if numbers else -1


def quiet_optuna() -> None:
    """Optuna's per-trial INFO lines would bury the progress bar; warnings still show."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def finished(study) -> list:
    import optuna

    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return study.get_trials(deepcopy=False, states=states)


def best_trial(study):
    """The best complete trial: the study's best, or on a Pareto front the one with the best score."""
    import optuna

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    front = [t for t in (study.best_trials if complete else []) if not math.isnan(t.values[0])]
    if not front:
        return None
    return max(front, key=lambda t: t.values[0])


def describe_best(study) -> str:
    trial = best_trial(study)
    if trial is None:
        return "no complete trial yet"
    text = f"best {trial.values[0]:.4f} (trial {trial.number})"
    if len(study.directions) > 1:
        text += f", Pareto front of {len(study.best_trials)}"
    return text
