"""Sequential LoRA: one LoRA set on the frozen foundation model, fine-tuned over every experience.

The naive parameter-efficient baseline (LoRA: Hu et al., ICLR 2022; used as the sequential-PEFT lower
bound by O-LoRA, Wang et al., EMNLP 2023, and InfLoRA, Liang & Li, CVPR 2024).

Kept between experiences: the frozen foundation (stage 0: stem + encoder + first head trained on
experience 0, exactly UNICON's), one LoRA set ``seq`` over the encoder's convolutions (and over a
reused head), which every experience keeps training, and each task kind's head.

Our adaptation: UNICON's backbone, heads, stems and learning-rate schedule are shared through
``FoundationStrategy`` so the two differ only in the LoRA bookkeeping; every route, including the
foundation's own experience, applies the one LoRA at test time, so earlier experiences see the
weights the latest experience left (this is where it forgets). A new task kind still gets a new head
(trained on its experience, then frozen); a reused head (PET segmentation after CT segmentation)
adapts through the shared LoRA set.
"""

from __future__ import annotations

from unicon_bench.registry import register_strategy
from unicon_bench.strategies._peft import FoundationStrategy, PeftParams


@register_strategy("seq_lora")
class SeqLoRA(FoundationStrategy):
    """One LoRA on the frozen foundation model, fine-tuned sequentially (naive PEFT baseline)."""

    trainable = "stage 0: all; then one shared LoRA set + new heads/stems"
    family = "parameter-efficient"
    params = PeftParams
    merged = True

    def add_route(self, index: int, experience) -> None:
        exp = self.spec.experiences[index]
        self.model.add_route(
            index, exp.task, exp.modality, rank=self.p.lora_rank, alpha=self.p.lora_alpha, with_ct=exp.with_ct,
            lora_name="seq",
        )
