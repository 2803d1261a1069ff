"""Hostile and careless inputs (issue 22): each is refused where it enters, with one line and exit 2.

Every case checks the exit code (2), that stderr holds one ``error: ...`` line and no traceback, and
that nothing was written to the output folder. Covered: non-finite floats and booleans given for
numbers (``--set``, ``--config``, suite ``params``, scenario ``train``), YAML alias bombs in every
YAML input, the scenario's ``quick`` and ``data`` sizes, scenario names that are not folder names,
out-of-range seeds, a ``--cache-dir`` that is a file, bad backbone options, negative buffer sizes and
malformed MSD ``dataset.json`` files.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import typing
from importlib import resources
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from unicon_bench.cli import app
from unicon_bench.errors import ConfigError, UniconBenchError
from unicon_bench.harness.request import build_params
from unicon_bench.registry import STRATEGIES, list_strategies
from unicon_bench.scenario import load_scenario_file
from unicon_bench.sweep import load_suite

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def assert_refused(result, out: Path | None = None, *needles: str) -> str:
    """Exit 2, one ``error:`` line on stderr naming every needle, no traceback, ``out`` untouched."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    if out is not None:
        assert not out.exists() or not any(out.rglob("*")), sorted(out.rglob("*"))
    return lines[0]


def one_line(exc: BaseException) -> str:
    message = str(exc)
    assert message.strip() and "\n" not in message, repr(message)
    return message


def _scenario_raw() -> dict:
    text = resources.files("unicon_bench.scenarios").joinpath("ct_to_pet.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def write_scenario(tmp_path: Path, **changes) -> Path:
    """ct_to_pet with top-level blocks updated: ``train={"lr": inf}`` merges into ``train``."""
    raw = _scenario_raw()
    for key, value in changes.items():
        raw[key] = {**raw[key], **value} if isinstance(value, dict) and isinstance(raw.get(key), dict) else value
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


@pytest.fixture
def out(tmp_path) -> Path:
    return tmp_path / "out"


def run_cli(out: Path, *extra: str, strategy: str = "naive", scenario: str = "ct_to_pet"):
    return invoke("run", "-s", strategy, "-c", scenario, "--quick", "--no-progress", "--out", str(out), *extra)


# -- 1. non-finite numbers and booleans for numbers --------------------------------------------------

@pytest.mark.parametrize("strategy,item", [
    ("naive", "lr=inf"), ("naive", "lr=-inf"), ("naive", "weight_decay=inf"), ("naive", "lr=nan"),
    ("ewc", "ewc_lambda=nan"), ("ewc", "ewc_lambda=inf"), ("ewc", "decay_factor=NaN"), ("replay", "lr=1e999"),
])
def test_set_non_finite_refused(out, phantom_cache, strategy, item):
    key = item.partition("=")[0]
    assert_refused(run_cli(out, "--set", item, "--cache-dir", str(phantom_cache), strategy=strategy), out, key, "finite")


@pytest.mark.parametrize("text", ["lr: .inf", "weight_decay: .inf", "params: {ewc_lambda: .nan}", "epochs: true",
                                  "batch_size: false"])
def test_config_non_finite_or_bool_refused(tmp_path, out, phantom_cache, text):
    config = tmp_path / "params.yaml"
    config.write_text(text + "\n", encoding="utf-8")
    result = run_cli(out, "--config", str(config), "--cache-dir", str(phantom_cache), strategy="ewc")
    assert_refused(result, out, text.replace("params: {", "").split(":")[0])


@pytest.mark.parametrize("params", [{"ewc": {"ewc_lambda": math.nan}}, {"ewc": {"lr": math.inf}},
                                    {"ewc": {"epochs": True}}, {"replay": {"mem_size": -1}}])
def test_suite_params_checked_at_load(tmp_path, out, params):
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump({"name": "s", "strategies": list(params), "scenarios": ["ct_to_pet"],
                                     "seeds": 1, "quick": True, "out": str(out), "params": params}), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_suite(suite)
    assert next(iter(next(iter(params.values())))) in one_line(info.value)
    assert_refused(invoke("sweep", str(suite), "--no-progress"), out)


@pytest.mark.parametrize("pretrain,needle", [({"seed": -1}, "seed"), ({"lr": math.inf}, "lr"),
                                             ({"epochs": True}, "epochs")])
def test_suite_pretrain_checked_at_load(tmp_path, out, pretrain, needle):
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump({"name": "s", "strategies": ["naive"], "scenarios": ["ct_to_pet"], "seeds": 1,
                                     "out": str(out), "pretrain": pretrain}), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_suite(suite)
    assert "pretrain" in one_line(info.value) and needle in str(info.value)


def test_valid_suite_params_still_load(tmp_path):
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump({"name": "s", "strategies": ["replay", "ewc"], "scenarios": ["ct_to_pet"],
                                     "seeds": [0, 2**32 - 1], "params": {"replay": {"mem_size": 50},
                                                                        "ewc": {"ewc_lambda": "1e3"}},
                                     "pretrain": {"seed": 3, "epochs": 2}}), encoding="utf-8")
    loaded = load_suite(suite)
    assert loaded.params["replay"] == {"mem_size": 50} and loaded.seed_list() == [0, 2**32 - 1]


@pytest.mark.parametrize("changes,needle", [
    ({"train": {"lr": math.inf}}, "train.lr"), ({"train": {"lr": math.nan}}, "train.lr"),
    ({"train": {"epochs": True}}, "train.epochs"), ({"train": {"batch_size": False}}, "train.batch_size"),
    ({"data": {"n_train": True}}, "data"), ({"version": True}, "version"),
])
def test_scenario_non_finite_or_bool_refused(tmp_path, out, changes, needle):
    path = write_scenario(tmp_path, **changes)
    with pytest.raises(ConfigError) as info:
        load_scenario_file(path)
    assert needle in one_line(info.value)
    assert_refused(run_cli(out, scenario=str(path)), out, needle)


def _fields(kinds: tuple[type, ...]) -> list[tuple[str, str]]:
    """(strategy, field) for every params field of every registered strategy whose type is one of ``kinds``."""
    found = []
    for name in list_strategies():
        cls = STRATEGIES.get(name).params
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            args = typing.get_args(hints[f.name]) or (hints[f.name],)
            if any(a in kinds for a in args) and bool not in args:
                found.append((name, f.name))
    return found


FLOAT_FIELDS, INT_FIELDS = _fields((float,)), _fields((int,))
PROPERTY = settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
every_float = pytest.mark.parametrize("field", FLOAT_FIELDS, ids=["-".join(f) for f in FLOAT_FIELDS])
every_int = pytest.mark.parametrize("field", INT_FIELDS, ids=["-".join(f) for f in INT_FIELDS])
non_finite = st.sampled_from([math.inf, -math.inf, math.nan])
non_finite_text = st.sampled_from(["inf", "-inf", "+Inf", "nan", "NaN", "-infinity", "1e999", "-1e400"])


@every_float
@PROPERTY
@given(value=non_finite | non_finite_text)
def test_any_non_finite_float_refused_for_any_strategy(field, value):
    strategy, key = field
    cls = STRATEGIES.get(strategy).params
    with pytest.raises(ConfigError) as info:
        build_params(cls, {key: value})
    assert key in one_line(info.value) and "finite" in str(info.value)
    if not isinstance(value, str):  # the dataclass itself refuses too (library use)
        with pytest.raises(ValueError, match=key):
            cls(**{key: value})


@every_int
@PROPERTY
@given(value=st.booleans() | st.sampled_from(["true", "false"]))
def test_any_bool_for_an_int_refused(field, value):
    strategy, key = field
    with pytest.raises(ConfigError) as info:
        build_params(STRATEGIES.get(strategy).params, {key: value})
    assert key in one_line(info.value)


@every_int
@PROPERTY
@given(value=st.integers(max_value=-1))
def test_any_negative_count_refused(field, value):
    strategy, key = field
    with pytest.raises(ConfigError) as info:
        build_params(STRATEGIES.get(strategy).params, {key: value})
    assert key in one_line(info.value)


@every_float
@PROPERTY
@given(value=st.floats(max_value=-1e-9, allow_infinity=False))
def test_any_negative_weight_or_rate_refused(field, value):
    strategy, key = field
    with pytest.raises(ConfigError) as info:
        build_params(STRATEGIES.get(strategy).params, {key: value})
    assert key in one_line(info.value)


# -- 5. YAML alias bombs -----------------------------------------------------------------------------

def bomb(levels: int = 9) -> str:
    """A billion-laughs flow list: level k repeats level k-1 nine times (9**9 leaves, about 350 bytes)."""
    parts = ["&a0 [" + ", ".join(["lol"] * 9) + "]"]
    parts += [f"&a{k} [" + ", ".join([f"*a{k - 1}"] * 9) + "]" for k in range(1, levels)]
    return "[" + ", ".join(parts) + "]"


def _timed(fn):
    start = time.perf_counter()
    result = fn()
    assert time.perf_counter() - start < 1.0, f"took {time.perf_counter() - start:.1f}s"
    return result


def test_bomb_is_small():
    assert len(bomb()) < 1024


@pytest.mark.parametrize("kind", ["config", "config_params", "set_backbone_options", "set_list", "suite", "scenario"])
def test_alias_bomb_refused_fast(tmp_path, out, kind):
    b = bomb()
    suite = {"name": "s", "strategies": ["naive"], "scenarios": ["ct_to_pet"], "seeds": 1, "out": str(out)}
    files = {
        "config": f"backbone_options: {b}\n",
        "config_params": f"params:\n  weights_map: {b}\n",
        "suite": yaml.safe_dump(suite) + f"params: {{naive: {{backbone_options: {b}}}}}\n",
        "scenario": yaml.safe_dump({k: v for k, v in _scenario_raw().items() if k != "inputs"}) + f"inputs: {b}\n",
    }
    path = tmp_path / "input.yaml"
    path.write_text(files.get(kind, ""), encoding="utf-8")
    args = {
        "config": ["--config", str(path)], "config_params": ["--config", str(path)],
        "set_backbone_options": ["--set", f"backbone_options={{channels: {b}}}"],
        "set_list": ["--set", f"backbone_options={{channels: [16, 32, 64, {b}]}}"],
    }
    if kind == "suite":
        result = _timed(lambda: invoke("sweep", str(path), "--no-progress"))
    elif kind == "scenario":
        result = _timed(lambda: run_cli(out, scenario=str(path)))
    else:
        result = _timed(lambda: run_cli(out, *args[kind]))
    assert_refused(result, out, "alias")


def test_recursive_alias_refused(tmp_path, out):
    path = tmp_path / "params.yaml"
    path.write_text("backbone_options: &a [1, *a]\n", encoding="utf-8")
    assert_refused(run_cli(out, "--config", str(path)), out, "alias")


def test_one_loader_for_every_yaml_read():
    """No module but ``fileio`` parses YAML (so every read has the alias bound)."""
    root = Path(__file__).resolve().parents[1]
    offenders = [str(p.relative_to(root)) for p in sorted((root / "unicon_bench").rglob("*.py")) + sorted(
        (root / "strategies").rglob("*.py")) if p.name != "fileio.py" and any(
        call in p.read_text(encoding="utf-8") for call in ("yaml.safe_load", "yaml.load(", "yaml.full_load"))]
    assert offenders == []


# -- 6. the scenario's quick and data blocks; 3. scenario names --------------------------------------

@pytest.mark.parametrize("changes,needle", [
    ({"quick": {"epochs": 0}}, "quick.epochs"), ({"quick": {"epochs": -1}}, "quick.epochs"),
    ({"quick": {"n_train": 0}}, "quick.n_train"), ({"quick": {"n_eval": -3}}, "quick.n_eval"),
    ({"quick": {"shape": [17, 16, 16]}}, "multiples of 16"), ({"quick": {"shape": [4096, 4096, 4096]}}, "512"),
    ({"quick": {"shape": [0, 16, 16]}}, "quick.shape"), ({"quick": {"epochs": True}}, "quick.epochs"),
    ({"data": {"shape": [17, 32, 32]}}, "multiples of 16"), ({"data": {"shape": [4096, 32, 32]}}, "512"),
    ({"data": {"n_train": 0}}, "data"), ({"data": {"seed": -1}}, "data"),
    ({"data": {"n_train": 10**9}}, "data"),
])
def test_scenario_sizes_refused_at_load(tmp_path, out, changes, needle):
    path = write_scenario(tmp_path, **changes)
    with pytest.raises(ConfigError) as info:
        load_scenario_file(path)
    assert needle in one_line(info.value)
    assert_refused(run_cli(out, scenario=str(path)), out, needle)


@pytest.mark.parametrize("name", ["/abs/path", "../../x", "..", ".hidden", "a/b", "a b", "", "-x", "x" * 200, "na\u00efve"])
def test_scenario_name_must_be_a_folder_name(tmp_path, out, name):
    path = write_scenario(tmp_path, name=name)
    with pytest.raises(ConfigError) as info:
        load_scenario_file(path)
    assert "name" in one_line(info.value) and "A-Za-z0-9" in str(info.value)
    assert_refused(run_cli(out, scenario=str(path)), out, "name")


def test_valid_scenario_names_still_load(tmp_path):
    for name in ("ct_to_pet", "My.Scenario-2", "x"):
        assert load_scenario_file(write_scenario(tmp_path, name=name)).name == name


# -- 9. seeds, cache folder, backbone options, buffer sizes, MSD dataset.json ------------------------

@pytest.mark.parametrize("seed", ["99999999999999999999999", "-1", "4294967296"])
def test_run_seed_out_of_range(out, seed):
    assert_refused(run_cli(out, "--seed", seed), out, "seed", "4294967295")


def test_suite_seed_out_of_range(tmp_path, out):
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump({"name": "s", "strategies": ["naive"], "scenarios": ["ct_to_pet"],
                                     "seeds": [0, 2**40], "out": str(out)}), encoding="utf-8")
    with pytest.raises(ConfigError, match="seeds"):
        load_suite(suite)


def test_cache_dir_that_is_a_file(tmp_path, out):
    file = tmp_path / "cache"
    file.write_text("not a folder", encoding="utf-8")
    for cache in (file, file / "sub"):
        assert_refused(run_cli(out, "--cache-dir", str(cache)), out, "cache", str(file))


@pytest.mark.parametrize("options,needle", [
    ("{channels: [0, 0, 0, 0]}", "channels"), ("{channels: [16, -32, 64, 128]}", "channels"),
    ("{channels: [16, true, 64, 128]}", "channels"), ("{channels: 16}", "channels"),
    ("{channels: [16, 32, 64, 100000]}", "channels"), ("{channels: [16, 32, 64, .inf]}", "channels"),
])
def test_backbone_options_checked(out, options, needle):
    assert_refused(run_cli(out, "--set", f"backbone_options={options}"), out, needle)


@pytest.mark.parametrize("backbone,options", [("swin_unetr", "{feature_size: 0}"), ("vit", "{num_layers: -2}"),
                                              ("segresnet", "{blocks_down: [1, 0, 1, 1]}"),
                                              ("resnet", "{max_pool: 3}"), ("segresnet", "{norm: 7}")])
def test_other_backbone_options_checked(out, backbone, options):
    result = run_cli(out, "--set", f"backbone={backbone}", "--set", f"backbone_options={options}")
    assert_refused(result, out, options.strip("{}").split(":")[0])


@pytest.mark.parametrize("strategy,item", [("replay", "mem_size=-1"), ("replay", "mem_size=0"), ("der", "mem_size=-1"),
                                           ("agem", "patterns_per_experience=-1"), ("unicon", "adapter_reduction=0"),
                                           ("medcoss", "buffer_ratio=-0.1"), ("ewc", "ewc_lambda=-1")])
def test_negative_sizes_refused(out, strategy, item):
    assert_refused(run_cli(out, "--set", item, strategy=strategy), out, item.partition("=")[0])


MSD_OK = {"name": "Lung", "modality": {"0": "CT"},
          "training": [{"image": "./imagesTr/lung_1.nii.gz", "label": "./labelsTr/lung_1.nii.gz"}]}


@pytest.mark.parametrize("meta", [
    {k: v for k, v in MSD_OK.items() if k != "training"},
    {**MSD_OK, "training": "imagesTr"}, {**MSD_OK, "training": {"image": "a"}},
    {**MSD_OK, "training": [{"image": "./imagesTr/a.nii.gz"}]},
    {**MSD_OK, "training": [{"image": 3, "label": "./labelsTr/a.nii.gz"}]},
    {**MSD_OK, "training": ["./imagesTr/a.nii.gz"]}, {**MSD_OK, "training": [None]},
    {**MSD_OK, "modality": ["CT"]}, {**MSD_OK, "modality": {"0": 5}}, {**MSD_OK, "test": 5},
    {**MSD_OK, "name": ["Lung"]}, [MSD_OK], "dataset",
])
def test_msd_dataset_json_fields_checked(tmp_path, meta):
    root = tmp_path / "Task06_Lung"
    root.mkdir()
    (root / "dataset.json").write_text(json.dumps(meta), encoding="utf-8")
    output = tmp_path / "manifest" / "manifest.csv"
    result = invoke("data", "index", str(root), "--format", "msd", "-o", str(output))
    line = assert_refused(result, output.parent)
    assert "dataset.json" in line and not output.exists()


def test_msd_valid_dataset_json_still_indexed(tmp_path):
    from unicon_bench.data.indexers import index_dataset

    (tmp_path / "dataset.json").write_text(json.dumps({**MSD_OK, "test": ["./imagesTs/lung_9.nii.gz"]}), encoding="utf-8")
    index = index_dataset("msd", tmp_path)
    assert [r["subject_id"] for r in index.records] == ["lung_1"] and index.records[0]["site"] == "Lung"


def test_errors_are_the_projects():
    assert issubclass(ConfigError, UniconBenchError)


@pytest.mark.parametrize("command", [
    ["pretrain", "--scenario", "ct_to_pet", "--quick", "--no-progress", "--out", "{out}"],
    ["tune", "--strategy", "naive", "--scenario", "ct_to_pet", "--quick", "--no-progress", "--trials", "1", "--out", "{out}"],
])
@pytest.mark.parametrize("seed", ["-1", "99999999999999999999999"])
def test_pretrain_and_tune_seeds_checked_before_work(tmp_path, command, seed):
    out = tmp_path / "out"
    args = [a.format(out=out) for a in command] + ["--seed", seed]
    r = CliRunner().invoke(app, args)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.exit_code == 2 and len(lines) == 1 and "seed must be an integer from 0 to" in lines[0], r.output
    assert "Traceback" not in r.output and not out.exists()
