"""Send a run's losses and its trained x evaluated matrix to the trackers the field uses.

``--logger tensorboard|mlflow|csv`` (repeatable) on ``run`` and ``sweep``. Each run logs:

- ``train/loss`` every training step (global step over the whole stream) and
  ``train/loss_mean/<experience>`` once per experience (step = experience index);
- ``eval/<experience>/<metric>`` = ``R[i][j]`` after training experience ``i`` (step ``i``; the
  untrained row at step ``-1`` is logged as step 0 under ``init/<experience>/<metric>``) and
  ``eval/average`` (mean of the row): the matrix as it fills;
- at the end, the summary (``summary/bwt``, ...), the wall time and the run's parameters.

Where they go (under the run's output folder ``OUT``):

- ``tensorboard``: Avalanche's ``TensorboardLogger`` writing event files to
  ``OUT/tensorboard/<scenario>/<strategy>/<run_id>/`` (``tensorboard --logdir OUT/tensorboard``);
- ``mlflow``: one MLflow run per run in experiment ``unicon-bench/<scenario>``, at
  ``$MLFLOW_TRACKING_URI`` if set (e.g. a tracking server ``http://host:5000``), else a local store
  ``sqlite:///OUT/mlflow.db`` with artifacts in ``OUT/mlartifacts`` (MLflow 3 keeps its plain-file
  store in maintenance mode); the tag ``unicon_bench.result`` holds the result file's path;
- ``csv``: ``OUT/csv/<scenario>/<strategy>/<run_id>.csv`` with columns ``name,step,value``
  (Avalanche's ``CSVLogger`` hard-codes accuracy columns, which our Dice/AUC/C-index do not fit).
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

from unicon_bench.errors import ConfigError

LOGGERS = ("tensorboard", "mlflow", "csv")


class LoggerError(ConfigError):
    """An unknown logger name or a tracker that cannot be reached."""


class Sink:
    """One tracker: scalars at a step, parameters once, closing with a status."""

    def params(self, params: dict[str, Any]) -> None:
        pass

    def scalar(self, name: str, value: float, step: int) -> None:
        raise NotImplementedError

    def close(self, result_path: Path | None, ok: bool) -> None:
        pass


class TensorBoardSink(Sink):
    def __init__(self, folder: Path):
        import warnings

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="no QP solver found", category=UserWarning)
            from avalanche.logging import TensorboardLogger

        self.folder = folder
        self.logger = TensorboardLogger(tb_log_dir=folder)

    def params(self, params):
        self.logger.writer.add_text("params", "\n".join(f"    {k}: {v}" for k, v in sorted(params.items())), 0)

    def scalar(self, name, value, step):
        self.logger.log_single_metric(name, float(value), step)

    def close(self, result_path, ok):
        self.logger.writer.flush()
        self.logger.writer.close()


class CSVSink(Sink):
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(path, "w", newline="", encoding="utf-8")
        self.writer = csv.writer(self.file)
        self.writer.writerow(["name", "step", "value"])

    def scalar(self, name, value, step):
        self.writer.writerow([name, step, repr(float(value))])
        self.file.flush()

    def close(self, result_path, ok):
        self.file.close()


def mlflow_uri(out: Path) -> str:
    """``$MLFLOW_TRACKING_URI``, or a local SQLite store in the output folder."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(Path(out) / 'mlflow.db').resolve()}"


class MLflowSink(Sink):
    def __init__(self, out: Path, experiment: str, run_name: str, tags: dict[str, str]):
        import logging

        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise LoggerError("--logger mlflow needs the MLflow client: pip install 'unicon-bench[mlflow]'") from None

        logging.getLogger("mlflow").setLevel(logging.WARNING)
        logging.getLogger("alembic").setLevel(logging.WARNING)
        self.uri = mlflow_uri(out)
        try:
            self.client = MlflowClient(tracking_uri=self.uri)
            found = self.client.get_experiment_by_name(experiment)
            if found is not None:
                exp_id = found.experiment_id
            else:
                location = None if "MLFLOW_TRACKING_URI" in os.environ else (Path(out) / "mlartifacts").resolve().as_uri()
                exp_id = self.client.create_experiment(experiment, artifact_location=location)
            self.run_id = self.client.create_run(exp_id, run_name=run_name, tags=tags).info.run_id
        except Exception as exc:  # noqa: BLE001 - connection and store errors come in many types
            raise LoggerError(f"mlflow: cannot open a run at {self.uri}: {' '.join(str(exc).split())[:200]}") from None

    def params(self, params):
        from mlflow.entities import Param

        items = [Param(k, (v if isinstance(v, str) else json.dumps(v, default=str))[:500]) for k, v in sorted(params.items())]
        self.client.log_batch(self.run_id, params=items)

    def scalar(self, name, value, step):
        self.client.log_metric(self.run_id, name, float(value), step=step)

    def close(self, result_path, ok):
        if result_path is not None:  # a path, not an artifact: a copy would sit among the results
            self.client.set_tag(self.run_id, "unicon_bench.result", str(Path(result_path).resolve()))
        self.client.set_terminated(self.run_id, status="FINISHED" if ok else "FAILED")


def _abort(sinks: list[Sink]) -> None:
    for sink in sinks:
        try:
            sink.close(None, ok=False)
        except Exception:  # noqa: BLE001 - closing after a failure must not hide the failure
            pass
    sinks.clear()


class Tracker:
    """Fans one run's events out to its sinks; with no sink every call does nothing.

    A run that fails before ``finish`` leaves its tracker unfinished: when the tracker is
    collected (or the interpreter exits) its sinks are closed and an MLflow run is marked FAILED.
    """

    def __init__(self, sinks: list[Sink], experiences: list[str], metrics: list[str]):
        import weakref

        self.sinks, self.experiences, self.metrics = sinks, experiences, metrics
        self.step = 0
        self.losses: dict[int, list[float]] = {}
        self._finalizer = weakref.finalize(self, _abort, sinks)

    def _scalar(self, name: str, value: float | None, step: int) -> None:
        if value is None:
            return
        for sink in self.sinks:
            sink.scalar(name, value, step)

    def loss(self, experience: int, value: float) -> None:
        """One training step's loss."""
        if not self.sinks:
            return
        self.losses.setdefault(experience, []).append(value)
        self._scalar("train/loss", value, self.step)
        self.step += 1

    def row(self, trained_upto: int, values: list[float | None]) -> None:
        """The scores on every experience after training up to ``trained_upto`` (-1: untrained)."""
        if not self.sinks:
            return
        prefix, step = ("init", 0) if trained_upto < 0 else ("eval", trained_upto)
        for name, metric, v in zip(self.experiences, self.metrics, values):
            self._scalar(f"{prefix}/{name}/{metric}", v, step)
        if trained_upto >= 0:
            losses = self.losses.get(trained_upto)
            if losses:
                self._scalar(f"train/loss_mean/{self.experiences[trained_upto]}", sum(losses) / len(losses), step)
            defined = [v for v in values if v is not None]
            if defined:
                self._scalar("eval/average", sum(defined) / len(defined), step)

    def finish(self, result, path: Path) -> None:
        """The summary and cost of the finished run; closes every sink."""
        if not self.sinks:
            return
        last = len(self.experiences) - 1
        for key, value in result.summary.model_dump().items():
            self._scalar(f"summary/{key}", value, last)
        self._scalar("cost/wall_time_s", result.cost.wall_time_s, last)
        self._scalar("cost/peak_rss_mb", result.cost.peak_rss_mb, last)
        self._finalizer.detach()
        for sink in self.sinks:
            sink.close(path, ok=True)
        self.sinks.clear()

    def abort(self) -> None:
        self._finalizer.detach()
        _abort(self.sinks)


def check_loggers(names: list[str]) -> list[str]:
    unknown = [n for n in names if n not in LOGGERS]
    if unknown:
        raise LoggerError(f"unknown logger {', '.join(unknown)}; available: {', '.join(LOGGERS)}")
    return list(dict.fromkeys(names))


def open_trackers(names: list[str], out, run_id: str, spec, strategy: str, seed: int, params: dict) -> Tracker:
    """A ``Tracker`` over the named loggers for one run (``names`` empty: a no-op tracker)."""
    from unicon_bench.results import METRIC_OF_TASK

    names = check_loggers(names)
    out = Path(out)
    where = Path(spec.name) / strategy
    sinks: list[Sink] = []
    try:
        for name in names:
            if name == "tensorboard":
                sinks.append(TensorBoardSink(out / "tensorboard" / where / run_id))
            elif name == "csv":
                sinks.append(CSVSink(out / "csv" / where / f"{run_id}.csv"))
            else:
                tags = {"scenario": spec.name, "scenario_version": str(spec.version), "strategy": strategy,
                        "seed": str(seed), "unicon_bench.run_id": run_id}
                sinks.append(MLflowSink(out, f"unicon-bench/{spec.name}", f"{strategy}-{run_id}", tags))
    except BaseException:
        Tracker(sinks, [], []).abort()
        raise
    tracker = Tracker(sinks, [e.name for e in spec.experiences], [METRIC_OF_TASK[e.task] for e in spec.experiences])
    for sink in sinks:
        sink.params({"strategy": strategy, "seed": seed, **params})
    return tracker
