"""The ``carrisk`` command line: parses arguments and calls the public API, nothing more."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console

import carrisk
from carrisk.features import ClinicalFeatures
from carrisk.schema import RecordError, read_records, validate_records

app = typer.Typer(
    help="carrisk: event-free survival after CD19 CAR T-cell therapy (research tool, not for clinical decisions).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)

EXAMPLE_PATIENTS = Path(__file__).parent / "data" / "example_patients.csv"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"carrisk {carrisk.__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """carrisk command line."""


def _read(path: Path) -> pd.DataFrame:
    try:
        return read_records(path)
    except OSError as err:
        err_console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from None


@app.command()
def validate(
    records: Annotated[Path, typer.Argument(help="Patient records (CSV or Parquet).")],
    outcomes: Annotated[
        str, typer.Option(help="Outcome columns: required (training), optional (checked if present), ignore.")
    ] = "optional",
) -> None:
    """Check a record file against the carrisk schema: exit 0 if valid, 1 listing every problem, 2 if unreadable."""
    frame = _read(records)
    try:
        validate_records(frame, outcomes=outcomes, source=str(records))
    except RecordError as err:
        err_console.print(f"[red]invalid:[/red] {err}", highlight=False)
        raise typer.Exit(1) from None
    typer.echo(f"{records}: valid, {len(frame)} records, {frame.shape[1]} columns")


@app.command()
def features(
    records: Annotated[Path, typer.Argument(help="Patient records (CSV or Parquet).")] = EXAMPLE_PATIENTS,
    out: Annotated[Path | None, typer.Option(help="Write the encoded design matrix to this CSV.")] = None,
) -> None:
    """Encode records into the model's design matrix and print it (default: the bundled example patients)."""
    frame = _read(records)
    try:
        validate_records(frame, outcomes="optional", source=str(records))
        builder = ClinicalFeatures().set_output(transform="pandas").fit(frame)
        table = builder.categorize(frame)
        design = builder.transform(frame)
    except RecordError as err:
        err_console.print(f"[red]invalid:[/red] {err}", highlight=False)
        raise typer.Exit(1) from None
    design.index = frame["patient_id"]
    table.index = frame["patient_id"]
    typer.echo("Clinical variables (canonical values)")
    typer.echo(table.to_string(float_format=lambda v: f"{v:.2f}"))
    typer.echo(f"\nDesign matrix (transposed): {design.shape[0]} patients x {design.shape[1]} columns")
    typer.echo(design.T.to_string(float_format=lambda v: f"{v:.2f}"))
    if out is not None:
        from carrisk._io import atomic_write_text

        atomic_write_text(out, design.to_csv())
        typer.echo(f"wrote {out}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Directory for the demo's outputs.")] = Path("demo-output"),
) -> None:
    """Run the main job on the embedded default data."""
    features(EXAMPLE_PATIENTS, out=out / "example_design_matrix.csv")
