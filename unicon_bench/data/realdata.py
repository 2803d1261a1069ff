"""Real CT/PET studies from a manifest as Avalanche experiences (scenario ``data.source: manifest``).

Per study, a MONAI chain: read (NIfTI/DICOM, PET to SUV) -> ``Orientationd`` (RAS) -> ``Spacingd``
(target mm; masks nearest-neighbour) -> ``ScaleIntensityRanged`` (CT window to [0, 1], SUV / max) ->
a crop of ``shape`` centred on the body or the lesion -> ``ResizeWithPadOrCropd``. Its output is
cached on disk by MONAI's ``PersistentDataset``: one folder per transform configuration (a hash of
the preprocessing settings), one file per study (a hash of its paths and their size and mtime), so
a second epoch and a second run read the cache. With ``patch`` set, segmentation experiences train
on ``RandCropByPosNegLabeld`` patches and are evaluated with ``sliding_window_inference``.

Samples are the tuples of :mod:`unicon_bench.data.streams`. Clinical values a row does not have
are NaN (the task losses only read the columns of their own task, and a task's rows must have its
target); the Avalanche ``targets`` attribute is ``class_label`` with NaN read as 0. Rows without a
``report`` get an empty text (all padding).
"""

from __future__ import annotations

import hashlib
import json
import math
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from monai.inferers import sliding_window_inference
from monai.transforms import Transform

from unicon_bench.data.manifest import Manifest, ManifestError, Row, read_manifest, select_rows
from unicon_bench.data.volumes import StudyError, load_study
from unicon_bench.errors import ConfigError
from unicon_bench.scenario import ManifestDataSpec, ScenarioSpec

CACHE_VERSION = 1
_BODY_HU, _BODY_SUV = -500.0, 0.3  # voxels above these belong to the body (crop: body)
_RAS_LABELS = (("L", "R"), ("P", "A"), ("I", "S"))  # axis codes name the direction each axis points to


def config_key(data: ManifestDataSpec, channels: tuple[str, ...]) -> str:
    """Hash of every setting that changes a preprocessed volume (the cache folder's name)."""
    fields = ("shape", "spacing", "orientation", "crop", "ct_window", "pet_max_suv", "nifti_pet_units", "foreground_labels")
    blob = {"version": CACHE_VERSION, "channels": list(channels), **{f: getattr(data, f) for f in fields}}
    return hashlib.sha256(json.dumps(blob, sort_keys=True, default=list).encode()).hexdigest()[:16]


def _stamp(path: Path) -> list:
    files = sorted(path.iterdir()) if path.is_dir() else [path]
    return [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files if p.is_file()]


def study_key(item: dict) -> bytes:
    """Cache key of one study: its files (path, size, mtime) and what the row says about reading them."""
    row: Row = item["row"]
    ct: Row | None = item.get("ct")
    blob = {
        "image": str(row.image.resolve()), "label": str(row.label.resolve()) if row.label else None,
        "ct": str(ct.image.resolve()) if ct else None, "modality": row.modality, "stamp": item["stamp"],
        "extra": {k: row.extra.get(k, "") for k in ("resample_label", "patient_weight_kg", "injected_dose_bq",
                                                    "half_life_s", "uptake_time_s")},
    }
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest().encode()


class _LoadStudyd(Transform):
    """Read one row's image and mask, and for PET/CT the subject's CT on the PET grid (first step)."""

    def __init__(self, nifti_pet_units: str, foreground: list[int] | None):
        self.nifti_pet_units, self.foreground = nifti_pet_units, foreground

    def __call__(self, item: dict) -> dict:
        out = {**load_study(item["row"], self.nifti_pet_units, self.foreground), "row": item["row"]}
        if item.get("ct") is not None:
            from monai.transforms import ResampleToMatch

            ct = load_study(item["ct"], self.nifti_pet_units)["image"]
            out["ct"] = ResampleToMatch(mode="bilinear", padding_mode="border")(ct, out["image"])
        return out


class _CropAroundd(Transform):
    """Crop ``size`` around the centre of the lesion or body bounding box (pad later if smaller)."""

    def __init__(self, keys: tuple[str, ...], mode: str, size: tuple[int, int, int], body_threshold: float):
        self.keys, self.mode, self.size, self.body_threshold = keys, mode, size, body_threshold

    def __call__(self, d: dict) -> dict:
        from monai.transforms import SpatialCrop
        from monai.transforms.utils import generate_spatial_bounding_box

        source = d["label"]
        if self.mode == "body" or not bool(source.any()):
            source = d["image"] > self.body_threshold
        if not bool(source.any()):
            return d
        start, end = generate_spatial_bounding_box(source)
        crop = SpatialCrop(roi_center=[(s + e) // 2 for s, e in zip(start, end)], roi_size=self.size)
        return {**d, **{k: crop(d[k]) for k in self.keys}}


def preprocessing(data: ManifestDataSpec, channels: tuple[str, ...], keep_meta: bool = True):
    """The deterministic MONAI chain of an experience's ``channels`` (its modality, and CT for PET/CT
    experiences); its output is what the cache holds. Without ``keep_meta`` it ends in plain tensors,
    the channels stacked (what the cache stores and the network gets)."""
    from monai.transforms import (
        Compose, Lambda, Orientationd, ResizeWithPadOrCropd, ScaleIntensityRanged, Spacingd,
    )

    modality, with_ct = channels[0], len(channels) > 1
    keys = ("image", "ct", "label") if with_ct else ("image", "label")
    lo, hi = data.ct_window if modality == "CT" else (0.0, data.pet_max_suv)
    steps = [_LoadStudyd(data.nifti_pet_units, data.foreground_labels),
             Orientationd(keys, axcodes=data.orientation, labels=_RAS_LABELS)]
    if data.spacing is not None:
        steps.append(Spacingd(keys, pixdim=data.spacing, mode=("bilinear",) * (len(keys) - 1) + ("nearest",)))
    steps.append(ScaleIntensityRanged("image", a_min=lo, a_max=hi, b_min=0.0, b_max=1.0, clip=modality == "CT"))
    if with_ct:
        steps.append(ScaleIntensityRanged("ct", a_min=data.ct_window[0], a_max=data.ct_window[1], b_min=0.0,
                                          b_max=1.0, clip=True))
    if data.crop != "none":
        body = (_BODY_HU - lo) / (hi - lo) if modality == "CT" else _BODY_SUV / hi
        steps.append(_CropAroundd(keys, data.crop, tuple(data.shape), body))
    steps.append(ResizeWithPadOrCropd(keys, spatial_size=tuple(data.shape)))
    if not keep_meta:
        steps.append(Lambda(_without_meta))
    return Compose(steps)


def _without_meta(d: dict) -> dict:
    from monai.utils import convert_to_tensor

    plain = {k: convert_to_tensor(d[k], dtype=torch.float32, track_meta=False) for k in ("image", "ct", "label") if k in d}
    if "ct" in plain:  # PET/CT: PET then CT channels, as the phantom streams
        plain["image"] = torch.cat([plain["image"], plain.pop("ct")])
    return plain


def study_dataset(rows: list[Row], data: ManifestDataSpec, channels: tuple[str, ...], cache_root: Path | None,
                  ct_rows: list[Row] | None = None):
    """MONAI dataset of preprocessed ``{"image", "label"}`` dicts; persistent on disk when ``cache_root``.
    ``ct_rows`` (PET/CT) are the CT rows of the same subjects, one per row."""
    from monai.data import Dataset, PersistentDataset

    chain = preprocessing(data, channels, keep_meta=False)
    items = []
    for r, ct in zip(rows, ct_rows or [None] * len(rows)):
        stamp = _stamp(r.image) + (_stamp(r.label) if r.label else []) + (_stamp(ct.image) if ct else [])
        items.append({"row": r, "stamp": stamp, **({"ct": ct} if ct else {})})
    if cache_root is None:
        return Dataset(items, transform=chain)
    folder = cache_root / config_key(data, channels)
    # weights_only=True (MONAI's default, stated): a cache file never unpickles objects; MONAI writes it via
    # a temporary file and recomputes a corrupt one
    return PersistentDataset(items, transform=chain, cache_dir=folder, hash_func=study_key, track_meta=False,
                             weights_only=True)


def _root_cause(exc: BaseException) -> BaseException:
    seen = exc
    while seen.__cause__ is not None or seen.__context__ is not None:
        if isinstance(seen, StudyError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return seen


def prepare(dataset, rows: list[Row], manifest: Path, progress=None) -> None:
    """Preprocess (and cache) every study once, so a bad file stops the run before any training,
    with one error naming the manifest, the row and the file."""
    for i, row in enumerate(rows):
        try:
            dataset[i]
        except Exception as exc:  # noqa: BLE001 - any failure of a study becomes one clear error
            cause = _root_cause(exc)
            detail = str(cause) if isinstance(cause, StudyError) else f"{row.image}: {type(cause).__name__}: {cause}"
            raise ManifestError(f"manifest {manifest}, {row.where()}: {detail}".replace("\n", " ")) from None
        if progress is not None:
            progress()


class StudySamples(torch.utils.data.Dataset):
    """``(image, mask, clinical, text)`` of each row, optionally as a random patch."""

    def __init__(self, studies, rows: list[Row], patch_sampler=None):
        from unicon_bench.data.text import tokenize

        self.studies, self.patch_sampler = studies, patch_sampler
        self.clinical = torch.tensor([clinical(r) for r in rows], dtype=torch.float32).reshape(len(rows), 5)
        self.text = torch.from_numpy(np.stack([tokenize(r.extra.get("report", "")) for r in rows]))

    def __len__(self) -> int:
        return len(self.clinical)

    def __getitem__(self, i: int):
        d = self.studies[i]
        if self.patch_sampler is not None:
            d = self.patch_sampler(d)[0]
        return d["image"], d["label"], self.clinical[i], self.text[i]


def clinical(row: Row) -> list[float]:
    """``[malignant, time, event, age, smoking]`` of a row; NaN where the manifest has no value."""
    return [row.class_label, row.survival_time, row.event, row.number_of("age"), row.number_of("smoking")]


def _patch_sampler(data: ManifestDataSpec):
    from monai.transforms import RandCropByPosNegLabeld

    pos, neg = data.pos_neg
    crop = RandCropByPosNegLabeld(("image", "label"), label_key="label", spatial_size=tuple(data.patch),
                                  pos=pos, neg=neg, num_samples=1)
    crop.set_random_state(seed=int(np.random.randint(2**31 - 1)))  # follows the run's seed
    return crop


class SlidingWindowModel:
    """Calls ``model(x, task_label, text)``, through MONAI's sliding window for segmentation routes."""

    def __init__(self, model, roi: tuple[int, int, int], overlap: float, kinds: dict[int, str]):
        self.model, self.roi, self.overlap, self.kinds = model, roi, overlap, kinds

    def __call__(self, x, task_label: int = 0, text=None):
        if self.kinds.get(int(task_label)) != "segmentation":
            return self.model(x, task_label, text)
        return sliding_window_inference(x, self.roi, sw_batch_size=4, overlap=self.overlap,
                                        predictor=lambda patch: self.model(patch, task_label, text))


def experience_datasets(spec: ScenarioSpec, manifest: Manifest, cache_root: Path | None, progress=None):
    """``[(train_samples, eval_samples)]`` per experience, every study preprocessed once up front."""
    data: ManifestDataSpec = spec.data
    selected = [[select_rows(manifest, exp, split, limit) for split, limit in zip(("train", "eval"), spec.sizes(i))]
                for i, exp in enumerate(spec.experiences)]
    out = []
    with _progress_bar(sum(len(rows) for pair in selected for rows in pair)) as advance:
        for exp, (train_rows, eval_rows) in zip(spec.experiences, selected):
            pair = []
            for split, rows in (("train", train_rows), ("eval", eval_rows)):
                ct_rows = ct_of(manifest, rows, exp.name) if exp.with_ct else None
                studies = study_dataset(rows, data, exp.channels, cache_root, ct_rows)
                prepare(studies, rows, manifest.path, progress or advance)
                patches = split == "train" and data.patch is not None and exp.task == "segmentation"
                pair.append(StudySamples(studies, rows, _patch_sampler(data) if patches else None))
            out.append(tuple(pair))
    return out


def ct_of(manifest: Manifest, rows: list[Row], experience: str) -> list[Row]:
    """The CT row of each row's subject (of the same split if there is one), for PET/CT experiences."""
    cts: dict[tuple[str, str | None], Row] = {}
    for r in manifest.rows:
        if r.modality == "CT":
            cts.setdefault((r.subject_id, r.split), r)
            cts.setdefault((r.subject_id, None), r)
    missing = [r.subject_id for r in rows if (r.subject_id, None) not in cts]
    if missing:
        raise ConfigError(f"experience {experience} (with_ct): no CT row in manifest {manifest.path} for subject(s) "
                          f"{', '.join(missing[:5])}")
    return [cts.get((r.subject_id, r.split), cts[(r.subject_id, None)]) for r in rows]


@contextmanager
def _progress_bar(total: int):
    """A transient rich bar on stderr while studies are read (only on a terminal)."""
    from rich.console import Console
    from rich.progress import Progress

    console = Console(stderr=True)
    with Progress(console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task("preprocess studies", total=total)
        yield lambda: bar.advance(task)


def load_manifest(spec: ScenarioSpec) -> Manifest:
    return read_manifest(spec.data.manifest)


def targets_of(samples: StudySamples) -> list[int]:
    return [0 if math.isnan(v) else int(v) for v in samples.clinical[:, 0].tolist()]
