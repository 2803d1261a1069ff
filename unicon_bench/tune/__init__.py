"""Hyper-parameter search with Optuna: the study (search space, objective, storage) and the driver
that runs trials locally or on Ray and writes ``best_params.yaml`` for ``run --config``.

``study`` holds what one trial does; ``runner`` runs many and reports. Import the API from here.
"""

from unicon_bench.tune.runner import TuneReport, build_spec, run_tuning, summary_lines, write_outputs
from unicon_bench.tune.study import (
    COSTS,
    TuneError,
    TuneSpec,
    best_trial,
    check_space,
    describe_best,
    finished,
    objective,
    open_study,
    parse_objective,
    quiet_optuna,
    run_trial,
    storage_kind,
)

__all__ = [
    "COSTS", "TuneError", "TuneReport", "TuneSpec", "best_trial", "build_spec", "check_space", "describe_best",
    "finished", "objective", "open_study", "parse_objective", "quiet_optuna", "run_tuning", "run_trial",
    "storage_kind", "summary_lines", "write_outputs",
]
