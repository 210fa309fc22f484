"""Pooled calibration, calibration in the large, Kaplan-Meier at a horizon, subgroup tables, the Breslow fit."""

import numpy as np
import pandas as pd
import pytest
from sksurv.linear_model import CoxPHSurvivalAnalysis
from sksurv.util import Surv

from carrisk import simulate_cohort, survival_target, true_survival
from carrisk.calibration import (
    breslow_cox,
    calibration_in_the_large,
    plot_calibration,
    pooled_calibration,
    subgroup_calibration,
)
from carrisk.schema import SIX_MONTHS_DAYS, TWELVE_MONTHS_DAYS


@pytest.fixture(scope="module")
def cohort():
    simulated = simulate_cohort(n=3000, seed=11)
    y = survival_target(simulated.records)
    truth = true_survival(simulated, [SIX_MONTHS_DAYS, TWELVE_MONTHS_DAYS])
    return simulated, y, truth


def outcome(y):
    return np.asarray(y[y.dtype.names[0]], dtype=bool), np.asarray(y[y.dtype.names[1]], dtype=float)


def test_pooled_calibration_of_the_true_survival_is_perfect_within_noise(cohort):
    _, y, truth = cohort
    event, time = outcome(y)
    predictions = np.vstack([truth[:, 0], truth[:, 0]])  # two "repeats" predicting the true S(6 months)
    result = pooled_calibration(event, time, predictions, SIX_MONTHS_DAYS, n_bootstrap=40, seed=1)
    summary = result.summary()
    assert abs(summary["difference"]["mean"]) < 0.02
    assert summary["oe_ratio"]["mean"] == pytest.approx(1.0, abs=0.06)
    assert summary["slope"]["mean"] == pytest.approx(1.0, abs=0.12)
    assert summary["ici"]["mean"] < 0.03 and summary["e90"]["mean"] >= summary["e50"]["mean"]
    assert len(result.per_repeat) == 2
    curve = result.curve
    assert np.max(np.abs(curve["observed"] - curve["predicted"])) < 0.06
    assert np.all(curve["lower"] <= curve["observed"]) and np.all(curve["observed"] <= curve["upper"])
    assert np.mean((curve["lower"] <= curve["predicted"]) & (curve["predicted"] <= curve["upper"])) > 0.8


def test_pooled_calibration_flags_an_optimistic_model(cohort):
    _, y, truth = cohort
    event, time = outcome(y)
    optimistic = np.sqrt(truth[:, 0])  # S^(1/2): fewer events than the truth, too moderate
    summary = pooled_calibration(event, time, optimistic, SIX_MONTHS_DAYS, n_bootstrap=0).summary()
    assert summary["difference"]["mean"] > 0.1 and summary["oe_ratio"]["mean"] > 1.5
    # S^(1/2) shifts log(-log S) by log(1/2): a Cox model absorbs the shift, so the slope stays 1
    assert summary["slope"]["mean"] == pytest.approx(1.0, abs=0.12)


def test_pooled_calibration_slope_of_too_extreme_predictions_is_a_half(cohort):
    _, y, truth = cohort
    event, time = outcome(y)
    cll = np.log(-np.log(truth[:, 0]))
    extreme = np.exp(-np.exp(2 * (cll - cll.mean()) + cll.mean()))  # log(-log S) spread twice as wide
    summary = pooled_calibration(event, time, extreme, SIX_MONTHS_DAYS, n_bootstrap=0).summary()
    assert summary["slope"]["mean"] == pytest.approx(0.5, abs=0.06)


def test_pooled_calibration_rejects_predictions_of_the_wrong_shape(cohort):
    _, y, truth = cohort
    event, time = outcome(y)
    with pytest.raises(ValueError, match="shape"):
        pooled_calibration(event, time, truth[:10, 0], SIX_MONTHS_DAYS)


def test_breslow_cox_equals_scikit_survival_and_ignores_stacked_copies(cohort):
    _, y, truth = cohort
    event, time = outcome(y)
    X = np.column_stack([np.log(-np.log(truth[:, 0])), np.round(time / 200) % 2])  # ties in time and in X
    coef, baseline = breslow_cox(event, time, X, SIX_MONTHS_DAYS)
    reference = CoxPHSurvivalAnalysis(ties="breslow").fit(X, Surv.from_arrays(event, time))
    np.testing.assert_allclose(coef, reference.coef_, rtol=1e-6)
    zero = reference.predict_survival_function(np.zeros((1, 2)), return_array=True)[0]
    at_horizon = zero[np.searchsorted(reference.unique_times_, SIX_MONTHS_DAYS, side="right") - 1]
    assert np.exp(-baseline) == pytest.approx(at_horizon, rel=1e-6)
    stacked, _ = breslow_cox(np.tile(event, 3), np.tile(time, 3), np.tile(X, (3, 1)), SIX_MONTHS_DAYS)
    np.testing.assert_allclose(stacked, coef, rtol=1e-8)


def test_calibration_in_the_large_by_hand_without_censoring():
    time = np.array([10.0, 20.0, 30.0, 200.0, 300.0])
    event = np.ones(5, dtype=bool)
    result = calibration_in_the_large(event, time, np.full(5, 0.5), horizon=100.0)
    # 3 of 5 events by day 100: observed EFS 0.4, expected event probability 0.5
    assert result["observed_efs"] == pytest.approx(0.4)
    assert result["difference"] == pytest.approx(0.1)
    assert result["oe_ratio"] == pytest.approx(0.6 / 0.5)


def test_subgroup_table_counts_and_compares_each_group(cohort):
    simulated, y, truth = cohort
    records = simulated.records
    horizons = {"6mo": SIX_MONTHS_DAYS}
    table = subgroup_calibration(records, y, {"6mo": truth[:, 0]}, horizons)
    everyone = table[table["variable"] == "all"].iloc[0]
    assert everyone["n"] == len(records)
    for variable in ("blinatumomab", "disease burden"):
        assert table.loc[table["variable"] == variable, "n"].sum() == len(records)
    # The true S is calibrated in every subgroup, so each group's mean truth lies within its KM interval
    blina = table[(table["variable"] == "blinatumomab") & (table["n"] >= 100)]
    assert set(blina["group"]) >= {"naive", "responder", "nonresponder"}
    assert np.all((blina["km_lo"] <= blina["predicted_efs"]) & (blina["predicted_efs"] <= blina["km_hi"]))
    crossed = table[table["variable"] == "blinatumomab x burden"]
    assert crossed["n"].min() >= 10 and "nonresponder, high burden" in set(crossed["group"])
    np.testing.assert_allclose(table["difference"], table["predicted_efs"] - table["km_efs"])
    constant = subgroup_calibration(records, y, {"6mo": np.full((2, len(records)), 0.6)}, horizons)
    np.testing.assert_allclose(constant["predicted_efs"], 0.6)


def test_subgroup_table_names_the_missing_columns(cohort):
    simulated, y, truth = cohort
    with pytest.raises(ValueError, match="blina_response"):
        subgroup_calibration(
            simulated.records.drop(columns="blina_response"), y, {"6mo": truth[:, 0]}, {"6mo": SIX_MONTHS_DAYS}
        )


def test_calibration_plot_is_written(cohort, tmp_path):
    _, y, truth = cohort
    event, time = outcome(y)
    result = pooled_calibration(event, time, truth[:, 0], SIX_MONTHS_DAYS, n_bootstrap=5)
    plot_calibration({"6mo": result}, tmp_path / "calibration.png", "truth")
    assert (tmp_path / "calibration.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert isinstance(result.to_dict()["curve"], dict) and "bootstrap" in result.band
    assert pd.DataFrame(result.to_dict()["per_repeat"]).shape[0] == 1


def test_calibrated_probability_is_a_step_function_of_the_horizon():
    # Austin et al.'s "observed" probability reads the calibration Cox model's Breslow baseline as the step
    # function it is (rms survest): constant between event times, equal to lifelines' own value at an event time.
    from carrisk.calibration import _calibrated_event_prob, _cloglog_event_prob, _fit_spline_calibration, _rcs_basis

    rng = np.random.default_rng(1)
    x = rng.normal(size=60)
    t, c = rng.exponential(100 * np.exp(-0.8 * x)), rng.uniform(0, 300, 60)
    time, event = np.round(np.minimum(t, c)), t <= c
    survival = np.exp(-50 / 100 * np.exp(0.8 * x))
    _, cll = _cloglog_event_prob(survival)
    fit, knots = _fit_spline_calibration(event, time, cll)
    event_times = np.unique(time[event])
    k = int(np.argmax(np.diff(event_times)[:20]))  # a wide gap between two early event times
    at_event = _calibrated_event_prob(fit, knots, cll, float(event_times[k]))
    basis = pd.DataFrame(_rcs_basis(cll, knots), columns=["cll", "cll_nonlinear"])
    lifelines_at_event = 1 - fit.predict_survival_function(basis, times=[event_times[k]]).to_numpy()[0]
    np.testing.assert_allclose(at_event, lifelines_at_event, atol=1e-12)
    just_before_next = float(event_times[k + 1]) - 1e-6
    np.testing.assert_allclose(_calibrated_event_prob(fit, knots, cll, just_before_next), at_event, atol=1e-12)
    assert np.all(_calibrated_event_prob(fit, knots, cll, float(event_times[k + 1])) > at_event)
    np.testing.assert_array_equal(_calibrated_event_prob(fit, knots, cll, float(event_times[0]) - 1), 0.0)
