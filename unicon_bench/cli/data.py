"""``unicon-bench data``: write manifests from public data-set layouts and check manifests."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from unicon_bench.cli.common import fail
from unicon_bench.errors import UniconBenchError

app = typer.Typer(
    name="data",
    help=(
        "Real CT/PET data: index a public data set into a manifest CSV, check a manifest's files.\n\n"
        "  unicon-bench data index --format msd Task06_Lung -o lung.csv\n\n"
        "  unicon-bench data check lung.csv"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class Layout(str, Enum):
    autopet = "autopet"
    hecktor = "hecktor"
    msd = "msd"


class PetUnits(str, Enum):
    suv = "suv"
    bqml = "bqml"


@app.command("index")
def index(
    root: Path = typer.Argument(..., help="Folder of the data set as downloaded."),
    fmt: Layout = typer.Option(..., "--format", "-f", help="Layout: autopet (CTres/SUV/SEG per study), hecktor (CT, PT, GTV + clinical CSV), msd (dataset.json, imagesTr, labelsTr)."),
    output: Path = typer.Option(..., "--output", "-o", help="Manifest CSV to write (paths in it are relative to its folder)."),
    eval_fraction: float = typer.Option(0.25, help="Share of subjects put in the eval split (by a hash of the subject id)."),
    seed: int = typer.Option(0, help="Seed of the train/eval assignment."),
    clinical: list[Path] = typer.Option([], "--clinical", help="HECKTOR clinical/endpoint CSV (repeatable; default: every CSV under ROOT)."),
) -> None:
    """Write a manifest CSV listing the studies of a public data set in ROOT."""
    from unicon_bench.data.indexers import index_dataset
    from unicon_bench.data.manifest import write_manifest

    try:
        found = index_dataset(fmt.value, root, eval_fraction=eval_fraction, seed=seed, clinical_csvs=clinical)
        write_manifest(found.records, output)
    except UniconBenchError as exc:
        fail(exc)
    for note in found.notes:
        typer.echo(f"note: {note}", err=True)
    subjects = {r["subject_id"] for r in found.records}
    n_eval = len({r["subject_id"] for r in found.records if r["split"] == "eval"})
    typer.echo(f"manifest: {output} ({len(found.records)} rows, {len(subjects)} subjects, {n_eval} in eval)")


@app.command("check")
def check(
    manifest: Path = typer.Argument(..., help="Manifest CSV (see README, 'Use your own data')."),
    nifti_pet_units: PetUnits = typer.Option(PetUnits.suv, help="Units of PET NIfTI files: suv, or bqml (SUV from the row's weight/dose columns)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Open every file of MANIFEST and report what each row holds.

    Per row: readable, shape, spacing, label geometry (match / resampled / MISMATCH), value range (PET
    in SUV), NaN/Inf voxels and lesion voxels. Exit 0 when every row is usable, 1 with the list of bad
    rows, 2 on usage errors (no such manifest, missing columns).
    """
    from rich.console import Console
    from rich.progress import track
    from rich.table import Table

    from unicon_bench.data.manifest import BadRowsError, read_manifest
    from unicon_bench.data.volumes import inspect_row, range_text, spacing_text

    try:
        rows = read_manifest(manifest, check_files=False).rows
    except BadRowsError as exc:
        for problem in exc.problems:
            typer.echo(f"bad: {manifest}, {problem}")
        typer.echo(f"{len(exc.problems)} bad row(s) in {manifest}; fix them before checking the files")
        raise typer.Exit(1)
    except UniconBenchError as exc:
        fail(exc)
    err = Console(stderr=True)
    reports = [inspect_row(r, nifti_pet_units.value)
               for r in track(rows, description="checking", console=err, disable=not progress, transient=True)]
    table = Table(box=None, pad_edge=False)
    for col in ("row", "subject", "mod", "split", "ok", "shape", "spacing mm", "label", "range", "NaN/Inf", "lesion vox"):
        table.add_column(col)
    for r in reports:
        table.add_row(str(r.row.number), r.row.subject_id, r.row.modality, r.row.split, "ok" if r.ok else "[red]BAD",
                      "x".join(map(str, r.shape)) if r.shape else "-", spacing_text(r.spacing), r.geometry,
                      range_text(r.value_range), str(r.nonfinite), "-" if r.lesion_voxels is None else str(r.lesion_voxels))
    Console(width=200).print(table)
    bad = [r for r in reports if not r.ok]
    for r in bad:
        for problem in r.problems:
            typer.echo(f"bad: {manifest}, {r.row.where()}: {problem}")
    typer.echo(f"{len(reports) - len(bad)} of {len(reports)} rows ok" + (f", {len(bad)} bad" if bad else ""))
    raise typer.Exit(1 if bad else 0)
