"""The confidence interval of a cross-validated mean (Nadeau-Bengio) and the fold summaries."""

import numpy as np
import pytest

from carrisk.cv_summary import corrected_cv_interval, summarize_cv_metric

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
