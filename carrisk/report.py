"""A self-contained HTML report of an external validation, readable by a clinician.

One file, plots embedded as base64 PNG, no scripts and no network access: it can be e-mailed, archived or
opened offline. Numbers are rounded by kind (probabilities as percentages with one decimal, concordance and
slopes with two decimals, Brier scores with three) and variables carry their clinical names. A TRIPOD+AI
checklist table (Collins et al., BMJ 2024;385:e078378) states which reporting items the report covers and in
which section; items that only the authors of a study can report are listed as such.
"""

from __future__ import annotations

import base64
import html
import os
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from carrisk._io import atomic_write_text
from carrisk.units import DAYS_PER_MONTH

if TYPE_CHECKING:
    from carrisk.evaluate import ExternalValidation, ModelComparison

__all__ = [
    "CLINICAL_NAMES",
    "LEVEL_NAMES",
    "MODEL_LABELS",
    "PARAMETER_LABELS",
    "RECORD_NAMES",
    "SCORING_LABELS",
    "STYLE",
    "TRIPOD_AI_ITEMS",
    "comparison_report_html",
    "count",
    "created_text",
    "difference_text",
    "escape",
    "evaluation_report_html",
    "figures_block",
    "image_figure",
    "missing_table",
    "model_label",
    "months_label",
    "number",
    "parameters_text",
    "percent",
    "short_model_label",
    "tripod_table",
    "tuning_text",
    "write_comparison_report",
    "write_evaluation_report",
]

#: Clinical names of the model's variables (``ClinicalFeatures.categorize`` columns).
CLINICAL_NAMES = {
    "blina_status": "Prior blinatumomab",
    "disease_burden": "Disease burden",
    "marrow_blasts_log10": "Marrow blasts, log10(% + 0.01)",
    "cd19": "CD19 expression",
    "kmt2a": "KMT2A rearrangement",
    "prior_hsct_any": "Prior allogeneic transplant",
    "prior_hsct_count": "Number of prior transplants",
    "months_since_last_hsct": "Months since last transplant",
    "age_years": "Age (years)",
    "sex": "Sex",
    "car_product": "CAR T-cell product",
    "prior_relapses": "Number of prior relapses",
    "cns_status": "CNS status",
    "down_syndrome": "Down syndrome",
    "prior_inotuzumab": "Prior inotuzumab",
}
RECORD_NAMES = {
    "age_years": "Age",
    "blina_exposed": "Prior blinatumomab",
    "sex": "Sex",
    "car_product": "CAR T-cell product",
    "blina_response": "Response to blinatumomab",
    "marrow_blasts_pct": "Marrow blasts (%)",
    "cns_status": "CNS status",
    "extramedullary_disease": "Extramedullary disease",
    "cd19_expression": "CD19 expression",
    "kmt2a_status": "KMT2A status",
    "cytogenetics": "Cytogenetics",
    "prior_hsct_count": "Number of prior transplants",
    "months_since_last_hsct": "Months since last transplant",
    "prior_relapses": "Number of prior relapses",
    "down_syndrome": "Down syndrome",
    "prior_inotuzumab": "Prior inotuzumab",
}

#: Clinical names of the levels of categorical variables (as in the calculator), for the case-mix table.
LEVEL_NAMES = {
    "exposed_unknown": "exposed, response unknown",
    "chop_penn": "CHOP/Penn (CTL119, huCART19)",
    "nci_cd28": "NCI CD19-28z",
    "scri_plat02": "SCRI PLAT-02",
    "dim_or_partial": "dim or partial",
    "low_mrd_positive": "low, MRD-positive",
    "low_mrd_unknown": "low (M1), MRD unknown",
    "undetectable": "MRD-negative",
    "not_rearranged": "not rearranged",
    "not_tested": "not tested",
    "F": "female",
    "M": "male",
    "0": "no",
    "0.0": "no",
    "False": "no",
    "1": "yes",
    "1.0": "yes",
    "True": "yes",
}

#: Readable names of the models.
MODEL_LABELS = {
    "average": "Average of the elastic-net Cox model and the two-part model (fixed equal weights)",
    "two_part": "Two-part model (day-28 remission, then event-free survival in remission)",
    "coxnet_cv": "Elastic-net Cox model (penalty chosen by internal cross-validation)",
    "stacked": "Stacked ensemble of survival models",
    "rsf": "Random survival forest",
    "coxnet": "Elastic-net Cox model",
    "coxph": "Cox proportional hazards model",
    "gbsa": "Gradient-boosted survival model",
}
#: Readable names of the hyper-parameters (``model__`` prefixes are dropped first; a member's name precedes ``__``).
PARAMETER_LABELS = {
    "alpha_ratio": "penalty, as a fraction of the smallest penalty that removes every variable",
    "l1_ratio": "lasso share of the elastic-net penalty",
    "alpha": "penalty",
    "cr_C": "remission model: inverse penalty (C)",
    "post_alpha": "model after remission: penalty",
    "min_samples_leaf": "fewest patients in a leaf",
    "max_features": "variables tried at each split",
    "n_estimators": "trees",
    "max_depth": "deepest tree",
    "learning_rate": "learning rate",
    "weights": "weights of the member models",
}
#: Readable names of the tuning criteria.
SCORING_LABELS = {
    "harrell": "Harrell's C",
    "uno": "Uno's C",
    "ibs": "integrated Brier score",
    "deviance": "Cox partial likelihood (deviance)",
}
#: Readable names of the entries of a bundle's tuning record (other than ``method``).
_TUNING_KEYS = {
    "folds": "inner folds",
    "at_grid_edge": "penalties left at the edge of their search grid",
}
#: Section titles, for the "where" column of the TRIPOD+AI table.
SECTION_TITLES = {
    "top": "Title",
    "data": "Data",
    "model": "Model",
    "discrimination": "Discrimination",
    "calibration": "Calibration",
    "decision": "Decision curves",
    "subgroups": "Subgroups",
    "casemix": "Case-mix",
    "internal": "Internal validation",
    "methods": "Methods",
}


def model_label(name: str) -> str:
    """A model's readable name ("average" -> "Average of the elastic-net Cox model and ..."); unknown names as given."""
    return MODEL_LABELS.get(name, name)


def short_model_label(name: str) -> str:
    """A model's readable name without its parenthesised detail ("Elastic-net Cox model")."""
    return model_label(name).split(" (")[0]


def _value_text(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "no", None: "none"}[value]
    if isinstance(value, float | np.floating):
        return f"{float(value):.3g}"
    if isinstance(value, list | tuple):
        return " / ".join(_value_text(item) for item in value)
    return str(value)


def _parameter_label(key: str) -> str:
    name = str(key).removeprefix("model__")
    member, _, own = name.rpartition("__")
    label = PARAMETER_LABELS.get(own, own)
    return f"{short_model_label(member)}: {label}" if member else label


def parameters_text(params: Mapping[str, Any] | None) -> str:
    """Hyper-parameters in words, numbers to 3 significant digits ("Elastic-net Cox model: penalty = 1.19")."""
    if not params:
        return "none tuned"
    return "; ".join(f"{_parameter_label(key)} = {_value_text(value)}" for key, value in params.items())


def tuning_text(tuning: Mapping[str, Any] | None) -> str:
    """A bundle's tuning record in words: its method, then the other entries ("penalties left at ...: none")."""
    if not tuning:
        return "not recorded"
    parts = []
    for key, value in tuning.items():
        if key == "method":
            parts.append(str(value))
            continue
        if key == "at_grid_edge":
            value = ", ".join(_parameter_label(name) for name in value) or "none"
        elif key == "scoring":
            parts.append(f"scored by {SCORING_LABELS.get(str(value), value)}")
            continue
        else:
            value = _value_text(value)
        parts.append(f"{_TUNING_KEYS.get(key, str(key).replace('_', ' '))}: {value}")
    return "; ".join(parts)


def created_text(created: str) -> str:
    """An ISO timestamp as a date a reader takes in at once ("7 December 2026, 05:08 UTC"); other text as given."""
    try:
        moment = datetime.fromisoformat(str(created))
    except ValueError:
        return str(created)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    zone = " UTC" if moment.tzinfo is not None else ""
    return f"{moment.day} {moment:%B %Y, %H:%M}{zone}"


def count(value: Any) -> str:
    """A count with thousands separators ("1,000")."""
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return str(value)


#: (item, topic, status, section id or explanation).
TRIPOD_AI_ITEMS = (
    ("1", "Title: evaluation of a prediction model, population, outcome", "covered", "top"),
    ("4", "Objectives: evaluation (external validation) of an existing model", "covered", "top"),
    ("5a-b", "Data sources; dates of accrual and end of follow-up", "partly", "data"),
    ("6a-c", "Setting, eligibility, treatments", "authors", "to be reported by the study authors"),
    ("8a", "Outcome: event-free survival, how and when assessed", "covered", "data"),
    ("9a-b", "Predictors and how they were measured", "covered", "casemix"),
    ("10", "Sample size: events available for evaluation", "covered", "data"),
    ("11", "Missing data and how it was handled", "covered", "data"),
    ("12c", "Model type, building and tuning of hyper-parameters", "covered", "model"),
    ("12e", "Performance measures and their intervals", "covered", "methods"),
    ("12f", "Model updating", "partly", "model"),
    ("12g", "How predictions were calculated for evaluation", "covered", "methods"),
    ("14", "Fairness: performance in subgroups", "partly", "subgroups"),
    ("15", "Model output and decision thresholds", "covered", "decision"),
    ("16", "Differences between training and evaluation data", "covered", "casemix"),
    ("20b-c", "Participant characteristics; comparison with the development data", "covered", "casemix"),
    ("23a", "Model performance with confidence intervals", "covered", "discrimination"),
    ("23b", "Performance in key subgroups", "covered", "subgroups"),
    ("24", "Results of model updating", "partly", "model"),
    ("26", "Limitations (synthetic data, intervals)", "covered", "methods"),
    ("17-19, 21-22", "Ethics, funding, protocol, data and code sharing, patient involvement", "authors",
     "to be reported by the study authors"),
)  # fmt: skip

STYLE = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1050px;margin:24px auto;padding:0 16px;
color:#1d2433;line-height:1.45}
h1{font-size:1.6em;margin-bottom:4px}h2{border-bottom:2px solid #dde3ee;padding-bottom:4px;margin-top:34px}
.warning{background:#fff4e5;border-left:5px solid #e08a00;padding:10px 14px;margin:14px 0}
.note{color:#4a5568;font-size:.92em}
table{border-collapse:collapse;margin:10px 0 18px;font-size:.93em}
th,td{border:1px solid #d5dbe6;padding:5px 9px;text-align:left;vertical-align:top}
th{background:#f0f3f8}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.flag td{background:#fff7e0}
.figures{display:flex;flex-wrap:wrap;gap:18px}.figures figure{margin:0;flex:1 1 440px}
.figures img{max-width:100%;height:auto;border:1px solid #e2e8f0}
.figures.wide figure{flex:1 1 100%}
figcaption{font-size:.88em;color:#4a5568}
.status-covered{color:#1f7a3a;font-weight:600}.status-partly{color:#a05a00;font-weight:600}
.status-authors{color:#4a5568}
nav a{margin-right:12px}
"""


def escape(value: Any) -> str:
    """``value`` as HTML-escaped text."""
    return html.escape(str(value))


def _no_negative_zero(text: str) -> str:
    """ "-0.0" as "0.0": a value that rounds to zero has no sign."""
    return text[1:] if text.startswith("-") and not text.strip("-0.%") else text


def _signed_points(value: float) -> str:
    """A difference of probabilities in percentage points with its sign ("+7.6"; "0.0" when it rounds to zero)."""
    text = f"{100 * value:+.1f}"
    return "0.0" if float(text) == 0 else text


def percent(value: float) -> str:
    """A probability as a percentage with one decimal ("-" when missing; never "-0.0%")."""
    return "-" if value is None or not np.isfinite(value) else _no_negative_zero(f"{100 * value:.1f}%")


def number(value: float, digits: int = 2) -> str:
    """A number with ``digits`` decimals ("-" when missing; never "-0.00")."""
    return "-" if value is None or not np.isfinite(value) else _no_negative_zero(f"{value:.{digits}f}")


#: How each measure is shown: formatter of a value.
_FORMAT = {
    "harrell_c": number,
    "uno_c": number,
    "auc": number,
    "brier": lambda v: number(v, 3),
    "brier_null": lambda v: number(v, 3),
    "ipa": percent,
    "observed_event_prob": percent,
    "predicted_event_prob": percent,
    "citl": lambda v: "-" if not np.isfinite(v) else f"{_signed_points(v)} points",
    "oe_ratio": number,
    "calibration_slope": number,
    "ici": percent,
    "e50": percent,
    "e90": percent,
    "membership_c": number,
}


CALIBRATION_MEASURES = [
    "observed_event_prob",
    "predicted_event_prob",
    "citl",
    "oe_ratio",
    "calibration_slope",
    "ici",
    "e50",
    "e90",
]


def months_label(name: str) -> str:
    """A horizon name as words: "6mo" -> "6 months"."""
    return name.replace("mo", " months") if name else ""


def _measure_table(summary: pd.DataFrame, measures: list[str]) -> str:
    rows = summary[summary["measure"].isin(measures)].copy()
    rows["order"] = rows["measure"].map({m: i for i, m in enumerate(measures)})
    rows = rows.sort_values(["order", "horizon_days"], na_position="first")
    body = []
    for row in rows.to_dict("records"):
        fmt = _FORMAT.get(row["measure"], number)
        interval = f"{fmt(row['lower'])} to {fmt(row['upper'])}" if np.isfinite(row["lower"]) else "-"
        body.append(
            f"<tr><td>{escape(row['label'])}</td><td>{escape(months_label(row['horizon']))}</td>"
            f"<td class='num'>{escape(fmt(row['estimate']))}</td><td class='num'>{escape(interval)}</td>"
            f"<td class='note'>{escape(row['interval'])}</td></tr>"
        )
    return (
        "<table><tr><th>measure</th><th>horizon</th><th>estimate</th><th>95% interval</th><th>interval method</th>"
        "</tr>" + "".join(body) + "</table>"
    )


def image_figure(path: Path, caption: str) -> str:
    """A PNG file embedded as a data URI in a captioned figure."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return (
        f"<figure><img src='data:image/png;base64,{data}' alt='{escape(caption)}'>"
        f"<figcaption>{escape(caption)}</figcaption></figure>"
    )


def figures_block(figures: Mapping[str, Path], keys: list[tuple[str, str]], wide: bool = False) -> str:
    """The figures named by ``keys`` ((name, caption) pairs) that ``figures`` has, side by side (or full width)."""
    items = [image_figure(figures[key], caption) for key, caption in keys if key in figures]
    kind = "figures wide" if wide else "figures"
    return f"<div class='{kind}'>" + "".join(items) + "</div>" if items else ""


def _case_mix_table(case_mix: pd.DataFrame | None) -> str:
    if case_mix is None or case_mix.empty:
        return "<p class='note'>The model bundle does not record its training case-mix, so no table can be shown.</p>"
    body = []
    for row in case_mix.to_dict("records"):
        numeric_mean = row["level"] == "mean"
        fmt = (lambda v: number(v, 1)) if numeric_mean else percent
        flag = " class='flag'" if abs(row["standardized_difference"]) > 0.1 else ""
        raw = str(row["level"])
        level = raw if raw in ("mean", "missing") else LEVEL_NAMES.get(raw, raw.replace("_", " "))
        body.append(
            f"<tr{flag}><td>{escape(CLINICAL_NAMES.get(row['variable'], row['variable']))}</td><td>{escape(level)}</td>"
            f"<td class='num'>{fmt(row['training'])}</td><td class='num'>{fmt(row['new'])}</td>"
            f"<td class='num'>{number(row['standardized_difference'])}</td></tr>"
        )
    return (
        "<table><tr><th>variable</th><th>level</th><th>training patients</th><th>this cohort</th>"
        "<th>standardized difference</th></tr>" + "".join(body) + "</table>"
        "<p class='note'>Highlighted: |standardized difference| &gt; 0.1, the usual flag of a meaningful "
        "imbalance.</p>"
    )


def _subgroup_table(subgroups: pd.DataFrame) -> str:
    if subgroups.empty:
        return "<p class='note'>No subgroup had at least 10 patients.</p>"
    body = []
    for row in subgroups.to_dict("records"):
        body.append(
            f"<tr><td>{escape(row['label'])}</td><td>{escape(months_label(row['horizon']))}</td>"
            f"<td class='num'>{row['n']}</td><td class='num'>{row['events']}</td>"
            f"<td class='num'>{percent(row['observed'])} "
            f"({percent(row['observed_lower'])} to {percent(row['observed_upper'])})</td>"
            f"<td class='num'>{percent(row['predicted'])}</td><td class='num'>{number(row['oe_ratio'])}</td></tr>"
        )
    return (
        "<table><tr><th>subgroup</th><th>horizon</th><th>patients</th><th>events by horizon</th>"
        "<th>observed event probability (95% CI)</th><th>mean predicted</th><th>observed / expected</th></tr>"
        + "".join(body)
        + "</table>"
    )


#: Columns that are blank by design for some patients.
STRUCTURAL_BLANKS = {
    "blina_response": "blank by design for patients never given blinatumomab",
    "months_since_last_hsct": "blank by design for patients without a transplant",
}


def missing_table(missing: Mapping[str, float], names: Mapping[str, str] = RECORD_NAMES) -> str:
    """Share missing per column, for the columns in ``names`` (shown by their clinical names)."""
    body = "".join(
        f"<tr><td>{escape(names.get(name, name))}</td><td class='num'>{percent(share)}</td>"
        f"<td class='note'>{escape(STRUCTURAL_BLANKS.get(name, ''))}</td></tr>"
        for name, share in missing.items()
        if name in names
    )
    return "<table><tr><th>record column</th><th>missing</th><th></th></tr>" + body + "</table>"


def tripod_table(
    items: tuple[tuple[str, str, str, str], ...] = TRIPOD_AI_ITEMS,
    anchors: Mapping[str, tuple[str, str]] | None = None,
) -> str:
    """The TRIPOD+AI checklist: item, topic, whether the report covers it, and the section (an in-page link).

    ``anchors`` maps a section key of ``items`` to the (anchor id, title) of its section in the page; by default
    the key is the id and :data:`SECTION_TITLES` gives the title.
    """
    body = []
    for item, topic, status, where in items:
        anchor, title = (anchors or {}).get(where, (where, SECTION_TITLES.get(where, where.capitalize())))
        place = f"<a href='#{anchor}'>{escape(title)}</a>" if status != "authors" else escape(where)
        text = {"covered": "covered", "partly": "partly covered", "authors": "not in this report"}[status]
        body.append(
            f"<tr><td>{escape(item)}</td><td>{escape(topic)}</td><td class='status-{status}'>{text}</td>"
            f"<td>{place}</td></tr>"
        )
    return "<table><tr><th>item</th><th>topic</th><th>status</th><th>where</th></tr>" + "".join(body) + "</table>"


def _days_text(days: float) -> str:
    """A time in days as months with the days in brackets ("34 months (1,034 days)")."""
    return f"{days / DAYS_PER_MONTH:.0f} months ({days:,.0f} days)"


def _p_value(value: Any) -> str:
    if value is None or not np.isfinite(value):
        return "-"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def _closed_test_table(rows: list[Mapping[str, Any]]) -> str:
    """The closed test of the update: each level against the revision, and which one was chosen."""
    body = "".join(
        f"<tr><td>{escape(row.get('label', row.get('level')))}</td>"
        f"<td class='num'>{number(float(row.get('lr_statistic', float('nan'))), 1)}</td>"
        f"<td class='num'>{row.get('df', '-')}</td><td class='num'>{_p_value(row.get('p_value'))}</td>"
        f"<td>{'<b>chosen</b>' if row.get('chosen') else ''}</td></tr>"
        for row in rows
    )
    return (
        "<p class='note'>Closed test (Vergouwe et al. 2017): each level of updating against the most extensive "
        "one (revision) by a likelihood-ratio test; the least extensive level not significantly worse is chosen."
        "</p><table><tr><th>level of updating</th><th>likelihood ratio against revision</th><th>df</th>"
        "<th>p-value</th><th></th></tr>" + body + "</table>"
    )


def _model_section(info: Mapping[str, Any]) -> str:
    model = info.get("model", {}) or {}
    tuning = model.get("tuning") or {}
    params = model.get("hyperparameters") or {}
    update = model.get("update")
    name = str(model.get("model"))
    if update and name.endswith(")") and " (" in name:
        name = name.split(" (")[0]  # "average (revision)": the update is described below
    rows = [
        ("model", model_label(name)),
        ("hyper-parameters", parameters_text(params)),
        ("how they were chosen", tuning_text(tuning)),
        ("training patients (events)", f"{count(model.get('training_rows'))} ({count(model.get('training_events'))})"),
        ("trained on synthetic data", "yes" if model.get("synthetic_training_data") else "no / not recorded"),
        ("model file SHA-256", model.get("payload_sha256") or "not recorded"),
    ]
    closed_test = ""
    if update:
        cohort = update.get("update_cohort") or {}
        rows += [
            ("updated at a new centre", f"{update.get('description')}, chosen by {update.get('chosen_by')}"),
            ("baseline hazard multiplier", number(update.get("baseline_hazard_multiplier", float("nan")))),
            (
                "slope of the updated risk score on the original's",
                number(update.get("risk_score_slope", float("nan"))),
            ),
            ("update cohort", f"{count(cohort.get('rows'))} patients"),
            ("parent model SHA-256", update.get("parent_payload_sha256") or "not recorded"),
        ]
        if update.get("closed_test"):
            closed_test = _closed_test_table(update["closed_test"])
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    return "<table>" + body + "</table>" + closed_test


def _heading(tag: str, anchor: str, title: str) -> str:
    return f"<{tag} id='{anchor}'>{title}</{tag}>"


def _data_section(info: Mapping[str, Any], *, tag: str = "h2", anchor: str = "data") -> list[str]:
    from carrisk.evaluate import outcome_words

    words = outcome_words(info)
    events = ", ".join(f"{n} by {months_label(h)}" for h, n in info["events_by_horizon"].items())
    return [
        _heading(tag, anchor, "Data"),
        f"<p>{count(info['n'])} patients, {count(info['events'])} with an {escape(words['event'])} "
        f"during follow-up ({events}); longest follow-up {info['max_followup_days'] / DAYS_PER_MONTH:.0f} months.</p>",
        "<p>Share of missing values in the record columns (the model imputes them with the training median or "
        "encodes them as 'unknown'):</p>",
        missing_table(info.get("missing_share", {})),
    ]


def _methods_section(
    info: Mapping[str, Any], *, tag: str = "h2", anchor: str = "methods", extra: str = ""
) -> list[str]:
    from carrisk.evaluate import outcome_words

    horizons = list(info["horizons_days"])
    survival = outcome_words(info)["survival"]
    notes = "".join(f"<li>{escape(note)}</li>" for note in info.get("notes", []))
    return [
        _heading(tag, anchor, "Methods and limitations"),
        "<ul>"
        f"<li>Predictions: the model's {survival} curve for each patient, read at "
        f"{', '.join(months_label(h) for h in horizons)}; "
        f"C statistics use the predicted event probability by {months_label(horizons[-1])}; Uno's C is truncated at "
        f"{_days_text(info['uno_tau_days'])}.</li>"
        f"<li>Intervals: 95% percentile intervals over {info['n_bootstrap']} bootstrap resamples of the patients "
        f"({info['n_bootstrap_calibration']} for the calibration band and ICI/E50/E90) with the model held "
        "fixed; they describe the sampling variation of the measure in a cohort like this one, not the "
        "uncertainty of the model's training. The calibration slope's interval is a Wald interval.</li>"
        + extra
        + "<li>Calibration curve: Cox model of the outcome on a restricted cubic spline of log(-log S) "
        "(Austin, Harrell &amp; van Klaveren 2020); IPA: Kattan &amp; Gerds 2018; decision curves: Vickers et "
        "al. 2008 with Kaplan-Meier event rates among the treated.</li>"
        f"<li>Seed {info['seed']}; every number is reproducible with <code>carrisk evaluate</code>.</li>"
        + notes
        + "</ul>",
    ]


def _evaluation_sections(
    result: ExternalValidation, figures: Mapping[str, Path], *, tag: str = "h2", prefix: str = ""
) -> dict[str, list[str]]:
    """The model's own sections of an evaluation report (model to case-mix) by key; anchors start with ``prefix``."""
    from carrisk.evaluate import outcome_words

    info = result.info
    horizons = list(info["horizons_days"])
    summary = result.summary
    survival = outcome_words(info)["survival"]
    calibration_figures = [(f"calibration_{h}_plot", f"Calibration at {months_label(h)}") for h in horizons]
    decision_figures = [(f"decision_curve_{h}_plot", f"Decision curve, event by {months_label(h)}") for h in horizons]
    subgroup_figures = [(f"subgroups_{h}_plot", f"Calibration by subgroup, {months_label(h)}") for h in horizons]
    membership = summary[summary["measure"] == "membership_c"]
    membership_text = (
        f"<p>Membership-model C: <b>{number(float(membership['estimate'].iloc[0]))}</b> "
        f"({escape(membership['interval'].iloc[0])}). 0.5 means the two populations cannot be told apart by the "
        "model's variables; values near 1 mean they barely overlap, so the evaluation is about transportability "
        "to a different population.</p>"
        if not membership.empty
        else ""
    )
    return {
        "model": [_heading(tag, f"{prefix}model", "Model and how it was chosen"), _model_section(info)],
        "discrimination": [
            _heading(tag, f"{prefix}discrimination", "Discrimination and overall accuracy"),
            "<p>Does the model rank patients correctly? 0.5 is chance, 1 perfect. The Brier score is the mean squared "
            "error of the predicted probability (lower is better); the index of prediction accuracy (IPA) is the "
            f"improvement in Brier score over giving every patient the cohort's average {survival} (0 = no better)."
            "</p>",
            _measure_table(summary, ["harrell_c", "uno_c", "auc", "brier", "brier_null", "ipa"]),
        ],
        "calibration": [
            _heading(tag, f"{prefix}calibration", "Calibration"),
            "<p>Do predicted probabilities match what happened? Calibration-in-the-large compares the observed "
            "event probability (Kaplan-Meier) with the mean predicted one: a positive difference means the model is "
            "too optimistic. The slope is 1 when predictions are neither too extreme (&lt; 1) nor too modest "
            "(&gt; 1); ICI, E50 and E90 are the mean, median and 90th percentile of the absolute difference between "
            "predicted and smoothed observed probabilities.</p>",
            _measure_table(summary, CALIBRATION_MEASURES),
            figures_block(
                figures, [*calibration_figures, ("observed_vs_predicted_plot", f"Observed and predicted {survival}")]
            ),
        ],
        "decision": [
            _heading(tag, f"{prefix}decision", "Decision curves"),
            "<p>Would acting on the model do more good than harm? For a threshold probability of an event at which "
            "one would act (for example, plan consolidation), net benefit counts correctly identified patients "
            "with an event minus wrongly identified patients weighted by the odds of the threshold. The model is "
            "useful where its curve lies above both 'treat all' and 'treat none'.</p>",
            figures_block(figures, decision_figures),
        ],
        "subgroups": [
            _heading(
                tag,
                f"{prefix}subgroups",
                "Calibration by subgroup"
                if info.get("generic")
                else "Calibration by blinatumomab group and disease burden",
            ),
            "<p class='note'>A generic-mode model has no predefined subgroups.</p>"
            if info.get("generic") and result.subgroups.empty
            else _subgroup_table(result.subgroups),
            figures_block(figures, subgroup_figures, wide=True),
        ],
        "casemix": [
            _heading(tag, f"{prefix}casemix", "Case-mix: this cohort against the training patients"),
            membership_text,
            _case_mix_table(result.case_mix),
        ],
    }


def _report_head(title: str) -> list[str]:
    return [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{title}</title>",
        f"<style>{STYLE}</style></head><body>",
    ]


def _research_warning(synthetic: bool, what: str) -> str:
    return (
        "<div class='warning'><b>Research tool, not for clinical decisions.</b> "
        + ("The model was trained on <b>synthetic</b> patients. " if synthetic else "")
        + f"{what}</div>"
    )


def evaluation_report_html(result: ExternalValidation, figures: Mapping[str, Path]) -> str:
    """The report as one HTML string; ``figures`` maps plot names (as ``ExternalValidation.plot`` returns) to PNGs."""
    info = result.info
    synthetic = (info.get("model") or {}).get("synthetic_training_data")
    sections = _evaluation_sections(result, figures)
    parts = [
        *_report_head(
            f"External validation of {'a survival' if info.get('generic') else 'an EFS'} model: "
            f"{escape(info['cohort'])}"
        ),
        "<h1 id='top'>External validation of "
        + (
            "a survival model"
            if info.get("generic")
            else "a model of event-free survival after CD19 CAR T-cell therapy"
        )
        + "</h1>",
        f"<p class='note'>Cohort <b>{escape(info['cohort'])}</b>; created {escape(created_text(info['created']))} by "
        "carrisk.</p>",
        _research_warning(
            bool(synthetic),
            "These numbers describe how well the model's predictions agree with the outcomes of this cohort.",
        ),
        "<nav><a href='#data'>Data</a><a href='#model'>Model</a><a href='#discrimination'>Discrimination</a>"
        "<a href='#calibration'>Calibration</a><a href='#decision'>Decision curves</a>"
        "<a href='#subgroups'>Subgroups</a><a href='#casemix'>Case-mix</a><a href='#methods'>Methods</a>"
        "<a href='#tripod'>TRIPOD+AI</a></nav>",
        *_data_section(info),
        *[part for section in sections.values() for part in section],
        *_methods_section(info),
        "<h2 id='tripod'>TRIPOD+AI checklist</h2>",
        "<p class='note'>Items of the TRIPOD+AI statement (Collins et al., BMJ 2024;385:e078378) that an external "
        "validation reports, and where this report covers them.</p>",
        tripod_table(),
        "</body></html>",
    ]
    return "\n".join(parts)


def write_evaluation_report(
    result: ExternalValidation, path: str | os.PathLike[str], *, figures: Mapping[str, Any] | None = None
) -> Path:
    """Write the self-contained HTML report atomically; plots are drawn into a temporary directory if not given."""
    target = Path(path)
    if figures is None or not any(str(key).endswith("_plot") for key in figures):
        with tempfile.TemporaryDirectory(prefix="carrisk-report-") as tmp:
            drawn = result.plot(tmp)
            atomic_write_text(target, evaluation_report_html(result, drawn))
    else:
        plots = {key: Path(value) for key, value in figures.items() if str(key).endswith("_plot")}
        atomic_write_text(target, evaluation_report_html(result, plots))
    return target


# ----- the comparison of several models on one cohort (carrisk.evaluate.evaluate_models) -----

#: Extra style of the comparison report (the single-model report keeps :data:`STYLE` alone).
COMPARISON_STYLE = """
h3{margin-top:26px}.model-heading{background:#f0f3f8;padding:6px 10px;border-bottom:none;border-left:6px solid}
.verdict-better{color:#1f7a3a;font-weight:600}.verdict-worse{color:#b42318;font-weight:600}
.verdict-none{color:#4a5568}
.changes li{margin-bottom:8px}
.nowrap{white-space:nowrap}
.swatch{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:5px;vertical-align:-1px}
"""
_PARTS = ("estimate", "lower", "upper")
#: Measures whose differences are shown in percentage points.
_POINT_MEASURES = {"ipa", "citl", "ici", "e50", "e90", "observed_event_prob", "predicted_event_prob"}


def _signed(value: float, digits: int) -> str:
    text = f"{value:+.{digits}f}"
    return text[1:] if float(text) == 0 else text


def difference_text(measure: str, value: float) -> str:
    """A difference between two models' values of ``measure``, signed: percentage points for probabilities
    ("-8.3 points"), else signed with 3 decimals for C, AUC and Brier score ("+0.011") and 2 for the others
    ("+0.40"); "-" when missing."""
    if value is None or not np.isfinite(value):
        return "-"
    if measure in _POINT_MEASURES:
        return f"{_signed_points(value)} points"
    return _signed(value, _difference_digits(measure))


def _difference_digits(measure: str) -> int:
    """Decimals of a difference: 3 for concordance, AUC and Brier score (their differences are small), else 2."""
    return 3 if measure in ("harrell_c", "uno_c", "auc", "brier", "brier_null") else 2


def _difference_interval(measure: str, lower: float, upper: float) -> str:
    if not (np.isfinite(lower) and np.isfinite(upper)):
        return "-"
    if measure in _POINT_MEASURES:
        return f"{_signed_points(lower)} to {_signed_points(upper)} points"
    digits = _difference_digits(measure)
    return f"{_signed(lower, digits)} to {_signed(upper, digits)}"


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def _swatch(k: int) -> str:
    from carrisk.evaluation_plots import MODEL_COLOURS

    return f"<span class='swatch' style='background:{MODEL_COLOURS[k % len(MODEL_COLOURS)]}'></span>"


def _verdict_span(verdict: str, text: str) -> str:
    kind = {"better": "better", "worse": "worse"}.get(verdict, "none")
    return f"<span class='verdict-{kind}'>{escape(text)}</span>"


def _estimate_cell(measure: str, estimate: float, lower: float, upper: float) -> str:
    """An estimate with its 95% interval in brackets ("0.66 (0.51 to 0.81)"; "+10.9 (+7.6 to +14.0) points")."""
    if measure == "citl":
        if not np.isfinite(estimate):
            return "-"
        interval = f" ({_signed_points(lower)} to {_signed_points(upper)})" if np.isfinite(lower) else ""
        return f"{_signed_points(estimate)}{interval} points"
    fmt = _FORMAT.get(measure, number)
    interval = f" ({fmt(lower)} to {fmt(upper)})" if np.isfinite(lower) else ""
    return f"{fmt(estimate)}{interval}"


def _estimate_text(result: ExternalValidation, measure: str, horizon: str) -> str:
    return _estimate_cell(measure, result.value(measure, horizon), *result.interval(measure, horizon))


def _slope_reading(result: ExternalValidation, horizon: str) -> str:
    low, high = result.interval("calibration_slope", horizon)
    if high < 1:
        return "below 1: predictions too extreme"
    if low > 1:
        return "above 1: predictions too modest"
    return "its interval covers 1"


def _changes(comparison: ModelComparison, name: str) -> str:
    """What changed from the reference to ``name``, in clinical words, at the last horizon."""
    reference = comparison.reference
    first, other = comparison.results[reference], comparison.results[name]
    horizon = list(comparison.info["horizons_days"])[-1]
    when = months_label(horizon)
    table = comparison.differences
    differences = table[table["model"] == name].set_index(["measure", "horizon"])

    def change(measure: str, at: str) -> tuple[str, str]:
        row = differences.loc[(measure, at)]
        text = (
            f"difference {difference_text(measure, row['estimate'])} "
            f"(paired 95% CI {_difference_interval(measure, row['lower'], row['upper'])})"
        )
        return text, str(row["verdict"])

    def verdict(kind: str, better: str, worse: str, same: str) -> str:
        return _verdict_span(kind, {"better": better, "worse": worse}.get(kind, same))

    def calibration_words(result: ExternalValidation) -> str:
        citl = result.value("citl", horizon)
        predicted = percent(result.value("predicted_event_prob", horizon))
        gap = f"{abs(100 * citl):.1f} points"
        if f"{abs(100 * citl):.1f}" == "0.0":
            return f"{predicted} (as observed)"
        return f"{predicted} ({gap} {'too low: too optimistic' if citl > 0 else 'too high: too pessimistic'})"

    def closer(measure: str, what: str, target: str, ideal: float, units: str) -> str:
        """The change of ``what`` from the reference, then how much closer to the ideal value it brought ``name``."""
        row = differences.loc[(measure, horizon)]
        gain, low, high = row["improvement"], row["improvement_lower"], row["improvement_upper"]
        if measure == "citl":
            size, interval = f"{abs(100 * gain):.1f}", f"{_signed_points(low)} to {_signed_points(high)}"
        else:
            size, interval = f"{abs(gain):.2f}", f"{_signed(low, 2)} to {_signed(high, 2)}"
        direction = "closer to" if gain >= 0 or float(size) == 0 else "further from"
        text, _ = change(measure, horizon)
        kind = str(row["verdict"])
        overshoot = ""
        own_low, own_high = other.interval(measure, horizon)
        before = first.value(measure, horizon)
        if kind == "no clear difference" and (before < ideal < own_high or own_low < ideal < before):
            reach = own_high if before < ideal else own_low
            shown = f"{_signed_points(reach)} points" if measure == "citl" else number(reach)
            overshoot = (
                f", as {escape(name)} may overshoot to the other side of {target} (its interval reaches {shown})"
            )
        return (
            f"{what} changed by {text.removeprefix('difference ')}, which brings {escape(name)} {size}{units} "
            f"{direction} {target} (paired 95% CI of the gain {interval}{units}): "
            + verdict(
                kind, f"clearly closer to {target}", f"clearly further from {target}", f"not clearly closer to {target}"
            )
            + overshoot
        )

    aspects = {
        ("citl", horizon): "calibration-in-the-large",
        ("calibration_slope", horizon): "calibration slope",
        ("ici", horizon): "calibration error (ICI)",
        ("harrell_c", ""): "discrimination (Harrell's C)",
        ("ipa", horizon): "overall accuracy (IPA)",
    }
    groups: dict[str, list[str]] = {"better": [], "worse": [], "no clear difference": []}
    for key, aspect in aspects.items():
        groups.setdefault(str(differences.loc[key, "verdict"]), []).append(aspect)
    summary = "; ".join(
        f"{words} {_and_list(groups[kind])}"
        for kind, words in (
            ("better", "a clear gain in"),
            ("worse", "a clear loss in"),
            ("no clear difference", "no clear gain in"),
        )
        if groups[kind]
    )
    items = [f"<p><b>In short</b>, at {when}, {escape(name)} against {escape(reference)}: {escape(summary)}.</p>"]
    items.append("<ul class='changes'>")
    items.append(
        f"<li><b>Are the predicted risks right on average?</b> By {when}, "
        f"{percent(first.value('observed_event_prob', horizon))} of these patients had an event (Kaplan-Meier). "
        f"{escape(_capitalised(reference))} predicted {calibration_words(first)} on average; {escape(name)} "
        f"predicted {calibration_words(other)}. "
        + closer("citl", "Calibration-in-the-large", "what was observed", 0.0, " points")
        + ".</li>"
    )
    items.append(
        f"<li><b>Is the spread of the predicted risks right?</b> Calibration slope at {when} (1 is right, below 1 "
        f"too extreme, above 1 too modest): {escape(reference)} "
        f"{_estimate_text(first, 'calibration_slope', horizon)}, {escape(_slope_reading(first, horizon))}; "
        f"{escape(name)} {_estimate_text(other, 'calibration_slope', horizon)}, "
        f"{escape(_slope_reading(other, horizon))}. "
        + closer("calibration_slope", "The slope", "1", 1.0, "")
        + ".</li>"
    )
    text, kind = change("ici", horizon)
    items.append(
        f"<li><b>How far off are individual predictions?</b> Mean absolute calibration error (ICI) at {when}: "
        f"{escape(reference)} {_estimate_text(first, 'ici', horizon)}, {escape(name)} "
        f"{_estimate_text(other, 'ici', horizon)}; {text}; "
        + verdict(
            kind,
            f"{name} has the smaller error",
            f"{reference} has the smaller error",
            "no clear difference in calibration error",
        )
        + ".</li>"
    )
    text, kind = change("harrell_c", "")
    items.append(
        f"<li><b>Does the model rank patients better?</b> Harrell's C: {escape(reference)} "
        f"{_estimate_text(first, 'harrell_c', '')}, {escape(name)} {_estimate_text(other, 'harrell_c', '')}; "
        f"{text}; "
        + verdict(
            kind,
            f"{name} ranks patients better",
            f"{reference} ranks patients better",
            "no clear difference in how well the models rank patients",
        )
        + ".</li>"
    )
    text, kind = change("ipa", horizon)
    items.append(
        f"<li><b>Overall accuracy</b> (index of prediction accuracy, IPA, at {when}; 0 = no better than giving "
        f"everybody the average): {escape(reference)} {_estimate_text(first, 'ipa', horizon)}, {escape(name)} "
        f"{_estimate_text(other, 'ipa', horizon)}; {text}; "
        + verdict(
            kind,
            f"{name} is more accurate overall",
            f"{reference} is more accurate overall",
            "no clear difference in overall accuracy",
        )
        + ".</li>"
    )
    items.append(_net_benefit_change(comparison, name, horizon))
    return "".join(items) + "</ul>"


def _no_better_than_default(row: Mapping[str, Any]) -> str:
    """Words for a threshold at which the better of two models does no better than treating everybody or nobody."""
    best = max(row["net_benefit_model"], row["net_benefit_reference"])
    default = max(row["net_benefit_all"], 0.0)
    if best > default + 1e-12:
        return ""
    return "; but neither beats treating " + ("everybody" if row["net_benefit_all"] >= 0 else "nobody")


def _net_benefit_change(comparison: ModelComparison, name: str, horizon: str) -> str:
    """The decisions bullet of "What changed": where the net benefit at ``horizon`` is clearly higher or lower."""
    from carrisk.evaluate import p_value_text

    table = comparison.net_benefit_differences
    if table.empty:
        return ""
    rows = table[(table["model"] == name) & (table["horizon"] == horizon)].to_dict("records")
    parts = []
    for kind, words in (("better", "clearly higher"), ("worse", "clearly lower")):
        chosen = [row for row in rows if row["verdict"] == kind]
        if chosen:
            listed = ", ".join(
                f"{100 * row['threshold']:.0f}% ({_signed(100 * row['estimate'], 1)} per 100 patients, 95% CI "
                f"{_signed(100 * row['lower'], 1)} to {_signed(100 * row['upper'], 1)}, "
                f"{p_value_text(row['p_value'])}{_no_better_than_default(row)})"
                for row in chosen
            )
            parts.append(_verdict_span(kind, f"{words} at {listed}"))
    thresholds = [f"{100 * row['threshold']:.0f}%" for row in rows]
    rest = [f"{100 * row['threshold']:.0f}%" for row in rows if row["verdict"] not in ("better", "worse")]
    if rest:
        parts.append(f"no clear difference at {_and_list(rest)}")
    return (
        f"<li><b>Would acting on the predicted risks lead to better decisions?</b> Net benefit of {escape(name)} "
        f"against {escape(comparison.reference)} by {months_label(horizon)}, at threshold probabilities "
        f"{_and_list(thresholds)}: "
        + "; ".join(parts)
        + " (<a href='#comparison-net-benefit'>every horizon and threshold</a>).</li>"
    )


def _and_list(words: list[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _relation_text(comparison: ModelComparison) -> str:
    info = comparison.info
    parts = []
    for relation in info.get("relations", []):
        rows = relation.get("update_cohort_rows")
        source = relation.get("update_cohort")
        parts.append(
            f"<p><b>{escape(_capitalised(relation['model']))}</b> is an update of <b>{escape(relation['updates'])}</b>"
            f": {escape(relation.get('description') or relation.get('level'))}, chosen by "
            f"{escape(relation.get('chosen_by') or 'request')}, fitted on {count(rows)} patients"
            + (f" of {escape(source)}" if source and source != "records" else "")
            + ".</p>"
        )
        if source and str(source) == str(info["cohort"]):
            parts.append(
                "<div class='warning'>The update was fitted on this same cohort: its figures here are apparent "
                "(optimistic). Evaluate both models on other patients of the centre to see the update's real "
                "effect.</div>"
            )
    return "".join(parts)


def _same_case_mix(result: ExternalValidation, other: ExternalValidation) -> bool:
    """Whether two evaluations show the same case-mix table and membership C (an update and its parent)."""
    if result.case_mix is None or other.case_mix is None or not result.case_mix.equals(other.case_mix):
        return False
    membership = [r.summary[r.summary["measure"] == "membership_c"]["estimate"].tolist() for r in (result, other)]
    return membership[0] == membership[1]


def _side_by_side_table(comparison: ModelComparison) -> str:
    from carrisk.evaluate import verdict_words

    better_when = dict(zip(comparison.differences["measure"], comparison.differences["better_when"]))
    names, reference = comparison.names, comparison.reference
    table = comparison.side_by_side()
    head = "".join(f"<th>{_swatch(k)}{escape(name)} (95% CI)</th>" for k, name in enumerate(names))
    head += "".join(
        f"<th>difference, {escape(name)} - {escape(reference)} (paired 95% CI)</th><th>p</th><th>verdict</th>"
        for name in names[1:]
    )
    body = []
    for row in table.to_dict("records"):
        measure = row["measure"]
        label = row["label"] + (f", {months_label(row['horizon'])}" if row["horizon"] else "")
        cells = [
            f"<td class='num'>{escape(_estimate_cell(measure, *(row[f'{name}: {part}'] for part in _PARTS)))}</td>"
            for name in names
        ]
        for name in names[1:]:
            key = f"{name} - {reference}: difference"
            verdict = str(row[f"{name} vs {reference}: verdict"] or "")
            if measure == "observed_event_prob":
                cells.append("<td class='note'>the same patients</td><td></td><td></td>")
                continue
            if np.isfinite(row[key]):
                interval = _difference_interval(measure, row[f"{key} lower"], row[f"{key} upper"])
                cells.append(f"<td class='num'>{escape(difference_text(measure, row[key]))} ({escape(interval)})</td>")
            else:
                cells.append("<td class='num'>-</td>")
            cells.append(f"<td class='num'>{escape(_p_value(row[f'{key} p-value']))}</td>")
            words = verdict_words(verdict, str(better_when.get(measure, "")))
            cells.append(f"<td>{_verdict_span(verdict, words)}</td>")
        body.append(f"<tr><td>{escape(label)}</td>{''.join(cells)}</tr>")
    return (
        f"<table><tr><th>measure</th>{head}</tr>" + "".join(body) + "</table>"
        "<p class='note'>Each model's own interval is as in its section below (bootstrap percentile; Wald for the "
        "calibration slope). Verdict: 'better' or 'worse' when the paired 95% interval of the improvement "
        "excludes 0: higher C, AUC and IPA, lower Brier score and ICI/E50/E90; for calibration-in-the-large "
        "(ideal 0), O/E and the slope (ideal 1) the improvement is how much closer to the ideal value the model "
        "is, so a clear change can still leave it 'not clearly closer' when the new value may overshoot. "
        + _p_value_note(comparison)
        + "</p>"
    )


def _p_value_note(comparison: ModelComparison) -> str:
    """What the p-values of the comparison tables are, in one note."""
    n = int(comparison.info["n_bootstrap"])
    calibration = int(comparison.info["n_bootstrap_calibration"])
    return (
        "p: two-sided paired bootstrap p-value of no difference between the models in the population this cohort "
        "represents (twice the smaller share of resampled differences on either side of 0, each counted as "
        f"(1 + count) / (resamples + 1)); the smallest possible with {n} resamples is {2 / (n + 1):.3f} "
        f"({2 / (calibration + 1):.3f} for ICI, E50 and E90, over the {calibration} resamples of the calibration "
        "band). "
        "It tests the difference itself, also where the verdict asks whether a model came closer to an ideal value. "
        "Not adjusted for multiplicity: with this many measures, some p-values below 0.05 are expected by chance "
        "alone."
    )


def _net_benefit_cells(row: Mapping[str, Any]) -> tuple[str, str, str]:
    """A net-benefit difference per 100 patients with its interval, its p-value, and the interventions avoided."""

    def signed(value: float) -> str:
        return "-" if not np.isfinite(value) else _signed(value, 1)

    difference = f"{signed(row['per_100_patients'])} ({signed(row['per_100_patients_lower'])} to " + (
        f"{signed(row['per_100_patients_upper'])})"
    )
    avoided = (
        f"{signed(row['interventions_avoided_per_100'])} ({signed(row['interventions_avoided_per_100_lower'])} "
        + (f"to {signed(row['interventions_avoided_per_100_upper'])})")
    )
    return difference, _p_value(row["p_value"]), avoided


def _net_benefit_table(comparison: ModelComparison) -> str:
    """The net-benefit differences at the chosen thresholds, per 100 patients."""
    table = comparison.net_benefit_differences
    if table.empty:
        return ""
    names, reference = comparison.names, comparison.reference
    several = len(names) > 2
    head = (
        "<tr>" + ("<th>model</th>" if several else "") + "<th>horizon</th><th>threshold</th><th>treat all</th>"
        f"<th>{_swatch(0)}{escape(reference)}</th>"
        + ("<th>model's net benefit</th>" if several else f"<th>{_swatch(1)}{escape(names[1])}</th>")
        + "<th>difference (paired 95% CI)</th><th>p</th><th>verdict</th>"
        "<th>unnecessary interventions avoided per 100 (95% CI)</th></tr>"
    )

    def caveat(row: Mapping[str, Any]) -> str:
        words = _no_better_than_default(row).removeprefix("; but ")
        return f"<br><span class='note'>{escape(words)}</span>" if words else ""

    body = []
    for row in table.to_dict("records"):
        difference, p, avoided = _net_benefit_cells(row)
        verdict = {"better": "higher", "worse": "lower"}.get(row["verdict"], row["verdict"])
        body.append(
            "<tr>"
            + (f"<td>{_swatch(names.index(row['model']))}{escape(row['model'])}</td>" if several else "")
            + f"<td class='nowrap'>{escape(months_label(row['horizon']))}</td>"
            f"<td class='num'>{100 * row['threshold']:.0f}%</td>"
            f"<td class='num'>{number(100 * row['net_benefit_all'], 1)}</td>"
            f"<td class='num'>{number(100 * row['net_benefit_reference'], 1)}</td>"
            f"<td class='num'>{number(100 * row['net_benefit_model'], 1)}</td>"
            f"<td class='num'>{escape(difference)}</td><td class='num'>{escape(p)}</td>"
            f"<td>{_verdict_span(str(row['verdict']), str(verdict))}{caveat(row)}</td>"
            f"<td class='num'>{escape(avoided)}</td></tr>"
        )
    return (
        "<h3 id='comparison-net-benefit'>Net benefit compared at chosen thresholds</h3>"
        "<p>Net benefit per 100 patients at each threshold probability of an event: patients with an event by the "
        "horizon who are treated (true positives), less those treated without an event weighted by the odds of the "
        "threshold (a threshold of 20% counts one unnecessary treatment as a quarter of a missed event). "
        "The difference is the model's net benefit minus the reference's, computed within each of the same "
        f"{comparison.info['n_bootstrap']} bootstrap resamples; 'higher' or 'lower' when its paired 95% interval "
        "excludes 0. The last column reads the same difference as unnecessary interventions avoided per 100 "
        "patients at equal true positives (the difference divided by the odds of the threshold; Vickers et al. "
        "2008, 2019). A model is only worth using at a threshold where its net benefit is also above treating "
        "everybody and treating nobody (0).</p>"
        f"<table>{head}" + "".join(body) + "</table>"
        f"<p class='note'>{_p_value_note(comparison)}</p>"
    )


def comparison_report_html(comparison: ModelComparison, figures: Mapping[str, Any]) -> str:
    """The comparison report as one HTML string.

    ``figures`` maps the comparison's plot names (``comparison_*_plot``, as :meth:`ModelComparison.plot` returns) to
    PNGs, and ``"models"`` to each model's own plots (name -> plot name -> PNG, as
    :meth:`ExternalValidation.plot` returns).
    """
    from carrisk.evaluate import outcome_words
    from carrisk.evaluation_plots import MODEL_COLOURS

    info = comparison.info
    names, reference = comparison.names, comparison.reference
    horizons = list(info["horizons_days"])
    first = comparison.results[reference]
    words = outcome_words(info)
    synthetic = any(
        (result.info.get("model") or {}).get("synthetic_training_data") for result in comparison.results.values()
    )
    related = bool(info.get("relations"))
    if related:
        title = "Before and after updating: " + (
            "a survival model"
            if info.get("generic")
            else "a model of event-free survival after CD19 CAR T-cell therapy"
        )
    else:
        title = "Comparison of " + (
            "survival models" if info.get("generic") else "models of event-free survival after CD19 CAR T-cell therapy"
        )
    models_figures = figures.get("models", {}) or {}
    anchors = {name: f"m{k + 1}" for k, name in enumerate(names)}
    nav = (
        "<nav><a href='#comparison'>What changed</a><a href='#comparison-calibration'>Calibration compared</a>"
        "<a href='#comparison-table'>All measures</a><a href='#comparison-decision'>Decision curves compared</a>"
        "<a href='#data'>Data</a>"
        + "".join(f"<a href='#{anchors[name]}'>{escape(_capitalised(name))}</a>" for name in names)
        + "<a href='#methods'>Methods</a><a href='#tripod'>TRIPOD+AI</a></nav>"
    )
    pairing = (
        f"<p>{'Both' if len(names) == 2 else 'All ' + str(len(names))} models are scored on the same "
        f"{count(info['n'])} patients of <b>{escape(info['cohort'])}</b> and on the same {info['n_bootstrap']} "
        "bootstrap resamples of them. Each difference is computed within each resample, so the variation of the "
        "patients that the models share cancels out: a difference can be clear even when the two models' own "
        "intervals overlap. Differences are "
        + ", ".join(f"<b>{escape(name)}</b>" for name in names[1:])
        + f" minus <b>{escape(reference)}</b>.</p>"
    )
    changes = "".join(
        (f"<h3>{escape(_capitalised(name))} against {escape(reference)}</h3>" if len(names) > 2 else "")
        + _changes(comparison, name)
        for name in names[1:]
    )
    calibration_keys = [
        (f"comparison_calibration_{h}_plot", f"Calibration at {months_label(h)}: every model with its 95% band")
        for h in horizons
    ]
    decision_keys = [
        (f"comparison_decision_curve_{h}_plot", f"Decision curves, event by {months_label(h)}") for h in horizons
    ]
    net_benefit_keys = [
        (
            f"comparison_net_benefit_difference_{h}_plot",
            f"Difference in net benefit by threshold, event by {months_label(h)}, with its pointwise paired 95% band; "
            "dots: the thresholds of the table",
        )
        for h in horizons
    ]
    model_parts = []
    for k, name in enumerate(names):
        result = comparison.results[name]
        colour = MODEL_COLOURS[k % len(MODEL_COLOURS)]
        model_parts.append(
            f"<h2 id='{anchors[name]}' class='model-heading' style='border-left-color:{colour}'>"
            f"{escape(_capitalised(name))}</h2>"
        )
        sections = _evaluation_sections(result, models_figures.get(name, {}), tag="h3", prefix=f"{anchors[name]}-")
        if k > 0 and _same_case_mix(result, first):  # an update of the reference: the same training patients
            sections["casemix"] = [
                _heading("h3", f"{anchors[name]}-casemix", "Case-mix: this cohort against the training patients"),
                f"<p>The same training patients as {escape(reference)}: see <a href='#{anchors[reference]}-casemix'>"
                f"its case-mix</a>.</p>",
            ]
        model_parts.extend(part for section in sections.values() for part in section)
    notes = [f"{name}: {note}" for name, result in comparison.results.items() for note in result.info.get("notes", [])]
    methods_info = {**first.info, "notes": notes}
    extra = (
        f"<li>Differences between models: each model minus {escape(reference)}, computed within each of the same "
        f"{info['n_bootstrap']} bootstrap resamples (the calibration slope refitted on each; ICI/E50/E90 over the "
        f"{info['n_bootstrap_calibration']} resamples of the calibration band), with 95% percentile intervals. "
        "The verdict is 'better' or 'worse' when the 95% interval of the improvement excludes 0; for "
        "calibration-in-the-large, O/E and the slope the improvement is how much closer the model is to the "
        "ideal value (0, 1, 1). Each difference has a two-sided paired bootstrap p-value from the same resampled "
        "differences, p = min(1, 2 min(1 + #{d &le; 0}, 1 + #{d &ge; 0}) / (B + 1)) over the B resamples in which "
        "it is defined (Davison &amp; Hinkley 1997), testing no difference in the population the cohort "
        "represents; p-values are not adjusted for multiplicity.</li>"
        "<li>Net benefit compared: each model's net benefit minus the reference's at threshold probabilities "
        + ", ".join(f"{100 * t:.0f}%" for t in info.get("net_benefit_thresholds", []))
        + " at each horizon, paired within the same resamples (95% percentile interval, p-value as above), per "
        "100 patients and as unnecessary interventions avoided per 100 (Vickers et al. 2008, 2019); the "
        "difference curve over every threshold of the decision curves has a pointwise paired 95% band.</li>"
    )
    first_model = anchors[reference]
    tripod_anchors = {
        "model": (f"{first_model}-model", f"Model ({reference})"),
        "discrimination": ("comparison-table", "All measures side by side"),
        "calibration": ("comparison-calibration", "Calibration compared"),
        "decision": ("comparison-decision", "Decision curves compared"),
        "subgroups": (f"{first_model}-subgroups", "Subgroups (each model)"),
        "casemix": (f"{first_model}-casemix", "Case-mix"),
        "comparison": ("comparison", "What changed"),
    }
    items = tuple(
        (item, topic, "covered", "comparison") if related and item in ("12f", "24") else (item, topic, status, where)
        for item, topic, status, where in TRIPOD_AI_ITEMS
    )
    parts = [
        *_report_head(f"Comparison of {'survival' if info.get('generic') else 'EFS'} models: {escape(info['cohort'])}"),
        f"<style>{COMPARISON_STYLE}</style>",
        f"<h1 id='top'>{escape(title)}</h1>",
        f"<p class='note'>{len(names)} models; cohort <b>{escape(info['cohort'])}</b>; created "
        f"{escape(created_text(info['created']))} by carrisk.</p>",
        _research_warning(
            synthetic,
            "These numbers describe how well each model's predictions agree with the outcomes of this cohort.",
        ),
        nav,
        "<h2 id='comparison'>What changed</h2>",
        _relation_text(comparison),
        pairing,
        changes,
        f"<p class='note'>Figures at {months_label(horizons[-1])}; every measure at every horizon is in "
        "<a href='#comparison-table'>the table below</a>.</p>",
        "<h2 id='comparison-calibration'>Calibration compared</h2>",
        "<p>Each curve is a model's smoothed observed event probability against its predicted one, with its 95% "
        "bootstrap band; the closer to the diagonal, the better calibrated. Below: how each model's predictions are "
        "spread.</p>",
        figures_block(
            figures,
            [
                *calibration_keys,
                ("comparison_observed_vs_predicted_plot", f"Observed and mean predicted {words['survival']}"),
            ],
        ),
        "<h2 id='comparison-table'>All measures side by side</h2>",
        _side_by_side_table(comparison),
        "<h2 id='comparison-decision'>Decision curves compared</h2>",
        "<p>Net benefit of acting on each model's predicted risk, against treating everybody and nobody; a model is "
        "useful where its curve lies above both, and the better one is the higher curve.</p>",
        figures_block(figures, decision_keys),
        _net_benefit_table(comparison),
        figures_block(figures, net_benefit_keys),
        *_data_section(first.info),
        *model_parts,
        *_methods_section(methods_info, extra=extra),
        "<h2 id='tripod'>TRIPOD+AI checklist</h2>",
        "<p class='note'>Items of the TRIPOD+AI statement (Collins et al., BMJ 2024;385:e078378) that an external "
        "validation reports, and where this report covers them.</p>",
        tripod_table(items, tripod_anchors),
        "</body></html>",
    ]
    return "\n".join(parts)


def write_comparison_report(
    comparison: ModelComparison, path: str | os.PathLike[str], *, figures: Mapping[str, Any] | None = None
) -> Path:
    """Write the self-contained comparison report atomically.

    ``figures`` is what :meth:`ModelComparison.write` returned (its plots are embedded); without it the plots are
    drawn into a temporary directory.
    """
    target = Path(path)
    if figures is None or not any(str(key).endswith("_plot") for key in figures):
        with tempfile.TemporaryDirectory(prefix="carrisk-report-") as tmp:
            drawn: dict[str, Any] = dict(comparison.plot(tmp))
            directories = comparison.info["directories"]
            drawn["models"] = {name: comparison.plot_model(name, Path(tmp) / directories[name]) for name in directories}
            atomic_write_text(target, comparison_report_html(comparison, drawn))
    else:
        atomic_write_text(target, comparison_report_html(comparison, figures))
    return target
