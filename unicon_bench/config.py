"""Strategy hyper-parameters from a YAML config file and ``--set key=value`` overrides.

Values are coerced to the dataclass field's declared type; unknown keys and values of the wrong
type are one clear ``ConfigError``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from unicon_bench.errors import ConfigError
from unicon_bench.fileio import read_yaml_mapping

_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


def _coerce(name: str, value: Any, tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(name, value, arg)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{name}: cannot be {value!r}")
    if origin in (tuple, list):
        try:
            items = yaml.safe_load(value) if isinstance(value, str) else value
        except yaml.YAMLError:
            items = None
        if not isinstance(items, (list, tuple)):
            raise ConfigError(f"{name}: expected a list like [1, 2], got {value!r}")
        (inner, *_rest) = typing.get_args(tp) or (Any,)
        return origin(_coerce(name, v, inner) for v in items)
    if origin is typing.Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ConfigError(f"{name}: must be one of {', '.join(map(str, allowed))}, got {value!r}")
        return value
    try:
        if tp is bool:
            if isinstance(value, bool):
                return value
            text = str(value).lower()
            if text in _TRUE | _FALSE:
                return text in _TRUE
            raise ValueError
        if tp is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(str(value)) if isinstance(value, str) else int(value)
        if tp is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if tp is str:
            return str(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{name}: expected {getattr(tp, '__name__', tp)}, got {value!r}") from None
    return value


def parse_overrides(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a params YAML: either a flat mapping or one under a ``params:`` key."""
    raw = read_yaml_mapping(path, "config", " of parameter names to values")
    if "params" in raw:
        raw = raw["params"]
        if not isinstance(raw, dict):
            raise ConfigError(f"config {path}: 'params' must be a mapping")
    return raw


def load_tuning_info(path: str | Path):
    """The ``tuning:`` block of a params YAML written by ``unicon-bench tune``, or ``None``.

    A run configured from it records in its result that its parameters were tuned (study, trials);
    returns a ``results.TuningInfo``.
    """
    raw = read_yaml_mapping(path, "config", " of parameter names to values")
    tuning = raw.get("tuning") if "params" in raw else None
    if tuning is None:
        return None
    from unicon_bench.fileio import validate
    from unicon_bench.results import TuningInfo

    return validate(TuningInfo, tuning, f"config {path}: invalid 'tuning' block")


def build_params(params_cls: type, values: dict[str, Any]) -> Any:
    """Instantiate the frozen params dataclass from raw values, coercing and checking each key."""
    hints = typing.get_type_hints(params_cls)
    fields = {f.name for f in dataclasses.fields(params_cls)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ConfigError(
            f"unknown parameter(s) {', '.join(unknown)} for {params_cls.__name__}; "
            f"known: {', '.join(sorted(fields))}"
        )
    try:
        params = params_cls(**{k: _coerce(k, v, hints[k]) for k, v in values.items()})
    except (TypeError, ValueError, OverflowError) as exc:
        raise ConfigError(f"invalid parameters for {params_cls.__name__}: {exc}") from None
    return params


FOUNDATION_FIELDS = ("backbone", "backbone_options", "backbone_weights", "weights_map", "weights_ignore", "freeze")


def recorded_params(params: Any) -> dict[str, Any]:
    """A params dataclass as result files record it: the foundation fields (``BaseParams``) at their
    default are left out, so results of the default set-up read as those written before backbones
    were selectable (and sweeps still find them)."""
    out = dataclasses.asdict(params)
    for f in dataclasses.fields(params):
        if f.name in FOUNDATION_FIELDS and out[f.name] == f.default:
            del out[f.name]
    return out
