"""Tests for carrisk.metrics: hand counts, agreement with scikit-survival, simulated calibration."""

import sys
import tracemalloc

import numpy as np
import pytest
from sksurv.metrics import (
    brier_score,
    concordance_index_censored,
    concordance_index_ipcw,
    cumulative_dynamic_auc,
    integrated_brier_score,
)
from sksurv.util import Surv

from carrisk.calibration import _rcs_basis
from carrisk.metrics import (
    brier_at,
    brier_time_grid,
    calibration_at,
    calibration_curve,
    choose_tau,
    evaluate_predictions,
    harrell_c,
    integrated_brier,
    summarize,
    time_dependent_auc,
    uno_c,
)

BASELINE_HAZARD_PER_DAY = 1 / 300
LOG_HAZARD_RATIO = 0.8
SIX_MONTHS_DAYS = 182.625


def simulate_exponential(n, seed, max_follow_up_days=900.0):
    """Exponential event times with hazard lambda * exp(0.8 x), uniform censoring; returns x, event, time."""
    rng = np.random.default_rng(seed)
    marker = rng.normal(size=n)
    event_time = rng.exponential(1 / (BASELINE_HAZARD_PER_DAY * np.exp(LOG_HAZARD_RATIO * marker)))
    censor_time = rng.uniform(0, max_follow_up_days, n)
    censor_time = np.minimum(censor_time, max_follow_up_days)
    return marker, event_time <= censor_time, np.minimum(event_time, censor_time)


def true_survival(marker, times):
    """True S(t | x) of ``simulate_exponential``, shape (n, len(times))."""
    hazard = BASELINE_HAZARD_PER_DAY * np.exp(LOG_HAZARD_RATIO * marker)
    return np.exp(-np.outer(hazard, np.atleast_1d(times)))


def split(marker, event, time, n_train):
    y_train = Surv.from_arrays(event[:n_train], time[:n_train])
    y_test = Surv.from_arrays(event[n_train:], time[n_train:])
    return y_train, y_test, marker[n_train:]


def test_harrell_c_matches_hand_count_on_six_patients():
    time = np.array([2.0, 4.0, 4.0, 6.0, 6.0, 10.0])
    event = np.array([True, True, False, True, True, False])
    risk = np.array([5.0, 3.0, 4.0, 3.0, 1.0, 2.0])
    # Comparable pairs (i has the event; j later, or censored at the same time), score for i:
    #   p0 (t=2, r=5) vs p1 r3, p2 r4, p3 r3, p4 r1, p5 r2: all lower risk        -> 5 pairs, 5
    #   p1 (t=4, r=3) vs p2 (censored at t=4, r4): discordant                      -> 1 pair,  0
    #                 vs p3 (r3): tied risk                                        -> 1 pair,  0.5
    #                 vs p4 (r1), p5 (r2): concordant                              -> 2 pairs, 2
    #   p3 (t=6, r=3) vs p4: both events at t=6, not comparable; vs p5 (r2): conc. -> 1 pair,  1
    #   p4 (t=6, r=1) vs p5 (r2): discordant                                       -> 1 pair,  0
    #   p2, p5 censored: no pairs of their own.  Total 8.5 / 11.
    assert harrell_c(event, time, risk) == pytest.approx(8.5 / 11)


@pytest.mark.parametrize("seed", range(6))
def test_harrell_c_equals_sksurv_with_tied_times_and_risks(seed):
    rng = np.random.default_rng(seed)
    n = 300
    time = rng.integers(1, 25, n).astype(float)
    event = rng.random(n) < 0.6
    risk = rng.integers(0, 8, n).astype(float)
    expected = concordance_index_censored(event, time, risk)[0]
    assert harrell_c(event, time, risk) == pytest.approx(expected, abs=1e-12)


def test_harrell_c_raises_when_no_pair_is_comparable():
    with pytest.raises(ValueError, match="all patients are censored"):
        harrell_c(np.zeros(4, dtype=bool), np.arange(1.0, 5.0), np.arange(4.0))
    only_event_last = np.array([False, False, True])
    with pytest.raises(ValueError, match="no comparable pairs"):
        harrell_c(only_event_last, np.array([1.0, 2.0, 3.0]), np.array([0.1, 0.2, 0.3]))


def _tied_survival_data(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    time = np.round(rng.exponential(size=n), 2)
    event = rng.random(n) < 0.5
    return event, time, np.round(-time + rng.normal(size=n), 1)


def test_harrell_c_equals_sksurv_on_thousands_of_patients_with_many_ties():
    event, time, risk = _tied_survival_data(4_000)
    assert len(np.unique(time)) < 1_000 and len(np.unique(risk)) < 200
    assert harrell_c(event, time, risk) == pytest.approx(concordance_index_censored(event, time, risk)[0], abs=1e-12)


def _executed_lines_and_peak_memory(n: int) -> tuple[int, int]:
    event, time, risk = _tied_survival_data(n)
    lines = 0

    def count_lines(frame, event_name, arg):
        nonlocal lines
        lines += event_name == "line"
        return count_lines

    sys.settrace(count_lines)
    try:
        harrell_c(event, time, risk)
    finally:
        sys.settrace(None)
    tracemalloc.start()
    try:
        harrell_c(event, time, risk)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return lines, peak


def test_harrell_c_work_and_memory_grow_like_n_log_n_not_n_squared():
    """Eight times the patients: O(n log n) means about 8-11x the work, O(n^2) 64x; no clock involved.

    Work is counted as executed Python lines (a pairwise Python loop would grow 64x) and peak traced memory (a
    vectorised pairwise comparison would need an n x n matrix). Timings are in benchmarks/harrell_speed.py.
    """
    small_lines, small_peak = _executed_lines_and_peak_memory(1_000)
    large_lines, large_peak = _executed_lines_and_peak_memory(8_000)
    assert large_lines / small_lines < 16
    assert large_peak / small_peak < 16


@pytest.fixture(scope="module")
def fold():
    marker, event, time = simulate_exponential(800, seed=3)
    return split(marker, event, time, n_train=600)


def test_uno_c_equals_sksurv(fold):
    y_train, y_test, risk = fold
    tau = choose_tau(y_train, y_test)
    assert uno_c(y_train, y_test, risk, tau=tau) == pytest.approx(
        concordance_index_ipcw(y_train, y_test, risk, tau=tau)[0], abs=1e-12
    )
    assert uno_c(y_train, y_test, risk) == pytest.approx(uno_c(y_train, y_test, risk, tau=tau), abs=1e-12)


def test_time_dependent_auc_equals_sksurv(fold):
    y_train, y_test, risk = fold
    expected = cumulative_dynamic_auc(y_train, y_test, risk, [SIX_MONTHS_DAYS])[0][0]
    assert time_dependent_auc(y_train, y_test, risk, SIX_MONTHS_DAYS) == pytest.approx(expected, abs=1e-12)


def test_brier_and_integrated_brier_equal_sksurv(fold):
    y_train, y_test, risk = fold
    surv_6mo = true_survival(risk, SIX_MONTHS_DAYS)[:, 0]
    expected = brier_score(y_train, y_test, surv_6mo, SIX_MONTHS_DAYS)[1][0]
    assert brier_at(y_train, y_test, surv_6mo, SIX_MONTHS_DAYS) == pytest.approx(expected, abs=1e-12)

    times = brier_time_grid(y_train, y_test, max_time=730.5, n=30)
    surv_matrix = true_survival(risk, times)
    expected_ibs = integrated_brier_score(y_train, y_test, surv_matrix, times)
    assert integrated_brier(y_train, y_test, surv_matrix, times) == pytest.approx(expected_ibs, abs=1e-12)


def test_target_fields_are_found_by_dtype_not_by_name_or_order(fold):
    y_train, y_test, risk = fold
    reordered = np.dtype([("days", float), ("relapse_or_death", bool)])
    train_renamed = np.empty(y_train.shape[0], dtype=reordered)
    train_renamed["days"], train_renamed["relapse_or_death"] = y_train["time"], y_train["event"]
    test_renamed = np.empty(y_test.shape[0], dtype=reordered)
    test_renamed["days"], test_renamed["relapse_or_death"] = y_test["time"], y_test["event"]
    assert uno_c(train_renamed, test_renamed, risk) == pytest.approx(uno_c(y_train, y_test, risk), abs=1e-12)


def test_choose_tau_is_below_training_maximum_and_within_test_times():
    rng = np.random.default_rng(11)
    train_time = np.r_[rng.uniform(1, 100, 50), np.full(50, 100.0)]  # half the training fold ends at 100
    y_train = Surv.from_arrays(rng.random(100) < 0.5, train_time)
    y_test = Surv.from_arrays(rng.random(40) < 0.5, rng.uniform(1, 150, 40))
    tau = choose_tau(y_train, y_test)
    assert tau < 100.0
    assert y_test["time"].min() < tau <= y_test["time"].max()


def test_ipcw_metrics_censor_test_follow_up_beyond_training_maximum(fold):
    y_train, y_test, risk = fold
    late = y_train["time"].max() + 50.0
    y_test_late = y_test.copy()
    y_test_late["event"][0], y_test_late["time"][0] = True, late
    with pytest.raises(ValueError):
        cumulative_dynamic_auc(y_train, y_test_late, risk, [SIX_MONTHS_DAYS])
    y_test_censored = y_test_late.copy()
    y_test_censored["event"][0], y_test_censored["time"][0] = False, y_train["time"].max()
    expected = cumulative_dynamic_auc(y_train, y_test_censored, risk, [SIX_MONTHS_DAYS])[0][0]
    assert time_dependent_auc(y_train, y_test_late, risk, SIX_MONTHS_DAYS) == pytest.approx(expected, abs=1e-12)


def test_brier_time_grid_respects_max_time_and_sksurv_range(fold):
    y_train, y_test, _ = fold
    short = brier_time_grid(y_train, y_test, max_time=300.0, n=20)
    assert short.shape == (20,)
    assert short[0] == y_test["time"].min()
    assert short[-1] == 300.0
    long = brier_time_grid(y_train, y_test, max_time=1e6)
    assert long[-1] < min(y_test["time"].max(), y_train["time"].max())
    brier_score(y_train, y_test, np.full((y_test.shape[0], long.shape[0]), 0.5), long)


@pytest.fixture(scope="module")
def calibration_cohort():
    marker, event, time = simulate_exponential(2000, seed=1)
    return marker, event, time, true_survival(marker, SIX_MONTHS_DAYS)[:, 0]


def test_true_model_is_well_calibrated(calibration_cohort):
    _, event, time, surv_true = calibration_cohort
    result = calibration_at(event, time, surv_true, SIX_MONTHS_DAYS)
    assert set(result) == {"ici", "e50", "e90", "slope"}
    assert result["ici"] < 0.03
    assert result["e50"] <= result["e90"]
    assert 0.85 < result["slope"] < 1.15


def test_optimistic_predictions_have_larger_ici(calibration_cohort):
    _, event, time, surv_true = calibration_cohort
    true_ici = calibration_at(event, time, surv_true, SIX_MONTHS_DAYS)["ici"]
    optimistic_ici = calibration_at(event, time, np.sqrt(surv_true), SIX_MONTHS_DAYS)["ici"]
    assert optimistic_ici > 0.1
    assert optimistic_ici > 3 * true_ici


def test_overdispersed_predictions_have_slope_below_one(calibration_cohort):
    _, event, time, surv_true = calibration_cohort
    cll = np.log(-np.log(surv_true))
    spread_cll = cll.mean() + 2.0 * (cll - cll.mean())
    result = calibration_at(event, time, np.exp(-np.exp(spread_cll)), SIX_MONTHS_DAYS)
    assert result["slope"] < 0.7


def test_calibration_curve_of_true_model_is_near_diagonal(calibration_cohort):
    _, event, time, surv_true = calibration_cohort
    curve = calibration_curve(event, time, surv_true, SIX_MONTHS_DAYS, n_points=25)
    assert list(curve.columns) == ["predicted", "observed"]
    assert curve.shape == (25, 2)
    assert np.all(np.diff(curve["predicted"]) > 0)
    assert np.abs(curve["observed"] - curve["predicted"]).max() < 0.06


def test_calibration_of_constant_predictions_is_nan_with_warning(calibration_cohort):
    _, event, time, _ = calibration_cohort
    with pytest.warns(RuntimeWarning) as caught:
        result = calibration_at(event, time, np.full(event.shape[0], 0.7), SIX_MONTHS_DAYS)
    messages = " | ".join(str(warning.message) for warning in caught)
    assert "ICI/E50/E90 set to NaN" in messages
    assert "slope set to NaN" in messages
    assert all(np.isnan(value) for value in result.values())
    with pytest.raises(ValueError, match="cannot draw a calibration curve"):
        calibration_curve(event, time, np.full(event.shape[0], 0.7), SIX_MONTHS_DAYS)


def test_rcs_basis_matches_harrell_formula_and_is_linear_beyond_outer_knots():
    knots = np.array([0.0, 1.0, 2.0])
    # nonlinear term = [(x-0)+^3 - (x-1)+^3 * 2/1 + (x-2)+^3 * 1/1] / (2-0)^2
    basis = _rcs_basis(np.array([-1.0, 1.0, 3.0, 4.0, 5.0]), knots)
    np.testing.assert_allclose(basis[:, 0], [-1.0, 1.0, 3.0, 4.0, 5.0])
    np.testing.assert_allclose(basis[:, 1], [0.0, 0.25, 3.0, 4.5, 6.0])


def test_calibration_requires_an_event_by_the_horizon(calibration_cohort):
    _, event, time, surv_true = calibration_cohort
    with pytest.raises(ValueError, match="no event at or before horizon"):
        calibration_at(event, time, surv_true, horizon=time.min() / 2)


def fold_predictions(max_follow_up_days):
    marker, event, time = simulate_exponential(900, seed=5, max_follow_up_days=max_follow_up_days)
    y_train, y_test, test_marker = split(marker, event, time, n_train=600)
    grid = np.arange(10.0, 800.0, 10.0)
    return y_train, y_test, test_marker, grid, true_survival(test_marker, grid)


def test_evaluate_predictions_reports_both_horizons_with_long_follow_up():
    y_train, y_test, risk, grid, surv_matrix = fold_predictions(900.0)
    metrics = evaluate_predictions(y_train, y_test, risk, grid, surv_matrix)
    per_horizon = {"auc", "brier", "ici", "e50", "e90", "calibration_slope"}
    expected = {"harrell_c", "uno_c", "uno_tau", "ibs"} | {f"{m}_{h}" for m in per_horizon for h in ("6mo", "12mo")}
    assert set(metrics) == expected
    assert all(np.isfinite(value) for value in metrics.values())
    # the horizon falls between grid times 180 and 190: the step function reads S at 180
    surv_step = surv_matrix[:, np.searchsorted(grid, 180.0)]
    assert metrics["brier_6mo"] == pytest.approx(brier_at(y_train, y_test, surv_step, SIX_MONTHS_DAYS))
    # a horizon on a grid time reads that grid time's value (right-continuous), not the previous one
    on_grid = evaluate_predictions(y_train, y_test, risk, grid, surv_matrix, horizons={"day180": 180.0})
    surv_180 = surv_matrix[:, np.searchsorted(grid, 180.0)]
    assert on_grid["brier_day180"] == pytest.approx(brier_at(y_train, y_test, surv_180, 180.0))


def test_evaluate_predictions_drops_12_month_metrics_when_follow_up_stops_at_300_days():
    y_train, y_test, risk, grid, surv_matrix = fold_predictions(300.0)
    metrics = evaluate_predictions(y_train, y_test, risk, grid, surv_matrix)
    assert not any(key.endswith("_12mo") for key in metrics)
    assert {"auc_6mo", "brier_6mo", "ici_6mo", "e50_6mo", "calibration_slope_6mo"} <= set(metrics)
    assert metrics["uno_tau"] < 300.0


def test_summarize_known_answer_and_failed_folds():
    summary = summarize([0.6, 0.7, 0.8, float("nan")])
    assert summary["mean"] == pytest.approx(0.7)
    assert summary["sd"] == pytest.approx(0.1)
    assert summary["ci"] == pytest.approx([0.605, 0.795])
    assert summary["n"] == 3
    assert summary["n_failed"] == 1
    assert summary["folds"][:3] == [0.6, 0.7, 0.8]
    assert np.isnan(summary["folds"][3])


def test_time_dependent_auc_without_a_case_or_a_control_is_an_error_not_a_nan():
    """sksurv returns NaN with a RuntimeWarning (0/0); the AUC is undefined, so say why."""
    from carrisk.target import make_target

    y = make_target(np.array([False, True, True, False]), np.array([50.0, 300.0, 400.0, 500.0]))
    with pytest.raises(ValueError, match="0 patients with an event by then and 4 followed beyond it"):
        time_dependent_auc(y, y, np.array([0.1, 0.4, 0.3, 0.2]), 40.0)
    with pytest.raises(ValueError, match="2 patients with an event by then and 0 followed beyond it"):
        time_dependent_auc(y, y, np.array([0.1, 0.4, 0.3, 0.2]), 500.0)
