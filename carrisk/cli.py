"""The ``carrisk`` command line: parses arguments and calls the public API, nothing more."""

from __future__ import annotations

import contextlib
import enum
import json
import os
import re
import sys
import traceback
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

import carrisk
from carrisk._warnings import one_line_warnings
from carrisk.units import DAYS_PER_MONTH, SIX_MONTHS_DAYS, TWELVE_MONTHS_DAYS

if TYPE_CHECKING:
    import pandas as pd

# numpy, pandas, scikit-learn and pandera are imported by the commands that use them, not here: ``carrisk --version``
# and ``carrisk --help`` stay fast (each command pays only for what it imports).

#: Exit codes of every command (also in the README and ``carrisk --help``).
EXIT_OK = 0
EXIT_INVALID_RECORDS = 1
EXIT_USAGE = 2
EXIT_UNEXPECTED = 3
EXIT_INTERRUPTED = 130
EXIT_CODES_HELP = (
    "Exit codes: 0 ok; 1 invalid records (every problem listed; also when no row is valid with --skip-invalid); "
    "2 bad usage or unreadable input (bad option value, missing or unreadable file or model bundle); "
    "3 unexpected error (rerun with --debug for the traceback); 130 interrupted."
)


def _record_error() -> type[BaseException] | tuple[()]:
    """:class:`carrisk.schema.RecordError` if the schema module was imported (no record can be invalid otherwise).

    Used as ``except _record_error():`` (evaluated only when an exception is being matched), so that the command
    line does not import pandas and pandera at start-up.
    """
    schema = sys.modules.get("carrisk.schema")
    return schema.RecordError if schema is not None else ()


class CliError(Exception):
    """An expected failure: printed as one ``carrisk: error: ...`` line and exit ``code`` (no traceback)."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


@contextlib.contextmanager
def _value_errors_exit(code: int, prefix: str = "") -> Iterator[None]:
    """A ``ValueError`` from the API inside the block becomes a one-line :class:`CliError` with exit ``code``.

    A :class:`RecordError` (also a ``ValueError``) passes through: the command group lists its problems.
    """
    try:
        yield
    except _record_error():
        raise
    except ValueError as err:
        raise CliError(f"{prefix}{err}", code) from None


#: click's ``UsageError`` (bad option value, missing argument, unknown option or command), found through
#: ``typer.BadParameter`` because typer >= 0.23 vendors click privately and older versions use click itself.
_USAGE_ERROR: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


def _usage_error_exit(err: Exception, fallback: str = "carrisk") -> typer.Exit:
    """Print a click usage error as one line, ``carrisk CMD: error: <what is wrong>``, and return the exit (2)."""
    ctx = getattr(err, "ctx", None)
    where = ctx.command_path if ctx is not None and ctx.command_path else fallback
    message = " ".join(err.format_message().split())  # type: ignore[attr-defined]
    typer.echo(f"{where}: error: {message}", err=True)
    return typer.Exit(EXIT_USAGE)


def _is_help_request(err: Exception) -> bool:
    """click >= 8.2 signals ``no_args_is_help`` with a ``NoArgsIsHelpError``: show the help as click does."""
    return type(err).__name__ == "NoArgsIsHelpError"


class _CarriskCommand(TyperCommand):
    """A command whose usage line reads ``carrisk predict [OPTIONS] PATIENTS`` (typer >= 0.29 writes ``{patients}``)."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name != "argument":
                continue
            name = (param.metavar or param.name or "").upper()
            name += "..." if param.nargs != 1 else ""
            pieces.append(name if param.required else f"[{name}]")
        return pieces


class _CarriskGroup(TyperGroup):
    """Turns every expected error into one line and a documented exit code; unexpected ones hint at --debug."""

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except _USAGE_ERROR as err:  # an unknown option of carrisk itself (`carrisk --bogus`)
            if _is_help_request(err):
                raise
            raise _usage_error_exit(err, info_name or "carrisk") from None

    def invoke(self, ctx: Any) -> Any:  # click's Context, which typer vendors privately
        debug = bool(ctx.params.get("debug"))
        try:
            with one_line_warnings(debug):
                return super().invoke(ctx)
        except _USAGE_ERROR as err:  # a command's bad option value, missing argument, unknown command...
            if _is_help_request(err):
                raise
            raise _usage_error_exit(err, ctx.command_path) from None
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except CliError as err:
            typer.echo(f"carrisk: error: {_ERRNO.sub('', str(err))}", err=True)
            raise typer.Exit(err.code) from None
        except _record_error() as err:
            typer.echo(f"carrisk: invalid: {err}", err=True)
            raise typer.Exit(EXIT_INVALID_RECORDS) from None
        except KeyboardInterrupt:
            typer.echo("carrisk: interrupted", err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except Exception as err:
            if debug:
                traceback.print_exc()
            else:
                first = str(err).strip().splitlines()[0] if str(err).strip() else ""
                typer.echo(
                    f"carrisk: unexpected error: {type(err).__name__}: {first} (rerun with --debug for the traceback)",
                    err=True,
                )
            raise typer.Exit(EXIT_UNEXPECTED) from None


app = typer.Typer(
    cls=_CarriskGroup,
    name="carrisk",
    help="carrisk: event-free survival after CD19 CAR T-cell therapy (research tool, not for clinical decisions).\n\n"
    + EXIT_CODES_HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # click's plain help, wrapped to the terminal: rich's tables cut long option names at 80 columns
    # ("--n-bootstrap-cali…") and its error boxes are 5 lines; usage errors are one line (_CarriskGroup)
    rich_markup_mode=None,
)

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
    debug: Annotated[bool, typer.Option("--debug", help="Show the full traceback of an unexpected error.")] = False,
) -> None:
    """carrisk command line."""


def _read(path: Path) -> pd.DataFrame:
    from carrisk.schema import read_records

    try:
        return read_records(path)
    except OSError as err:
        raise CliError(_os_error_text(err), EXIT_USAGE) from None


#: Files that commands write into their output directory, by name: an input file of that name inside ``--out``
#: is refused before any work (evaluate's per-table CSVs; the plots, which no input file is, are not listed).
CV_FILES = ("cv.json", "cv.txt", "calibration.csv", "subgroups.csv", "report.html")
REPRODUCE_FILES = ("study_report.json", "study_report.txt")
EVALUATE_FILES = (
    "evaluation.json", "summary.csv", "calibration_curves.csv", "subgroups.csv", "decision_curves.csv",
    "observed_vs_predicted.csv", "predictions.csv", "case_mix.csv", "report.html", "comparison.json",
    "comparison.csv", "differences.csv", "net_benefit_differences.csv", "net_benefit_difference_curves.csv",
)  # fmt: skip
INTERNAL_FILES = ("internal_validation.json", "internal_calibration.csv")
DEMO_FILES = ("cohort.csv", "example_design_matrix.csv", "cv.json")


_ERRNO = re.compile(r"\[Errno -?\d+\] ")


def _os_error_text(err: OSError) -> str:
    """An ``OSError`` as words, without Python's ``[Errno N]`` prefix: 'model bundle has no manifest: PATH'."""
    if not err.strerror:
        return _ERRNO.sub("", str(err))
    names = [str(name) for name in (err.filename, err.filename2) if name is not None]
    return ": ".join([err.strerror, " -> ".join(names)] if names else [err.strerror])


def _writable_place(option: str, path: Path) -> None:
    """Refuse ``path`` when its nearest existing parent is a file or is not writable (one-line usage error)."""
    from carrisk._io import unwritable_reason

    reason = unwritable_reason(path)
    if reason is not None:
        raise CliError(f"{option} {path}: cannot write there: {reason}")


def _check_outputs(
    inputs: Iterable[Path | None] = (),
    *,
    files: Mapping[str, Path | None] | None = None,
    directories: Mapping[str, tuple[Path | None, tuple[str, ...]]] | None = None,
    bundles: Mapping[str, Path | None] | None = None,
) -> None:
    """Check every output option before any work: one-line usage errors (exit 2) instead of a crash at the end.

    ``files``: option -> file to write (must not be a directory, an input file, or another output);
    ``directories``: option -> (directory, names of the files written into it) (must not be a file; an input file
    of one of those names inside it is refused); ``bundles``: option -> model bundle directory
    (:func:`carrisk.bundle.check_bundle_target`; must not be, or hold, an input). ``inputs``: the files and model
    bundles the command reads.
    """
    given = [Path(path) for path in inputs if path is not None and Path(path).exists()]
    real_inputs = {os.path.realpath(path): path for path in given}
    seen: dict[str, str] = {}
    for option, path in (files or {}).items():
        if path is None:
            continue
        if path.is_dir():
            raise CliError(f"{option} {path}: is a directory, not a file; give a file name")
        real = os.path.realpath(path)
        if real in real_inputs:
            raise CliError(f"{option} {path}: is the input {real_inputs[real]}; refusing to overwrite it")
        if real in seen:
            raise CliError(f"{seen[real]} and {option} are the same file ({path}); give each its own path")
        seen[real] = option
        _writable_place(option, path)
    for option, (directory, names) in (directories or {}).items():
        if directory is None:
            continue
        if directory.exists() and not directory.is_dir():
            raise CliError(f"{option} {directory}: is a file, not a directory; give a directory (created if missing)")
        for name in names:
            real = os.path.realpath(directory / name)
            if real in real_inputs:
                raise CliError(
                    f"{option} {directory}: would overwrite the input {real_inputs[real]} (this command writes "
                    f"{name} there); give another {option}"
                )
        _writable_place(option, directory / "x")
    for option, bundle in (bundles or {}).items():
        if bundle is None:
            continue
        from carrisk.bundle import check_bundle_target

        try:
            target = check_bundle_target(bundle)
        except OSError as err:
            raise CliError(f"{option}: {_os_error_text(err)}") from None
        for real, path in real_inputs.items():
            if Path(real) == Path(os.path.realpath(target)) or Path(os.path.realpath(target)) in Path(real).parents:
                raise CliError(f"{option} {bundle}: would replace the input {path}; give another {option}")


class Outcomes(enum.StrEnum):
    required = "required"
    optional = "optional"
    ignore = "ignore"


class HsctHandling(enum.StrEnum):
    ignore = "ignore"
    censor = "censor"
    competing = "competing"


class ModelName(enum.StrEnum):
    two_part = "two_part"
    coxnet_cv = "coxnet_cv"
    stacked = "stacked"
    average = "average"
    rsf = "rsf"
    coxnet = "coxnet"
    coxph = "coxph"
    gbsa = "gbsa"


class ForestEngine(enum.StrEnum):
    auto = "auto"
    sksurv = "sksurv"
    hist = "hist"


class Scoring(enum.StrEnum):
    harrell = "harrell"
    uno = "uno"
    ibs = "ibs"
    deviance = "deviance"


SCORING_HELP = (
    "Grid-search criterion (recorded): harrell, uno, ibs (held-out integrated Brier score) or deviance (held-out Cox "
    "partial likelihood; coxnet/coxph only). two_part, coxnet_cv, stacked and average tune themselves by proper scores."
)


class Backend(enum.StrEnum):
    loky = "loky"
    dask = "dask"


def _model_names(value: str) -> str:
    names = [m.strip() for m in value.split(",") if m.strip()]
    unknown = [m for m in names if m not in ModelName.__members__]
    if not names or unknown:
        raise typer.BadParameter(
            f"{', '.join(map(repr, unknown)) or 'none given'}; choose from {', '.join(ModelName.__members__)}"
        )
    return value


class UpdateLevel(enum.StrEnum):
    auto = "auto"
    original = "original"
    recalibration_in_the_large = "recalibration_in_the_large"
    recalibration = "recalibration"
    revision = "revision"


def _probability(value: float) -> float:
    if not 0.0 < value < 1.0:
        raise typer.BadParameter(f"{value}; must be strictly between 0 and 1")
    return value


def _n_jobs(value: int) -> int:
    if value == 0 or value < -1:
        raise typer.BadParameter(f"{value}; use -1 (all cores) or a positive number")
    return value


@app.command()
def validate(
    records: Annotated[Path, typer.Argument(metavar="RECORDS", help="Patient records (CSV or Parquet).")],
    outcomes: Annotated[
        Outcomes, typer.Option(help="Outcome columns: required (training), optional (checked if present), ignore.")
    ] = Outcomes.optional,
) -> None:
    """Check a record file against the carrisk schema: exit 0 if valid, 1 listing every problem, 2 if unreadable."""
    from carrisk.schema import validate_records

    frame = _read(records)
    validate_records(frame, outcomes=outcomes.value, source=str(records))
    typer.echo(f"{records}: valid, {len(frame)} records, {frame.shape[1]} columns")


@app.command("records-help")
def records_help() -> None:
    """Print the record documentation: every column, its units, accepted spellings and how missing is written."""
    from carrisk.shipped import records_help as text

    typer.echo(text())


@app.command()
def features(
    records: Annotated[
        Path,
        typer.Argument(
            metavar="RECORDS",
            help="Patient records (CSV or Parquet).",
            show_default="the bundled example records",
        ),
    ] = EXAMPLE_PATIENTS,
    out: Annotated[Path | None, typer.Option(help="Write the encoded design matrix to this CSV.")] = None,
) -> None:
    """Encode records into the model's design matrix: print it, or with --out write it and print a summary."""
    _check_outputs([records], files={"--out": out})
    import pandas as pd

    from carrisk._io import write_csv
    from carrisk.features import ClinicalFeatures
    from carrisk.schema import validate_records

    frame = _read(records)
    validate_records(frame, outcomes="optional", source=str(records))
    builder = ClinicalFeatures().set_output(transform="pandas").fit(frame)
    design = builder.transform(frame)
    design.index = pd.Index(frame["patient_id"].astype(str), name="patient_id")
    if out is not None:
        write_csv(out, design, index=True)
        typer.echo(f"wrote {out}: {design.shape[0]} patients x {design.shape[1]} design columns")
        return
    table = builder.categorize(frame)
    table.index = design.index
    typer.echo("Clinical variables (canonical values)")
    typer.echo(table.to_string(float_format=lambda v: f"{v:.2f}"))
    typer.echo(f"\nDesign matrix (transposed): {design.shape[0]} patients x {design.shape[1]} columns")
    typer.echo(design.T.to_string(float_format=lambda v: f"{v:.2f}"))


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
    except KeyError as err:
        raise CliError(str(err.args[0]) if err.args else str(err), EXIT_USAGE) from None
    except _record_error():
        raise
    except ValueError as err:
        raise CliError(str(err), EXIT_USAGE) from None
    for note in data.spec.notes:
        typer.echo(f"carrisk: note: {note}", err=True)
    return data


TimeCol = Annotated[
    str | None,
    typer.Option(help="Generic mode (any survival table; else the file must be carrisk records): the time column."),
]
EventCol = Annotated[str | None, typer.Option(help="Generic mode: the event column (1 = event, 0 = censored).")]
Features = Annotated[
    str | None,
    typer.Option(
        help="Generic mode: comma-separated covariates (default: all others except identifiers and outcome or "
        "follow-up columns); NAME:category one-hot encodes a column of numeric codes."
    ),
]
Seed = Annotated[int, typer.Option(min=0, help="Seed of the folds and the models (recorded in the output).")]


@app.command()
def cv(
    data: Annotated[Path, typer.Argument(metavar="DATA", help="Training table: carrisk records or any survival CSV.")],
    models: Annotated[
        str,
        typer.Option(callback=_model_names, help="Comma-separated, from: " + ", ".join(ModelName.__members__) + "."),
    ] = "rsf,coxnet",
    folds: Annotated[int, typer.Option(min=2, max=50, help="Outer folds.")] = 5,
    repeats: Annotated[int, typer.Option(min=1, max=100, help="Repeats of the outer K-fold.")] = 3,
    seed: Seed = 0,
    inner_folds: Annotated[
        int, typer.Option(min=2, max=20, help="Inner folds for tuning (forests are tuned out of bag).")
    ] = 3,
    scoring: Annotated[Scoring, typer.Option(help=SCORING_HELP)] = Scoring.harrell,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write every per-fold number here.")] = None,
    n_jobs: Annotated[int, typer.Option(callback=_n_jobs, help="Parallel jobs (-1 = all cores).")] = -1,
    backend: Annotated[Backend, typer.Option(help="loky (local) or dask.")] = Backend.loky,
    scheduler: Annotated[str | None, typer.Option(help="dask scheduler address, e.g. tcp://127.0.0.1:8786.")] = None,
    time_col: TimeCol = None,
    event_col: EventCol = None,
    features: Features = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
    out: Annotated[
        Path | None,
        typer.Option(help="Directory for cv.json, cv.txt, calibration.csv, subgroups.csv and calibration plots."),
    ] = None,
    calibration_bootstrap: Annotated[
        int, typer.Option(min=0, help="Bootstrap resamples for the calibration curves' bands (0: no band).")
    ] = 200,
    causes: Annotated[
        bool,
        typer.Option(
            "--causes",
            help="Also cross-validate the cause-specific model on the same folds (records with outcome columns).",
        ),
    ] = False,
    report: Annotated[
        bool, typer.Option(help="With --out: also write a self-contained HTML report (report.html).")
    ] = True,
    synthetic: Annotated[bool, typer.Option(help="Say in the report that the data are synthetic.")] = False,
    internal_bootstrap: Annotated[
        int, typer.Option(min=0, help="Report: bootstrap refits per model for optimism correction (0: none).")
    ] = 0,
    cause_models: Annotated[
        str,
        typer.Option(
            help="--causes: comma-separated competing-risks models, from: cause_specific, fine_gray, forest "
            "(the first fills the JSON 'causes' section, the others 'causes.other_models').",
        ),
    ] = "cause_specific",
) -> None:
    """Nested, repeated cross-validation by concordance; prints a table and writes all numbers to JSON."""
    _check_outputs([data], files={"--json": json_out}, directories={"--out": (out, CV_FILES)})
    from carrisk.validation import cross_validate

    loaded = _load(data, time_col, event_col, features)
    cause_cv = _cv_causes(loaded, folds, repeats, seed, n_jobs, cause_models) if causes else None
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
            scoring=scoring.value,
            n_jobs=n_jobs,
            backend=backend.value,
            scheduler=scheduler,
            progress=False if quiet else None,
            calibration_bootstrap=calibration_bootstrap,
        )
    except ValueError as err:
        raise CliError(str(err), EXIT_INVALID_RECORDS) from None
    if cause_cv is not None:
        result.causes = cause_cv[0].to_dict()
        if len(cause_cv) > 1:
            result.causes["other_models"] = {r.settings["model"]: r.to_dict() for r in cause_cv[1:]}
    heading = (
        f"{loaded.name}: {len(loaded.records)} rows, {loaded.n_events} events ({loaded.mode} mode); "
        f"{folds}-fold x {repeats} nested CV, seed {seed}; mean [95% CI of the mean]"
    )
    typer.echo(heading)
    typer.echo(result.report_text())
    for cause_result in cause_cv or []:
        typer.echo(f"\n{cause_result.to_text('6mo')}\n\n{cause_result.to_text('12mo')}")
    if json_out is not None:
        result.write_json(json_out)
        typer.echo(f"wrote {json_out}")
    if out is not None:
        for path in result.write_report(out, heading):
            typer.echo(f"wrote {path}")
        if report:
            from carrisk.development_report import write_cv_report

            internal = {
                name: _internal(loaded, name, internal_bootstrap, seed, inner_folds=inner_folds, scoring=scoring.value)
                for name in names
                if internal_bootstrap
            }
            path = write_cv_report(
                result,
                out / "report.html",
                loaded.records,
                loaded.y,
                internal=internal,
                source=str(data),
                synthetic=synthetic,
                n_bootstrap=min(calibration_bootstrap, 100),
                seed=seed,
            )
            typer.echo(f"wrote {path}")


def _internal(loaded: Any, model: str, n_bootstrap: int, seed: int, **params: Any) -> Any:
    """Bootstrap optimism correction of one model on the loaded data (for the reports)."""
    from carrisk.internal_validation import bootstrap_optimism

    return bootstrap_optimism(
        loaded.records, loaded.y, model, n_bootstrap=n_bootstrap, seed=seed, spec=loaded.spec, **params
    )


def _cv_causes(loaded: Any, folds: int, repeats: int, seed: int, n_jobs: int, names: str) -> list[Any]:
    """``cv --causes``: competing-risks models cross-validated on the folds of the EFS cross-validation."""
    from carrisk.competing.validation import CAUSE_MODELS, cross_validate_causes
    from carrisk.schema import OUTCOME_COLUMNS

    chosen = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in CAUSE_MODELS]
    if unknown or not chosen:
        raise CliError(
            f"--cause-models: unknown model {unknown[0] if unknown else names!r}; choose from "
            + ", ".join(CAUSE_MODELS),
            EXIT_USAGE,
        )
    missing = [c for c in OUTCOME_COLUMNS if c not in loaded.records.columns]
    if loaded.mode != "clinical" or missing:
        raise CliError(
            "--causes needs carrisk records with the outcome columns"
            + (f" (missing: {', '.join(missing)})" if missing else f", not {loaded.mode} mode"),
            EXIT_USAGE,
        )
    with _value_errors_exit(EXIT_INVALID_RECORDS, "--causes: "):
        return [
            cross_validate_causes(
                loaded.records, folds=folds, repeats=repeats, seed=seed, n_jobs=n_jobs, model=CAUSE_MODELS[name]()
            )
            for name in dict.fromkeys(chosen)
        ]


@app.command()
def simulate(
    n: Annotated[int, typer.Option(min=1, max=1_000_000, help="Patients.")] = 420,
    seed: Annotated[
        int, typer.Option(min=0, help="Seed of the simulated cohort (the same seed gives the same cohort).")
    ] = 7,
    out: Annotated[Path, typer.Option(help="Records CSV to write.")] = Path("cohort.csv"),
    truth: Annotated[Path | None, typer.Option(help="Also write each patient's true risk and EFS here.")] = None,
    centre: Annotated[
        str | None,
        typer.Option(
            help="A simulated external centre preset: 'baseline_and_effects' (baseline hazard x 1.8, every effect "
            "x 0.7) or 'shifted' (case-mix and baseline)."
        ),
    ] = None,
    baseline_hazard_multiplier: Annotated[
        float | None, typer.Option(help="Multiply the post-remission baseline hazard (overrides the preset).")
    ] = None,
    cr_logodds_shift: Annotated[
        float | None, typer.Option(help="Add to the log-odds of day-28 CR (overrides the preset).")
    ] = None,
    effect_scale: Annotated[
        float | None,
        typer.Option(help="Multiply every log hazard ratio and CR log odds ratio (overrides the preset)."),
    ] = None,
    blina_exposed: Annotated[float | None, typer.Option(help="Share with prior blinatumomab.")] = None,
    high_burden_odds_ratio: Annotated[
        float | None, typer.Option(help="Odds ratio for marrow blasts >= 5 % against the default centre.")
    ] = None,
) -> None:
    """Simulate a synthetic cohort calibrated to the published study (synthetic data, not real patients)."""
    _check_outputs(files={"--out": out, "--truth": truth})
    from carrisk._io import write_csv
    from carrisk.simulate import EXTERNAL_CENTRES, oracle_concordance, simulate_cohort

    if centre is not None and centre not in EXTERNAL_CENTRES:
        raise CliError(f"--centre must be one of {sorted(EXTERNAL_CENTRES)}, got {centre!r}", EXIT_USAGE)
    options: dict[str, Any] = {"case_mix": {}, **EXTERNAL_CENTRES.get(centre or "", {})}
    options["case_mix"] = dict(options["case_mix"])
    for key, value in (("blina_exposed", blina_exposed), ("high_burden_odds_ratio", high_burden_odds_ratio)):
        if value is not None:
            options["case_mix"][key] = value
    for key, value in (
        ("baseline_hazard_multiplier", baseline_hazard_multiplier),
        ("cr_logodds_shift", cr_logodds_shift),
        ("effect_scale", effect_scale),
    ):
        if value is not None:
            options[key] = value
    try:
        cohort = simulate_cohort(n=n, seed=seed, **options)
    except ValueError as err:
        raise CliError(str(err), EXIT_USAGE) from None
    write_csv(out, cohort.records)
    typer.echo(f"wrote {out}: {n} synthetic patients (seed {seed}); oracle Harrell C {oracle_concordance(cohort):.3f}")
    if truth is not None:
        write_csv(truth, cohort.truth)
        typer.echo(f"wrote {truth}")


@app.command()
def reproduce(
    cohort: Annotated[Path, typer.Argument(metavar="COHORT", help="Cohort in the record schema (simulated or real).")],
    out: Annotated[Path | None, typer.Option(help="Directory for study_report.json/.txt and the KM plot.")] = None,
    hsct_handling: Annotated[
        HsctHandling,
        typer.Option(
            help="Consolidative HSCT after CAR (column hsct_after_car_days): ignore (the study's choice: recorded, "
            "not an event), censor, or competing (a competing first event)."
        ),
    ] = HsctHandling.ignore,
) -> None:
    """The study's own analysis: CR rates, KM EFS/RFS, CD19, Cox; cumulative incidence of each failure cause."""
    _check_outputs([cohort], directories={"--out": (out, REPRODUCE_FILES)})
    from carrisk.reproduce import reproduce_study

    report = reproduce_study(_read(cohort), out_dir=None, hsct_handling=hsct_handling.value)
    typer.echo(report.to_text())
    if out is not None:
        paths = report.write(out)
        typer.echo("wrote " + ", ".join(str(p) for p in paths.values()))


def _check_ci_group_size(size: int, n_estimators: int | None, engine: ForestEngine | None, n_rows: int) -> None:
    """``train --ci-group-size``: the settings little bags need, as one-line usage errors before any fitting."""
    from carrisk.models import AUTO_HIST_MIN_ROWS, SurvivalForest

    trees = SurvivalForest().n_estimators if n_estimators is None else n_estimators
    if trees % size:
        raise CliError(f"--n-estimators ({trees}) must be a multiple of --ci-group-size ({size})", EXIT_USAGE)
    resolved = "hist" if n_rows >= AUTO_HIST_MIN_ROWS else "sksurv"
    if (engine.value if engine is not None and engine.value != "auto" else resolved) != "hist":
        raise CliError(
            f"--ci-group-size {size} needs the hist engine: add --engine hist (auto uses it from "
            f"{AUTO_HIST_MIN_ROWS:,} rows; this table has {n_rows:,})",
            EXIT_USAGE,
        )


@app.command()
def train(
    data: Annotated[Path, typer.Argument(metavar="DATA", help="Training table: carrisk records or any survival CSV.")],
    model: Annotated[
        ModelName | None,
        typer.Option(help="The model to train (default: average for carrisk records, coxnet_cv for generic tables)."),
    ] = None,
    scoring: Annotated[Scoring, typer.Option(help=SCORING_HELP)] = Scoring.harrell,
    out: Annotated[Path, typer.Option(help="Bundle directory to write.")] = Path("models/my-model"),
    seed: Seed = 0,
    synthetic: Annotated[bool, typer.Option(help="Mark the training data as synthetic.")] = False,
    n_estimators: Annotated[
        int | None, typer.Option(min=1, max=100_000, help="rsf: trees (more trees, steadier intervals).")
    ] = None,
    max_times: Annotated[int | None, typer.Option(min=2, help="rsf: size of the time grid (smaller model).")] = None,
    min_samples_leaf: Annotated[
        int | None, typer.Option(min=1, help="rsf: fix the leaf size instead of tuning it.")
    ] = None,
    engine: Annotated[
        ForestEngine | None,
        typer.Option(help="rsf: forest engine; auto = hist (histogram engine) from 10,000 rows, else sksurv."),
    ] = None,
    ci_group_size: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="rsf, hist engine: trees per shared half-sample for little-bags intervals (right width at any "
            "rows per tree; --n-estimators must be a multiple); 1 = bootstrap trees with jackknife intervals. "
            "Default: 2 on the hist engine when --n-estimators is even, else 1.",
        ),
    ] = None,
    time_col: TimeCol = None,
    event_col: EventCol = None,
    features: Features = None,
    report: Annotated[
        Path | None, typer.Option(help="Also write a self-contained HTML report of the trained model here.")
    ] = None,
    internal_bootstrap: Annotated[
        int, typer.Option(min=0, help="--report: bootstrap refits for optimism correction (0: none).")
    ] = 0,
) -> None:
    """Tune on all data (forests out of bag, others by inner CV), refit, and save a model bundle."""
    _check_outputs([data], files={"--report": report}, bundles={"--out": out})
    from carrisk.bundle import save_model
    from carrisk.predict import fit_efs_model

    loaded = _load(data, time_col, event_col, features)
    given: dict[str, Any] = {"n_estimators": n_estimators, "max_times": max_times, "min_samples_leaf": min_samples_leaf}
    given["engine"] = None if engine is None else engine.value
    given["ci_group_size"] = ci_group_size
    extra: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    if extra and model is not ModelName.rsf:  # None (the default model) is not a forest either
        raise CliError(
            "--n-estimators, --max-times, --min-samples-leaf, --engine and --ci-group-size apply to rsf only",
            EXIT_USAGE,
        )
    if ci_group_size is not None and ci_group_size > 1:
        _check_ci_group_size(ci_group_size, n_estimators, engine, len(loaded.records))
    fitted = fit_efs_model(
        loaded.records,
        loaded.y,
        None if model is None else model.value,
        spec=loaded.spec,
        seed=seed,
        scoring=scoring.value,
        synthetic=synthetic,
        **extra,
    )
    path = save_model(fitted, out)
    typer.echo(
        f"trained {fitted.model_name} ({loaded.mode} mode) on {len(loaded.records)} rows ({loaded.n_events} "
        f"events); params {fitted.params}"
    )
    typer.echo(f"saved {path}")
    if fitted.cause_model is not None:
        typer.echo("with its cause-specific model (carrisk predict --causes)")
    if fitted.metadata.get("interval_warning"):
        typer.echo(f"carrisk: note: {fitted.metadata['interval_warning']}", err=True)
    if report is not None:
        from carrisk.development_report import write_train_report

        internal = (
            _internal(loaded, fitted.model_name, internal_bootstrap, seed, scoring=scoring.value, **extra)
            if internal_bootstrap
            else None
        )
        written = write_train_report(
            fitted,
            report,
            loaded.records,
            loaded.y,
            internal=internal,
            source=str(data),
            bundle=str(path),
            features=loaded.spec.describe()["features"] if loaded.mode == "generic" else None,
            seed=seed,
        )
        typer.echo(f"wrote {written}")


def _model(path: Path | None, allow_version_mismatch: bool) -> Any:
    from carrisk.bundle import BundleError, load_model

    try:
        return load_model(_model_dir(path), allow_version_mismatch=allow_version_mismatch)
    except BundleError as err:
        raise CliError(str(err), EXIT_USAGE) from None
    except OSError as err:
        raise CliError(_os_error_text(err), EXIT_USAGE) from None


def _model_dir(path: Path | None) -> Path:
    """The bundle directory that ``--model`` names (the shipped model when omitted or 'shipped')."""
    from carrisk.shipped import default_model_path

    if path is None or (str(path) == SHIPPED and not path.exists()):
        return Path(default_model_path())
    return path


#: The ``--model`` value that names the shipped model (when no file or directory of that name exists).
SHIPPED = "shipped"
ModelPath = Annotated[
    Path | None, typer.Option("--model", help="Model bundle (default, or 'shipped': the shipped model).")
]
AllowMismatch = Annotated[
    bool, typer.Option("--allow-version-mismatch", help="Load a bundle saved with other library versions.")
]


@app.command()
def predict(
    patients: Annotated[
        Path, typer.Argument(metavar="PATIENTS", help="Patients (CSV or Parquet) in the record schema.")
    ],
    model: ModelPath = None,
    out: Annotated[Path | None, typer.Option(help="Write predictions CSV (scalar columns).")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write predictions JSON (with curves).")] = None,
    skip_invalid: Annotated[
        bool,
        typer.Option(
            "--skip-invalid",
            help="Predict the valid rows; write the rejected ones, with the reasons, beside --out (p.csv -> "
            "p.rejected.csv), without --out to predictions.rejected.csv in the current directory (exit 1 if no row "
            "is valid).",
        ),
    ] = False,
    allow_version_mismatch: AllowMismatch = False,
    causes: Annotated[
        bool, typer.Option("--causes", help="Add the 6/12-month incidence of each failure cause (sums to 1 - EFS).")
    ] = False,
    cause_training: Annotated[
        Path | None,
        typer.Option(help="--causes: refit the cause model on these records (default: the one stored in the bundle)."),
    ] = None,
    top: Annotated[
        int,
        typer.Option(
            min=0, max=20, help="Reasons per patient (exact SHAP); 0 skips them (much faster for large files)."
        ),
    ] = 3,
) -> None:
    """Predict 6/12-month EFS with 95% intervals, a risk group and the top reasons for each patient."""
    rejected_path = _rejected_path(out) if skip_invalid else None
    _check_outputs(
        [patients, cause_training], files={"--out": out, "--json": json_out, "the rejected rows' file": rejected_path}
    )
    from carrisk._io import csv_stream, json_array_stream, write_csv
    from carrisk.schema import RecordError

    fitted = _model(model, allow_version_mismatch)
    records = _read(patients)
    try:
        frame, rejected = fitted.valid_rows(records, skip_invalid=skip_invalid)
    except RecordError as err:  # name the file, as validate does ("3 problem(s) in new.csv")
        raise RecordError(err.problems, source=str(patients)) from None
    cause_model = _cause_model(fitted, cause_training) if causes else None
    if not rejected.empty and rejected_path is not None:
        target = rejected_path
        write_csv(target, rejected)
        typer.echo(f"carrisk: {rejected['row'].nunique()} invalid row(s) skipped; reasons in {target}", err=True)
    if fitted.metadata.get("synthetic_training_data"):
        typer.echo("carrisk: note: this model was trained on SYNTHETIC data; not for clinical decisions", err=True)
    if fitted.metadata.get("interval_warning"):
        typer.echo(f"carrisk: note: {fitted.metadata['interval_warning']}", err=True)
    with contextlib.ExitStack() as stack:
        write_rows = stack.enter_context(csv_stream(out)) if out is not None else None
        write_json = stack.enter_context(json_array_stream(json_out)) if json_out is not None else None
        if frame.empty and write_rows is not None:
            write_rows(_scalar_columns(fitted.empty_predictions()))
        for chunk in fitted.iter_predictions(frame, top=top):
            if cause_model is not None:
                chunk = _with_causes(chunk, fitted, cause_model, frame)
            typer.echo(format_predictions(chunk))
            if cause_model is not None:
                typer.echo(format_causes(chunk))
            if write_rows is not None:
                write_rows(_scalar_columns(chunk))
            if write_json is not None:
                write_json(chunk.to_dict("records"))
    for path in (out, json_out):
        if path is not None:
            typer.echo(f"wrote {path}")
    if frame.empty:
        raise CliError(f"no valid row in {patients}: nothing predicted (reasons above)", EXIT_INVALID_RECORDS)


def _rejected_path(out: Path | None) -> Path:
    """``predict --skip-invalid``: where the rejected rows go (beside --out, else in the current directory)."""
    return (out or Path("predictions.csv")).with_suffix(".rejected.csv")


def _scalar_columns(table: pd.DataFrame) -> pd.DataFrame:
    """The predictions without curves, with the top reasons as one readable text cell."""
    return table.drop(columns=["curve", "top_reasons", "cause_curves"], errors="ignore").assign(
        top_reasons=[
            "; ".join(f"{r['variable']}={r['value']} ({r['effect']:+.3f})" for r in rs) for rs in table["top_reasons"]
        ]
    )


def _cause_model(fitted: Any, cause_training: Path | None) -> Any:
    """The cause-specific model for ``--causes``: the bundle's own, or refitted on ``--cause-training``.

    A bundle saved without one (older carrisk) that records its simulated training cohort has it refitted from
    that cohort (about 15 s); any other bundle without one is a usage error.
    """
    from carrisk.competing.prediction import cause_model_for

    if cause_training is None and getattr(fitted, "cause_model", None) is not None:
        return fitted.cause_model
    training = _read(cause_training) if cause_training is not None else None
    if training is None and fitted.metadata.get("build", {}).get("cohort", {}).get("generator"):
        typer.echo("carrisk: note: this bundle carries no cause model; refitting it (retrain to store one)", err=True)
    with _value_errors_exit(EXIT_USAGE):
        return cause_model_for(fitted, training)


def _with_causes(chunk: pd.DataFrame, fitted: Any, cause_model: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """A chunk of EFS predictions plus each cause's incidence, adding up to 1 - EFS."""
    incidences = fitted.split_by_cause(chunk, frame.loc[chunk.index], cause_model)
    incidences.index = chunk.index
    return chunk.join(incidences.drop(columns=["patient_id", *[c for c in incidences if c.startswith("efs_")]]))


def format_causes(table: pd.DataFrame) -> str:
    """Human-readable lines: each cause's 12-month incidence (carrisk.competing.prediction.format_causes)."""
    from carrisk.competing.prediction import format_causes as lines

    return lines(table)


def format_predictions(table: pd.DataFrame) -> str:
    """Human-readable lines: EFS at 6/12 months with intervals, risk group and reasons."""
    lines = []
    for row in table.to_dict("records"):
        lines.append(
            f"{row['patient_id']}: 6-month EFS {row['efs_6mo']:.0%} ({row['efs_6mo_lo']:.0%}-{row['efs_6mo_hi']:.0%}), "
            f"12-month EFS {row['efs_12mo']:.0%} ({row['efs_12mo_lo']:.0%}-{row['efs_12mo_hi']:.0%}), "
            f"{row['risk_group']} risk"
        )
        for reason in row["top_reasons"]:
            lines.append(
                f"    {reason['variable']} = {reason['value']}: {100 * reason['effect']:+.1f} points on 6-month EFS"
            )
        if row.get("assumptions"):
            lines.append(f"    assumed: {row['assumptions']}")
    return "\n".join(lines)


@app.command()
def explain(
    patients: Annotated[
        Path, typer.Argument(metavar="PATIENTS", help="Patients (CSV or Parquet) in the record schema.")
    ],
    model: ModelPath = None,
    horizon: Annotated[
        float, typer.Option(min=1.0, max=10_000.0, help="Explain EFS at this many days after infusion.")
    ] = SIX_MONTHS_DAYS,
    out: Annotated[Path, typer.Option(help="Directory for the plots.")] = Path("explanations"),
    json_out: Annotated[Path | None, typer.Option("--json", help="Write explanations JSON here.")] = None,
    allow_version_mismatch: AllowMismatch = False,
) -> None:
    """SHAP explanations of EFS at a horizon: per-patient waterfalls, global beeswarm and bar plots, JSON."""
    _check_outputs([patients], files={"--json": json_out}, directories={"--out": (out, ())})
    import numpy as np

    from carrisk import explain as shap_plots
    from carrisk._io import atomic_write_text, safe_filename

    fitted = _model(model, allow_version_mismatch)
    try:
        getattr(fitted, "check_horizon", lambda *_: None)(horizon, "--horizon")
    except ValueError as err:
        raise CliError(str(err), EXIT_USAGE) from None
    records = _read(patients)
    fitted.validate(records, source=str(patients))
    result = fitted.explain(records, horizon=horizon)
    shown = fitted.display_values(records)
    out.mkdir(parents=True, exist_ok=True)
    ids = fitted.patient_ids(records).tolist()
    used: set[str] = set()
    for i, pid in enumerate(ids):
        raw = [shown.iloc[i].get(name, "") for name in result.feature_names]
        target = safe_filename(out, f"waterfall_{pid}", ".png", taken=used)
        shap_plots.plot_waterfall(result, i, target, raw_values=raw, label=pid)
    if len(ids) > 1:
        shap_plots.plot_beeswarm(result, out / "beeswarm.png")
        shap_plots.plot_bar(result, out / "importance_bar.png")
        if "marrow_blasts_pct" in result.feature_names:
            shap_plots.plot_dependence(
                result,
                "marrow_blasts_pct",
                out / "dependence_marrow_blasts.png",
                xlabel="marrow blasts, % (log scale above 0.01 %)",
                symlog_below=0.01,
            )
    base = np.broadcast_to(np.asarray(result.base_values, dtype=float), (len(ids),))
    explanations = [
        {
            "patient_id": pid,
            "output": "efs_at_horizon",
            "horizon_days": horizon,
            "base_value": float(base[i]),
            "prediction": float(result.predictions[i]),
            "contributions": dict(zip(result.feature_names, map(float, result.values[i]))),
            "values": {k: str(v) for k, v in shown.iloc[i].items()},
        }
        for i, pid in enumerate(ids)
    ]
    months = horizon / DAYS_PER_MONTH
    whole = abs(months - round(months)) < 1e-9
    when = f"{months:g} month{'' if months == 1 else 's'}" if whole else f"{horizon:g} days"
    for item in explanations:
        top = sorted(item["contributions"].items(), key=lambda kv: -abs(kv[1]))[:3]
        typer.echo(
            f"{item['patient_id']}: EFS at {when} {item['prediction']:.1%} (baseline "
            f"{item['base_value']:.1%}); " + ", ".join(f"{k} {100 * v:+.1f} points" for k, v in top)
        )
    if json_out is not None:
        atomic_write_text(json_out, json.dumps(explanations, indent=1))
        typer.echo(f"wrote {json_out}")
    typer.echo(f"plots in {out}/")


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Directory for the demo's outputs.")] = Path("demo-output"),
) -> None:
    """The main job on the embedded default: simulate -> reproduce -> cross-validate -> train -> predict -> explain."""
    _check_outputs(directories={"--out": (out, DEMO_FILES)})
    from carrisk._io import write_csv
    from carrisk.bundle import save_model
    from carrisk.predict import fit_efs_model
    from carrisk.reproduce import reproduce_study
    from carrisk.schema import read_records, survival_target
    from carrisk.simulate import oracle_concordance, simulate_cohort
    from carrisk.validation import cross_validate

    out.mkdir(parents=True, exist_ok=True)
    typer.echo("== 1. simulate a synthetic cohort calibrated to Myers et al. 2022 (n=420, seed 7) ==")
    cohort = simulate_cohort(n=420, seed=7)
    write_csv(out / "cohort.csv", cohort.records)
    typer.echo(f"wrote {out / 'cohort.csv'}; oracle Harrell C (true risk): {oracle_concordance(cohort):.3f}")
    typer.echo("\n== 2. features: the bundled example records, encoded ==")
    features(EXAMPLE_PATIENTS, out=out / "example_design_matrix.csv")
    typer.echo("\n== 3. the study's analysis on the simulated cohort ==")
    report = reproduce_study(cohort.records)
    report.write(out / "study")
    typer.echo("\n".join(report.to_text().splitlines()[:16]))
    typer.echo("\n== 4. nested cross-validation (5-fold x 1, seed 0) ==")
    y = survival_target(cohort.records)
    result = cross_validate(cohort.records, y, ["average", "rsf"], folds=5, repeats=1, seed=0, n_jobs=-1)
    result.write_json(out / "cv.json")
    typer.echo(result.to_text())
    typer.echo("\n== 5. train the default model (the 50/50 average, as shipped) on the whole cohort and save it ==")
    fitted = fit_efs_model(
        cohort.records, y, seed=0, synthetic=True, cv_metrics=result.to_dict()["models"]["average"]["metrics"]
    )
    save_model(fitted, out / "model")
    typer.echo(f"saved {out / 'model'} (params {fitted.params})")
    typer.echo("\n== 6. predict three contrasting example patients with the shipped default model ==")
    default = _model(None, allow_version_mismatch=False)
    examples = read_records(EXAMPLE_PATIENTS)
    chosen = examples[examples["patient_id"].isin(["EX-04", "EX-09", "EX-03"])]
    typer.echo(format_predictions(default.predict_efs(chosen)))
    typer.echo("\nSynthetic data throughout: none of these numbers is clinical evidence.")


@app.command()
def serve(
    model: ModelPath = None,
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8000,
    token_file: Annotated[
        Path | None, typer.Option(help="Require 'Authorization: Bearer <token>' with the token in this file.")
    ] = None,
    allow_remote: Annotated[
        bool, typer.Option("--allow-remote", help="Allow binding to a non-loopback address (prints a warning).")
    ] = False,
    max_patients: Annotated[int, typer.Option(help="Most patients in one request.", min=1)] = 1000,
    rate_limit: Annotated[float, typer.Option(help="Requests per second per client (0 = no limit).", min=0)] = 100.0,
    workers: Annotated[int, typer.Option(help="Server processes (each loads the model).", min=1, max=16)] = 1,
    allow_version_mismatch: AllowMismatch = False,
) -> None:
    """Serve the risk-calculator page and the HTTP API (POST /predict, /explain; GET /model, /health)."""
    try:
        from carrisk.serve import ServerConfig, is_loopback, run_server
    except ImportError as err:
        raise CliError(f"{err.name} is missing; install the extra: pip install 'carrisk[serve]'") from None
    from carrisk.bundle import BundleError
    from carrisk.shipped import default_model_path

    if not is_loopback(host):
        if not allow_remote:
            raise CliError(
                f"refusing to bind to {host}, which other machines can reach; pass --allow-remote to do it "
                "deliberately (and put TLS and a --token-file in front of it)"
            )
        typer.echo(
            f"carrisk: warning: serving on {host}: other machines can reach this server; the API sends patient "
            "data unencrypted (no TLS) and needs --token-file to refuse strangers",
            err=True,
        )
    try:
        config = ServerConfig(
            model_dir=str(model or default_model_path()),
            token_file=None if token_file is None else str(token_file),
            max_patients=max_patients,
            rate_limit_per_s=rate_limit,
            allow_version_mismatch=allow_version_mismatch,
        )
        config.check()
        _check_port(host, port)
        typer.echo(f"carrisk serve: http://{host}:{port}/ (API schema at /openapi.json); research use only")
        run_server(config, host=host, port=port, workers=workers)
    except (ValueError, BundleError) as err:
        raise CliError(str(err)) from None
    except OSError as err:
        raise CliError(_os_error_text(err)) from None
    except SystemExit as err:  # uvicorn exits 3 when it cannot start (e.g. the port was taken meanwhile)
        if err.code in (0, None):
            raise
        raise CliError(f"the server on {host}:{port} could not start (uvicorn's message above)") from None


def _check_port(host: str, port: int) -> None:
    """``serve``: refuse at once, in one line, an address that cannot be listened on (a port in use, mostly)."""
    import errno
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        raise CliError(f"--host {host}: cannot listen there ({err.strerror})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(
            socket.SOL_SOCKET, socket.SO_REUSEADDR, 1
        )  # as uvicorn does: a closed port in TIME_WAIT is free
        try:
            probe.bind(address)
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise CliError(
                    f"port {port} is in use on {host} (another server?); stop it or choose another --port"
                ) from None
            raise CliError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None


@app.command()
def evaluate(
    cohort: Annotated[
        Path, typer.Argument(metavar="COHORT", help="Cohort with outcomes (efs_days, efs_event) in the record schema.")
    ],
    model: Annotated[
        list[Path] | None,
        typer.Option(
            "--model",
            metavar="DIR",
            help="Model bundle (default, or 'shipped': the shipped model). Repeat to compare models on the same "
            "patients and bootstrap resamples; the first is the reference (e.g. the original model, then its update).",
        ),
    ] = None,
    name: Annotated[
        list[str] | None,
        typer.Option(
            "--name",
            metavar="NAME",
            help="With several --model: their names in the output, one per --model, in order (default: 'original "
            "model' and 'updated model (<level>)' when a bundle is an update of the first, else the bundle's "
            "directory name).",
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="Directory for evaluation.json, the CSV tables and the plots.")] = Path(
        "evaluation"
    ),
    n_bootstrap: Annotated[int, typer.Option(min=1, help="Bootstrap resamples for the intervals.")] = 200,
    n_bootstrap_calibration: Annotated[
        int, typer.Option(min=1, help="Bootstrap resamples for the calibration band (each refits a Cox model).")
    ] = 50,
    seed: Seed = 0,
    report: Annotated[bool, typer.Option(help="Also write a self-contained HTML report (report.html).")] = True,
    time_col: TimeCol = None,
    event_col: EventCol = None,
    allow_version_mismatch: AllowMismatch = False,
    net_benefit_threshold: Annotated[
        list[float] | None,
        typer.Option(
            "--net-benefit-threshold",
            metavar="P",
            help="With several --model: a threshold probability of an event (in (0, 1)) at which the models' net "
            "benefits are compared; repeat for several (default 0.2, 0.3, 0.4, 0.5, 0.6).",
        ),
    ] = None,
) -> None:
    """External validation of a saved model on a cohort with outcomes: discrimination, calibration, decisions.

    With several --model, every model is scored on the same patients and bootstrap resamples and compared with the
    first: a side-by-side table, paired differences with 95% intervals and p-values (not adjusted for
    multiplicity), net-benefit differences at a few thresholds, overlaid calibration and decision curves
    (comparison.json, comparison.csv, differences.csv, net_benefit_differences.csv, report.html) and each model's
    own evaluation in a subdirectory. A generic-mode model reads the outcome from the columns it was trained with (or
    --time-col/--event-col)."""
    _check_outputs([cohort], directories={"--out": (out, EVALUATE_FILES)})
    from carrisk.evaluate import evaluate_model, outcome_words

    paths_given: list[Path | None] = list(model) if model else [None]
    if len(paths_given) > 1:
        _evaluate_several(
            cohort, paths_given, list(name or []), out, n_bootstrap, n_bootstrap_calibration, seed, report, time_col,
            event_col, allow_version_mismatch, net_benefit_threshold,
        )  # fmt: skip
        return
    if name:
        raise CliError("--name names the models of a comparison: give two or more --model, one --name for each")
    if net_benefit_threshold:
        raise CliError(
            "--net-benefit-threshold compares the net benefit of several models: give two or more --model (one "
            "model's decision curves cover every threshold from 0.01 to 0.95)"
        )
    fitted = _model(paths_given[0], allow_version_mismatch)
    records = _read(cohort)
    with _value_errors_exit(EXIT_INVALID_RECORDS):
        result = evaluate_model(
            fitted,
            records,
            n_bootstrap=n_bootstrap,
            n_bootstrap_calibration=n_bootstrap_calibration,
            seed=seed,
            source=str(cohort),
            time_col=time_col,
            event_col=event_col,
        )
    if fitted.metadata.get("synthetic_training_data"):
        typer.echo("carrisk: note: this model was trained on SYNTHETIC data; not for clinical decisions", err=True)
    for note in result.info["notes"]:
        typer.echo(f"carrisk: note: {note}", err=True)
    typer.echo(f"{cohort}: {result.info['n']} patients, {result.info['events']} {outcome_words(result.info)['events']}")
    typer.echo(result.to_text())
    paths = result.write(out)
    if report:
        from carrisk.report import write_evaluation_report

        paths["report"] = write_evaluation_report(result, out / "report.html", figures=paths)
    typer.echo(f"wrote {len(paths)} files to {out}/")


def _evaluate_several(
    cohort: Path,
    paths: list[Path | None],
    names: list[str],
    out: Path,
    n_bootstrap: int,
    n_bootstrap_calibration: int,
    seed: int,
    report: bool,
    time_col: str | None,
    event_col: str | None,
    allow_version_mismatch: bool,
    net_benefit_thresholds: list[float] | None = None,
) -> None:
    """``carrisk evaluate`` with several --model: :func:`carrisk.evaluate_models` and its report."""
    from carrisk.evaluate import (
        NET_BENEFIT_THRESHOLDS,
        ModelComparisonError,
        comparison_names,
        evaluate_models,
        outcome_words,
    )

    if names and len(names) != len(paths):
        raise CliError(f"{len(names)} --name for {len(paths)} --model: give one --name per --model, in order")
    if names and (len(set(names)) != len(names) or any(not item.strip() for item in names)):
        raise CliError(f"--name values must be distinct and not blank, got {names}")
    fitted = [_model(path, allow_version_mismatch) for path in paths]
    fallback = [SHIPPED + " model" if path is None or str(path) == SHIPPED else Path(path).name for path in paths]
    labels = names or comparison_names(fitted, fallback)
    records = _read(cohort)
    with _value_errors_exit(EXIT_INVALID_RECORDS):
        try:
            comparison = evaluate_models(
                dict(zip(labels, fitted)),
                records,
                n_bootstrap=n_bootstrap,
                n_bootstrap_calibration=n_bootstrap_calibration,
                seed=seed,
                source=str(cohort),
                time_col=time_col,
                event_col=event_col,
                net_benefit_thresholds=net_benefit_thresholds or NET_BENEFIT_THRESHOLDS,
            )
        except ModelComparisonError as err:
            raise CliError(str(err), EXIT_USAGE) from None
    if any((getattr(item, "metadata", {}) or {}).get("synthetic_training_data") for item in fitted):
        typer.echo("carrisk: note: a model was trained on SYNTHETIC data; not for clinical decisions", err=True)
    for label, result in comparison.results.items():
        for note in result.info["notes"]:
            typer.echo(f"carrisk: note: {label}: {note}", err=True)
    info = comparison.info
    typer.echo(
        f"{cohort}: {info['n']} patients, {info['events']} {outcome_words(info)['events']}; {len(labels)} models "
        f"on the same {n_bootstrap} bootstrap resamples, compared with {comparison.reference}"
    )
    for relation in info["relations"]:
        typer.echo(f"{relation['model']} is an update of {relation['updates']}: {relation['description']}")
    typer.echo(comparison.to_text())
    written = comparison.write(out)
    if report:
        from carrisk.report import write_comparison_report

        written["report"] = write_comparison_report(comparison, out / "report.html", figures=written)
    files = len(written) - 1 + sum(len(own) for own in written["models"].values())
    directories = ", ".join(f"{out}/{directory}/" for directory in info["directories"].values())
    typer.echo(f"wrote {files} files to {out}/ (each model's own evaluation in {directories})")


@app.command()
def update(
    cohort: Annotated[
        Path, typer.Argument(metavar="COHORT", help="The new centre's cohort with outcomes, in the record schema.")
    ],
    out: Annotated[Path, typer.Option(help="Bundle directory for the updated model.")],
    model: ModelPath = None,
    level: Annotated[
        UpdateLevel, typer.Option(help="auto chooses by a closed test; the others force that level.")
    ] = UpdateLevel.auto,
    alpha: Annotated[
        float, typer.Option(callback=_probability, help="Significance level of the closed test (0-1).")
    ] = 0.05,
    reference_days: Annotated[
        float,
        typer.Option(
            min=1.0,
            help="Reference time t* of the risk score; follow-up is truncated there (in the time column's units).",
        ),
    ] = TWELVE_MONTHS_DAYS,
    time_col: TimeCol = None,
    event_col: EventCol = None,
    allow_version_mismatch: AllowMismatch = False,
) -> None:
    """Update a saved model for a new centre (Steyerberg's hierarchy, closed test) and save it as a new bundle.

    A generic-mode model reads the outcome from the columns it was trained with (or from the --time-col and
    --event-col options)."""
    _check_outputs([cohort, _model_dir(model)], bundles={"--out": out})
    from carrisk.bundle import save_model
    from carrisk.evaluate import calibration_slope, observed_expected
    from carrisk.schema import SIX_MONTHS_DAYS, TWELVE_MONTHS_DAYS, survival_target
    from carrisk.updating import update_model

    fitted = _model(model, allow_version_mismatch)
    records = _read(cohort)
    with _value_errors_exit(EXIT_INVALID_RECORDS):
        result = update_model(
            fitted,
            records,
            level=level.value,
            alpha=alpha,
            reference_days=reference_days,
            source=str(cohort),
            time_col=time_col,
            event_col=event_col,
        )
    typer.echo(result.to_text())
    outcome = result.model.update["update_cohort"]["outcome_columns"]
    y = survival_target(records, outcome["time"], outcome["event"])
    typer.echo("Calibration on the update cohort itself (apparent; evaluate on other patients to confirm):")
    horizons = {"6 months": SIX_MONTHS_DAYS, "12 months": TWELVE_MONTHS_DAYS}
    for name, candidate in (("before", fitted), ("after", result.model)):
        surv = candidate.predict_survival(records, list(horizons.values()))
        parts = []
        for k, label in enumerate(horizons):
            observed, predicted, _ = observed_expected(y["event"], y["time"], surv[:, k], list(horizons.values())[k])
            slope = calibration_slope(y["event"], y["time"], surv[:, k])
            parts.append(
                f"{label}: observed {observed:.1%} vs predicted {predicted:.1%} event probability, "
                f"slope {slope[0]:.2f} ({slope[1]:.2f}-{slope[2]:.2f})"
            )
        typer.echo(f"  {name}: " + "; ".join(parts))
    path = save_model(result.model, out)
    typer.echo(f"saved {path} (parent payload {result.model.update['parent_payload_sha256']})")


samplesize_app = typer.Typer(
    help="Minimum sample sizes: developing a survival model (Riley 2019/2020) or validating one (Riley 2021).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(samplesize_app, name="samplesize")


@samplesize_app.command("development")
def samplesize_development(
    csrsquared: Annotated[float, typer.Option(help="Anticipated Cox-Snell R-squared.")],
    parameters: Annotated[int, typer.Option(help="Candidate predictor parameters (one-hot columns count).")],
    rate: Annotated[float, typer.Option(help="Overall event rate per unit time (e.g. per year).")],
    timepoint: Annotated[float, typer.Option(help="Time of interest for the event risk (same unit).")],
    meanfup: Annotated[float, typer.Option(help="Anticipated mean follow-up (same unit).")],
    shrinkage: Annotated[float, typer.Option(help="Target expected shrinkage.")] = 0.9,
    rounding: Annotated[
        str,
        typer.Option(
            help="'published': pmsampsize 1.0.2-1.1.0's intermediate rounding (the published worked examples); "
            "'current': none, as pmsampsize >= 1.1.1 (criterion 2 can differ by a few per cent)."
        ),
    ] = "published",
) -> None:
    """Minimum sample size to develop a survival prediction model (criteria of pmsampsize, type survival)."""
    from carrisk.samplesize import development_sample_size

    try:
        result = development_sample_size(
            csrsquared, parameters, rate, timepoint, meanfup, shrinkage=shrinkage, rounding=rounding
        )
    except ValueError as err:
        raise CliError(str(err), EXIT_USAGE) from None
    typer.echo(result.to_text())
    low, high = result.details["risk_interval"]
    typer.echo(
        f"{result.details['events']:.0f} events expected; risk by {timepoint:g}: {result.details['risk_at_timepoint']} "
        f"(95% CI {low} to {high})"
    )


@samplesize_app.command("validation")
def samplesize_validation(
    prevalence: Annotated[float, typer.Option(help="Anticipated event probability by the horizon.")],
    cstatistic: Annotated[float, typer.Option(help="Anticipated C statistic.")],
    oe: Annotated[float, typer.Option(help="Anticipated observed/expected ratio.")] = 1.0,
    oe_ci_width: Annotated[float, typer.Option(help="Target 95% CI width of O/E.")] = 0.2,
    cstat_ci_width: Annotated[float, typer.Option(help="Target 95% CI width of the C statistic.")] = 0.1,
    slope_ci_width: Annotated[float, typer.Option(help="Target 95% CI width of the calibration slope.")] = 0.2,
    lp_mean: Annotated[float | None, typer.Option(help="Mean of the linear predictor (logit), for the slope.")] = None,
    lp_sd: Annotated[float | None, typer.Option(help="SD of the linear predictor (logit), for the slope.")] = None,
) -> None:
    """Minimum sample size for a precise external validation (criteria of pmvalsampsize, binary outcome)."""
    from carrisk.samplesize import validation_sample_size

    if (lp_mean is None) != (lp_sd is None):
        raise CliError("give both --lp-mean and --lp-sd (or neither)", EXIT_USAGE)
    try:
        result = validation_sample_size(
            prevalence,
            cstatistic,
            oe=oe,
            oe_ci_width=oe_ci_width,
            cstat_ci_width=cstat_ci_width,
            slope_ci_width=slope_ci_width,
            lp_normal=None if lp_mean is None or lp_sd is None else (lp_mean, lp_sd),
        )
    except ValueError as err:
        raise CliError(str(err), EXIT_USAGE) from None
    typer.echo(result.to_text())


@app.command("validate-internal")
def validate_internal(
    data: Annotated[
        Path, typer.Argument(metavar="DATA", help="Development table: carrisk records or any survival CSV.")
    ],
    model: Annotated[ModelName, typer.Option(help="The model (tuned in every refit).")] = ModelName.coxnet,
    n_bootstrap: Annotated[int, typer.Option(help="Bootstrap refits of the whole tuned pipeline.")] = 200,
    seed: Seed = 0,
    time_col: TimeCol = None,
    event_col: EventCol = None,
    features: Features = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Directory for internal_validation.json, internal_calibration.csv and its plot."),
    ] = None,
) -> None:
    """Optimism-corrected C, calibration slope, calibration-in-the-large and calibration curve (rms validate,
    calibrate)."""
    _check_outputs([data], directories={"--out": (out, INTERNAL_FILES)})
    from carrisk.internal_validation import bootstrap_optimism

    loaded = _load(data, time_col, event_col, features)
    result = bootstrap_optimism(
        loaded.records, loaded.y, str(model), n_bootstrap=n_bootstrap, seed=seed, spec=loaded.spec
    )
    typer.echo(
        f"{loaded.name}: {len(loaded.records)} rows, {loaded.n_events} events; {n_bootstrap} bootstrap refits of the "
        f"tuned {model}, seed {seed}; measures of the 12-month event probability"
    )
    typer.echo(result.to_text())
    if out is not None:
        from carrisk._io import atomic_write_text, write_csv
        from carrisk.development_report import plot_internal_calibration
        from carrisk.tuning import jsonable

        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "internal_validation.json", json.dumps(result.to_dict(), indent=2, default=jsonable))
        write_csv(out / "internal_calibration.csv", result.calibration_curve)
        plot_internal_calibration(result, out / "internal_calibration.png")
        typer.echo(f"wrote internal_validation.json, internal_calibration.csv and internal_calibration.png to {out}/")


for _typer_app in (app, samplesize_app):  # every command prints its usage line in capitals, without braces
    for _info in _typer_app.registered_commands:
        if _info.cls in (None, TyperCommand):
            _info.cls = _CarriskCommand
