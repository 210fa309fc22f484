"""Tests for carrisk.competing.metrics: Wolbers' cause-specific C and the Brier score of a cumulative incidence."""

from __future__ import annotations

import numpy as np
import pytest
from sksurv.metrics import brier_score, concordance_index_censored
from sksurv.util import Surv

from carrisk.competing.metrics import cause_concordance, cif_brier_score


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
