"""The manifest: a CSV listing the CT/PET studies of a real-data scenario, one image per row.

Columns (see the README, "Use your own data"):

- required: ``subject_id``, ``modality`` (CT, or PET/PT), ``image`` (a ``.nii``/``.nii.gz`` file or a
  DICOM series folder), ``split`` (train, or eval; ``test``/``val`` are read as eval)
- optional: ``label`` (lesion mask), ``site``, ``class_label`` (0/1 malignancy), ``survival_time``,
  ``event`` (0/1), and free extra columns. Extra columns the loader reads: ``age``, ``smoking``
  (clinical values), ``report`` (free text), ``resample_label`` (1: the mask lies on another grid,
  resample it onto the image's), and for PET NIfTI in Bq/ml (``nifti_pet_units: bqml``)
  ``patient_weight_kg``, ``injected_dose_bq``, ``half_life_s`` and ``uptake_time_s``.

Paths are relative to the CSV's folder or absolute. Every problem is reported with the CSV's path,
the row number (1 = first data row) and the subject.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unicon_bench.errors import ConfigError, UniconBenchError

REQUIRED = ("subject_id", "modality", "image", "split")
OPTIONAL = ("label", "site", "class_label", "survival_time", "event")
MODALITIES = {"CT": "CT", "PET": "PET", "PT": "PET"}
SPLITS = {"train": "train", "training": "train", "eval": "eval", "test": "eval", "val": "eval", "validation": "eval"}
NIFTI_SUFFIXES = (".nii", ".nii.gz")
_NEEDS = {"segmentation": "a label", "classification": "a class_label", "prognosis": "survival_time and event"}


class ManifestError(UniconBenchError):
    """A manifest that cannot be read, or a study listed in it that cannot be used."""


class BadRowsError(ManifestError):
    """Rows of a readable manifest with unusable values; ``problems`` has one line per row."""

    def __init__(self, message: str, problems: list[str]):
        super().__init__(message)
        self.problems = problems


def is_nifti(path: Path) -> bool:
    return path.name.lower().endswith(NIFTI_SUFFIXES)


@dataclass(frozen=True)
class Row:
    """One study of the manifest; numbers absent from the CSV are NaN."""

    number: int  # 1-based data row (the CSV line is number + 1)
    subject_id: str
    modality: str
    image: Path
    split: str
    label: Path | None = None
    site: str = ""
    class_label: float = math.nan
    survival_time: float = math.nan
    event: float = math.nan
    extra: dict[str, str] = field(default_factory=dict)

    def where(self) -> str:
        return f"row {self.number} (subject {self.subject_id}, {self.modality})"

    def value(self, column: str) -> str:
        """The raw text of ``column`` ('' when empty or absent)."""
        if column in self.extra:
            return self.extra[column]
        v = getattr(self, column, "")
        if isinstance(v, float):
            return "" if math.isnan(v) else f"{v:g}"
        return "" if v is None else str(v)

    def number_of(self, column: str) -> float:
        """An extra column as a float (NaN when empty, absent or not a number)."""
        try:
            return float(self.extra.get(column, "") or "nan")
        except ValueError:
            return math.nan

    def has_target(self, task: str) -> bool:
        if task == "segmentation":
            return self.label is not None
        if task == "classification":
            return not math.isnan(self.class_label)
        return not (math.isnan(self.survival_time) or math.isnan(self.event))


@dataclass(frozen=True)
class Manifest:
    path: Path
    columns: tuple[str, ...]
    rows: tuple[Row, ...]


def _number(text: str, column: str, allowed: tuple[float, ...] | None = None, minimum: float | None = None) -> float:
    if text == "":
        return math.nan
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{column} '{text}' is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{column} '{text}' is not finite")
    if allowed is not None and value not in allowed:
        raise ValueError(f"{column} must be one of {', '.join(f'{a:g}' for a in allowed)}, got '{text}'")
    if minimum is not None and value < minimum:
        raise ValueError(f"{column} must be >= {minimum:g}, got '{text}'")
    return value


def _path(text: str, base: Path, column: str, check: bool) -> Path:
    path = Path(text).expanduser()
    path = path if path.is_absolute() else base / path
    if check:
        if not path.exists():
            raise ValueError(f"{column} {path} not found")
        if not (path.is_dir() or is_nifti(path) or path.suffix.lower() == ".dcm"):
            raise ValueError(f"{column} {path} is neither NIfTI (.nii, .nii.gz) nor DICOM (a series folder or .dcm)")
    return path


def _row(number: int, raw: dict[str, str], base: Path, check_files: bool) -> Row:
    subject = raw["subject_id"]
    if not subject:
        raise ValueError("subject_id is empty")
    modality = MODALITIES.get(raw["modality"].upper())
    if modality is None:
        raise ValueError(f"modality must be CT or PET, got '{raw['modality']}'")
    split = SPLITS.get(raw["split"].lower())
    if split is None:
        raise ValueError(f"split must be train or eval, got '{raw['split']}'")
    if not raw["image"]:
        raise ValueError("image is empty")
    label = raw.get("label", "")
    return Row(
        number=number,
        subject_id=subject,
        modality=modality,
        image=_path(raw["image"], base, "image", check_files),
        split=split,
        label=_path(label, base, "label", check_files) if label else None,
        site=raw.get("site", ""),
        class_label=_number(raw.get("class_label", ""), "class_label", allowed=(0.0, 1.0)),
        survival_time=_number(raw.get("survival_time", ""), "survival_time", minimum=0.0),
        event=_number(raw.get("event", ""), "event", allowed=(0.0, 1.0)),
        extra={k: v for k, v in raw.items() if k not in REQUIRED + OPTIONAL},
    )


def problem_list(problems: list[str], limit: int = 8) -> str:
    more = f"; ... and {len(problems) - limit} more" if len(problems) > limit else ""
    return "; ".join(problems[:limit]) + more


def read_manifest(path: str | Path, check_files: bool = True) -> Manifest:
    """Read and validate a manifest; every bad row is listed in one :class:`ManifestError`."""
    import pandas as pd

    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except FileNotFoundError:
        raise ManifestError(f"manifest {path} not found") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ManifestError(f"cannot read manifest {path}: {str(exc).strip()}".replace("\n", " ")) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise ManifestError(f"manifest {path} lacks the column(s) {', '.join(missing)} (has: {', '.join(frame.columns)})")
    if frame.empty:
        raise ManifestError(f"manifest {path} has no rows")
    base = path.resolve().parent
    rows, problems = [], []
    for number, raw in enumerate(frame.to_dict("records"), start=1):
        raw = {k: str(v).strip() for k, v in raw.items()}
        try:
            rows.append(_row(number, raw, base, check_files))
        except ValueError as exc:
            problems.append(f"row {number} (subject {raw.get('subject_id') or '?'}): {exc}")
    problems.extend(_cross_row_problems(rows))
    if problems:
        raise BadRowsError(f"manifest {path}: {len(problems)} bad row(s): {problem_list(problems)}", problems)
    return Manifest(path=path, columns=tuple(frame.columns), rows=tuple(rows))


def _cross_row_problems(rows: list[Row]) -> list[str]:
    """What no single row shows: an image listed twice, and a subject in both splits (its eval scans would
    have been trained on: every score of that subject would be inflated)."""
    problems = []
    first_image: dict[Path, Row] = {}
    splits: dict[str, dict[str, Row]] = {}
    for row in rows:
        earlier = first_image.setdefault(row.image, row)
        if earlier is not row:
            problems.append(f"row {row.number} (subject {row.subject_id}): lists the same image as row {earlier.number} "
                            f"({row.image}); each study once")
        splits.setdefault(row.subject_id, {}).setdefault(row.split, row)
    for subject, by_split in splits.items():
        if len(by_split) > 1:
            train, ev = by_split["train"], by_split["eval"]
            problems.append(f"row {ev.number} (subject {subject}): the subject is in eval here and in train in row "
                            f"{train.number}; a subject belongs to one split")
    return problems


def _matches(row: Row, column: str, wanted: Any) -> bool:
    values = wanted if isinstance(wanted, list) else [wanted]
    have = row.value(column)
    for v in values:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            try:
                if float(have) == float(v):
                    return True
            except ValueError:
                pass
        elif have == str(v):
            return True
    return False


def select_rows(manifest: Manifest, experience, split: str, limit: int | None = None) -> list[Row]:
    """The rows of one experience's ``split``: its modality, its site (when the scenario names one),
    its ``where`` filters, and only rows with the target its task needs; the first ``limit`` of them."""
    for column in experience.where:
        if column not in manifest.columns:
            raise ConfigError(f"experience {experience.name}: where-column '{column}' is not in manifest {manifest.path}")
    by_site = "site" in experience.model_fields_set
    if by_site and "site" not in manifest.columns:
        raise ConfigError(f"experience {experience.name} selects site {experience.site} but manifest {manifest.path} has no site column")
    rows = [
        r for r in manifest.rows
        if r.split == split and r.modality == experience.modality and (not by_site or r.site == experience.site)
        and all(_matches(r, c, v) for c, v in experience.where.items()) and r.has_target(experience.task)
    ]
    if not rows:
        raise ConfigError(
            f"experience {experience.name}: no {split} rows in manifest {manifest.path} with modality "
            f"{experience.modality}{f', site {experience.site}' if by_site else ''} and {_NEEDS[experience.task]}"
        )
    return rows[:limit] if limit else rows


def write_manifest(records: list[dict[str, Any]], path: str | Path) -> Path:
    """Write ``records`` as a manifest CSV atomically; paths become relative to the CSV's folder."""
    import os

    import pandas as pd

    from unicon_bench.results import atomic_write_text

    path = Path(path)
    base = path.resolve().parent

    def rel(value: Any) -> Any:
        if isinstance(value, Path):
            return Path(os.path.relpath(value.resolve(), base)).as_posix()
        return value

    frame = pd.DataFrame([{k: rel(v) for k, v in r.items()} for r in records])
    columns = [c for c in REQUIRED + OPTIONAL if c in frame.columns]
    frame = frame[columns + [c for c in frame.columns if c not in columns]]
    atomic_write_text(path, frame.to_csv(index=False))
    return path
