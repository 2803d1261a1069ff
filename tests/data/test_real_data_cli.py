"""Acceptance 1: tiny studies in the AutoPET, HECKTOR and MSD layouts plus DICOM CT/PET series go
through ``data index`` -> ``data check`` -> ``run --quick`` on a scenario that uses the manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from studies_factory import make_autopet, make_dicom_subject, make_hecktor, make_msd
from unicon_bench.cli import app

SCENARIO = """\
name: petct_manifest
version: 1
kind: task
description: "CT and PET segmentation, CT prognosis, CT and PET malignancy, from a manifest."
task_identity_at_test: true
experiences:
  - {name: ct_seg, modality: CT, task: segmentation}
  - {name: pet_seg, modality: PET, task: segmentation, with_ct: true}
  - {name: ct_prog, modality: CT, task: prognosis, where: {site: [CHUM, CHUS]}}
  - {name: ct_cls, modality: CT, task: classification}
  - {name: pet_cls, modality: PET, task: classification}
data: {source: manifest, manifest: manifests/all.csv, spacing: [2.0, 2.0, 2.0], shape: [32, 32, 32]}
train: {epochs: 2, batch_size: 2, lr: 0.001, eval_batch_size: 4}
quick: {n_train: 8, n_eval: 8, shape: [16, 16, 16], epochs: 2}
"""


def invoke(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("real")
    make_autopet(root / "autopet")
    make_hecktor(root / "hecktor")
    make_msd(root / "msd")
    for k, malignant in enumerate([0, 1, 0, 1]):
        make_dicom_subject(root / "dicom", k, malignant)
    return root


def test_index_check_run(dataset, tmp_path, cli):
    out = dataset / "manifests"
    # index: the console script once (a subprocess), then in-process
    proc = cli("data", "index", "--format", "autopet", dataset / "autopet", "-o", out / "autopet.csv")
    assert proc.returncode == 0, proc.stderr
    assert "8 rows, 4 subjects, 1 in eval" in proc.stdout
    r = invoke("data", "index", "--format", "hecktor", dataset / "hecktor", "-o", out / "hecktor.csv", "--eval-fraction", "0.5")
    assert r.exit_code == 0, r.output
    r = invoke("data", "index", "--format", "msd", dataset / "msd", "-o", out / "msd.csv")
    assert r.exit_code == 0, r.output
    assert "1 unlabelled test image(s) left out" in r.stderr

    autopet, hecktor, msd = (pd.read_csv(out / f"{n}.csv", dtype=str, keep_default_na=False) for n in ("autopet", "hecktor", "msd"))
    assert sorted(autopet.modality) == ["CT"] * 4 + ["PET"] * 4
    assert set(autopet.image.str.rsplit("/", n=1).str[-1]) == {"CTres.nii.gz", "SUV.nii.gz"}
    assert set(autopet.label.str.rsplit("/", n=1).str[-1]) == {"SEG.nii.gz"}
    chum = hecktor[(hecktor.subject_id == "CHUS-002") & (hecktor.modality == "PET")].iloc[0]
    assert (chum.survival_time, chum.event, chum.age, chum.smoking, chum.site, chum.resample_label) == ("550", "0", "45", "1", "CHUS", "1")
    assert hecktor.groupby("subject_id").split.nunique().max() == 1  # CT and PET of a subject share the split
    assert sorted(hecktor.split) == ["eval"] * 4 + ["train"] * 4
    assert set(msd.site) == {"Lung"} and len(msd) == 4 and (out / msd.image[0]).is_file()  # relative to the CSV

    dicom = [{"subject_id": f"dcm{k}", "modality": m, "image": f"../dicom/sub{k}/{m.lower()}",
              "split": "train" if k < 2 else "eval", "class_label": c}
             for k, c in enumerate([0, 1, 0, 1]) for m in ("CT", "PET")]
    pd.concat([autopet, hecktor, msd, pd.DataFrame(dicom)]).to_csv(out / "all.csv", index=False)

    r = invoke("data", "check", out / "all.csv", "--no-progress")
    assert r.exit_code == 0, r.output
    assert "28 of 28 rows ok" in r.stdout
    assert "resampled" in r.stdout  # HECKTOR PET: the GTV on the CT grid
    assert "1.1x0.9x2.5" in r.stdout  # DICOM spacing (x, y, z)

    scenario = dataset / "scenario.yaml"
    scenario.write_text(SCENARIO)
    results, cache = tmp_path / "results", tmp_path / "cache"
    r = invoke("run", "--strategy", "naive", "--scenario", scenario, "--quick", "--no-progress",
               "--out", results, "--cache-dir", cache)
    assert r.exit_code == 0, r.output
    files = list(results.rglob("*.json"))
    assert len(files) == 1
    result = json.loads(files[0].read_text())
    assert result["scenario"]["experiences"] == ["ct_seg", "pet_seg", "ct_prog", "ct_cls", "pet_cls"]
    assert result["scenario"]["metrics"] == ["dice", "dice", "c_index", "auc", "auc"]
    final = {(m["trained_upto"], m["evaluated_on"]): m["value"] for m in result["matrix"]}
    assert len(final) == 6 * 5
    for j in (0, 1, 3, 4):  # Dice and AUC are defined on these eval sets (both classes in eval)
        assert 0.0 <= final[(4, j)] <= 1.0
    assert invoke("validate", files[0]).exit_code == 0
    # every study was preprocessed once into the cache: CT and PET configs, one file per study
    cached = sorted(cache.rglob("*.pt"))
    assert len({p.parent for p in cached}) == 3  # CT, PET/CT and PET settings
    assert len(cached) == len({(p.parent.name, p.name) for p in cached}) > 10
