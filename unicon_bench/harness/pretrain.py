"""``unicon-bench pretrain``: train the stage-0 foundation model of a scenario once and save it.

Stage 0 is UNICON's: stem, backbone and first head trained on the scenario's first experience
(the same thing every sequential strategy trains first). The folder it writes holds
``foundation.pt`` (a plain state dict: ``encoder.*``, ``stem.*``, ``head.*``; loadable with
``weights_only=True``) and ``pretrain.yaml`` (scenario, experience, backbone, seed, budget, stage-0
score, precision, SHA-256 of the weights). Giving that folder as ``backbone_weights`` to any strategy makes it
start from this stage 0 instead of training the first experience itself; a sweep with
``pretrain: true`` does so for all its strategies.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from unicon_bench.harness.request import recorded_params
from unicon_bench.errors import ConfigError
from unicon_bench.fileio import check_output_folder
from unicon_bench.models.foundation import (
    PRETRAIN_FORMAT,
    PRETRAIN_META,
    PRETRAIN_WEIGHTS,
    is_pretrain_dir,
    parse_options,
    read_pretrain_meta,
    stage0_state,
)
from unicon_bench.results import METRIC_OF_TASK, atomic_write_text, clean_float

STRATEGY = "unicon"
# Only these parameters shape stage 0; the others (LoRA rank, ...) act on later stages.
STAGE0_KEYS = ("epochs", "lr", "batch_size", "weight_decay", "backbone", "backbone_options",
               "backbone_weights", "weights_map", "weights_ignore", "freeze")


def pretrain(
    scenario: str,
    out: str | Path,
    seed: int = 0,
    quick: bool = False,
    device: str = "cpu",
    overrides: dict[str, Any] | None = None,
    reporter=None,
    cache_dir: str | Path | None = None,
    precision: str | None = None,
) -> tuple[dict, Path]:
    """Train stage 0 of ``scenario`` and write the checkpoint folder ``out``; returns its metadata.

    ``precision``: fp32, bf16 (bfloat16 autocast) or auto/None (the device's default), as for a run."""
    import torch

    from unicon_bench import harness
    from unicon_bench.data.streams import build_stream

    overrides = dict(overrides or {})
    extra = sorted(set(overrides) - set(STAGE0_KEYS))
    if extra:
        raise ConfigError(f"pretrain: parameter(s) {', '.join(extra)} do not act on stage 0; known: {', '.join(STAGE0_KEYS)}")
    # The plain image head (as every other strategy has), even when the first task is prognosis.
    request = harness.resolve(STRATEGY, scenario, quick, None, {**overrides, "fuse_text": False}, seed=seed,
                              device=device, cache_dir=cache_dir, precision=precision)
    cls, spec, params = request.strategy_cls, request.spec, request.params
    check_output_folder(out, "pretrain --out")  # before training, not after it
    reporter = reporter or harness.SilentReporter()
    harness.seed_everything(seed)
    from unicon_bench.metrics.evaluator import experience_targets
    from unicon_bench.metrics.evaluate import evaluate

    stream = build_stream(spec, cache_dir=cache_dir)
    strat = cls(params, stream, device=device)
    first = stream.train_stream[0]
    reporter.phase(f"pretrain stage 0 on {spec.experiences[0].name}", 0)
    strat.on_step = lambda done, total, loss: reporter.advance(done, total, f"loss {loss:.3f}")
    from unicon_bench.strategy.base import PRECISION

    token = PRECISION.set(request.precision)  # every autocast of stage 0, as in a run
    try:
        t0 = time.perf_counter()
        strat.train(first)
        train_time = time.perf_counter() - t0
        evaluation = stream.eval_stream[0]
        target = experience_targets(stream, 0)  # the primary metric only: no extra metrics for stage 0
        score = evaluate(strat.predict(evaluation), target, None, extra=False).values[
            METRIC_OF_TASK[spec.experiences[0].task]]
    finally:
        PRECISION.reset(token)
    reporter.done()

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / PRETRAIN_WEIGHTS
    tmp = folder / f".{PRETRAIN_WEIGHTS}.tmp"
    torch.save(stage0_state(strat.model), tmp)
    tmp.replace(weights)
    from unicon_bench.models.weights import sha256_file

    rec = recorded_params(params)
    meta = {
        "format": PRETRAIN_FORMAT,
        "version": 1,
        "scenario": spec.name,
        "scenario_version": spec.version,
        "quick": quick,
        "shape": list(spec.data.shape),
        "experience": spec.experiences[0].name,
        "task": spec.experiences[0].task,
        "modality": spec.experiences[0].modality,
        "strategy": STRATEGY,
        "backbone": params.backbone,
        "backbone_options": parse_options(params.backbone_options),
        "params": {k: v for k, v in rec.items() if k in STAGE0_KEYS},
        "seed": seed,
        "precision": request.precision,
        "epochs": strat.epochs,
        "train_time_s": train_time,
        "score": {"metric": METRIC_OF_TASK[spec.experiences[0].task], "value": clean_float(score)},
        "sha256": sha256_file(weights),
        "created": datetime.now(timezone.utc).isoformat(),
        "env": harness.environment(device, precision=request.precision),
    }
    atomic_write_text(folder / PRETRAIN_META, yaml.safe_dump(json.loads(json.dumps(meta)), sort_keys=False))
    return meta, folder


def meta_precision(meta: dict) -> str:
    """The precision a stage 0 was trained in; folders from before it was recorded followed their device."""
    if "precision" in meta:
        return meta["precision"]
    env = meta.get("env")
    return "bf16" if isinstance(env, dict) and env.get("device") == "cuda" else "fp32"


def reusable(folder: str | Path, scenario: str, quick: bool, seed: int, overrides: dict[str, Any],
             precision: str = "fp32") -> bool:
    """Whether ``folder`` already holds the stage 0 that ``pretrain`` would write (a resumed sweep): same
    scenario, quick flag, seed, stage-0 parameters and precision (``fp32`` or ``bf16``)."""
    if not is_pretrain_dir(folder):
        return False
    from unicon_bench import harness

    meta = read_pretrain_meta(folder)
    request = harness.resolve(STRATEGY, scenario, quick, None, {**overrides, "fuse_text": False})
    spec, params = request.spec, request.params
    rec = recorded_params(params)
    return (
        meta.get("scenario") == spec.name and meta.get("scenario_version") == spec.version
        and meta.get("quick") == quick and meta.get("seed") == seed and meta_precision(meta) == precision
        and meta.get("params") == json.loads(json.dumps({k: v for k, v in rec.items() if k in STAGE0_KEYS}))
        and (Path(folder) / PRETRAIN_WEIGHTS).is_file()
    )
