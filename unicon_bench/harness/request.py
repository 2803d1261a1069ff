"""The run request: what one run is, resolved and checked once before any heavy work starts.

``resolve`` turns names and raw values (a strategy name, a scenario name or file, a params YAML,
``--set key=value`` overrides) into a frozen ``RunRequest``: the strategy class, the scenario spec
(its quick version if asked), the strategy's params dataclass, the seed, the device. Parameter values
are coerced to the dataclass field's declared type; unknown keys, values of the wrong type (a boolean
for a number), non-finite floats, a seed outside 0..2**32-1, a cache folder that is a file and
strategies that do not support the scenario's kind are one clear ``UniconBenchError``.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any

from unicon_bench.errors import ConfigError, IncompatibleError, UniconBenchError
from unicon_bench.fileio import MAX_SEED, load_yaml, nearest_existing, read_yaml_mapping

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
            items = load_yaml(value, "not YAML") if isinstance(value, str) else value
        except ConfigError as exc:
            raise ConfigError(f"{name}: expected a list like [1, 2], got {value!r} ({exc})") from None
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
            number = float(value)
            if not math.isfinite(number):  # a diverged run would record it as null, like the default
                raise ConfigError(f"{name}: expected a finite number, got {value!r}")
            return number
        if tp is str:
            return str(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{name}: expected {getattr(tp, '__name__', tp)}, got {value!r}") from None
    return value


def resolve_precision(precision: str | None, device: str) -> str:
    """``fp32`` or ``bf16``; ``None`` or ``auto``: the device's default (bf16 on CUDA, fp32 on the CPU)."""
    from unicon_bench.strategy.params import PRECISIONS, default_precision

    if precision in (None, "auto"):
        return default_precision(device)
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be auto, {' or '.join(PRECISIONS)}, got {precision!r}")
    return precision


def check_seed(seed: Any, what: str = "seed") -> int:
    """``seed`` as an int in 0..MAX_SEED (numpy's range), or one ``ConfigError``."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"{what} must be an integer from 0 to {MAX_SEED}, got {seed!r}")
    return seed


def check_cache_dir(cache_dir: str | Path | None) -> None:
    """A cache folder that is, or lies under, an existing file is one ``ConfigError``."""
    if cache_dir is None:
        return
    existing = nearest_existing(cache_dir)
    if not existing.is_dir():
        raise ConfigError(f"cache folder {cache_dir}: {existing} is a file, not a folder")


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


def check_params(strategy: str, values: dict[str, Any]) -> None:
    """Coerce and check the values of ``strategy``'s known parameters (a suite's, at load); unknown keys
    are left to ``build_params`` when the run is resolved."""
    from unicon_bench.registry import STRATEGIES

    cls = STRATEGIES.get(strategy).params
    known = {f.name for f in dataclasses.fields(cls)}
    try:
        build_params(cls, {k: v for k, v in values.items() if k in known})
    except UniconBenchError as exc:
        raise ConfigError(f"{strategy}: {exc}") from None


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


@dataclasses.dataclass(frozen=True)
class RunRequest:
    """One run, resolved: everything that decides what it computes (not where it writes or reports)."""

    strategy: str  # the registered name, as the result records it
    strategy_cls: type
    spec: Any  # ScenarioSpec, the quick version already applied when ``quick``
    params: Any  # the strategy's params dataclass
    seed: int = 0
    quick: bool = False
    device: str = "cpu"
    tuning: Any = None  # results.TuningInfo when the params came from ``unicon-bench tune``
    validation: float | None = None  # evaluate on this share of the training subjects (tuning)
    cache_dir: str | Path | None = None
    precision: str = "fp32"  # "fp32" or "bf16" (autocast), resolved from the device when not given
    share_dir: str | Path | None = None  # shared stage-0 folder (strategy.stage0); None: train experience 0 itself

    @property
    def recorded_params(self) -> dict[str, Any]:
        return recorded_params(self.params)

    def describe(self) -> str:
        return f"{self.strategy} on {self.spec.name} (seed {self.seed}{', quick' if self.quick else ''})"


def resolve(strategy: str, scenario: Any, quick: bool = False, config: str | Path | None = None,
            overrides: dict[str, Any] | None = None, *, seed: int = 0, device: str = "cpu",
            validation: float | None = None, cache_dir: str | Path | None = None,
            precision: str | None = None, share_dir: str | Path | None = None) -> RunRequest:
    """Check names, compatibility and parameters; ``scenario`` is a name, a YAML path or a ``ScenarioSpec``."""
    from unicon_bench.registry import STRATEGIES
    from unicon_bench.scenario import ScenarioSpec, get_scenario

    check_seed(seed)
    check_cache_dir(cache_dir)
    precision = resolve_precision(precision, device)
    entry = STRATEGIES.entry(strategy)
    spec = scenario if isinstance(scenario, ScenarioSpec) else get_scenario(scenario)
    cls = STRATEGIES.get(strategy)
    if spec.kind not in cls.compatible:
        raise IncompatibleError(
            f"strategy '{entry.name}' does not support {spec.kind}-incremental scenarios like "
            f"'{spec.name}' (it supports: {', '.join(sorted(cls.compatible))})"
        )
    values = {**(load_config_file(config) if config else {}), **(overrides or {})}
    params = build_params(cls.params, values)
    return RunRequest(strategy=strategy, strategy_cls=cls, spec=spec.quick_version() if quick else spec, params=params,
                      seed=seed, quick=quick, device=device, tuning=load_tuning_info(config) if config else None,
                      validation=validation, cache_dir=cache_dir, precision=precision, share_dir=share_dir)
