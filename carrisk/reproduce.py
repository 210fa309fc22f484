"""The study's own analysis (Myers et al., J Clin Oncol 2022) run on any cohort in the carrisk record schema.

:func:`reproduce_study` validates the records, derives the blinatumomab groups and risk factors with the feature
builders of :mod:`carrisk.features`, and returns a :class:`StudyReport`: group sizes, day-28 CR rates, Kaplan-Meier
EFS and RFS at 6 and 12 months, CD19 dim/partial prevalence, a multivariable Cox model for EFS and the relapse
phenotypes (crude counts), each as a DataFrame, with the tests that go with them, and the competing-risks analysis
of :mod:`carrisk.competing.study` (Aalen-Johansen cumulative incidence of each first-event cause with Gray's tests,
cause-specific Cox and Fine-Gray models, a stacked cumulative-incidence plot).

Methods
-------
- Day-28 CR: exact (Clopper-Pearson) 95% CI, ``scipy.stats.binomtest(...).proportion_ci(method="exact")``.
  Across the three study groups, Pearson's chi-square test of the 3x2 table (``scipy.stats.chi2_contingency``,
  no continuity correction for tables larger than 2x2); the paper's exact Fisher-Freeman-Halton test is not in
  scipy, so Fisher's exact test is added for nonresponders vs naive, the comparison the paper highlights.
- EFS and RFS: Kaplan-Meier estimates (``lifelines.KaplanMeierFitter``) with lifelines' default 95% CI, the
  "exponential Greenwood" log(-log) interval ``exp(-exp(log(-log S) -/+ z sqrt(sum d/(n(n-d))) / log S))``
  (``KaplanMeierFitter._bounds`` in lifelines 0.30) [2]_. Groups compared with the log-rank test
  (``lifelines.statistics.multivariate_logrank_test``). An estimate past the last follow-up of a group, where the
  curve is undefined, is reported as missing.
- RFS: among patients in CR at day 28, event = relapse of any phenotype or death, from infusion. In the record
  schema the EFS time of a patient in CR is already the time to relapse, death or last follow-up, so the RFS time
  *is* ``efs_days``; rows where this rule and ``efs_event`` disagree are counted in the notes.
- CD19 dim or partial before infusion (the published grouping): blinatumomab-exposed (responders, nonresponders
  and exposed with unknown response) vs naive, among patients with a CD19 result, Fisher's exact test.
- EFS Cox model (``lifelines.CoxPHFitter``, Efron ties) on the three study groups: responder and nonresponder
  (vs naive), high burden, CD19 dim/partial, KMT2A rearranged, prior allogeneic HSCT, age per 10 years. Rows with
  a missing covariate (unknown burden or CD19, KMT2A not tested or unknown, ...) are dropped and counted.

References
----------
.. [1] Myers RM, Taraseviciute A, Steinberg SM, et al. Blinatumomab nonresponse and high-disease burden are
   associated with inferior outcomes after CD19-CAR for B-ALL. J Clin Oncol 2022;40(9):932-944.
.. [2] Sawyer S. The Greenwood and exponential Greenwood confidence intervals in survival analysis (2003).
.. [3] Lamble AJ, Myers RM, Taraseviciute A, et al. Preinfusion factors impacting relapse immunophenotype
   following CD19 CAR T cells. Blood Adv 2023;7(4):575-585.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.exceptions import ConvergenceError
from lifelines.plotting import add_at_risk_counts
from lifelines.statistics import multivariate_logrank_test
from matplotlib.figure import Figure
from scipy import stats

from carrisk import parsing
from carrisk._io import atomic_write, atomic_write_text
from carrisk.competing.study import CompetingRisksReport, competing_risks_analysis
from carrisk.features import (
    BlinatumomabStatus,
    CD19Expression,
    DiseaseBurden,
    KMT2ARearrangement,
    PriorTransplant,
)
from carrisk.schema import validate_records
from carrisk.units import DAYS_PER_MONTH, HORIZONS_DAYS, SIX_MONTHS_DAYS, TWELVE_MONTHS_DAYS

CONFIDENCE_LEVEL = 0.95

#: The study's three groups, in the order of the paper's tables.
STUDY_GROUPS = ("naive", "responder", "nonresponder")
#: How the abstract names each group, in the order it lists them.
GROUP_WORDS = {"nonresponder": "nonresponders", "responder": "responders", "naive": "naive"}
PLOT_LABELS = {**GROUP_WORDS, "exposed_unknown": "exposed, response unknown", "unknown": "exposure unknown"}
RELAPSE_PHENOTYPES = ("CD19+", "CD19-", "lineage switch", "unclassified")

REPORT_JSON = "study_report.json"
REPORT_TEXT = "study_report.txt"
KM_EFS_PNG = "km_efs_by_blina.png"
CIF_STACKED_PNG = "cif_stacked_by_blina.png"

COX_COVARIATES = {
    "blina_responder": "blinatumomab responder (vs naive)",
    "blina_nonresponder": "blinatumomab nonresponder (vs naive)",
    "high_burden": "high disease burden",
    "cd19_dim_partial": "CD19 dim or partial",
    "kmt2a_rearranged": "KMT2A rearranged",
    "prior_hsct": "prior allogeneic HSCT",
    "age_per_10y": "age (per 10 years)",
}


@dataclass
class StudyReport:
    """The study's analysis of one cohort: tables as DataFrames, the tests, and writers.

    Attributes
    ----------
    n_patients : int
        Records analysed.
    groups : DataFrame
        Index ``blina_status``; ``n`` and ``pct`` of all patients (sums to ``n_patients``).
    cr : DataFrame
        Index group (plus ``all``); ``n_evaluable``, ``n_cr``, ``cr_rate``, exact ``ci_low``/``ci_high``.
    efs, rfs : DataFrame
        Index group (plus ``all``); ``n``, ``events``, ``median_days`` (NaN if not reached) and for each horizon
        ``efs_6mo``/``efs_6mo_ci_low``/``efs_6mo_ci_high``/``at_risk_6mo`` (``rfs_...`` for RFS), same for 12mo.
    cd19 : DataFrame
        Index ``exposed``/``naive``; ``n_assessed``, ``n_dim_partial``, ``pct``, exact ``ci_low``/``ci_high``.
    cox : DataFrame
        Index covariate; ``label``, ``hr``, ``ci_low``, ``ci_high``, ``p``.
    cox_info : dict
        ``n``, ``events``, ``n_dropped_missing``, ``n_outside_groups``, ``concordance``, ``dropped_covariates``.
    phenotypes : DataFrame
        Index relapse phenotype; ``n``, ``pct_of_relapses``, ``pct_of_patients`` and one count column per group.
    tests : DataFrame
        Index test name; ``analysis``, ``test``, ``statistic``, ``df``, ``p``, ``note``.
    age : dict
        ``n``, ``median``, ``q1``, ``q3`` in years.
    notes : list of str
        Methods and data caveats, in the order they arose.
    efs_data : DataFrame
        ``group``, ``efs_days``, ``efs_event`` per patient, for :meth:`plot_efs` (not part of :meth:`to_dict`).
    competing : CompetingRisksReport, optional
        Cumulative incidence by cause, Gray's tests and cause-specific / Fine-Gray models.
    """

    n_patients: int
    groups: pd.DataFrame
    cr: pd.DataFrame
    efs: pd.DataFrame
    rfs: pd.DataFrame
    cd19: pd.DataFrame
    cox: pd.DataFrame
    cox_info: dict[str, Any]
    phenotypes: pd.DataFrame
    tests: pd.DataFrame
    age: dict[str, float | None]
    notes: list[str] = field(default_factory=list)
    efs_data: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    competing: CompetingRisksReport | None = None

    def to_dict(self) -> dict[str, Any]:
        """Everything in the report as plain JSON-able Python (NaN becomes None)."""
        tables = {
            name: _records(getattr(self, name))
            for name in ("groups", "cr", "efs", "rfs", "cd19", "cox", "phenotypes", "tests")
        }
        return {
            "study": "Myers et al., J Clin Oncol 2022;40:932-944 (analysis reproduced on this cohort)",
            "n_patients": int(self.n_patients),
            "age_years": _plain(self.age),
            **tables,
            "cox_info": _plain(self.cox_info),
            "horizons_days": dict(HORIZONS_DAYS),
            "notes": list(self.notes),
            "competing_risks": None if self.competing is None else self.competing.to_dict(),
        }

    def plot_efs(self) -> Figure:
        """Kaplan-Meier EFS by blinatumomab group (months on the x axis) with a number-at-risk table."""
        figure = Figure(figsize=(8, 6), layout="constrained")
        ax = figure.add_subplot()
        fitters = []
        for group in _groups_present(self.efs_data["group"]):
            subset = self.efs_data[self.efs_data["group"] == group]
            fitter = KaplanMeierFitter(label=f"{PLOT_LABELS[group]} (n={len(subset)})")
            fitter.fit(subset["efs_days"] / DAYS_PER_MONTH, subset["efs_event"])
            fitter.plot_survival_function(ax=ax, ci_show=True, show_censors=True, censor_styles={"ms": 4})
            fitters.append(fitter)
        longest = float(self.efs_data["efs_days"].max() / DAYS_PER_MONTH) if len(self.efs_data) else 0.0
        x_max = max(longest, 12.0)
        ax.set_xlim(0, x_max)
        ax.set_xticks(np.arange(0, x_max + 1e-9, 6.0 if x_max <= 48 else 12.0))
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("Months from CAR infusion")
        ax.set_ylabel("Event-free survival")
        ax.set_title("EFS by prior blinatumomab")
        if fitters:
            add_at_risk_counts(*fitters, ax=ax, fig=figure, rows_to_show=["At risk"])
        return figure

    def to_text(self) -> str:
        """Readable summary, phrased like the study abstract, followed by the full tables."""
        lines = [
            "Reproduction of Myers et al., J Clin Oncol 2022;40:932-944, on this cohort",
            "",
            *self._abstract_lines(),
            "",
        ]
        with pd.option_context("display.width", 160, "display.max_columns", 40, "display.float_format", table_number):
            for title, table in (
                ("Blinatumomab groups", self.groups),
                ("Day-28 CR (exact 95% CI)", self.cr),
                ("EFS, Kaplan-Meier (95% CI log(-log))", self.efs),
                ("RFS among day-28 CR, Kaplan-Meier (95% CI log(-log))", self.rfs),
                ("CD19 dim or partial before infusion", self.cd19),
                ("Cox model for EFS", self.cox),
                ("Relapse phenotypes, crude counts (ignore censoring; see the cumulative incidence)", self.phenotypes),
                ("Tests", self.tests),
            ):
                lines += [f"{title}:", table.to_string() if len(table) else "(empty)", ""]
        if self.competing is not None:
            lines += [self.competing.to_text()]
        notes = [*self.notes, *(self.competing.notes if self.competing is not None else [])]
        lines += ["Notes:", *(f"- {note}" for note in notes)]
        return "\n".join(lines) + "\n"

    def _abstract_lines(self) -> list[str]:
        counts = self.groups["n"]
        exposed = int(counts.drop(["naive", "unknown"], errors="ignore").sum())
        lines = [f"Patients: {self.n_patients}."]
        if self.age["n"]:
            lines[0] += f" Median age {self.age['median']:.1f} (IQR {self.age['q1']:.1f}-{self.age['q3']:.1f}) years."
        exposed_parts = [f"{int(counts.get(g, 0))} {GROUP_WORDS[g]}" for g in ("responder", "nonresponder")]
        if counts.get("exposed_unknown", 0):
            exposed_parts.append(f"{int(counts['exposed_unknown'])} with response unknown")
        lines.append(
            f"Prior blinatumomab: {exposed} ({_pct(exposed, self.n_patients)}): {', '.join(exposed_parts)}; "
            f"blinatumomab-naive {int(counts.get('naive', 0))} ({_pct(counts.get('naive', 0), self.n_patients)})"
            + (f"; exposure unknown {int(counts['unknown'])}" if counts.get("unknown", 0) else "")
            + "."
        )
        evaluable = self.cr["n_evaluable"]
        exposed_evaluable = int(evaluable.reindex(["responder", "nonresponder"]).fillna(0).sum())
        lines.append(
            f"Evaluable for CAR response: {int(evaluable.get('all', 0))} ({exposed_evaluable} blina-exposed: "
            f"{int(evaluable.get('nonresponder', 0))} nonresponders, {int(evaluable.get('responder', 0))} "
            f"responders; {int(evaluable.get('naive', 0))} blina-naive)."
        )
        cr_parts = [
            f"{GROUP_WORDS[g]} {int(row['n_cr'])}/{int(row['n_evaluable'])}, "
            f"{_pct_ci(row['cr_rate'], row['ci_low'], row['ci_high'])}"
            for g, row in self._study_rows(self.cr)
        ]
        lines.append(
            f"CR after CAR: {', '.join(cr_parts)}; chi-square across groups {_p(self._test_p('cr_chi_square'))}, "
            f"Fisher nonresponders vs naive {_p(self._test_p('cr_fisher_nonresponder_vs_naive'))}."
        )
        for endpoint, table in (("EFS", self.efs), ("RFS", self.rfs)):
            prefix = endpoint.lower()
            for horizon, words in (("6mo", "6-month"), ("12mo", "12-month")):
                parts = [
                    f"{GROUP_WORDS[g]} "
                    + _pct_ci(
                        row[f"{prefix}_{horizon}"],
                        row[f"{prefix}_{horizon}_ci_low"],
                        row[f"{prefix}_{horizon}_ci_high"],
                    )
                    for g, row in self._study_rows(table)
                ]
                lines.append(
                    f"{words} {endpoint}: {', '.join(parts)}, log-rank {_p(self._test_p(f'{prefix}_logrank'))}."
                )
        cd19 = self.cd19
        lines.append(
            "Pre-infusion CD19 dim or partial, blina-exposed vs naive: "
            f"{_pct(cd19.loc['exposed', 'n_dim_partial'], cd19.loc['exposed', 'n_assessed'])} "
            f"({int(cd19.loc['exposed', 'n_dim_partial'])}/{int(cd19.loc['exposed', 'n_assessed'])}) vs "
            f"{_pct(cd19.loc['naive', 'n_dim_partial'], cd19.loc['naive', 'n_assessed'])} "
            f"({int(cd19.loc['naive', 'n_dim_partial'])}/{int(cd19.loc['naive', 'n_assessed'])}) "
            f"(Fisher {_p(self._test_p('cd19_fisher_exposed_vs_naive'))})."
        )
        info = self.cox_info
        lines.append(
            f"Multivariable Cox model for EFS (n={info['n']}, {info['events']} events; {info['n_dropped_missing']} "
            f"dropped for a missing covariate, {info['n_outside_groups']} outside the three blinatumomab groups):"
        )
        if self.cox.empty:
            lines.append("  not fitted (see the notes).")
        for _, row in self.cox.iterrows():
            lines.append(
                f"  {row['label']}: HR {_num(row['hr'])} (95% CI {_num(row['ci_low'])}-{_num(row['ci_high'])}), "
                f"{_p(row['p'])}"
            )
        n_relapses = int(self.phenotypes["n"].sum())
        parts = [f"{int(self.phenotypes.loc[k, 'n'])} {k}" for k in RELAPSE_PHENOTYPES]
        lines.append(
            f"Relapses after CAR (crude counts): {n_relapses}/{self.n_patients} "
            f"({_pct(n_relapses, self.n_patients)}): {', '.join(parts)}."
        )
        if self.competing is not None:
            lines += self.competing.summary_lines()
        return lines

    @staticmethod
    def _study_rows(table: pd.DataFrame) -> list[tuple[str, pd.Series]]:
        """The three study groups in the abstract's order (nonresponders, responders, naive)."""
        return [(g, table.loc[g]) for g in ("nonresponder", "responder", "naive") if g in table.index]

    def _test_p(self, name: str) -> float:
        return float(self.tests.loc[name, "p"]) if name in self.tests.index else math.nan

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``study_report.json``, ``study_report.txt``, ``km_efs_by_blina.png`` and (with the competing-risks
        analysis) ``cif_stacked_by_blina.png`` atomically.

        Returns
        -------
        dict
            ``{"json": path, "text": path, "plot": path}`` and ``"cif_plot": path``.
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        figure = self.plot_efs()
        paths = {
            "json": atomic_write_text(out / REPORT_JSON, json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"),
            "text": atomic_write_text(out / REPORT_TEXT, self.to_text()),
            "plot": atomic_write(out / KM_EFS_PNG, lambda tmp: figure.savefig(tmp, format="png", dpi=150)),
        }
        if self.competing is not None:
            stacked = self.competing.plot()
            paths["cif_plot"] = atomic_write(
                out / CIF_STACKED_PNG, lambda tmp: stacked.savefig(tmp, format="png", dpi=150)
            )
        return paths


def reproduce_study(
    records: pd.DataFrame, out_dir: str | Path | None = None, *, hsct_handling: str = "ignore"
) -> StudyReport:
    """Run the analysis of Myers et al. (J Clin Oncol 2022) on a cohort in the carrisk record schema.

    Parameters
    ----------
    records : DataFrame
        Raw records with the pre-infusion and outcome columns of ``docs/records.md``.
    out_dir : str or Path, optional
        When given, the report is also written there (see :meth:`StudyReport.write`).
    hsct_handling : {"ignore", "censor", "competing"}, default "ignore"
        Consolidative transplant after CAR in the competing-risks analysis (optional column
        ``hsct_after_car_days``); the study's choice, ``ignore``, records it without making it an event.

    Returns
    -------
    StudyReport

    Raises
    ------
    carrisk.schema.RecordError
        If the records fail validation with ``outcomes="required"`` (every problem is listed), or their outcome
        columns contradict each other (see :func:`carrisk.competing.outcomes.derive_first_event`).
    """
    validate_records(records, outcomes="required")
    competing = competing_risks_analysis(records, hsct_handling=hsct_handling)
    records = records.reset_index(drop=True)
    cohort = _cohort_table(records)
    notes = [
        f"Horizons: 6 months = {SIX_MONTHS_DAYS} days, 12 months = {TWELVE_MONTHS_DAYS} days from infusion.",
        "CR 95% CIs are exact (Clopper-Pearson). KM 95% CIs are lifelines' default log(-log) "
        "(exponential Greenwood) intervals.",
        "CR across the three groups: Pearson chi-square test of the 3x2 table (the exact Fisher-Freeman-Halton "
        "test is not used); nonresponders vs naive: Fisher's exact test (two-sided).",
        "RFS: patients in CR at day 28; event = relapse of any phenotype or death; time = efs_days, which for a "
        "patient in CR is the time to relapse, death or last follow-up (RFS time equals EFS time here).",
        "CD19 dim or partial (the published grouping) among patients with a CD19 result; blina-exposed includes "
        "exposed patients whose response is unknown.",
    ]
    tests: list[dict[str, Any]] = []
    groups = _group_sizes(cohort)
    if groups.loc["exposed_unknown", "n"] or groups.loc["unknown", "n"]:
        notes.append(
            f"{int(groups.loc['exposed_unknown', 'n'])} exposed with response unknown and "
            f"{int(groups.loc['unknown', 'n'])} with unknown exposure are reported apart and left out of the "
            "three-group tests and the Cox model."
        )
    cr = _cr_table(cohort, tests, notes)
    efs = _km_table(cohort, "efs", tests, notes)
    rfs_cohort = cohort[cohort["day28_cr"] == 1]
    disagree = int((rfs_cohort["rfs_event"] != rfs_cohort["efs_event"]).sum())
    if disagree:
        notes.append(
            f"{disagree} patient(s) in CR have efs_event different from (relapse or death); RFS uses relapse or "
            "death as instructed by the study definition. Check their relapse_phenotype and death cells."
        )
    rfs = _km_table(rfs_cohort.assign(rfs_days=rfs_cohort["efs_days"]), "rfs", tests, notes)
    cd19 = _cd19_table(cohort, tests)
    cox, cox_info = _cox_model(cohort, notes)
    ages = cohort["age_years"].dropna()
    age = {
        "n": len(ages),
        "median": float(ages.median()) if len(ages) else None,
        "q1": float(ages.quantile(0.25)) if len(ages) else None,
        "q3": float(ages.quantile(0.75)) if len(ages) else None,
    }
    report = StudyReport(
        n_patients=len(cohort),
        groups=groups,
        cr=cr,
        efs=efs,
        rfs=rfs,
        cd19=cd19,
        cox=cox,
        cox_info=cox_info,
        phenotypes=_phenotype_table(cohort),
        tests=pd.DataFrame(tests).set_index("name") if tests else _empty_tests(),
        age=age,
        notes=notes,
        efs_data=cohort[["group", "efs_days", "efs_event"]].copy(),
        competing=competing,
    )
    if out_dir is not None:
        report.write(out_dir)
    return report


def _column(records: pd.DataFrame, name: str) -> np.ndarray:
    parse = parsing.parse_binary if name in ("efs_event", "day28_cr", "death") else parsing.parse_number
    values = [parse(v) for v in records[name]]
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _cohort_table(records: pd.DataFrame) -> pd.DataFrame:
    """One row per patient: the study's groups, risk factors and outcomes, parsed by the feature builders."""
    blina = BlinatumomabStatus().fit(records).categorize(records)["blina_status"]
    burden = DiseaseBurden().fit(records).categorize(records)["disease_burden"]
    cd19 = CD19Expression(grouping="published").fit(records).categorize(records)["cd19"]
    kmt2a = KMT2ARearrangement().fit(records).categorize(records)["kmt2a"]
    hsct = PriorTransplant().fit(records).categorize(records)["prior_hsct_any"]
    phenotype = [parsing.parse_relapse_phenotype(v) or "none" for v in records["relapse_phenotype"]]
    efs_event = _column(records, "efs_event")
    death = _column(records, "death")
    relapsed = np.array([p in RELAPSE_PHENOTYPES for p in phenotype])
    return pd.DataFrame(
        {
            "group": blina.to_numpy(),
            "high_burden": np.where(burden == "unknown", np.nan, (burden == "high").astype(float)),
            "cd19_dim_partial": np.where(cd19 == "unknown", np.nan, (cd19 == "dim_or_partial").astype(float)),
            "kmt2a_rearranged": np.select(
                [kmt2a == "rearranged", kmt2a == "not_rearranged"], [1.0, 0.0], default=np.nan
            ),
            "prior_hsct": pd.to_numeric(hsct, errors="coerce").to_numpy(dtype=float),
            "age_years": _column(records, "age_years"),
            "efs_days": _column(records, "efs_days"),
            "efs_event": efs_event,
            "day28_cr": _column(records, "day28_cr"),
            "relapse_phenotype": phenotype,
            "rfs_event": (relapsed | (death == 1)).astype(float),
        }
    )


def _groups_present(groups: pd.Series) -> list[str]:
    return [g for g in parsing.BLINA_STATUSES if (groups == g).any()]


def _group_sizes(cohort: pd.DataFrame) -> pd.DataFrame:
    counts = cohort["group"].value_counts().reindex(list(parsing.BLINA_STATUSES), fill_value=0)
    table = pd.DataFrame({"n": counts.astype(int), "pct": 100.0 * counts / len(cohort)})
    table.index.name = "blina_status"
    return table


def _table_groups(cohort: pd.DataFrame) -> list[str]:
    """Rows of a per-group table: the three study groups always, the others when present."""
    extra = [g for g in ("exposed_unknown", "unknown") if (cohort["group"] == g).any()]
    return [*STUDY_GROUPS, *extra]


def _exact_ci(successes: int, trials: int) -> tuple[float, float]:
    if trials == 0:
        return math.nan, math.nan
    interval = stats.binomtest(successes, trials).proportion_ci(confidence_level=CONFIDENCE_LEVEL, method="exact")
    return float(interval.low), float(interval.high)


def _cr_table(cohort: pd.DataFrame, tests: list[dict[str, Any]], notes: list[str]) -> pd.DataFrame:
    evaluable = cohort[cohort["day28_cr"].notna()]
    if len(evaluable) < len(cohort):
        notes.append(f"{len(cohort) - len(evaluable)} patient(s) without a day-28 response are not CR-evaluable.")
    rows = {}
    for group in [*_table_groups(cohort), "all"]:
        subset = evaluable if group == "all" else evaluable[evaluable["group"] == group]
        n_cr, n = int((subset["day28_cr"] == 1).sum()), len(subset)
        low, high = _exact_ci(n_cr, n)
        rows[group] = {
            "n_evaluable": n,
            "n_cr": n_cr,
            "cr_rate": n_cr / n if n else math.nan,
            "ci_low": low,
            "ci_high": high,
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "group"

    counts = table.loc[list(STUDY_GROUPS), ["n_cr", "n_evaluable"]]
    contingency = np.column_stack([counts["n_cr"], counts["n_evaluable"] - counts["n_cr"]])
    contingency = contingency[contingency.sum(axis=1) > 0]
    if contingency.shape[0] >= 2 and (contingency.sum(axis=0) > 0).all():
        result = stats.chi2_contingency(contingency, correction=False)
        small = int((result.expected_freq < 5).sum())
        tests.append(
            _test(
                "cr_chi_square",
                "day-28 CR",
                f"Pearson chi-square, {contingency.shape[0]}x2 table",
                result.statistic,
                result.dof,
                result.pvalue,
                f"{small} cell(s) with expected count < 5" if small else "",
            )
        )
    else:
        tests.append(_test("cr_chi_square", "day-28 CR", "Pearson chi-square", note="not computable: degenerate table"))
    nonresponder, naive = counts.loc["nonresponder"], counts.loc["naive"]
    if nonresponder["n_evaluable"] and naive["n_evaluable"]:
        two_by_two = [
            [nonresponder["n_cr"], nonresponder["n_evaluable"] - nonresponder["n_cr"]],
            [naive["n_cr"], naive["n_evaluable"] - naive["n_cr"]],
        ]
        result = stats.fisher_exact(two_by_two)
        tests.append(
            _test(
                "cr_fisher_nonresponder_vs_naive",
                "day-28 CR",
                "Fisher's exact, two-sided",
                result.statistic,
                None,
                result.pvalue,
                "statistic = odds ratio of CR, nonresponders vs naive",
            )
        )
    return table


def _km_at(fitter: KaplanMeierFitter, durations: pd.Series, horizon_days: float) -> tuple[float, float, float]:
    """S(t) and its 95% CI at ``horizon_days``; missing when follow-up ends before it with S > 0."""
    survival = float(fitter.survival_function_at_times(horizon_days).iloc[0])
    if durations.max() < horizon_days and survival > 0:
        return math.nan, math.nan, math.nan
    bounds = fitter.confidence_interval_survival_function_.loc[:horizon_days].iloc[-1]
    return survival, float(bounds.iloc[0]), float(bounds.iloc[1])


def _km_table(cohort: pd.DataFrame, endpoint: str, tests: list[dict[str, Any]], notes: list[str]) -> pd.DataFrame:
    time_col, event_col = f"{endpoint}_days", f"{endpoint}_event"
    rows = {}
    for group in [*_table_groups(cohort), "all"]:
        subset = cohort if group == "all" else cohort[cohort["group"] == group]
        row: dict[str, Any] = {"n": len(subset), "events": int(subset[event_col].sum())}
        fitter = None
        if len(subset):
            fitter = KaplanMeierFitter(alpha=1 - CONFIDENCE_LEVEL).fit(subset[time_col], subset[event_col])
        median = fitter.median_survival_time_ if fitter is not None else math.nan
        row["median_days"] = float(median) if np.isfinite(median) else math.nan
        for horizon, days in HORIZONS_DAYS.items():
            estimate = _km_at(fitter, subset[time_col], days) if fitter is not None else (math.nan,) * 3
            row[f"{endpoint}_{horizon}"], row[f"{endpoint}_{horizon}_ci_low"], row[f"{endpoint}_{horizon}_ci_high"] = (
                estimate
            )
            row[f"at_risk_{horizon}"] = int((subset[time_col] >= days).sum())
        rows[group] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "group"
    short = [g for g in table.index if table.loc[g, "n"] and np.isnan(table.loc[g, f"{endpoint}_12mo"])]
    if short:
        notes.append(f"{endpoint.upper()} at 12 months not estimable (follow-up ends earlier) for: {', '.join(short)}.")

    study = cohort[cohort["group"].isin(STUDY_GROUPS)]
    name = f"{endpoint}_logrank"
    if study["group"].nunique() >= 2:
        result = multivariate_logrank_test(study[time_col], study["group"], study[event_col])
        tests.append(
            _test(
                name,
                endpoint.upper(),
                f"log-rank, {study['group'].nunique()} groups",
                result.test_statistic,
                result.degrees_of_freedom,
                result.p_value,
            )
        )
    else:
        tests.append(_test(name, endpoint.upper(), "log-rank", note="not computable: fewer than two groups"))
    return table


def _cd19_table(cohort: pd.DataFrame, tests: list[dict[str, Any]]) -> pd.DataFrame:
    assessed = cohort[cohort["cd19_dim_partial"].notna()]
    exposed = assessed["group"].isin(("responder", "nonresponder", "exposed_unknown"))
    rows = {}
    for name, subset in (("exposed", assessed[exposed]), ("naive", assessed[assessed["group"] == "naive"])):
        n_dim, n = int(subset["cd19_dim_partial"].sum()), len(subset)
        low, high = _exact_ci(n_dim, n)
        rows[name] = {
            "n_assessed": n,
            "n_dim_partial": n_dim,
            "pct": 100.0 * n_dim / n if n else math.nan,
            "ci_low": 100.0 * low,
            "ci_high": 100.0 * high,
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "blina"
    if (table["n_assessed"] > 0).all():
        two_by_two = [[r.n_dim_partial, r.n_assessed - r.n_dim_partial] for r in table.itertuples()]
        result = stats.fisher_exact(two_by_two)
        tests.append(
            _test(
                "cd19_fisher_exposed_vs_naive",
                "CD19 dim or partial",
                "Fisher's exact, two-sided",
                result.statistic,
                None,
                result.pvalue,
                "statistic = odds ratio of dim/partial, exposed vs naive",
            )
        )
    return table


def _cox_model(cohort: pd.DataFrame, notes: list[str]) -> tuple[pd.DataFrame, dict[str, Any]]:
    study = cohort[cohort["group"].isin(STUDY_GROUPS)]
    design = pd.DataFrame(
        {
            "blina_responder": (study["group"] == "responder").astype(float),
            "blina_nonresponder": (study["group"] == "nonresponder").astype(float),
            "high_burden": study["high_burden"],
            "cd19_dim_partial": study["cd19_dim_partial"],
            "kmt2a_rearranged": study["kmt2a_rearranged"],
            "prior_hsct": study["prior_hsct"],
            "age_per_10y": study["age_years"] / 10.0,
            "efs_days": study["efs_days"],
            "efs_event": study["efs_event"],
        }
    )
    complete = design.dropna()
    constant = [c for c in COX_COVARIATES if complete[c].nunique() < 2]
    info: dict[str, Any] = {
        "n": len(complete),
        "events": int(complete["efs_event"].sum()),
        "n_dropped_missing": len(design) - len(complete),
        "n_outside_groups": len(cohort) - len(study),
        "dropped_covariates": constant,
        "concordance": None,
    }
    empty = pd.DataFrame(columns=["label", "hr", "ci_low", "ci_high", "p"], index=pd.Index([], name="covariate"))
    if constant:
        notes.append(f"Cox model: covariate(s) {constant} constant after dropping missing rows, left out.")
    kept = [c for c in COX_COVARIATES if c not in constant]
    if not kept or info["events"] <= len(kept):
        notes.append(f"Cox model not fitted: {info['events']} events for {len(kept)} covariates.")
        return empty, info
    try:
        fitter = CoxPHFitter().fit(complete[[*kept, "efs_days", "efs_event"]], "efs_days", "efs_event")
    except ConvergenceError as err:
        notes.append(f"Cox model did not converge ({str(err).splitlines()[0]}); no hazard ratios reported.")
        return empty, info
    summary = fitter.summary
    table = pd.DataFrame(
        {
            "label": [COX_COVARIATES[c] for c in kept],
            "hr": summary["exp(coef)"].to_numpy(),
            "ci_low": summary["exp(coef) lower 95%"].to_numpy(),
            "ci_high": summary["exp(coef) upper 95%"].to_numpy(),
            "p": summary["p"].to_numpy(),
        },
        index=pd.Index(kept, name="covariate"),
    )
    info["concordance"] = float(fitter.concordance_index_)
    notes.append(
        f"Cox model for EFS (Efron ties, 95% Wald CIs): {info['n']} patients, {info['events']} events; "
        f"{info['n_dropped_missing']} dropped for a missing covariate (unknown burden or CD19, KMT2A not tested or "
        "unknown, missing transplant count or age)."
    )
    return table, info


def _phenotype_table(cohort: pd.DataFrame) -> pd.DataFrame:
    relapses = cohort[cohort["relapse_phenotype"].isin(RELAPSE_PHENOTYPES)]
    counts = relapses["relapse_phenotype"].value_counts().reindex(list(RELAPSE_PHENOTYPES), fill_value=0)
    table = pd.DataFrame(
        {
            "n": counts.astype(int),
            "pct_of_relapses": 100.0 * counts / len(relapses) if len(relapses) else np.nan,
            "pct_of_patients": 100.0 * counts / len(cohort),
        }
    )
    by_group = pd.crosstab(relapses["relapse_phenotype"], relapses["group"])
    for group in _table_groups(cohort):
        column = by_group[group] if group in by_group.columns else pd.Series(dtype=int)
        table[f"n_{group}"] = column.reindex(list(RELAPSE_PHENOTYPES), fill_value=0).astype(int)
    table.index.name = "relapse_phenotype"
    return table


def _test(
    name: str,
    analysis: str,
    test: str,
    statistic: float | None = None,
    df: float | None = None,
    p: float | None = None,
    note: str = "",
) -> dict[str, Any]:
    def number(value: float | None) -> float:
        return math.nan if value is None else float(value)

    return {
        "name": name,
        "analysis": analysis,
        "test": test,
        "statistic": number(statistic),
        "df": number(df),
        "p": number(p),
        "note": note,
    }


def _empty_tests() -> pd.DataFrame:
    return pd.DataFrame(columns=["analysis", "test", "statistic", "df", "p", "note"], index=pd.Index([], name="name"))


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """DataFrame -> list of row dicts with the index as the first key; NaN/inf -> None, numpy -> Python."""
    return json.loads(table.reset_index().to_json(orient="records", double_precision=10))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _pct(count: float, total: float) -> str:
    return f"{100.0 * count / total:.1f}%" if total else "n/a"


def _pct_ci(estimate: float, low: float, high: float) -> str:
    if estimate is None or np.isnan(estimate):
        return "not estimable"
    return f"{100 * estimate:.1f}% (95% CI {100 * low:.1f}-{100 * high:.1f})"


def table_number(value: float) -> str:
    """One readable format for every number in a report table: 3 decimals, ``<0.001`` below that, no exponents.

    Counts and days print as 3-decimal floats only when pandas stores them as floats; p-values below 0.001 read
    ``<0.001`` as in the abstract lines.
    """
    if value is None or np.isnan(value):
        return "n/a"
    if 0 < abs(value) < 0.0005:
        return "<0.001" if value > 0 else ">-0.001"
    return f"{value:.3f}"


def _num(value: float) -> str:
    return "n/a" if value is None or np.isnan(value) else f"{value:.2f}"


def _p(value: float) -> str:
    if value is None or np.isnan(value):
        return "p=n/a"
    return "p<0.001" if value < 0.001 else f"p={value:.3f}"


__all__ = ["CIF_STACKED_PNG", "SIX_MONTHS_DAYS", "TWELVE_MONTHS_DAYS", "StudyReport", "reproduce_study"]
