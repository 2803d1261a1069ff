"""One generic registry for strategies (and later models/metrics), filled lazily.

Built-in strategies live in ``unicon_bench.strategies`` (one module each) and register with
``@register_strategy("name")``. Third-party packages add theirs through the entry-point group
``unicon_bench.strategies`` (``name = "pkg.module:Class"``). Listing reads the modules' source with
``ast`` instead of importing them, so ``unicon-bench ls`` does not pay for torch/Avalanche.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import pkgutil
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Callable

from unicon_bench.errors import UniconBenchError, UnknownNameError

# What kind of method a strategy is, as ``unicon-bench ls strategies`` shows it (the ``family``
# class attribute): the bounds (naive, joint, specialized), or how it fights forgetting.
FAMILIES = ("bound", "regularisation", "rehearsal", "architecture", "parameter-efficient")


@dataclass(frozen=True)
class Entry:
    """What is known of a registered object without importing it."""

    name: str
    summary: str
    module: str
    attr: str | None = None
    compatible: tuple[str, ...] = ()
    trainable: str = ""
    family: str = ""
    origin: str = "builtin"
    extra: dict = field(default_factory=dict)


def _literal(node: ast.AST) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError:
        return None


def _scan_module_source(source: str, module: str, decorator: str, origin: str) -> list[Entry]:
    """Find ``@decorator("name")`` classes in source and read their docstring and attributes."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ClassDef):
            continue
        for deco in node.decorator_list:
            if (
                isinstance(deco, ast.Call)
                and getattr(deco.func, "id", getattr(deco.func, "attr", None)) == decorator
                and deco.args
            ):
                name = _literal(deco.args[0])
                attrs = {}
                for stmt in node.body:
                    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
                        target = getattr(stmt.targets[0], "id", None)
                        if target in ("compatible", "trainable", "family"):
                            attrs[target] = _literal(stmt.value)
                doc = (ast.get_docstring(node) or "").strip().splitlines()
                found.append(
                    Entry(
                        name=name,
                        summary=doc[0] if doc else "",
                        module=module,
                        attr=node.name,
                        compatible=tuple(sorted(attrs.get("compatible") or ())),
                        trainable=attrs.get("trainable") or "",
                        family=attrs.get("family") or "",
                        origin=origin,
                    )
                )
    return found


class Registry:
    """Name -> class registry with lazy discovery of built-ins and entry points."""

    def __init__(self, kind: str, package: str, group: str, decorator: str):
        self.kind, self.package, self.group, self.decorator = kind, package, group, decorator
        self._classes: dict[str, type] = {}
        self._entries: dict[str, Entry] | None = None

    def register(self, name: str) -> Callable[[type], type]:
        def wrap(cls: type) -> type:
            cls.name = name
            self._classes[name] = cls
            return cls

        return wrap

    def _discover(self) -> dict[str, Entry]:
        if self._entries is not None:
            return self._entries
        entries: dict[str, Entry] = {}
        spec = importlib.util.find_spec(self.package)
        if spec is None:  # e.g. `python -c ...` in a source checkout that was never pip-installed
            raise UniconBenchError(
                f"the built-in package {self.package} cannot be found: unicon_bench was imported from "
                f"{Path(__file__).parent}, which is not an installed copy; install the project "
                "(pip install -e .) or run from outside the source tree"
            )
        for location in spec.submodule_search_locations or []:
            for info in pkgutil.iter_modules([location]):
                if info.name.startswith("_") or info.ispkg:
                    continue
                module = f"{self.package}.{info.name}"
                source = (Path(location) / f"{info.name}.py").read_text(encoding="utf-8")
                for entry in _scan_module_source(source, module, self.decorator, "builtin"):
                    entries[entry.name] = entry
        for ep in entry_points(group=self.group):
            if ep.name in entries:  # built-ins win, as they do for scenarios
                continue
            module, _, attr = ep.value.partition(":")
            entries[ep.name] = self._describe_external(ep.name, module, attr, ep.dist)
        self._entries = entries
        return entries

    def _runtime_entry(self, name: str) -> Entry:
        """A class registered by ``@register_strategy`` in code that was imported directly."""
        cls = self._classes[name]
        doc = (cls.__doc__ or "").strip().splitlines()
        return Entry(
            name=name,
            summary=doc[0] if doc else "",
            module=cls.__module__,
            attr=cls.__qualname__,
            compatible=tuple(sorted(getattr(cls, "compatible", ()) or ())),
            trainable=getattr(cls, "trainable", "") or "",
            family=getattr(cls, "family", "") or "",
            origin="runtime",
        )

    def _describe_external(self, name: str, module: str, attr: str, dist: Any) -> Entry:
        origin = f"plugin ({dist.name})" if dist is not None else "plugin"
        try:
            spec = importlib.util.find_spec(module)
            source = Path(spec.origin).read_text(encoding="utf-8")
            for entry in _scan_module_source(source, module, self.decorator, origin):
                if entry.attr == attr:
                    return Entry(**{**entry.__dict__, "name": name})
        except (ImportError, OSError, SyntaxError, AttributeError, TypeError, ValueError):
            pass
        return Entry(name=name, summary="", module=module, attr=attr, origin=origin)

    def names(self) -> list[str]:
        return sorted(set(self._discover()) | set(self._classes))

    def entries(self) -> list[Entry]:
        return [self.entry(n) for n in self.names()]

    def entry(self, name: str) -> Entry:
        entries = self._discover()
        if name in entries:
            return entries[name]
        if name in self._classes:
            return self._runtime_entry(name)
        raise UnknownNameError(self.kind, name, self.names())

    def get(self, name: str) -> type:
        """Import the module that defines ``name`` and return its class."""
        entry = self.entry(name)
        if name not in self._classes:
            obj = importlib.import_module(entry.module)
            if entry.attr is not None and name not in self._classes:
                cls = getattr(obj, entry.attr)
                cls.name = name
                self._classes[name] = cls
        return self._classes[name]


STRATEGIES = Registry("strategy", "unicon_bench.strategies", "unicon_bench.strategies", "register_strategy")


def register_strategy(name: str) -> Callable[[type], type]:
    """Class decorator registering a strategy under ``name``."""
    return STRATEGIES.register(name)


def get_strategy(name: str) -> type:
    """Return the strategy class registered as ``name`` (imports it)."""
    return STRATEGIES.get(name)


def list_strategies() -> list[str]:
    """Names of all built-in and plugin strategies."""
    return STRATEGIES.names()
