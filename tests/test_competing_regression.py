"""Tests for carrisk.competing.regression: Fine-Gray against R's cmprsk::crr (pinned), cause-specific Cox."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _cmprsk_reference import CMPRSK_CRR
from lifelines import CoxPHFitter
from sksurv.linear_model import CoxPHSurvivalAnalysis
from sksurv.util import Surv

from benchmarks.competing_reference import reference_data
from carrisk.competing.regression import (
    cause_specific_cox,
    cross_validated_penalty,
    fine_gray,
    partial_log_likelihood,
    ridge_hazard_fit,
    subdistribution_cif,
)

COVARIATES = ["high_burden", "age_per_10y", "construct_41bb"]


@pytest.fixture(scope="module")
def data():
    return reference_data()


@pytest.mark.parametrize("reference", CMPRSK_CRR, ids=lambda r: f"cause{r['cause']}")
def test_fine_gray_matches_cmprsk_crr(data, reference):
    fit = fine_gray(data["time"], data["cause"], data[COVARIATES], reference["cause"])
    assert fit.converged
    np.testing.assert_allclose(fit.summary["coef"], reference["coef"], rtol=0, atol=1e-8)
    np.testing.assert_allclose(fit.summary["se"], reference["se"], rtol=0, atol=1e-8)
    assert fit.summary["hr"].to_numpy() == pytest.approx(np.exp(reference["coef"]))


def test_without_competing_events_fine_gray_is_the_cox_model(data):
    untied = data.assign(time=data["time"] + np.arange(len(data)) * 1e-3, cause=np.where(data["cause"] == 1, 1, 0))
    fit = fine_gray(untied["time"], untied["cause"], untied[COVARIATES], 1)
    target = Surv.from_arrays(untied["cause"] == 1, untied["time"])
    cox = CoxPHSurvivalAnalysis(ties="breslow", tol=1e-12, n_iter=200).fit(untied[COVARIATES].astype(float), target)
    np.testing.assert_allclose(fit.summary["coef"], cox.coef_, atol=1e-8)


def test_cause_specific_cox_censors_the_other_causes(data):
    fit = cause_specific_cox(data["time"], data["cause"], data[COVARIATES], 2, cause_name="other")
    target = Surv.from_arrays(data["cause"] == 2, data["time"])
    breslow = CoxPHSurvivalAnalysis(ties="breslow", tol=1e-12, n_iter=200).fit(data[COVARIATES].astype(float), target)
    np.testing.assert_allclose(fit.summary["coef"], breslow.coef_, atol=1e-8)
    assert (fit.cause, fit.events, fit.converged) == ("other", int((data["cause"] == 2).sum()), True)
    assert (fit.summary["ci_low"] < fit.summary["hr"]).all() and (fit.summary["hr"] < fit.summary["ci_high"]).all()


def test_cause_specific_cox_equals_lifelines_on_untied_data(data):
    untied = data.assign(time=data["time"] + np.arange(len(data)) * 1e-3)
    fit = cause_specific_cox(untied["time"], untied["cause"], untied[COVARIATES], 1)
    frame = untied.assign(event=(untied["cause"] == 1).astype(int))[[*COVARIATES, "time", "event"]]
    cox = CoxPHFitter().fit(frame, "time", "event", fit_options={"precision": 1e-12})
    np.testing.assert_allclose(fit.summary["coef"], cox.params_[COVARIATES], atol=1e-8)
    np.testing.assert_allclose(fit.summary["se"], cox.standard_errors_[COVARIATES], rtol=1e-6)


def test_generating_effects_are_recovered_on_a_large_sample():
    rng = np.random.default_rng(3)
    n = 1500
    x = rng.random(n) < 0.5
    latent = np.column_stack([rng.exponential(1 / np.exp(0.7 * x)), rng.exponential(1.0, n)])
    time, code = latent.min(axis=1), latent.argmin(axis=1) + 1
    censor = rng.uniform(0, 3, n)
    code = np.where(time <= censor, code, 0)
    time = np.minimum(time, censor)
    fit = cause_specific_cox(time, code, pd.DataFrame({"x": x.astype(float)}), 1)
    assert fit.summary.loc["x", "ci_low"] < np.exp(0.7) < fit.summary.loc["x", "ci_high"]


def test_missing_covariate_and_no_events_are_clear_errors(data):
    covariates = data[COVARIATES].astype(float).copy()
    covariates.iloc[4, 1] = np.nan
    with pytest.raises(ValueError, match="'age_per_10y' is missing or not finite at row 5"):
        fine_gray(data["time"], data["cause"], covariates, 1)
    with pytest.raises(ValueError, match="no first event of cause 7"):
        fine_gray(data["time"], data["cause"], data[COVARIATES], 7)


@pytest.mark.parametrize("penalty", [0.5, 20.0, 400.0])
def test_ridge_cause_specific_fit_equals_scikit_survival(data, penalty):
    x = data[COVARIATES].to_numpy(dtype=float)
    fit = ridge_hazard_fit(data["time"], data["cause"], x, 1, penalty=penalty, subdistribution=False)
    target = Surv.from_arrays(data["cause"] == 1, data["time"])
    cox = CoxPHSurvivalAnalysis(alpha=penalty, ties="breslow", tol=1e-12, n_iter=200).fit(x, target)
    np.testing.assert_allclose(fit.coef, cox.coef_, atol=1e-8)
    steps = cox.cum_baseline_hazard_  # on every distinct time; it only rises at failures of the cause
    np.testing.assert_allclose(steps(fit.fail_times), np.cumsum(fit.baseline_hazard), rtol=1e-8)
    assert steps.y[-1] == pytest.approx(np.sum(fit.baseline_hazard), rel=1e-8)


@pytest.mark.parametrize("reference", CMPRSK_CRR, ids=lambda r: f"cause{r['cause']}")
def test_fine_gray_cumulative_incidence_matches_cmprsk_predict(data, reference):
    fit = ridge_hazard_fit(
        data["time"], data["cause"], data[COVARIATES], reference["cause"], penalty=0.0, subdistribution=True, tol=1e-12
    )
    cif = subdistribution_cif(fit, data[COVARIATES].to_numpy()[:3], reference["at"])
    np.testing.assert_allclose(cif, reference["cif_rows_1_3"], rtol=0, atol=1e-8)


def test_unpenalised_subdistribution_fit_is_fine_gray(data):
    fit = ridge_hazard_fit(data["time"], data["cause"], data[COVARIATES], 2, penalty=0.0, subdistribution=True)
    reference = next(r for r in CMPRSK_CRR if r["cause"] == 2)
    np.testing.assert_allclose(fit.coef, reference["coef"], atol=1e-7)
    stronger = ridge_hazard_fit(data["time"], data["cause"], data[COVARIATES], 2, penalty=50.0, subdistribution=True)
    assert np.linalg.norm(stronger.coef) < np.linalg.norm(fit.coef)


def test_partial_log_likelihood_equals_lifelines_at_its_estimate(data):
    untied = data.assign(time=data["time"] + np.arange(len(data)) * 1e-3)
    frame = untied.assign(event=(untied["cause"] == 1).astype(int))[[*COVARIATES, "time", "event"]]
    cox = CoxPHFitter().fit(frame, "time", "event", fit_options={"precision": 1e-12})
    value = partial_log_likelihood(
        untied["time"], untied["cause"], untied[COVARIATES], 1, cox.params_[COVARIATES], subdistribution=False
    )
    assert value == pytest.approx(cox.log_likelihood_, abs=1e-8)


def test_cross_validated_penalty_is_small_for_strong_effects_and_large_for_noise():
    rng = np.random.default_rng(11)
    n, p = 400, 8
    x = rng.normal(size=(n, p))
    latent = rng.exponential(1.0 / np.exp(1.2 * x[:, 0] - 0.8 * x[:, 1]))
    other = rng.exponential(2.0, n)
    censor = rng.uniform(0, 3, n)
    time = np.minimum.reduce([latent, other, censor])
    code = np.select([time == latent, time == other], [1, 2], 0)
    grid = [0.1, 1.0, 10.0, 100.0, 1000.0]
    strong, score = cross_validated_penalty(time, code, x, 1, grid, subdistribution=False, seed=1)
    assert strong <= 10.0 and score.shape == (5,) and np.argmax(score) == grid.index(strong)
    noise, _ = cross_validated_penalty(time, code, x[:, 2:], 1, grid, subdistribution=False, seed=1)
    assert noise >= 100.0
    fine_gray_choice, _ = cross_validated_penalty(time, code, x, 1, grid, subdistribution=True, seed=1)
    assert fine_gray_choice <= 10.0


def test_cross_validated_penalty_folds_are_held_out():
    """The score of a candidate is the sum over folds of l(beta_-f; all) - l(beta_-f; all but f)."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(60, 2))
    time = rng.exponential(1.0 / np.exp(x[:, 0]))
    code = (rng.random(60) < 0.7).astype(int)
    _, score = cross_validated_penalty(time, code, x, 1, [3.0], subdistribution=False, folds=3, seed=2)
    from sklearn.model_selection import StratifiedKFold

    expected = 0.0
    for train, _test in StratifiedKFold(3, shuffle=True, random_state=2).split(x, code == 1):
        target = Surv.from_arrays(code[train] == 1, time[train])
        coef = CoxPHSurvivalAnalysis(alpha=3.0, ties="breslow", tol=1e-12, n_iter=200).fit(x[train], target).coef_
        expected += partial_log_likelihood(time, code, x, 1, coef, subdistribution=False)
        expected -= partial_log_likelihood(time[train], code[train], x[train], 1, coef, subdistribution=False)
    assert score[0] == pytest.approx(expected, abs=1e-7)


def test_sorted_risk_set_sums_equal_the_dense_fine_gray_weights(data):
    from carrisk.competing.regression import _make_risk_sets, _risk_sums, _subdistribution_weights

    t, code = data["time"].to_numpy(dtype=float), data["cause"].to_numpy()
    x = data[COVARIATES].to_numpy(dtype=float)
    beta = np.array([0.3, -0.2, 0.1])
    _, weight = _subdistribution_weights(t, code, 1)
    _, s0, s1 = _risk_sums(beta, _make_risk_sets(t, code, x, 1, True))
    risk = weight * np.exp(x @ beta)[None, :]
    np.testing.assert_allclose(s0, risk.sum(axis=1), rtol=1e-12)
    np.testing.assert_allclose(s1, risk @ x, rtol=1e-12)
