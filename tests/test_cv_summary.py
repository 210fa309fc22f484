"""The confidence interval of a cross-validated mean (Nadeau-Bengio) and the fold summaries."""

import numpy as np
import pytest

from carrisk.cv_summary import corrected_cv_interval, metric_bounds, summarize_cv_metric

FOLD_C = [0.60, 0.62, 0.65, 0.58, 0.61, 0.63]  # 3 folds x 2 repeats


def test_nadeau_bengio_interval_equals_a_hand_computation():
    # mean 0.615; s^2 = 0.00295 / 5 = 0.00059; corrected variance (1/6 + 1/2) * 0.00059 = 0.000393333;
    # t(0.975, 5 df) = 2.570582 (tables); half-width 2.570582 * 0.0198326 = 0.0509813
    lower, upper = corrected_cv_interval(FOLD_C, test_train_ratio=0.5)
    assert (lower, upper) == pytest.approx((0.615 - 0.0509813, 0.615 + 0.0509813), abs=1e-6)


def test_correction_widens_the_naive_interval_and_zero_ratio_gives_the_naive_one():
    naive = corrected_cv_interval(FOLD_C, test_train_ratio=0.0)
    sd = np.std(FOLD_C, ddof=1)
    assert naive[1] - 0.615 == pytest.approx(2.570582 * sd / np.sqrt(6), abs=1e-6)
    corrected = corrected_cv_interval(FOLD_C, test_train_ratio=0.25)
    assert corrected[1] - corrected[0] > naive[1] - naive[0]


def test_failed_folds_are_left_out_and_too_few_folds_give_nan():
    with_failure = corrected_cv_interval([*FOLD_C, np.nan], test_train_ratio=0.5)
    assert with_failure == pytest.approx(corrected_cv_interval(FOLD_C, 0.5))
    assert np.isnan(corrected_cv_interval([0.6, np.nan], 0.25)).all()
    with pytest.raises(ValueError, match="level"):
        corrected_cv_interval(FOLD_C, 0.25, level=1.5)
    with pytest.raises(ValueError, match="test_train_ratio"):
        corrected_cv_interval(FOLD_C, -1.0)


def test_summary_names_the_fold_spread_and_keeps_ci_as_its_deprecated_alias():
    summary = summarize_cv_metric(FOLD_C, test_train_ratio=0.5)
    assert summary["spread"] == pytest.approx(np.percentile(FOLD_C, [2.5, 97.5]).tolist())
    assert summary["ci"] == summary["spread"]
    assert summary["mean_ci"] == pytest.approx(list(corrected_cv_interval(FOLD_C, 0.5)))
    assert summary["mean"] == pytest.approx(0.615) and summary["n"] == 6 and summary["n_failed"] == 0


def test_interval_of_a_measure_in_0_1_is_clipped_to_it_and_says_so():
    ici = [0.004, 0.060, 0.010, 0.002, 0.050, 0.006]  # small mean, wide spread: the t interval reaches below 0
    lower, _ = corrected_cv_interval(ici, test_train_ratio=0.5)
    assert lower < 0
    summary = summarize_cv_metric(ici, test_train_ratio=0.5, metric="ici_6mo")
    assert summary["mean_ci"][0] == 0.0
    assert summary["mean_ci"][1] == pytest.approx(corrected_cv_interval(ici, 0.5)[1])
    assert summary["mean_ci_clipped"] is True
    assert metric_bounds("ibs") == metric_bounds("e90_12mo") == (0.0, 1.0)
    # unbounded measures (calibration slope) and intervals inside the range are left alone
    slope = summarize_cv_metric([-0.5, 0.1, 0.3, -0.2, 0.0, 0.2], 0.5, metric="calibration_slope_6mo")
    assert slope["mean_ci"][0] < 0 and slope["mean_ci_clipped"] is False
    assert summarize_cv_metric(FOLD_C, 0.5, metric="harrell_c")["mean_ci_clipped"] is False
    assert summarize_cv_metric([0.1, np.nan], 0.5, metric="ibs")["mean_ci_clipped"] is False
