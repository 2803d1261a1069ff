"""A small built-in text encoder for templated reports (no hub download).

Hashed token ids (``unicon_bench.data.text``) -> mean of learned embeddings -> MLP. It stands in
for the report encoder of a CLIP-style CT foundation model and for the LLM-rewritten EHR text of
UNICON's prognosis stage.
"""

from __future__ import annotations

import torch
from torch import nn

from unicon_bench.data.text import PAD, VOCAB_SIZE


class TextEncoder(nn.Module):
    def __init__(self, dim: int = 16, out_dim: int = 32, vocab_size: int = VOCAB_SIZE):
        super().__init__()
        self.embed = nn.EmbeddingBag(vocab_size, dim, mode="mean", padding_idx=PAD)
        self.mlp = nn.Sequential(nn.Linear(dim, out_dim), nn.GELU(), nn.Linear(out_dim, out_dim))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.embed(ids))


def mlp_adapter(in_dim: int, out_dim: int, hidden: int = 32) -> nn.Module:
    """The small MLP adapters of UNICON's prognosis fusion."""
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, out_dim))
