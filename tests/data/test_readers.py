"""Reading with bounded memory: NIfTI scaling in float32, whole-volume checks in blocks, the bad DICOM slice named."""

from __future__ import annotations

import math
import os

import nibabel as nib
import numpy as np
import pytest

from studies_factory import make_dicom_series
from unicon_bench.data import volumes
from unicon_bench.data.readers import bad_slice
from unicon_bench.data.volumes import StudyError, load_volume, volume_stats


def test_scaled_nifti_is_read_in_float32(tmp_path):
    stored = np.arange(-50, 70, dtype=np.int16).reshape(4, 5, 6)
    img = nib.Nifti1Image(stored, np.diag([0.8, 0.8, 2.5, 1.0]))
    img.header.set_slope_inter(2.0, -1024.0)
    nib.save(img, tmp_path / "ct.nii")
    volume = load_volume(tmp_path / "ct.nii")
    assert volume.dtype.is_floating_point and volume.element_size() == 4
    assert np.array_equal(volume.numpy()[0], stored.astype(np.float32) * 2 - 1024)  # as nibabel's float64 scaling
    nib.save(nib.Nifti1Image(stored.astype(np.uint8), np.eye(4)), tmp_path / "mask.nii")
    assert load_volume(tmp_path / "mask.nii", dtype=None).numpy().dtype == np.uint8  # masks keep their type


@pytest.mark.parametrize("block", [7, 1 << 22])
def test_volume_stats_in_blocks_equal_numpy(monkeypatch, block):
    monkeypatch.setattr(volumes, "BLOCK_VOXELS", block)
    rng = np.random.default_rng(0)
    a = rng.normal(0, 100, (1, 6, 5, 9)).astype(np.float32)
    assert volume_stats(a) == (0, float(a.min()), float(a.max()), int((a > 0).sum()))
    a[0, 1, 2, 3], a[0, 5, 4, 8], a[0, 0, 0, 0] = np.nan, np.inf, -np.inf
    finite = a[np.isfinite(a)]
    assert volume_stats(a) == (3, float(finite.min()), float(finite.max()), int((finite > 0).sum()))
    nonfinite, lo, hi, _ = volume_stats(np.full((1, 2, 2, 2), np.nan, dtype=np.float32))
    assert nonfinite == 8 and math.isnan(lo) and math.isnan(hi)
    assert volume_stats(np.array([[[[0, 3], [1, 0]]]], dtype=np.uint8)) == (0, 0.0, 3.0, 2)


def test_truncated_slice_is_named(tmp_path):
    folder = make_dicom_series(tmp_path / "ct", np.zeros((8, 6, 4)), (1.0, 1.0, 2.0), "CT", 1.0, -1024.0)
    assert bad_slice(folder) is None
    victim = folder / "slice002.dcm"
    os.truncate(victim, victim.stat().st_size - 40)
    assert bad_slice(folder).startswith("slice002.dcm: ")
    with pytest.raises(StudyError, match=r"cannot read slice slice002\.dcm"):
        load_volume(folder)
