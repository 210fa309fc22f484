"""Bootstrap optimism correction: the bookkeeping of Harrell's method, on a quick unpenalized Cox model."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import carrisk
from carrisk.calibration import calibration_curve
from carrisk.datasets import load_survival_data
from carrisk.internal_validation import CURVE_POINTS, MEASURES, bootstrap_optimism
from carrisk.schema import TWELVE_MONTHS_DAYS
from carrisk.tuning import final_pipeline, tuned_model


@pytest.mark.slow
def test_corrected_is_apparent_minus_the_mean_optimism_of_the_refits():
    cohort = carrisk.simulate_cohort(300, seed=9)
    y = carrisk.survival_target(cohort.records)
    result = bootstrap_optimism(cohort.records, y, "coxph", n_bootstrap=6, seed=2)
    summary = result.summary.set_index("measure")
    assert list(summary.index) == list(MEASURES)
    for measure in MEASURES:
        optimism = (result.refits[f"{measure}_apparent"] - result.refits[f"{measure}_test"]).mean()
        assert summary.loc[measure, "optimism"] == pytest.approx(optimism)
        assert summary.loc[measure, "corrected"] == pytest.approx(summary.loc[measure, "apparent"] - optimism)
    # a model fitted to its own resample ranks that resample better than the original data: optimism > 0
    assert summary.loc["harrell_c", "optimism"] > 0
    assert summary.loc["harrell_c", "n_bootstrap"] == 6
    assert np.isfinite(summary["corrected"]).all()


def _exponential_table(n: int, seed: int) -> pd.DataFrame:
    """One covariate with a true log hazard ratio of 0.8, exponential times, uniform censoring (days)."""
    rng = np.random.default_rng(seed)
    marker = rng.normal(size=n)
    event_time = rng.exponential(365.25 / np.exp(0.8 * marker))
    censoring = rng.uniform(100, 900, n)
    return pd.DataFrame(
        {"marker": marker, "time": np.minimum(event_time, censoring), "event": (event_time <= censoring).astype(int)}
    )


def test_calibration_curve_on_a_given_grid_equals_the_default_curve_there():
    cohort = carrisk.simulate_cohort(300, seed=3)
    y = carrisk.survival_target(cohort.records)
    surv = cohort.truth["true_efs_12mo"].to_numpy()
    default = calibration_curve(y["event"], y["time"], surv, TWELVE_MONTHS_DAYS, n_points=7)
    given = calibration_curve(y["event"], y["time"], surv, TWELVE_MONTHS_DAYS, grid=default["predicted"].to_numpy())
    np.testing.assert_allclose(given.to_numpy(), default.to_numpy())


@pytest.mark.slow
def test_unpenalised_cox_on_a_large_cohort_has_a_near_zero_curve_correction():
    data = load_survival_data(_exponential_table(1500, seed=1), time_col="time", event_col="event")
    result = bootstrap_optimism(data.records, data.y, "coxph", n_bootstrap=5, seed=4, spec=data.spec)
    curve = result.calibration_curve
    assert len(curve) == CURVE_POINTS and (curve["n_bootstrap"] == 5).all()
    np.testing.assert_allclose(curve["corrected"], curve["apparent"] - curve["optimism"])
    # the apparent curve is the final model's own smoothed calibration on the development data
    final = final_pipeline(tuned_model("coxph", data.spec, random_state=4).fit(data.records, data.y))
    design = final[:-1].transform(data.records)
    efs = final[-1].predict_survival_matrix(design, np.array([TWELVE_MONTHS_DAYS]))[:, 0]
    own = calibration_curve(data.y["event"], data.y["time"], efs, TWELVE_MONTHS_DAYS, grid=curve["predicted"])
    np.testing.assert_allclose(curve["apparent"], own["observed"], atol=1e-9)
    assert np.abs(curve["optimism"]).max() < 0.01  # one coefficient, 1,500 patients: nothing to overfit
    assert "Calibration curve" in result.to_text()


def test_an_overfitted_forest_has_its_calibration_curve_flattened():
    cohort = carrisk.simulate_cohort(150, seed=9)
    y = carrisk.survival_target(cohort.records)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        result = bootstrap_optimism(
            cohort.records, y, "rsf", n_bootstrap=4, seed=2, min_samples_leaf=3, n_estimators=50
        )
    curve = result.calibration_curve
    # a forest grown to tiny leaves separates its own patients too well: on new patients its highest predictions
    # come true less often, its lowest more often, so the correction lowers the top and raises the bottom
    assert curve["optimism"].iloc[-1] > 0.02 and curve["optimism"].iloc[0] < -0.02
    apparent_rise = curve["apparent"].iloc[-1] - curve["apparent"].iloc[0]
    assert curve["corrected"].iloc[-1] - curve["corrected"].iloc[0] < apparent_rise


def test_corrected_curve_equals_a_by_hand_replay_of_the_refits():
    """Replay rms calibrate's bookkeeping by hand: same resamples, same fits, curves on the same grid."""
    cohort = carrisk.simulate_cohort(200, seed=21)
    y = carrisk.survival_target(cohort.records)
    records = cohort.records.reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = bootstrap_optimism(records, y, "coxph", n_bootstrap=3, seed=6)

        def efs(rows: pd.DataFrame, target: np.ndarray, scored: pd.DataFrame) -> np.ndarray:
            pipeline = final_pipeline(tuned_model("coxph", random_state=6).fit(rows, target))
            design = pipeline[:-1].transform(scored)
            return pipeline[-1].predict_survival_matrix(design, np.array([TWELVE_MONTHS_DAYS]))[:, 0]

        def observed(target: np.ndarray, surv: np.ndarray, grid: np.ndarray) -> np.ndarray:
            curve = calibration_curve(target["event"], target["time"], surv, TWELVE_MONTHS_DAYS, grid=grid)
            return curve["observed"].to_numpy()

        final = efs(records, y, records)
        grid = np.linspace(*np.quantile(1.0 - final, [0.01, 0.99]), CURVE_POINTS)
        rng = np.random.default_rng(6)
        optimism = []
        for _ in range(3):
            index = rng.integers(0, len(records), len(records))
            sample = records.iloc[index].reset_index(drop=True)
            try:
                own_efs, test_efs = efs(sample, y[index], sample), efs(sample, y[index], records)
            except ValueError:  # a refit that cannot be fitted is skipped, as bootstrap_optimism skips it
                continue
            optimism.append(observed(y[index], own_efs, grid) - observed(y, test_efs, grid))
    curve = result.calibration_curve
    assert len(optimism) >= 2 and (curve["n_bootstrap"] == len(optimism)).all()
    np.testing.assert_allclose(curve["predicted"], grid)
    np.testing.assert_allclose(curve["apparent"], observed(y, final, grid), atol=1e-9)
    np.testing.assert_allclose(curve["optimism"], np.mean(optimism, axis=0), atol=1e-9)
    np.testing.assert_allclose(curve["corrected"], observed(y, final, grid) - np.mean(optimism, axis=0), atol=1e-9)


def test_a_resample_that_misses_a_rare_level_does_not_warn():
    """A refit whose resample lacks a level seen in 1 patient scores the original data silently (expected)."""
    cohort = carrisk.simulate_cohort(150, seed=11, messy=False)
    records = cohort.records.copy()
    records.loc[0, "cd19_expression"] = None  # one 'unknown' CD19: most resamples of 150 miss it at least once
    y = carrisk.survival_target(records)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = bootstrap_optimism(records, y, "coxph", n_bootstrap=4, seed=1, curve=False)
    assert result.summary["n_bootstrap"].min() > 0
    assert not [w for w in caught if "were not seen in training" in str(w.message)]
