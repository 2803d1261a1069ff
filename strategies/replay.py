"""Experience replay with Avalanche's ReplayPlugin and an experience-balanced buffer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from avalanche.training.plugins import ReplayPlugin
from avalanche.training.storage_policy import ExperienceBalancedBuffer

from unicon_bench.registry import register_strategy
from unicon_bench.strategy import AvalancheStrategy, BaseParams, SearchSpace, tensor_bytes


@dataclass(frozen=True)
class ReplayParams(BaseParams):
    mem_size: int = 16  # subjects kept in memory, split evenly across past experiences

    search_space: ClassVar[SearchSpace] = {**BaseParams.search_space, "mem_size": ("int_log", 4, 64)}

    def __post_init__(self):
        super().__post_init__()
        if self.mem_size < 1:
            raise ValueError(f"mem_size must be >= 1, got {self.mem_size}")


@register_strategy("replay")
class Replay(AvalancheStrategy):
    """Rehearsal: every batch is joined by a batch of stored subjects from past experiences."""

    family = "rehearsal"
    stage0_family = "plain"  # experience 0 is plain training: a shared stage 0 replaces it bit-identically
    trainable = "all parameters, every experience"
    params = ReplayParams

    def plugins(self):
        self.buffer = ExperienceBalancedBuffer(max_size=self.p.mem_size, adaptive_size=True)
        return [ReplayPlugin(mem_size=self.p.mem_size, storage_policy=self.buffer)]

    def buffer_bytes(self) -> int:
        return tensor_bytes(self.buffer.buffer)
