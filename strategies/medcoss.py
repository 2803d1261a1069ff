"""MedCoSS (Ye et al., "Continual Self-supervised Learning: Towards Universal Multi-modal Medical
Data Representation Learning", CVPR 2024) on Avalanche's ReplayPlugin.

Pieces, each reusable and tested on its own:

- ``buffer_sizes`` / ``allocate`` / ``kmeans_select``: the k-means rehearsal selection;
- ``KMeansBuffer``: an Avalanche storage policy (``ExemplarsBuffer``) that applies it after each
  experience and accumulates the selections; it is driven by Avalanche's ``ReplayPlugin``, whose
  ``ReplayDataLoader`` joins each current minibatch with a minibatch of buffer samples;
- ``mark_buffer``: a ``DataAttribute`` flag (1 for buffer samples, 0 for current ones) returned with
  every training sample, so the template can tell the two apart whatever the loader did;
- ``intra_modal_mixup`` and ``feature_distillation``: the buffer samples' loss;
- ``MedCoSSTemplate``: task loss on current samples + distillation on (mixed-up) buffer samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from avalanche.benchmarks.utils import concat_datasets
from avalanche.benchmarks.utils.data_attribute import DataAttribute
from avalanche.training.plugins import ReplayPlugin
from avalanche.training.storage_policy import ExemplarsBuffer

from unicon_bench.strategy.plugins import frozen_copy
from unicon_bench.registry import register_strategy
from unicon_bench.strategy import AvalancheStrategy, BaseParams, SearchSpace, TaskTemplate, tensor_bytes

BUFFER_FLAG = "medcoss_from_buffer"


@dataclass(frozen=True)
class MedCoSSParams(BaseParams):
    buffer_ratio: float = 0.05  # samples kept per experience, as a share of its training samples
    cluster_ratio: float = 0.01  # k-means clusters per experience, as a share of its samples (>= 1)
    distill_weight: float = 1.0  # weight of the buffer samples' feature distillation
    mixup: bool = True  # intra-modal mixup of buffer samples before distillation

    search_space: ClassVar[SearchSpace] = {
        **BaseParams.search_space,
        "buffer_ratio": ("float", 0.02, 0.2),
        "distill_weight": ("float_log", 0.1, 10.0),
    }

    def __post_init__(self):
        super().__post_init__()
        for name in ("buffer_ratio", "cluster_ratio"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in (0, 1], got {getattr(self, name)}")
        if not self.distill_weight >= 0:
            raise ValueError(f"distill_weight must be >= 0, got {self.distill_weight}")


# -- k-means rehearsal selection ---------------------------------------------------------------------


def buffer_sizes(n: int, buffer_ratio: float, cluster_ratio: float) -> tuple[int, int]:
    """``(n_clusters, quota)`` for an experience of ``n`` samples.

    ``round(cluster_ratio * n)`` clusters (at least one) and ``round(buffer_ratio * n)`` samples in
    all, at least one per cluster and at most ``n``.
    """
    if n <= 0:
        return 0, 0
    k = min(n, max(1, round(cluster_ratio * n)))
    return k, min(n, max(k, round(buffer_ratio * n)))


def allocate(sizes: Sequence[int], quota: int) -> list[int]:
    """Samples to keep from each cluster: one per non-empty cluster, the rest in proportion to size.

    Extra slots go one at a time to the cluster furthest below its proportional share
    ``quota * size / total`` (ties: lower cluster index), never above its size. If ``quota`` is below
    the number of non-empty clusters, the largest clusters get one each.
    """
    sizes = [int(s) for s in sizes]
    total = sum(sizes)
    quota = min(int(quota), total)
    nonempty = [c for c, s in enumerate(sizes) if s > 0]
    alloc = [0] * len(sizes)
    if quota < len(nonempty):
        for c in sorted(nonempty, key=lambda c: (-sizes[c], c))[:quota]:
            alloc[c] = 1
        return alloc
    for c in nonempty:
        alloc[c] = 1
    for _ in range(quota - len(nonempty)):
        open_ = [c for c in nonempty if alloc[c] < sizes[c]]
        best = max(open_, key=lambda c: (quota * sizes[c] / total - alloc[c], -c))
        alloc[best] += 1
    return alloc


def kmeans_select(features: np.ndarray, n_clusters: int, quota: int, seed: int = 0) -> list[int]:
    """Indices of the samples to keep: per k-means cluster, its members nearest the centroid first.

    ``KMeans(n_clusters, n_init=10, random_state=seed)`` from scikit-learn; the quota is spread
    over clusters by ``allocate``. The result lists cluster 0's picks (nearest first), then cluster 1's...
    """
    from sklearn.cluster import KMeans

    features = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    n = len(features)
    if n == 0 or quota <= 0:
        return []
    n_clusters = max(1, min(int(n_clusters), n))
    km = KMeans(n_clusters=n_clusters, n_init=10, random_state=seed).fit(features)
    labels = km.labels_
    dist = np.linalg.norm(features - km.cluster_centers_[labels], axis=1)
    alloc = allocate(np.bincount(labels, minlength=n_clusters), quota)
    chosen: list[int] = []
    for c in range(n_clusters):
        members = np.flatnonzero(labels == c)
        nearest = members[np.argsort(dist[members], kind="stable")]
        chosen.extend(int(i) for i in nearest[: alloc[c]])
    return chosen


@torch.inference_mode()
def encoder_features(model, dataset, device, batch_size: int) -> np.ndarray:
    """``(n, C)``: each sample's deepest encoder feature map, averaged over space (route = task label)."""
    was_training = model.training
    model.eval()
    collate = getattr(dataset, "collate_fn", None)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=collate)
    out = []
    for batch in loader:
        x, labels = batch[0].to(device), batch[-1].to(device)
        parts = []
        for t in sorted(set(labels.tolist())):
            idx = (labels == t).nonzero(as_tuple=True)[0]
            f = model.features(x[idx], t)[-1]
            parts.append((idx, f.mean(dim=tuple(range(2, f.dim())))))
        feats = torch.empty((len(x), parts[0][1].shape[1]), device=x.device)
        for idx, f in parts:
            feats[idx] = f.to(feats.dtype)
        out.append(feats.float().cpu())
    model.train(was_training)
    return torch.cat(out).numpy()


def mark_buffer(dataset, from_buffer: bool):
    """``dataset`` whose samples end with a 0/1 flag: 1 for buffer samples, 0 for current ones.

    The flag is a ``DataAttribute`` returned in ``__getitem__``, so it travels with each sample
    through shuffling, concatenation and oversampling; the template pops it before anything else
    reads the minibatch, so the rest of the loop sees the usual ``(image, mask, clinical, text, task)``.
    """
    flag = DataAttribute([int(from_buffer)] * len(dataset), name=BUFFER_FLAG, use_in_getitem=True)
    return dataset.update_data_attribute(BUFFER_FLAG, flag)


class KMeansBuffer(ExemplarsBuffer):
    """Avalanche storage policy: after each experience, add its k-means exemplars (kept forever).

    Features are the encoder's deepest map averaged over space, computed with the model as it is at
    the end of the experience. Nothing is ever evicted: MedCoSS's buffer accumulates across stages, so
    ``max_size`` is only the total the stream will reach (``ReplayPlugin`` asks for one).
    """

    def __init__(self, max_size: int, buffer_ratio: float, cluster_ratio: float, seed: int = 0):
        super().__init__(max_size)
        self.buffer_ratio = buffer_ratio
        self.cluster_ratio = cluster_ratio
        self.seed = seed
        self.selected: dict[int, list[int]] = {}  # experience index -> indices kept from its dataset

    def update(self, strategy, **kwargs):  # Avalanche's is deprecated in favour of post_adapt
        self.post_adapt(strategy, strategy.experience)

    def post_adapt(self, agent, exp):
        data = exp.dataset
        k, quota = buffer_sizes(len(data), self.buffer_ratio, self.cluster_ratio)
        if quota == 0:
            return
        feats = encoder_features(agent.model, data, agent.device, agent.eval_mb_size)
        self._keep(exp.current_experience, data, kmeans_select(feats, k, quota, seed=self.seed))

    def _keep(self, index: int, data, idx: list[int]) -> None:
        self.selected[index] = idx
        chosen = mark_buffer(data.subset(idx), True)
        # concat onto an empty dataset would drop the task labels (attributes follow the first)
        self.buffer = chosen if len(self.buffer) == 0 else self.buffer.concat(chosen)

    def checkpoint_state(self) -> dict:
        """The selected indices per experience (the buffer is rebuilt from the stream's data)."""
        return {"max_size": self.max_size, "selected": {k: list(v) for k, v in self.selected.items()}}

    def restore_checkpoint_state(self, state: dict, strategy) -> None:
        self.max_size, self.selected = state["max_size"], {}
        self.buffer = concat_datasets([])
        for index, idx in state["selected"].items():
            self._keep(index, strategy.stream.train_stream[index].dataset, idx)

    def resize(self, strategy, new_size: int):
        self.max_size = new_size  # nothing is evicted


# -- buffer loss -------------------------------------------------------------------------------------


def intra_modal_mixup(x: torch.Tensor, routes: torch.Tensor) -> torch.Tensor:
    """Each sample mixed with a shuffled sample of the same task label (hence the same modality).

    ``lam * x + (1 - lam) * x[perm]`` with a per-sample ``lam ~ U[0, 1]``; permutation and ``lam``
    come from torch's global CPU generator (seeded by the harness).
    """
    mixed = x.clone()
    for t in sorted(set(routes.tolist())):
        idx = (routes == t).nonzero(as_tuple=True)[0]
        perm = idx[torch.randperm(len(idx)).to(idx.device)]
        lam = torch.rand(len(idx)).to(x.device, x.dtype).view(-1, *([1] * (x.dim() - 1)))
        mixed[idx] = lam * x[idx] + (1 - lam) * x[perm]
    return mixed


def feature_distillation(model, previous, x: torch.Tensor, routes: torch.Tensor) -> torch.Tensor:
    """MSE between ``model``'s and the frozen ``previous`` model's deepest encoder features.

    Grouped by route (task label); each group's MSE is weighted by its share of the batch. Gradients
    flow into ``model`` only.
    """
    loss = x.new_zeros(())
    for t in sorted(set(routes.tolist())):
        idx = (routes == t).nonzero(as_tuple=True)[0]
        current = model.features(x[idx], t)[-1]
        with torch.no_grad():
            target = previous.features(x[idx], t)[-1]
        loss = loss + F.mse_loss(current, target) * (len(idx) / len(x))
    return loss


class MedCoSSTemplate(TaskTemplate):
    """Task loss on current samples; mixup + feature distillation on buffer samples (no task loss)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.distill_weight = 1.0
        self.mixup = True
        self.previous: torch.nn.Module | None = None  # frozen model of the end of the last experience
        self.mb_from_buffer: torch.Tensor | None = None
        self.mb_current: list[torch.Tensor] | None = None
        self.last_distill: float = 0.0

    def train_dataset_adaptation(self, **kwargs):
        super().train_dataset_adaptation(**kwargs)
        self.adapted_dataset = mark_buffer(self.adapted_dataset, False)

    def _unpack_minibatch(self):
        super()._unpack_minibatch()
        self.mb_from_buffer = None
        if self.is_training:  # training samples carry the flag (see train_dataset_adaptation)
            if len(self.mbatch) != 6:
                raise RuntimeError(f"expected 6-field training samples with the buffer flag, got {len(self.mbatch)}")
            self.mb_from_buffer = self.mbatch.pop().bool()

    def _buffer_index(self) -> torch.Tensor | None:
        if self.mb_from_buffer is None or not bool(self.mb_from_buffer.any()):
            return None
        return self.mb_from_buffer.nonzero(as_tuple=True)[0]

    def forward(self):
        if self._buffer_index() is None:
            self.mb_current = self.mbatch
            return super().forward()
        keep = (~self.mb_from_buffer).nonzero(as_tuple=True)[0]
        self.mb_current = [m[keep] for m in self.mbatch]
        if len(keep) == 0:
            return []
        return self.grouped_forward(self.model, self.mb_current[0], self.train_routes()[keep], self.mb_current[3])

    def criterion(self):
        if len(self.mb_current[0]) > 0:
            loss = self.batch_loss(self.mb_output, self.mb_current)
        else:
            loss = torch.zeros((), device=self.device)
        idx = self._buffer_index()
        self.last_distill = 0.0
        if idx is not None and self.previous is not None:
            x, routes = self.mb_x[idx], self.train_routes()[idx]
            if self.mixup:
                x = intra_modal_mixup(x, routes)
            distill = feature_distillation(self.model, self.previous, x, routes)
            self.last_distill = float(distill.detach())
            loss = loss + self.distill_weight * distill
        return loss

    def _after_training_exp(self, **kwargs):
        super()._after_training_exp(**kwargs)  # ReplayPlugin fills the buffer with this model
        self.previous = frozen_copy(self.model)


@register_strategy("medcoss")
class MedCoSS(AvalancheStrategy):
    """MedCoSS (CVPR 2024): k-means rehearsal buffer, intra-modal mixup and feature distillation.

    Follows the paper: after each experience a k-means buffer (features = deepest encoder map averaged
    over space; ``cluster_ratio`` of the experience's samples as clusters, at least one; about
    ``buffer_ratio`` of its samples kept, nearest each centroid first, at least one per cluster) that
    accumulates across experiences; buffer samples get no task loss but an MSE feature distillation
    towards the frozen model of the end of the previous experience, on the same inputs after
    intra-modal mixup (each buffer sample mixed with a shuffled one of the same task label, hence the
    same modality, per-sample lambda ~ U[0, 1]).

    Ours: the pretext loss of the paper is replaced by the experience's supervised task loss (DiceCE,
    BCE or Cox); the paper's one-modality batches are replaced by Avalanche's ReplayDataLoader, which
    joins each current minibatch with a buffer minibatch (mixup and distillation are grouped by task
    label); quota spread over clusters in proportion to their size; k-means seeded from the run seed.
    """

    family = "rehearsal"
    stage0_family = "plain"  # experience 0 is plain training: a shared stage 0 replaces it bit-identically
    trainable = "all parameters, every experience"
    params = MedCoSSParams
    template_cls = MedCoSSTemplate

    def plugins(self):
        ratios = (self.p.buffer_ratio, self.p.cluster_ratio)
        sizes = [buffer_sizes(len(e.dataset), *ratios)[1] for e in self.stream.train_stream]
        seed = torch.initial_seed() % 2**32  # the harness seeds torch with the run seed
        self.buffer = KMeansBuffer(sum(sizes), self.p.buffer_ratio, self.p.cluster_ratio, seed=seed)
        return [ReplayPlugin(mem_size=self.buffer.max_size, storage_policy=self.buffer)]

    def make_template(self, model):
        template = super().make_template(model)
        template.distill_weight = self.p.distill_weight
        template.mixup = self.p.mixup
        return template

    def buffer_bytes(self) -> int:
        return tensor_bytes(self.buffer.buffer)

    def state_dict(self) -> dict | None:
        base = super().state_dict()
        if base is None:  # not checkpointable
            return None
        previous = self.template.previous
        return {**base, "previous": None if previous is None else previous.state_dict()}

    def load_state_dict(self, saved: dict) -> None:
        super().load_state_dict(saved)  # the buffer comes back through the ReplayPlugin
        if saved["previous"] is not None:
            self.template.previous = frozen_copy(self.model)
            self.template.previous.load_state_dict(saved["previous"])

    def extras(self) -> dict:
        return {"buffer_samples": {str(k): len(v) for k, v in sorted(self.buffer.selected.items())}}
