"""``unicon-bench sweep``: every run of a suite (strategies x scenarios x seeds) not done yet."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from unicon_bench.cli.common import (ADDRESS_HELP, EXECUTOR_HELP, LOGGER_HELP, SUITE_PRECISION_HELP, Device, Executor, Logger,
                                     Precision, fail, stoppable)
from unicon_bench.errors import UniconBenchError

def sweep(
    suite: Path = typer.Argument(..., help="Suite YAML file, e.g. suites/default.yaml."),
    out: Optional[Path] = typer.Option(None, help="Folder for result JSON files (default: the suite's `out`)."),
    device: Device = typer.Option(Device.cpu, help="Torch device."),
    precision: Optional[Precision] = typer.Option(None, help=SUITE_PRECISION_HELP, show_default=False),
    cache_dir: Optional[Path] = typer.Option(None, help="Phantom cache folder (default: $UNICON_BENCH_CACHE or the user cache)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the overall progress bar."),
    logger: list[Logger] = typer.Option([], "--logger", help=LOGGER_HELP),
    executor: Executor = typer.Option(Executor.local, help=EXECUTOR_HELP),
    address: Optional[str] = typer.Option(None, help=ADDRESS_HELP),
    workers: Optional[int] = typer.Option(None, help="Runs at once: local pool size (default 1), or Ray tasks in flight (default: as the cluster schedules)."),
    share: bool = typer.Option(
        True, "--share/--no-share",
        help="Share experience 0 between the strategies whose experience 0 is their family's common training "
             "(OUT/.stage0; results bit-identical to training it in every run) or train it in every run.",
    ),
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

    from unicon_bench.sweep.executors import ExecutorConfig
    from unicon_bench.sweep import load_suite, run_suite, summary_lines

    again = ("the finished runs' results are kept; run the same command again to go on "
             "(a run that was cut short continues from its last checkpoint)")
    try:
        with stoppable("sweep", again):
            where = ExecutorConfig(executor.value, workers=workers, address=address, gpus=float(device is Device.cuda))
            report = run_suite(load_suite(suite), out=out, device=device.value, cache_dir=cache_dir,
                               console=Console(stderr=True) if progress else None,
                               loggers=[lg.value for lg in logger], executor=where, resume=resume,
                               precision=None if precision is None else precision.value, share=share)
    except UniconBenchError as exc:
        fail(exc)
    typer.echo("\n".join(summary_lines(report)))
    raise typer.Exit(0 if report.ok else 1)
