"""Reading user files safely, writing files atomically, and escaping user text for Markdown files.

Readers: YAML mappings (``yaml.safe_load``), JSON and pydantic validation, each failure one clear
error. Writers: a temporary file in the destination folder, flushed to disk, then renamed over the
destination, so a reader (or a run killed mid-write) never sees half a file.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, IO

import yaml
from pydantic import BaseModel, ValidationError

from unicon_bench.errors import ConfigError, UniconBenchError


def read_yaml_mapping(path: str | Path, what: str, hint: str = "") -> dict[str, Any]:
    """``yaml.safe_load`` a file that must hold a mapping; errors name the file and the problem."""
    path = Path(path)
    text = read_text(path, what, ConfigError, f"cannot read {what} file {path}")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(" ".join(f"malformed {what} YAML {path}: {exc}".split())) from None
    except RecursionError:
        raise ConfigError(f"malformed {what} YAML {path}: nested too deeply") from None
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
    text = read_text(path, what, error, f"{path}: cannot read {what}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{path}: {what} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise error(f"{path}: {what} JSON is nested too deeply") from None


def read_text(path: Path, what: str, error: type[UniconBenchError], prefix: str) -> str:
    """A UTF-8 text file; unreadable files and bytes that are not UTF-8 are one ``error``."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"{prefix}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise error(f"{prefix}: not UTF-8 text (byte {exc.start}); is it a {what} file?") from None


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None], overwrite: bool = True) -> bool:
    """Write ``path`` through ``write(binary_file)`` into a temporary file, then rename it into place.

    The temporary file lives in the destination folder (same file system, so the rename is atomic)
    and is fsynced before the rename; on any error it is removed and the destination is untouched.
    With ``overwrite=False`` the file is published with a hard link, which fails if ``path`` exists:
    returns False then (nothing written), True otherwise.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # the permissions of a plain new file, not mkstemp's 0600
        if overwrite:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError as exc:  # a file system without hard links: check, then rename
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV) or path.exists():
                raise
            os.replace(tmp, path)
        return True
    finally:
        Path(tmp).unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str, overwrite: bool = True) -> bool:
    """``atomic_write`` of UTF-8 text: readers never see half a file."""
    data = text.encode("utf-8")
    return atomic_write(path, lambda f: f.write(data), overwrite=overwrite)


_MD_SPECIAL = "\\`*_[]|~"  # emphasis, code, links, table cells; <, > and & become entities


def md_escape(text: str) -> str:
    """A user string as literal Markdown table text (no emphasis, links, pipes or raw HTML)."""
    out = "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in str(text))
    return out.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")


# Names that become file or folder names (scenario, strategy, run id, study): no separators, no "..",
# no leading dot or dash, so a joined path never leaves the folder it is joined to.
SAFE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"


def inside(folder: str | Path, *parts: str) -> Path:
    """``folder / parts...`` as given, refused (``ConfigError``) unless, resolved, it lies inside ``folder``."""
    base = Path(folder).resolve()
    path = base.joinpath(*parts).resolve()
    if path != base and base not in path.parents:
        raise ConfigError(f"{'/'.join(parts)!r} would write outside {folder}")
    return Path(folder).joinpath(*parts)
