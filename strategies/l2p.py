"""L2P: Learning to Prompt for continual learning (Wang et al., CVPR 2022), on a small 3D ViT.

Paper: a frozen pre-trained ViT; a pool of learnable prompts, each with a learnable key; for every
input, the ``top_k`` prompts whose keys are most similar (cosine) to the input's query - the frozen
ViT's [CLS] feature - are prepended to its patch tokens; the classifier reads the mean of the prompt
tokens' outputs. The loss adds ``key_lambda * sum(1 - cos(query, chosen keys))``, which pulls keys
towards the queries that chose them. Prompts are shared across tasks and chosen without task
identity, so it may forget (through the shared prompts and classifier) but never touches the ViT.

Kept between experiences: the frozen ViT, the prompt pool and its keys, and one head per task kind.

Our adaptation to 3D segmentation / survival (state it when comparing):
- No pre-trained 3D ViT may be downloaded here, so the ViT (MONAI's ``ViT`` blocks, 64 patch tokens,
  see ``unicon_bench.models.prompt_vit``) is trained on experience 0 together with the pool, keys and
  first head - UNICON's stage-0 foundation, on a ViT instead of the CNN - and frozen afterwards; later
  experiences train the pool, the keys and the heads at ``peft_lr_scale`` times the learning rate.
- The query is the mean output token of the prompt-free ViT (MONAI's ViT here has no [CLS] token).
- Classification and prognosis (Cox risk) use L2P's linear head on the pooled prompt tokens;
  segmentation decodes the patch tokens' outputs (upsampling plus one full-resolution convolution
  of the input, as UNETR's first encoder block). Heads are shared by experiences of one task kind
  and picked by task identity where the scenario gives it (one head without identity).
- PET/CT samples: each modality has its own input channel of the patch embedding (CT first), so
  the frozen embedding keeps reading CT where stage 0 trained it; the PET channel's weights stay as
  initialised (stage 0 saw no PET), and the prompts must adapt to them.
- The image is the only input (the report text is not used); L2P's optional prompt-frequency
  penalty and task-specific prompt masks are left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from unicon_bench.models.prompt_vit import PromptViTNet
from unicon_bench.registry import register_strategy
from unicon_bench.strategies._peft import set_lr
from unicon_bench.strategy import AvalancheStrategy, BaseParams, TaskTemplate


@dataclass(frozen=True)
class L2PParams(BaseParams):
    pool_size: int = 10  # paper: M = 10
    prompt_length: int = 5  # paper: L_p = 5
    top_k: int = 5  # paper: N = 5
    key_lambda: float = 0.1  # weight of the key-matching surrogate loss (ours; the L2P code's default)
    hidden_size: int = 96
    num_layers: int = 4
    num_heads: int = 4
    peft_lr_scale: float = 3.0  # learning-rate multiplier after stage 0, as UNICON's

    def __post_init__(self):
        super().__post_init__()
        for name in ("pool_size", "prompt_length", "top_k", "hidden_size", "num_layers", "num_heads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.top_k > self.pool_size:
            raise ValueError(f"top_k ({self.top_k}) cannot exceed pool_size ({self.pool_size})")
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size ({self.hidden_size}) must be divisible by num_heads ({self.num_heads})")
        if self.key_lambda < 0 or not self.peft_lr_scale > 0:
            raise ValueError("key_lambda must be >= 0 and peft_lr_scale > 0")


class L2PTemplate(TaskTemplate):
    """Adds the key-matching loss of the minibatch's forwards to the task loss."""

    key_lambda: float = 0.1

    def forward(self):
        self.model.match_losses.clear()
        return super().forward()

    def criterion(self):
        loss = super().criterion()
        pairs = self.model.match_losses
        n = sum(k for _, k in pairs)
        return loss + self.key_lambda * sum(m * k for m, k in pairs) / max(n, 1)


@register_strategy("l2p")
class L2P(AvalancheStrategy):
    """L2P: a prompt pool picked by key matching on a frozen 3D ViT (MONAI), trained after stage 0."""

    trainable = "stage 0: all; then prompts, keys and heads"
    family = "parameter-efficient"
    params = L2PParams
    template_cls = L2PTemplate

    def build_model(self) -> PromptViTNet:
        p = self.p
        return PromptViTNet(self.kinds(), tuple(self.spec.data.shape), hidden=p.hidden_size, layers=p.num_layers,
                            heads=p.num_heads, pool_size=p.pool_size, prompt_length=p.prompt_length, top_k=p.top_k,
                            channels=dict(zip(self.stream.task_labels, (e.channels for e in self.spec.experiences))))

    def make_template(self, model: torch.nn.Module) -> L2PTemplate:
        template = super().make_template(model)
        template.key_lambda = self.p.key_lambda
        return template

    def train(self, experience) -> None:
        if experience.current_experience > 0:
            self.model.freeze_backbone()  # the stage-0 ViT is the frozen foundation from now on
            set_lr(self.template.optimizer, self.lr * self.p.peft_lr_scale)
        super().train(experience)
