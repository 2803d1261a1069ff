"""The ``unicon-bench`` command line (typer): the app, ``main``, and one module per command.

The commands import what they need inside their bodies, so ``--help`` and ``ls`` stay fast. This
package imports the command modules; they never import it (what they share is in ``common``).
"""

from __future__ import annotations

import sys

import typer

from unicon_bench.cli import check, compare, data, leaderboard, ls, pretrain, run, sweep, tune, validate
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

app.command()(run.run)
app.command("ls")(ls.ls)
app.command()(validate.validate)
app.command()(sweep.sweep)
app.command()(pretrain.pretrain)
app.command()(tune.tune)
app.command()(leaderboard.leaderboard)
app.command()(check.check)
app.command()(compare.compare)
app.add_typer(data.app, name="data")


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except UniconBenchError as exc:  # errors raised outside a command body
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
