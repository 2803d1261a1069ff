"""The strategy API: what a continual-learning method implements and what it builds on.

- ``params``: ``BaseParams`` (the frozen hyper-parameter dataclass every strategy's params extend)
  and the Optuna ``SearchSpace`` beside it;
- ``base``: the ``Strategy`` interface the harness drives, mixed precision, task routing, counting;
- ``avalanche``: ``AvalancheStrategy`` and ``TaskTemplate``, the adapter onto Avalanche's loop;
- ``plugins``: the task-aware Avalanche plugins (distillation, rehearsal with task labels, ...);
- ``losses``: the per-task losses (DiceCE, BCE, Cox partial likelihood);
- ``state``: what a strategy carries between experiences, as a checkpoint holds it.

Strategies themselves live in ``unicon_bench.strategies`` (one file each) and register with
``unicon_bench.register_strategy``. Importing this package imports torch and Avalanche.
"""

from unicon_bench.strategy.avalanche import AvalancheStrategy, ProgressPlugin, TaskTemplate, quiet_evaluator
from unicon_bench.strategy.base import Strategy, autocast, count_params, grouped_forward, tensor_bytes
from unicon_bench.strategy.params import BaseParams, SearchSpace

__all__ = [
    "AvalancheStrategy", "BaseParams", "ProgressPlugin", "SearchSpace", "Strategy", "TaskTemplate", "autocast",
    "count_params", "grouped_forward", "quiet_evaluator", "tensor_bytes",
]
