"""Performance benchmarks of unicon-bench (never part of the test suite).

    python -m benchmarks                 # every benchmark, default sizes
    python -m benchmarks overhead data   # some of them
    python -m benchmarks --quick         # small sizes, to check the scripts work

Each benchmark module has ``run(quick: bool) -> dict``; the result, with a description of the
machine, is written to ``benchmarks/results/<name>.json``. Timings depend on the machine and its
load: compare ratios measured in one run, on a quiet machine.
"""
