"""Statistics over result files, shared by the leaderboard, ``check`` and the README tables.

``aggregate``: result files grouped into boards (scenario name + version + quick flag), one row per
method, mean and t-interval per column, the best method and those not significantly different from it.
``final_metrics``: every metric of the final models with a per-subject bootstrap interval.

Reads result files only; never imports the leaderboard (which renders what this computes) or the CLI.
"""
