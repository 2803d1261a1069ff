"""UNICON: unified continual learning for medical foundation models (arXiv 2508.14024).

The first public implementation. The paper has no code; what it states, what we infer from the
same group's PEMMA work, and what we chose are marked below (and in the README).

Design (paper = stated in the paper; PEMMA = inferred from arXiv 2404.13704 / 2504.13645;
ours = our choice where both are silent):

1. Stage 0 (paper): the foundation model - stem + shared 3D encoder + the first task head - is
   trained on the first experience. *Ours*: the foundation encoder is the model zoo's residual 3D
   U-Net encoder trained supervised on the first experience, not a CLIP-style ViT pre-trained on
   CT-RATE (no weights may be downloaded here); instance normalisation, so freezing it freezes
   everything (no running statistics). Any backbone of the model zoo (``--set backbone=...``) and
   user weights (``backbone_weights``) can stand in; ``freeze=frozen`` (or ``partial:N``) keeps
   the given foundation (or its first N stages) frozen in stage 0 too, where only the stem and
   the first head then train, and a ``unicon-bench pretrain`` folder replaces stage 0 altogether.
2. Afterwards the encoder, every stem and every head are frozen (paper: no forgetting). Each later
   experience adds LoRA (PEMMA: rank 4, A random, B zero so it starts as the identity; *ours*:
   rank 8, alpha 16 and a 3x learning rate for the PEFT stages by default) across the
   encoder's convolutions - *ours*: every Conv3d of the 3D CNN, the conv analogue of PEMMA's q/v
   projections - or bottleneck adapters after each encoder level (``--set peft=adapter``).
3. A new task kind gets a new head, trained fully; an experience whose task kind already has a
   head (e.g. PET segmentation after CT segmentation) reuses that frozen head through its own
   LoRA set (*ours*: keeps the trainable share small and the earlier task untouched).
4. A new modality (paper/PEMMA: PET) gets its own input stem feeding the frozen encoder. When the
   scenario's PET samples carry the co-registered CT (``with_ct``, PEMMA's PET/CT input; every
   baseline then gets the same two channels), the frozen CT stem reads the CT channel and the new
   PET stem is added to it through a per-channel gate that starts at zero (*ours*: the conv
   analogue of PEMMA's concatenation of PET and CT tokens), so the PET route starts as the CT
   model and learns what PET adds. With PET alone, the new stem feeds the encoder directly.
5. Prognosis (paper): an MLP adapter on the image embedding, one on the text embedding, and a
   fusion adapter. *Ours*: the text is the phantom's templated report (age, smoking, lesion
   description) through the built-in hashed-token text encoder, standing in for the LLM-rewritten
   EHR; ``--set fuse_text=false`` gives the image-only ablation.
6. Routing (ours): by task/modality identity when the scenario gives it; otherwise every test
   sample goes to the nearest domain prototype (mean of pooled stage-0 encoder features of each
   trained experience's training data, z-scored by the stage-0 spread); the routing accuracy on
   the trained domains is reported in the result's ``extras``.
7. With task identity, an experience not trained yet is answered by an untrained provisional head
   on the foundation features (no transfer is claimed), so the trained x evaluated matrix stays
   complete.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from unicon_bench.registry import register_strategy
from unicon_bench.strategies._peft import FoundationStrategy, PeftParams


@dataclass(frozen=True)
class UniconParams(PeftParams):
    peft: Literal["lora", "adapter"] = "lora"
    adapter_reduction: int = 4

    def __post_init__(self):
        super().__post_init__()
        if self.adapter_reduction < 1:
            raise ValueError(f"adapter_reduction must be >= 1, got {self.adapter_reduction}")


@register_strategy("unicon")
class Unicon(FoundationStrategy):
    """UNICON: frozen foundation encoder + per-task LoRA/adapters, heads and modality stems."""

    family = "parameter-efficient"
    trainable = "stage 0: all; then LoRA/adapters + new heads/stems only"
    params = UniconParams

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.prototypes: dict[int, torch.Tensor] = {}
        self.feature_scale: torch.Tensor | None = None
        self.routing_hits: dict[int, tuple[int, int]] = {}
        self._evaluating: int | None = None

    def add_route(self, index: int, experience) -> None:
        exp = self.spec.experiences[index]
        self.model.add_route(
            index, exp.task, exp.modality, peft=self.p.peft, rank=self.p.lora_rank,
            alpha=self.p.lora_alpha, reduction=self.p.adapter_reduction, with_ct=exp.with_ct,
        )

    def train(self, experience) -> None:
        super().train(experience)
        if not self.spec.task_identity_at_test:
            self._add_prototype(experience.current_experience, experience.dataset)

    # -- checkpoints ------------------------------------------------------------------------------
    def state_dict(self) -> dict | None:
        base = super().state_dict()
        if base is None:  # not checkpointable
            return None
        return {
            **base,
            "prototypes": dict(self.prototypes),
            "feature_scale": self.feature_scale,
            "routing_hits": {k: list(v) for k, v in self.routing_hits.items()},
        }

    def load_state_dict(self, saved: dict) -> None:
        super().load_state_dict(saved)
        self.prototypes = dict(saved["prototypes"])
        self.feature_scale = saved["feature_scale"]
        self.routing_hits = {k: tuple(v) for k, v in saved["routing_hits"].items()}

    # -- routing without task identity -----------------------------------------------------------
    @torch.inference_mode()
    def _foundation_features(self, dataset) -> torch.Tensor:
        self.model.eval()
        loader = torch.utils.data.DataLoader(dataset, batch_size=self.spec.train.eval_batch_size)
        return torch.cat([self.model.foundation_features(b[0].to(self.device)) for b in loader])

    def _add_prototype(self, index: int, dataset) -> None:
        feats = self._foundation_features(dataset)
        self.prototypes[index] = feats.mean(dim=0)
        if self.feature_scale is None:  # the stage-0 features fix the z-scoring
            self.feature_scale = feats.std(dim=0).clamp_min(1e-6)

    def eval_routes(self, x: torch.Tensor, task_labels: torch.Tensor) -> torch.Tensor:
        if self.spec.task_identity_at_test:
            return task_labels
        if not self.prototypes:  # nothing trained yet: the foundation route
            return torch.zeros_like(task_labels)
        keys = sorted(self.prototypes)
        protos = torch.stack([self.prototypes[k] for k in keys]) / self.feature_scale
        feats = self.model.foundation_features(x) / self.feature_scale
        routed = torch.tensor(keys, device=x.device)[torch.cdist(feats, protos).argmin(dim=1)]
        if self._evaluating not in self.prototypes:  # an unseen domain has no right answer yet
            return routed
        hits, total = self.routing_hits.get(self._evaluating, (0, 0))
        self.routing_hits[self._evaluating] = (hits + int((routed == self._evaluating).sum()), total + len(routed))
        return routed

    def predict(self, experience) -> torch.Tensor:
        self._evaluating = experience.current_experience
        self.routing_hits.pop(self._evaluating, None)  # keep the latest evaluation only
        return super().predict(experience)

    def extras(self) -> dict:
        if self.spec.task_identity_at_test:
            return {"routing": "task identity"}
        acc = {self.spec.experiences[j].name: hits / total for j, (hits, total) in sorted(self.routing_hits.items())}
        return {"routing": "nearest domain prototype", "routing_accuracy": acc}
