"""Many runs at once: a suite (strategies x scenarios x seeds) planned, skipped where done, and run
on an executor (this machine's process pool or Ray), which ``tune`` shares for its trials."""
