"""Tests for carrisk.competing.nonparametric: Aalen-Johansen against scikit-survival and lifelines, Gray's test
against R's cmprsk (values pinned from ``python -m benchmarks.competing_reference``)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest
from _cmprsk_reference import CMPRSK_CRR, CMPRSK_GRAY
from lifelines import AalenJohansenFitter
from sksurv.nonparametric import cumulative_incidence_competing_risks

from benchmarks.competing_reference import reference_data
from carrisk.competing import aalen_johansen, gray_test

CAUSES3 = ("relapse", "other", "death")


@pytest.fixture(scope="module")
def data():
    return reference_data()


def test_estimates_and_intervals_match_scikit_survival_with_ties(data):
    result = aalen_johansen(data["time"], data["cause"], CAUSES3)
    times, cif, conf = cumulative_incidence_competing_risks(
        data["cause"].to_numpy(), data["time"].to_numpy(dtype=float), conf_type="log-log", var_type="Aalen"
    )
    assert data["time"].duplicated().any()
    np.testing.assert_array_equal(result.times, times)
    np.testing.assert_allclose(result.cif, cif[1:].T, rtol=0, atol=1e-10)
    np.testing.assert_allclose(result.ci_low, conf[1:, 0].T, rtol=0, atol=1e-10)
    np.testing.assert_allclose(result.ci_high, conf[1:, 1].T, rtol=0, atol=1e-10)
    assert (result.ci_low <= result.cif + 1e-15).all() and (result.cif <= result.ci_high + 1e-15).all()


def test_estimates_match_lifelines_on_untied_data(data):
    # lifelines jitters tied event times at random; distinct times make its estimate deterministic.
    time = data["time"].to_numpy(dtype=float) + np.arange(len(data)) * 1e-4
    result = aalen_johansen(time, data["cause"], CAUSES3)
    for code in (1, 2, 3):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a jitter warning would mean the comparison is not exact
            fitter = AalenJohansenFitter(calculate_variance=False).fit(time, data["cause"], event_of_interest=code)
        theirs = fitter.cumulative_density_.iloc[:, 0]
        index = np.searchsorted(result.times, theirs.index.to_numpy(), side="right") - 1
        mine = np.where(index >= 0, result.cif[np.maximum(index, 0), code - 1], 0.0)
        np.testing.assert_allclose(mine, theirs.to_numpy(), rtol=0, atol=1e-10)


def test_without_censoring_the_incidence_is_the_proportion_failed():
    time = np.array([1.0, 2, 2, 3, 5, 8, 8, 9])
    code = np.array([1, 2, 1, 1, 2, 3, 1, 2])
    result = aalen_johansen(time, code, CAUSES3)
    at = result.at([2.0, 8.0, 100.0]).pivot(index="horizon_days", columns="cause", values="cif")
    assert at.loc[2.0, "relapse"] == pytest.approx(2 / 8) and at.loc[2.0, "other"] == pytest.approx(1 / 8)
    assert at.loc[8.0].sum() == pytest.approx(7 / 8)
    assert at.loc[100.0, "relapse"] == pytest.approx(4 / 8) and at.loc[100.0].sum() == pytest.approx(1.0)


def test_past_follow_up_is_missing_and_a_cause_without_events_is_zero():
    result = aalen_johansen([1.0, 2.0, 3.0, 4.0], [1, 0, 1, 0], CAUSES3)
    table = result.at([3.5, 10.0]).set_index(["horizon_days", "cause"])
    assert table.loc[(3.5, "relapse"), "cif"] == pytest.approx(0.25 + 0.75 * 0.5)
    assert table.loc[(3.5, "death"), ["cif", "ci_low", "ci_high"]].tolist() == [0.0, 0.0, 0.0]
    assert np.isnan(table.loc[(10.0, "relapse"), "cif"])
    assert table.loc[(3.5, "relapse"), "at_risk"] == 1


@pytest.mark.parametrize(
    ("time", "code", "message"),
    [
        ([1.0, -2.0], [1, 0], "time must be finite"),
        ([1.0, 2.0], [1, 4], "cause_code must be 0"),
        ([1.0], [1, 0], "one per"),
    ],
)
def test_bad_input_is_a_one_line_error(time, code, message):
    with pytest.raises(ValueError, match=message):
        aalen_johansen(time, code, CAUSES3)


@pytest.mark.parametrize("reference", CMPRSK_GRAY, ids=lambda r: f"cause{r['cause']}")
def test_gray_test_matches_cmprsk_cuminc(data, reference):
    result = gray_test(data["time"], data["cause"], data["group"], reference["cause"])
    assert result.df == reference["df"]
    assert result.statistic == pytest.approx(reference["statistic"], abs=1e-8)
    assert result.p_value == pytest.approx(reference["p"], abs=1e-8)


def test_gray_test_detects_a_real_difference_and_needs_two_groups():
    rng = np.random.default_rng(1)
    group = np.repeat(["a", "b"], 300)
    rate = np.where(group == "a", 1.0, 2.5)
    latent = np.column_stack([rng.exponential(1 / rate), rng.exponential(1.0, 600)])
    time, code = latent.min(axis=1), latent.argmin(axis=1) + 1
    assert gray_test(time, code, group, 1).p_value < 1e-6
    with pytest.raises(ValueError, match="at least two groups"):
        gray_test(time, code, np.repeat("a", 600), 1)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("Rscript") is None, reason="Rscript not installed")
def test_pinned_cmprsk_values_are_current():
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.competing_reference"], capture_output=True, text=True, check=False
    )
    if completed.returncode != 0 and "cmprsk" in completed.stderr:
        pytest.skip("R package cmprsk not installed")
    assert completed.returncode == 0, completed.stderr
    fresh = json.loads(completed.stdout)
    for pinned, current in zip(CMPRSK_GRAY, fresh["gray"]):
        assert current["statistic"] == pytest.approx(pinned["statistic"], abs=1e-12)
    for pinned, current in zip(CMPRSK_CRR, fresh["crr"]):
        np.testing.assert_allclose(current["coef"], pinned["coef"], atol=1e-12)
        np.testing.assert_allclose(current["se"], pinned["se"], atol=1e-12)
