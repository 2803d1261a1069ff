"""The public-layout indexers on file trees alone (files are found, not opened)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from unicon_bench.data.indexers import assign_splits, index_dataset
from unicon_bench.data.manifest import ManifestError


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_hecktor_2021_per_patient_layout(tmp_path):
    for pid in ("CHGJ007", "MDA_012"):
        for suffix in ("ct", "pt", "ct_gtvt"):
            touch(tmp_path / "hecktor_nii" / pid / f"{pid}_{suffix}.nii.gz")
    touch(tmp_path / "hecktor_nii" / "HGJ001" / "HGJ001_ct.nii.gz")  # no PET, no GTV
    (tmp_path / "hecktor2021_patient_endpoint_training.csv").write_text(
        "PatientID,Progression,Progression free survival\nCHGJ007,1,410\nMDA_012,0,1500\n")
    (tmp_path / "notes.csv").write_text("a,b\n1,2\n")  # no patient column: ignored
    found = index_dataset("hecktor", tmp_path, eval_fraction=0.34)
    rows = {(r["subject_id"], r["modality"]): r for r in found.records}
    assert set(rows) == {("CHGJ007", "CT"), ("CHGJ007", "PET"), ("MDA_012", "CT"), ("MDA_012", "PET"), ("HGJ001", "CT")}
    assert rows[("MDA_012", "PET")]["label"].name == "MDA_012_ct_gtvt.nii.gz"
    assert (rows[("MDA_012", "PET")]["survival_time"], rows[("MDA_012", "PET")]["event"]) == ("1500", "0")
    assert rows[("CHGJ007", "CT")]["site"] == "CHGJ" and rows[("CHGJ007", "PET")]["resample_label"] == 1
    assert rows[("HGJ001", "CT")]["label"] == ""
    assert any("HGJ001: no GTV mask" in n for n in found.notes)
    assert any("HGJ001: not in the clinical CSVs" in n for n in found.notes)


def test_autopet_study_without_suv_or_seg(tmp_path):
    touch(tmp_path / "PETCT_1" / "s1" / "CTres.nii.gz")
    touch(tmp_path / "PETCT_1" / "s1" / "SEG.nii.gz")
    touch(tmp_path / "PETCT_2" / "s1" / "CTres.nii.gz")
    found = index_dataset("autopet", tmp_path)
    assert [(r["subject_id"], r["modality"]) for r in found.records] == [("PETCT_1/s1", "CT")]
    assert len(found.notes) == 2
    with pytest.raises(ManifestError, match="no AutoPET studies"):
        index_dataset("autopet", tmp_path / "PETCT_2")


def test_msd_several_tasks_and_bad_ones(tmp_path):
    for task, name in (("Task06_Lung", "Lung"), ("Task10_Colon", "Colon")):
        meta = {"name": name, "modality": {"0": "CT"}, "training": [
            {"image": f"./imagesTr/{name}_{k}.nii.gz", "label": f"./labelsTr/{name}_{k}.nii.gz"} for k in range(2)]}
        touch(tmp_path / task / "dataset.json").write_text(json.dumps(meta))
    found = index_dataset("msd", tmp_path)
    assert sorted({r["site"] for r in found.records}) == ["Colon", "Lung"] and len(found.records) == 4
    (tmp_path / "Task01_BrainTumour").mkdir()
    (tmp_path / "Task01_BrainTumour" / "dataset.json").write_text(
        json.dumps({"modality": {"0": "FLAIR", "1": "T1w"}, "training": []}))
    with pytest.raises(ManifestError, match="Task01_BrainTumour/dataset.json: modality .* not one CT or PET channel"):
        index_dataset("msd", tmp_path)
    with pytest.raises(ManifestError, match="not found"):
        index_dataset("msd", tmp_path / "absent")


def test_splits_keep_subjects_together_and_both_splits_filled():
    records = [{"subject_id": f"s{k}", "modality": m} for k in range(10) for m in ("CT", "PET")]
    assign_splits(records, 0.3, seed=1)
    by_subject = {}
    for r in records:
        by_subject.setdefault(r["subject_id"], set()).add(r["split"])
    assert all(len(s) == 1 for s in by_subject.values())
    assert sum(s == {"eval"} for s in by_subject.values()) == 3
    two = [{"subject_id": "a"}, {"subject_id": "b"}]
    assign_splits(two, 0.1)
    assert sorted(r["split"] for r in two) == ["eval", "train"]
