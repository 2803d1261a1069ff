"""Where a run's time goes: one run under pyinstrument's sampling profiler (issue 9's "profile").

    pip install pyinstrument                       # a profiler, not a dependency of the project
    OMP_NUM_THREADS=1 python -m benchmarks.profile_run                          # naive, ct_to_pet, default
    OMP_NUM_THREADS=1 python -m benchmarks.profile_run --strategy unicon --quick

Writes ``benchmarks/results/profile-<strategy>-<scenario>[_quick].txt`` (the call tree, frames
under 1 % of the time hidden) and prints the share of the run spent in the model's forward
passes, in backward passes and in the optimizer step, as pyinstrument attributes them.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Where the frames of these parts of a training step live (module file suffixes).
PARTS = {
    "forward (nn.Module calls)": "torch/nn/modules/module.py",
    "backward (autograd)": "torch/autograd/__init__.py",
    "optimizer step": "torch/optim/optimizer.py",
}


def share_under(frame, suffix: str, total: float) -> float:
    """Time of the outermost frames whose file ends with ``suffix``, as a share of ``total``."""
    if frame is None:
        return 0.0
    if (frame.file_path or "").endswith(suffix):
        return frame.time / total
    return sum(share_under(child, suffix, total) for child in frame.children)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strategy", default="naive")
    parser.add_argument("--scenario", default="ct_to_pet")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    try:
        from pyinstrument import Profiler
    except ImportError:
        raise SystemExit("this benchmark needs pyinstrument: pip install pyinstrument") from None
    from unicon_bench import harness

    harness.resolve(args.strategy, args.scenario, args.quick, None, {})  # fail fast on a bad name
    profiler = Profiler(interval=0.005)
    with tempfile.TemporaryDirectory() as out:
        profiler.start()
        result, _ = harness.run(args.strategy, args.scenario, seed=args.seed, quick=args.quick, out=out)
        session = profiler.stop()
    root = session.root_frame()
    total = root.time if root is not None else 0.0
    name = f"profile-{args.strategy}-{args.scenario}" + ("_quick" if args.quick else "")
    path = HERE / "results" / f"{name}.txt"
    lines = [f"# {args.strategy} on {args.scenario}{' (quick)' if args.quick else ''}, seed {args.seed}: "
             f"{total:.1f} s profiled, run wall {result.cost.wall_time_s:.1f} s, "
             f"train {sum(result.cost.train_time_s):.1f} s, eval {result.cost.eval_time_s:.1f} s"]
    for label, suffix in PARTS.items():
        lines.append(f"# {label}: {100 * share_under(root, suffix, total):.1f} % of the profiled time")
    path.write_text("\n".join(lines) + "\n\n" + profiler.output_text(unicode=True, color=False, show_all=False,
                                                                       timeline=False) + "\n")
    print("\n".join(lines))
    print(f"written: {path}")


if __name__ == "__main__":
    main()
