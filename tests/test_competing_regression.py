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
from carrisk.competing.regression import cause_specific_cox, fine_gray

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
