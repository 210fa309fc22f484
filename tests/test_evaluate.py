"""External validation (carrisk.evaluate): known answers from the simulator's truth, reference cross-checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _truth_model import TruthModel
from lifelines import KaplanMeierFitter
from sksurv.metrics import brier_score, concordance_index_censored
from sksurv.util import Surv

import carrisk
from carrisk.casemix import case_mix_differences, case_mix_summary
from carrisk.evaluate import calibration_slope, evaluate_model, observed_expected
from carrisk.schema import RecordError
from carrisk.simulate import (
    EXTERNAL_CENTRES,
    SIX_MONTHS_DAYS,
    TWELVE_MONTHS_DAYS,
    simulate_cohort,
    true_survival,
)

DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "models" / "default"


@pytest.fixture(scope="module")
def cohort():
    return simulate_cohort(800, seed=12)


@pytest.fixture(scope="module")
def truth_result(cohort):
    return evaluate_model(TruthModel(cohort), cohort.records, n_bootstrap=25, n_bootstrap_calibration=3)


def test_true_probabilities_are_calibrated_in_the_large_and_beat_the_null_model(truth_result):
    for horizon in ("6mo", "12mo"):
        low, high = truth_result.interval("citl", horizon)
        assert low < 0 < high
        assert abs(truth_result.value("citl", horizon)) < 0.03
        # O/E of the truth on 800 patients has a sampling sd of ~0.05: its bootstrap interval must hold 1
        oe_low, oe_high = truth_result.interval("oe_ratio", horizon)
        assert oe_low < 1.0 < oe_high
        assert truth_result.value("oe_ratio", horizon) == pytest.approx(1.0, abs=0.1)
        assert truth_result.value("ipa", horizon) > 0.0
        assert truth_result.value("ici", horizon) < 0.03
    assert truth_result.value("harrell_c") > 0.6


def test_measures_equal_reference_implementations(cohort, truth_result):
    records = cohort.records
    event = records["efs_event"].to_numpy(dtype=bool)
    time = records["efs_days"].to_numpy(dtype=float)
    surv = true_survival(cohort, [SIX_MONTHS_DAYS, TWELVE_MONTHS_DAYS])
    reference_c = concordance_index_censored(event, time, 1 - surv[:, 1])[0]
    assert truth_result.value("harrell_c") == pytest.approx(reference_c, abs=1e-9)
    km = KaplanMeierFitter().fit(time, event)
    y = Surv.from_arrays(event, time)
    for k, (name, horizon) in enumerate((("6mo", SIX_MONTHS_DAYS), ("12mo", TWELVE_MONTHS_DAYS))):
        observed = 1 - float(km.survival_function_at_times(horizon).iloc[0])
        assert truth_result.value("observed_event_prob", name) == pytest.approx(observed, abs=1e-12)
        assert truth_result.value("predicted_event_prob", name) == pytest.approx(np.mean(1 - surv[:, k]))
        model_brier = brier_score(y, y, surv[:, k], [horizon])[1][0]
        null_brier = brier_score(y, y, np.full(len(y), 1 - observed), [horizon])[1][0]
        assert truth_result.value("brier", name) == pytest.approx(model_brier, abs=1e-12)
        assert truth_result.value("ipa", name) == pytest.approx(1 - model_brier / null_brier, abs=1e-12)


def test_too_pessimistic_predictions_show_negative_calibration_in_the_large(cohort):
    pessimistic = TruthModel(cohort, power=2.0)  # S^2: every event probability too high
    result = evaluate_model(pessimistic, cohort.records, n_bootstrap=30, n_bootstrap_calibration=0)
    assert result.interval("citl", "12mo")[1] < 0
    assert result.value("oe_ratio", "12mo") < 0.9


def test_calibration_slope_is_one_for_a_correct_proportional_hazards_prediction():
    rng = np.random.default_rng(3)
    n = 3000
    lp = rng.normal(0, 1, n)
    event_time = rng.exponential(1 / (0.01 * np.exp(lp)))
    censor = rng.exponential(150, n)
    time, event = np.minimum(event_time, censor), event_time <= censor
    surv_100 = np.exp(-0.01 * 100 * np.exp(lp))
    slope, low, high = calibration_slope(event, time, surv_100)
    assert low < 1 < high and slope == pytest.approx(1, abs=0.08)
    too_extreme = surv_100 ** np.exp(lp)  # cll = log(H) + lp: twice the true spread
    assert calibration_slope(event, time, too_extreme)[2] < 0.7
    observed, predicted, ratio = observed_expected(event, time, surv_100, 100.0)
    assert ratio == pytest.approx(observed / predicted)


@pytest.mark.slow
def test_external_centre_with_the_shipped_model_writes_every_output(tmp_path):
    model = carrisk.load_model(DEFAULT_MODEL)
    centre = simulate_cohort(250, seed=8, **EXTERNAL_CENTRES["shifted"])
    result = evaluate_model(model, centre.records, n_bootstrap=15, n_bootstrap_calibration=5, seed=1)
    # the shifted centre has a worse baseline: the model is too optimistic there
    assert result.interval("citl", "12mo")[0] > 0
    labels = set(result.subgroups["label"])
    assert "Prior blinatumomab: nonresponder" in labels
    assert any(label.startswith("Disease burden: high") for label in labels)
    # subgroup calibration: Kaplan-Meier of the subgroup against its mean prediction
    naive = result.subgroups.query("level == 'naive' and horizon == '12mo'").iloc[0]
    status = model.features.categorize(centre.records)["blina_status"].to_numpy() == "naive"
    km = KaplanMeierFitter().fit(centre.records["efs_days"][status], centre.records["efs_event"][status])
    assert naive["observed"] == pytest.approx(1 - float(km.survival_function_at_times(TWELVE_MONTHS_DAYS).iloc[0]))
    assert naive["n"] == status.sum()
    membership = result.value("membership_c")
    assert 0.6 < membership <= 1.0
    paths = result.write(tmp_path)
    data = json.loads(paths["json"].read_text())
    assert data["info"]["n"] == 250 and data["info"]["seed"] == 1
    assert {row["measure"] for row in data["summary"]} >= {"harrell_c", "uno_c", "ipa", "calibration_slope", "ici"}
    for key in ("calibration_12mo_plot", "decision_curve_6mo_plot", "subgroups_12mo_plot"):
        assert paths[key].stat().st_size > 5000
    summary = pd.read_csv(paths["summary"])
    assert len(summary) == len(result.summary)


@pytest.mark.slow
def test_same_population_membership_c_is_near_one_half():
    model = carrisk.load_model(DEFAULT_MODEL)
    same = simulate_cohort(420, seed=99)
    result = evaluate_model(model, same.records, n_bootstrap=5, n_bootstrap_calibration=0)
    assert 0.35 < result.value("membership_c") < 0.65


def test_case_mix_differences_have_the_standardized_difference_formula():
    training = case_mix_summary(pd.DataFrame({"sex": ["M", "M", "F", "F"], "age_years": [10.0, 12.0, 14.0, 16.0]}))
    new = case_mix_summary(pd.DataFrame({"sex": ["M", "M", "M", "F"], "age_years": [20.0, 22.0, 24.0, None]}))
    table = case_mix_differences(training, new).set_index(["variable", "level"])
    p0, p1 = 0.5, 0.75
    assert table.loc[("sex", "M"), "standardized_difference"] == pytest.approx(
        (p1 - p0) / np.sqrt((p1 * (1 - p1) + p0 * (1 - p0)) / 2)
    )
    s0, s1 = np.std([10, 12, 14, 16], ddof=1), np.std([20, 22, 24], ddof=1)
    assert table.loc[("age_years", "mean"), "standardized_difference"] == pytest.approx(
        (22 - 13) / np.sqrt((s0**2 + s1**2) / 2)
    )
    assert table.loc[("age_years", "missing"), "new"] == pytest.approx(0.25)


def test_records_without_outcomes_or_short_follow_up_are_refused_clearly(cohort):
    model = TruthModel(cohort)
    with pytest.raises(RecordError):
        evaluate_model(model, cohort.records.drop(columns=["efs_days"]).head(50))
    short = cohort.records.head(200).assign(efs_days=lambda f: np.minimum(f["efs_days"], 100.0))
    with pytest.raises(ValueError, match=r"horizon 6mo .* is not within the follow-up"):
        evaluate_model(model, short)


def test_only_the_efs_outcome_columns_are_required_to_evaluate(cohort):
    model = TruthModel(cohort)
    records = cohort.records.head(300)
    efs_only = records.drop(columns=["day28_cr", "relapse_phenotype", "os_days", "death"])
    full = evaluate_model(model, records, n_bootstrap=5, n_bootstrap_calibration=2)
    lean = evaluate_model(model, efs_only, n_bootstrap=5, n_bootstrap_calibration=2)
    assert lean.value("harrell_c") == full.value("harrell_c")
    with pytest.raises(RecordError, match="efs_event"):  # the EFS outcome itself stays required
        evaluate_model(model, efs_only.drop(columns=["efs_event"]))
    with pytest.raises(RecordError, match="day28_cr"):  # a column that is present is still checked
        evaluate_model(model, records.assign(day28_cr="maybe"))
