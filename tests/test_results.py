"""The result file contract: a real run validates, broken or newer files are refused clearly."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest

from conftest import dump_json, load_json
from unicon_bench import fileio, results
from unicon_bench.results import ResultError, clean_float, parse_result, read_result, write_result

pytestmark = pytest.mark.slow  # the module's fixture trains one quick run


@pytest.fixture(scope="module")
def real(quick_run):
    result, path = quick_run("naive", "ct_to_pet")
    return result, path


@pytest.fixture
def data(real):
    return load_json(real[1])


def test_real_run_validates(real):
    result, path = real
    assert path.exists() and path.suffix == ".json"
    assert path.parent.name == "naive" and path.parent.parent.name == "ct_to_pet"
    assert path.stem == result.run_id
    back = read_result(path)
    assert back == result
    assert back.schema_version == results.SCHEMA_VERSION
    assert back.scenario.quick is True
    assert back.scenario.experiences == ["ct_seg", "pet_seg"]
    assert back.scenario.metrics == ["dice", "dice"]
    init, R = back.rows()
    assert len(init) == 2 and [len(r) for r in R] == [2, 2]
    grid = {(e.trained_upto, e.evaluated_on): e.value for e in back.matrix if e.metric == "dice"}
    assert R[1][0] == grid[(1, 0)] and init[1] == grid[(-1, 1)]


def test_json_is_standard(real):
    text = real[1].read_text(encoding="utf-8")
    for token in ("NaN", "Infinity"):
        assert token not in text
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))


def _read_modified(tmp_path, data):
    return read_result(dump_json(data, tmp_path / "modified.json"))


def test_newer_schema_refused(tmp_path, data):
    data["schema_version"] = 99
    with pytest.raises(ResultError) as info:
        _read_modified(tmp_path, data)
    msg = str(info.value)
    assert "newer" in msg and "99" in msg and "modified.json" in msg


def test_missing_schema_version(tmp_path, data):
    del data["schema_version"]
    with pytest.raises(ResultError, match="schema_version"):
        _read_modified(tmp_path, data)


def test_matrix_entry_removed(tmp_path, data):
    data["matrix"].pop(3)
    with pytest.raises(ResultError) as info:
        _read_modified(tmp_path, data)
    assert "matrix" in str(info.value)


def test_matrix_entry_duplicated(tmp_path, data):
    data["matrix"][3] = copy.deepcopy(data["matrix"][2])
    with pytest.raises(ResultError, match="matrix"):
        _read_modified(tmp_path, data)


def test_matrix_extra_entry(tmp_path, data):
    data["matrix"].append({**data["matrix"][0], "trained_upto": 5})
    with pytest.raises(ResultError, match="matrix"):
        _read_modified(tmp_path, data)


def test_unknown_metric_name(tmp_path, data):
    data["matrix"][0]["metric"] = "accuracy"
    with pytest.raises(ResultError) as info:
        _read_modified(tmp_path, data)
    assert "metric" in str(info.value)


def test_metric_not_matching_experience(tmp_path, data):
    data["matrix"][0]["metric"] = "auc"  # experience 0 is a segmentation: its metric is dice
    with pytest.raises(ResultError) as info:
        _read_modified(tmp_path, data)
    assert "auc" in str(info.value)


def test_scenario_metrics_wrong_length(tmp_path, data):
    data["scenario"]["metrics"] = ["dice"]
    with pytest.raises(ResultError, match="metric"):
        _read_modified(tmp_path, data)


def test_trainable_params_wrong_length(tmp_path, data):
    data["cost"]["trainable_params"] = data["cost"]["trainable_params"][:1]
    with pytest.raises(ResultError, match="trainable_params"):
        _read_modified(tmp_path, data)


def test_unknown_field_refused(tmp_path, data):
    data["summary"]["accuracy"] = 0.5
    with pytest.raises(ResultError, match="accuracy"):
        _read_modified(tmp_path, data)


def test_null_values_allowed(tmp_path, data):
    data["matrix"][0]["value"] = None
    # an undefined final score on experience 0 leaves BWT (and what else uses it) undefined: the summary
    # must say so, since it is checked against the matrix
    final_on_0 = next(e for e in data["matrix"] if e["metric"] == data["scenario"]["metrics"][0]
                      and e["trained_upto"] == len(data["scenario"]["experiences"]) - 1 and e["evaluated_on"] == 0)
    final_on_0["value"] = None
    for key in ("final_average", "bwt", "forgetting"):
        data["summary"][key] = None
    r = _read_modified(tmp_path, data)
    assert r.matrix[0].value is None and r.summary.bwt is None
    assert r.rows()[0][0] is None


def test_not_json(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"schema_version": 1,')
    with pytest.raises(ResultError, match="not valid JSON"):
        read_result(path)


def test_not_an_object():
    with pytest.raises(ResultError, match="not a JSON object"):
        parse_result([1, 2, 3])


def test_unreadable(tmp_path):
    with pytest.raises(ResultError, match="cannot read"):
        read_result(tmp_path / "missing.json")


# -- clean_float -------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), np.float32("nan"), None])
def test_clean_float_undefined(value):
    assert clean_float(value) is None


@pytest.mark.parametrize("value", [0.0, 0.25, 1.0, np.float32(0.5), np.float64(0.75), 1])
def test_clean_float_finite(value):
    out = clean_float(value)
    assert type(out) is float and out == float(value)


def test_nan_becomes_null_in_file(tmp_path, real):
    result = real[0].model_copy(deep=True)
    result.matrix[0].value = clean_float(math.nan)
    path = write_result(result, tmp_path)
    raw = load_json(path)
    assert raw["matrix"][0]["value"] is None
    assert read_result(path).matrix[0].value is None


# -- write_result ----------------------------------------------------------------------------------


def test_write_result_roundtrip_and_atomic(tmp_path, real):
    result = real[0]
    path = write_result(result, tmp_path / "out")
    assert path == tmp_path / "out" / "ct_to_pet" / "naive" / f"{result.run_id}.json"
    assert read_result(path) == result
    # written again (overwrite): still one file and no temporaries in the folder
    write_result(result, tmp_path / "out")
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_write_result_failure_leaves_no_temp(tmp_path, real, monkeypatch):
    result = real[0]
    path = write_result(result, tmp_path)
    before = path.read_bytes()
    changed = result.model_copy(update={"seed": 12345})

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(fileio.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_result(changed, tmp_path)
    assert path.read_bytes() == before  # the old file is intact
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


def test_write_result_never_clobbers_when_asked(tmp_path, real):
    result = real[0]
    path = write_result(result, tmp_path)
    before = path.read_bytes()
    changed = result.model_copy(update={"seed": 12345})  # same run id, other content
    with pytest.raises(ResultError, match="already exists"):
        write_result(changed, tmp_path, overwrite=False)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary left


def test_not_utf8_is_one_result_error(tmp_path):
    path = tmp_path / "binary.json"
    path.write_bytes(b"\xff\xfe\x00{")
    with pytest.raises(ResultError, match="not UTF-8"):
        read_result(path)
