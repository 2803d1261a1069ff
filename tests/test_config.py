"""Strategy parameters from --set strings and YAML config files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from unicon_bench.harness.request import build_params, load_config_file, parse_overrides
from unicon_bench.errors import ConfigError
from unicon_bench.registry import get_strategy


@pytest.fixture(scope="module")
def ewc_params():
    return get_strategy("ewc").params


@pytest.fixture(scope="module")
def base_params():
    return get_strategy("naive").params


@dataclass(frozen=True)
class Mixed:
    """Field types the built-in strategies do not use yet, to exercise the coercion rules."""

    flag: bool = False
    sizes: tuple[int, ...] = (1,)
    name: str = "x"
    level: Literal["low", "high"] = "low"
    maybe: float | None = None


# -- build_params: coercion ------------------------------------------------------------------------


def test_float_from_string(ewc_params):
    p = build_params(ewc_params, {"ewc_lambda": "10"})
    assert p.ewc_lambda == 10.0 and type(p.ewc_lambda) is float


def test_int_from_string(ewc_params):
    p = build_params(ewc_params, {"epochs": "3"})
    assert p.epochs == 3 and type(p.epochs) is int


@pytest.mark.parametrize("text", ["none", "None", "null"])
def test_optional_none(ewc_params, text):
    assert build_params(ewc_params, {"epochs": text}).epochs is None


def test_literal(ewc_params):
    p = build_params(ewc_params, {"mode": "online", "decay_factor": "0.5"})
    assert p.mode == "online" and p.decay_factor == 0.5


def test_defaults_kept_for_unset_keys(ewc_params):
    p = build_params(ewc_params, {"lr": "0.01"})
    assert p.lr == 0.01
    assert p == ewc_params(lr=0.01)


def test_overrides_pipeline(ewc_params):
    p = build_params(ewc_params, parse_overrides(["ewc_lambda=10", "epochs=3", "mode=online", "batch_size=none"]))
    assert (p.ewc_lambda, p.epochs, p.mode, p.batch_size) == (10.0, 3, "online", None)


def test_yaml_typed_values(ewc_params):
    p = build_params(ewc_params, {"ewc_lambda": 5, "epochs": 3.0, "weight_decay": 0, "lr": None})
    assert type(p.ewc_lambda) is float and p.ewc_lambda == 5.0
    assert type(p.epochs) is int and p.epochs == 3
    assert type(p.weight_decay) is float
    assert p.lr is None


def test_mixed_types():
    p = build_params(Mixed, {"flag": "yes", "sizes": "[2, 3]", "name": 7, "level": "high", "maybe": "2.5"})
    assert p == Mixed(flag=True, sizes=(2, 3), name="7", level="high", maybe=2.5)
    assert build_params(Mixed, {"flag": "off"}).flag is False
    assert build_params(Mixed, {"flag": True}).flag is True
    assert build_params(Mixed, {"sizes": [4]}).sizes == (4,)


# -- build_params: rejections ---------------------------------------------------------------------


def test_unknown_key_lists_known(ewc_params):
    with pytest.raises(ConfigError) as info:
        build_params(ewc_params, {"bogus": "1", "epochs": "2"})
    msg = str(info.value)
    assert "bogus" in msg and "known:" in msg
    for name in ("ewc_lambda", "mode", "decay_factor", "epochs", "lr", "batch_size", "weight_decay"):
        assert name in msg


@pytest.mark.parametrize("value", ["abc", "1.5", "", "true"])
def test_wrong_int(base_params, value):
    with pytest.raises(ConfigError) as info:
        build_params(base_params, {"epochs": value})
    assert "epochs" in str(info.value)


@pytest.mark.parametrize("value", [1.5, True])
def test_wrong_int_from_yaml(base_params, value):
    with pytest.raises(ConfigError, match="epochs"):
        build_params(base_params, {"epochs": value})


def test_wrong_float(ewc_params):
    with pytest.raises(ConfigError, match="ewc_lambda"):
        build_params(ewc_params, {"ewc_lambda": "lots"})


def test_none_for_non_optional(ewc_params):
    with pytest.raises(ConfigError, match="weight_decay"):
        build_params(ewc_params, {"weight_decay": "none"})


def test_bad_literal_lists_allowed(ewc_params):
    with pytest.raises(ConfigError) as info:
        build_params(ewc_params, {"mode": "offline"})
    msg = str(info.value)
    assert "mode" in msg and "separate" in msg and "online" in msg and "offline" in msg


@pytest.mark.parametrize("values", [{"flag": "maybe"}, {"sizes": "5"}, {"sizes": "[1, x]"}, {"level": "mid"}])
def test_mixed_rejections(values):
    key = next(iter(values))
    with pytest.raises(ConfigError, match=key):
        build_params(Mixed, values)


# -- parse_overrides ------------------------------------------------------------------------------


def test_parse_overrides():
    assert parse_overrides(["a=1", " b = x ", "c=d=e", "e="]) == {"a": "1", "b": "x", "c": "d=e", "e": ""}
    assert parse_overrides([]) == {}


@pytest.mark.parametrize("item", ["noequals", "=1", " =1"])
def test_parse_overrides_rejects(item):
    with pytest.raises(ConfigError) as info:
        parse_overrides([item])
    assert "key=value" in str(info.value) and item in str(info.value)


# -- load_config_file -----------------------------------------------------------------------------


def test_config_flat_mapping(tmp_path, ewc_params):
    path = tmp_path / "flat.yaml"
    path.write_text("ewc_lambda: 50\nmode: online\n")
    raw = load_config_file(path)
    assert raw == {"ewc_lambda": 50, "mode": "online"}
    assert build_params(ewc_params, raw) == ewc_params(ewc_lambda=50.0, mode="online")


def test_config_params_mapping(tmp_path):
    path = tmp_path / "nested.yaml"
    path.write_text("strategy: ewc\nparams:\n  ewc_lambda: 50\n  epochs: 4\n")
    assert load_config_file(str(path)) == {"ewc_lambda": 50, "epochs": 4}


def test_config_empty_file(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert load_config_file(path) == {}


@pytest.mark.parametrize(
    "text, expected",
    [("- 1\n- 2\n", "mapping"), ("params: [1, 2]\n", "params"), ("a: [1, 2\n", "malformed")],
    ids=["list", "params-list", "malformed"],
)
def test_config_rejects(tmp_path, text, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config_file(path)
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_config_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config_file(tmp_path / "nope.yaml")


def test_resolve_merges_config_and_overrides(tmp_path):
    """harness.resolve: config file values, then --set overrides on top; quick spec applied."""
    from unicon_bench import harness

    path = tmp_path / "ewc.yaml"
    path.write_text("params:\n  ewc_lambda: 50\n  epochs: 4\n")
    request = harness.resolve("ewc", "ct_to_pet", True, str(path), {"ewc_lambda": "7"})
    cls, spec, params = request.strategy_cls, request.spec, request.params
    assert cls is get_strategy("ewc")
    assert (params.ewc_lambda, params.epochs) == (7.0, 4)
    assert spec.data.shape == (16, 16, 16)


@pytest.mark.parametrize("override", ["epochs=-1", "weight_decay=-1", "lr=-0.1", "epochs=0"])
def test_out_of_range_budget_rejected_before_training(override):
    from unicon_bench import harness

    with pytest.raises(ConfigError):
        harness.resolve("naive", "ct_to_pet", True, None, parse_overrides([override]))


TUNED = sorted((Path(__file__).resolve().parent.parent / "configs" / "tuned").glob("*.yaml"))


@pytest.mark.parametrize("path", TUNED, ids=[p.stem for p in TUNED])
def test_shipped_tuned_configs_resolve_for_their_strategy_and_scenario(path):
    # configs/tuned/STRATEGY-SCENARIO.yaml: the README's "(tuned)" rows are `run --config` of these
    from unicon_bench import harness

    strategy, scenario = path.stem.split("-", 1)
    params = harness.resolve(strategy, scenario, False, str(path), {}).params
    tuned = load_config_file(str(path))
    assert tuned and all(getattr(params, k) == pytest.approx(v) for k, v in tuned.items())
