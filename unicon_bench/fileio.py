"""Reading user files safely, writing files atomically, and escaping user text for Markdown files.

Readers: YAML (``load_yaml``, the one YAML loader: safe tags only, alias expansion bounded), JSON and
pydantic validation, each failure one clear error; ``Int`` is an integer field that refuses booleans.
Writers: a temporary file in the destination folder, flushed to disk, then renamed over the
destination, so a reader (or a run killed mid-write) never sees half a file.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import Annotated, Any, Callable, IO

import yaml
from pydantic import BaseModel, BeforeValidator, ValidationError
from pydantic_core import PydanticCustomError

from unicon_bench.errors import ConfigError, UniconBenchError

# Values an alias may add to a document beyond those written in it: enough for shared blocks of
# parameters, far below what a "billion laughs" document (9 nested aliases of 9) expands to.
MAX_ALIAS_EXPANSION = 10_000
MAX_SEED = 2**32 - 1  # numpy's seeds are 32-bit: every seed (run, suite, data) lies in 0..MAX_SEED


class _BoundedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a document whose aliases expand past ``MAX_ALIAS_EXPANSION``
    values (or refer to themselves) before anything is constructed."""

    def construct_document(self, node):
        _check_expansion(node)
        return super().construct_document(node)


def _check_expansion(root: yaml.Node) -> None:
    size: dict[int, int] = {}  # expanded value count of each node seen (aliases share the node)
    stack, open_ = [(root, False)], set()
    while stack:
        node, done = stack.pop()
        children = [] if isinstance(node, yaml.ScalarNode) else (
            [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else node.value)
        if done:
            open_.discard(id(node))
            size[id(node)] = 1 + sum(size[id(c)] for c in children)
            continue
        if id(node) in size:
            continue
        if id(node) in open_:
            raise yaml.YAMLError("a recursive alias (an anchor used inside itself) is refused")
        open_.add(id(node))
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in size)
    if size[id(root)] - len(size) > MAX_ALIAS_EXPANSION:
        raise yaml.YAMLError(f"aliases expand it by {size[id(root)] - len(size)} values, more than the "
                             f"{MAX_ALIAS_EXPANSION} allowed (a YAML alias bomb?)")


def load_yaml(text: str, where: str, error: type[UniconBenchError] = ConfigError) -> Any:
    """Parse YAML text with the one loader of the package (safe tags, aliases expanding to at most
    ``MAX_ALIAS_EXPANSION`` values); any problem is one ``error`` starting with ``where``."""
    try:
        return yaml.load(text, Loader=_BoundedLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        raise error(" ".join(f"{where}: {exc}".split())) from None
    except RecursionError:
        raise error(f"{where}: nested too deeply") from None
    except (ValueError, OverflowError) as exc:  # e.g. a timestamp like 2001-02-30
        raise error(f"{where}: {exc}") from None


def _no_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise PydanticCustomError("int_not_bool", "Input should be an integer, not a boolean")
    return value


Int = Annotated[int, BeforeValidator(_no_bool)]  # pydantic's int would take true as 1


def read_yaml_mapping(path: str | Path, what: str, hint: str = "") -> dict[str, Any]:
    """``load_yaml`` a file that must hold a mapping; errors name the file and the problem."""
    path = Path(path)
    text = read_text(path, what, ConfigError, f"cannot read {what} file {path}")
    raw = load_yaml(text, f"malformed {what} YAML {path}")
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
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {_reason(exc)}") from None
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
    except OSError as exc:  # disk full, read-only, no permission, a folder in the way: one line, nothing left
        if isinstance(exc, UniconBenchError):
            raise
        raise OutputError(f"cannot write {path}: {_reason(exc)}") from None
    finally:
        Path(tmp).unlink(missing_ok=True)


class OutputError(UniconBenchError, OSError):
    """An output that cannot be written (a file where a folder should be, read-only, full): exit 2."""


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def nearest_existing(path: str | Path) -> Path:
    """``path`` (absolute) if it exists, else the nearest folder above it that does."""
    existing = Path(path).expanduser().absolute()
    while not existing.exists():
        existing = existing.parent
    return existing


def check_output_folder(folder: str | Path, what: str = "output folder") -> Path:
    """Prove ``folder`` writable before any work starts: a probe file written and removed in it, or, if it
    does not exist yet, in the nearest folder above it that does (nothing is created: a run that fails
    later leaves no empty output folder behind)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{what} {folder} is a file, not a folder")
    existing = nearest_existing(folder)
    if not existing.is_dir():
        raise OutputError(f"{what} {folder} lies under {existing}, which is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".write-probe.", suffix=".tmp")
        try:
            os.write(fd, b"0")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"{what} {folder} is not writable: {_reason(exc)}") from None
    return folder


def check_output_file(path: str | Path, what: str = "output file") -> Path:
    """A file about to be written: not a folder, and its folder writable."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{what} {path} is a folder; give a file name")
    check_output_folder(path.parent if str(path.parent) else Path("."), f"the folder of {what} {path}")
    return path


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
