"""``python -m benchmarks [NAME ...] [--quick] [--suite]``: run benchmarks, write their JSON."""

from __future__ import annotations

import argparse
import importlib
import inspect
import json

from benchmarks.common import write

BENCHMARKS = ("overhead", "data", "scaling", "end_to_end", "sweep_speedup", "eval_metrics", "pretrain_reuse",
              "precision_step", "scenarios_v3", "gate_power", "malignancy_reading")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all of {', '.join(BENCHMARKS)})")
    parser.add_argument("--quick", action="store_true", help="small sizes: checks the scripts, not the machine")
    parser.add_argument("--suite", action="store_true", help="end_to_end also times suites/default.yaml (hours)")
    args = parser.parse_args()
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    for name in args.names or BENCHMARKS:
        try:
            module = importlib.import_module(f"benchmarks.{name}")
        except ModuleNotFoundError as err:
            if err.name == f"benchmarks.{name}":
                print(f"{name}: not present, skipped")
                continue
            raise
        kwargs = {"quick": args.quick}
        if "suite" in inspect.signature(module.run).parameters:
            kwargs["suite"] = args.suite
        path = write(name + ("_quick" if args.quick else ""), module.run(**kwargs))
        print(f"{name}: {path}")
        print(json.dumps(json.loads(path.read_text()), indent=1)[:1500])


if __name__ == "__main__":
    main()
