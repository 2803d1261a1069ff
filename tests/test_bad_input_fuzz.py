"""Property-based tests: malformed YAML, CSV and JSON fed to every parser yields a clear error or a value.

A "clear error" is a ``UniconBenchError`` subclass with a non-empty one-line message (the CLI prints
it as one line and exits 2); any other exception fails the test. Inputs: arbitrary bytes and text,
arbitrary YAML/JSON documents, valid files with one field replaced or removed, and manifest CSVs
with the required columns and arbitrary cells (paths included: they are resolved and checked, never
opened as anything but files).
"""

from __future__ import annotations

import copy
import itertools
import json
from importlib import resources

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unicon_bench.harness.request import build_params, load_config_file, parse_overrides
from unicon_bench.errors import UniconBenchError
from unicon_bench.registry import STRATEGIES, list_strategies
from unicon_bench.results import parse_result, read_result
from unicon_bench.scenario import load_scenario_file
from unicon_bench.sweep import load_suite

FUZZ = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
_counter = itertools.count()

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
documents = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)


def clear_or_value(fn, *args):
    """Call ``fn``; a ``UniconBenchError`` must carry a non-empty single-line message."""
    try:
        return fn(*args)
    except UniconBenchError as exc:
        message = str(exc)
        assert message.strip() and "\n" not in message, repr(message)
        return None


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


def _file(folder, content: str | bytes, suffix: str):
    path = folder / f"f{next(_counter)}{suffix}"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def _load_config(path):
    for name in list_strategies():
        build_params(STRATEGIES.get(name).params, load_config_file(path))


def _read_suite(path):
    return load_suite(path)


YAML_PARSERS = {"scenario": load_scenario_file, "suite": _read_suite, "config": _load_config}


@pytest.mark.parametrize("kind", sorted(YAML_PARSERS))
@FUZZ
@given(content=st.binary(max_size=200) | st.text(max_size=200))
def test_yaml_parsers_on_arbitrary_bytes_and_text(folder, kind, content):
    clear_or_value(YAML_PARSERS[kind], _file(folder, content, ".yaml"))


@pytest.mark.parametrize("kind", sorted(YAML_PARSERS))
@FUZZ
@given(doc=documents)
def test_yaml_parsers_on_arbitrary_documents(folder, kind, doc):
    clear_or_value(YAML_PARSERS[kind], _file(folder, yaml.safe_dump(doc), ".yaml"))


def _paths(node, prefix=()):
    """Every key path of a nested dict/list document."""
    yield prefix
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        yield from _paths(child, (*prefix, key))


def _mutate(doc, path, value, delete: bool):
    doc = copy.deepcopy(doc)
    if not path:
        return value
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


def _valid_scenario() -> dict:
    return yaml.safe_load(resources.files("unicon_bench.scenarios").joinpath("ct_tasks.yaml").read_text())


VALID_SUITE = {"name": "s", "strategies": ["naive", "ewc"], "scenarios": ["ct_to_pet"], "seeds": 2, "quick": True,
               "params": {"ewc": {"ewc_lambda": 10.0}}}
VALID_CONFIG = {"params": {"epochs": 2, "lr": 0.01, "batch_size": 2}}


def mutations(valid: dict):
    paths = list(_paths(valid))
    return st.tuples(st.sampled_from(paths), documents, st.booleans()).map(
        lambda t: _mutate(valid, t[0], t[1], t[2] and bool(t[0]))
    )


@FUZZ
@given(doc=mutations(_valid_scenario()))
def test_scenario_with_one_field_broken(folder, doc):
    clear_or_value(load_scenario_file, _file(folder, yaml.safe_dump(doc), ".yaml"))


@FUZZ
@given(doc=mutations(VALID_SUITE))
def test_suite_with_one_field_broken(folder, doc):
    clear_or_value(load_suite, _file(folder, yaml.safe_dump(doc), ".yaml"))


@FUZZ
@given(doc=mutations(VALID_CONFIG))
def test_config_with_one_field_broken(folder, doc):
    clear_or_value(_load_config, _file(folder, yaml.safe_dump(doc), ".yaml"))


@FUZZ
@given(items=st.lists(st.text(max_size=30), max_size=4))
def test_set_overrides(items):
    overrides = clear_or_value(parse_overrides, items)
    if overrides is not None:
        for name in list_strategies():
            clear_or_value(build_params, STRATEGIES.get(name).params, overrides)


# -- manifest CSV --------------------------------------------------------------------------------------

MANIFEST_COLUMNS = ["subject_id", "modality", "image", "split", "label", "site", "class_label",
                    "survival_time", "event", "age", "smoking", "report", "resample_label"]
cells = st.sampled_from(["", "CT", "PET", "PT", "train", "eval", "0", "1", "nan", "-3", "1e999", "img.nii.gz",
                         "../../etc/passwd", "/dev/null", "a,b", '"q"', "x\ny"]) | st.text(max_size=12)


def _read_manifest(path):
    from unicon_bench.data.manifest import read_manifest

    for check_files in (False, True):
        read_manifest(path, check_files=check_files)


@FUZZ
@given(content=st.binary(max_size=200) | st.text(max_size=200))
def test_manifest_reader_on_arbitrary_bytes_and_text(folder, content):
    clear_or_value(_read_manifest, _file(folder, content, ".csv"))


@FUZZ
@given(columns=st.lists(st.sampled_from(MANIFEST_COLUMNS) | st.text(max_size=8), min_size=1, max_size=8),
       rows=st.lists(st.lists(cells, min_size=0, max_size=9), max_size=4))
def test_manifest_reader_on_arbitrary_cells(folder, columns, rows):
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(columns)
    writer.writerows(rows)
    clear_or_value(_read_manifest, _file(folder, buf.getvalue(), ".csv"))


@FUZZ
@given(rows=st.lists(st.lists(cells, min_size=len(MANIFEST_COLUMNS), max_size=len(MANIFEST_COLUMNS)),
                     min_size=1, max_size=4))
def test_manifest_reader_on_complete_rows_of_arbitrary_cells(folder, rows):
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(MANIFEST_COLUMNS)
    writer.writerows(rows)
    clear_or_value(_read_manifest, _file(folder, buf.getvalue(), ".csv"))


# -- result JSON ---------------------------------------------------------------------------------------


@FUZZ
@given(content=st.binary(max_size=200) | st.text(max_size=200))
def test_result_reader_on_arbitrary_bytes_and_text(folder, content):
    clear_or_value(read_result, _file(folder, content, ".json"))


@FUZZ
@given(doc=documents)
def test_result_reader_on_arbitrary_json(folder, doc):
    clear_or_value(read_result, _file(folder, json.dumps(doc), ".json"))


@pytest.fixture(scope="module")
def valid_result(quick_run):
    return json.loads(quick_run("naive", "ct_to_pet")[1].read_text(encoding="utf-8"))


@pytest.mark.slow  # the fixture trains one quick run (shared with the rest of the session)
@FUZZ
@given(data=st.data())
def test_result_with_one_field_broken(valid_result, data):
    assert parse_result(valid_result).seed == 0  # the unbroken file is valid
    doc = data.draw(mutations(valid_result))
    clear_or_value(parse_result, doc, "<fuzz>")
