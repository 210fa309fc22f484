"""The ``carrisk`` command line: parses arguments and calls the public API, nothing more."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import numpy as np
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
Features = Annotated[
    str | None,
    typer.Option(
        help="Generic mode: comma-separated covariates (default: all others); NAME:category one-hot encodes a "
        "column of numeric codes."
    ),
]
Seed = Annotated[int, typer.Option(help="Seed of the folds and the models (recorded in the output).")]


@app.command()
def cv(
    data: Annotated[Path, typer.Argument(help="Training table: carrisk records or any survival CSV.")],
    models: Annotated[str, typer.Option(help="Comma-separated: rsf, coxnet, coxph, gbsa.")] = "rsf,coxnet",
    folds: Annotated[int, typer.Option(help="Outer folds.")] = 5,
    repeats: Annotated[int, typer.Option(help="Repeats of the outer K-fold.")] = 3,
    seed: Seed = 0,
    inner_folds: Annotated[int, typer.Option(help="Inner folds for tuning (forests are tuned out of bag).")] = 3,
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


DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "models" / "default"


@app.command()
def simulate(
    n: Annotated[int, typer.Option(help="Patients.")] = 420,
    seed: Seed = 7,
    out: Annotated[Path, typer.Option(help="Records CSV to write.")] = Path("cohort.csv"),
    truth: Annotated[Path | None, typer.Option(help="Also write each patient's true risk and EFS here.")] = None,
    centre: Annotated[
        str | None, typer.Option(help="A simulated external centre preset: 'shifted' (case-mix and baseline).")
    ] = None,
    baseline_hazard_multiplier: Annotated[
        float | None, typer.Option(help="Multiply the post-remission baseline hazard (overrides the preset).")
    ] = None,
    cr_logodds_shift: Annotated[
        float | None, typer.Option(help="Add to the log-odds of day-28 CR (overrides the preset).")
    ] = None,
    blina_exposed: Annotated[float | None, typer.Option(help="Share with prior blinatumomab.")] = None,
    high_burden_odds_ratio: Annotated[
        float | None, typer.Option(help="Odds ratio for marrow blasts >= 5 % against the default centre.")
    ] = None,
) -> None:
    """Simulate a synthetic cohort calibrated to the published study (synthetic data, not real patients)."""
    from carrisk._io import atomic_write_text
    from carrisk.simulate import EXTERNAL_CENTRES, oracle_concordance, simulate_cohort

    if centre is not None and centre not in EXTERNAL_CENTRES:
        err_console.print(f"[red]error:[/red] --centre must be one of {sorted(EXTERNAL_CENTRES)}, got {centre!r}")
        raise typer.Exit(2)
    options: dict[str, Any] = {"case_mix": {}, **EXTERNAL_CENTRES.get(centre or "", {})}
    options["case_mix"] = dict(options["case_mix"])
    for key, value in (("blina_exposed", blina_exposed), ("high_burden_odds_ratio", high_burden_odds_ratio)):
        if value is not None:
            options["case_mix"][key] = value
    for key, value in (
        ("baseline_hazard_multiplier", baseline_hazard_multiplier),
        ("cr_logodds_shift", cr_logodds_shift),
    ):
        if value is not None:
            options[key] = value
    try:
        cohort = simulate_cohort(n=n, seed=seed, **options)
    except ValueError as err:
        err_console.print(f"[red]error:[/red] {err}", highlight=False)
        raise typer.Exit(2) from None
    atomic_write_text(out, cohort.records.to_csv(index=False))
    typer.echo(f"wrote {out}: {n} synthetic patients (seed {seed}); oracle Harrell C {oracle_concordance(cohort):.3f}")
    if truth is not None:
        atomic_write_text(truth, cohort.truth.to_csv(index=False))
        typer.echo(f"wrote {truth}")


@app.command()
def reproduce(
    cohort: Annotated[Path, typer.Argument(help="Cohort in the record schema (simulated or real).")],
    out: Annotated[Path | None, typer.Option(help="Directory for study_report.json/.txt and the KM plot.")] = None,
) -> None:
    """The study's own analysis: CR rates, KM EFS/RFS by blinatumomab group, CD19, multivariable Cox."""
    from carrisk.reproduce import reproduce_study

    try:
        report = reproduce_study(_read(cohort), out_dir=None)
    except RecordError as err:
        err_console.print(f"[red]invalid:[/red] {err}", highlight=False)
        raise typer.Exit(1) from None
    typer.echo(report.to_text())
    if out is not None:
        paths = report.write(out)
        typer.echo("wrote " + ", ".join(str(p) for p in paths.values()))


@app.command()
def train(
    data: Annotated[Path, typer.Argument(help="Training table: carrisk records or any survival CSV.")],
    model: Annotated[str, typer.Option(help="rsf, coxnet, coxph or gbsa.")] = "rsf",
    out: Annotated[Path, typer.Option(help="Bundle directory to write.")] = Path("models/my-model"),
    seed: Seed = 0,
    synthetic: Annotated[bool, typer.Option(help="Mark the training data as synthetic.")] = False,
    n_estimators: Annotated[int | None, typer.Option(help="rsf: trees (more trees, steadier intervals).")] = None,
    max_times: Annotated[int | None, typer.Option(help="rsf: size of the time grid (smaller model).")] = None,
    min_samples_leaf: Annotated[int | None, typer.Option(help="rsf: fix the leaf size instead of tuning it.")] = None,
    time_col: TimeCol = None,
    event_col: EventCol = None,
    features: Features = None,
) -> None:
    """Tune on all data (forests out of bag, others by inner CV), refit, and save a model bundle."""
    from carrisk.bundle import save_model
    from carrisk.predict import fit_efs_model

    loaded = _load(data, time_col, event_col, features)
    extra = {"n_estimators": n_estimators, "max_times": max_times, "min_samples_leaf": min_samples_leaf}
    extra = {k: v for k, v in extra.items() if v is not None}
    if extra and model != "rsf":
        err_console.print("[red]error:[/red] --n-estimators, --max-times and --min-samples-leaf apply to rsf only")
        raise typer.Exit(2)
    fitted = fit_efs_model(loaded.records, loaded.y, model, spec=loaded.spec, seed=seed, synthetic=synthetic, **extra)
    path = save_model(fitted, out)
    typer.echo(f"trained {model} on {len(loaded.records)} rows ({loaded.n_events} events); params {fitted.params}")
    typer.echo(f"saved {path}")


def _model(path: Path | None, allow_version_mismatch: bool) -> Any:
    from carrisk.bundle import BundleError, load_model

    try:
        return load_model(path or DEFAULT_MODEL, allow_version_mismatch=allow_version_mismatch)
    except (BundleError, FileNotFoundError) as err:
        err_console.print(f"[red]error:[/red] {err}", highlight=False)
        raise typer.Exit(2) from None


ModelPath = Annotated[Path | None, typer.Option("--model", help="Model bundle (default: the shipped model).")]
AllowMismatch = Annotated[
    bool, typer.Option("--allow-version-mismatch", help="Load a bundle saved with other library versions.")
]


@app.command()
def predict(
    patients: Annotated[Path, typer.Argument(help="Patients (CSV or Parquet) in the record schema.")],
    model: ModelPath = None,
    out: Annotated[Path | None, typer.Option(help="Write predictions CSV (scalar columns).")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write predictions JSON (with curves).")] = None,
    skip_invalid: Annotated[bool, typer.Option(help="Predict valid rows; write rejected rows beside --out.")] = False,
    allow_version_mismatch: AllowMismatch = False,
) -> None:
    """Predict 6/12-month EFS with 95% intervals, a risk group and the top reasons for each patient."""
    import json

    from carrisk._io import atomic_write_text

    fitted = _model(model, allow_version_mismatch)
    try:
        table = fitted.predict_efs(_read(patients), skip_invalid=skip_invalid)
    except RecordError as err:
        err_console.print(f"[red]invalid:[/red] {err}", highlight=False)
        raise typer.Exit(1) from None
    rejected = pd.DataFrame(table.attrs.get("rejected", []))
    if not rejected.empty:
        target = (out or Path("predictions.csv")).with_suffix(".rejected.csv")
        atomic_write_text(target, rejected.to_csv(index=False))
        err_console.print(f"{rejected['row'].nunique()} invalid row(s) skipped; reasons in {target}")
    if fitted.metadata.get("synthetic_training_data"):
        err_console.print("note: this model was trained on SYNTHETIC data; not for clinical decisions")
    typer.echo(format_predictions(table))
    scalars = table.drop(columns=["curve", "top_reasons"]).assign(
        top_reasons=[
            "; ".join(f"{r['variable']}={r['value']} ({r['effect']:+.3f})" for r in rs) for rs in table["top_reasons"]
        ]
    )
    if out is not None:
        atomic_write_text(out, scalars.to_csv(index=False))
        typer.echo(f"wrote {out}")
    if json_out is not None:
        atomic_write_text(json_out, json.dumps(table.to_dict("records"), indent=1))
        typer.echo(f"wrote {json_out}")


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
            lines.append(f"    {reason['variable']} = {reason['value']}: {reason['effect']:+.1%} on 6-month EFS")
    return "\n".join(lines)


@app.command()
def explain(
    patients: Annotated[Path, typer.Argument(help="Patients (CSV or Parquet) in the record schema.")],
    model: ModelPath = None,
    horizon: Annotated[float, typer.Option(help="Explain EFS at this many days.")] = 182.625,
    out: Annotated[Path, typer.Option(help="Directory for the plots.")] = Path("explanations"),
    json_out: Annotated[Path | None, typer.Option("--json", help="Write explanations JSON here.")] = None,
    allow_version_mismatch: AllowMismatch = False,
) -> None:
    """SHAP explanations of EFS at a horizon: per-patient waterfalls, global beeswarm and bar plots, JSON."""
    import json

    from carrisk import explain as shap_plots
    from carrisk._io import atomic_write_text

    fitted = _model(model, allow_version_mismatch)
    records = _read(patients)
    try:
        result = fitted.explain(records, horizon=horizon)
    except RecordError as err:
        err_console.print(f"[red]invalid:[/red] {err}", highlight=False)
        raise typer.Exit(1) from None
    shown = fitted.display_values(records)
    out.mkdir(parents=True, exist_ok=True)
    ids = records["patient_id"].astype(str).tolist()
    for i, pid in enumerate(ids):
        raw = [shown.iloc[i].get(name, "") for name in result.feature_names]
        shap_plots.plot_waterfall(result, i, out / f"waterfall_{pid}.png", raw_values=raw, label=pid)
    if len(ids) > 1:
        shap_plots.plot_beeswarm(result, out / "beeswarm.png")
        shap_plots.plot_bar(result, out / "importance_bar.png")
        if "marrow_blasts_pct" in result.feature_names:
            shap_plots.plot_dependence(
                result,
                "marrow_blasts_pct",
                out / "dependence_marrow_blasts.png",
                xlabel="marrow blasts, log10(% + 0.01) (-2 = undetectable, 0.7 = 5 %)",
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
    for item in explanations:
        top = sorted(item["contributions"].items(), key=lambda kv: -abs(kv[1]))[:3]
        typer.echo(
            f"{item['patient_id']}: EFS at {horizon:g} d {item['prediction']:.1%} (baseline "
            f"{item['base_value']:.1%}); " + ", ".join(f"{k} {v:+.1%}" for k, v in top)
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
    from carrisk._io import atomic_write_text
    from carrisk.bundle import save_model
    from carrisk.predict import fit_efs_model
    from carrisk.reproduce import reproduce_study
    from carrisk.schema import survival_target
    from carrisk.simulate import oracle_concordance, simulate_cohort
    from carrisk.validation import cross_validate

    out.mkdir(parents=True, exist_ok=True)
    typer.echo("== 1. simulate a synthetic cohort calibrated to Myers et al. 2022 (n=420, seed 7) ==")
    cohort = simulate_cohort(n=420, seed=7)
    atomic_write_text(out / "cohort.csv", cohort.records.to_csv(index=False))
    typer.echo(f"wrote {out / 'cohort.csv'}; oracle Harrell C (true risk): {oracle_concordance(cohort):.3f}")
    typer.echo("\n== 2. features: the bundled example records, encoded ==")
    features(EXAMPLE_PATIENTS, out=out / "example_design_matrix.csv")
    typer.echo("\n== 3. the study's analysis on the simulated cohort ==")
    report = reproduce_study(cohort.records)
    report.write(out / "study")
    typer.echo("\n".join(report.to_text().splitlines()[:16]))
    typer.echo("\n== 4. nested cross-validation (5-fold x 1, seed 0) ==")
    y = survival_target(cohort.records)
    result = cross_validate(cohort.records, y, ["rsf", "coxnet"], folds=5, repeats=1, seed=0, n_jobs=-1)
    result.write_json(out / "cv.json")
    typer.echo(result.to_text())
    typer.echo("\n== 5. train a forest like the shipped one on the whole cohort and save it ==")
    fitted = fit_efs_model(
        cohort.records,
        y,
        "rsf",
        seed=0,
        synthetic=True,
        n_estimators=600,
        max_times=40,
        cv_metrics=result.to_dict()["models"]["rsf"]["metrics"],
    )
    save_model(fitted, out / "model")
    typer.echo(f"saved {out / 'model'} (params {fitted.params})")
    typer.echo(f"\n== 6. predict three contrasting example patients with the default model ({DEFAULT_MODEL.name}) ==")
    default = _model(None, allow_version_mismatch=False)
    examples = read_records(EXAMPLE_PATIENTS)
    chosen = examples[examples["patient_id"].isin(["EX-04", "EX-09", "EX-03"])]
    typer.echo(format_predictions(default.predict_efs(chosen)))
    typer.echo("\nSynthetic data throughout: none of these numbers is clinical evidence.")


@app.command()
def evaluate(
    cohort: Annotated[Path, typer.Argument(help="Cohort with outcomes (efs_days, efs_event) in the record schema.")],
    model: ModelPath = None,
    out: Annotated[Path, typer.Option(help="Directory for evaluation.json, the CSV tables and the plots.")] = Path(
        "evaluation"
    ),
    n_bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for the intervals.")] = 200,
    n_bootstrap_calibration: Annotated[
        int, typer.Option(help="Bootstrap resamples for the calibration band (each refits a Cox model).")
    ] = 50,
    seed: Seed = 0,
    report: Annotated[bool, typer.Option(help="Also write a self-contained HTML report (report.html).")] = True,
    allow_version_mismatch: AllowMismatch = False,
) -> None:
    """External validation of a saved model on a cohort with outcomes: discrimination, calibration, decisions."""
    from carrisk.evaluate import evaluate_model

    fitted = _model(model, allow_version_mismatch)
    records = _read(cohort)
    try:
        result = evaluate_model(
            fitted,
            records,
            n_bootstrap=n_bootstrap,
            n_bootstrap_calibration=n_bootstrap_calibration,
            seed=seed,
            source=str(cohort),
        )
    except RecordError as err:
        err_console.print(f"[red]invalid:[/red] {err}", highlight=False)
        raise typer.Exit(1) from None
    except ValueError as err:
        err_console.print(f"[red]error:[/red] {err}", highlight=False)
        raise typer.Exit(1) from None
    if fitted.metadata.get("synthetic_training_data"):
        err_console.print("note: this model was trained on SYNTHETIC data; not for clinical decisions")
    for note in result.info["notes"]:
        err_console.print(f"note: {note}")
    typer.echo(f"{cohort}: {result.info['n']} patients, {result.info['events']} EFS events")
    typer.echo(result.to_text())
    paths = result.write(out)
    if report:
        from carrisk.report import write_evaluation_report

        paths["report"] = write_evaluation_report(result, out / "report.html", figures=paths)
    typer.echo(f"wrote {len(paths)} files to {out}/")


@app.command()
def update(
    cohort: Annotated[Path, typer.Argument(help="The new centre's cohort with outcomes, in the record schema.")],
    out: Annotated[Path, typer.Option(help="Bundle directory for the updated model.")],
    model: ModelPath = None,
    level: Annotated[
        str,
        typer.Option(help="auto (closed test), original, recalibration_in_the_large, recalibration or revision."),
    ] = "auto",
    alpha: Annotated[float, typer.Option(help="Significance level of the closed test.")] = 0.05,
    allow_version_mismatch: AllowMismatch = False,
) -> None:
    """Update a saved model for a new centre (Steyerberg's hierarchy, closed test) and save it as a new bundle."""
    from carrisk.bundle import save_model
    from carrisk.evaluate import calibration_slope, observed_expected
    from carrisk.schema import SIX_MONTHS_DAYS, TWELVE_MONTHS_DAYS, survival_target
    from carrisk.updating import update_model

    fitted = _model(model, allow_version_mismatch)
    records = _read(cohort)
    try:
        result = update_model(fitted, records, level=level, alpha=alpha, source=str(cohort))
    except RecordError as err:
        err_console.print(f"[red]invalid:[/red] {err}", highlight=False)
        raise typer.Exit(1) from None
    except ValueError as err:
        err_console.print(f"[red]error:[/red] {err}", highlight=False)
        raise typer.Exit(1) from None
    typer.echo(result.to_text())
    y = survival_target(records)
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
