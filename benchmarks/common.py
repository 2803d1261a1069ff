"""Shared helpers of the benchmarks: machine description, timing statistics, JSON output."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent


def machine() -> dict:
    """What the numbers were measured on."""
    import torch

    mem_gib = None
    try:
        with open("/proc/meminfo") as f:
            mem_gib = round(int(f.readline().split()[1]) / 2**20, 1)
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "memory_gib": mem_gib,
        "platform": f"{platform.system()} {platform.machine()}",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
        "load_average_1min": os.getloadavg()[0],
    }


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def write(name: str, payload: dict) -> Path:
    """Write ``benchmarks/results/<name>.json`` (atomically) and return its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    doc = {"benchmark": name, "measured": datetime.now(timezone.utc).isoformat(), "machine": machine(), **payload}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def new_strategy(name: str, scenario: str, seed: int, quick: bool, overrides: dict):
    """``(stream, strategy)``: a built-in strategy on a scenario's stream, seeded as a run seeds it."""
    from unicon_bench import get_scenario, get_strategy
    from unicon_bench.harness.request import build_params
    from unicon_bench.data.streams import build_stream
    from unicon_bench.harness import seed_everything

    seed_everything(seed)
    spec = get_scenario(scenario)
    stream = build_stream(spec.quick_version() if quick else spec)
    cls = get_strategy(name)
    return stream, cls(build_params(cls.params, overrides), stream)


def cli_run(args: list[str], env: dict | None = None) -> dict:
    """Run ``unicon-bench run ... --out DIR`` in a subprocess and return its result JSON."""
    import tempfile

    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "unicon_bench.cli", "run", *args, "--out", out, "--no-progress"]
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, cwd=ROOT)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{proc.stderr[-2000:]}")
        files = list(Path(out).rglob("*.json"))
        return json.loads(files[0].read_text())
