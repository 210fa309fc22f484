"""Tests for carrisk.competing.metrics: Wolbers' cause-specific C and the Brier score of a cumulative incidence."""

from __future__ import annotations

import numpy as np
import pytest
from sksurv.metrics import brier_score, concordance_index_censored
from sksurv.util import Surv

from carrisk.competing.metrics import cause_concordance, cif_auc, cif_brier_score


@pytest.fixture
def untied():
    rng = np.random.default_rng(6)
    n = 300
    risk = rng.normal(size=n)
    latent = np.column_stack([rng.exponential(1 / np.exp(risk)), rng.exponential(1.5, n)])
    censor = rng.uniform(0, 3, n)
    first = latent.min(axis=1)
    code = np.where(first <= censor, latent.argmin(axis=1) + 1, 0)
    return np.minimum(first, censor), code, risk


def test_without_competing_events_cause_concordance_is_harrells_c(untied):
    time, code, risk = untied
    single = np.where(code == 1, 1, 0)
    expected = concordance_index_censored(single == 1, time, risk)[0]
    assert cause_concordance(time, single, risk, 1) == pytest.approx(expected, abs=1e-12)


def test_without_competing_events_cause_concordance_is_harrells_c_with_tied_times():
    # an event and censorings at the same time (day 28), tied events and tied risks: Harrell's conventions
    time = np.array([28.0, 28.0, 28.0, 60.0, 90.0, 90.0, 90.0, 120.0, 200.0])
    code = np.array([1, 0, 0, 1, 1, 1, 0, 0, 1])
    risk = np.array([0.9, 0.1, 0.8, 0.5, 0.4, 0.3, 0.6, 0.2, 0.3])
    expected = concordance_index_censored(code == 1, time, risk)[0]
    assert cause_concordance(time, code, risk, 1) == pytest.approx(expected, abs=1e-12)


def test_a_competing_failure_before_the_case_is_a_comparable_control():
    time = np.array([5.0, 2.0, 3.0, 8.0])
    code = np.array([1, 2, 0, 0])
    # case 0 (cause 1 at t=5): vs 1 (other cause at 2: comparable), vs 2 (censored at 3: not), vs 3 (later: yes)
    assert cause_concordance(time, code, [0.9, 0.5, 0.99, 0.95], 1) == pytest.approx(0.5)
    assert cause_concordance(time, code, [0.9, 0.5, 0.99, 0.1], 1) == pytest.approx(1.0)
    assert cause_concordance(time, code, [0.9, 0.9, 0.0, 0.1], 1) == pytest.approx(0.75)
    assert np.isnan(cause_concordance(time, code, [0.9, 0.9, 0.0, 0.1], 1, tau=4.0))


def test_without_competing_events_the_brier_score_is_scikit_survivals(untied):
    time, code, risk = untied
    single = np.where(code == 1, 1, 0)
    incidence = 1 - np.exp(-np.exp(risk) * 0.8)
    target = Surv.from_arrays(single == 1, time)
    _, expected = brier_score(target, target, 1 - incidence, 0.8)
    assert cif_brier_score(time, single, incidence, 1, 0.8) == pytest.approx(expected[0], abs=1e-12)


def test_a_competing_failure_counts_as_a_zero_outcome_without_censoring():
    time = np.array([1.0, 2.0, 3.0, 4.0])
    code = np.array([1, 2, 1, 2])
    prediction = np.array([0.7, 0.2, 0.4, 0.1])
    # no censoring: G = 1, so the score is the plain mean squared error against 1{cause 1 by t}
    expected = np.mean((np.array([1.0, 0.0, 0.0, 0.0]) - prediction) ** 2)
    assert cif_brier_score(time, code, prediction, 1, 2.5) == pytest.approx(expected)


def test_lengths_must_match():
    with pytest.raises(ValueError, match="one value per patient"):
        cause_concordance([1.0, 2.0], [1, 0], [0.5], 1)


def test_without_competing_events_the_cif_auc_is_scikit_survivals(untied):
    from sksurv.metrics import cumulative_dynamic_auc

    time, code, risk = untied
    single = np.where(code == 1, 1, 0)
    target = Surv.from_arrays(single == 1, time)
    for horizon in (0.3, 0.8, 1.5):
        expected = cumulative_dynamic_auc(target, target, risk, [horizon])[0][0]
        assert cif_auc(time, single, risk, 1, horizon) == pytest.approx(expected, abs=1e-12)


def test_cif_auc_is_the_weighted_pair_count_with_competing_failures_as_controls(untied):
    from sksurv.nonparametric import CensoringDistributionEstimator

    time, code, risk = untied
    risk = np.round(risk, 1)  # ties in the prediction count one half
    horizon = 0.9
    g = CensoringDistributionEstimator().fit(Surv.from_arrays(code > 0, time))
    g_time, g_horizon = g.predict_proba(time), g.predict_proba(np.array([horizon]))[0]
    numerator = denominator = 0.0
    for i in range(len(time)):
        if not (time[i] <= horizon and code[i] == 1):
            continue
        for j in range(len(time)):
            if time[j] > horizon:
                w_j = 1 / g_horizon
            elif code[j] == 2:
                w_j = 1 / g_time[j]
            else:
                continue
            w = w_j / g_time[i]
            denominator += w
            numerator += w * (1.0 if risk[i] > risk[j] else 0.5 if risk[i] == risk[j] else 0.0)
    assert (code[time <= horizon] == 2).any()
    assert cif_auc(time, code, risk, 1, horizon) == pytest.approx(numerator / denominator, abs=1e-12)
    assert cif_auc(time, code, code == 1, 1, horizon) > 0.9
    assert np.isnan(cif_auc(time, code, risk, 1, 1e-9))
