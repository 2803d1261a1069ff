"""A manifest listing an image twice, or one subject in both splits, is refused naming the rows (issue #22)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from unicon_bench.cli import app
from unicon_bench.data.manifest import BadRowsError, read_manifest

HEADER = "subject_id,modality,image,split\n"


def _manifest(tmp_path: Path, rows: str) -> Path:
    path = tmp_path / "m.csv"
    path.write_text(HEADER + rows)
    return path


def test_a_clean_manifest_reads(tmp_path):
    m = read_manifest(_manifest(tmp_path, "a,CT,a.nii.gz,train\na,PET,a_pet.nii.gz,train\nb,CT,b.nii.gz,eval\n"),
                      check_files=False)
    assert len(m.rows) == 3


def test_the_same_image_twice_is_refused(tmp_path):
    with pytest.raises(BadRowsError, match=r"row 3 \(subject c\): lists the same image as row 1"):
        read_manifest(_manifest(tmp_path, "a,CT,a.nii.gz,train\nb,CT,b.nii.gz,eval\nc,CT,a.nii.gz,train\n"),
                      check_files=False)


def test_a_subject_in_both_splits_is_refused(tmp_path):
    path = _manifest(tmp_path, "a,CT,a.nii.gz,train\nb,CT,b.nii.gz,eval\na,PET,a_pet.nii.gz,test\n")
    with pytest.raises(BadRowsError, match=r"row 3 \(subject a\): the subject is in eval here and in train in row 1"):
        read_manifest(path, check_files=False)
    out = CliRunner().invoke(app, ["data", "check", str(path), "--no-progress"])
    assert out.exit_code == 1 and "row 3 (subject a): the subject is in eval here" in out.stdout, out.output
