"""``python -m unicon_bench.cli``."""

from unicon_bench.cli import main

main()
