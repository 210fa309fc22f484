"""Kaplan-Meier at a horizon: lifelines' estimate and interval, scikit-survival's estimate to the bit, edge rules."""

import numpy as np
import pytest
from lifelines import KaplanMeierFitter
from sksurv.nonparametric import kaplan_meier_estimator

from carrisk.nonparametric import kaplan_meier_at, kaplan_meier_survival_at
from carrisk.simulate import SIX_MONTHS_DAYS, TWELVE_MONTHS_DAYS, simulate_cohort


def test_kaplan_meier_at_matches_lifelines():
    rng = np.random.default_rng(4)
    time = np.round(rng.exponential(300, 200))
    event = rng.random(200) < 0.7
    estimate, lower, upper = kaplan_meier_at(event, time, 250.0)
    reference = KaplanMeierFitter().fit(time, event)
    assert estimate == pytest.approx(float(reference.survival_function_at_times(250.0).iloc[0]))
    ci = reference.confidence_interval_survival_function_
    row = ci[ci.index <= 250.0].iloc[-1]
    assert (lower, upper) == pytest.approx((row.iloc[0], row.iloc[1]), abs=1e-6)
    last_censored = event.copy()
    last_censored[np.argmax(time)] = False
    assert np.isnan(kaplan_meier_at(last_censored, time, time.max() + 1)[0])
    everyone = kaplan_meier_at(np.ones(3, dtype=bool), np.array([1.0, 2.0, 3.0]), 10.0)
    assert everyone[0] == 0.0 and np.isnan(everyone[1:]).all()
    assert kaplan_meier_at(event, time + 10, 5.0) == (1.0, 1.0, 1.0)


def test_kaplan_meier_survival_at_matches_lifelines_with_ties():
    cohort = simulate_cohort(300, seed=4, messy=False)
    event = cohort.records["efs_event"].to_numpy(dtype=bool)
    time = np.round(cohort.records["efs_days"].to_numpy(dtype=float) / 30) * 30  # many tied times
    km = KaplanMeierFitter().fit(time, event)
    for horizon in (SIX_MONTHS_DAYS, TWELVE_MONTHS_DAYS, 600.0):
        assert kaplan_meier_survival_at(event, time, horizon) == pytest.approx(
            float(km.survival_function_at_times(horizon).iloc[0]), abs=1e-12
        )


def test_the_fast_estimate_is_scikit_survivals_to_the_bit_and_the_interval_version_agrees():
    rng = np.random.default_rng(7)
    for _ in range(200):
        n = int(rng.integers(2, 300))
        time = np.round(rng.exponential(300, n) / rng.choice([1, 10, 30]))  # from untied to heavily tied
        event = rng.random(n) < rng.random()
        times, surv = kaplan_meier_estimator(event, time)
        for horizon in rng.uniform(0, time.max(), 4):
            index = int(np.searchsorted(times, horizon, side="right")) - 1
            expected = 1.0 if index < 0 else float(surv[index])
            assert kaplan_meier_survival_at(event, time, horizon) == expected
            assert kaplan_meier_at(event, time, horizon)[0] == expected


def test_nobody_followed_to_the_horizon_gives_nan_unless_everyone_had_the_event():
    event = np.array([1, 0, 0], dtype=bool)
    time = np.array([10.0, 20.0, 30.0])
    assert np.isnan(kaplan_meier_survival_at(event, time, 100.0))
    assert kaplan_meier_survival_at(np.ones(3, dtype=bool), time, 100.0) == 0.0
    assert np.isnan(kaplan_meier_survival_at(np.array([], dtype=bool), np.array([]), 10.0))
    assert np.isnan(kaplan_meier_at(np.array([], dtype=bool), np.array([]), 10.0)).all()
