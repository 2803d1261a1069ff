"""unicon-bench: continual learning of 3D CT/PET medical-imaging foundation models.

Importing the package is cheap and has no side effects; torch, Avalanche and MONAI are
imported only when a strategy is built or a run starts.
"""

from __future__ import annotations

__version__ = "0.1.0"

from unicon_bench.registry import get_strategy, list_strategies, register_strategy
from unicon_bench.scenario import get_scenario, list_scenarios

__all__ = [
    "__version__",
    "get_strategy",
    "list_strategies",
    "register_strategy",
    "get_scenario",
    "list_scenarios",
]
