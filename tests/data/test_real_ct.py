"""A real head CT end to end: Debian's invesalius-examples ``Cranium.inv3`` (GPL-2) as NIfTI files and
DICOM series of one world geometry, a manifest and a scenario as the README documents, bone
segmentation trained by ``naive`` and ``unicon`` (--quick), ``data check`` on it and on a truncated slice.
``.ci/run`` installs the package; elsewhere these tests are skipped with the reason."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from real_ct import CRANIUM, ORIGIN_LPS, ras_affine, read_inv3, write_study
from unicon_bench.cli import app

pytestmark = pytest.mark.skipif(
    not CRANIUM.is_file(),
    reason=f"{CRANIUM} absent: the real-CT tests need Debian's invesalius-examples (apt-get install invesalius-examples; "
           ".ci/run installs it)",
)


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return write_study(tmp_path_factory.mktemp("cranium"))


def test_inv3_is_the_documented_ct():
    hu, spacing = read_inv3()
    assert hu.shape == (256, 256, 108) and hu.dtype == np.int16
    assert spacing == (0.957031, 0.957031, 1.5)
    assert hu.min() == -1024 and 1500 < hu.max() < 3100  # air and dense bone, in HU


def test_nifti_and_dicom_share_one_world_geometry(study):
    """The same voxels at the same RAS world points, whether read from NIfTI (RAS affine) or from the
    DICOM series (LPS positions and orientation, turned into RAS by the reader); the label fits both."""
    from unicon_bench.data.volumes import geometry_problem, load_volume

    nifti, dicom = load_volume(study["upper_nifti"]), load_volume(study["upper_dicom"])
    assert tuple(nifti.shape) == tuple(dicom.shape) == (1, 256, 256, 54)
    assert np.array_equal(nifti.numpy(), dicom.numpy())
    hu, spacing = read_inv3()
    want = ras_affine(spacing, (ORIGIN_LPS[0], ORIGIN_LPS[1], ORIGIN_LPS[2] + 54 * spacing[2]))
    assert np.allclose(np.asarray(nifti.affine), want, atol=1e-4)
    assert np.allclose(np.asarray(dicom.affine), want, atol=1e-4)
    assert np.array_equal(dicom.numpy()[0], hu[:, :, 54:].astype(np.float32))  # HU through RescaleIntercept
    label = load_volume(study["upper_label"], dtype=None)
    assert geometry_problem(dicom, label) is None and geometry_problem(nifti, label) is None


def test_data_check_passes_it_and_names_a_truncated_slice(study, tmp_path):
    r = invoke("data", "check", study["manifest"], "--no-progress")
    assert r.exit_code == 0, r.output
    assert "4 of 4 rows ok" in r.stdout and "256x256x54" in r.stdout and "0.957x0.957x1.5" in r.stdout

    broken = shutil.copytree(study["upper_dicom"], tmp_path / "broken")
    victim = broken / "slice020.dcm"
    os.truncate(victim, victim.stat().st_size // 2)
    manifest = tmp_path / "broken.csv"
    manifest.write_text(f"subject_id,modality,image,label,split\nbroken,CT,{broken},{study['upper_label']},eval\n")
    r = invoke("data", "check", manifest, "--no-progress")
    assert r.exit_code == 1, r.output
    assert "0 of 1 rows ok, 1 bad" in r.stdout
    assert "slice020.dcm" in r.stdout  # the slice at fault, not only its folder


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["naive", "unicon"])
def test_quick_run_on_the_real_ct(strategy, study, tmp_path, phantom_cache):
    out = tmp_path / "results"
    r = invoke("run", "--strategy", strategy, "--scenario", study["scenario"], "--quick", "--no-progress", "--out", out,
               "--cache-dir", phantom_cache)
    assert r.exit_code == 0, r.output
    (path,) = out.rglob("*.json")
    r = invoke("validate", path)
    assert r.exit_code == 0, r.output
    result = json.loads(path.read_text())
    assert result["scenario"]["name"] == "cranium_bone" and result["scenario"]["experiences"] == ["nifti", "dicom"]
    dice = {(e["trained_upto"], e["evaluated_on"]): e["value"] for e in result["matrix"] if e["metric"] == "dice"}
    assert len(dice) == 6 and all(0 <= v <= 1 for v in dice.values())
    assert dice[(0, 0)] > dice[(-1, 0)] + 0.2  # it learnt bone from the NIfTI studies
