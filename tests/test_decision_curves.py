"""Decision curve analysis checked against the dcurves package and hand-computed Kaplan-Meier values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from carrisk.decision_curves import decision_curve, decision_curve_with_draws, net_benefit
from carrisk.simulate import SIX_MONTHS_DAYS, TWELVE_MONTHS_DAYS, simulate_cohort


def _cohort(n: int = 300, seed: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cohort = simulate_cohort(n, seed=seed, messy=False)
    event = cohort.records["efs_event"].to_numpy(dtype=bool)
    time = cohort.records["efs_days"].to_numpy(dtype=float)
    # a noisy version of the true 12-month event probability: a realistic, imperfect model
    rng = np.random.default_rng(seed)
    prob = np.clip(1 - cohort.truth["true_efs_12mo"].to_numpy() + rng.normal(0, 0.08, n), 0.0, 1.0)
    return event, time, prob


@pytest.mark.parametrize("horizon", [SIX_MONTHS_DAYS, TWELVE_MONTHS_DAYS])
def test_net_benefit_equals_dcurves_to_1e6(horizon):
    dcurves = pytest.importorskip("dcurves")
    event, time, prob = _cohort()
    thresholds = [round(t, 2) for t in np.arange(0.0, 0.96, 0.05)]
    frame = pd.DataFrame({"event": event.astype(int), "time": time, "model": prob})
    reference = dcurves.dca(
        data=frame,
        outcome="event",
        modelnames=["model"],
        thresholds=thresholds,
        time=horizon,
        time_to_outcome_col="time",
    )
    for name, ours in (
        ("model", net_benefit(event, time, prob, horizon, thresholds)),
        ("all", net_benefit(event, time, np.ones_like(prob), horizon, thresholds)),
    ):
        theirs = reference.loc[reference["model"] == name, "net_benefit"].to_numpy(dtype=float)
        defined = np.isfinite(theirs)
        assert defined.sum() >= len(thresholds) // 2
        np.testing.assert_allclose(ours[defined], theirs[defined], atol=1e-6, rtol=0)
        # where dcurves gives NaN, every treated patient had an event before the horizon: NB = share treated
        shares = np.array([(prob >= t).mean() if name == "model" else 1.0 for t in thresholds])
        np.testing.assert_allclose(ours[~defined], shares[~defined], atol=1e-12)
    none = reference.loc[reference["model"] == "none", "net_benefit"].to_numpy(dtype=float)
    np.testing.assert_allclose(none, 0.0, atol=1e-12)


def test_perfect_knowledge_has_the_event_rate_as_net_benefit_and_bands_cover_the_estimate():
    # every patient with an event by 12 months predicted 1, every other 0, no censoring before 12 months
    time = np.array([100.0, 200.0, 300.0, 400.0, 500.0, 600.0, 700.0, 800.0])
    event = np.array([1, 1, 1, 0, 0, 0, 0, 0], dtype=bool)
    prob = (event & (time <= TWELVE_MONTHS_DAYS)).astype(float)
    curve = decision_curve(event, time, prob, TWELVE_MONTHS_DAYS, [0.1, 0.5], n_bootstrap=50, seed=1)
    np.testing.assert_allclose(curve["net_benefit_model"], 3 / 8)
    # treat-all: 3/8 - 5/8 * odds
    np.testing.assert_allclose(curve["net_benefit_all"], [3 / 8 - 5 / 8 / 9, 3 / 8 - 5 / 8])
    assert (curve["net_benefit_model_lower"] <= curve["net_benefit_model"]).all()
    assert (curve["net_benefit_model_upper"] >= curve["net_benefit_model"]).all()


def test_nobody_followed_to_the_horizon_gives_nan_and_nobody_treated_gives_zero():
    event = np.array([1, 0, 0], dtype=bool)
    time = np.array([10.0, 20.0, 30.0])
    assert net_benefit(event, time, np.array([0.1, 0.1, 0.1]), 25.0, [0.5])[0] == 0.0
    with pytest.raises(ValueError, match="thresholds must lie in"):
        decision_curve(event, time, np.zeros(3), 25.0, [1.0])


def test_the_draws_behind_the_band_are_the_documented_resamples():
    event, time, prob = _cohort(120, seed=6)
    thresholds = [0.2, 0.4, 0.6]
    table, draws = decision_curve_with_draws(event, time, prob, TWELVE_MONTHS_DAYS, thresholds, n_bootstrap=15, seed=2)
    pd.testing.assert_frame_equal(
        table, decision_curve(event, time, prob, TWELVE_MONTHS_DAYS, thresholds, n_bootstrap=15, seed=2)
    )
    rng = np.random.default_rng(2)
    for b in range(15):
        index = rng.integers(0, event.size, event.size)
        expected = net_benefit(event[index], time[index], prob[index], TWELVE_MONTHS_DAYS, thresholds)
        np.testing.assert_array_equal(draws[b], expected)
    np.testing.assert_allclose(table["net_benefit_model_lower"], np.nanquantile(draws, 0.025, axis=0), atol=0)
