"""The ``carrisk`` command line: parses arguments and calls the public API, nothing more."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

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


def _load(path: Path, time_col: str | None, event_col: str | None, features: str | None) -> Any:
    from carrisk.datasets import load_survival_data

    try:
        data = load_survival_data(
            _read(path),
            time_col=time_col,
            event_col=event_col,
            features=features.split(",") if features else None,
            name=str(path),
        )
    except RecordError as err:
        err_console.print(f"[red]invalid:[/red] {err}", highlight=False)
        raise typer.Exit(1) from None
    except (KeyError, ValueError) as err:
        err_console.print(f"[red]error:[/red] {err}", highlight=False)
        raise typer.Exit(1) from None
    for note in data.spec.notes:
        err_console.print(f"note: {note}")
    return data


TimeCol = Annotated[str | None, typer.Option(help="Generic mode: the time column.")]
EventCol = Annotated[str | None, typer.Option(help="Generic mode: the event column (1 = event, 0 = censored).")]
Features = Annotated[str | None, typer.Option(help="Generic mode: comma-separated covariates (default: all others).")]
Seed = Annotated[int, typer.Option(help="Seed of the folds and the models (recorded in the output).")]


@app.command()
def cv(
    data: Annotated[Path, typer.Argument(help="Training table: carrisk records or any survival CSV.")],
    models: Annotated[str, typer.Option(help="Comma-separated: rsf, coxnet, coxph, gbsa.")] = "rsf,coxnet",
    folds: Annotated[int, typer.Option(help="Outer folds.")] = 5,
    repeats: Annotated[int, typer.Option(help="Repeats of the outer K-fold.")] = 3,
    seed: Seed = 0,
    inner_folds: Annotated[int, typer.Option(help="Inner folds for tuning.")] = 3,
    scoring: Annotated[str, typer.Option(help="Inner criterion: harrell or uno.")] = "harrell",
    json_out: Annotated[Path | None, typer.Option("--json", help="Write every per-fold number here.")] = None,
    n_jobs: Annotated[int, typer.Option(help="Parallel jobs (-1 = all cores).")] = -1,
    backend: Annotated[str, typer.Option(help="loky (local) or dask.")] = "loky",
    scheduler: Annotated[str | None, typer.Option(help="dask scheduler address, e.g. tcp://127.0.0.1:8786.")] = None,
    time_col: TimeCol = None,
    event_col: EventCol = None,
    features: Features = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Nested, repeated cross-validation by concordance; prints a table and writes all numbers to JSON."""
    from carrisk.validation import cross_validate

    loaded = _load(data, time_col, event_col, features)
    names = [m.strip() for m in models.split(",") if m.strip()]
    try:
        result = cross_validate(
            loaded.records,
            loaded.y,
            names,
            spec=loaded.spec,
            folds=folds,
            repeats=repeats,
            seed=seed,
            inner_folds=inner_folds,
            scoring=scoring,
            n_jobs=n_jobs,
            backend=backend,
            scheduler=scheduler,
            progress=False if quiet else None,
        )
    except ValueError as err:
        err_console.print(f"[red]error:[/red] {err}", highlight=False)
        raise typer.Exit(1) from None
    typer.echo(
        f"{loaded.name}: {len(loaded.records)} rows, {loaded.n_events} events ({loaded.mode} mode); "
        f"{folds}-fold x {repeats} nested CV, seed {seed}; mean [2.5%, 97.5%] of fold estimates"
    )
    typer.echo(result.to_text())
    if json_out is not None:
        result.write_json(json_out)
        typer.echo(f"wrote {json_out}")
