"""Acceptance 3: a corrupt file, a missing file, an image/label shape mismatch and NaN voxels each give
one clear error naming the file and the row (``run`` exit 2, ``data check`` exit 1); nothing half-written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from studies_factory import affine, make_lung_manifest, save_nifti
from unicon_bench.cli import app

SCENARIO = """\
name: lung_bad
version: 1
kind: task
description: "CT lesion segmentation from a manifest."
task_identity_at_test: true
experiences:
  - {name: seg, modality: CT, task: segmentation}
data: {source: manifest, manifest: manifest.csv, spacing: [2.0, 2.0, 2.0]}
train: {epochs: 1, batch_size: 2}
"""


def corrupt(image: Path, label: Path) -> Path:
    data = image.read_bytes()
    image.write_bytes(data[: len(data) // 2])  # a truncated download
    return image


def missing(image: Path, label: Path) -> Path:
    image.unlink()
    return image


def shape_mismatch(image: Path, label: Path) -> Path:
    save_nifti(label, np.zeros((7, 9, 5), np.uint8), affine((1.0, 1.0, 3.0)))
    return label


def nan_voxels(image: Path, label: Path) -> Path:
    import nibabel as nib

    img = nib.load(str(image))
    data = np.asarray(img.dataobj, dtype=np.float32).copy()
    data[2:4, 3, 1] = np.nan
    save_nifti(image, data, img.affine)
    return image


CASES = {
    "corrupt": (corrupt, "cannot read"),
    "missing": (missing, "not found"),
    "shape": (shape_mismatch, "label shape (7, 9, 5) differs from image shape"),
    "nan": (nan_voxels, "2 NaN/Inf voxel(s)"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_clear_error(tmp_path, case):
    manifest = make_lung_manifest(tmp_path)
    (tmp_path / "scenario.yaml").write_text(SCENARIO)
    msd = tmp_path / "msd" / "Task06_Lung"
    spoil, needle = CASES[case]
    bad = spoil(msd / "imagesTr" / "lung_001.nii.gz", msd / "labelsTr" / "lung_001.nii.gz")
    results, cache = tmp_path / "results", tmp_path / "cache"

    runner = CliRunner()
    r = runner.invoke(app, ["run", "-s", "naive", "-c", str(tmp_path / "scenario.yaml"), "--quick", "--no-progress",
                            "--out", str(results), "--cache-dir", str(cache)])
    assert r.exit_code == 2, r.output
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "row 2 (subject lung_001" in lines[0] and str(bad) in lines[0] and needle in lines[0]
    assert "Traceback" not in r.output
    # nothing half-written: no result, and the cache holds only complete entries of the good studies
    assert not results.exists()
    entries = list(cache.rglob("*")) if cache.exists() else []
    assert all(p.suffix == ".pt" for p in entries if p.is_file())
    for p in (e for e in entries if e.is_file()):
        assert set(torch.load(p, weights_only=True)) == {"image", "label"}
    assert len([e for e in entries if e.is_file()]) <= 1  # at most row 1, preprocessed before row 2

    r = runner.invoke(app, ["data", "check", str(manifest), "--no-progress"])
    assert r.exit_code == 1, r.output
    bad_lines = [line for line in r.stdout.splitlines() if line.startswith("bad: ")]
    assert len(bad_lines) == 1 and "row 2 (subject lung_001, CT)" in bad_lines[0] and str(bad) in bad_lines[0]
    assert "2 of 3 rows ok, 1 bad" in r.stdout


def test_failed_index_writes_no_manifest(tmp_path):
    (tmp_path / "Task01").mkdir()
    (tmp_path / "Task01" / "dataset.json").write_text('{"modality": {"0": "MRI"}, "training": []}')
    out = tmp_path / "out.csv"
    r = CliRunner().invoke(app, ["data", "index", "--format", "msd", str(tmp_path), "-o", str(out)])
    assert r.exit_code == 2 and "modality ['MRI'] is not one CT or PET channel" in r.stderr
    assert not out.exists() and list(tmp_path.glob(".out.csv*")) == []


def test_check_of_a_manifest_with_bad_values_lists_the_rows(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("subject_id,modality,image,split,class_label\na,CT,a.nii.gz,train,1\nb,MRI,b.nii.gz,train,0\n"
                        "c,CT,c.nii.gz,later,2\n")
    r = CliRunner().invoke(app, ["data", "check", str(manifest), "--no-progress"])
    assert r.exit_code == 1
    assert "row 2 (subject b): modality must be CT or PET, got 'MRI'" in r.stdout
    assert "row 3 (subject c): split must be train or eval, got 'later'" in r.stdout
    r = CliRunner().invoke(app, ["data", "check", str(tmp_path / "nope.csv")])
    assert r.exit_code == 2 and "not found" in r.stderr
