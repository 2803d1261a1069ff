"""Scaling: wall time, evaluation time and peak RSS against volume size and stream length.

Each configuration is a separate ``unicon-bench run`` process (so peak RSS is its own), on a
generated one-task segmentation scenario: volume sizes 16^3, 32^3, 64^3 with two experiences, and
2, 4, 8 experiences at 16^3. Evaluation runs after every experience over every experience, so its
cost grows as n(n+1) evaluations (plus the untrained row): reported as ``eval_s`` (the result's
``cost.eval_time_s``: predictions and metrics); ``other_s`` is the rest of the wall time outside
training (process start-up, phantoms from the cache, building the stream).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml

from benchmarks.common import cli_run


def _scenario(folder: Path, n_exp: int, size: int, epochs: int) -> Path:
    sites = "ABC"
    doc = {
        "name": f"scaling_{n_exp}x{size}", "version": 1, "kind": "domain",
        "description": "benchmark: CT segmentation over sites", "task_identity_at_test": False,
        "experiences": [{"name": f"e{i}", "modality": "CT", "task": "segmentation", "site": sites[i % 3]}
                        for i in range(n_exp)],
        "data": {"source": "phantom", "n_train": 16, "n_eval": 8, "shape": [size] * 3, "seed": 900},
        "train": {"epochs": epochs, "batch_size": 4, "lr": 0.001, "eval_batch_size": 8},
    }
    path = folder / f"{doc['name']}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _measure(path: Path) -> dict:
    res = cli_run(["--strategy", "naive", "--scenario", str(path)], env={"OMP_NUM_THREADS": "2"})
    cost = res["cost"]
    train = sum(cost["train_time_s"])
    return {"wall_s": cost["wall_time_s"], "train_s": train, "eval_s": cost["eval_time_s"],
            "other_s": cost["wall_time_s"] - train - cost["eval_time_s"], "peak_rss_mb": cost["peak_rss_mb"]}


def run(quick: bool = False) -> dict:
    sizes, lengths, epochs = ((16, 32), (2, 4), 1) if quick else ((16, 32, 64), (2, 4, 8), 2)
    out: dict = {"strategy": "naive", "epochs": epochs, "n_train": 16, "n_eval": 8, "by_size": {}, "by_length": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            out["by_size"][f"{size}^3"] = _measure(_scenario(Path(tmp), 2, size, epochs))
        for n in lengths:
            m = _measure(_scenario(Path(tmp), n, 16, epochs))
            m["evaluations"] = n * (n + 1)
            out["by_length"][str(n)] = m
    return out
