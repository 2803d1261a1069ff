"""A small 3D ViT from MONAI with an L2P prompt pool (Wang et al., "Learning to Prompt", CVPR 2022).

The backbone is MONAI's :class:`~monai.networks.nets.ViT` (its ``PatchEmbeddingBlock``, transformer
blocks and final norm), cut into 4 x 4 x 4 = 64 patch tokens whatever the input size (16^3 volumes:
4^3 patches; 32^3: 8^3). Before the transformer blocks, ``top_k`` prompts of ``length`` tokens each
are prepended to the patch tokens; they are picked from a pool by cosine similarity between their
learnt keys and a *query*: the mean token of the same ViT run without prompts (L2P's frozen
[CLS] feature; MONAI's ViT has no [CLS] token here).

Heads (one per task kind, shared by the experiences of that kind): classification and prognosis
read the mean of the prompt tokens' outputs through a linear layer (L2P's classifier); segmentation
reshapes the patch tokens' outputs to their 4^3 grid and upsamples them with transposed
convolutions, concatenated with one convolution of the input at full resolution (UNETR's first
encoder block) before a 1x1x1 output convolution.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from monai.networks.blocks import Convolution
from monai.networks.nets import ViT
from torch import nn

from unicon_bench.models.unet import ACT, NORM

GRID = 4  # patch tokens per axis


class PromptPool(nn.Module):
    """``size`` prompts of ``length`` tokens with one key each; ``select`` picks ``top_k`` per sample."""

    def __init__(self, size: int, length: int, top_k: int, dim: int):
        super().__init__()
        if not 1 <= top_k <= size:
            raise ValueError(f"top_k must be in [1, pool size {size}], got {top_k}")
        self.top_k = top_k
        self.prompts = nn.Parameter(torch.empty(size, length, dim).uniform_(-1.0, 1.0))  # L2P: uniform init
        self.keys = nn.Parameter(torch.empty(size, dim).uniform_(-1.0, 1.0))

    def select(self, query: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Prompt tokens ``(B, top_k * length, dim)``, the key-matching loss and the chosen indices.

        The loss is L2P's surrogate ``mean_b sum_{i in top_k} (1 - cos(q_b, k_i))``: it pulls the
        chosen keys towards the queries that chose them."""
        sim = F.normalize(query, dim=1) @ F.normalize(self.keys, dim=1).T
        idx = sim.topk(self.top_k, dim=1).indices
        loss = (1.0 - sim.gather(1, idx)).sum(dim=1).mean()
        return self.prompts[idx].flatten(1, 2), loss, idx


class TokenSegHead(nn.Module):
    """Patch tokens on their grid, upsampled to the input size, plus a full-resolution input path."""

    def __init__(self, hidden: int, patch: int, in_channels: int = 1, width: int = 16):
        super().__init__()
        steps = int(round(math.log2(patch)))
        ups, cin = [], hidden
        for _ in range(steps):
            ups.append(Convolution(3, cin, width, strides=2, kernel_size=3, norm=NORM, act=ACT, is_transposed=True))
            cin = width
        self.up = nn.Sequential(*ups)
        self.skip = Convolution(3, in_channels, width, strides=1, kernel_size=3, norm=NORM, act=ACT)
        self.out = Convolution(3, cin + width, 1, strides=1, kernel_size=1, conv_only=True)

    def forward(self, tokens: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        grid = tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], GRID, GRID, GRID)
        return self.out(torch.cat([self.up(grid), self.skip(x)], dim=1))


class PromptViTNet(nn.Module):
    """MONAI ViT + L2P prompt pool + one head per task kind; ``forward(x, task_label)``."""

    def __init__(self, kinds: dict[int, str], shape: tuple[int, int, int], hidden: int = 96, layers: int = 4,
                 heads: int = 4, pool_size: int = 10, prompt_length: int = 5, top_k: int = 5,
                 channels: dict[int, tuple[str, ...]] | None = None):
        """``channels`` names each task label's input channels (default: one CT channel); the ViT
        reads every modality on a channel of its own (CT first), so a frozen patch embedding sees CT
        where it always did when PET/CT inputs arrive."""
        super().__init__()
        channels = channels or {t: ("CT",) for t in kinds}
        names = sorted({c for chans in channels.values() for c in chans}, key=lambda c: (c != "CT", c))
        self.channel_index = {t: [names.index(c) for c in chans] for t, chans in channels.items()}
        side = shape[0]
        patch = side // GRID
        if len(set(shape)) != 1 or side % GRID or patch & (patch - 1):
            raise ValueError(f"the prompt ViT needs a cubic volume of side 4 * 2^k (16, 32, ...), got {shape}")
        self.kinds = dict(kinds)
        self.vit = ViT(len(names), shape, patch, hidden_size=hidden, mlp_dim=2 * hidden, num_layers=layers,
                       num_heads=heads, classification=False)
        self.pool = PromptPool(pool_size, prompt_length, top_k, hidden)
        self.heads = nn.ModuleDict()
        for kind in dict.fromkeys(self.kinds.values()):
            self.heads[kind] = TokenSegHead(hidden, patch, len(names)) if kind == "segmentation" else nn.Linear(hidden, 1)
        self.match_losses: list[tuple[torch.Tensor, int]] = []  # (loss, samples) of training forwards

    def _blocks(self, h: torch.Tensor) -> torch.Tensor:
        for block in self.vit.blocks:
            h = block(h)
        return self.vit.norm(h)

    def query(self, tokens: torch.Tensor) -> torch.Tensor:
        """The prompt-free ViT's mean output token (no gradient, as from a frozen model)."""
        with torch.no_grad():
            return self._blocks(tokens).mean(dim=1)

    def freeze_backbone(self) -> None:
        self.vit.requires_grad_(False)

    def forward(self, x: torch.Tensor, task_label: int = 0, text: torch.Tensor | None = None) -> torch.Tensor:
        """Output of the head of ``task_label``'s task kind; ``text`` is unused (image-only model)."""
        index = self.channel_index[int(task_label)]
        x = x[:, : len(index)]
        placed = x.new_zeros((x.shape[0], self.vit.patch_embedding.patch_embeddings.in_channels, *x.shape[2:]))
        placed[:, index] = x
        tokens = self.vit.patch_embedding(placed)
        prompts, match_loss, _ = self.pool.select(self.query(tokens.detach()))
        if self.training:
            self.match_losses.append((match_loss, len(x)))
        n = prompts.shape[1]
        h = self._blocks(torch.cat([prompts, tokens], dim=1))
        kind = self.kinds[int(task_label)]
        if kind == "segmentation":
            return self.heads[kind](h[:, n:], placed)
        return self.heads[kind](h[:, :n].mean(dim=1)).squeeze(1)
