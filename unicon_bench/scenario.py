"""Scenario specifications: versioned YAML files describing a continual-learning stream.

A scenario names its kind (domain/task/modality), whether task identity is given at test time,
its experiences (modality, task, site), the data source and the training budget every strategy
gets. Built-ins live in ``unicon_bench.scenarios``; ``get_scenario`` also accepts a YAML path and
scenarios from the entry-point group ``unicon_bench.scenarios`` (value: a package containing YAML
files). Built-in names take precedence over plugin names.
"""

from __future__ import annotations

from importlib import resources
from importlib.metadata import entry_points
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from unicon_bench.errors import UnknownNameError
from unicon_bench.fileio import read_yaml_mapping, validate

TaskKind = Literal["segmentation", "classification", "prognosis"]
Modality = Literal["CT", "PET"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExperienceSpec(_Strict):
    """One experience of the stream."""

    name: str
    modality: Modality
    task: TaskKind
    site: str = "A"
    n_train: int | None = Field(None, gt=0, description="overrides data.n_train")
    n_eval: int | None = Field(None, gt=0, description="overrides data.n_eval")
    with_ct: bool = Field(False, description="PET samples also carry the co-registered CT (2nd channel)")

    @model_validator(mode="after")
    def _check_with_ct(self) -> "ExperienceSpec":
        if self.with_ct and self.modality != "PET":
            raise ValueError(f"experience {self.name}: with_ct applies to PET experiences only")
        return self

    @property
    def channels(self) -> tuple[str, ...]:
        """The input channels of this experience's samples, in order."""
        return (self.modality, "CT") if self.with_ct else (self.modality,)


class DataSpec(_Strict):
    source: Literal["phantom"] = "phantom"
    n_train: int = Field(48, gt=0)
    n_eval: int = Field(16, gt=0)
    shape: tuple[int, int, int] = (32, 32, 32)
    seed: int = 0


class TrainSpec(_Strict):
    """Training budget shared by every strategy on this scenario (fairness)."""

    epochs: int = Field(30, gt=0)
    batch_size: int = Field(4, gt=0)
    lr: float = Field(1e-3, gt=0)
    eval_batch_size: int = Field(8, gt=0)


class QuickSpec(_Strict):
    """Overrides applied by ``--quick``: tiny volumes and few epochs for smoke tests and CI."""

    n_train: int = 8
    n_eval: int = 8
    shape: tuple[int, int, int] = (16, 16, 16)
    epochs: int = 2


class ScenarioSpec(_Strict):
    name: str
    version: int = Field(ge=1)
    kind: Literal["domain", "task", "modality"]
    description: str
    task_identity_at_test: bool
    inputs: str = ""
    experiences: list[ExperienceSpec] = Field(min_length=1)
    data: DataSpec = DataSpec()
    train: TrainSpec = TrainSpec()
    quick: QuickSpec = QuickSpec()

    @model_validator(mode="after")
    def _check(self) -> "ScenarioSpec":
        names = [e.name for e in self.experiences]
        if len(set(names)) != len(names):
            raise ValueError(f"experience names must be unique, got {names}")
        if self.kind == "domain" and self.task_identity_at_test:
            raise ValueError("a domain-incremental scenario gives no task identity at test time")
        return self

    def quick_version(self) -> "ScenarioSpec":
        """The same stream with the ``quick`` overrides applied."""
        q = self.quick
        exps = [e.model_copy(update={"n_train": None, "n_eval": None}) for e in self.experiences]
        data = self.data.model_copy(update={"n_train": q.n_train, "n_eval": q.n_eval, "shape": q.shape})
        train = self.train.model_copy(update={"epochs": q.epochs})
        return self.model_copy(update={"experiences": exps, "data": data, "train": train})

    def sizes(self, index: int) -> tuple[int, int]:
        exp = self.experiences[index]
        return exp.n_train or self.data.n_train, exp.n_eval or self.data.n_eval


def load_scenario_file(path: str | Path) -> ScenarioSpec:
    """Parse and validate a scenario YAML file; errors are one clear ConfigError."""
    raw = read_yaml_mapping(path, "scenario")
    return validate(ScenarioSpec, raw, f"invalid scenario {path}")


def _builtin_files() -> dict[str, Path]:
    root = resources.files("unicon_bench.scenarios")
    return {Path(str(f)).stem: Path(str(f)) for f in root.iterdir() if str(f).endswith(".yaml")}


def _plugin_files() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for ep in entry_points(group="unicon_bench.scenarios"):
        try:
            root = resources.files(ep.value)
        except (ModuleNotFoundError, TypeError):
            continue
        for f in root.iterdir():
            if str(f).endswith((".yaml", ".yml")):
                found[Path(str(f)).stem] = Path(str(f))
    return found


def _all_files() -> dict[str, Path]:
    return {**_plugin_files(), **_builtin_files()}


def list_scenarios() -> list[str]:
    """Names of the built-in and plugin scenarios."""
    return sorted(_all_files())


def get_scenario(name_or_path: str | Path) -> ScenarioSpec:
    """A scenario by registered name, or from a path to a YAML file."""
    files = _all_files()
    key = str(name_or_path)
    if key in files:
        return load_scenario_file(files[key])
    path = Path(key)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return load_scenario_file(path)
    raise UnknownNameError("scenario", key, sorted(files))
