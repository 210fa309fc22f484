"""Tests for carrisk.reproduce: the study's analysis reproduced on a cohort in the record schema."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter
from scipy import stats

from carrisk.features import BlinatumomabStatus
from carrisk.reproduce import (
    CIF_STACKED_PNG,
    KM_EFS_PNG,
    REPORT_JSON,
    REPORT_TEXT,
    SIX_MONTHS_DAYS,
    StudyReport,
    reproduce_study,
)
from carrisk.schema import RecordError

GROUP_SPELLINGS = {
    "naive": ("no", ""),
    "responder": ("yes", "MRD-negative CR"),
    "nonresponder": ("Y", "no response"),
    "exposed_unknown": ("yes", "not evaluable"),
}


def make_cohort(n: int = 300, seed: int = 0, burden_log_hr: float = 1.5) -> pd.DataFrame:
    """Records with every column of docs/records.md; high burden multiplies the relapse hazard by exp(log HR)."""
    rng = np.random.default_rng(seed)
    group = rng.choice(list(GROUP_SPELLINGS), size=n, p=[0.7, 0.12, 0.12, 0.06])
    high = rng.random(n) < 0.4
    blasts = np.where(high, rng.uniform(5, 90, n), rng.choice([0.0, 0.05, 1.5], size=n))
    hsct = rng.choice([0, 1, 2], size=n, p=[0.6, 0.3, 0.1])
    kmt2a = rng.choice(["rearranged", "not rearranged", "not tested", ""], size=n, p=[0.1, 0.75, 0.1, 0.05])
    cd19 = rng.choice(["bright", "dim", "partial", "no disease"], size=n, p=[0.85, 0.05, 0.05, 0.05])
    age = np.round(rng.uniform(1, 30, n), 1)

    cr_prob = np.where(group == "nonresponder", 0.6, 0.93)
    cr = rng.random(n) < cr_prob
    relapse_rate = 0.5 / 365.25 * np.exp(burden_log_hr * high + 1.0 * (group == "nonresponder"))
    relapse_time = 28 + rng.exponential(1 / relapse_rate)
    death_time = 28 + rng.exponential(365.25 / 0.05, n)
    censor_time = rng.uniform(60, 1500, n)
    first = np.minimum.reduce([relapse_time, death_time, censor_time])
    relapsed = cr & (relapse_time == first)
    died_in_cr = cr & (death_time == first)
    efs_days = np.where(cr, first, 28.0)
    efs_event = np.where(cr, relapsed | died_in_cr, True)
    phenotype = np.where(relapsed, rng.choice(["CD19+", "CD19-", "lineage switch", "unclassified"], size=n), "none")
    death = died_in_cr | ((relapsed | ~cr) & (rng.random(n) < 0.5))
    os_days = np.where(death & ~died_in_cr, efs_days + rng.uniform(10, 200, n), efs_days)
    exposed = [GROUP_SPELLINGS[g][0] for g in group]
    response = [GROUP_SPELLINGS[g][1] for g in group]
    return pd.DataFrame(
        {
            "patient_id": [f"P{i:04d}" for i in range(n)],
            "age_years": age.astype(str),
            "sex": rng.choice(["M", "F", "female"], size=n),
            "car_product": rng.choice(["Kymriah", "NCI", "SCRI", "CHOP"], size=n),
            "blina_exposed": exposed,
            "blina_response": response,
            "marrow_blasts_pct": [f"{b:g}%" if b >= 5 else ("MRD negative" if b == 0 else f"{b:g}") for b in blasts],
            "cns_status": rng.choice(["CNS1", "CNS2"], size=n),
            "extramedullary_disease": "no",
            "cd19_expression": cd19,
            "kmt2a_status": kmt2a,
            "cytogenetics": "46,XX",
            "prior_hsct_count": hsct.astype(str),
            "months_since_last_hsct": [f"{m:.1f}" if h else "" for h, m in zip(hsct, rng.uniform(3, 40, n))],
            "prior_relapses": rng.integers(0, 4, n).astype(str),
            "down_syndrome": "no",
            "prior_inotuzumab": rng.choice(["no", "yes"], size=n, p=[0.9, 0.1]),
            "efs_days": np.round(efs_days, 1).astype(str),
            "efs_event": efs_event.astype(int).astype(str),
            "day28_cr": cr.astype(int).astype(str),
            "relapse_phenotype": phenotype,
            "os_days": np.round(np.maximum(os_days, efs_days), 1).astype(str),
            "death": death.astype(int).astype(str),
        }
    ).replace("", np.nan)


@pytest.fixture(scope="module")
def records() -> pd.DataFrame:
    return make_cohort()


@pytest.fixture(scope="module")
def report(records: pd.DataFrame) -> StudyReport:
    return reproduce_study(records)


def _status(records: pd.DataFrame) -> pd.Series:
    return BlinatumomabStatus().fit(records).categorize(records)["blina_status"]


def _product_limit(durations: np.ndarray, events: np.ndarray, horizon: float) -> tuple[float, float]:
    """Naive Kaplan-Meier S(horizon) and the Greenwood sum sum d / (n (n - d)) over event times <= horizon."""
    survival, greenwood = 1.0, 0.0
    for time in np.unique(durations[(events == 1) & (durations <= horizon)]):
        at_risk = int((durations >= time).sum())
        deaths = int(((durations == time) & (events == 1)).sum())
        survival *= 1 - deaths / at_risk
        greenwood += deaths / (at_risk * (at_risk - deaths)) if at_risk > deaths else math.inf
    return survival, greenwood


def test_group_counts_sum_to_n_and_match_the_blinatumomab_builder(records, report):
    assert report.groups["n"].sum() == len(records) == report.n_patients
    assert report.groups["pct"].sum() == pytest.approx(100.0)
    expected = _status(records).value_counts()
    for group, count in expected.items():
        assert report.groups.loc[group, "n"] == count
    assert report.groups.loc["exposed_unknown", "n"] > 0


def test_six_month_efs_per_group_equals_lifelines_kaplan_meier_on_the_same_subset(records, report):
    status = _status(records)
    durations = records["efs_days"].astype(float).to_numpy()
    events = records["efs_event"].astype(int).to_numpy()
    z = stats.norm.ppf(0.975)
    for group in ("naive", "responder", "nonresponder", "exposed_unknown"):
        mask = (status == group).to_numpy()
        fitter = KaplanMeierFitter().fit(durations[mask], events[mask])
        expected = float(fitter.survival_function_at_times(SIX_MONTHS_DAYS).iloc[0])
        bounds = fitter.confidence_interval_survival_function_.loc[:SIX_MONTHS_DAYS].iloc[-1]
        row = report.efs.loc[group]
        assert row["n"] == mask.sum()
        assert row["efs_6mo"] == pytest.approx(expected, abs=1e-12)
        assert row["efs_6mo_ci_low"] == pytest.approx(bounds.iloc[0], abs=1e-12)
        assert row["efs_6mo_ci_high"] == pytest.approx(bounds.iloc[1], abs=1e-12)
        # independent check: product-limit by hand and the log(-log) (exponential Greenwood) interval
        survival, greenwood = _product_limit(durations[mask], events[mask], SIX_MONTHS_DAYS)
        assert row["efs_6mo"] == pytest.approx(survival, abs=1e-12)
        if 0 < survival < 1:
            log_s = math.log(survival)
            low = math.exp(-math.exp(math.log(-log_s) - z * math.sqrt(greenwood) / log_s))
            high = math.exp(-math.exp(math.log(-log_s) + z * math.sqrt(greenwood) / log_s))
            assert row["efs_6mo_ci_low"] == pytest.approx(low, rel=1e-6)
            assert row["efs_6mo_ci_high"] == pytest.approx(high, rel=1e-6)


def test_rfs_is_among_day28_cr_with_relapse_or_death_as_event(records, report):
    status = _status(records)
    in_cr = records["day28_cr"].astype(int) == 1
    relapsed = records["relapse_phenotype"].fillna("none") != "none"
    event = relapsed | (records["death"].astype(int) == 1)
    for group in ("naive", "responder", "nonresponder"):
        mask = in_cr & (status == group)
        assert report.rfs.loc[group, "n"] == mask.sum()
        assert report.rfs.loc[group, "events"] == (mask & event).sum()
        fitter = KaplanMeierFitter().fit(records.loc[mask, "efs_days"].astype(float), event[mask])
        assert report.rfs.loc[group, "rfs_6mo"] == pytest.approx(
            float(fitter.survival_function_at_times(SIX_MONTHS_DAYS).iloc[0]), abs=1e-12
        )


def test_cr_rates_and_confidence_intervals_equal_scipy_exact(records, report):
    status = _status(records)
    cr = records["day28_cr"].astype(int)
    for group in ("naive", "responder", "nonresponder"):
        subset = cr[status == group]
        ci = stats.binomtest(int(subset.sum()), len(subset)).proportion_ci(method="exact")
        row = report.cr.loc[group]
        assert (row["n_cr"], row["n_evaluable"]) == (subset.sum(), len(subset))
        assert row["cr_rate"] == pytest.approx(subset.mean())
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((ci.low, ci.high), abs=1e-12)


def test_cr_group_tests_are_chi_square_of_the_3x2_table_and_fisher_nonresponder_vs_naive(records, report):
    status = _status(records)
    cr = records["day28_cr"].astype(int)
    table = [
        [(cr[status == g] == 1).sum(), (cr[status == g] == 0).sum()] for g in ("naive", "responder", "nonresponder")
    ]
    assert report.tests.loc["cr_chi_square", "p"] == pytest.approx(
        stats.chi2_contingency(table, correction=False).pvalue
    )
    fisher = stats.fisher_exact([table[2], table[0]])
    assert report.tests.loc["cr_fisher_nonresponder_vs_naive", "p"] == pytest.approx(fisher.pvalue)
    assert report.tests.loc["efs_logrank", "df"] == 2


def test_cd19_dim_or_partial_prevalence_and_fisher_test(records, report):
    status = _status(records)
    assessed = records["cd19_expression"] != "no disease"
    dim = records["cd19_expression"].isin(["dim", "partial"])
    exposed = status.isin(["responder", "nonresponder", "exposed_unknown"])
    naive = status == "naive"
    table = [[(d & m & assessed).sum(), (~d & m & assessed).sum()] for d, m in ((dim, exposed), (dim, naive))]
    assert report.cd19.loc["exposed", "n_assessed"] == (exposed & assessed).sum()
    assert report.cd19.loc["naive", "n_dim_partial"] == table[1][0]
    expected = stats.fisher_exact(table).pvalue
    assert report.tests.loc["cd19_fisher_exposed_vs_naive", "p"] == pytest.approx(expected)


def test_cox_hazard_ratio_exceeds_one_for_a_covariate_that_drives_the_hazard():
    report = reproduce_study(make_cohort(n=400, seed=3, burden_log_hr=1.5))
    assert report.cox.loc["high_burden", "hr"] > 1
    assert report.cox.loc["high_burden", "ci_low"] > 1
    assert report.cox.loc["blina_nonresponder", "hr"] > 1
    assert list(report.cox.index) == [
        "blina_responder",
        "blina_nonresponder",
        "high_burden",
        "cd19_dim_partial",
        "kmt2a_rearranged",
        "prior_hsct",
        "age_per_10y",
    ]


def test_cox_drops_rows_with_missing_covariates_and_counts_them(records, report):
    status = _status(records)
    in_groups = status.isin(["naive", "responder", "nonresponder"])
    # a blank kmt2a_status is read from the karyotype ("46,XX": not rearranged), so only "not tested" is missing
    missing = (records["kmt2a_status"] == "not tested") | (records["cd19_expression"] == "no disease")
    assert report.cox_info["n_outside_groups"] == (~in_groups).sum()
    assert report.cox_info["n_dropped_missing"] == (in_groups & missing).sum()
    assert report.cox_info["n"] == (in_groups & ~missing).sum()


def test_relapse_phenotype_counts(records, report):
    counts = records["relapse_phenotype"].value_counts()
    for phenotype in ("CD19+", "CD19-", "lineage switch", "unclassified"):
        assert report.phenotypes.loc[phenotype, "n"] == counts.get(phenotype, 0)


def test_twelve_month_estimate_is_missing_when_follow_up_ends_earlier(records):
    short = records.copy()
    naive = _status(short) == "naive"
    short.loc[naive, "efs_days"] = short.loc[naive, "efs_days"].astype(float).clip(upper=300).astype(str)
    cut = naive & (short["efs_days"].astype(float) == 300)
    # Follow-up ends at day 300: what came later (relapse, death) is not observed.
    short.loc[cut, ["efs_event", "relapse_phenotype", "death", "os_days"]] = ["0", "none", "0", "300"]
    report = reproduce_study(short)
    assert math.isnan(report.efs.loc["naive", "efs_12mo"])
    assert not math.isnan(report.efs.loc["naive", "efs_6mo"])


def test_to_text_reads_like_the_abstract(report):
    text = report.to_text()
    row = report.efs.loc["nonresponder"]
    expected = (
        f"nonresponders {100 * row['efs_6mo']:.1f}% "
        f"(95% CI {100 * row['efs_6mo_ci_low']:.1f}-{100 * row['efs_6mo_ci_high']:.1f})"
    )
    six_month_line = next(line for line in text.splitlines() if line.startswith("6-month EFS:"))
    assert expected in six_month_line
    assert "log-rank p" in six_month_line
    assert "RFS time equals EFS time" in text


def test_write_produces_the_three_files_and_the_json_loads(report, tmp_path):
    paths = report.write(tmp_path / "out")
    assert {p.name for p in (tmp_path / "out").iterdir()} == {REPORT_JSON, REPORT_TEXT, KM_EFS_PNG, CIF_STACKED_PNG}
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    loaded = json.loads(paths["json"].read_text())
    assert loaded["n_patients"] == report.n_patients
    assert {r["blina_status"]: r["n"] for r in loaded["groups"]} == report.groups["n"].to_dict()
    assert paths["text"].read_text() == report.to_text()


def test_reproduce_study_writes_when_given_out_dir(records, tmp_path):
    reproduce_study(records.head(120), out_dir=tmp_path)
    assert (tmp_path / REPORT_JSON).exists() and (tmp_path / KM_EFS_PNG).exists()


def test_invalid_records_are_rejected_with_every_problem():
    bad = make_cohort(n=40).drop(columns=["efs_days"])
    bad.loc[0, "day28_cr"] = "maybe"
    with pytest.raises(RecordError) as err:
        reproduce_study(bad)
    assert {p.column for p in err.value.problems} >= {"efs_days", "day28_cr"}


def test_simulated_cohort_runs_end_to_end():
    simulate = pytest.importorskip("carrisk.simulate")
    cohort = simulate.simulate_cohort(420, seed=1)
    report = reproduce_study(cohort.records)
    assert report.groups["n"].sum() == 420
    assert set(report.cr.index) >= {"naive", "responder", "nonresponder", "all"}
    json.dumps(report.to_dict(), allow_nan=False)
