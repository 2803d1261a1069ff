"""Harness overhead: per-step time of the naive strategy through Avalanche vs a bare PyTorch loop.

Both train the same network (the model zoo's MultiTaskNet, segmentation route) on the same data
(ct_to_pet's CT experience) with the same optimizer, loss, batch size and number of steps, one
after the other in this process. The harness step is timed from Avalanche's plugin callbacks,
the bare step around the loop body; both include fetching the batch. Also reported: the share of
the harness step spent waiting for data (between one iteration's end and the next one's start).
"""

from __future__ import annotations

import time

from benchmarks.common import median


class _StepTimer:
    """Avalanche plugin: per-iteration wall time and the data wait before each iteration."""

    def __init__(self):
        from avalanche.core import SupervisedPlugin

        outer = self

        class Plugin(SupervisedPlugin):
            def before_training_iteration(self, strategy, **kw):
                if outer.last_end is not None:
                    outer.waits.append(time.perf_counter() - outer.last_end)

            def after_training_iteration(self, strategy, **kw):
                outer.last_end = time.perf_counter()
                outer.ends.append(outer.last_end)

        self.plugin = Plugin()
        self.ends, self.waits, self.last_end = [], [], None

    def step_times(self) -> list[float]:
        return [b - a for a, b in zip(self.ends, self.ends[1:])]


def _setup(epochs: int, quick: bool):
    from unicon_bench.scenario import get_scenario

    spec = get_scenario("ct_to_pet")
    spec = spec.quick_version() if quick else spec
    spec = spec.model_copy(update={"experiences": spec.experiences[:1],
                                   "train": spec.train.model_copy(update={"epochs": epochs})})
    return spec


def _harness(spec, seed: int):
    from unicon_bench.data.streams import build_stream
    from unicon_bench.harness import seed_everything
    from unicon_bench.registry import STRATEGIES

    seed_everything(seed)
    stream = build_stream(spec)
    cls = STRATEGIES.get("naive")
    strat = cls(cls.params(), stream)
    timer = _StepTimer()
    strat.template.plugins.append(timer.plugin)
    strat.train(next(iter(stream.train_stream)))
    return timer


def _bare(spec, seed: int) -> list[float]:
    import torch

    from unicon_bench.data.streams import build_stream, collate_samples
    from unicon_bench.harness import seed_everything
    from unicon_bench.models.net import MultiTaskNet
    from unicon_bench.strategy.losses import TaskLoss

    seed_everything(seed)
    dataset = next(iter(build_stream(spec).train_stream)).dataset
    model = MultiTaskNet.for_experiences([("segmentation", "CT")]).train()
    opt = torch.optim.Adam(model.parameters(), lr=spec.train.lr)
    loss_fn = TaskLoss()
    loader = torch.utils.data.DataLoader(dataset, batch_size=spec.train.batch_size, shuffle=True,
                                         collate_fn=collate_samples)
    times = []
    for _ in range(spec.train.epochs):
        last = time.perf_counter()
        for x, mask, clinical, _text, _t in loader:
            opt.zero_grad()
            loss = loss_fn("segmentation", model(x, 0), mask, clinical)
            loss.backward()
            opt.step()
            now = time.perf_counter()
            times.append(now - last)
            last = now
    return times


def run(quick: bool = False) -> dict:
    epochs, repeats, warmup = (2, 2, 2) if quick else (6, 3, 5)
    spec = _setup(epochs, quick)
    bare, harness, waits = [], [], []
    for r in range(repeats):  # interleaved, so a load change hits both alike
        bare.append(median(_bare(spec, r)[warmup:]))
        timer = _harness(spec, r)
        steps = timer.step_times()[warmup:]
        harness.append(median(steps))
        waits.append(sum(timer.waits[warmup:]) / max(sum(steps), 1e-12))
    ratio = median(harness) / median(bare)
    return {
        "setup": {"scenario": spec.name, "shape": list(spec.data.shape), "batch_size": spec.train.batch_size,
                  "steps_per_repeat": epochs * -(-spec.sizes(0)[0] // spec.train.batch_size),
                  "warmup_steps_dropped": warmup, "repeats": repeats},
        "bare_step_s": bare,
        "harness_step_s": harness,
        "ratio_harness_over_bare": ratio,
        "data_wait_fraction": median(waits),
        "targets": {"ratio_max": 1.10, "data_wait_fraction_max": 0.10},
        "meets_targets": ratio <= 1.10 and median(waits) <= 0.10,
    }
