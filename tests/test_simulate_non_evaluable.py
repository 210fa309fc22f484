"""The simulator's patients not evaluable for response: early deaths before the day-28 assessment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from carrisk.competing.outcomes import derive_first_event
from carrisk.simulate import EARLY_DEATH_DAYS, simulate_cohort, true_cause_incidence, true_survival


@pytest.fixture(scope="module")
def cohort():
    return simulate_cohort(n=420, seed=7)


def test_non_evaluable_patients_die_before_day_28_and_count_as_no_cr(cohort):
    records = cohort.records
    early = records["day28_cr"].isna()
    assert 1 <= early.sum() <= 20
    dead = records[early]
    assert (dead["efs_event"] == 1).all() and (dead["death"] == 1).all()
    assert (dead["efs_days"] == dead["os_days"]).all() and (dead["relapse_phenotype"] == "none").all()
    assert dead["efs_days"].between(*EARLY_DEATH_DAYS).all()
    causes = derive_first_event(records)
    assert (causes.loc[early, "cause"] == "no_cr").all()
    assert records.loc[~early, "day28_cr"].isin([0, 1]).all()


def test_every_other_patient_is_unchanged_by_the_early_deaths(cohort):
    without = simulate_cohort(n=420, seed=7, non_evaluable_prob=0.0)
    assert without.records["day28_cr"].notna().all()
    keep = cohort.records["day28_cr"].notna()
    pd.testing.assert_frame_equal(
        cohort.records[keep].astype(str), without.records[keep].astype(str), check_dtype=False
    )
    truth_columns = ["true_cr_prob", "true_lp_cr", "true_lp_cd19neg"]
    pd.testing.assert_frame_equal(cohort.truth[truth_columns], without.truth[truth_columns])


def test_rate_matches_the_published_412_of_420():
    records = simulate_cohort(n=20_000, seed=3, messy=False).records
    rate = records["day28_cr"].isna().mean()
    assert rate == pytest.approx(8 / 420, abs=4 * np.sqrt(8 / 420 * 412 / 420 / 20_000))


def test_truth_includes_the_early_deaths_and_still_adds_up(cohort):
    q = 8 / 420
    times = np.array([0.0, 10.0, 27.5, 28.0, 182.625, 365.25])
    survival = true_survival(cohort, times)
    incidence = true_cause_incidence(cohort, times)
    np.testing.assert_allclose(survival + incidence.sum(axis=2), 1.0, atol=1e-12)
    low, high = EARLY_DEATH_DAYS
    np.testing.assert_allclose(survival[:, 1], 1 - q * (10.0 - low) / (high - low), rtol=1e-6)
    np.testing.assert_allclose(survival[:, 2], 1 - q, rtol=1e-6)
    without = simulate_cohort(n=420, seed=7, non_evaluable_prob=0.0)
    np.testing.assert_allclose(survival[:, 3:], (1 - q) * true_survival(without, times[3:]), rtol=1e-6)
    np.testing.assert_allclose(cohort.truth["true_efs_12mo"], survival[:, 5], rtol=1e-12)


def test_empirical_early_death_curve_matches_the_truth():
    cohort = simulate_cohort(n=40_000, seed=5, messy=False)
    records = cohort.records
    died_by_day_14 = ((records["day28_cr"].isna()) & (records["efs_days"] <= 14.0)).mean()
    expected = 1 - true_survival(cohort, [14.0]).mean()
    assert died_by_day_14 == pytest.approx(expected, abs=4 * np.sqrt(expected / 40_000))
