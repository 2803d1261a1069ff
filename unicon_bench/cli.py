"""The ``unicon-bench`` command line (typer). Heavy libraries are imported inside commands."""

from __future__ import annotations

import signal
import sys
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from unicon_bench.errors import UniconBenchError

app = typer.Typer(
    name="unicon-bench",
    help=(
        "Benchmark continual learning of 3D CT/PET foundation models.\n\n"
        "Train a strategy over a scenario's stream of experiences, evaluate every experience after "
        "every training experience, and write a versioned result JSON. Try:\n\n"
        "  unicon-bench ls strategies\n\n"
        "  unicon-bench run --strategy ewc --scenario ct_to_pet --quick"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _add_data_commands() -> None:
    from unicon_bench.cli_data import app as data_app

    app.add_typer(data_app, name="data")


_add_data_commands()


class Device(str, Enum):
    cpu = "cpu"
    cuda = "cuda"


class Logger(str, Enum):
    tensorboard = "tensorboard"
    mlflow = "mlflow"
    csv = "csv"


LOGGER_HELP = (
    "Send losses and the metric matrix to a tracker (repeatable): tensorboard (event files in OUT/tensorboard), "
    "mlflow ($MLFLOW_TRACKING_URI, default a local store OUT/mlflow.db), csv (OUT/csv)."
)


Executor = Enum("Executor", {"local": "local", "ray": "ray"}, type=str)
EXECUTOR_HELP = "local: this machine (one worker: in this process; more: a process pool); ray: one Ray task per job."
ADDRESS_HELP = "Ray cluster address (e.g. auto, ray://head:10001); default: start a local Ray instance."


class What(str, Enum):
    strategies = "strategies"
    scenarios = "scenarios"


def _fail(exc: UniconBenchError) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(exc.exit_code)


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's or `kill`'s stop) taken as an interrupt, so the same clean-up runs."""


@contextmanager
def _stoppable(what: str, again: str):
    """Ctrl-C or SIGTERM ends pools/Ray tasks (see executors), says how to go on, and exits 130 or 143.

    A job started in the background by a non-interactive shell ignores SIGINT; SIGTERM still stops
    it cleanly, workers included."""
    def terminated(_signum, _frame):
        raise Terminated

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    except KeyboardInterrupt as exc:
        typer.echo(f"{what} {'terminated' if isinstance(exc, Terminated) else 'interrupted'}: {again}", err=True)
        raise typer.Exit(128 + (signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT)) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


@app.command()
def run(
    strategy: str = typer.Option(..., "--strategy", "-s", help="Strategy name (see `unicon-bench ls strategies`)."),
    scenario: str = typer.Option(..., "--scenario", "-c", help="Scenario name or path to a scenario YAML."),
    seed: int = typer.Option(0, help="Seed of model initialisation, data order and training."),
    out: Path = typer.Option(Path("results"), help="Folder for result JSON files."),
    quick: bool = typer.Option(False, "--quick", help="Tiny volumes (16^3) and few epochs: a smoke test in seconds."),
    device: Device = typer.Option(Device.cpu, help="Torch device; cuda trains and evaluates in bfloat16 mixed precision."),
    set_: list[str] = typer.Option([], "--set", help="Override a strategy parameter: --set key=value (repeatable)."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file of strategy parameters."),
    cache_dir: Optional[Path] = typer.Option(None, help="Cache of phantoms and preprocessed manifest studies (default: $UNICON_BENCH_CACHE or the user cache)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
    logger: list[Logger] = typer.Option([], "--logger", help=LOGGER_HELP),
    resume: bool = typer.Option(
        False, "--resume",
        help="Continue an interrupted run of exactly this strategy, scenario, seed, --quick and parameters "
             "from its last checkpoint in --out (saved after every experience); error if there is none.",
    ),
) -> None:
    """Train STRATEGY over SCENARIO, evaluate after every experience, write the result JSON.

    Any strategy runs on any backbone (--set backbone=swin_unetr; unet, swin_unetr, vit, segresnet,
    resnet) and can start from pretrained weights (--set backbone_weights=PATH: a state dict, a
    .safetensors file, a MONAI bundle folder or a `unicon-bench pretrain` folder; --set
    weights_map='module.->' strips a prefix) with --set freeze=frozen|partial:N|none.

    A checkpoint is kept under OUT/<scenario>/<strategy>/checkpoints/ while the run lasts, so a killed
    run continues with --resume to the same final matrix.
    """
    from unicon_bench.config import parse_overrides

    try:
        overrides = parse_overrides(set_)
        from unicon_bench import harness

        # Validate names, compatibility and parameters before anything heavy is imported.
        harness.resolve(strategy, scenario, quick, str(config) if config else None, overrides)
        if device is Device.cuda:
            import torch

            if not torch.cuda.is_available():
                raise UniconBenchError("--device cuda given but no CUDA device is available")
        from rich.console import Console

        console = Console(stderr=True)
        reporter = None
        if progress:
            from unicon_bench.progress import RichReporter

            reporter = RichReporter(console)
        result, path = harness.run(
            strategy, scenario, seed=seed, out=out, quick=quick, device=device.value,
            config=str(config) if config else None, overrides=overrides, reporter=reporter, cache_dir=cache_dir,
            loggers=[lg.value for lg in logger], resume=resume,
        )
    except UniconBenchError as exc:
        _fail(exc)
    from unicon_bench.report import summary_table

    Console().print(summary_table(result))
    typer.echo(f"result: {path}")


@app.command("ls")
def ls(what: What = typer.Argument(..., help="What to list.")) -> None:
    """List strategies or scenarios with a one-line description."""
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    if what is What.strategies:
        from unicon_bench.registry import STRATEGIES

        for col in ("name", "family", "description", "kinds", "trains", "source"):
            table.add_column(col)
        for e in STRATEGIES.entries():
            table.add_row(e.name, e.family or "-", e.summary, ",".join(e.compatible), e.trainable, e.origin)
    else:
        from unicon_bench.scenario import get_scenario, list_scenarios

        for col in ("name", "version", "kind", "identity", "experiences", "description"):
            table.add_column(col)
        for name in list_scenarios():
            try:
                s = get_scenario(name)
            except UniconBenchError as exc:
                table.add_row(name, "", "", "", "", f"[red]invalid: {exc}")
                continue
            exps = " -> ".join(e.name for e in s.experiences)
            table.add_row(s.name, str(s.version), s.kind, "yes" if s.task_identity_at_test else "no", exps, s.description)
    Console(width=200).print(table)


@app.command()
def validate(files: list[Path] = typer.Argument(..., help="Result JSON files or folders of them.")) -> None:
    """Check result files against the result schema; exit 1 if any is invalid."""
    from unicon_bench.results import ResultError, find_results, read_result

    bad = 0
    paths = [p for f in files for p in find_results(f)]
    if not paths:
        typer.echo("error: no result files found", err=True)
        raise typer.Exit(2)
    for path in paths:
        try:
            r = read_result(path)
            typer.echo(f"ok    {path}  ({r.scenario.name} v{r.scenario.version}, {r.strategy.name}, seed {r.seed})")
        except ResultError as exc:
            bad += 1
            typer.echo(f"FAIL  {exc}")
    raise typer.Exit(1 if bad else 0)


@app.command()
def sweep(
    suite: Path = typer.Argument(..., help="Suite YAML file, e.g. suites/default.yaml."),
    out: Optional[Path] = typer.Option(None, help="Folder for result JSON files (default: the suite's `out`)."),
    device: Device = typer.Option(Device.cpu, help="Torch device; cuda trains and evaluates in bfloat16 mixed precision."),
    cache_dir: Optional[Path] = typer.Option(None, help="Phantom cache folder (default: $UNICON_BENCH_CACHE or the user cache)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the overall progress bar."),
    logger: list[Logger] = typer.Option([], "--logger", help=LOGGER_HELP),
    executor: Executor = typer.Option(Executor.local, help=EXECUTOR_HELP),
    address: Optional[str] = typer.Option(None, help=ADDRESS_HELP),
    workers: Optional[int] = typer.Option(None, help="Runs at once: local pool size (default 1), or Ray tasks in flight (default: as the cluster schedules)."),
    resume: bool = typer.Option(
        True, "--resume/--no-resume",
        help="Continue interrupted runs from their checkpoints (default) or start them again.",
    ),
) -> None:
    """Run strategies x scenarios x seeds of a SUITE; skip runs already done; exit 1 if any run failed.

    With `pretrain: true` in the suite, stage 0 of each scenario is trained once (OUT/pretrain/...)
    and every strategy starts from it instead of training the first experience itself.
    """
    from rich.console import Console

    from unicon_bench.executors import ExecutorConfig
    from unicon_bench.sweep import load_suite, run_suite, summary_lines

    again = ("the finished runs' results are kept; run the same command again to go on "
             "(a run that was cut short continues from its last checkpoint)")
    try:
        with _stoppable("sweep", again):
            where = ExecutorConfig(executor.value, workers=workers, address=address, gpus=float(device is Device.cuda))
            report = run_suite(load_suite(suite), out=out, device=device.value, cache_dir=cache_dir,
                               console=Console(stderr=True) if progress else None,
                               loggers=[lg.value for lg in logger], executor=where, resume=resume)
    except UniconBenchError as exc:
        _fail(exc)
    typer.echo("\n".join(summary_lines(report)))
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def pretrain(
    scenario: str = typer.Option(..., "--scenario", "-c", help="Scenario name or path to a scenario YAML."),
    out: Path = typer.Option(..., "--out", help="Folder for the checkpoint (foundation.pt + pretrain.yaml)."),
    seed: int = typer.Option(0, help="Seed of initialisation, data order and training."),
    quick: bool = typer.Option(False, "--quick", help="The scenario's quick version (16^3 volumes, few epochs)."),
    device: Device = typer.Option(Device.cpu, help="Torch device."),
    set_: list[str] = typer.Option([], "--set", help="Stage-0 parameter: epochs, lr, batch_size, weight_decay, "
                                   "backbone, backbone_options, backbone_weights, weights_map, weights_ignore, freeze."),
    cache_dir: Optional[Path] = typer.Option(None, help="Phantom cache folder (default: $UNICON_BENCH_CACHE or the user cache)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
) -> None:
    """Train the stage-0 foundation model (UNICON's stage 0 on the first experience) once and save it.

    Then `--set backbone_weights=OUT` makes any strategy start from it instead of training the first
    experience itself (a sweep does so with `pretrain: true`).
    """
    from unicon_bench.config import parse_overrides

    try:
        from unicon_bench.pretrain import pretrain as train_stage0

        reporter = None
        if progress:
            from rich.console import Console

            from unicon_bench.progress import RichReporter

            reporter = RichReporter(Console(stderr=True))
        meta, folder = train_stage0(scenario, out, seed=seed, quick=quick, device=device.value,
                                    overrides=parse_overrides(set_), reporter=reporter, cache_dir=cache_dir)
    except UniconBenchError as exc:
        _fail(exc)
    s = meta["score"]
    typer.echo(f"stage 0: {meta['experience']} ({meta['backbone']}), {s['metric']} {s['value']}, "
               f"{meta['train_time_s']:.1f} s; sha256 {meta['sha256'][:16]}...")
    typer.echo(f"checkpoint: {folder}")


@app.command()
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
    cache_dir: Optional[Path] = typer.Option(None, help="Phantom cache folder (default: $UNICON_BENCH_CACHE or the user cache)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the progress bar over trials."),
) -> None:
    """Tune STRATEGY's hyper-parameters on SCENARIO with Optuna; write the best as a YAML for `run --config`."""
    from rich.console import Console

    from unicon_bench import tune as tuning
    from unicon_bench.config import parse_overrides
    from unicon_bench.executors import ExecutorConfig

    try:
        where = ExecutorConfig(executor.value, workers=n_jobs, address=address, gpus=float(device is Device.cuda))
        spec = tuning.build_spec(
            strategy, scenario, out=out, storage=storage, study_name=study_name, fixed=parse_overrides(set_),
            objective=objective, cost=multi_objective, quick=quick, seed=seed,
            device=device.value, validation=validation, pruning=pruning, cache_dir=cache_dir,
            sampler_seed=sampler_seed, budget_minutes=budget_minutes,
        )
        again = "finished trials are kept in the study; run the same command again to add trials to it"
        with _stoppable("tuning", again):
            report = tuning.run_tuning(spec, trials, where, out=out,
                                       console=Console(stderr=True) if progress else None)
    except UniconBenchError as exc:
        _fail(exc)
    typer.echo("\n".join(tuning.summary_lines(report)))
    raise typer.Exit(0 if report.best_params is not None else 1)


class Format(str, Enum):
    html = "html"
    md = "md"
    csv = "csv"


@app.command()
def leaderboard(
    results_dir: Path = typer.Argument(..., help="Folder of result JSON files (e.g. results/)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Output file (html default: leaderboard.html; md/csv: stdout)."),
    fmt: Format = typer.Option(Format.html, "--format", "-f", help="html: self-contained page; md or csv: the overview tables."),
    metric: Optional[str] = typer.Option(None, "--metric", "-m", help="md: also a table of this metric of the final "
                                         "models (primary, hd95, nsd, lesion_f1, brier, ibs, td_auc@24, ...) with "
                                         "per-subject bootstrap CIs; the html page has a selector for every metric."),
) -> None:
    """Aggregate result files into a leaderboard (mean ± 95 % CI per scenario and strategy)."""
    from unicon_bench.leaderboard.render import write_leaderboard

    if output is None and fmt is Format.html:
        output = Path("leaderboard.html")
    try:
        text, problems = write_leaderboard(results_dir, output, fmt.value, metric)
    except UniconBenchError as exc:
        _fail(exc)
    for problem in problems:
        typer.echo(f"warning: skipped {problem}", err=True)
    if output is None:
        typer.echo(text, nl=False)
    else:
        typer.echo(f"leaderboard: {output}", err=True)


def _add_check_command() -> None:
    from unicon_bench.cli_check import check

    app.command()(check)


_add_check_command()


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except UniconBenchError as exc:  # errors raised outside a command body
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
