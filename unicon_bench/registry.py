"""One generic ``Registry`` for strategies, backbones and scenarios: names resolved lazily.

A registry maps a name to an object and learns its names from three sources:

1. **Built-ins**, declared as lazy ``"module:object"`` strings in the ``BUILTINS`` table of the
   registry's built-in package: ``unicon_bench.strategies`` (``{"naive":
   "unicon_bench.strategies.naive:Naive", ...}``) and ``unicon_bench.models.backbones``. A registry
   of files (``files=(".yaml", ".yml")``, the scenarios) takes the package's files instead: a
   file's stem is its name.
2. **Entry points** of the registry's group, from installed third-party packages:
   ``unicon_bench.strategies`` and ``unicon_bench.backbones`` (``name = "pkg.module:object"``),
   ``unicon_bench.scenarios`` (``any = "pkg.folder"``, a package whose YAML files are scenarios).
   A built-in wins over a plugin of the same name.
3. **Runtime registration**: the decorator (``register_strategy("name")``,
   ``register_backbone(...)``) registers the object when its module is imported: a user's own
   module, and the built-in modules themselves once ``get`` has imported them. ``register_lazy``
   adds a ``"module:object"`` entry by hand.

Nothing is imported before ``get``: ``names()`` reads the tables and the entry-point metadata, and
``entry()`` says what is known of a name without importing it. For strategies that is read from
the source with ``ast`` (``unicon-bench ls`` must not pay for torch/Avalanche): the class
docstring's first line and the literal class attributes ``family``, ``compatible`` and
``trainable``; one the class body does not set comes from its parent classes (followed through
the modules' imports) and finally from ``STRATEGY_DEFAULTS``, which ``Strategy`` itself uses.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.machinery
import importlib.util
import sys
from dataclasses import dataclass, field
from importlib import resources
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Callable

from unicon_bench.errors import UniconBenchError, UnknownNameError

# What kind of method a strategy is, as ``unicon-bench ls strategies`` shows it (the ``family``
# class attribute): the bounds (naive, joint, specialized), or how it fights forgetting.
FAMILIES = ("bound", "regularisation", "rehearsal", "architecture", "parameter-efficient")

# The class attributes of ``Strategy`` that ``ls`` reports, with their defaults. The one home of
# these defaults: ``unicon_bench.strategy.base.Strategy`` takes them from here (this module does
# not import torch, that one does).
STRATEGY_DEFAULTS: dict[str, Any] = {
    "compatible": ("domain", "task", "modality"),  # scenario kinds a strategy supports
    "trainable": "all",
    "family": "",
}


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
    path: Path | None = None  # a registry of files: the file

    @property
    def target(self) -> str:
        """``"module:object"``, or the file."""
        return str(self.path) if self.path is not None else f"{self.module}:{self.attr or ''}".rstrip(":")


# -- reading a class statically -------------------------------------------------------------------


def _literal(node: ast.AST) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, RecursionError):
        return None


def _module_spec(module: str):
    """The spec of ``module`` without importing it (nor any parent package not imported yet)."""
    if module in sys.modules:
        return getattr(sys.modules[module], "__spec__", None)
    parent = module.rpartition(".")[0]
    if not parent or parent in sys.modules:
        return importlib.util.find_spec(module)
    parent_spec = _module_spec(parent)
    if parent_spec is None or not parent_spec.submodule_search_locations:
        return None
    return importlib.machinery.PathFinder.find_spec(module, list(parent_spec.submodule_search_locations))


@functools.lru_cache(maxsize=None)
def _parsed(module: str) -> tuple[ast.Module, bool] | None:
    """The syntax tree of ``module``'s source and whether it is a package, or None if unreadable."""
    try:
        spec = _module_spec(module)
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            return None
        return ast.parse(Path(spec.origin).read_text(encoding="utf-8")), spec.submodule_search_locations is not None
    except (ImportError, OSError, SyntaxError, ValueError):
        return None


def _import_source(tree: ast.Module, module: str, is_package: bool, name: str) -> tuple[str, str] | None:
    """``(module, name)`` that ``from module import name [as alias]`` at the top of ``tree`` binds to ``name``."""
    for stmt in tree.body:
        if not isinstance(stmt, ast.ImportFrom):
            continue
        for alias in stmt.names:
            if (alias.asname or alias.name) != name:
                continue
            base = stmt.module or ""
            if stmt.level:
                package = module if is_package else module.rpartition(".")[0]
                for _ in range(stmt.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}".rstrip(".")
            return base, alias.name
    return None


_META = tuple(STRATEGY_DEFAULTS)


def _own_attrs(node: ast.ClassDef) -> dict[str, Any]:
    attrs = {}
    for stmt in node.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target, value = stmt.targets[0], stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            target, value = stmt.target, stmt.value
        else:
            continue
        key = getattr(target, "id", None)
        if key in _META and (literal := _literal(value)) is not None:  # a non-literal: read on from the parents
            attrs[key] = literal
    return attrs


def _class_attrs_at(module: str, cls: str, depth: int) -> dict[str, Any]:
    parsed = _parsed(module)
    return _class_attrs(parsed[0], module, parsed[1], cls, depth) if parsed else {}


def _class_attrs(tree: ast.Module, module: str, is_package: bool, cls: str, depth: int = 0) -> dict[str, Any]:
    """The literal ``_META`` attributes of class ``cls`` of ``module``, inherited ones included."""
    if depth > 20:
        return {}
    node = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls), None)
    if node is None:  # imported (or re-exported) here: follow the import
        source = _import_source(tree, module, is_package, cls)
        return _class_attrs_at(*source, depth + 1) if source else {}
    attrs = _own_attrs(node)
    for base in node.bases:  # left to right, as the MRO mostly goes
        if isinstance(base, ast.Name):
            for key, value in _class_attrs(tree, module, is_package, base.id, depth + 1).items():
                attrs.setdefault(key, value)
    return attrs


def _strategy_entry(name: str, node: ast.ClassDef, attrs: dict[str, Any], module: str, origin: str) -> Entry:
    attrs = {**STRATEGY_DEFAULTS, **attrs}
    doc = (ast.get_docstring(node) or "").strip().splitlines()
    return Entry(
        name=name, summary=doc[0] if doc else "", module=module, attr=node.name,
        compatible=tuple(sorted(attrs["compatible"] or ())), trainable=attrs["trainable"] or "",
        family=attrs["family"] or "", origin=origin,
    )


def _scan_tree(tree: ast.Module, module: str, is_package: bool, decorator: str, origin: str) -> list[Entry]:
    found = []
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        for deco in node.decorator_list:
            if (
                isinstance(deco, ast.Call)
                and getattr(deco.func, "id", getattr(deco.func, "attr", None)) == decorator
                and deco.args
            ):
                attrs = _class_attrs(tree, module, is_package, node.name)
                found.append(_strategy_entry(_literal(deco.args[0]), node, attrs, module, origin))
    return found


def _scan_module_source(source: str, module: str, decorator: str, origin: str) -> list[Entry]:
    """The ``@decorator("name")`` classes of ``source`` (the text of ``module``), read statically."""
    return _scan_tree(ast.parse(source), module, False, decorator, origin)


def describe_strategy(registry: "Registry", name: str, module: str, attr: str | None, origin: str) -> Entry:
    """What ``ls`` shows of the strategy class ``module:attr``, read from its source."""
    parsed = _parsed(module)
    if parsed is not None:
        tree, is_package = parsed
        if attr is None:  # an entry naming a module: its class registered as ``name``
            hits = [e for e in _scan_tree(tree, module, is_package, registry.decorator, origin) if e.name == name]
            if hits:
                return hits[0]
        node = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == attr), None)
        if node is not None:
            return _strategy_entry(name, node, _class_attrs(tree, module, is_package, node.name), module, origin)
    return Entry(name=name, summary="", module=module, attr=attr, origin=origin)


# -- the registry ----------------------------------------------------------------------------------


class Registry:
    """Name -> object, from a built-in table (or folder of files), entry points and decorators.

    ``kind`` names the objects in messages; ``package`` is the built-in package (its ``BUILTINS``
    table, or its files when ``files`` lists suffixes); ``group`` the entry-point group;
    ``decorator`` the name of the registering decorator (what is looked for in the source of an
    entry that names a module only); ``describe(registry, name, module, attr, origin)`` reads an
    entry's ``Entry`` without importing it;
    ``name_attr`` is set to the registered name on each object ``get`` loads.
    """

    def __init__(self, kind: str, package: str, group: str, decorator: str = "", *, files: tuple[str, ...] = (),
                 describe: Callable[..., Entry] | None = None, name_attr: str | None = None):
        self.kind, self.package, self.group, self.decorator = kind, package, group, decorator
        self.files, self.describe, self.name_attr = tuple(files), describe, name_attr
        self._objects: dict[str, Any] = {}  # registered at runtime, or loaded by ``get``
        self._lazy: dict[str, Entry] = {}  # register_lazy
        self._entries: dict[str, Entry] | None = None  # built-ins and entry points, found on first use

    @property
    def _classes(self) -> dict[str, Any]:  # the name older code and tests use
        return self._objects

    # -- filling it --------------------------------------------------------------------------------
    def register(self, name: str) -> Callable[[Any], Any]:
        """Decorator registering an object under ``name`` now (runtime registration)."""

        def wrap(obj: Any) -> Any:
            if self.name_attr:
                setattr(obj, self.name_attr, name)
            self._objects[name] = obj
            return obj

        return wrap

    def register_lazy(self, name: str, target: str, origin: str = "runtime") -> None:
        """Register ``"module:object"`` under ``name``; nothing is imported until ``get(name)``."""
        self._lazy[name] = self._entry_for(name, target, origin)

    def refresh(self) -> None:
        """Forget what was discovered and read (e.g. after installing a plugin into this process)."""
        self._entries = None
        _parsed.cache_clear()

    def _entry_for(self, name: str, target: str, origin: str) -> Entry:
        module, _, attr = target.partition(":")
        if self.describe is not None:
            return self.describe(self, name, module, attr or None, origin)
        return Entry(name=name, summary="", module=module, attr=attr or None, origin=origin)

    def _files_in(self, package: str, origin: str) -> dict[str, Entry]:
        found = {}
        for f in sorted(resources.files(package).iterdir(), key=str):
            if str(f).endswith(self.files):
                path = Path(str(f))
                found[path.stem] = Entry(name=path.stem, summary="", module=package, origin=origin, path=path)
        return found

    def _builtins(self) -> dict[str, Entry]:
        if importlib.util.find_spec(self.package) is None:  # a source checkout that was never pip-installed
            raise UniconBenchError(
                f"the built-in package {self.package} cannot be found: unicon_bench was imported from "
                f"{Path(__file__).parent}, which is not an installed copy; install the project "
                "(pip install -e .) or run from outside the source tree"
            )
        if self.files:
            return self._files_in(self.package, "builtin")
        table = getattr(importlib.import_module(self.package), "BUILTINS", {})
        return {name: self._entry_for(name, target, "builtin") for name, target in table.items()}

    def _plugins(self) -> dict[str, Entry]:
        found: dict[str, Entry] = {}
        for ep in entry_points(group=self.group):
            origin = f"plugin ({ep.dist.name})" if ep.dist is not None else "plugin"
            if self.files:
                try:
                    found.update(self._files_in(ep.value, origin))
                except (ModuleNotFoundError, TypeError):
                    continue
            else:
                found[ep.name] = self._entry_for(ep.name, ep.value, origin)
        return found

    def _discover(self) -> dict[str, Entry]:
        if self._entries is None:
            self._entries = {**self._plugins(), **self._builtins()}  # built-ins win
        return self._entries

    # -- reading it --------------------------------------------------------------------------------
    def names(self) -> list[str]:
        return sorted(set(self._discover()) | set(self._lazy) | set(self._objects))

    def __contains__(self, name: object) -> bool:
        return name in self._discover() or name in self._lazy or name in self._objects

    def entries(self) -> list[Entry]:
        return [self.entry(n) for n in self.names()]

    def entry(self, name: str) -> Entry:
        """What is known of ``name`` without importing it."""
        for table in (self._discover(), self._lazy):
            if name in table:
                return table[name]
        if name in self._objects:
            return self._runtime_entry(name)
        raise UnknownNameError(self.kind, name, self.names())

    def _runtime_entry(self, name: str) -> Entry:
        """An object registered by the decorator in code that was imported directly."""
        obj = self._objects[name]
        doc = (getattr(obj, "summary", None) or obj.__doc__ or "").strip().splitlines()
        meta = {key: getattr(obj, key, None) for key in _META}
        return Entry(
            name=name, summary=doc[0] if doc else "", module=obj.__module__, attr=obj.__qualname__,
            compatible=tuple(sorted(meta["compatible"] or ())), trainable=meta["trainable"] or "",
            family=meta["family"] or "", origin="runtime",
        )

    def get(self, name: str) -> Any:
        """The object registered as ``name``, imported on first use (a registry of files: the file)."""
        if name in self._objects:
            return self._objects[name]
        entry = self.entry(name)
        if entry.path is not None:
            return entry.path
        obj = importlib.import_module(entry.module)
        if entry.attr is not None:
            obj = functools.reduce(getattr, entry.attr.split("."), obj)
        elif name in self._objects:  # the module's decorator registered it
            return self._objects[name]
        else:
            raise UniconBenchError(f"{self.kind} '{name}': module {entry.module} registers nothing of that name")
        return self.register(name)(obj)


STRATEGIES = Registry("strategy", "unicon_bench.strategies", "unicon_bench.strategies", "register_strategy",
                      describe=describe_strategy, name_attr="name")


def register_strategy(name: str) -> Callable[[type], type]:
    """Class decorator registering a strategy under ``name``."""
    return STRATEGIES.register(name)


def get_strategy(name: str) -> type:
    """Return the strategy class registered as ``name`` (imports it)."""
    return STRATEGIES.get(name)


def list_strategies() -> list[str]:
    """Names of all built-in and plugin strategies."""
    return STRATEGIES.names()
