"""``unicon-bench tune``: Optuna search of a strategy's hyper-parameters on the validation split."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from unicon_bench.cli.common import ADDRESS_HELP, EXECUTOR_HELP, PRECISION_HELP, Device, Executor, Precision, fail, stoppable
from unicon_bench.errors import UniconBenchError

def tune(
    strategy: str = typer.Option(..., "--strategy", "-s", help="Strategy whose search space (beside its params) is searched."),
    scenario: str = typer.Option(..., "--scenario", "-c", help="Scenario name or path to a scenario YAML."),
    trials: int = typer.Option(20, help="Trials this command runs (several tune processes may share one study)."),
    storage: Optional[str] = typer.Option(None, help="Optuna RDB URL, e.g. postgresql://user@host/db (default: sqlite:///OUT/optuna.db)."),
    study_name: Optional[str] = typer.Option(None, help="Study name (default: STRATEGY-SCENARIO[-quick]); reuse it to add trials."),
    n_jobs: int = typer.Option(1, help="Trials at once: local worker processes, or Ray tasks in flight with --executor ray."),
    objective: str = typer.Option("final_average", help="Summary value to maximise (final_average, bwt, fwt, plasticity), or -NAME to minimise (e.g. -forgetting)."),
    multi_objective: Optional[str] = typer.Option(None, "--multi-objective", help="Also minimise a cost, params (trainable parameters) or time (wall time): a Pareto front, no pruning."),
    budget_minutes: Optional[float] = typer.Option(None, help="Start no trial after this many minutes."),
    validation: float = typer.Option(0.25, help="Share of each experience's training subjects held out to score trials (never the eval split)."),
    set_: list[str] = typer.Option([], "--set", help="Fix a parameter (left out of the search): --set epochs=1 (repeatable)."),
    seed: int = typer.Option(0, help="Seed of every trial's run (and of its validation split)."),
    sampler_seed: Optional[int] = typer.Option(None, help="Seed of Optuna's TPE sampler (reproducible suggestions)."),
    quick: bool = typer.Option(False, "--quick", help="Tune on the quick (16^3) version of the scenario."),
    pruning: bool = typer.Option(True, "--pruning/--no-pruning", help="Median pruning on the running average after each experience."),
    out: Path = typer.Option(Path("tuning"), help="Folder of the default SQLite study and of OUT/STUDY/best_params.yaml."),
    executor: Executor = typer.Option(Executor.local, help=EXECUTOR_HELP),
    address: Optional[str] = typer.Option(None, help=ADDRESS_HELP),
    device: Device = typer.Option(Device.cpu, help="Torch device."),
    precision: Precision = typer.Option(Precision.auto, help=PRECISION_HELP + " A study holds one precision."),
    cache_dir: Optional[Path] = typer.Option(None, help="Phantom cache folder (default: $UNICON_BENCH_CACHE or the user cache)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the progress bar over trials."),
) -> None:
    """Tune STRATEGY's hyper-parameters on SCENARIO with Optuna; write the best as a YAML for `run --config`."""
    from rich.console import Console

    from unicon_bench import tune as tuning
    from unicon_bench.harness.request import parse_overrides
    from unicon_bench.sweep.executors import ExecutorConfig

    try:
        where = ExecutorConfig(executor.value, workers=n_jobs, address=address, gpus=float(device is Device.cuda))
        spec = tuning.build_spec(
            strategy, scenario, out=out, storage=storage, study_name=study_name, fixed=parse_overrides(set_),
            objective=objective, cost=multi_objective, quick=quick, seed=seed,
            device=device.value, validation=validation, pruning=pruning, cache_dir=cache_dir,
            sampler_seed=sampler_seed, budget_minutes=budget_minutes, precision=precision.value,
        )
        again = "finished trials are kept in the study; run the same command again to add trials to it"
        with stoppable("tuning", again):
            report = tuning.run_tuning(spec, trials, where, out=out,
                                       console=Console(stderr=True) if progress else None)
    except UniconBenchError as exc:
        fail(exc)
    typer.echo("\n".join(tuning.summary_lines(report)))
    raise typer.Exit(0 if report.best_params is not None else 1)
