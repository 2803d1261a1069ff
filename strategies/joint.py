"""Joint training on everything seen so far: the upper bound (UMedPT-style multi-task steps)."""

from __future__ import annotations

import torch

from unicon_bench.registry import register_strategy
from unicon_bench.strategy import AvalancheStrategy, BaseParams, TaskTemplate


class TaskRoundRobin:
    """Per-task loaders over the union of seen data; each step yields one batch of every task."""

    def __init__(self, datasets: dict[int, object], batch_size: int):
        self.loaders = [
            torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, collate_fn=ds.collate_fn)
            for _, ds in sorted(datasets.items())
        ]

    def __len__(self) -> int:
        return max(len(loader) for loader in self.loaders)

    def __iter__(self):
        iters = [iter(loader) for loader in self.loaders]
        for _ in range(len(self)):
            step = []
            for k, loader in enumerate(self.loaders):
                try:
                    step.append(next(iters[k]))
                except StopIteration:  # shorter tasks cycle so every step sees every task
                    iters[k] = iter(loader)
                    step.append(next(iters[k]))
            yield step


class JointTemplate(TaskTemplate):
    """Cumulative training; one task per forward/backward, one optimizer step per round.

    Gradients accumulate over tasks and each task's graph is freed after its backward, so peak
    memory is that of one task however many tasks the stream has (UMedPT).
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seen: dict[int, object] = {}
        self.seen_experiences: list[int] = []  # in training order, to rebuild ``seen`` on resume

    def add_seen(self, experience):
        dataset = experience.dataset.train()
        t = int(dataset.targets_task_labels[0])
        self.seen[t] = self.seen[t].concat(dataset) if t in self.seen else dataset
        self.seen_experiences.append(experience.current_experience)
        return dataset

    def train_dataset_adaptation(self, **kwargs):
        self.adapted_dataset = self.add_seen(self.experience)

    def make_train_dataloader(self, **kwargs):
        self.dataloader = TaskRoundRobin(self.seen, self.train_mb_size)

    def training_epoch(self, **kwargs):
        for step in self.dataloader:
            if self._stop_training:
                break
            self.optimizer.zero_grad()
            self.loss = self._make_empty_loss()
            for mbatch in step:
                self.mbatch = mbatch
                self._unpack_minibatch()
                self._before_training_iteration(**kwargs)
                self._before_forward(**kwargs)
                self.mb_output = self.forward()
                self._after_forward(**kwargs)
                task_loss = self.criterion() / len(step)
                self._before_backward(**kwargs)
                task_loss.backward()
                self._after_backward(**kwargs)
                self.loss += task_loss.detach()
            self._before_update(**kwargs)
            self.optimizer_step()
            self._after_update(**kwargs)
            self._after_training_iteration(**kwargs)


@register_strategy("joint")
class Joint(AvalancheStrategy):
    """Joint (cumulative) training on all experiences seen so far: the upper bound."""

    family = "bound"
    stage0_family = "plain"  # experience 0 is plain training: a shared stage 0 replaces it bit-identically
    trainable = "all parameters, on all data seen so far"
    params = BaseParams
    template_cls = JointTemplate

    def state_dict(self) -> dict | None:
        base = super().state_dict()
        if base is None:  # not checkpointable
            return None
        return {**base, "seen_experiences": list(self.template.seen_experiences)}

    def load_state_dict(self, saved: dict) -> None:
        super().load_state_dict(saved)
        self.template.seen, self.template.seen_experiences = {}, []
        for i in saved["seen_experiences"]:  # the data seen so far, concatenated in the same order
            self.template.add_seen(self.stream.train_stream[i])
