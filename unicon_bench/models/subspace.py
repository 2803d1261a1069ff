"""Input subspaces of LoRA layers: InfLoRA's designed down-projections (Liang & Li, CVPR 2024).

InfLoRA fixes each new task's LoRA down-projection ``A_t`` to directions of the layer's input space
that (i) the new task's inputs use and (ii) are orthogonal to a memory ``M`` of the subspace earlier
tasks' inputs span (DualGPM, Liang & Li 2023); only ``B_t`` is trained. A later branch then maps old
tasks' inputs to (nearly) zero, and the branches of different tasks are mutually orthogonal.

For a convolution the input of one output voxel is its im2col patch, so ``fan_in = C_in * k^3`` and
a row of ``A`` is a flattened kernel (:meth:`LoRAUpdate.down_rows`). Everything here is float64.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from unicon_bench.models.lora import LoRALayer


def input_rows(base: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The rows ``p`` with ``base(x) = p @ W.flatten(1).T (+ bias)``: im2col patches or features."""
    if isinstance(base, nn.Linear):
        return x.reshape(-1, x.shape[-1])
    if not isinstance(base, nn.Conv3d) or base.groups != 1 or base.dilation != (1, 1, 1) or base.padding_mode != "zeros":
        raise TypeError(f"input subspaces are defined for Linear and plain Conv3d layers, not {base}")
    if isinstance(base.padding, str):
        raise TypeError("string padding is not supported; give the padding in voxels")
    (pd, ph, pw), k, s = base.padding, base.kernel_size, base.stride
    u = F.pad(x, (pw, pw, ph, ph, pd, pd))
    u = u.unfold(2, k[0], s[0]).unfold(3, k[1], s[1]).unfold(4, k[2], s[2])  # N C D' H' W' k k k
    return u.permute(0, 2, 3, 4, 1, 5, 6, 7).reshape(-1, x.shape[1] * k[0] * k[1] * k[2])


@torch.no_grad()
def collect_rows(
    layers: dict[str, LoRALayer],
    batches: Iterable[torch.Tensor],
    forward: Callable[[torch.Tensor], object],
    max_rows: int,
    n_batches: int,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """Run ``forward`` over ``batches`` and keep up to ``max_rows`` random input rows per layer."""
    per_batch = max(1, math.ceil(max_rows / max(n_batches, 1)))
    gen = torch.Generator().manual_seed(seed)
    rows: dict[str, list[torch.Tensor]] = {name: [] for name in layers}

    def hook(name):
        def grab(module, args):
            r = input_rows(module.base, args[0]).detach().to("cpu", torch.float64)
            if len(r) > per_batch:
                r = r[torch.randperm(len(r), generator=gen)[:per_batch]]
            rows[name].append(r)

        return grab

    handles = [layer.register_forward_pre_hook(hook(name)) for name, layer in layers.items()]
    try:
        for x in batches:
            forward(x)
    finally:
        for h in handles:
            h.remove()
    return {name: torch.cat(r)[:max_rows] for name, r in rows.items()}


def _orthonormal(rows: torch.Tensor) -> torch.Tensor:
    """Orthonormalise linearly independent rows (the span of the first ``j`` rows is kept)."""
    if len(rows) == 0:
        return rows
    return torch.linalg.qr(rows.T).Q.T


def _right_singular(m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Singular values (descending) and right singular vectors (rows) of ``m``, from the smaller
    Gram matrix's eigendecomposition (several times faster than an SVD at these sizes)."""
    if m.shape[0] >= m.shape[1]:
        evals, evecs = torch.linalg.eigh(m.T @ m)
        evals, vh = evals.flip(0), evecs.flip(1).T
    else:
        evals, u = torch.linalg.eigh(m @ m.T)
        evals, u = evals.flip(0), u.flip(1)
        vh = u.T @ m / evals.clamp_min(1e-300).sqrt()[:, None]
    s = evals.clamp_min(0).sqrt()
    return s, vh


def inflora_step(rows: torch.Tensor, memory: torch.Tensor | None, rank: int,
                 threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Design a new task's ``A`` and grow the memory from the task's input ``rows`` (``n x fan_in``).

    ``A`` (``rank x fan_in``): the top singular directions of the rows with the memory projected
    out, orthonormal and orthogonal to the memory; rows beyond what the free subspace holds are zero
    (that part of the update stays off). The memory (``fan_in x m``, orthonormal columns) then gains
    the fewest further directions that bring the task's captured input energy to ``threshold``
    (DualGPM), and always ``A``'s, so later tasks' branches are orthogonal to this one.
    ``rank=0`` only grows the memory (the foundation's experience).
    """
    d = rows.shape[1]
    memory = rows.new_zeros(d, 0) if memory is None else memory
    free = rows - (rows @ memory) @ memory.T
    s, vh = _right_singular(free)
    total = float((rows ** 2).sum())
    n_free = int((s > 1e-6 * total ** 0.5).sum())  # directions with real energy, not round-off
    need = threshold * total - (total - float((free ** 2).sum()))  # energy still to capture
    k = 0 if need <= 0 else int((torch.cumsum(s ** 2, 0) < need).sum()) + 1
    k = min(max(k, min(rank, n_free)), n_free)
    new = vh[:k]
    new = _orthonormal(new - (new @ memory) @ memory.T)  # re-project: orthogonal to float64 precision
    down = new[: min(rank, k)]
    down = torch.cat([down, down.new_zeros(rank - len(down), d)])
    return down, torch.cat([memory, new.T], dim=1)
