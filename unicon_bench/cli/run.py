"""``unicon-bench run``: one strategy over one scenario, one seed; prints the matrix, writes the result."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from unicon_bench.cli.common import LOGGER_HELP, PRECISION_HELP, Device, Logger, Precision, fail
from unicon_bench.errors import UniconBenchError


def run(
    strategy: str = typer.Option(..., "--strategy", "-s", help="Strategy name (see `unicon-bench ls strategies`)."),
    scenario: str = typer.Option(..., "--scenario", "-c", help="Scenario name or path to a scenario YAML."),
    seed: int = typer.Option(0, help="Seed of model initialisation, data order and training."),
    out: Path = typer.Option(Path("results"), help="Folder for result JSON files."),
    quick: bool = typer.Option(False, "--quick", help="Tiny volumes (16^3) and few epochs: a smoke test in seconds."),
    device: Device = typer.Option(Device.cpu, help="Torch device."),
    precision: Precision = typer.Option(Precision.auto, help=PRECISION_HELP),
    set_: list[str] = typer.Option([], "--set", help="Override a strategy parameter: --set key=value (repeatable)."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file of strategy parameters."),
    cache_dir: Optional[Path] = typer.Option(None, help="Cache of phantoms and preprocessed manifest studies (default: $UNICON_BENCH_CACHE or the user cache)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
    logger: list[Logger] = typer.Option([], "--logger", help=LOGGER_HELP),
    stage0_cache: Optional[Path] = typer.Option(
        None, "--stage0-cache",
        help="Folder of shared stage-0 states: a strategy whose experience 0 is its family's common training "
             "(naive, ewc, replay, ... or unicon, seq_lora, inflora) starts from one stored there for the same "
             "scenario, seed and set-up (bit-identical result), or trains it and stores it. `sweep` shares by default.",
    ),
    resume: bool = typer.Option(
        False, "--resume",
        help="Continue an interrupted run of exactly this strategy, scenario, seed, --quick and parameters "
             "from its last checkpoint in --out (saved after every experience); error if there is none.",
    ),
) -> None:
    """Train STRATEGY over SCENARIO, evaluate after every experience, write the result JSON.

    Any strategy runs on any backbone (--set backbone=swin_unetr; unet, swin_unetr, vit, segresnet,
    segresenc (CT-FM's encoder), resnet) and can start from pretrained weights (--set backbone_weights=PATH: a state dict, a
    .safetensors file, a MONAI bundle folder or a `unicon-bench pretrain` folder; --set
    weights_map='module.->' strips a prefix) with --set freeze=frozen|partial:N|none.

    A checkpoint is kept under OUT/<scenario>/<strategy>/checkpoints/ while the run lasts, so a killed
    run continues with --resume to the same final matrix.
    """
    from unicon_bench.harness.request import parse_overrides

    try:
        overrides = parse_overrides(set_)
        from unicon_bench import harness

        # Names, compatibility and parameters are checked once, here, before any training starts.
        request = harness.resolve(strategy, scenario, quick, str(config) if config else None, overrides,
                                  seed=seed, device=device.value, cache_dir=cache_dir, precision=precision.value,
                                  share_dir=stage0_cache)
        if device is Device.cuda:
            import torch

            if not torch.cuda.is_available():
                raise UniconBenchError("--device cuda given but no CUDA device is available")
        from rich.console import Console

        reporter = None
        if progress:
            from unicon_bench.harness.reporters import RichReporter

            reporter = RichReporter(Console(stderr=True))
        result, path = harness.execute(request, out, reporter, [lg.value for lg in logger], resume=resume)
    except UniconBenchError as exc:
        fail(exc)
    Console().print(summary_table(result))
    typer.echo(f"result: {path}")


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def summary_table(result):
    """The trained x evaluated matrix with the summary metrics and cost underneath (a rich ``Table``)."""
    from rich.table import Table

    init, rows = result.rows()
    names = result.scenario.experiences
    title = (
        f"{result.strategy.name} on {result.scenario.name} v{result.scenario.version}"
        f"{' (quick)' if result.scenario.quick else ''}, seed {result.seed}"
    )
    table = Table(title=title)
    table.add_column("trained on \\ evaluated on")
    for name, metric in zip(names, result.scenario.metrics):
        table.add_column(f"{name} ({metric})", justify="right")
    table.add_row("untrained", *map(_fmt, init))
    for name, row in zip(names, rows):
        table.add_row(f"{name}", *map(_fmt, row))
    s, c = result.summary, result.cost
    table.caption = (
        f"final avg {_fmt(s.final_average)} | BWT {_fmt(s.bwt)} | FWT {_fmt(s.fwt)} | "
        f"forgetting {_fmt(s.forgetting)} | plasticity {_fmt(s.plasticity)}\n"
        f"trainable params per exp {c.trainable_params} of {c.total_params} | "
        f"wall {c.wall_time_s:.1f}s | peak RSS {c.peak_rss_mb:.0f} MB | buffer {c.buffer_bytes} B"
    )
    if c.weights_sha256 or (c.frozen and c.frozen != "none"):
        weights = f"weights {c.backbone_weights} (sha256 {c.weights_sha256[:12]}) | " if c.weights_sha256 else ""
        table.caption += f"\n{weights}backbone frozen: {c.frozen} ({c.frozen_params} params)"
    return table
