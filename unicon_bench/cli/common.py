"""What the commands share: option types and help texts, the one ``fail`` helper, and the clean stop
on Ctrl-C or SIGTERM. Command modules import this, never the package root."""

from __future__ import annotations

import signal
from contextlib import contextmanager
from enum import Enum
from typing import NoReturn

import typer

from unicon_bench.errors import UniconBenchError


class Device(str, Enum):
    cpu = "cpu"
    cuda = "cuda"


class Precision(str, Enum):
    auto = "auto"
    fp32 = "fp32"
    bf16 = "bf16"


PRECISION_HELP = ("Arithmetic of training and evaluation: fp32, bf16 (bfloat16 autocast, on the CPU too), or auto "
                  "(bf16 on CUDA, fp32 on the CPU). Recorded in the result; runs of different precision are never pooled.")
SUITE_PRECISION_HELP = PRECISION_HELP + " Default: the suite's `precision` (auto when it names none)."


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


def fail(exc: UniconBenchError) -> NoReturn:
    """Print ``error: ...`` on stderr and exit with the error's code (2 for usage errors, 1 otherwise)."""
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(exc.exit_code)


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's or `kill`'s stop) taken as an interrupt, so the same clean-up runs."""


@contextmanager
def stoppable(what: str, again: str):
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
