"""The manifest CSV (columns, validation, row selection, writing) and the scenario's manifest data section."""

from __future__ import annotations

import math

import pytest

from unicon_bench.data.manifest import BadRowsError, ManifestError, read_manifest, select_rows, write_manifest
from unicon_bench.errors import ConfigError
from unicon_bench.scenario import DataSpec, ManifestDataSpec, ScenarioSpec, load_scenario_file


def write(path, text: str):
    path.write_text(text)
    return path


@pytest.fixture
def files(tmp_path):
    for name in ("a_ct.nii.gz", "a_pet.nii.gz", "b_ct.nii.gz", "c_ct.nii.gz", "mask.nii.gz"):
        (tmp_path / "img" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "img" / name).write_bytes(b"")
    (tmp_path / "img" / "series").mkdir()
    return tmp_path


def test_read_manifest_parses_rows(files):
    m = read_manifest(write(files / "m.csv", (
        "subject_id,modality,image,label,split,site,class_label,survival_time,event,age,report\n"
        "a,CT,img/a_ct.nii.gz,img/mask.nii.gz,train,X,1,365.5,1,61,spiculated nodule\n"
        "c,PT,img/a_pet.nii.gz,,test,X,,,,,\n"  # another subject: one subject belongs to one split
        f"b,ct,{files / 'img' / 'series'},,Training,Y,0,,,,\n")))
    a, a_pet, b = m.rows
    assert (a.number, a.modality, a.split, a.site, a.class_label, a.survival_time, a.event) == (1, "CT", "train", "X", 1.0, 365.5, 1.0)
    assert a.image == files / "img" / "a_ct.nii.gz" and a.label == files / "img" / "mask.nii.gz"
    assert a.number_of("age") == 61 and a.extra["report"] == "spiculated nodule"
    assert (a_pet.modality, a_pet.split, a_pet.label) == ("PET", "eval", None) and math.isnan(a_pet.class_label)
    assert b.modality == "CT" and b.split == "train" and b.image.is_dir()
    assert a.has_target("segmentation") and a.has_target("classification") and a.has_target("prognosis")
    assert not a_pet.has_target("segmentation") and not b.has_target("prognosis")


def test_every_bad_row_is_listed_in_one_error(files):
    path = write(files / "m.csv", (
        "subject_id,modality,image,split,class_label,event,survival_time\n"
        "a,CT,img/a_ct.nii.gz,train,1,,\n"
        "b,MR,img/b_ct.nii.gz,train,,,\n"
        "c,CT,img/nope.nii.gz,eval,,,\n"
        "d,CT,img/c_ct.nii.gz,eval,yes,,\n"
        "e,CT,img/c_ct.nii.gz,eval,,2,-1\n"
        "f,CT,m.csv,eval,,,\n"))
    with pytest.raises(BadRowsError) as info:
        read_manifest(path)
    text = str(info.value)
    assert text.startswith(f"manifest {path}: 5 bad row(s): ")
    for needle in ("row 2 (subject b): modality must be CT or PET, got 'MR'",
                   f"row 3 (subject c): image {files / 'img' / 'nope.nii.gz'} not found",
                   "row 4 (subject d): class_label 'yes' is not a number",
                   "row 5 (subject e): survival_time must be >= 0, got '-1'",
                   "row 6 (subject f): image", "is neither NIfTI"):
        assert needle in text
    assert len(info.value.problems) == 5


@pytest.mark.parametrize("text, needle", [
    ("subject_id,modality,split\na,CT,train\n", r"lacks the column\(s\) image"),
    ("subject_id,modality,image,split\n", "has no rows"),
])
def test_unusable_manifest(tmp_path, text, needle):
    with pytest.raises(ManifestError, match=needle):
        read_manifest(write(tmp_path / "m.csv", text))
    with pytest.raises(ManifestError, match="not found"):
        read_manifest(tmp_path / "absent.csv")


def _spec(tmp_path, experiences, **data) -> ScenarioSpec:
    return ScenarioSpec.model_validate({
        "name": "s", "version": 1, "kind": "task", "description": "d", "task_identity_at_test": True,
        "experiences": experiences, "data": {"source": "manifest", "manifest": str(tmp_path / "m.csv"), **data}})


def test_select_rows_by_modality_site_where_and_task(files):
    m = read_manifest(write(files / "m.csv", (
        "subject_id,modality,image,label,split,site,class_label,cohort\n"
        "a,CT,img/a_ct.nii.gz,img/mask.nii.gz,train,X,1,1\n"
        "b,CT,img/b_ct.nii.gz,,train,Y,0,2\n"
        "c,CT,img/c_ct.nii.gz,img/mask.nii.gz,train,Y,,2\n"
        "d,PET,img/a_pet.nii.gz,img/mask.nii.gz,train,Y,1,2\n")))
    spec = _spec(files, [
        {"name": "seg", "modality": "CT", "task": "segmentation"},
        {"name": "cls_y", "modality": "CT", "task": "classification", "site": "Y"},
        {"name": "seg_c2", "modality": "CT", "task": "segmentation", "where": {"cohort": [2, 3]}},
        {"name": "pet", "modality": "PET", "task": "segmentation", "where": {"cohort": "1"}},
        {"name": "bad", "modality": "CT", "task": "segmentation", "where": {"scanner": "GE"}},
    ])
    ids = lambda i, limit=None: [r.subject_id for r in select_rows(m, spec.experiences[i], "train", limit)]
    assert ids(0) == ["a", "c"] and ids(0, 1) == ["a"]
    assert ids(1) == ["b"]
    assert ids(2) == ["c"]
    with pytest.raises(ConfigError, match="no train rows .* modality PET and a label"):
        ids(3)
    with pytest.raises(ConfigError, match="where-column 'scanner' is not in manifest"):
        ids(4)
    with pytest.raises(ConfigError, match="no eval rows"):
        select_rows(m, spec.experiences[0], "eval")


def test_write_manifest_is_relative_and_ordered(tmp_path):
    image = tmp_path / "data" / "x.nii.gz"
    out = write_manifest([{"split": "train", "image": image, "modality": "CT", "subject_id": "x", "age": 50}],
                         tmp_path / "out" / "m.csv")
    assert out.read_text().splitlines() == ["subject_id,modality,image,split,age", "x,CT,../data/x.nii.gz,train,50"]


def test_scenario_data_section(tmp_path):
    base = {"name": "s", "version": 1, "kind": "task", "description": "d", "task_identity_at_test": True,
            "experiences": [{"name": "e", "modality": "CT", "task": "segmentation"}]}
    assert isinstance(ScenarioSpec.model_validate(base).data, DataSpec)  # phantom stays the default
    assert isinstance(ScenarioSpec.model_validate({**base, "data": {"n_train": 4}}).data, DataSpec)
    with pytest.raises(ValueError, match="need data.source: manifest"):
        ScenarioSpec.model_validate({**base, "experiences": [{**base["experiences"][0], "where": {"site": "X"}}]})
    spec = ScenarioSpec.model_validate({**base, "data": {"source": "manifest", "manifest": "m.csv", "patch": [32, 32, 32],
                                                         "shape": [64, 64, 32]}})
    assert isinstance(spec.data, ManifestDataSpec) and spec.sizes(0) == (None, None)
    quick = spec.quick_version()
    assert (quick.data.shape, quick.data.patch, quick.data.n_train) == ((16, 16, 16), (16, 16, 16), 8)
    for bad, needle in (({"shape": [20, 32, 32]}, "multiples of 16"), ({"patch": [64, 16, 16]}, "larger than shape"),
                        ({"spacing": "fine"}, "spacing"), ({"n_train": 4, "colour": 1}, "colour")):
        with pytest.raises(ValueError, match=needle):
            ScenarioSpec.model_validate({**base, "data": {"source": "manifest", "manifest": "m.csv", **bad}})
    (tmp_path / "sub").mkdir()
    yaml = write(tmp_path / "sub" / "s.yaml", "name: s\nversion: 1\nkind: task\ndescription: d\ntask_identity_at_test: true\n"
                 "experiences: [{name: e, modality: CT, task: segmentation}]\ndata: {source: manifest, manifest: ../m.csv}\n")
    assert load_scenario_file(yaml).data.manifest == str(tmp_path / "m.csv")  # relative to the YAML's folder
