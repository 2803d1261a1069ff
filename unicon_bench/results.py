"""The result file: one versioned JSON per run, the contract everything downstream reads.

``schema_version`` is an integer bumped on any incompatible change; readers refuse files from a
newer schema with a clear error. Undefined values (an AUC on a single-class eval set, BWT of a
one-experience stream) are ``null``.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from unicon_bench.errors import UniconBenchError
from unicon_bench.fileio import read_json, validate

SCHEMA_VERSION = 1
METRIC_OF_TASK = {"segmentation": "dice", "classification": "auc", "prognosis": "c_index"}


class ResultError(UniconBenchError):
    """A result file that cannot be read, is from a newer schema, or is inconsistent."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScenarioInfo(_Model):
    name: str
    version: int
    kind: Literal["domain", "task", "modality"]
    task_identity_at_test: bool
    experiences: list[str] = Field(min_length=1)
    metrics: list[Literal["dice", "auc", "c_index"]] = Field(min_length=1)
    quick: bool = False


class StrategyInfo(_Model):
    name: str
    params: dict


class MatrixEntry(_Model):
    metric: Literal["dice", "auc", "c_index"]
    trained_upto: int = Field(ge=-1, description="-1 = the untrained model")
    evaluated_on: int = Field(ge=0)
    value: float | None = Field(ge=0.0, le=1.0, description="Dice, AUC and C-index all lie in [0, 1]")


class Summary(_Model):
    final_average: float | None
    bwt: float | None
    fwt: float | None
    forgetting: float | None
    plasticity: float | None


class Cost(_Model):
    trainable_params: list[int] = Field(description="parameters updated while training each experience")
    total_params: int
    wall_time_s: float
    train_time_s: list[float]
    peak_rss_mb: float
    buffer_bytes: int
    backbone_weights: str | None = Field(None, description="pretrained weights given (file, bundle or pretrain folder)")
    weights_sha256: str | None = Field(None, description="SHA-256 of the weights file loaded")
    weights_kind: Literal["state_dict", "safetensors", "monai_bundle", "pretrain"] | None = None
    weights_report: list[str] | None = Field(None, description="tensors loaded, keys missing/unexpected")
    frozen: str | None = Field(None, description="freeze policy of the backbone: none, frozen or partial:N")
    frozen_params: int | None = Field(None, description="backbone parameters frozen by that policy")


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


class RunResult(_Model):
    schema_version: int
    run_id: str
    started: str
    finished: str
    scenario: ScenarioInfo
    strategy: StrategyInfo
    seed: int
    matrix: list[MatrixEntry]
    summary: Summary
    cost: Cost
    env: Env
    extras: dict = Field(default_factory=dict, description="strategy-specific facts, e.g. routing accuracy")

    @model_validator(mode="after")
    def _matrix_complete(self) -> "RunResult":
        n = len(self.scenario.experiences)
        if len(self.scenario.metrics) != n:
            raise ValueError("scenario.metrics must name one metric per experience")
        seen = {(e.trained_upto, e.evaluated_on) for e in self.matrix}
        expected = {(i, j) for i in range(-1, n) for j in range(n)}
        if seen != expected or len(self.matrix) != len(expected):
            raise ValueError(f"matrix must hold exactly one entry per (trained_upto in -1..{n-1}, evaluated_on in 0..{n-1})")
        for e in self.matrix:
            if e.metric != self.scenario.metrics[e.evaluated_on]:
                raise ValueError(f"matrix entry for experience {e.evaluated_on} uses metric {e.metric}")
        if len(self.cost.trainable_params) != n or len(self.cost.train_time_s) != n:
            raise ValueError("cost.trainable_params and cost.train_time_s need one entry per experience")
        return self

    def rows(self) -> tuple[list[float | None], list[list[float | None]]]:
        """``(init_row, R)`` with ``R[i][j]`` the score on j after training up to i."""
        n = len(self.scenario.experiences)
        grid = {(e.trained_upto, e.evaluated_on): e.value for e in self.matrix}
        return [grid[(-1, j)] for j in range(n)], [[grid[(i, j)] for j in range(n)] for i in range(n)]


def clean_float(x: float | None) -> float | None:
    """NaN/inf -> None so the JSON stays standard."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temporary file in the same folder and rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def result_path(out_dir: str | Path, result: RunResult) -> Path:
    return Path(out_dir) / result.scenario.name / result.strategy.name / f"{result.run_id}.json"


def write_result(result: RunResult, out_dir: str | Path) -> Path:
    path = result_path(out_dir, result)
    atomic_write_text(path, json.dumps(result.model_dump(mode="json"), indent=2) + "\n")
    return path


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
    return validate(RunResult, data, f"{source}: invalid result", ResultError)


def read_result(path: str | Path) -> RunResult:
    return parse_result(read_json(path, "result", ResultError), str(path))


def find_results(root: str | Path) -> list[Path]:
    root = Path(root)
    return sorted(root.rglob("*.json")) if root.is_dir() else [root]
