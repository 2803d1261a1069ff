"""Scenario specifications: versioned YAML files describing a continual-learning stream.

A scenario names its kind (domain/task/modality), whether task identity is given at test time,
its experiences (modality, task, site), the data source and the training budget every strategy
gets. Built-ins live in ``unicon_bench.scenarios``; ``get_scenario`` also accepts a YAML path and
scenarios from the entry-point group ``unicon_bench.scenarios`` (value: a package containing YAML
files). Built-in names take precedence over plugin names.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from unicon_bench.errors import UnknownNameError
from unicon_bench.fileio import MAX_SEED, SAFE_NAME, Int, read_yaml_mapping, validate
from unicon_bench.registry import Registry

TaskKind = Literal["segmentation", "classification", "prognosis"]
Modality = Literal["CT", "PET"]
Cohort = Literal["mixed", "screening", "staging"]  # the phantom populations (unicon_bench.data.phantoms.COHORTS)


class _Strict(BaseModel):
    # Numbers are finite (.inf/.nan refused) and integers are not booleans (``Int``): checked here, at load.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


_NET_STRIDE = 16  # the model zoo's network halves the resolution four times
MAX_SIDE = 512  # voxels per side: a 512^3 float32 volume is 512 MiB, and a cohort holds many
MAX_SUBJECTS = 100_000  # phantoms generated per experience and split


def _check_size(size: tuple[int, int, int]) -> tuple[int, int, int]:
    if any(s < _NET_STRIDE or s % _NET_STRIDE or s > MAX_SIDE for s in size):
        raise ValueError(f"sides must be multiples of {_NET_STRIDE} (the network halves 4 times) and at most "
                         f"{MAX_SIDE} voxels (a {MAX_SIDE}^3 float32 volume is 512 MiB), got {size}")
    return size


Shape = Annotated[tuple[Int, Int, Int], AfterValidator(_check_size)]


class ExperienceSpec(_Strict):
    """One experience of the stream."""

    name: str
    modality: Modality
    task: TaskKind
    site: str = "A"
    cohort: Cohort = Field("mixed", description="phantom population: mixed (v2), screening (low-dose screening, "
                           "ground-glass nodules) or staging (PET/CT staging of lung cancer)")
    contrast: Literal["none", "venous"] = Field("none", description="phantom CT protocol: none (v2) or venous "
                                                "(portal-venous phase of an iodinated-contrast CT)")
    n_train: Int | None = Field(None, gt=0, le=MAX_SUBJECTS, description="overrides data.n_train")
    n_eval: Int | None = Field(None, gt=0, le=MAX_SUBJECTS, description="overrides data.n_eval")
    with_ct: bool = Field(False, description="PET samples also carry the co-registered CT (2nd channel)")
    where: dict[str, str | int | float | list[str | int | float]] = Field(
        default_factory=dict, description="manifest source: keep rows whose column equals the value (or one of them)"
    )

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
    n_train: Int = Field(48, gt=0, le=MAX_SUBJECTS)
    n_eval: Int = Field(16, gt=0, le=MAX_SUBJECTS)
    shape: Shape = (32, 32, 32)
    seed: Int = Field(0, ge=0, le=MAX_SEED)
    survival: Literal["clinical", "imaging"] = Field(
        "clinical", description="what drives the phantoms' hazard: clinical (v2: volume, malignancy, age, smoking) "
        "or imaging (tumour burden, malignancy, spread, FDG avidity: what the scan shows)")

    def quick(self, q: "QuickSpec") -> "DataSpec":
        return self.model_copy(update={"n_train": q.n_train, "n_eval": q.n_eval, "shape": q.shape})


class ManifestDataSpec(_Strict):
    """Real CT/PET studies listed in a manifest CSV (see ``unicon_bench.data.manifest``)."""

    source: Literal["manifest"]
    manifest: str = Field(description="CSV path, relative to the scenario file's folder or absolute")
    n_train: Int | None = Field(None, gt=0, description="at most this many train rows per experience (none: all)")
    n_eval: Int | None = Field(None, gt=0, description="at most this many eval rows per experience (none: all)")
    shape: Shape = Field((32, 32, 32), description="crop/pad target (voxels, after resampling)")
    spacing: tuple[float, float, float] | None = Field(None, description="target voxel size in mm (none: keep)")
    orientation: str = "RAS"
    crop: Literal["body", "lesion", "none"] = "body"
    ct_window: tuple[float, float] = (-1000.0, 400.0)
    pet_max_suv: float = Field(10.0, gt=0)
    nifti_pet_units: Literal["suv", "bqml"] = "suv"
    foreground_labels: list[Int] | None = Field(None, description="label values that count as lesion (none: > 0)")
    patch: Shape | None = Field(None, description="train segmentation on patches of this size")
    pos_neg: tuple[float, float] = (1.0, 1.0)
    sw_overlap: float = Field(0.25, ge=0, lt=1)
    cache: bool = True
    seed: Int = Field(0, ge=0, le=MAX_SEED)

    @model_validator(mode="after")
    def _sizes(self) -> "ManifestDataSpec":
        if self.patch is not None and any(p > s for p, s in zip(self.patch, self.shape)):
            raise ValueError(f"patch {self.patch} is larger than shape {self.shape}")
        if self.ct_window[0] >= self.ct_window[1]:
            raise ValueError(f"ct_window must be (low, high), got {self.ct_window}")
        return self

    def quick(self, q: "QuickSpec") -> "ManifestDataSpec":
        patch = None if self.patch is None else tuple(min(p, s) for p, s in zip(self.patch, q.shape))
        return self.model_copy(update={"n_train": q.n_train, "n_eval": q.n_eval, "shape": q.shape, "patch": patch})


def _data_source(value: Any) -> str:
    if isinstance(value, dict):
        return value.get("source", "phantom")
    return getattr(value, "source", "phantom")


AnyDataSpec = Annotated[
    Union[Annotated[DataSpec, Tag("phantom")], Annotated[ManifestDataSpec, Tag("manifest")]],
    Discriminator(_data_source),
]


class TrainSpec(_Strict):
    """Training budget shared by every strategy on this scenario (fairness)."""

    epochs: Int = Field(30, gt=0)
    batch_size: Int = Field(4, gt=0)
    lr: float = Field(1e-3, gt=0)
    eval_batch_size: Int = Field(8, gt=0)


class QuickSpec(_Strict):
    """Overrides applied by ``--quick``: tiny volumes and few epochs for smoke tests and CI."""

    n_train: Int = Field(8, gt=0, le=MAX_SUBJECTS)
    n_eval: Int = Field(8, gt=0, le=MAX_SUBJECTS)
    shape: Shape = (16, 16, 16)
    epochs: Int = Field(2, gt=0)


class EvaluationSpec(_Strict):
    """Evaluation settings beyond the primary metrics; every field has a default."""

    nsd_tolerance_mm: float | None = Field(
        None, gt=0, description="NSD tolerance in mm; default: one voxel (the largest spacing of the volumes)")
    horizons: list[float] | None = Field(
        None, min_length=1, description="survival horizons of the time-dependent AUC (the time unit of the data, "
        "months for the phantoms); default: quartiles of the training split's event times")
    breslow_subjects: Int | None = Field(
        16, ge=2, description="training subjects (the first ones of the split) whose predicted risks fit the Breslow "
        "baseline hazard of the integrated Brier score; null: the whole training split (one more prediction of it "
        "per evaluation)")
    threshold: float = Field(0.5, gt=0, lt=1, description="probability threshold of the balanced accuracy")
    ece_bins: Int = Field(10, ge=1, description="equal-width bins of the expected calibration error")
    extra_metrics: Literal["seen", "all", "none"] = Field(
        "seen", description="where the metrics beside the primary one are computed: 'seen', every experience the "
        "model has been trained on (trained_upto >= evaluated_on; the untrained model's row and experiences not "
        "trained yet get the primary metric only); 'all', every cell; 'none', nowhere")

    @model_validator(mode="after")
    def _positive_horizons(self) -> "EvaluationSpec":
        if self.horizons is not None and not all(h > 0 for h in self.horizons):
            raise ValueError(f"horizons must be positive, got {self.horizons}")
        return self


class ScenarioSpec(_Strict):
    name: str = Field(description="names the scenario's folders in the output: " + SAFE_NAME)
    version: Int = Field(ge=1)
    kind: Literal["domain", "task", "modality"]
    description: str
    task_identity_at_test: bool
    inputs: str = ""
    experiences: list[ExperienceSpec] = Field(min_length=1)
    data: AnyDataSpec = DataSpec()
    train: TrainSpec = TrainSpec()
    quick: QuickSpec = QuickSpec()
    evaluation: EvaluationSpec = EvaluationSpec()

    @field_validator("name")
    @classmethod
    def _folder_name(cls, name: str) -> str:
        if not re.fullmatch(SAFE_NAME, name):
            raise ValueError(f"must be a folder name of at most 128 characters: a letter or digit, then letters, "
                             f"digits, '.', '_' or '-' ([A-Za-z0-9][A-Za-z0-9._-]*), got {name!r}")
        return name

    @model_validator(mode="after")
    def _check(self) -> "ScenarioSpec":
        names = [e.name for e in self.experiences]
        if len(set(names)) != len(names):
            raise ValueError(f"experience names must be unique, got {names}")
        if self.data.source == "phantom" and any(e.where for e in self.experiences):
            raise ValueError("experience 'where' filters select manifest rows: they need data.source: manifest")
        if self.data.source == "manifest" and any((e.cohort, e.contrast) != ("mixed", "none") for e in self.experiences):
            raise ValueError("experience 'cohort' and 'contrast' describe phantoms: they need data.source: phantom")
        if self.kind == "domain" and self.task_identity_at_test:
            raise ValueError("a domain-incremental scenario gives no task identity at test time")
        return self

    def quick_version(self) -> "ScenarioSpec":
        """The same stream with the ``quick`` overrides applied."""
        q = self.quick
        exps = [e.model_copy(update={"n_train": None, "n_eval": None}) for e in self.experiences]
        data = self.data.quick(q)
        train = self.train.model_copy(update={"epochs": q.epochs})
        return self.model_copy(update={"experiences": exps, "data": data, "train": train})

    def sizes(self, index: int) -> tuple[int | None, int | None]:
        exp = self.experiences[index]
        return exp.n_train or self.data.n_train, exp.n_eval or self.data.n_eval


def load_scenario_file(path: str | Path) -> ScenarioSpec:
    """Parse and validate a scenario YAML file; errors are one clear ConfigError."""
    raw = read_yaml_mapping(path, "scenario")
    spec = validate(ScenarioSpec, raw, f"invalid scenario {path}")
    if spec.data.source == "manifest" and not Path(spec.data.manifest).is_absolute():
        manifest = os.path.normpath(Path(path).resolve().parent / spec.data.manifest)  # relative to the YAML
        spec = spec.model_copy(update={"data": spec.data.model_copy(update={"manifest": manifest})})
    return spec


# The scenario registry: the YAML files of ``unicon_bench.scenarios`` and of the packages the
# ``unicon_bench.scenarios`` entry points name, found through the one ``Registry`` (built-ins win).
SCENARIOS = Registry("scenario", "unicon_bench.scenarios", "unicon_bench.scenarios", files=(".yaml", ".yml"))


def list_scenarios() -> list[str]:
    """Names of the built-in and plugin scenarios."""
    return SCENARIOS.names()


def get_scenario(name_or_path: str | Path) -> ScenarioSpec:
    """A scenario by registered name, or from a path to a YAML file."""
    key = str(name_or_path)
    if key in SCENARIOS:
        return load_scenario_file(SCENARIOS.get(key))
    path = Path(key)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return load_scenario_file(path)
    raise UnknownNameError("scenario", key, SCENARIOS.names())
