"""unicon-bench: continual learning of 3D CT/PET medical-imaging foundation models.

Importing the package is cheap and has no side effects; torch, Avalanche and MONAI are
imported only when a strategy is built or a run starts.

The public API for strategy authors and third-party packages lives here: ``register_strategy``,
``AvalancheStrategy``, ``Strategy`` and ``BaseParams`` (the last three import torch on first use),
the registries' ``get_*``/``list_*`` functions, and the entry-point groups ``unicon_bench.strategies``,
``unicon_bench.scenarios`` and ``unicon_bench.backbones``.
"""

from __future__ import annotations

__version__ = "0.1.0"

from unicon_bench.registry import get_strategy, list_strategies, register_strategy
from unicon_bench.scenario import get_scenario, list_scenarios

# Names resolved on first access (PEP 562), so ``import unicon_bench`` stays light.
_LAZY = {
    "AvalancheStrategy": "unicon_bench.strategy.avalanche",
    "Strategy": "unicon_bench.strategy.base",
    "BaseParams": "unicon_bench.strategy.params",
    "SearchSpace": "unicon_bench.strategy.params",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'unicon_bench' has no attribute {name!r}")


__all__ = [
    "__version__",
    "AvalancheStrategy",
    "BaseParams",
    "SearchSpace",
    "Strategy",
    "get_strategy",
    "list_strategies",
    "register_strategy",
    "get_scenario",
    "list_scenarios",
]
