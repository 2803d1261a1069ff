"""How a run or a batch of runs reports progress: the ``Reporter`` callbacks the loop calls, and the
implementations behind them (nothing, rich bars per phase, one line of text in an overall bar).

``rich`` is imported only when a bar is made, so the loop and the workers stay light.
"""

from __future__ import annotations

from typing import Callable, Protocol


class Reporter(Protocol):
    """Progress callbacks of one run: a phase (train an experience, evaluate all) and steps in it."""

    def phase(self, description: str, total: int) -> None: ...
    def advance(self, done: int, total: int, info: str = "") -> None: ...
    def done(self) -> None: ...


class SilentReporter:
    """Reports nothing (library use, workers, tests)."""

    def phase(self, description: str, total: int) -> None:
        pass

    def advance(self, done: int, total: int, info: str = "") -> None:
        pass

    def done(self) -> None:
        pass


def progress_bar(console, *columns_after: str):
    """A started rich ``Progress`` with description, bar, count and elapsed time, then text columns
    showing the named task fields (e.g. ``"info"``)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   *(TextColumn(f"{{task.fields[{name}]}}") for name in columns_after), console=console)
    bar.start()
    return bar


class RichReporter:
    """One rich bar per phase (train an experience / evaluate all experiences), kept on screen."""

    def __init__(self, console=None):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.task = None
        self.progress.start()

    def phase(self, description: str, total: int) -> None:
        if self.task is not None:
            self.progress.update(self.task, visible=True)
        self.task = self.progress.add_task(description, total=total or None, info="")

    def advance(self, done: int, total: int, info: str = "") -> None:
        self.progress.update(self.task, completed=done, total=total, info=info)

    def done(self) -> None:
        self.progress.stop()


class LineReporter:
    """Feeds a run's phases, as one line of text, to ``update`` (the sweep's overall bar shows it)."""

    def __init__(self, update: Callable[[str], None]):
        self.update = update
        self.description = ""

    def phase(self, description: str, total: int) -> None:
        self.description = description
        self.update(description)

    def advance(self, done: int, total: int, info: str = "") -> None:
        self.update(f"{self.description} {done}/{total} {info}".strip())

    def done(self) -> None:
        self.update("")
