"""Tests of the calibrated cohort simulator (carrisk.simulate)."""

from __future__ import annotations

import dataclasses
import json
import re
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter

from carrisk.simulate import (
    CAUSES,
    EXTERNAL_CENTRES,
    RECORD_COLUMNS,
    SIX_MONTHS_DAYS,
    TWELVE_MONTHS_DAYS,
    SimulatedCohort,
    cohort_moments,
    load_simulation_params,
    oracle_concordance,
    simulate_cohort,
    true_cause_incidence,
    true_survival,
)

DOCS_RECORDS = Path(__file__).resolve().parents[1] / "docs" / "records.md"

# Accepted spellings copied from docs/records.md (case-insensitive), per column.
YES_NO = {"yes", "no", "y", "n", "1", "0", "true", "false"}
MISSING_TOKENS = {"na", "n/a", "unknown", "not known", "."}
ACCEPTED = {
    "sex": {"m", "f", "male", "female"},
    "car_product": {
        "tisagenlecleucel",
        "kymriah",
        "tisa-cel",
        "ctl019",
        "nci",
        "nci cd19-28z",
        "19-28z",
        "scri",
        "seattle",
        "plat-02",
        "chop",
        "penn",
        "chop/penn",
        "ctl119",
        "hucart19",
        "other",
    },
    "blina_exposed": YES_NO,
    "blina_response": {
        "cr",
        "cri",
        "mrd-negative cr",
        "mrd neg",
        "mrd-positive cr",
        "pr",
        "no response",
        "nr",
        "refractory",
        "pd",
        "sd",
        "no cr",
        "not evaluable",
        "ne",
    },
    "cns_status": {"cns1", "cns2", "cns3", "1", "2", "3", "cns-3", "cns 2b"},
    "extramedullary_disease": YES_NO,
    "cd19_expression": {
        "bright",
        "normal",
        "positive",
        "cd19+",
        "cd19+ bright",
        "dim",
        "cd19 dim",
        "weak",
        "partial",
        "partial loss",
        "heterogeneous",
        "cd19-neg subpopulation",
        "bimodal",
        "negative",
        "cd19-",
        "cd19 neg",
        "no disease",
        "not assessable",
    },
    "kmt2a_status": {
        "rearranged",
        "kmt2a-r",
        "mll-r",
        "positive",
        "yes",
        "not rearranged",
        "negative",
        "germline",
        "no",
        "not tested",
    },
    "down_syndrome": YES_NO,
    "prior_inotuzumab": YES_NO,
}
MARROW_TOKENS = {"<0.01", "mrd negative", "mrd neg", "undetectable", "m1", "m2", "m3"}
CANONICAL = {
    "sex": {"M", "F"},
    "car_product": {"tisagenlecleucel", "nci_cd28", "scri_plat02", "chop_penn"},
    "cns_status": {"CNS1", "CNS2", "CNS3"},
    "cd19_expression": {"bright", "dim", "partial", "negative"},
    "kmt2a_status": {"rearranged", "not_rearranged", "not_tested"},
    "relapse_phenotype": {"none", "CD19+", "CD19-", "lineage switch", "unclassified"},
}


@pytest.fixture(scope="module")
def cohort() -> SimulatedCohort:
    return simulate_cohort(420, seed=11)


@pytest.fixture(scope="module")
def canonical() -> SimulatedCohort:
    return simulate_cohort(420, seed=11, messy=False)


@pytest.fixture(scope="module")
def large() -> SimulatedCohort:
    return simulate_cohort(40_000, seed=2024, messy=False)


def _km(durations: np.ndarray, events: np.ndarray, horizon: float) -> float:
    fitter = KaplanMeierFitter().fit(durations, events)
    return float(fitter.survival_function_at_times(horizon).iloc[0])


def test_same_seed_gives_identical_cohort(cohort: SimulatedCohort) -> None:
    again = simulate_cohort(420, seed=11)
    pd.testing.assert_frame_equal(cohort.records, again.records)
    pd.testing.assert_frame_equal(cohort.truth, again.truth)
    np.testing.assert_array_equal(cohort.truth_curves, again.truth_curves)


def test_different_seed_gives_different_cohort(cohort: SimulatedCohort) -> None:
    other = simulate_cohort(420, seed=12)
    assert not cohort.records["efs_days"].equals(other.records["efs_days"])
    assert not np.allclose(cohort.truth["true_risk"], other.truth["true_risk"])


def test_columns_are_the_record_schema_in_order(cohort: SimulatedCohort, canonical: SimulatedCohort) -> None:
    column_tables = DOCS_RECORDS.read_text(encoding="utf-8").split("## Numbers")[0]  # later tables repeat names
    documented = re.findall(r"^\| `([a-z0-9_]+)` \|", column_tables, flags=re.M)
    assert tuple(documented) == RECORD_COLUMNS
    assert list(cohort.records.columns) == documented
    assert list(canonical.records.columns) == documented
    assert cohort.records["patient_id"].iloc[0] == "SIM-0001"
    assert cohort.records["patient_id"].is_unique
    assert list(cohort.truth["patient_id"]) == list(cohort.records["patient_id"])


def test_truth_has_documented_columns(cohort: SimulatedCohort) -> None:
    expected = {"patient_id", "true_cr_prob", "true_efs_6mo", "true_efs_12mo", "true_risk", "true_lp_cr"}
    assert expected <= set(cohort.truth.columns)
    assert {f"true_lp_{c}" for c in ("cd19pos", "cd19neg", "lineage_switch", "death")} <= set(cohort.truth)
    assert cohort.truth_curves.shape == (420, cohort.time_grid.size)


def test_canonical_mode_has_canonical_spellings_and_only_structural_blanks(canonical: SimulatedCohort) -> None:
    rec = canonical.records
    for column, allowed in CANONICAL.items():
        assert set(rec[column].unique()) <= allowed, column
    structural = {"blina_response", "months_since_last_hsct", "day28_cr"}
    for column in set(RECORD_COLUMNS) - structural:
        assert not rec[column].isna().any(), column
    assert rec["blina_response"].isna().equals(~rec["blina_exposed"])
    assert rec["months_since_last_hsct"].isna().equals(rec["prior_hsct_count"] == 0)
    assert rec["day28_cr"].isna().equals(rec["efs_days"] < 28)  # early deaths, not evaluable for response
    assert set(rec["blina_response"].dropna()) <= {"CR", "NR", "not evaluable"}
    for column in ("blina_exposed", "extramedullary_disease", "down_syndrome", "prior_inotuzumab"):
        assert rec[column].dtype == bool, column
    blasts = rec["marrow_blasts_pct"].to_numpy(dtype=float)
    assert np.all((blasts >= 0) & (blasts <= 100))


def test_messy_mode_uses_only_accepted_spellings(cohort: SimulatedCohort) -> None:
    rec = cohort.records
    for column, allowed in ACCEPTED.items():
        values = {str(v).lower() for v in rec[column].dropna()}
        missing_ok = set() if column in ("kmt2a_status", "blina_exposed") else MISSING_TOKENS
        assert values <= allowed | missing_ok, (column, values - allowed - missing_ok)
    for value in rec["marrow_blasts_pct"].dropna():
        text = str(value).lower()
        if text not in MARROW_TOKENS:
            assert 0.0 <= float(text.rstrip("%")) <= 100.0, text
    assert len(set(rec["cd19_expression"].dropna())) > 3  # genuinely varied spellings


def test_messy_and_canonical_modes_describe_the_same_patients(
    cohort: SimulatedCohort, canonical: SimulatedCohort
) -> None:
    pd.testing.assert_frame_equal(cohort.truth, canonical.truth)
    outcomes = ["efs_days", "efs_event", "day28_cr", "relapse_phenotype", "os_days", "death"]
    pd.testing.assert_frame_equal(cohort.records[outcomes], canonical.records[outcomes])


def test_missing_rate_blanks_covariates_but_never_keys_or_outcomes() -> None:
    rec = simulate_cohort(2000, seed=3, missing_rate=0.2).records
    assert 0.16 < rec["age_years"].isna().mean() < 0.24
    for column in ("patient_id", "blina_exposed", "efs_days", "efs_event", "os_days", "death"):
        assert not rec[column].isna().any(), column
    # day28_cr is blank only for the early deaths (not evaluable for response)
    blank = rec["day28_cr"].isna()
    assert blank.equals((rec["efs_days"] < 28) & (rec["death"] == 1) & (rec["efs_event"] == 1))
    assert simulate_cohort(2000, seed=3, missing_rate=0.0).records["age_years"].notna().all()


def test_overrides_replace_parameters_and_unknown_names_raise() -> None:
    low = simulate_cohort(2000, seed=1, messy=False, cr_intercept=-3.0)
    assert low.records["day28_cr"].mean() < 0.2
    assert low.params["cr_intercept"] == -3.0
    with pytest.raises(ValueError, match="cr_intercpt"):
        simulate_cohort(10, seed=1, cr_intercpt=1.0)


def test_invalid_arguments_raise() -> None:
    with pytest.raises(ValueError, match="n must be"):
        simulate_cohort(0)
    with pytest.raises(ValueError, match="missing_rate"):
        simulate_cohort(10, missing_rate=1.0)


def test_shipped_parameters_record_their_fit() -> None:
    text = resources.files("carrisk").joinpath("data", "simulation_params.json").read_text(encoding="utf-8")
    document = json.loads(text)
    assert document["fitted"] is True
    assert document["script"] == "benchmarks/calibrate_cohort.py"
    assert {"fitted_on", "seed", "targets", "achieved_expected"} <= set(document)
    assert set(document["free_parameters"]) <= set(load_simulation_params())


def test_large_cohort_matches_published_rates_within_tolerance(large: SimulatedCohort) -> None:
    rec = large.records
    exposed = rec["blina_exposed"].to_numpy(dtype=bool)
    groups = {
        "naive": (~exposed, 0.935, 0.726),
        "responder": (rec["blina_response"].eq("CR").to_numpy(), 0.929, 0.669),
        "nonresponder": (rec["blina_response"].eq("NR").to_numpy(), 0.645, 0.273),
    }
    days, events = rec["efs_days"].to_numpy(), rec["efs_event"].to_numpy()
    cr = rec["day28_cr"].to_numpy(dtype=float, na_value=np.nan)  # CR among the evaluable, as the study
    for name, (mask, cr_target, efs_target) in groups.items():
        assert abs(np.nanmean(cr[mask]) - cr_target) < 0.02, name
        assert abs(_km(days[mask], events[mask], SIX_MONTHS_DAYS) - efs_target) < 0.03, name
    dim_partial = rec["cd19_expression"].isin(["dim", "partial"]).to_numpy()
    assert abs(dim_partial[exposed].mean() - 0.133) < 0.02
    assert abs(dim_partial[~exposed].mean() - 0.065) < 0.02
    assert 0.50 <= _km(days, events, TWELVE_MONTHS_DAYS) <= 0.60
    relapses = rec["relapse_phenotype"][rec["relapse_phenotype"] != "none"]
    shares = relapses.value_counts(normalize=True)
    assert abs(shares["CD19+"] - 0.50) < 0.05
    assert abs(shares["CD19-"] - 0.41) < 0.05
    assert abs(shares["lineage switch"] - 0.072) < 0.05


def test_truth_is_internally_consistent(cohort: SimulatedCohort) -> None:
    truth = cohort.truth
    order = np.argsort(truth["true_risk"].to_numpy())
    assert np.all(np.diff(truth["true_efs_12mo"].to_numpy()[order]) <= 0)
    np.testing.assert_allclose(truth["true_risk"], -np.log(truth["true_efs_12mo"]))
    assert np.all(np.diff(cohort.truth_curves, axis=1) <= 1e-12)
    assert np.all(truth["true_efs_6mo"] >= truth["true_efs_12mo"])
    q = cohort.params["non_evaluable_prob"]
    before = cohort.time_grid < 1.0  # the first early death is on day 1
    np.testing.assert_array_equal(cohort.truth_curves[:, before], 1.0)
    at_28 = np.flatnonzero(cohort.time_grid == 28.0)[0]
    np.testing.assert_allclose(cohort.truth_curves[:, at_28], (1 - q) * truth["true_cr_prob"])
    np.testing.assert_allclose(true_survival(cohort, cohort.time_grid), cohort.truth_curves)
    np.testing.assert_allclose(true_survival(cohort, [SIX_MONTHS_DAYS])[:, 0], truth["true_efs_6mo"])


def test_mean_true_curve_matches_km_of_a_large_cohort(large: SimulatedCohort) -> None:
    rec = large.records
    for horizon in (SIX_MONTHS_DAYS, TWELVE_MONTHS_DAYS):
        km = _km(rec["efs_days"].to_numpy(), rec["efs_event"].to_numpy(), horizon)
        assert abs(true_survival(large, [horizon]).mean() - km) < 0.02


def test_true_survival_matches_uncensored_event_times() -> None:
    uncensored = simulate_cohort(20_000, seed=9, messy=False, data_cutoff="2100-01-01", ltfu_rate_per_year=1e-9)
    days = uncensored.records["efs_days"].to_numpy()
    assert uncensored.records["efs_event"].mean() > 0.5
    for horizon in (90.0, SIX_MONTHS_DAYS, TWELVE_MONTHS_DAYS, 730.5):
        empirical = np.mean(days > horizon)
        assert abs(true_survival(uncensored, [horizon]).mean() - empirical) < 0.012, horizon


def test_cohort_moments_agree_with_a_realised_cohort(large: SimulatedCohort) -> None:
    moments = cohort_moments(n=40_000, seed=5)
    rec = large.records
    relapsed = rec["relapse_phenotype"] != "none"
    assert abs(moments["relapse_fraction"] - relapsed.mean()) < 0.015
    exposed = rec["blina_exposed"].to_numpy(dtype=bool)
    cr = rec["day28_cr"].to_numpy(dtype=float, na_value=np.nan)
    assert abs(moments["cr_rate_naive"] - np.nanmean(cr[~exposed])) < 0.01
    assert abs(moments["evaluable_fraction"] - rec["day28_cr"].notna().mean()) < 0.005
    assert abs(moments["efs_12mo_overall"] - large.truth["true_efs_12mo"].mean()) < 0.01


def test_oracle_concordance_is_high_and_beats_a_random_score(cohort: SimulatedCohort) -> None:
    oracle = oracle_concordance(cohort)
    assert 0.6 < oracle < 0.9
    random_truth = cohort.truth.assign(true_risk=np.random.default_rng(0).random(len(cohort.truth)))
    random_c = oracle_concordance(dataclasses.replace(cohort, truth=random_truth))
    assert oracle > random_c + 0.05


# ----- simulated external centres -----
def test_default_cohort_is_byte_identical_to_before_the_centre_options():
    # sha256 of simulate_cohort(420, seed=7).records.to_csv(index=False) before the centre options existed
    # (and before the early deaths, which come from their own random stream: without them, the same bytes).
    import hashlib

    cohort = simulate_cohort(
        420, seed=7, case_mix=None, baseline_hazard_multiplier=1.0, cr_logodds_shift=0.0, non_evaluable_prob=0.0
    )
    digest = hashlib.sha256(cohort.records.to_csv(index=False).encode()).hexdigest()
    assert digest == "83425ef3e5de12bf1ef25bbe61901e2ad54f80cbfc3bd5a47f3a1edc60fa0247"


def test_shifted_centre_has_its_case_mix_and_a_worse_true_efs():
    default = simulate_cohort(4000, seed=11, messy=False)
    shifted = simulate_cohort(4000, seed=11, messy=False, **EXTERNAL_CENTRES["shifted"])
    assert shifted.records["blina_exposed"].mean() == pytest.approx(0.35, abs=0.025)
    assert shifted.truth["true_high_burden"].mean() > default.truth["true_high_burden"].mean() + 0.08
    products = shifted.records["car_product"].value_counts(normalize=True)
    assert products["tisagenlecleucel"] == pytest.approx(0.7, abs=0.03)
    assert shifted.truth["true_efs_12mo"].mean() < default.truth["true_efs_12mo"].mean() - 0.1
    # the truth is the truth of the shifted centre: it matches the Kaplan-Meier estimate of its outcomes
    km = KaplanMeierFitter().fit(shifted.records["efs_days"], shifted.records["efs_event"])
    assert float(km.predict(TWELVE_MONTHS_DAYS)) == pytest.approx(shifted.truth["true_efs_12mo"].mean(), abs=0.03)
    np.testing.assert_allclose(
        true_survival(shifted, [TWELVE_MONTHS_DAYS])[:, 0], shifted.truth["true_efs_12mo"], rtol=1e-12
    )


def test_baseline_multiplier_scales_every_post_cr_cumulative_hazard():
    base = simulate_cohort(50, seed=2, messy=False)
    worse = simulate_cohort(50, seed=2, messy=False, baseline_hazard_multiplier=2.0)
    # same patients (same latent draws), same CR probability, post-CR cumulative hazard doubled
    pd.testing.assert_frame_equal(base.records.iloc[:, :17], worse.records.iloc[:, :17])
    cr = base.truth["true_cr_prob"].to_numpy()
    np.testing.assert_allclose(worse.truth["true_cr_prob"], cr)
    evaluable = 1 - base.params["non_evaluable_prob"]
    h_base = -np.log(base.truth["true_efs_12mo"] / (evaluable * cr))
    h_worse = -np.log(worse.truth["true_efs_12mo"] / (evaluable * cr))
    np.testing.assert_allclose(h_worse, 2.0 * h_base, rtol=1e-10)


def test_cr_logodds_shift_moves_the_cr_logit_only():
    base = simulate_cohort(50, seed=2, messy=False)
    shifted = simulate_cohort(50, seed=2, messy=False, cr_logodds_shift=-0.7)
    np.testing.assert_allclose(shifted.truth["true_lp_cr"], base.truth["true_lp_cr"] - 0.7)
    np.testing.assert_allclose(shifted.truth["true_lp_cd19pos"], base.truth["true_lp_cd19pos"])


def test_effect_scale_multiplies_every_linear_predictor_and_nothing_else():
    base = simulate_cohort(200, seed=2, messy=False)
    weaker = simulate_cohort(200, seed=2, messy=False, effect_scale=0.7)
    # same patients; every log hazard ratio and CR log odds ratio x 0.7, so each linear predictor (the
    # intercepts aside) is 0.7 times the default centre's, and the baselines are untouched
    pd.testing.assert_frame_equal(base.records.iloc[:, :17], weaker.records.iloc[:, :17])
    for column in ["true_lp_cr", *(f"true_lp_{cause}" for cause in CAUSES)]:
        offset = base.params["cr_intercept"] if column == "true_lp_cr" else 0.0
        np.testing.assert_allclose(weaker.truth[column] - offset, 0.7 * (base.truth[column] - offset), atol=1e-12)
    assert all(weaker.params[k] == base.params[k] for k in base.params if k.startswith("hazard_log_rate_"))
    assert weaker.truth["true_efs_12mo"].std() < base.truth["true_efs_12mo"].std()
    preset = simulate_cohort(200, seed=2, messy=False, **EXTERNAL_CENTRES["baseline_and_effects"])
    assert preset.params["loghr_high_burden_cd19neg"] == pytest.approx(0.7 * base.params["loghr_high_burden_cd19neg"])
    assert preset.params["hazard_log_rate_death"] == pytest.approx(base.params["hazard_log_rate_death"] + np.log(1.8))


@pytest.mark.parametrize(
    "options, message",
    [
        ({"effect_scale": -0.5}, "effect_scale must be a non-negative"),
        ({"case_mix": {"burden": 2}}, "unknown case_mix key"),
        ({"case_mix": {"blina_exposed": 1.5}}, "blina_exposed must be a probability"),
        ({"case_mix": {"product": {"axicel": 1.0}}}, "case_mix product"),
        ({"case_mix": {"high_burden_odds_ratio": 0}}, "high_burden_odds_ratio must be > 0"),
        ({"baseline_hazard_multiplier": -1}, "baseline_hazard_multiplier must be a positive"),
    ],
)
def test_bad_centre_options_are_refused_with_a_clear_message(options, message):
    with pytest.raises(ValueError, match=message):
        simulate_cohort(10, seed=0, **options)


@pytest.mark.parametrize("truth_at", [true_survival, true_cause_incidence])
@pytest.mark.parametrize("times", [[-1.0], [np.nan], [30.0, np.inf]])
def test_the_truth_is_asked_at_finite_non_negative_days_only(truth_at, times):
    cohort = simulate_cohort(n=5, seed=1)
    with pytest.raises(ValueError, match=re.escape("times must be finite days from infusion (>= 0).")):
        truth_at(cohort, times)
    assert truth_at(cohort, [0.0, 30.0]).shape[:2] == (5, 2)
