"""InfLoRA: interference-free low-rank adaptation (Liang & Li, CVPR 2024), on UNICON's foundation.

Paper: each task adds a LoRA branch ``B_t A_t`` to a frozen pre-trained model. ``A_t`` is not learnt:
it is *designed* before the task, from the task's layer inputs with the subspace of earlier tasks'
inputs (a DualGPM memory) projected out, and then frozen; only ``B_t`` is trained. A new branch thus
acts (nearly) as zero on earlier tasks' inputs, and the branches of different tasks lie in mutually
orthogonal input subspaces. At test time all branches are merged into one model (no task identity
is needed to pick a branch). We chose InfLoRA over O-LoRA's soft orthogonality penalty because the
designed subspace makes the orthogonality exact, which the tests check to float tolerance.

Kept between experiences: the frozen foundation (stage 0 = UNICON's: stem + encoder + first head
trained on experience 0), every task's frozen branch (``A_t`` and trained ``B_t``), the per-layer
memory of earlier tasks' input subspaces, and each task kind's head.

Our adaptation to 3D segmentation / survival (state it when comparing):
- LoRA branches sit on every Conv3d of the model zoo's 3D CNN encoder (UNICON's LoRA placement);
  a convolution's input is its im2col patch, so ``A_t``'s rows are flattened kernels.
- The memory starts with experience 0's input subspace (the foundation's own experience, which has
  no branch), so later branches also spare the foundation's task.
- ``A_t`` and the memory update are computed from up to ``design_rows`` random input rows per layer
  of the task's training data, once, *before* training the task (the paper updates the memory after
  the task); a new modality's stem is untrained at that point.
- Heads and stems follow UNICON's rule (new task kind: new head; new modality: new stem), routed by
  identity where the scenario gives it; a reused head stays frozen (a LoRA on it would be shared by
  earlier tasks of its kind with no designed subspace). Without identity (``ct_sites``) every
  experience shares the stem and head, and the merged branches serve all samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from unicon_bench.models import lora as L
from unicon_bench.models.subspace import collect_rows, inflora_step
from unicon_bench.registry import register_strategy
from unicon_bench.strategies._peft import FoundationStrategy, PeftParams


@dataclass(frozen=True)
class InfLoRAParams(PeftParams):
    subspace_threshold: float = 0.95  # share of each task's input energy the memory keeps (DualGPM)
    design_rows: int = 1024  # input rows per layer sampled to design A_t and grow the memory

    def __post_init__(self):
        super().__post_init__()
        if not 0.0 < self.subspace_threshold < 1.0:
            raise ValueError(f"subspace_threshold must be in (0, 1), got {self.subspace_threshold}")
        if self.design_rows < 1:
            raise ValueError(f"design_rows must be >= 1, got {self.design_rows}")


@register_strategy("inflora")
class InfLoRA(FoundationStrategy):
    """InfLoRA: one LoRA branch per task in a designed subspace orthogonal to earlier tasks' inputs."""

    trainable = "stage 0: all; then B of the task's LoRA branch + new heads/stems"
    family = "parameter-efficient"
    params = InfLoRAParams
    merged = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.memory: dict[str, torch.Tensor] = {}
        self._restoring = False  # rebuilding routes from a checkpoint: their A comes with the weights

    def _layers(self) -> dict[str, L.LoRALayer]:
        return {n: m for n, m in self.model.encoder.named_modules() if isinstance(m, L.LoRALayer)}

    def _rows(self, index: int, dataset) -> dict[str, torch.Tensor]:
        loader = torch.utils.data.DataLoader(dataset, batch_size=self.spec.train.eval_batch_size)
        was_training = self.model.training
        self.model.eval()
        try:
            return collect_rows(
                self._layers(), (b[0].to(self.device) for b in loader),
                lambda x: self.model.features(x, index), self.p.design_rows, len(loader), seed=index,
            )
        finally:
            self.model.train(was_training)

    def _update(self, index: int, dataset, rank: int) -> dict[str, torch.Tensor]:
        downs = {}
        for name, rows in self._rows(index, dataset).items():
            downs[name], self.memory[name] = inflora_step(rows, self.memory.get(name), rank, self.p.subspace_threshold)
        return downs

    def add_route(self, index: int, experience) -> None:
        exp = self.spec.experiences[index]
        self.model.add_route(index, exp.task, exp.modality, rank=self.p.lora_rank, alpha=self.p.lora_alpha,
                             with_ct=exp.with_ct, head_lora=False)
        name = self.model.routes[index].peft
        layers = self._layers()
        if self._restoring:  # the designed A is in the checkpoint's weights; only freeze it
            for layer in layers.values():
                if name in layer.updates:
                    layer.updates[name].down.weight.requires_grad_(False)
            return
        for lname, down in self._update(index, experience.dataset, self.p.lora_rank).items():
            layers[lname].updates[name].set_down_rows(down, trainable=False)

    def train(self, experience) -> None:
        super().train(experience)
        if experience.current_experience == 0:  # the foundation's inputs start the memory
            L.inject_lora(self.model.encoder)  # no LoRA set yet: the outputs are unchanged
            self._update(0, experience.dataset, rank=0)

    def state_dict(self) -> dict | None:
        """The foundation strategy's state plus the memory of earlier tasks' input subspaces."""
        base = super().state_dict()
        if base is None:
            return None
        return {**base, "memory": {name: m.clone() for name, m in self.memory.items()}}

    def load_state_dict(self, saved: dict) -> None:
        if saved["memory"]:  # experience 0 was trained: its LoRA wrappers exist in the saved model
            L.inject_lora(self.model.encoder)
        self._restoring = True
        try:
            super().load_state_dict(saved)
        finally:
            self._restoring = False
        self.memory = {name: m.clone() for name, m in saved["memory"].items()}

    def extras(self) -> dict:
        """How much of the encoder's input space the memory of earlier tasks holds."""
        return {
            "subspace_memory_dims": sum(int(m.shape[1]) for m in self.memory.values()),
            "subspace_input_dims": sum(int(m.shape[0]) for m in self.memory.values()),
        }
