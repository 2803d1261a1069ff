"""User-facing errors: the CLI prints their message on one line and exits with their code."""

from __future__ import annotations


class UniconBenchError(Exception):
    """An error caused by user input (names, files, settings) rather than a bug."""

    exit_code = 2

    def __str__(self) -> str:
        # one line whatever the message quotes (a CSV cell or YAML value may hold line breaks)
        return " ".join(super().__str__().splitlines())


class UnknownNameError(UniconBenchError, KeyError):
    """A strategy or scenario name that is not registered."""

    def __init__(self, kind: str, name: str, available: list[str]):
        self.kind, self.name, self.available = kind, name, available
        super().__init__(f"unknown {kind} '{name}'; available: {', '.join(available) or '(none)'}")

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return " ".join(self.args[0].splitlines())


class IncompatibleError(UniconBenchError):
    """A strategy that does not support the scenario's kind."""


class ConfigError(UniconBenchError):
    """A malformed scenario, config file or --set override."""


class CheckpointError(UniconBenchError):
    """A checkpoint that is missing, corrupt, from another run, or held by a run still in progress."""
