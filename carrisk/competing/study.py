"""The competing-risks analysis of a study cohort: how patients fail, by blinatumomab group, burden and CD19.

:func:`competing_risks_analysis` derives each patient's first event and cause
(:func:`carrisk.competing.outcomes.derive_first_event`), then reports

- Aalen-Johansen cumulative incidence of every cause at 6 and 12 months with pointwise 95% log(-log)
  intervals (Aalen variance), overall and by blinatumomab group (naive / responder / nonresponder), disease
  burden (high / low) and CD19 before infusion (dim or partial / bright);
- Gray's test for each cause across the groups of each grouping;
- cause-specific Cox and Fine-Gray models for CD19-negative relapse and lineage switch with the covariates of
  Lamble et al. (Blood Adv 2023): high disease burden, blinatumomab nonresponse, age per 10 years, 4-1BB
  construct (every product except the NCI CD28 construct), and KMT2A rearrangement for lineage switch;
  complete cases, the number dropped is reported;
- a stacked cumulative-incidence plot (the stack's top is 1 - EFS).

Patients outside the three blinatumomab groups (exposure or response unknown) count in "all" only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from carrisk import parsing
from carrisk.competing.nonparametric import aalen_johansen, gray_test
from carrisk.competing.outcomes import CAUSE_LABELS, CENSORED, cause_names, derive_first_event
from carrisk.competing.regression import HazardRegression, cause_specific_cox, fine_gray
from carrisk.features import BlinatumomabStatus, CD19Expression, DiseaseBurden, KMT2ARearrangement
from carrisk.units import DAYS_PER_MONTH, SIX_MONTHS_DAYS, TWELVE_MONTHS_DAYS

HORIZONS_DAYS = {"6mo": SIX_MONTHS_DAYS, "12mo": TWELVE_MONTHS_DAYS}
STUDY_GROUPS = ("naive", "responder", "nonresponder")
#: Grouping name -> the groups compared, in display order.
GROUPINGS = {
    "blina_status": STUDY_GROUPS,
    "disease_burden": ("low", "high"),
    "cd19": ("bright", "dim_or_partial"),
}
#: Lamble et al. 2023 covariates; KMT2A only for lineage switch.
REGRESSION_COVARIATES = {
    "high_burden": "high disease burden",
    "blina_nonresponder": "blinatumomab nonresponse",
    "age_per_10y": "age (per 10 years)",
    "construct_41bb": "4-1BB construct (vs CD28)",
    "kmt2a_rearranged": "KMT2A rearranged",
}
REGRESSION_CAUSES = {"cd19neg": [*list(REGRESSION_COVARIATES)[:4]], "lineage_switch": list(REGRESSION_COVARIATES)}
CAUSE_COLORS = {
    "no_cr": "#7f7f7f",
    "cd19pos": "#1f77b4",
    "cd19neg": "#d62728",
    "lineage_switch": "#9467bd",
    "unclassified": "#bcbd22",
    "death_in_remission": "#2f2f2f",
    "hsct": "#17becf",
}


@dataclass
class CompetingRisksReport:
    """Competing-risks tables of one cohort.

    Attributes
    ----------
    causes : tuple of str
    cif : DataFrame
        One row per (``grouping``, ``group``, ``cause``): ``n``, and for each horizon ``cif_6mo``,
        ``cif_6mo_ci_low``, ``cif_6mo_ci_high`` (same for 12mo); missing past a group's follow-up.
    gray : DataFrame
        One row per (``grouping``, ``cause``): ``groups``, ``statistic``, ``df``, ``p``.
    regression : DataFrame
        One row per (``model``, ``cause``, ``covariate``): ``label``, ``hr``, ``ci_low``, ``ci_high``, ``p``,
        ``n``, ``events``, ``converged``.
    crude : DataFrame
        Index cause: ``n`` first events and ``pct_of_patients`` -- crude proportions, which ignore censoring.
    notes : list of str
    """

    causes: tuple[str, ...]
    cif: pd.DataFrame
    gray: pd.DataFrame
    regression: pd.DataFrame
    crude: pd.DataFrame
    hsct_handling: str
    notes: list[str] = field(default_factory=list)
    curves: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able tables (NaN becomes None)."""

        def rows(table: pd.DataFrame) -> list[dict[str, Any]]:
            return [
                {k: _plain(v) for k, v in record.items()} for record in table.reset_index().to_dict(orient="records")
            ]

        return {
            "causes": list(self.causes),
            "cause_labels": {c: CAUSE_LABELS[c] for c in self.causes},
            "hsct_handling": self.hsct_handling,
            "cif": rows(self.cif),
            "gray": rows(self.gray),
            "regression": rows(self.regression),
            "crude": rows(self.crude),
            "notes": list(self.notes),
        }

    def summary_lines(self) -> list[str]:
        """Sentences for the report's summary: 12-month incidence of CD19-negative relapse and lineage switch."""
        lines = []
        for cause in ("cd19neg", "cd19pos", "lineage_switch"):
            parts = []
            for group in STUDY_GROUPS:
                key = ("blina_status", group, cause)
                if key in self.cif.index:
                    row = self.cif.loc[key]
                    parts.append(f"{group} {_pct_ci(row['cif_12mo'], row['cif_12mo_ci_low'], row['cif_12mo_ci_high'])}")
            gray = (
                self.gray.loc[("blina_status", cause), "p"] if ("blina_status", cause) in self.gray.index else math.nan
            )
            lines.append(
                f"12-month cumulative incidence of {CAUSE_LABELS[cause]} (Aalen-Johansen): {', '.join(parts)}; "
                f"Gray's test {_p(gray)}."
            )
        for (model, cause), table in self.regression.groupby(level=["model", "cause"], sort=False):
            words = "Fine-Gray subdistribution HR" if model == "fine_gray" else "cause-specific HR"
            parts = [
                f"{row['label']} {_num(row['hr'])} ({_num(row['ci_low'])}-{_num(row['ci_high'])}, {_p(row['p'])})"
                for _, row in table.iterrows()
            ]
            label = CAUSE_LABELS[str(cause)]
            lines.append(f"{label[0].upper()}{label[1:]}, {words} (95% CI): {'; '.join(parts)}.")
        return lines

    def to_text(self) -> str:
        """The tables as text."""
        blocks = []
        with pd.option_context(
            "display.width", 200, "display.max_columns", 40, "display.float_format", "{:.4g}".format
        ):
            for title, table in (
                (
                    "Cumulative incidence by cause, Aalen-Johansen (pointwise 95% CI, log(-log), Aalen variance)",
                    self.cif,
                ),
                ("Gray's test across groups, per cause", self.gray),
                ("Cause-specific Cox and Fine-Gray models (HR, 95% Wald CI)", self.regression),
                ("First events by cause, crude counts (ignore censoring; not incidences)", self.crude),
            ):
                blocks += [f"{title}:", table.to_string() if len(table) else "(empty)", ""]
        return "\n".join(blocks)

    def plot(self) -> Figure:
        """Stacked cumulative incidence by cause over 0-24 months: all patients and each blinatumomab group."""
        panels = [name for name in ("all", *STUDY_GROUPS) if name in self.curves]
        figure = Figure(figsize=(4.2 * len(panels), 4.6), layout="constrained")
        axes = figure.subplots(1, len(panels), sharey=True, squeeze=False)[0]
        for ax, name in zip(axes, panels):
            times, cif, n = self.curves[name]
            months = np.concatenate([[0.0], times / DAYS_PER_MONTH])
            stacked = np.vstack([np.zeros(len(self.causes)), cif]).cumsum(axis=1)
            lower = np.zeros(months.size)
            for k, cause in enumerate(self.causes):
                upper = stacked[:, k]
                if upper[-1] > 0:
                    ax.fill_between(
                        months,
                        lower,
                        upper,
                        step="post",
                        color=CAUSE_COLORS[cause],
                        alpha=0.85,
                        label=CAUSE_LABELS[cause],
                    )
                lower = upper
            ax.step(months, lower, where="post", color="black", linewidth=1.0)
            ax.set_xlim(0, 24)
            ax.set_xticks(np.arange(0, 25, 6))
            ax.set_ylim(0, 1)
            ax.set_title(f"{name} (n={n})")
            ax.set_xlabel("Months from CAR infusion")
        axes[0].set_ylabel("Cumulative incidence (stacked); top = 1 - EFS")
        handles = {label: handle for ax in axes for handle, label in zip(*ax.get_legend_handles_labels())}
        figure.legend(
            list(handles.values()), list(handles), loc="outside lower center", ncol=len(handles), frameon=False
        )
        figure.suptitle("How patients fail: Aalen-Johansen cumulative incidence by first-event cause")
        return figure


def competing_risks_analysis(records: pd.DataFrame, *, hsct_handling: str = "ignore") -> CompetingRisksReport:
    """Cumulative incidence, Gray's tests and cause-specific / Fine-Gray models of a cohort's first events.

    Parameters
    ----------
    records : DataFrame
        Records in the schema of ``docs/records.md`` with outcome columns.
    hsct_handling : {"ignore", "censor", "competing"}, default "ignore"
        Consolidative transplant handling (see :func:`carrisk.competing.outcomes.derive_first_event`).

    Returns
    -------
    CompetingRisksReport

    Raises
    ------
    carrisk.schema.RecordError
        If the records are invalid or their outcome columns contradict each other.
    """
    records = records.reset_index(drop=True)
    events = derive_first_event(records, hsct_handling=hsct_handling)
    causes = cause_names(hsct_handling)
    cohort = _covariates(records).assign(time=events["time_days"].to_numpy(), code=events["cause_code"].to_numpy())
    notes = [
        "Cumulative incidence: Aalen-Johansen, pointwise 95% CI with the log(-log) transform and Aalen's variance "
        "(as scikit-survival's var_type='Aalen'); other causes are competing events, not censoring.",
        "Gray's test (rho = 0) compares one cause's cumulative incidence across the groups of a grouping.",
        {
            "ignore": "Consolidative transplant after CAR: recorded, not an event (as Myers et al. 2022).",
            "censor": "Consolidative transplant after CAR: follow-up censored at the transplant.",
            "competing": "Consolidative transplant after CAR: a competing first event (cause hsct).",
        }[hsct_handling],
    ]
    cif_rows: list[dict[str, Any]] = []
    curves: dict[str, Any] = {}
    subsets: list[tuple[str, str, np.ndarray]] = [("all", "all", np.ones(len(cohort), dtype=bool))]
    for grouping, groups in GROUPINGS.items():
        subsets += [(grouping, g, (cohort[grouping] == g).to_numpy()) for g in groups]
    for grouping, group, mask in subsets:
        if not mask.any():
            continue
        result = aalen_johansen(cohort["time"][mask], cohort["code"][mask], causes)
        if grouping in ("all", "blina_status"):
            curves[group] = (result.times, result.cif, int(mask.sum()))
        at = result.at(list(HORIZONS_DAYS.values()))
        for cause in causes:
            row: dict[str, Any] = {"grouping": grouping, "group": group, "cause": cause, "n": int(mask.sum())}
            for horizon, days in HORIZONS_DAYS.items():
                hit = at[(at["horizon_days"] == days) & (at["cause"] == cause)].iloc[0]
                row[f"cif_{horizon}"] = hit["cif"]
                row[f"cif_{horizon}_ci_low"] = hit["ci_low"]
                row[f"cif_{horizon}_ci_high"] = hit["ci_high"]
            cif_rows.append(row)
    cif = pd.DataFrame(cif_rows).set_index(["grouping", "group", "cause"])

    gray_rows = []
    for grouping, groups in GROUPINGS.items():
        mask = cohort[grouping].isin(groups).to_numpy()
        present = sorted(set(cohort.loc[mask, grouping]))
        for k, cause in enumerate(causes, start=1):
            row = {"grouping": grouping, "cause": cause, "groups": ", ".join(present)}
            if len(present) >= 2 and (cohort.loc[mask, "code"] == k).any():
                test = gray_test(
                    cohort["time"][mask], cohort["code"][mask], cohort[grouping][mask], k, cause_name=cause
                )
                row.update(statistic=test.statistic, df=test.df, p=test.p_value)
            else:
                row.update(statistic=math.nan, df=math.nan, p=math.nan)
            gray_rows.append(row)
    gray = pd.DataFrame(gray_rows).set_index(["grouping", "cause"])

    regression = _regressions(cohort, causes, notes)
    counts = events["cause"].value_counts()
    crude = pd.DataFrame(
        {"n": [int(counts.get(c, 0)) for c in (*causes, CENSORED)]}, index=pd.Index([*causes, CENSORED], name="cause")
    )
    crude["pct_of_patients"] = 100.0 * crude["n"] / len(events)
    return CompetingRisksReport(causes, cif, gray, regression, crude, hsct_handling, notes, curves)


def _covariates(records: pd.DataFrame) -> pd.DataFrame:
    blina = BlinatumomabStatus().fit(records).categorize(records)["blina_status"].to_numpy()
    burden = DiseaseBurden().fit(records).categorize(records)["disease_burden"].to_numpy()
    cd19 = CD19Expression(grouping="published").fit(records).categorize(records)["cd19"].to_numpy()
    kmt2a = KMT2ARearrangement().fit(records).categorize(records)["kmt2a"].to_numpy()
    product = [_safe(parsing.parse_car_product, v) for v in records["car_product"]]
    age = np.array([_safe(parsing.parse_number, v) for v in records["age_years"]], dtype=float)
    in_study = np.isin(blina, STUDY_GROUPS)
    return pd.DataFrame(
        {
            "blina_status": blina,
            "disease_burden": np.where(burden == "high", "high", np.where(burden == "unknown", "unknown", "low")),
            "cd19": cd19,
            "high_burden": np.where(burden == "unknown", np.nan, (burden == "high").astype(float)),
            "blina_nonresponder": np.where(in_study, (blina == "nonresponder").astype(float), np.nan),
            "age_per_10y": age / 10.0,
            "construct_41bb": [math.nan if p in (None, "other") else float(p != "nci_cd28") for p in product],
            "kmt2a_rearranged": np.select(
                [kmt2a == "rearranged", kmt2a == "not_rearranged"], [1.0, 0.0], default=np.nan
            ),
        }
    )


def _safe(parse: Any, value: Any) -> Any:
    try:
        result = parse(value)
    except parsing.UnparseableValue:
        return None
    return math.nan if result is None and parse is parsing.parse_number else result


def _regressions(cohort: pd.DataFrame, causes: tuple[str, ...], notes: list[str]) -> pd.DataFrame:
    rows = []
    for cause, covariates in REGRESSION_CAUSES.items():
        code = causes.index(cause) + 1
        complete = cohort.dropna(subset=covariates)
        usable = [c for c in covariates if complete[c].nunique() > 1]
        events = int((complete["code"] == code).sum())
        dropped = len(cohort) - len(complete)
        if events <= len(usable) or not usable:
            notes.append(f"{CAUSE_LABELS[cause]}: {events} events for {len(usable)} covariates; no regression fitted.")
            continue
        notes.append(
            f"{CAUSE_LABELS[cause]} regressions: {len(complete)} patients, {events} events, {dropped} dropped for a "
            f"missing covariate"
            + (
                f"; constant covariates left out: {sorted(set(covariates) - set(usable))}"
                if len(usable) < len(covariates)
                else ""
            )
            + "."
        )
        fits: list[HazardRegression] = []
        for model in (cause_specific_cox, fine_gray):
            try:
                fits.append(model(complete["time"], complete["code"], complete[usable], code, cause_name=cause))
            except (ValueError, np.linalg.LinAlgError, ArithmeticError) as err:
                notes.append(f"{model.__name__} for {CAUSE_LABELS[cause]} not fitted: {str(err).splitlines()[0]}")
        for fit in fits:
            if not fit.converged:
                notes.append(
                    f"{fit.model} for {CAUSE_LABELS[cause]} did not converge (a covariate level without events?); "
                    "its hazard ratios are unreliable."
                )
            for covariate, values in fit.summary.iterrows():
                rows.append(
                    {
                        "model": fit.model,
                        "cause": cause,
                        "covariate": covariate,
                        "label": REGRESSION_COVARIATES[str(covariate)],
                        "hr": values["hr"],
                        "ci_low": values["ci_low"],
                        "ci_high": values["ci_high"],
                        "p": values["p"],
                        "n": fit.n,
                        "events": fit.events,
                        "converged": fit.converged,
                    }
                )
    columns = ["label", "hr", "ci_low", "ci_high", "p", "n", "events", "converged"]
    if not rows:
        return pd.DataFrame(columns=columns, index=pd.MultiIndex.from_tuples([], names=["model", "cause", "covariate"]))
    return pd.DataFrame(rows).set_index(["model", "cause", "covariate"])[columns]


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _pct_ci(estimate: float, low: float, high: float) -> str:
    if estimate is None or not np.isfinite(estimate):
        return "not estimable"
    return f"{100 * estimate:.1f}% (95% CI {100 * low:.1f}-{100 * high:.1f})"


def _num(value: float) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.2f}"


def _p(value: float) -> str:
    if value is None or not np.isfinite(value):
        return "p=n/a"
    return "p<0.001" if value < 0.001 else f"p={value:.3f}"


__all__ = ["CompetingRisksReport", "competing_risks_analysis"]
