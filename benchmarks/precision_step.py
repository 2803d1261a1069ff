"""Step time of fp32 vs bfloat16 autocast (and channels-last 3D) for the default 3D U-Net on the CPU.

One training step = forward (under the run's autocast, as ``AvalancheStrategy.forward``), the Dice+CE
loss of a segmentation experience, backward and an Adam step, of the default ``unet`` backbone with a
segmentation head as a strategy builds it (``MultiTaskNet.for_experiences``, ~1.2 M parameters), on a
batch of 4 random volumes of 16^3, 32^3 and 64^3, with 1 and 2 intra-op threads. Four variants:
fp32, bf16 (``strategy.base.autocast`` with the run precision set to bf16), fp32 channels-last-3d and
bf16 channels-last-3d (model and input in ``torch.channels_last_3d``).

Interleaved so that a load change hits all variants alike: per thread count and size, every round
times a few steps of each variant in turn (the order rotating between rounds); a round's value is
the median step of that variant, and each ratio to fp32 is taken within a round, then the median
over rounds is reported. The load average before and after each thread count is recorded.

    python -m benchmarks.precision_step [--quick]
"""

from __future__ import annotations

import argparse
import os
import time

from benchmarks.common import median, write

VARIANTS = ("fp32", "bf16", "fp32_cl", "bf16_cl")  # _cl: channels-last-3d
BATCH = 4


def _variant(name: str, side: int, seed: int = 0):
    """``(step, n_params)``: a closure doing one training step of a fresh, identically initialised model."""
    import torch

    from unicon_bench.models.backbones import build_backbone
    from unicon_bench.models.net import MultiTaskNet
    from unicon_bench.strategy.base import PRECISION, autocast
    from unicon_bench.strategy.losses import TaskLoss

    torch.manual_seed(seed)
    shape = (side, side, side)
    model = MultiTaskNet.for_experiences([("segmentation", "CT")], encoder=build_backbone("unet", shape)).train()
    x = torch.rand(BATCH, 1, *shape)
    mask = (torch.rand(BATCH, 1, *shape) > 0.7).float()
    if name.endswith("_cl"):
        model = model.to(memory_format=torch.channels_last_3d)
        x = x.contiguous(memory_format=torch.channels_last_3d)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = TaskLoss()
    precision = name.split("_")[0]
    cpu = torch.device("cpu")

    def step() -> float:
        t0 = time.perf_counter()
        token = PRECISION.set(precision)
        try:
            opt.zero_grad()
            with autocast(cpu):
                out = model(x, 0)
            loss = loss_fn("segmentation", out, mask, None)
            loss.backward()
            opt.step()
        finally:
            PRECISION.reset(token)
        return time.perf_counter() - t0

    return step, sum(p.numel() for p in model.parameters())


def _measure(side: int, rounds: int, steps: int, warmup: int) -> dict:
    steps_of = {}
    n_params = None
    for name in VARIANTS:
        steps_of[name], n_params = _variant(name, side)
        for _ in range(warmup):
            steps_of[name]()
    per_round: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for r in range(rounds):
        order = VARIANTS[r % len(VARIANTS):] + VARIANTS[:r % len(VARIANTS)]
        for name in order:
            per_round[name].append(median([steps_of[name]() for _ in range(steps)]))
    ratios = {v: median([a / b for a, b in zip(per_round[v], per_round["fp32"])]) for v in VARIANTS[1:]}
    return {
        "side": side, "params": n_params, "rounds": rounds, "steps_per_round": steps, "warmup_steps": warmup,
        "median_step_s": {v: median(per_round[v]) for v in VARIANTS},
        "round_step_s": per_round,
        "ratio_to_fp32": ratios,  # < 1: faster than fp32
        "ratio_bf16_cl_to_bf16": median([a / b for a, b in zip(per_round["bf16_cl"], per_round["bf16"])]),
    }


def run(quick: bool = False, threads_list: tuple[int, ...] = (1, 2), partial=None) -> dict:
    """Every thread count and size; ``partial(payload)`` is called after each thread count (a killed run keeps
    what it measured)."""
    import torch

    sides = (16, 32) if quick else (16, 32, 64)
    plan = {16: (11, 10, 3), 32: (9, 6, 2), 64: (7, 3, 1)}  # side -> (rounds, steps per round, warm-up steps)
    if quick:
        plan = {16: (2, 2, 1), 32: (2, 2, 1)}
    before = torch.get_num_threads()
    by_threads = []
    try:
        for threads in threads_list:
            torch.set_num_threads(threads)
            load0 = os.getloadavg()
            sizes = []
            for side in sides:
                size_load = os.getloadavg()[0]
                sizes.append({**_measure(side, *plan[side]), "load_average_1min_before": size_load})
                s = sizes[-1]
                print(f"threads {threads} {side}^3 (load {size_load:.2f}): fp32 {s['median_step_s']['fp32'] * 1e3:.0f} ms, "
                      + ", ".join(f"{v} x{r:.2f}" for v, r in s["ratio_to_fp32"].items()), flush=True)
            by_threads.append({"threads": threads, "load_average_before": list(load0),
                               "load_average_after": list(os.getloadavg()), "sizes": sizes})
            if partial is not None:
                partial(_payload(by_threads))
    finally:
        torch.set_num_threads(before)
    return _payload(by_threads)


def _payload(by_threads: list[dict]) -> dict:
    import torch

    return {
        "setup": {"model": "MultiTaskNet(unet backbone, segmentation head)", "batch_size": BATCH,
                  "optimizer": "Adam", "loss": "DiceCE (sigmoid)", "variants": list(VARIANTS),
                  "autocast": "torch.autocast('cpu', dtype=torch.bfloat16) around the forward (strategy.base.autocast)",
                  "cpu_model": _cpu_model(), "cpu_flags": _cpu_flags(),
                  "mkldnn_bf16_supported": bool(getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: None)()),
                  "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")},
        "by_threads": by_threads,
    }


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None)
    except OSError:
        return None


def _cpu_flags() -> list[str]:
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return []
    return sorted(f for f in flags if "bf16" in f or f.startswith(("amx", "avx512f", "avx512_vnni")))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="16^3 and 32^3, two rounds: checks the script")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="intra-op thread counts (default 1 2)")
    args = parser.parse_args()
    name = "precision_step" + ("_quick" if args.quick else "")
    path = write(name, run(quick=args.quick, threads_list=tuple(args.threads), partial=lambda p: write(name, p)))
    print(path)
