"""Tests for the simulator's true cause-specific cumulative incidences (carrisk.simulate.true_cause_incidence)."""

from __future__ import annotations

import numpy as np
import pytest

from carrisk.competing import CAUSES, aalen_johansen, derive_first_event
from carrisk.simulate import TRUE_CIF_CAUSES, simulate_cohort, true_cause_incidence, true_survival


def test_causes_and_efs_add_up_to_one_for_every_patient_and_time():
    cohort = simulate_cohort(n=500, seed=8)
    times = np.array([0.0, 27.9, 28.0, 60.0, 182.625, 365.25, 900.0, 5000.0])
    cif = true_cause_incidence(cohort, times)
    np.testing.assert_allclose(cif.sum(axis=2) + true_survival(cohort, times), 1.0, atol=1e-12)
    assert (np.diff(cif, axis=1) >= -1e-15).all()
    # before day 28 the only first events are the early deaths of patients not evaluable for response (no_cr)
    q = cohort.params["non_evaluable_prob"]
    assert (cif[:, times < 28, 1:] == 0).all() and (cif[:, 0, 0] == 0).all()
    np.testing.assert_allclose(cif[:, 1, 0], q, rtol=1e-12)  # 27.9 is after the last early-death day


def test_truth_table_holds_the_six_and_twelve_month_incidences():
    cohort = simulate_cohort(n=200, seed=9)
    cif = true_cause_incidence(cohort, [182.625, 365.25])
    for k, cause in enumerate(TRUE_CIF_CAUSES):
        np.testing.assert_array_equal(cohort.truth[f"true_cif_{cause}_6mo"], cif[:, 0, k])
        np.testing.assert_array_equal(cohort.truth[f"true_cif_{cause}_12mo"], cif[:, 1, k])
    assert TRUE_CIF_CAUSES == CAUSES


def test_aalen_johansen_of_a_large_cohort_recovers_the_mean_truth():
    cohort = simulate_cohort(n=8000, seed=10)
    events = derive_first_event(cohort.records)
    estimate = aalen_johansen(events["time_days"], events["cause_code"], CAUSES)
    index = np.searchsorted(estimate.times, 365.25, side="right") - 1
    for k, cause in enumerate(CAUSES):
        se = np.sqrt(estimate.variance[index, k])
        truth = cohort.truth[f"true_cif_{cause}_12mo"].mean()
        assert estimate.cif[index, k] == pytest.approx(truth, abs=4 * se + 1e-3)
