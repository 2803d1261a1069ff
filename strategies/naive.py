"""Naive sequential fine-tuning: the lower bound every method must beat."""

from __future__ import annotations

from unicon_bench.registry import register_strategy
from unicon_bench.strategy import AvalancheStrategy, BaseParams


@register_strategy("naive")
class Naive(AvalancheStrategy):
    """Sequential fine-tuning of the whole network, no protection against forgetting (lower bound)."""

    family = "bound"
    stage0_family = "plain"  # experience 0 is plain training: a shared stage 0 replaces it bit-identically
    trainable = "all parameters, every experience"
    params = BaseParams
