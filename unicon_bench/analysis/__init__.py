"""Statistics over result files, shared by the leaderboard, ``check``, ``compare`` and the README tables.

- ``aggregate``: result files grouped into boards (scenario name + version + quick flag + precision),
  one row per method, mean and t-interval per column, the best method and those not different from it;
- ``final_metrics``: every metric of the final models with a per-subject bootstrap interval;
- ``resampling``: the hierarchical bootstrap (seeds, then the shared eval subjects) of every reported
  number, paired across methods;
- ``compare``: paired comparisons (difference, interval, p, Holm, ROPE verdict, minimum detectable
  difference and the seeds a wanted difference needs);
- ``ranks``: bootstrap rank distributions and intervals per board, Friedman + Nemenyi across boards.

Reads result files only; never imports the leaderboard (which renders what this computes) or the CLI.
"""
