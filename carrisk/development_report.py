"""Self-contained HTML reports of model development: ``carrisk cv`` and ``carrisk train``.

Built from the blocks of :mod:`carrisk.report` (the external-validation report): one file, plots embedded as
base64 PNG, no scripts and no network access, numbers rounded by kind (probabilities as percentages with one
decimal, concordance and slopes with two decimals, Brier scores with three), clinical names for variables,
models and hyper-parameters, and a TRIPOD+AI checklist (Collins et al., BMJ 2024;385:e078378) of the items a
development report covers.

- :func:`write_cv_report`: nested cross-validation: discrimination as the cross-validated mean with its
  Nadeau-Bengio interval and the spread of the folds; calibration, decision curves and subgroup calibration of
  the pooled out-of-fold predictions; internal validation by bootstrap optimism correction where computed.
- :func:`write_train_report`: one trained model: how it was tuned and what it chose; its *apparent* performance on
  its own training patients (labelled as optimistic) and, where computed, the optimism-corrected figures and
  calibration curve (:func:`carrisk.internal_validation.bootstrap_optimism`).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from carrisk._io import atomic_write_text
from carrisk.calibration import (
    SUBGROUP_COLUMNS,
    calibration_in_the_large,
    plot_calibration,
    pooled_calibration,
    subgroup_calibration,
)
from carrisk.decision_curves import decision_curve, pooled_decision_curve
from carrisk.evaluate import calibration_slope, save_figure
from carrisk.internal_validation import InternalValidation
from carrisk.metrics import DEFAULT_HORIZONS_DAYS, harrell_c
from carrisk.models import check_survival_target
from carrisk.report import (
    LEVEL_NAMES,
    MODEL_LABELS,
    RECORD_NAMES,
    SCORING_LABELS,
    STYLE,
    created_text,
    escape,
    figures_block,
    missing_table,
    model_label,
    months_label,
    number,
    parameters_text,
    percent,
    short_model_label,
    tripod_table,
    tuning_text,
)
from carrisk.units import DAYS_PER_MONTH
from carrisk.validation import CVResult

__all__ = [
    "MODEL_LABELS",
    "TRIPOD_AI_DEVELOPMENT_ITEMS",
    "cv_report_html",
    "plot_internal_calibration",
    "train_report_html",
    "write_cv_report",
    "write_train_report",
]

#: What the cross-validation reports, in the order shown: (metric, label, digits or "pct").
DISCRIMINATION_METRICS = (
    ("harrell_c", "Harrell's C", 2),
    ("uno_c", "Uno's C", 2),
    ("auc_6mo", "time-dependent AUC, 6 months", 2),
    ("auc_12mo", "time-dependent AUC, 12 months", 2),
    ("brier_6mo", "Brier score, 6 months", 3),
    ("brier_12mo", "Brier score, 12 months", 3),
    ("ibs", "integrated Brier score", 3),
)
INTERNAL_LABELS = {
    "harrell_c": ("Harrell's C", 2),
    "calibration_slope": ("calibration slope", 2),
    "citl": ("calibration-in-the-large (observed - predicted event probability)", "pct"),
}

#: (item, topic, status, section id or explanation) of a development report.
TRIPOD_AI_DEVELOPMENT_ITEMS = (
    ("1", "Title: development of a prediction model, population, outcome", "covered", "top"),
    ("4", "Objectives: development and internal validation of a model", "covered", "top"),
    ("5a-b", "Data sources; dates of accrual and end of follow-up", "partly", "data"),
    ("6a-c", "Setting, eligibility, treatments", "authors", "to be reported by the study authors"),
    ("8a", "Outcome: event-free survival, how and when assessed", "covered", "data"),
    ("9a", "Predictors", "covered", "model"),
    ("10", "Sample size: patients and events", "covered", "data"),
    ("11", "Missing data and how it was handled", "covered", "data"),
    ("12c", "Model type, building steps, hyper-parameter tuning, internal validation", "covered", "model"),
    ("12e", "Performance measures and plots", "covered", "methods"),
    ("12g", "How predictions were calculated for evaluation", "covered", "methods"),
    ("14", "Fairness: performance in subgroups", "partly", "subgroups"),
    ("15", "Model output and decision thresholds", "covered", "decision"),
    ("20a", "Participants and numbers with the outcome", "covered", "data"),
    ("22", "Full model / how to obtain it", "partly", "model"),
    ("23a", "Model performance with confidence intervals", "covered", "discrimination"),
    ("23b", "Performance in key subgroups", "covered", "subgroups"),
    ("26", "Limitations (synthetic data, optimism, intervals)", "covered", "methods"),
    ("17-19, 21, 27", "Ethics, funding, protocol, data and code sharing, patient involvement", "authors",
     "to be reported by the study authors"),
)  # fmt: skip


#: What the models predict: (one model, several models), for carrisk records (True) or a generic table (False).
_SUBJECT = {
    True: (
        "a model of event-free survival after CD19 CAR T-cell therapy",
        "models of event-free survival after CD19 CAR T-cell therapy",
    ),
    False: ("a survival model", "survival models"),
}


def _observed_with_interval(km: float, km_lo: float, km_hi: float) -> str:
    """Observed event probability 1 - KM with its 95% CI (the CI is omitted where it is undefined)."""
    if not (np.isfinite(km_lo) and np.isfinite(km_hi)):
        return percent(1 - km)
    return f"{percent(1 - km)} ({percent(1 - km_hi)} to {percent(1 - km_lo)})"


def _format(value: float, digits: int | str) -> str:
    return percent(value) if digits == "pct" else number(value, int(digits))


def _event_counts(event: np.ndarray, time: np.ndarray, horizons: Mapping[str, float]) -> str:
    return ", ".join(f"{int((event & (time <= days)).sum())} by {months_label(h)}" for h, days in horizons.items())


def _missing_shares(records: pd.DataFrame, names: Mapping[str, str]) -> dict[str, float]:
    return {column: float(records[column].isna().mean()) for column in names if column in records.columns}


def _data_section(
    records: pd.DataFrame, y: np.ndarray, horizons: Mapping[str, float], features: Sequence[str] | None
) -> list[str]:
    """Patients, events, follow-up and missingness; ``features`` lists a generic table's covariates (None: records)."""
    event, time = check_survival_target(y)
    clinical = features is None
    names: Mapping[str, str] = RECORD_NAMES if features is None else {c: c for c in features}
    return [
        "<h2 id='data'>Data</h2>",
        f"<p>{len(records)} patients, {int(event.sum())} with {'an EFS' if clinical else 'an'} event during follow-up "
        f"({_event_counts(event, time, horizons)}); median follow-up {np.median(time) / DAYS_PER_MONTH:.0f} months, "
        f"longest {time.max() / DAYS_PER_MONTH:.0f} months. "
        + (
            "An EFS event is relapse, no remission by day 28, or death, whichever came first.</p>"
            if clinical
            else "Generic survival table: the outcome is the table's own event column.</p>"
        ),
        "<p>Share of missing values in the columns the model reads (imputed with the training median or encoded "
        "as 'unknown' inside every fit, never from held-out patients):</p>",
        missing_table(_missing_shares(records, names), names),
    ]


def _page(title: str, heading: str, lead: str, synthetic: bool, what: str, nav: list[tuple[str, str]]) -> list[str]:
    return [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{escape(title)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1 id='top'>{escape(heading)}</h1>",
        f"<p class='note'>{lead}</p>",
        "<div class='warning'><b>Research tool, not for clinical decisions.</b> "
        + ("The model was trained on <b>synthetic</b> patients (simulated, not real). " if synthetic else "")
        + escape(what)
        + "</div>",
        "<nav>" + "".join(f"<a href='#{anchor}'>{escape(text)}</a>" for anchor, text in nav) + "</nav>",
    ]


def _internal_section(internal: Mapping[str, InternalValidation], figures: Mapping[str, Path]) -> list[str]:
    if not internal:
        return [
            "<h2 id='internal'>Internal validation (bootstrap optimism correction)</h2>",
            "<p class='note'>Not computed for this report (add <code>--internal-bootstrap 200</code>).</p>",
        ]
    rows = []
    for name, result in internal.items():
        for row in result.summary.to_dict("records"):
            label, digits = INTERNAL_LABELS.get(row["measure"], (row["measure"], 2))
            rows.append(
                f"<tr><td>{escape(short_model_label(name))}</td><td>{escape(label)}</td>"
                f"<td class='num'>{_format(row['apparent'], digits)}</td>"
                f"<td class='num'>{_format(row['optimism'], digits)}</td>"
                f"<td class='num'><b>{_format(row['corrected'], digits)}</b></td>"
                f"<td class='num'>{row['n_bootstrap']}</td></tr>"
            )
    first = next(iter(internal.values()))
    horizon = first.settings["horizon_days"]
    keys = [(f"internal_{name}", f"Optimism-corrected calibration, {short_model_label(name)}") for name in internal]
    return [
        "<h2 id='internal'>Internal validation (bootstrap optimism correction)</h2>",
        f"<p>The whole tuned pipeline was refitted on {first.settings['n_bootstrap']} bootstrap resamples of the "
        "patients (Harrell, Lee &amp; Mark 1996; rms <code>validate</code> and <code>calibrate</code>). Each refit "
        "is scored on its own resample and on the original patients; the mean difference is the optimism, "
        "subtracted from the apparent figure of the model fitted on all patients. Measures of the event "
        f"probability by {horizon / DAYS_PER_MONTH:.0f} months.</p>",
        "<table><tr><th>model</th><th>measure</th><th>apparent</th><th>optimism</th><th>corrected</th>"
        "<th>refits used</th></tr>" + "".join(rows) + "</table>",
        figures_block(figures, keys),
    ]


def plot_internal_calibration(result: InternalValidation, path: Path, title: str = "") -> Path:
    """The apparent and the optimism-corrected calibration curve against the diagonal (PNG)."""
    curve = result.calibration_curve
    figure, axes = plt.subplots(figsize=(5.2, 4.6))
    months = result.settings["horizon_days"] / DAYS_PER_MONTH
    if len(curve):
        limit = float(np.nanmax(curve[["predicted", "apparent", "corrected"]].to_numpy())) * 1.05
        axes.plot(curve["predicted"], curve["apparent"], color="tab:grey", linewidth=1.5, label="apparent")
        axes.plot(curve["predicted"], curve["corrected"], color="tab:blue", linewidth=2, label="optimism-corrected")
    else:
        limit = 1.0
        axes.text(0.5, 0.5, "calibration curve could not be fitted", ha="center", transform=axes.transAxes)
    axes.plot([0, limit], [0, limit], color="grey", linestyle="--", linewidth=1, label="perfect calibration")
    axes.set(xlim=(0, limit), ylim=(0, limit))
    axes.set_xlabel(f"predicted probability of an event by {months:.0f} months")
    axes.set_ylabel(f"observed probability of an event by {months:.0f} months")
    axes.set_title(title or f"Optimism-corrected calibration, {months:.0f} months")
    axes.legend(loc="upper left", fontsize=8)
    return save_figure(figure, path)


def _plot_decision_curves(curves: Mapping[str, pd.DataFrame], horizon: str, path: Path) -> Path:
    """Net benefit of each model, treat-all and treat-none at one horizon, with the bands of the first model."""
    figure, axes = plt.subplots(figsize=(6, 4.2))
    prevalence = 0.05
    for k, (label, curve) in enumerate(curves.items()):
        colour = f"C{(k + 2) % 10}" if k else "tab:blue"  # C1 (orange) is treat-all
        if "net_benefit_model_lower" in curve:
            axes.fill_between(
                curve["threshold"],
                curve["net_benefit_model_lower"],
                curve["net_benefit_model_upper"],
                color=colour,
                alpha=0.15 if k else 0.2,
            )
        axes.plot(curve["threshold"], curve["net_benefit_model"], color=colour, linewidth=2, label=label)
        prevalence = max(prevalence, float(np.nanmax(curve["net_benefit_all"].to_numpy())))
    first = next(iter(curves.values()))
    axes.plot(first["threshold"], first["net_benefit_all"], color="tab:orange", linewidth=1.5, label="treat all")
    axes.axhline(0.0, color="black", linewidth=1, label="treat none")
    axes.set_ylim(-0.05, prevalence * 1.15)
    axes.set_xlim(0, float(first["threshold"].max()))
    axes.set_xlabel(f"threshold probability of an event by {months_label(horizon)}")
    axes.set_ylabel("net benefit")
    axes.set_title(f"Decision curve, event by {months_label(horizon)} (bands: 95% bootstrap)")
    axes.legend(fontsize=8)
    return save_figure(figure, path)


#: Clinical names of the subgroup variables of :func:`carrisk.calibration.subgroup_calibration`.
_SUBGROUP_NAMES = {"blinatumomab": "Prior blinatumomab", "disease burden": "Disease burden"}


def _subgroup_label(variable: str, group: Any) -> str:
    """A subgroup in clinical words ("Prior blinatumomab: exposed, response unknown")."""
    if variable == "all":
        return "all patients"
    level = LEVEL_NAMES.get(str(group), str(group).replace("_", " "))
    return f"{_SUBGROUP_NAMES.get(variable, variable)}: {level}"


def _plot_subgroups(table: pd.DataFrame, horizon: str, path: Path, title: str) -> Path:
    """Observed (Kaplan-Meier, 95% CI) and mean predicted event probability by blinatumomab group and burden."""
    rows_table = table[(table["horizon"] == horizon) & (table["variable"] != "blinatumomab x burden")]
    rows_table = rows_table.reset_index(drop=True)
    figure, axes = plt.subplots(figsize=(9, 0.5 * max(len(rows_table), 2) + 1.4))
    rows = np.arange(len(rows_table))[::-1]
    observed = 1.0 - rows_table["km_efs"].to_numpy(dtype=float)
    lower, upper = 1.0 - rows_table["km_hi"].to_numpy(dtype=float), 1.0 - rows_table["km_lo"].to_numpy(dtype=float)
    axes.errorbar(
        observed,
        rows,
        xerr=[np.nan_to_num(observed - lower), np.nan_to_num(upper - observed)],
        fmt="o",
        color="black",
        capsize=3,
        label="observed (Kaplan-Meier, 95% CI)",
    )
    axes.scatter(
        1.0 - rows_table["predicted_efs"], rows, marker="D", color="tab:blue", zorder=3, label="mean predicted"
    )
    groups = zip(rows_table["variable"], rows_table["group"], rows_table["n"])
    labels = [f"{_subgroup_label(variable, group)} (n={n})" for variable, group, n in groups]
    axes.set_yticks(rows, labels, fontsize=10)
    axes.set_xlim(-0.02, 1.02)
    axes.set_xlabel(f"probability of an event by {months_label(horizon)}")
    axes.set_title(title)
    axes.legend(fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, frameon=False)
    return save_figure(figure, path)


def _subgroup_table(tables: Mapping[str, pd.DataFrame]) -> str:
    """One row per (model, subgroup); per horizon the observed event probability (95% CI) and the mean predicted."""
    frames = [t.assign(model=name) for name, t in tables.items() if len(t)]
    if not frames:
        return "<p class='note'>No subgroup table: the data lack the blinatumomab and disease-burden columns.</p>"
    table = pd.concat(frames, ignore_index=True)
    table = table[table["variable"] != "blinatumomab x burden"]
    horizons = list(dict.fromkeys(table["horizon"]))
    head = "".join(
        f"<th>observed, {escape(months_label(h))} (95% CI)</th><th>predicted, {escape(months_label(h))}</th>"
        for h in horizons
    )
    body = []
    for (model, variable, group), rows in table.groupby(["model", "variable", "group"], sort=False):
        by_horizon = rows.set_index("horizon")
        label = _subgroup_label(variable, group)
        cells = "".join(
            f"<td class='num'>{_observed_with_interval(*by_horizon.loc[h, ['km_efs', 'km_lo', 'km_hi']])}</td>"
            f"<td class='num'>{percent(1 - by_horizon.loc[h, 'predicted_efs'])}</td>"
            for h in horizons
        )
        body.append(
            f"<tr><td>{escape(short_model_label(str(model)))}</td><td>{escape(label)}</td>"
            f"<td class='num'>{int(rows['n'].iloc[0])}</td>{cells}</tr>"
        )
    return (
        f"<table><tr><th>model</th><th>subgroup</th><th>patients</th>{head}</tr>" + "".join(body) + "</table>"
        "<p class='note'>Event probabilities: observed is one minus the group's Kaplan-Meier EFS; predicted is the "
        "group's mean prediction. Predicted above observed means the model is too pessimistic for the group, below "
        "too optimistic.</p>"
    )


def _tripod(items: tuple[tuple[str, str, str, str], ...]) -> list[str]:
    return [
        "<h2 id='tripod'>TRIPOD+AI checklist</h2>",
        "<p class='note'>Items of the TRIPOD+AI statement (Collins et al., BMJ 2024;385:e078378) that a model "
        "development report covers, and where this report covers them.</p>",
        tripod_table(items),
        "</body></html>",
    ]


# --------------------------------------------------------------------------------------------- cross-validation


def _discrimination_table(result: CVResult) -> str:
    models = result.to_dict()["models"]
    body = []
    for name, block in models.items():
        for metric, label, digits in DISCRIMINATION_METRICS:
            summary = block["metrics"].get(metric)
            if summary is None:
                continue
            low, high = summary["mean_ci"]
            spread_low, spread_high = summary["spread"]
            body.append(
                f"<tr><td>{escape(short_model_label(name))}</td><td>{escape(label)}</td>"
                f"<td class='num'>{_format(summary['mean'], digits)}</td>"
                f"<td class='num'>{_format(low, digits)} to {_format(high, digits)}</td>"
                f"<td class='num'>{_format(spread_low, digits)} to {_format(spread_high, digits)}</td></tr>"
            )
    return (
        "<table><tr><th>model</th><th>measure</th><th>cross-validated mean</th><th>95% CI of the mean "
        "(Nadeau-Bengio)</th><th>spread of the folds (2.5th-97.5th percentile)</th></tr>" + "".join(body) + "</table>"
    )


def _plot_fold_spread(result: CVResult, path: Path) -> Path:
    """Each fold's Harrell's C per model, with the cross-validated mean and its Nadeau-Bengio interval."""
    models = result.to_dict()["models"]
    figure, axes = plt.subplots(figsize=(6.4, 0.9 * len(models) + 1.6))
    rng = np.random.default_rng(0)  # vertical jitter of the points only
    for k, name in enumerate(models):
        values = [f["metrics"].get("harrell_c", np.nan) for f in result.folds if f["model"] == name]
        y = len(models) - 1 - k
        axes.scatter(
            values,
            y + rng.uniform(-0.15, 0.15, len(values)),
            color="tab:grey",
            s=14,
            label="one outer fold" if k == 0 else None,
        )
        summary = models[name]["metrics"]["harrell_c"]
        low, high = summary["mean_ci"]
        axes.errorbar(
            [summary["mean"]],
            [y],
            xerr=[[summary["mean"] - low], [high - summary["mean"]]],
            fmt="D",
            color="tab:blue",
            capsize=4,
            label="mean, 95% CI (Nadeau-Bengio)" if k == 0 else None,
        )
    axes.axvline(0.5, color="black", linewidth=0.8, linestyle=":")
    axes.set_yticks(range(len(models)), [short_model_label(n) for n in reversed(list(models))])
    axes.set_ylim(-0.6, len(models) - 0.4)
    axes.set_xlabel("Harrell's C of the predicted 12-month event probability (0.5 = chance)")
    axes.set_title("Discrimination in each outer fold")
    axes.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=2, frameon=False)
    return save_figure(figure, path)


def _calibration_table(result: CVResult) -> str:
    table = result.calibration_table()
    if table.empty:
        return "<p class='note'>No horizon could be assessed for calibration.</p>"
    body = []
    for row in table.to_dict("records"):
        body.append(
            f"<tr><td>{escape(short_model_label(row['model']))}</td><td>{escape(months_label(row['horizon']))}</td>"
            f"<td class='num'>{percent(1 - row['observed_efs'])}</td>"
            f"<td class='num'>{percent(1 - row['predicted_efs'])}</td>"
            f"<td class='num'>{number(row['oe_ratio'])}</td><td class='num'>{number(row['slope'])}</td>"
            f"<td class='num'>{percent(row['ici'])}</td><td class='num'>{percent(row['e50'])}</td>"
            f"<td class='num'>{percent(row['e90'])}</td></tr>"
        )
    return (
        "<table><tr><th>model</th><th>horizon</th><th>observed event probability (Kaplan-Meier)</th>"
        "<th>mean predicted</th><th>observed / expected</th><th>calibration slope</th><th>ICI</th><th>E50</th>"
        "<th>E90</th></tr>" + "".join(body) + "</table>"
    )


def _cv_plots(
    result: CVResult,
    records: pd.DataFrame,
    y: np.ndarray,
    internal: Mapping[str, InternalValidation],
    out: Path,
    n_bootstrap: int,
    seed: int,
) -> tuple[dict[str, Path], dict[str, dict[str, pd.DataFrame]]]:
    event, time = check_survival_target(y)
    figures = {"fold_spread": _plot_fold_spread(result, out / "fold_spread.png")}
    for name, by_horizon in result.calibration.items():
        if by_horizon:
            figures[f"calibration_{name}"] = out / f"calibration_{name}.png"
            readable = {months_label(h): calibration for h, calibration in by_horizon.items()}
            plot_calibration(readable, figures[f"calibration_{name}"], f"{short_model_label(name)},")
    oof = result.out_of_fold_predictions()
    horizons = {h: days for h, days in result.settings["horizons"].items() if np.any(event & (time <= days))}
    decision: dict[str, dict[str, pd.DataFrame]] = {h: {} for h in horizons}
    for h, days in horizons.items():
        for name in result.models:
            decision[h][short_model_label(name)] = pooled_decision_curve(
                event, time, 1.0 - oof[name][h], days, n_bootstrap=n_bootstrap, seed=seed
            )
        figures[f"decision_{h}"] = _plot_decision_curves(decision[h], h, out / f"decision_curve_{h}.png")
    for name, table in result.subgroups.items():
        if len(table):
            last = table["horizon"].iloc[-1]
            title = f"{short_model_label(name)}: calibration by subgroup, {months_label(last)}"
            figures[f"subgroups_{name}"] = _plot_subgroups(table, last, out / f"subgroups_{name}.png", title)
    for name, iv in internal.items():
        figures[f"internal_{name}"] = plot_internal_calibration(
            iv, out / f"internal_{name}.png", f"{short_model_label(name)}: optimism-corrected calibration"
        )
    return figures, decision


def cv_report_html(
    result: CVResult,
    records: pd.DataFrame,
    y: np.ndarray,
    figures: Mapping[str, Path],
    *,
    internal: Mapping[str, InternalValidation] | None = None,
    source: str = "data",
    synthetic: bool = False,
) -> str:
    """The cross-validation report as one HTML string (``figures``: name -> PNG, as :func:`write_cv_report` draws)."""
    internal = dict(internal or {})
    settings = result.settings
    spec = result.data.get("feature_spec") or {}
    features = spec.get("features") if spec.get("mode") == "generic" else None
    models = result.to_dict()["models"]
    model_rows = "".join(
        f"<tr><td>{escape(model_label(name))}</td><td>{escape(_tuning_text(settings, name))}</td>"
        f"<td>{escape(parameters_text(block['params']['most_chosen']))}</td></tr>"
        for name, block in models.items()
    )
    repeats, folds = settings["repeats"], settings["folds"]
    horizons = settings["horizons"]
    calibration_keys = [
        (f"calibration_{name}", f"Pooled out-of-fold calibration, {short_model_label(name)}") for name in result.models
    ]
    decision_keys = [(f"decision_{h}", f"Decision curve, event by {months_label(h)}") for h in horizons]
    subgroup_keys = [
        (f"subgroups_{name}", f"Calibration by subgroup, {short_model_label(name)}") for name in result.models
    ]
    parts = _page(
        f"Cross-validation of {_SUBJECT[features is None][1]}: {source}",
        f"Development of {_SUBJECT[features is None][1]}: nested cross-validation",
        f"Data <b>{escape(source)}</b>; created {escape(created_text(result.created))} by carrisk; "
        f"seed {result.seeds['outer_cv']}.",
        synthetic,
        "These numbers estimate how well each modelling procedure, tuning included, predicts for new patients "
        "from the same population.",
        [
            ("data", "Data"),
            ("model", "Models"),
            ("discrimination", "Discrimination"),
            ("calibration", "Calibration"),
            ("decision", "Decision curves"),
            ("subgroups", "Subgroups"),
            ("internal", "Internal validation"),
            ("methods", "Methods"),
            ("tripod", "TRIPOD+AI"),
        ],
    )
    parts += _data_section(records, y, horizons, features)
    parts += [
        "<h2 id='model'>Models and how they were chosen</h2>",
        f"<p>{folds}-fold cross-validation repeated {repeats} times (outer folds stratified on the event), with "
        "every step (feature building, imputation, scaling, tuning) fitted on the training folds only.</p>",
        "<table><tr><th>model</th><th>tuning</th><th>hyper-parameters chosen most often</th></tr>"
        + model_rows
        + "</table>",
        "<h2 id='discrimination'>Discrimination and overall accuracy</h2>",
        "<p>Does the model rank patients correctly? 0.5 is chance, 1 perfect. The Brier score is the mean squared "
        "error of the predicted probability (lower is better). The confidence interval is for the mean over folds "
        "(the expected performance of the procedure trained on this many patients); the spread shows how much "
        "single folds vary and is not a confidence interval.</p>",
        _discrimination_table(result),
        figures_block(figures, [("fold_spread", "Harrell's C in each outer fold")]),
        "<h2 id='calibration'>Calibration of the pooled out-of-fold predictions</h2>",
        "<p>Every patient is predicted once per repeat by the model of the fold that did not see them; those "
        "predictions are pooled over folds and assessed over all patients (mean over repeats). Observed / expected "
        "above 1 means more events than predicted; a slope below 1 means predictions too extreme. ICI, E50 and E90 "
        "are the mean, median and 90th percentile of the absolute difference between predicted and smoothed "
        "observed probabilities.</p>",
        _calibration_table(result),
        figures_block(figures, calibration_keys, wide=True),
        "<h2 id='decision'>Decision curves</h2>",
        "<p>Would acting on the model do more good than harm? For a threshold probability of an event at which "
        "one would act (for example, plan consolidation), net benefit counts correctly identified patients with "
        "an event minus wrongly identified patients weighted by the odds of the threshold. The model is useful "
        "where its curve lies above both 'treat all' and 'treat none'. Out-of-fold predictions, averaged over "
        "repeats.</p>",
        figures_block(figures, decision_keys),
        "<h2 id='subgroups'>Calibration by blinatumomab group and disease burden</h2>",
        _subgroup_table(result.subgroups),
        figures_block(figures, subgroup_keys, wide=True),
    ]
    parts += _internal_section(internal, figures)
    parts += [
        "<h2 id='methods'>Methods and limitations</h2>",
        "<ul>"
        f"<li>Predictions: each model's EFS curve, read at {', '.join(months_label(h) for h in horizons)}; C "
        "statistics use the predicted event probability by 12 months (the model's risk score); Uno's C is "
        f"truncated at {settings['uno_tau'] / DAYS_PER_MONTH:.0f} months ({settings['uno_tau']:,.0f} days).</li>"
        "<li>Interval of a cross-validated mean: Nadeau-Bengio corrected repeated-CV t interval (Bouckaert &amp; "
        "Frank 2004). Calibration bands: 95% bootstrap percentile bands over "
        f"{settings['calibration']['bootstrap']} resamples of patients; decision-curve bands likewise.</li>"
        "<li>Calibration curve: Cox model of the outcome on a restricted cubic spline of log(-log S) (Austin, "
        "Harrell &amp; van Klaveren 2020); decision curves: Vickers et al. 2008 with Kaplan-Meier event rates "
        "among the treated.</li>"
        f"<li>Every number is reproducible with <code>carrisk cv</code> and seed {result.seeds['outer_cv']}; the "
        "JSON next to this report holds every fold.</li>"
        + ("<li>The data are synthetic: these figures say nothing about real patients.</li>" if synthetic else "")
        + "</ul>",
    ]
    parts += _tripod(TRIPOD_AI_DEVELOPMENT_ITEMS)
    return "\n".join(parts)


def _tuning_text(settings: Mapping[str, Any], name: str) -> str:
    size = settings.get("grid_sizes", {}).get(name, 0)
    if not size or size <= 1:
        return (
            "penalties chosen inside the estimator by proper scores"
            if name in ("two_part", "coxnet_cv", "stacked")
            else "none"
        )
    how = "out-of-bag predictions" if name == "rsf" else f"inner {settings['inner_folds']}-fold cross-validation"
    return f"grid of {size} settings searched by {how}, scored by {SCORING_LABELS.get(settings['scoring'], '')}"


def write_cv_report(
    result: CVResult,
    path: str | os.PathLike[str],
    records: pd.DataFrame,
    y: np.ndarray,
    *,
    internal: Mapping[str, InternalValidation] | None = None,
    source: str = "data",
    synthetic: bool = False,
    n_bootstrap: int = 100,
    seed: int = 0,
) -> Path:
    """Write the self-contained cross-validation report atomically (plots drawn into a temporary directory).

    Parameters
    ----------
    result : CVResult
        From :func:`carrisk.cross_validate` (in memory: the out-of-fold predictions are used).
    path : path
        The HTML file to write.
    records, y
        The cross-validated data (for missingness, follow-up and the decision curves).
    internal : mapping of model name -> InternalValidation, optional
        Bootstrap optimism correction, shown where given.
    source : str
        Name of the data shown in the report.
    synthetic : bool
        Whether the data are synthetic (said prominently).
    n_bootstrap, seed
        Resamples (and their seed) for the decision-curve bands.

    Returns
    -------
    Path
    """
    target = Path(path)
    records = records.reset_index(drop=True)
    internal = dict(internal or {})
    with tempfile.TemporaryDirectory(prefix="carrisk-cv-report-") as tmp:
        figures, _ = _cv_plots(result, records, y, internal, Path(tmp), n_bootstrap, seed)
        text = cv_report_html(result, records, y, figures, internal=internal, source=source, synthetic=synthetic)
    atomic_write_text(target, text)
    return target


# ------------------------------------------------------------------------------------------------- training


def _apparent(model: Any, records: pd.DataFrame, y: np.ndarray, horizons: Mapping[str, float]) -> dict[str, Any]:
    """Apparent performance of a trained model on its own training patients, per horizon."""
    event, time = check_survival_target(y)
    surv = model.predict_survival(records, list(horizons.values()))
    rows = {}
    for k, (h, days) in enumerate(horizons.items()):
        if not np.any(event & (time <= days)):
            continue
        large = calibration_in_the_large(event, time, surv[:, k], days)
        rows[h] = {
            "surv": surv[:, k],
            "harrell_c": harrell_c(event, time, 1.0 - surv[:, k]),
            "observed": 1.0 - large["observed_efs"],
            "predicted": 1.0 - large["predicted_efs"],
            "oe_ratio": large["oe_ratio"],
            "slope": calibration_slope(event, time, surv[:, k]),
        }
    return rows


def _plot_apparent_calibration(
    curve: pd.DataFrame, horizon: str, internal: InternalValidation | None, horizon_days: float, path: Path
) -> Path:
    figure, axes = plt.subplots(figsize=(5.2, 4.6))
    corrected = internal.calibration_curve if internal is not None else pd.DataFrame()
    show_corrected = len(corrected) and abs(internal.settings["horizon_days"] - horizon_days) < 1e-9  # type: ignore[union-attr]
    limit = float(np.nanmax(curve[["predicted", "observed", "upper"]].to_numpy())) * 1.05
    axes.fill_between(
        curve["predicted"],
        curve["lower"],
        curve["upper"],
        color="tab:grey",
        alpha=0.2,
        label="95% bootstrap band (apparent)",
    )
    axes.plot(curve["predicted"], curve["observed"], color="tab:grey", linewidth=1.5, label="apparent")
    if show_corrected:
        axes.plot(
            corrected["predicted"], corrected["corrected"], color="tab:blue", linewidth=2, label="optimism-corrected"
        )
        limit = max(limit, float(np.nanmax(corrected["corrected"])) * 1.05)
    axes.plot([0, limit], [0, limit], color="grey", linestyle="--", linewidth=1, label="perfect calibration")
    axes.set(xlim=(0, limit), ylim=(0, limit))
    axes.set_xlabel(f"predicted probability of an event by {months_label(horizon)}")
    axes.set_ylabel(f"observed probability of an event by {months_label(horizon)}")
    axes.set_title(f"Calibration on the training patients, {months_label(horizon)}")
    axes.legend(loc="upper left", fontsize=8)
    return save_figure(figure, path)


def _train_plots(
    model: Any,
    records: pd.DataFrame,
    y: np.ndarray,
    apparent: Mapping[str, Any],
    internal: InternalValidation | None,
    out: Path,
    n_bootstrap: int,
    seed: int,
) -> tuple[dict[str, Path], pd.DataFrame]:
    event, time = check_survival_target(y)
    horizons = {h: days for h, days in DEFAULT_HORIZONS_DAYS.items() if h in apparent}
    figures: dict[str, Path] = {}
    for h, days in horizons.items():
        surv = apparent[h]["surv"]
        try:  # the spline Cox calibration model with Breslow ties: ~1 ms a fit, so the band is cheap
            curve = pooled_calibration(event, time, surv, days, n_bootstrap=n_bootstrap, seed=seed).curve
            figures[f"calibration_{h}"] = _plot_apparent_calibration(
                curve, h, internal, days, out / f"calibration_{h}.png"
            )
        except ValueError:
            pass
        table = decision_curve(event, time, 1.0 - surv, days, n_bootstrap=n_bootstrap, seed=seed)
        figures[f"decision_{h}"] = _plot_decision_curves({"use the model": table}, h, out / f"decision_curve_{h}.png")
    subgroups = pd.DataFrame()
    if all(column in records.columns for column in SUBGROUP_COLUMNS):
        subgroups = subgroup_calibration(records, y, {h: apparent[h]["surv"] for h in horizons}, horizons)
        if len(subgroups):
            last = list(horizons)[-1]
            figures["subgroups"] = _plot_subgroups(
                subgroups, last, out / "subgroups.png", f"Calibration by subgroup, {months_label(last)} (apparent)"
            )
    if internal is not None:
        figures[f"internal_{model.model_name}"] = plot_internal_calibration(internal, out / "internal.png")
    return figures, subgroups


def _rerun_commands(model: Any, source: str) -> tuple[str, str]:
    """The ``carrisk train --internal-bootstrap`` and ``carrisk cv`` commands that compute the honest estimates."""
    spec = getattr(getattr(model, "features", None), "spec", None)
    outcome = (
        f" --time-col {spec.time_col} --event-col {spec.event_col}" if spec is not None and not spec.clinical else ""
    )
    data = f"{source}{outcome}"
    return (
        f"carrisk train {data} --model {model.model_name} --out BUNDLE --report train.html --internal-bootstrap 200",
        f"carrisk cv {data} --models {model.model_name} --out cv/",
    )


def _honest_estimates(
    model: Any,
    apparent: Mapping[str, Any],
    internal: InternalValidation | None,
    cv_metrics: Mapping[str, Any],
    source: str,
) -> str:
    """Apparent, optimism-corrected and cross-validated C and calibration slope side by side, saying what is missing."""
    bootstrap_command, cv_command = _rerun_commands(model, source)
    horizon = "12mo" if "12mo" in apparent else next(iter(apparent), "")
    shown = apparent.get(horizon)
    rows = [
        (
            f"apparent: the training patients themselves ({months_label(horizon)})",
            number(shown["harrell_c"]) if shown else "-",
            number(shown["slope"][0]) if shown else "-",
            "optimistic: the model is scored on the patients it was fitted to",
        )
    ]
    if internal is not None:
        summary = internal.summary.set_index("measure")
        months = internal.settings["horizon_days"] / DAYS_PER_MONTH
        rows.append(
            (
                f"optimism-corrected ({months:.0f} months)",
                f"<b>{number(summary.loc['harrell_c', 'corrected'])}</b>",
                f"<b>{number(summary.loc['calibration_slope', 'corrected'])}</b>",
                f"{internal.settings['n_bootstrap']} bootstrap refits of the whole tuned pipeline "
                "(Harrell, Lee &amp; Mark 1996; see Internal validation)",
            )
        )
    else:
        rows.append(
            (
                "optimism-corrected",
                "not computed",
                "not computed",
                f"computed by <code>{escape(bootstrap_command)}</code>",
            )
        )
    harrell = cv_metrics.get("harrell_c")
    if isinstance(harrell, Mapping) and "mean_ci" in harrell:
        rows.append(
            (
                "cross-validated (recorded with the model)",
                f"<b>{number(harrell['mean'])}</b> "
                f"({number(harrell['mean_ci'][0])} to {number(harrell['mean_ci'][1])})",
                "-",
                "mean over folds of the nested cross-validation, Nadeau-Bengio 95% CI",
            )
        )
    else:
        rows.append(
            (
                "cross-validated",
                "not recorded",
                "-",
                f"computed by <code>{escape(cv_command)}</code> (nested cross-validation, fold spread)",
            )
        )
    body = "".join(
        f"<tr><td>{escape(label)}</td><td class='num'>{c}</td><td class='num'>{slope}</td><td>{how}</td></tr>"
        for label, c, slope, how in rows
    )
    return (
        "<p>How well will the model rank and calibrate in new patients from the same population? The apparent "
        "figures flatter it; the optimism-corrected and cross-validated ones are the honest estimates.</p>"
        "<table><tr><th>estimate</th><th>Harrell's C</th><th>calibration slope</th><th>how</th></tr>"
        + body
        + "</table>"
    )


def train_report_html(
    model: Any,
    records: pd.DataFrame,
    y: np.ndarray,
    figures: Mapping[str, Path],
    *,
    internal: InternalValidation | None = None,
    subgroups: pd.DataFrame | None = None,
    source: str = "data",
    bundle: str | None = None,
    features: Sequence[str] | None = None,
) -> str:
    """The training report as one HTML string (``figures``: name -> PNG, as :func:`write_train_report` draws)."""
    metadata = getattr(model, "metadata", {}) or {}
    synthetic = bool(metadata.get("synthetic_training_data"))
    horizons = dict(DEFAULT_HORIZONS_DAYS)
    apparent = _apparent(model, records, y, horizons)
    tuning = metadata.get("tuning") or {}
    seeds = metadata.get("seeds") or {}
    manifest = getattr(model, "manifest_", None) or {}
    model_rows = [
        ("model", model_label(model.model_name)),
        ("how the hyper-parameters were chosen", tuning_text(tuning)),
        ("hyper-parameters", parameters_text(model.params)),
        (
            "intervals of each prediction",
            " ".join(filter(None, [metadata.get("interval_method", "not recorded"), metadata.get("interval_warning")])),
        ),
        ("seeds", ", ".join(f"{k} {v}" for k, v in seeds.items()) or "not recorded"),
        ("trained on synthetic data", "yes" if synthetic else "no"),
        ("saved bundle", bundle or "not saved"),
        ("model file SHA-256", (manifest.get("payload") or {}).get("sha256") or "see the bundle's manifest.json"),
    ]
    apparent_rows = "".join(
        f"<tr><td>{escape(months_label(h))}</td><td class='num'>{number(row['harrell_c'])}</td>"
        f"<td class='num'>{percent(row['observed'])}</td><td class='num'>{percent(row['predicted'])}</td>"
        f"<td class='num'>{number(row['oe_ratio'])}</td>"
        f"<td class='num'>{number(row['slope'][0])} ({number(row['slope'][1])} to {number(row['slope'][2])})</td></tr>"
        for h, row in apparent.items()
    )
    cv_metrics = metadata.get("cv_metrics") or {}
    cv_rows = "".join(
        f"<tr><td>{escape(label)}</td><td class='num'>{_format(cv_metrics[m]['mean'], d)}</td>"
        f"<td class='num'>{_format(cv_metrics[m]['mean_ci'][0], d)} to {_format(cv_metrics[m]['mean_ci'][1], d)}"
        "</td></tr>"
        for m, label, d in DISCRIMINATION_METRICS
        if isinstance(cv_metrics.get(m), Mapping) and "mean_ci" in cv_metrics[m]
    )
    cv_text = (
        "<p>Cross-validated performance recorded with the model (mean and Nadeau-Bengio 95% CI):</p><table>"
        "<tr><th>measure</th><th>mean</th><th>95% CI of the mean</th></tr>" + cv_rows + "</table>"
        if cv_rows
        else ""
    )
    calibration_keys = [(f"calibration_{h}", f"Calibration at {months_label(h)}") for h in horizons]
    decision_keys = [(f"decision_{h}", f"Decision curve, event by {months_label(h)}") for h in horizons]
    subgroup_tables = {model.model_name: subgroups} if subgroups is not None and len(subgroups) else {}
    parts = _page(
        f"Training report of {_SUBJECT[features is None][0]}: {source}",
        f"Development of {_SUBJECT[features is None][0]}: the trained model",
        f"Data <b>{escape(source)}</b>; created "
        f"{escape(created_text(datetime.now(UTC).isoformat(timespec='seconds')))} by carrisk.",
        synthetic,
        "Figures computed on the training patients themselves are apparent (optimistic); the optimism-corrected "
        "and cross-validated figures estimate performance in new patients.",
        [
            ("data", "Data"),
            ("model", "Model"),
            ("discrimination", "Discrimination"),
            ("calibration", "Calibration"),
            ("decision", "Decision curves"),
            ("subgroups", "Subgroups"),
            ("internal", "Internal validation"),
            ("methods", "Methods"),
            ("tripod", "TRIPOD+AI"),
        ],
    )
    parts += _data_section(records, y, horizons, features)
    parts += [
        "<h2 id='model'>Model and how it was chosen</h2>",
        "<table>" + "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in model_rows) + "</table>",
        "<h2 id='discrimination'>Discrimination</h2>",
        "<p>Does the model rank patients correctly? 0.5 is chance, 1 perfect.</p>",
        _honest_estimates(model, apparent, internal, cv_metrics, source),
        cv_text,
        "<h2 id='calibration'>Calibration on the training patients (apparent)</h2>",
        "<p>Apparent figures: the model scored on the patients it was fitted to, so they flatter it. Observed is "
        "the Kaplan-Meier event probability; observed / expected above 1 means more events than predicted; a "
        "slope below 1 means predictions too extreme (Wald 95% interval).</p>",
        "<table><tr><th>horizon</th><th>Harrell's C (apparent)</th><th>observed event probability</th>"
        "<th>mean predicted</th><th>observed / expected</th><th>calibration slope (95% CI)</th></tr>"
        + apparent_rows
        + "</table>",
        figures_block(figures, calibration_keys),
        "<h2 id='decision'>Decision curves (apparent)</h2>",
        "<p>Net benefit of acting on the model's predicted event probability against treating everyone or "
        "nobody, on the training patients (optimistic; see the cross-validation report for out-of-fold "
        "curves).</p>",
        figures_block(figures, decision_keys),
        "<h2 id='subgroups'>Calibration by blinatumomab group and disease burden (apparent)</h2>",
        _subgroup_table(subgroup_tables),
        figures_block(figures, [("subgroups", "Calibration by subgroup")], wide=True),
    ]
    parts += _internal_section({model.model_name: internal} if internal is not None else {}, figures)
    parts += [
        "<h2 id='methods'>Methods and limitations</h2>",
        "<ul>"
        "<li>Training: hyper-parameters tuned on all the patients as recorded above, then the model refitted on "
        "all of them.</li>"
        f"<li>Predictions: the model's {'EFS' if features is None else 'survival'} curve for each training patient, "
        "read at "
        f"{', '.join(months_label(h) for h in horizons)}; Harrell's C uses the predicted event probability by "
        "that horizon.</li>"
        "<li>Calibration curve: Cox model of the outcome on a restricted cubic spline of log(-log S) (Austin, "
        "Harrell &amp; van Klaveren 2020; Breslow ties) with a 95% bootstrap band (patients resampled, "
        "predictions and spline knots held fixed); decision curves: "
        "Vickers et al. 2008 with Kaplan-Meier event rates among the treated.</li>"
        "<li>Optimism correction: Harrell, Lee &amp; Mark 1996; the corrected calibration curve follows rms "
        "<code>calibrate</code> (method boot): the apparent curve minus the mean over refits of each refit's "
        "curve on its own resample minus its curve on the original patients.</li>"
        + ("<li>The data are synthetic: these figures say nothing about real patients.</li>" if synthetic else "")
        + "</ul>",
    ]
    parts += _tripod(TRIPOD_AI_DEVELOPMENT_ITEMS)
    return "\n".join(parts)


def write_train_report(
    model: Any,
    path: str | os.PathLike[str],
    records: pd.DataFrame,
    y: np.ndarray,
    *,
    internal: InternalValidation | None = None,
    source: str = "data",
    bundle: str | None = None,
    features: Sequence[str] | None = None,
    n_bootstrap: int = 100,
    seed: int = 0,
) -> Path:
    """Write the self-contained report of a trained model atomically.

    Parameters
    ----------
    model : EFSModel
        The trained model (:func:`carrisk.fit_efs_model`).
    path : path
        The HTML file to write.
    records, y
        Its training data.
    internal : InternalValidation, optional
        Bootstrap optimism correction of the same model and data (shown where given).
    source, bundle : str
        Names of the data and of the saved bundle shown in the report.
    features : sequence of str, optional
        A generic survival table's covariates (``FeatureSpec.describe()["features"]``); None for carrisk records.
    n_bootstrap, seed
        Resamples (and their seed) for the calibration and decision-curve bands.

    Returns
    -------
    Path
    """
    target = Path(path)
    records = records.reset_index(drop=True)
    with tempfile.TemporaryDirectory(prefix="carrisk-train-report-") as tmp:
        apparent = _apparent(model, records, y, DEFAULT_HORIZONS_DAYS)
        figures, subgroups = _train_plots(model, records, y, apparent, internal, Path(tmp), n_bootstrap, seed)
        text = train_report_html(
            model,
            records,
            y,
            figures,
            internal=internal,
            subgroups=subgroups,
            source=source,
            bundle=bundle,
            features=features,
        )
    atomic_write_text(target, text)
    return target
