"""The result file: one versioned JSON per run, the contract everything downstream reads.

``schema_version`` is an integer bumped on any incompatible change; readers refuse files from a
newer schema with a clear error and convert files of an older one on load (``UPGRADES``), so every
``RunResult`` in memory is of the current schema. Undefined values (an AUC on a single-class eval
set, BWT of a one-experience stream) are ``null``.

Schema 2 (schema 1 held the primary metric only): the matrix holds every registered metric of each
experience (``unicon_bench.metrics.registry``; the primary one, named in ``scenario.metrics``, is
what the summary uses), ``per_subject`` keeps per-subject values (of the final model until schema 3, of every cell since), ``cost`` has the
evaluation time and ``scenario.evaluation`` the resolved evaluation settings.

Schema 3: ``per_subject`` for every cell of the matrix and of the untrained row (BWT, forgetting and
FWT can be resampled over subjects), ``env.precision`` (``fp32`` or ``bf16``: the arithmetic of training and evaluation; runs of
different precision are never pooled) and ``stage0`` (set when the run started from a shared stage 0,
see ``unicon_bench.harness.stage0``). Older files are read with the precision their device implies
(bfloat16 autocast on CUDA, fp32 on the CPU) and no shared stage 0.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from unicon_bench.errors import UniconBenchError
from unicon_bench.fileio import SAFE_NAME, atomic_write_text, read_json, validate  # noqa: F401 - re-exported

from unicon_bench.metrics.registry import METRICS, PRIMARY_OF_TASK, get_metric, metric_key

SCHEMA_VERSION = 3
METRIC_OF_TASK = PRIMARY_OF_TASK
_PRIMARY_NAMES = tuple(PRIMARY_OF_TASK.values())


class ResultError(UniconBenchError):
    """A result file that cannot be read, is from a newer schema, or is inconsistent."""


class _Model(BaseModel):
    # NaN and Infinity (which Python's JSON reader accepts) are never valid: undefined is null
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ScenarioInfo(_Model):
    name: str = Field(pattern=SAFE_NAME, description="names a folder of the output")
    version: int
    kind: Literal["domain", "task", "modality"]
    task_identity_at_test: bool
    experiences: list[Annotated[str, Field(pattern=SAFE_NAME)]] = Field(min_length=1, description="names of columns and keys")
    metrics: list[Literal[_PRIMARY_NAMES]] = Field(min_length=1, description="primary metric of each experience")
    quick: bool = False
    evaluation: dict[str, Any] = Field(default_factory=dict, description="resolved evaluation settings per experience")


class StrategyInfo(_Model):
    name: str = Field(pattern=SAFE_NAME, description="names a folder of the output")
    params: dict


class MatrixEntry(_Model):
    metric: str = Field(description="a registered metric (unicon_bench.metrics.registry)")
    horizon: float | None = Field(None, description="survival horizon of a time-dependent metric")
    trained_upto: int = Field(ge=-1, description="-1 = the untrained model")
    evaluated_on: int = Field(ge=0)
    value: float | None

    @model_validator(mode="after")
    def _registered(self) -> "MatrixEntry":
        if self.metric not in METRICS:
            raise ValueError(f"unknown metric {self.metric!r}; registered: {', '.join(METRICS)}")
        spec = METRICS[self.metric]
        if spec.horizons != (self.horizon is not None):
            raise ValueError(f"metric {self.metric} {'needs' if spec.horizons else 'takes no'} horizon")
        if self.value is not None and not (math.isfinite(self.value) and spec.accepts(self.value)):
            raise ValueError(f"{self.metric} value {self.value} outside [{spec.low}, {spec.high}]")
        return self

    @property
    def key(self) -> str:
        return metric_key(self.metric, self.horizon)


class SubjectValues(_Model):
    """Per-subject values of one cell of the matrix: the model trained up to ``trained_upto`` (-1: untrained)
    on experience ``evaluated_on``, one list per quantity, in subject order."""

    trained_upto: int | None = Field(None, ge=-1, description="absent (files before it existed): the final model")
    evaluated_on: int = Field(ge=0)
    values: dict[str, list[float | None]]

    @model_validator(mode="after")
    def _same_length(self) -> "SubjectValues":
        if len({len(v) for v in self.values.values()}) > 1:
            raise ValueError(f"per-subject lists of experience {self.evaluated_on} differ in length")
        return self

class Summary(_Model):
    final_average: float | None
    bwt: float | None
    fwt: float | None
    forgetting: float | None
    plasticity: float | None


NonNegInt = Annotated[int, Field(ge=0)]
NonNegFloat = Annotated[float, Field(ge=0)]


class Cost(_Model):
    trainable_params: list[NonNegInt] = Field(description="parameters updated while training each experience")
    total_params: NonNegInt
    wall_time_s: NonNegFloat
    train_time_s: list[NonNegFloat]
    peak_rss_mb: NonNegFloat
    buffer_bytes: NonNegInt
    backbone_weights: str | None = Field(None, description="pretrained weights given (file, bundle or pretrain folder)")
    weights_sha256: str | None = Field(None, description="SHA-256 of the weights file loaded")
    weights_kind: Literal["state_dict", "safetensors", "monai_bundle", "pretrain"] | None = None
    weights_report: list[str] | None = Field(None, description="tensors loaded, keys missing/unexpected")
    frozen: str | None = Field(None, description="freeze policy of the backbone: none, frozen or partial:N")
    frozen_params: NonNegInt | None = Field(None, description="backbone parameters frozen by that policy")
    eval_time_s: NonNegFloat | None = Field(None, description="time spent evaluating (predictions and metrics)")


class Determinism(_Model):
    """The seed and the settings that make a run reproducible (bit-identical on CPU at equal threads)."""

    seed: int
    deterministic_algorithms: bool
    warn_only: bool
    cudnn_deterministic: bool
    cudnn_benchmark: bool
    intra_op_threads: int
    cublas_workspace_config: str | None = None


class Env(_Model):
    python: str
    torch: str
    avalanche: str
    monai: str
    unicon_bench: str
    git_commit: str | None
    platform: str
    device: str
    threads: int
    deterministic: bool
    determinism: Determinism | None = Field(None, description="optional: absent in files from before it existed")
    precision: Literal["fp32", "bf16"] = Field(description="arithmetic of training and evaluation (autocast dtype)")


class Stage0Info(_Model):
    """A run whose experience 0 was not trained by itself but loaded from a shared stage 0."""

    key: str = Field(pattern=r"^[0-9a-f]{16,64}$", description="what the stage 0 depends on, hashed")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the stage-0 file loaded")
    trained_by: str = Field(description="the strategy whose run trained and stored it")


class TuningInfo(BaseModel):
    """Where a run's parameters came from when ``unicon-bench tune`` chose them."""

    model_config = ConfigDict(extra="allow")

    study: str
    trials: int = Field(ge=0, description="finished trials (complete or pruned) in the study when the YAML was written")
    storage: str = Field(description="storage kind: sqlite, postgresql, mysql, ...")
    objective: str | list[str] = "final_average"
    best_trial: int | None = None


class RunResult(_Model):
    schema_version: int
    run_id: str = Field(pattern=SAFE_NAME, description="names the result file")
    started: str
    finished: str
    scenario: ScenarioInfo
    strategy: StrategyInfo
    seed: int
    matrix: list[MatrixEntry]
    per_subject: list[SubjectValues] = Field(default_factory=list, description="per cell of the matrix (older files: "
                                             "the final model's only)")
    summary: Summary
    cost: Cost
    env: Env
    extras: dict = Field(default_factory=dict, description="strategy-specific facts, e.g. routing accuracy")
    tuning: TuningInfo | None = Field(None, description="set when the parameters came from `unicon-bench tune`")
    resumed_after: list[int] = Field(
        default_factory=list, description="experiences already done at each resume from a checkpoint (empty: never interrupted)"
    )
    stage0: Stage0Info | None = Field(None, description="set when experience 0 came from a shared stage 0")

    @model_validator(mode="after")
    def _matrix_complete(self) -> "RunResult":
        n = len(self.scenario.experiences)
        if len(self.scenario.metrics) != n:
            raise ValueError("scenario.metrics must name one metric per experience")
        if any(e.evaluated_on >= n for e in self.matrix):
            raise ValueError(f"matrix entry evaluated on an experience beyond the {n} of the scenario")
        keys: dict[int, dict[int, list[str]]] = {}
        for e in self.matrix:
            task = METRICS[self.scenario.metrics[e.evaluated_on]].task
            if get_metric(e.metric).task != task:
                raise ValueError(f"matrix entry for experience {e.evaluated_on} ({task}) uses metric {e.metric}")
            keys.setdefault(e.evaluated_on, {}).setdefault(e.trained_upto, []).append(e.key)
        primary = {(e.trained_upto, e.evaluated_on) for e in self.matrix if e.evaluated_on < n
                   and e.metric == self.scenario.metrics[e.evaluated_on]}
        expected = {(i, j) for i in range(-1, n) for j in range(n)}
        if primary != expected or any(e.evaluated_on >= n for e in self.matrix):
            raise ValueError(f"matrix must hold the primary metric once per (trained_upto in -1..{n-1}, "
                             f"evaluated_on in 0..{n-1})")
        for j, by_row in keys.items():
            # each row holds the primary metric alone, or it and the same other metrics as the other full rows
            sets = {tuple(sorted(k)) for k in by_row.values() if len(k) > 1}
            if len(sets) > 1 or any(len(k) != len(set(k)) for k in by_row.values()):
                raise ValueError(f"matrix of experience {j}: each trained_upto must hold the primary metric alone "
                                 "or with the same other metrics, each once")
        if len(self.cost.trainable_params) != n or len(self.cost.train_time_s) != n:
            raise ValueError("cost.trainable_params and cost.train_time_s need one entry per experience")
        seen = [(n - 1 if s.trained_upto is None else s.trained_upto, s.evaluated_on) for s in self.per_subject]
        if len(seen) != len(set(seen)) or any(i >= n or j >= n for i, j in seen):
            raise ValueError("per_subject needs at most one entry per cell (trained_upto, evaluated_on) of the matrix")
        self._summary_matches_matrix()
        return self

    def _summary_matches_matrix(self) -> None:
        """The summary is derived data: recompute it from the matrix; a contradiction makes the file invalid."""
        from unicon_bench.metrics import continual

        init, rows = self.rows()
        def nan(row):
            return [math.nan if v is None else v for v in row]

        expected = continual.summarize([nan(r) for r in rows], nan(init))
        for key, want in expected.items():
            want, got = clean_float(want), getattr(self.summary, key)
            if (want is None) != (got is None) or (want is not None and not math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12)):
                raise ValueError(f"summary.{key} is {got} but the matrix gives {want}: the summary contradicts the matrix")

    def metric_keys(self, j: int) -> list[str]:
        """Metric keys recorded for experience ``j``, the primary first, then in registry order."""
        found = {e.key: e for e in self.matrix if e.evaluated_on == j}
        order = list(METRICS)
        return sorted(found, key=lambda k: (k != self.scenario.metrics[j], order.index(found[k].metric),
                                            found[k].horizon or 0.0))

    def rows(self, metric: str | None = None) -> tuple[list[float | None], list[list[float | None]]]:
        """``(init_row, R)`` with ``R[i][j]`` the score on j after training up to i.

        ``metric``: a metric key (``hd95``, ``td_auc@24``); default the primary metric of each
        experience. Cells without that metric get ``None`` (by default the metrics beside the
        primary one are computed only where trained_upto >= evaluated_on).
        """
        n = len(self.scenario.experiences)
        if metric is None:
            grid = {(e.trained_upto, e.evaluated_on): e.value for e in self.matrix
                    if e.metric == self.scenario.metrics[e.evaluated_on]}
        else:
            grid = {(e.trained_upto, e.evaluated_on): e.value for e in self.matrix if e.key == metric}
        return ([grid.get((-1, j)) for j in range(n)],
                [[grid.get((i, j)) for j in range(n)] for i in range(n)])

    def subjects(self, j: int, trained_upto: int | None = None) -> dict[str, list[float | None]]:
        """Per-subject values on experience ``j`` of the model trained up to ``trained_upto`` (default: the
        final model; -1: the untrained one); empty if not recorded."""
        last = len(self.scenario.experiences) - 1
        i = last if trained_upto is None else trained_upto
        return next((s.values for s in self.per_subject
                     if s.evaluated_on == j and (last if s.trained_upto is None else s.trained_upto) == i), {})


def clean_float(x: float | None) -> float | None:
    """NaN/inf -> None so the JSON stays standard."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def result_path(out_dir: str | Path, result: RunResult) -> Path:
    return Path(out_dir) / result.scenario.name / result.strategy.name / f"{result.run_id}.json"


def write_result(result: RunResult, out_dir: str | Path, overwrite: bool = True) -> Path:
    """Write ``<out>/<scenario>/<strategy>/<run_id>.json`` atomically.

    With ``overwrite=False`` (what the harness uses) an existing file is never replaced: a clash of
    run ids is an error instead of a lost result.
    """
    path = result_path(out_dir, result)
    text = json.dumps(result.model_dump(mode="json"), indent=2) + "\n"
    if not atomic_write_text(path, text, overwrite=overwrite):
        raise ResultError(f"{path} already exists: refusing to overwrite another run's result")
    return path


def _v1_to_v2(data: dict) -> dict:
    # Schema 1 is schema 2 with the primary metric only: its fields all keep their meaning.
    return {**data, "schema_version": 2}


def _v2_to_v3(data: dict) -> dict:
    # Until schema 3 the precision followed the device: bfloat16 autocast on CUDA, none on the CPU.
    env = data.get("env")
    if isinstance(env, dict) and "precision" not in env:
        env = {**env, "precision": "bf16" if env.get("device") == "cuda" else "fp32"}
    return {**data, "env": env, "schema_version": 3}


UPGRADES = {1: _v1_to_v2, 2: _v2_to_v3}  # version -> function turning a file of that version into the next


def upgrade(data: dict) -> dict:
    """Convert a result of an older schema, step by step, to ``SCHEMA_VERSION``."""
    while data["schema_version"] < SCHEMA_VERSION:
        data = UPGRADES[data["schema_version"]](data)
    return data


def parse_result(data: object, source: str = "<data>") -> RunResult:
    if not isinstance(data, dict):
        raise ResultError(f"{source}: not a JSON object")
    version = data.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ResultError(f"{source}: missing or non-integer schema_version")
    if version > SCHEMA_VERSION:
        raise ResultError(
            f"{source}: schema_version {version} is newer than this unicon-bench supports "
            f"({SCHEMA_VERSION}); upgrade unicon-bench"
        )
    if version < min(UPGRADES):
        raise ResultError(f"{source}: schema_version {version} is older than any this unicon-bench reads")
    return validate(RunResult, upgrade(data), f"{source}: invalid result", ResultError)


def read_result(path: str | Path) -> RunResult:
    return parse_result(read_json(path, "result", ResultError), str(path))


def find_results(root: str | Path) -> list[Path]:
    root = Path(root)
    return sorted(root.rglob("*.json")) if root.is_dir() else [root]
