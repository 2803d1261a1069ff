"""How strong is EWC's penalty against the task loss? A diagnostic, not a timing benchmark.

Trains EWC (Avalanche's plugin with our task-aware Fisher) on the first two experiences of a
scenario, as a run does, and reports the Fisher estimate of the encoder after experience 0 and,
every ``--every`` iterations of experience 1, the task loss beside the penalty ``lambda/2 *
sum F (w - w*)^2`` that EWC adds to it, then how far the encoder moved. A penalty far below the task
loss holds nothing: the weights move as under naive fine-tuning. It explained why EWC at its default
lambda forgets on ct_tasks (README, "Measured here").

    OMP_NUM_THREADS=1 python benchmarks/ewc_penalty.py                          # ct_tasks, lambda 1000, seed 0
    OMP_NUM_THREADS=1 python benchmarks/ewc_penalty.py --ewc-lambda 68414.66    # the value tuned on validation
    OMP_NUM_THREADS=1 python benchmarks/ewc_penalty.py --quick                  # seconds: a smoke test

Writes ``benchmarks/results/ewc_penalty-<scenario>-<lambda>[_quick].json``.
"""

from __future__ import annotations

import argparse
import statistics


def probe(scenario: str, ewc_lambda: float, seed: int, quick: bool, every: int) -> dict:
    import torch

    from benchmarks.common import new_strategy

    stream, strategy = new_strategy("ewc", scenario, seed, quick, {"ewc_lambda": ewc_lambda})
    spec = strategy.spec
    experiences = list(stream.train_stream)
    strategy.train(experiences[0])
    plugin = next(p for p in strategy.template.plugins if type(p).__name__ == "TaskAwareEWCPlugin")
    fisher = torch.cat([v.data.flatten() for k, v in plugin.importances[0].items() if k.startswith("encoder.")])

    trace: list[dict] = []
    penalise = plugin.before_backward

    def traced(template, **kwargs):
        loss = float(template.loss.detach())
        penalise(template, **kwargs)
        iteration = template.clock.train_exp_iterations
        if iteration % every == 0:
            trace.append({"iteration": iteration, "task_loss": loss,
                          "penalty": float(template.loss.detach()) - loss})

    plugin.before_backward = traced
    strategy.train(experiences[1])
    anchor = plugin.saved_params[0]
    moved = sum(float(((p.detach() - anchor[k].data) ** 2).sum())
                for k, p in strategy.model.named_parameters() if k.startswith("encoder."))
    traced_steps = [t for t in trace if t["iteration"] > 0]  # iteration 0: still at the anchor, no penalty
    ratios = [t["penalty"] / max(t["task_loss"], 1e-12) for t in traced_steps]
    return {
        "scenario": scenario, "quick": quick, "seed": seed, "ewc_lambda": ewc_lambda,
        "experiences": [e.name for e in spec.experiences[:2]],
        "fisher_encoder": {"weights": fisher.numel(), "sum": float(fisher.sum()), "mean": float(fisher.mean()),
                           "median": float(fisher.median()), "max": float(fisher.max())},
        "experience_1": {"penalty_max": max((t["penalty"] for t in traced_steps), default=0.0),
                         "penalty_over_task_loss_median": statistics.median(ratios) if ratios else 0.0,
                         "encoder_sum_sq_shift": moved, "trace": trace},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="ct_tasks")
    parser.add_argument("--ewc-lambda", type=float, default=1000.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--every", type=int, default=40, help="trace one iteration in this many")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    from benchmarks.common import write

    record = probe(args.scenario, args.ewc_lambda, args.seed, args.quick, args.every)
    path = write(f"ewc_penalty-{args.scenario}-{args.ewc_lambda:g}" + ("_quick" if args.quick else ""), record)
    f, e = record["fisher_encoder"], record["experience_1"]
    print(f"Fisher of the encoder after experience 0: sum {f['sum']:.3g} over {f['weights']} weights, "
          f"median {f['median']:.3g}, max {f['max']:.3g}")
    print(f"experience 1: penalty up to {e['penalty_max']:.3g}, median penalty/task loss "
          f"{e['penalty_over_task_loss_median']:.3g}; encoder sum of squared shifts {e['encoder_sum_sq_shift']:.3g}")
    print(f"written: {path}")


if __name__ == "__main__":
    main()
