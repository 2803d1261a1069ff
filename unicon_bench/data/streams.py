"""Avalanche adapter: turn a ScenarioSpec into train/eval streams of Avalanche experiences.

Every sample is the tuple ``(image, mask, clinical, text, task_label)`` whatever the task, so
experiences of different tasks can be concatenated (replay buffers, joint training) and collated
together:

- ``image``: float32 (C, D, H, W), CT windowed [-1000, 400] HU -> [0, 1] or PET SUV / 10; C = 1, or
  2 for PET/CT experiences (``with_ct``: PET, then CT). A batch mixing both is zero-padded to the
  largest C by :func:`collate_samples`; each route reads only its own channels.
- ``mask``: float32 (1, D, H, W), lesion segmentation
- ``clinical``: float32 (5,) = [malignant, time, event, age, smoking] (see CLINICAL_FIELDS)
- ``text``: int64 (MAX_TOKENS,), token ids of the subject's report
- ``task_label``: the experience index where the scenario gives task identity, else 0

``data.source: phantom`` generates the subjects (:mod:`unicon_bench.data.phantoms`);
``data.source: manifest`` reads real studies (:mod:`unicon_bench.data.realdata`), whose missing
clinical values are NaN.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from unicon_bench.data.phantoms import PhantomCohort, PhantomConfig, load_cohort
from unicon_bench.data.text import tokenize_batch
from unicon_bench.errors import ConfigError
from unicon_bench.scenario import ScenarioSpec

CLINICAL_FIELDS = ("malignant", "time", "event", "age", "smoking")
CT_WINDOW = (-1000.0, 400.0)
PET_SCALE = 10.0


@dataclass
class Stream:
    """The Avalanche benchmark of a scenario plus what the harness needs to know about it."""

    spec: ScenarioSpec
    benchmark: object  # avalanche CLScenario with train_stream / test_stream
    task_labels: list[int]
    patch: tuple[int, int, int] | None = None  # segmentation trained on patches: sliding-window eval
    spacing_mm: list[tuple[float, float, float]] = field(default_factory=list)  # voxel size of each experience

    @property
    def train_stream(self):
        return self.benchmark.train_stream

    @property
    def eval_stream(self):
        return self.benchmark.test_stream

    def inferer(self, model):
        """What evaluation calls as ``model(x, task_label, text)``: the model itself, or, when the
        stream trains segmentation on patches, the model behind MONAI's sliding-window inference."""
        if self.patch is None:
            return model
        from unicon_bench.data.realdata import SlidingWindowModel

        kinds = {t: e.task for t, e in zip(self.task_labels, self.spec.experiences)}
        return SlidingWindowModel(model, self.patch, self.spec.data.sw_overlap, kinds)


def preprocess(images: np.ndarray, modality: str) -> np.ndarray:
    """Scale raw HU/SUV volumes to roughly [0, 1] network inputs (MONAI intensity transform)."""
    from monai.transforms import ScaleIntensityRange

    if modality == "CT":
        scale = ScaleIntensityRange(a_min=CT_WINDOW[0], a_max=CT_WINDOW[1], b_min=0.0, b_max=1.0, clip=True)
    else:
        scale = ScaleIntensityRange(a_min=0.0, a_max=PET_SCALE, b_min=0.0, b_max=1.0, clip=False)
    return np.asarray(scale(images), dtype=np.float32)


def cohort_config(spec: ScenarioSpec, index: int) -> PhantomConfig:
    """Each experience draws its own subjects: the seed mixes the scenario seed and the index."""
    exp = spec.experiences[index]
    n_train, n_eval = spec.sizes(index)
    seed = zlib.crc32(f"{spec.data.seed}:{index}:{exp.name}".encode())
    return PhantomConfig(n=n_train + n_eval, shape=tuple(spec.data.shape), site=exp.site, seed=seed,
                         cohort=exp.cohort, survival=spec.data.survival, contrast=exp.contrast)


def _tensors(cohort: PhantomCohort, channels: tuple[str, ...]) -> tuple[torch.Tensor, ...]:
    """Image (N, len(channels), D, H, W), mask, clinical and text tensors of a cohort."""
    raw = {"CT": cohort.ct, "PET": cohort.pet}
    image = torch.from_numpy(np.stack([preprocess(raw[m], m) for m in channels], axis=1))
    mask = torch.from_numpy(cohort.mask.astype(np.float32)).unsqueeze(1)
    clinical = torch.from_numpy(
        np.stack([getattr(cohort, f).astype(np.float32) for f in CLINICAL_FIELDS], axis=1)
    )
    text = torch.from_numpy(tokenize_batch(list(cohort.reports)))
    return image, mask, clinical, text


def collate_samples(batch: list) -> list:
    """Default collation, after zero-padding images to the batch's largest channel count."""
    from torch.utils.data import default_collate

    width = max(sample[0].shape[0] for sample in batch)
    if any(sample[0].shape[0] != width for sample in batch):
        padded = []
        for sample in batch:
            image = sample[0]
            extra = image.new_zeros((width - image.shape[0], *image.shape[1:]))
            padded.append((torch.cat([image, extra]), *sample[1:]))
        batch = padded
    return default_collate(batch)


def _avalanche_dataset(tensors: tuple[torch.Tensor, ...], task_label: int):
    from torch.utils.data import TensorDataset

    return _wrap(TensorDataset(*tensors), task_label, tensors[2][:, 0].long().tolist())


def _wrap(dataset, task_label: int, targets: list[int]):
    from avalanche.benchmarks.utils import AvalancheDataset
    from avalanche.benchmarks.utils.data_attribute import DataAttribute, TaskLabels

    return AvalancheDataset(
        [dataset],
        data_attributes=[TaskLabels([task_label] * len(dataset)), DataAttribute(targets, "targets")],
        collate_fn=collate_samples,
    )


def validation_split(malignant: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(train_idx, val_idx)`` carved from one experience's training subjects, deterministic by seed.

    At least two subjects go to validation and at least one stays for training; the split is
    stratified by malignancy (scikit-learn) where both classes have two members, so an AUC stays defined.
    """
    from sklearn.model_selection import train_test_split

    n = len(malignant)
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"validation fraction must lie in (0, 1), got {fraction}")
    if n < 3:
        raise ConfigError(f"cannot carve a validation split from {n} training subjects (need at least 3)")
    n_val = min(n - 1, max(2, round(fraction * n)))
    labels = np.asarray(malignant).astype(int)
    counts = np.bincount(labels, minlength=2)
    stratify = labels if counts.min() >= 2 and n - n_val >= 2 else None
    idx = np.arange(n)
    train_idx, val_idx = train_test_split(idx, test_size=n_val, random_state=seed, stratify=stratify)
    return np.sort(train_idx), np.sort(val_idx)


def _manifest_stream(spec: ScenarioSpec, cache_dir: str | Path | None, validation: float | None = None,
                     split_seed: int = 0) -> Stream:
    from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
    from torch.utils.data import Subset

    from unicon_bench.data import realdata
    from unicon_bench.data.phantoms import default_cache_dir

    manifest = realdata.load_manifest(spec)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    pairs = realdata.experience_datasets(spec, manifest, root / "studies" if spec.data.cache else None)
    labels = [i if spec.task_identity_at_test else 0 for i in range(len(pairs))]
    train, evals = [], []
    for (tr, ev), t in zip(pairs, labels):
        targets = realdata.targets_of(tr)
        if validation is None:
            train.append(_wrap(tr, t, targets))
            evals.append(_wrap(ev, t, realdata.targets_of(ev)))
            continue
        fit, val = validation_split(np.array(targets), validation, split_seed)  # the eval studies stay unseen
        train.append(_wrap(Subset(tr, fit.tolist()), t, [targets[k] for k in fit]))
        evals.append(_wrap(Subset(tr, val.tolist()), t, [targets[k] for k in val]))
    benchmark = benchmark_from_datasets(train=train, test=evals)
    # the volumes are resampled to data.spacing when it is set; otherwise their spacing is not known here
    spacing = [tuple(float(x) for x in spec.data.spacing)] * len(pairs) if spec.data.spacing else []
    return Stream(spec=spec, benchmark=benchmark, task_labels=labels, patch=spec.data.patch, spacing_mm=spacing)


def build_stream(
    spec: ScenarioSpec, cache_dir: str | Path | None = None, validation: float | None = None, split_seed: int = 0
) -> Stream:
    """Generate (or read from cache) every experience's subjects and wrap them for Avalanche.

    With ``validation`` (a fraction), each experience's *training* subjects are split into a training
    and a validation part (``validation_split``) and the validation parts form the eval stream: the
    scenario's eval subjects are never used (hyper-parameter tuning).
    """
    from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets

    if spec.data.source == "manifest":
        return _manifest_stream(spec, cache_dir, validation, split_seed)
    train, evals, labels, spacing = [], [], [], []
    for i, exp in enumerate(spec.experiences):
        n_train, n_eval = spec.sizes(i)
        cohort = load_cohort(cohort_config(spec, i), cache_dir=cache_dir)
        if len(cohort) != n_train + n_eval:
            raise ConfigError(f"experience {exp.name}: expected {n_train + n_eval} subjects, got {len(cohort)}")
        t = i if spec.task_identity_at_test else 0
        tensors = _tensors(cohort, exp.channels)
        if validation is None:
            train_idx, eval_idx = torch.arange(n_train), torch.arange(n_train, n_train + n_eval)
        else:
            parts = validation_split(cohort.malignant[:n_train], validation, split_seed)
            train_idx, eval_idx = (torch.from_numpy(p) for p in parts)
        train.append(_avalanche_dataset(tuple(x[train_idx] for x in tensors), t))
        evals.append(_avalanche_dataset(tuple(x[eval_idx] for x in tensors), t))
        labels.append(t)
        spacing.append(tuple(float(x) for x in cohort.spacing_mm))
    benchmark = benchmark_from_datasets(train=train, test=evals)
    return Stream(spec=spec, benchmark=benchmark, task_labels=labels, spacing_mm=spacing)
