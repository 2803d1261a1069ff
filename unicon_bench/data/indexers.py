"""Manifests from the layouts of public CT/PET data sets (``unicon-bench data index``).

- ``autopet``: one folder per study holding ``CTres.nii.gz`` (CT on the PET grid, HU),
  ``SUV.nii.gz`` (PET in SUV) and ``SEG.nii.gz`` (lesions), e.g. ``PETCT_0011/<study>/`` (FDG-PET-CT-Lesions).
- ``hecktor``: per patient ``<id>__CT``/``<id>__PT`` NIfTI (2022: ``imagesTr/``, GTV in ``labelsTr/<id>``)
  or ``<id>_ct``/``<id>_pt``/``<id>_ct_gtvt`` (2021, per-patient folders), plus the clinical CSVs:
  recurrence-free survival (``RFS`` + ``Relapse``, or ``Progression free survival`` + ``Progression``),
  ``Age`` and ``Tobacco``. PET rows get ``resample_label=1`` (the GTV lies on the CT grid).
- ``msd``: a Medical Segmentation Decathlon task: ``dataset.json`` listing ``imagesTr``/``labelsTr``
  pairs of one CT (or PET) channel; the unlabelled ``imagesTs`` are left out.

Files are found, not opened (``unicon-bench data check`` opens them). Subjects are split into train
and eval by a hash of their id, so both modalities of a subject land in the same split.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from unicon_bench.data.manifest import MODALITIES, ManifestError
from unicon_bench.fileio import validate

FORMATS = ("autopet", "hecktor", "msd")


@dataclass
class Index:
    """Manifest records plus notes on what was skipped."""

    records: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def assign_splits(records: list[dict[str, Any]], eval_fraction: float, seed: int = 0) -> None:
    """Set ``split`` per subject: the ``eval_fraction`` of subjects with the smallest hash are eval
    (at least one of each split when there are two subjects or more)."""
    subjects = sorted({r["subject_id"] for r in records},
                      key=lambda s: hashlib.sha256(f"{seed}:{s}".encode()).hexdigest())
    n_eval = round(eval_fraction * len(subjects))
    if len(subjects) >= 2:
        n_eval = min(max(n_eval, 1 if eval_fraction > 0 else 0), len(subjects) - 1)
    evals = set(subjects[:n_eval])
    for r in records:
        r["split"] = "eval" if r["subject_id"] in evals else "train"


def _nifti(folder: Path, stem: str) -> Path | None:
    for suffix in (".nii.gz", ".nii"):
        if (folder / f"{stem}{suffix}").is_file():
            return folder / f"{stem}{suffix}"
    return None


def index_autopet(root: Path) -> Index:
    out = Index()
    for ct in sorted(root.rglob("CTres.nii*")):
        study = ct.parent
        subject = study.relative_to(root).as_posix() if study != root else study.name
        seg, suv = _nifti(study, "SEG"), _nifti(study, "SUV")
        if seg is None:
            out.notes.append(f"{study}: no SEG.nii.gz, study skipped")
            continue
        out.records.append({"subject_id": subject, "modality": "CT", "image": ct, "label": seg})
        if suv is None:
            out.notes.append(f"{study}: no SUV.nii.gz, CT only")
        else:
            out.records.append({"subject_id": subject, "modality": "PET", "image": suv, "label": seg})
    if not out.records:
        raise ManifestError(f"no AutoPET studies (folders with CTres.nii.gz and SEG.nii.gz) under {root}")
    return out


_HECKTOR_FILE = re.compile(r"^(?P<pid>.+?)(?:__|_)(?P<kind>ct_gtvt|gtvt|ct|pt)\.nii(?:\.gz)?$", re.IGNORECASE)
_ID_COLUMNS = ("PatientID", "Patient", "patient_id", "PatientId")
_TIME_COLUMNS = ("RFS", "Progression free survival", "PFS")
_EVENT_COLUMNS = ("Relapse", "Progression")


def _hecktor_clinical(root: Path, csvs: list[Path]) -> dict[str, dict[str, str]]:
    """Per patient, the merged columns of every CSV with a patient-id column."""
    import pandas as pd

    merged: dict[str, dict[str, str]] = {}
    for path in csvs or sorted(root.rglob("*.csv")):
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise ManifestError(f"cannot read HECKTOR clinical file {path}: {exc}".replace("\n", " ")) from None
        frame.columns = [str(c).strip() for c in frame.columns]
        id_col = next((c for c in _ID_COLUMNS if c in frame.columns), None)
        if id_col is None:
            continue
        for rec in frame.to_dict("records"):
            merged.setdefault(str(rec[id_col]).strip(), {}).update({k: str(v).strip() for k, v in rec.items()})
    return merged


def _first(rec: dict[str, str], columns: tuple[str, ...]) -> str:
    return next((rec[c] for c in columns if rec.get(c, "") != ""), "")


def index_hecktor(root: Path, clinical_csvs: list[Path] | None = None) -> Index:
    out = Index()
    files: dict[str, dict[str, Path]] = {}
    for path in sorted(root.rglob("*.nii*")):
        m = _HECKTOR_FILE.match(path.name)
        kind = m["kind"].lower() if m else None
        if m is None and path.parent.name == "labelsTr":
            pid, kind = re.sub(r"\.nii(\.gz)?$", "", path.name), "gtv"
        elif m is None:
            continue
        else:
            pid, kind = m["pid"], "gtv" if kind in ("ct_gtvt", "gtvt") else kind
        files.setdefault(pid, {})[kind] = path
    clinical = _hecktor_clinical(root, clinical_csvs or [])
    for pid in sorted(files):
        found = files[pid]
        if "ct" not in found and "pt" not in found:
            continue
        rec = clinical.get(pid, {})
        site = re.match(r"[A-Za-z]+", pid)
        common = {"subject_id": pid, "site": site[0] if site else "", "survival_time": _first(rec, _TIME_COLUMNS),
                  "event": _first(rec, _EVENT_COLUMNS), "age": rec.get("Age", ""), "smoking": rec.get("Tobacco", "")}
        if "gtv" not in found:
            out.notes.append(f"{pid}: no GTV mask, rows without label")
        if not rec:
            out.notes.append(f"{pid}: not in the clinical CSVs, rows without survival")
        for kind, modality in (("ct", "CT"), ("pt", "PET")):
            if kind in found:
                out.records.append({**common, "modality": modality, "image": found[kind], "label": found.get("gtv", ""),
                                    "resample_label": 1 if kind == "pt" and "gtv" in found else ""})
    if not out.records:
        raise ManifestError(f"no HECKTOR images (<id>__CT.nii.gz, <id>__PT.nii.gz or <id>_ct.nii.gz) under {root}")
    return out


_PATH = r"^[^\x00]+$"  # a relative or absolute path, no NUL byte


class _MSDPair(BaseModel):
    image: str = Field(pattern=_PATH)
    label: str = Field(pattern=_PATH)


class MSDTask(BaseModel):
    """The fields of an MSD ``dataset.json`` the index reads (others are ignored)."""

    model_config = ConfigDict(extra="ignore")

    name: str | None = None
    modality: dict[str, str] | str = Field(default_factory=dict)
    training: list[_MSDPair]
    test: list[Any] = Field(default_factory=list)


def index_msd(root: Path) -> Index:
    out = Index()
    files = [root / "dataset.json"] if (root / "dataset.json").is_file() else sorted(root.glob("*/dataset.json"))
    if not files:
        raise ManifestError(f"no Medical Segmentation Decathlon dataset.json in {root} or its sub-folders")
    for path in files:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as exc:
            raise ManifestError(f"{path}: not an MSD dataset.json ({type(exc).__name__}: {exc})") from None
        meta = validate(MSDTask, raw, f"{path}: not an MSD dataset.json", ManifestError)
        modality = meta.modality
        channels = list(modality.values()) if isinstance(modality, dict) else [modality]
        if len(channels) != 1 or str(channels[0]).upper() not in MODALITIES:
            raise ManifestError(f"{path}: modality {channels} is not one CT or PET channel; only CT/PET tasks are supported")
        site = meta.name if meta.name is not None else path.parent.name
        for pair in meta.training:
            image, label = path.parent / pair.image, path.parent / pair.label
            subject = re.sub(r"\.nii(\.gz)?$", "", image.name)
            out.records.append({"subject_id": subject, "modality": MODALITIES[str(channels[0]).upper()],
                                "image": image.resolve(), "label": label.resolve(), "site": site})
        if meta.test:
            out.notes.append(f"{path}: {len(meta.test)} unlabelled test image(s) left out")
    if not out.records:
        raise ManifestError(f"no training pairs listed in {', '.join(map(str, files))}")
    return out


def index_dataset(fmt: str, root: str | Path, eval_fraction: float = 0.25, seed: int = 0,
                  clinical_csvs: list[Path] | None = None) -> Index:
    """Manifest records of the data set at ``root`` in layout ``fmt`` (one of :data:`FORMATS`)."""
    root = Path(root)
    if not root.is_dir():
        raise ManifestError(f"data set folder {root} not found")
    if not 0 <= eval_fraction < 1:
        raise ManifestError(f"--eval-fraction must be in [0, 1), got {eval_fraction}")
    if fmt == "autopet":
        index = index_autopet(root)
    elif fmt == "hecktor":
        index = index_hecktor(root, clinical_csvs)
    elif fmt == "msd":
        index = index_msd(root)
    else:
        raise ManifestError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    assign_splits(index.records, eval_fraction, seed)
    return index
