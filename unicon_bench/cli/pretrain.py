"""``unicon-bench pretrain``: train a scenario's stage-0 foundation model once and save it."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from unicon_bench.cli.common import PRECISION_HELP, Device, Precision, fail
from unicon_bench.errors import UniconBenchError

def pretrain(
    scenario: str = typer.Option(..., "--scenario", "-c", help="Scenario name or path to a scenario YAML."),
    out: Path = typer.Option(..., "--out", help="Folder for the checkpoint (foundation.pt + pretrain.yaml)."),
    seed: int = typer.Option(0, help="Seed of initialisation, data order and training."),
    quick: bool = typer.Option(False, "--quick", help="The scenario's quick version (16^3 volumes, few epochs)."),
    device: Device = typer.Option(Device.cpu, help="Torch device."),
    precision: Precision = typer.Option(Precision.auto, help=PRECISION_HELP),
    set_: list[str] = typer.Option([], "--set", help="Stage-0 parameter: epochs, lr, batch_size, weight_decay, "
                                   "backbone, backbone_options, backbone_weights, weights_map, weights_ignore, freeze."),
    cache_dir: Optional[Path] = typer.Option(None, help="Phantom cache folder (default: $UNICON_BENCH_CACHE or the user cache)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
) -> None:
    """Train the stage-0 foundation model (UNICON's stage 0 on the first experience) once and save it.

    Then `--set backbone_weights=OUT` makes any strategy start from it instead of training the first
    experience itself (a sweep does so with `pretrain: true`).
    """
    from unicon_bench.harness.request import parse_overrides

    try:
        from unicon_bench.harness.pretrain import pretrain as train_stage0

        reporter = None
        if progress:
            from rich.console import Console

            from unicon_bench.harness.reporters import RichReporter

            reporter = RichReporter(Console(stderr=True))
        meta, folder = train_stage0(scenario, out, seed=seed, quick=quick, device=device.value,
                                    overrides=parse_overrides(set_), reporter=reporter, cache_dir=cache_dir,
                                    precision=precision.value)
    except UniconBenchError as exc:
        fail(exc)
    s = meta["score"]
    typer.echo(f"stage 0: {meta['experience']} ({meta['backbone']}, {meta['precision']}), {s['metric']} {s['value']}, "
               f"{meta['train_time_s']:.1f} s; sha256 {meta['sha256'][:16]}...")
    typer.echo(f"checkpoint: {folder}")
