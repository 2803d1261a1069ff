"""What stage-0 sharing saves (issue #23), two ways.

``project``: from a finished suite's result files (default: the committed 198-run CPU default suite),
the CPU time of the runs against the same runs with sharing: in each (scenario, seed, family) group the
slowest run keeps its experience-0 time and every other member loses it, so the figure is an upper
bound on the saving (the shared runs still pay their ``after_training_exp`` hooks, e.g. EWC's Fisher).

``measure``: one suite swept twice, one job at a time and one intra-op thread, without and with sharing
(``--no-share`` / the default), each in a fresh output folder; reports both CPU times (the sweep's child
process, user + system), their ratio, and checks that every result matrix is bit-identical.

    python -m benchmarks.stage0_sharing project [RESULTS]
    python -m benchmarks.stage0_sharing measure benchmarks/stage0_suite.yaml
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import RESULTS, ROOT, write


def _runs(folder: Path) -> list[dict]:
    out = []
    for path in sorted(folder.rglob("*.json")):
        data = json.loads(path.read_text())
        if isinstance(data, dict) and "matrix" in data and "cost" in data:
            out.append(data)
    return out


def _families() -> dict[str, str]:
    from unicon_bench.registry import STRATEGIES, list_strategies

    return {n: f for n in list_strategies() if (f := getattr(STRATEGIES.get(n), "stage0_family", None))}


def project(folder: Path) -> dict:
    runs, families = _runs(folder), _families()
    total = sum(r["cost"]["wall_time_s"] for r in runs)
    groups: dict[tuple, list[float]] = collections.defaultdict(list)
    for r in runs:
        family = families.get(r["strategy"]["name"])
        if family is not None:
            groups[(r["scenario"]["name"], r["scenario"]["version"], r["seed"], family)].append(r["cost"]["train_time_s"][0])
    saved = sum(sum(times) - max(times) for times in groups.values())
    return {"results": str(folder), "runs": len(runs), "total_hours": total / 3600, "repeated_exp0_hours": saved / 3600,
            "groups": len(groups), "ratio_upper_bound": (total - saved) / total}


def _sweep(suite: Path, out: Path, share: bool) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "unicon_bench.cli", "sweep", str(suite), "--out", str(out), "--no-progress"]
    proc = subprocess.run(cmd + ([] if share else ["--no-share"]), env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"sweep failed ({proc.returncode}): {proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"cpu_s": cpu, "wall_s": wall, "summary": proc.stdout.strip().splitlines()}


def measure(suite: Path) -> dict:
    work = Path(tempfile.mkdtemp(prefix="stage0-bench-"))
    try:
        plain = _sweep(suite, work / "no-share", share=False)
        shared = _sweep(suite, work / "share", share=True)
        key = lambda r: (r["scenario"]["name"], r["strategy"]["name"], r["seed"])  # noqa: E731
        a = {key(r): r for r in _runs(work / "no-share")}
        b = {key(r): r for r in _runs(work / "share")}
        assert a.keys() == b.keys(), (sorted(a), sorted(b))
        identical = sorted(str(k) for k in a if json.dumps(a[k]["matrix"]) == json.dumps(b[k]["matrix"]))
        started = sorted(str(k) for k in b if b[k].get("stage0"))
        return {"suite": str(suite), "runs": len(a), "no_share": plain, "share": shared,
                "cpu_ratio": shared["cpu_s"] / plain["cpu_s"], "identical_matrices": len(identical),
                "started_from_shared_stage0": started}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("project")
    p.add_argument("results", nargs="?", type=Path, default=RESULTS / "cpu-default-suite")
    m = sub.add_parser("measure")
    m.add_argument("suite", type=Path, default=ROOT / "benchmarks" / "stage0_suite.yaml", nargs="?")
    args = parser.parse_args()
    if args.what == "project":
        payload = project(args.results)
        path = write("stage0_projection", payload)
        print(f"{payload['runs']} runs, {payload['total_hours']:.2f} h; experience 0 repeated: "
              f"{payload['repeated_exp0_hours']:.2f} h; with sharing <= {payload['ratio_upper_bound']:.3f} x -> {path}")
    else:
        payload = measure(args.suite)
        path = write("stage0_measured", payload)
        print(f"{payload['runs']} runs: CPU {payload['no_share']['cpu_s']:.0f} s without sharing, "
              f"{payload['share']['cpu_s']:.0f} s with ({payload['cpu_ratio']:.3f} x); "
              f"{payload['identical_matrices']}/{payload['runs']} matrices identical -> {path}")


if __name__ == "__main__":
    main()
