"""Reading user files safely: YAML mappings and pydantic validation, each failure one clear error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from unicon_bench.errors import ConfigError, UniconBenchError


def read_yaml_mapping(path: str | Path, what: str, hint: str = "") -> dict[str, Any]:
    """``yaml.safe_load`` a file that must hold a mapping; errors name the file and the problem."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {what} file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"malformed {what} YAML {path}: {exc}".replace("\n", " ")) from None
    if raw is None and what == "config":
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{what} file {path} must contain a mapping{hint}")
    return raw


def problems(exc: ValidationError, limit: int = 5) -> str:
    """pydantic errors as ``a.b: message; ...``."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()[:limit]
    )


def validate(model: type[BaseModel], raw: Any, prefix: str, error: type[UniconBenchError] = ConfigError):
    """``model.model_validate(raw)`` with validation errors turned into one ``error``."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise error(f"{prefix}: {problems(exc)}") from None


def read_json(path: str | Path, what: str, error: type[UniconBenchError]) -> Any:
    """``json.loads`` a file; an unreadable file or bad JSON is one ``error`` naming the file."""
    import json

    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"{path}: cannot read {what}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise error(f"{path}: {what} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
