"""Many runs at once: a suite (strategies x scenarios x seeds) planned, skipped where done, and run
on an executor (this machine's process pool or Ray), which ``tune`` shares for its trials.

- ``suite``: the suite file (schema, load) and the plan (which runs, which are done already);
- ``runner``: the runs executed, each claimed so that concurrent sweeps of one folder do it once;
- ``executors``: where jobs run (in this process, a local process pool, Ray).
"""

from unicon_bench.sweep.runner import RunJob, execute_run, run_suite, summary_lines
from unicon_bench.sweep.suite import PlannedRun, Suite, SweepReport, find_existing, load_suite, plan

__all__ = ["PlannedRun", "RunJob", "Suite", "SweepReport", "execute_run", "find_existing", "load_suite", "plan",
           "run_suite", "summary_lines"]
