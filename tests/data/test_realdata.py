"""Acceptance 2 and the pipeline: oblique/LPS anisotropic volumes stay aligned with their masks
through the MONAI chain; the on-disk cache is reused; patch training with sliding-window eval."""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from studies_factory import (
    DICOM_SPACING, affine, centre_world, ct_volume, make_dicom_subject, make_lung_manifest, pet_volume, save_nifti,
)
from unicon_bench.data import realdata
from unicon_bench.data.manifest import Row, read_manifest
from unicon_bench.data.volumes import StudyError, load_study
from unicon_bench.scenario import ManifestDataSpec, ScenarioSpec

HOT_CT = (200.0 + 1000.0) / 1400.0  # 200 HU after the default [-1000, 400] window


def data_spec(**kw) -> ManifestDataSpec:
    return ManifestDataSpec(**{"source": "manifest", "manifest": "unused.csv", "spacing": (2.0, 2.0, 2.0), **kw})


def centroid_world(mask: np.ndarray, aff: np.ndarray) -> np.ndarray:
    return np.argwhere(mask).mean(0) @ aff[:3, :3].T + aff[:3, 3]


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * (a & b).sum() / (a.sum() + b.sum())


@pytest.mark.parametrize("crop", ["body", "lesion", "none"])
def test_oblique_lps_anisotropic_volume_stays_aligned(tmp_path, crop):
    # 24 x 20 x 10 voxels of 1 x 1.5 x 4 mm, rotated 30 degrees about z and flipped to LPS
    shape, aff = (24, 20, 10), affine((1.0, 1.5, 4.0), 30.0, lps=True, origin=(5.0, -3.0, 7.0))
    assert nib.aff2axcodes(aff) != ("R", "A", "S")
    lesion = centre_world(shape, aff) + np.array([3.0, -2.0, 4.0])  # a known world point (mm, RAS)
    ct, mask = ct_volume(shape, aff, lesion, radius_mm=5.0)
    row = Row(1, "s", "CT", save_nifti(tmp_path / "ct.nii.gz", ct, aff), "train",
              label=save_nifti(tmp_path / "seg.nii.gz", mask, aff))
    out = realdata.preprocessing(data_spec(shape=(16, 16, 16), crop=crop), ("CT",))({"row": row})
    image, label = out["image"][0].numpy(), out["label"][0].numpy() > 0.5
    final = np.asarray(out["label"].affine)
    assert image.shape == label.shape == (16, 16, 16)
    assert nib.aff2axcodes(final) == ("R", "A", "S")
    assert np.allclose(np.linalg.norm(final[:3, :3], axis=0), 2.0)  # resampled to 2 mm
    assert np.array_equal(final, np.asarray(out["image"].affine))
    # the mask is where the known lesion is, and where the image shows it
    assert np.linalg.norm(centroid_world(label, final) - lesion) < 1.0  # mm; voxels are 2 mm
    hot = image > HOT_CT
    assert np.linalg.norm(centroid_world(hot, final) - lesion) < 1.0
    assert dice(hot, label) > 0.85
    assert 0.7 < label.sum() * 8.0 / (4 / 3 * np.pi * 5.0**3) < 1.3  # the sphere's volume survives


def test_mask_on_another_grid_is_resampled_onto_the_image(tmp_path):
    """HECKTOR-like: PET on a coarse grid, the mask on the fine (CT) grid, ``resample_label=1``."""
    fine = affine((1.2, 1.0, 3.0), -20.0, lps=True)
    coarse = fine.copy()
    coarse[:3, :3] *= 2.0
    lesion = centre_world((20, 24, 12), fine) + np.array([-2.0, 3.0, 3.0])
    pet, _ = pet_volume((10, 12, 6), coarse, lesion, radius_mm=6.0)
    _, mask = ct_volume((20, 24, 12), fine, lesion, radius_mm=6.0)
    label = save_nifti(tmp_path / "gtv.nii.gz", mask, fine)
    image = save_nifti(tmp_path / "pt.nii.gz", pet, coarse)
    spec = data_spec(shape=(16, 16, 16), crop="lesion")
    bad = Row(1, "p", "PET", image, "train", label=label)
    with pytest.raises(StudyError, match="label shape .* differs from image shape .* needs resample_label=1"):
        load_study(bad)
    row = Row(1, "p", "PET", image, "train", label=label, extra={"resample_label": "1"})
    out = realdata.preprocessing(spec, ("PET",))({"row": row})
    final = np.asarray(out["image"].affine)
    got, hot = out["label"][0].numpy() > 0.5, out["image"][0].numpy() > 4.0 / spec.pet_max_suv
    assert np.linalg.norm(centroid_world(got, final) - lesion) < 2.0
    assert dice(hot, got) > 0.7


def test_pet_ct_sample_carries_the_ct_on_the_pet_grid(tmp_path):
    """``with_ct``: the subject's CT (fine grid, LPS, oblique) is resampled onto its PET (coarse grid)."""
    fine = affine((1.0, 1.2, 2.5), 25.0, lps=True, origin=(4.0, 2.0, -6.0))
    coarse = fine.copy()
    coarse[:3, :3] *= 2.0
    lesion = centre_world((24, 20, 12), fine) + np.array([3.0, -2.0, 2.0])
    ct, mask = ct_volume((24, 20, 12), fine, lesion, radius_mm=5.0)
    pet, pet_mask = pet_volume((12, 10, 6), coarse, lesion, radius_mm=5.0)
    ct_row = Row(1, "s", "CT", save_nifti(tmp_path / "ct.nii.gz", ct, fine), "train")
    pet_row = Row(2, "s", "PET", save_nifti(tmp_path / "pt.nii.gz", pet, coarse), "train",
                  label=save_nifti(tmp_path / "seg.nii.gz", pet_mask, coarse))
    out = realdata.preprocessing(data_spec(shape=(16, 16, 16)), ("PET", "CT"))({"row": pet_row, "ct": ct_row})
    final = np.asarray(out["image"].affine)
    assert out["ct"].shape == out["image"].shape == (1, 16, 16, 16)
    hot_pet, hot_ct = out["image"][0].numpy() > 0.5, out["ct"][0].numpy() > HOT_CT
    assert np.linalg.norm(centroid_world(hot_ct, final) - lesion) < 1.5
    assert np.linalg.norm(centroid_world(hot_pet, final) - lesion) < 1.5
    plain = realdata.preprocessing(data_spec(shape=(16, 16, 16)), ("PET", "CT"), keep_meta=False)({"row": pet_row, "ct": ct_row})
    assert plain["image"].shape == (2, 16, 16, 16) and type(plain["image"]) is torch.Tensor  # PET, then CT


def test_dicom_series_lesion_lands_at_its_patient_position(tmp_path):
    paths = make_dicom_subject(tmp_path, 0, malignant=1)  # lesion: voxels x 4-7, y 3-6, z 2-5
    row = Row(1, "d", "PET", paths["pet"], "train")
    out = realdata.preprocessing(data_spec(shape=(16, 16, 16)), ("PET",))({"row": row})
    final = np.asarray(out["image"].affine)
    hot = out["image"][0].numpy() > 5.0 / 10.0
    # DICOM LPS: x = -20 + 1.1 i, y = -15 + 0.9 j, z = 5 + 2.5 k; RAS flips x and y
    i, j, k = 5.5, 4.5, 3.5
    expected = np.array([20.0 - DICOM_SPACING[0] * i, 15.0 - DICOM_SPACING[1] * j, 5.0 + DICOM_SPACING[2] * k])
    assert nib.aff2axcodes(final) == ("R", "A", "S")
    assert np.linalg.norm(centroid_world(hot, final) - expected) < 1.5


def _spec(manifest: Path, **data) -> ScenarioSpec:
    return ScenarioSpec.model_validate({
        "name": "lung", "version": 1, "kind": "task", "description": "d", "task_identity_at_test": True,
        "experiences": [{"name": "seg", "modality": "CT", "task": "segmentation"}],
        "data": {"source": "manifest", "manifest": str(manifest), "spacing": [2, 2, 2], **data},
        "train": {"epochs": 1, "batch_size": 2},
    })


def test_cache_is_reused_and_keyed_by_file_and_config(tmp_path, monkeypatch):
    manifest_path = make_lung_manifest(tmp_path)
    manifest = read_manifest(manifest_path)
    calls = []
    original = realdata.load_study
    monkeypatch.setattr(realdata, "load_study", lambda row, *a: calls.append(row.subject_id) or original(row, *a))
    cache = tmp_path / "cache"

    def build(spec):
        pairs = realdata.experience_datasets(spec, manifest, cache)
        return [ds[i][0] for ds in pairs[0] for i in range(len(ds))]

    first = build(_spec(manifest_path))
    assert sorted(calls) == ["lung_000", "lung_001", "lung_002"]
    files = {p: p.stat().st_mtime_ns for p in cache.rglob("*.pt")}
    assert len(files) == 3
    calls.clear()
    second = build(_spec(manifest_path))  # a second run: everything from the cache
    assert calls == [] and all(torch.equal(a, b) for a, b in zip(first, second))
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*.pt")} == files
    build(_spec(manifest_path, shape=[16, 16, 16]))  # another transform config: another folder
    assert len(calls) == 3 and len({p.parent for p in cache.rglob("*.pt")}) == 2
    calls.clear()
    image = manifest.rows[0].image
    os.utime(image, ns=(image.stat().st_atime_ns, image.stat().st_mtime_ns + 10**9))  # the file changed
    build(_spec(manifest_path))
    assert calls == ["lung_000"]


def test_patch_training_and_sliding_window_eval(tmp_path, monkeypatch):
    from unicon_bench import harness
    from unicon_bench.data.streams import build_stream

    spec = _spec(make_lung_manifest(tmp_path), shape=[32, 32, 32], patch=[16, 16, 16], crop="lesion")
    stream = build_stream(spec, cache_dir=tmp_path / "cache")
    train, evals = next(iter(stream.train_stream)), next(iter(stream.eval_stream))
    assert train.dataset[0][0].shape == (1, 16, 16, 16)
    positive = [float(train.dataset[0][1].sum()) > 0 for _ in range(8)]
    assert any(positive)  # pos/neg 1:1 sampling hits the lesion
    assert evals.dataset[0][0].shape == (1, 32, 32, 32)
    assert isinstance(stream.inferer(torch.nn.Identity()), realdata.SlidingWindowModel)
    windows = []
    original = realdata.sliding_window_inference
    monkeypatch.setattr(realdata, "sliding_window_inference",
                        lambda x, roi, *a, **k: windows.append((tuple(x.shape[2:]), roi)) or original(x, roi, *a, **k))
    result, path = harness.run("naive", spec, seed=0, out=tmp_path / "results", cache_dir=tmp_path / "cache")
    assert windows and set(windows) == {((32, 32, 32), (16, 16, 16))}  # every segmentation eval went through it
    assert path.is_file() and result.matrix[-1].value is not None and 0.0 <= result.matrix[-1].value <= 1.0
