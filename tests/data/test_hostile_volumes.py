"""Volumes read as hostile input (issue #22): a tiny file whose header claims a huge volume is refused
before any voxel is read, and a pipe named like a volume is refused instead of blocking for ever."""

from __future__ import annotations

import gzip
import os
import signal
import resource
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from studies_factory import make_lung_manifest
from test_bad_inputs import SCENARIO
from unicon_bench.cli import app
from unicon_bench.data.volumes import MAX_VOXELS, StudyError, load_volume


def huge_header(path: Path) -> Path:
    """A gzipped NIfTI header claiming 1400^3 int16 voxels, with no voxel data behind it (~100 bytes)."""
    import nibabel as nib

    header = nib.Nifti1Header()
    header.set_data_shape((1400, 1400, 1400))
    header.set_data_dtype(np.int16)
    path.write_bytes(gzip.compress(header.binaryblock + b"\0" * 4))
    return path


def fifo(path: Path) -> Path:
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    return path


@pytest.fixture
def deadline():
    """Fail (instead of hanging CI) if a case blocks: the regression this file guards against."""
    def expire(_signum, _frame):
        raise TimeoutError("the reader blocked")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(120)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def test_a_header_claiming_too_many_voxels_is_refused_before_reading(tmp_path, deadline):
    path = huge_header(tmp_path / "huge.nii.gz")
    assert path.stat().st_size < 200 and 1400**3 > MAX_VOXELS
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(StudyError, match=r"claims 1400 x 1400 x 1400 = 2,744,000,000 voxels"):
        load_volume(path)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak) / 1024
    assert grown_mb < 500  # header only: reading the voxels would allocate 5 GB first


def test_a_pipe_named_like_a_volume_is_refused(tmp_path, deadline):
    with pytest.raises(StudyError, match="not a regular file"):
        load_volume(fifo(tmp_path / "x.nii"))


def test_a_dicom_folder_holding_a_pipe_is_refused(tmp_path, deadline):
    series = tmp_path / "series"
    series.mkdir()
    fifo(series / "slice.dcm")
    with pytest.raises(StudyError, match="not a regular file"):
        load_volume(series)


@pytest.mark.parametrize("spoil, needle", [(huge_header, "voxels, more than the"), (fifo, "not a regular file")])
def test_run_and_data_check_give_one_line(tmp_path, deadline, spoil, needle):
    manifest = make_lung_manifest(tmp_path)
    (tmp_path / "scenario.yaml").write_text(SCENARIO)
    bad = spoil(tmp_path / "msd" / "Task06_Lung" / "imagesTr" / "lung_001.nii.gz")
    results = tmp_path / "results"
    r = CliRunner().invoke(app, ["run", "-s", "naive", "-c", str(tmp_path / "scenario.yaml"), "--quick", "--no-progress",
                                 "--out", str(results), "--cache-dir", str(tmp_path / "cache")])
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.exit_code == 2 and len(lines) == 1 and str(bad) in lines[0] and needle in lines[0], r.output
    assert "Traceback" not in r.output and not results.exists()
    r = CliRunner().invoke(app, ["data", "check", str(manifest), "--no-progress"])
    bad_lines = [line for line in r.stdout.splitlines() if line.startswith("bad: ")]
    assert r.exit_code == 1 and len(bad_lines) == 1 and needle in bad_lines[0], r.output
