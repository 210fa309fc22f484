"""One set of rules for the survival target, used by metrics, models, prediction and datasets."""

from __future__ import annotations

import numpy as np
import pytest

from carrisk import metrics, models
from carrisk.calibration import calibration_in_the_large
from carrisk.target import check_per_patient, check_survival_target, make_target, target_arrays


def test_fields_are_found_by_type_whatever_their_names_and_order():
    reordered = np.array([(5.0, True), (3.0, False)], dtype=[("days", "f8"), ("died", "?")])
    event, time = target_arrays(reordered)
    np.testing.assert_array_equal(event, [True, False])
    np.testing.assert_array_equal(time, [5.0, 3.0])
    built = make_target(event, time)
    assert built.dtype.names == ("event", "time")


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (np.array([1.0, 2.0]), "structured survival target"),
        (np.array([(1, 2.0)], dtype=[("e", "i8"), ("t", "f8")]), "exactly one boolean field"),
        (make_target(np.array([True, False]), np.array([1.0, -1.0])), "non-negative"),
        (make_target(np.array([True, False]), np.array([1.0, np.inf])), "finite"),
    ],
)
def test_malformed_targets_are_refused_with_a_fix(target, message):
    with pytest.raises(ValueError, match=message):
        target_arrays(target)


def test_fitting_needs_two_rows_an_event_and_distinct_times():
    with pytest.raises(ValueError, match="at least 2"):
        check_survival_target(make_target(np.array([True]), np.array([1.0])))
    with pytest.raises(ValueError, match="no events"):
        check_survival_target(make_target(np.array([False, False]), np.array([1.0, 2.0])))
    with pytest.raises(ValueError, match="the same"):
        check_survival_target(make_target(np.array([True, False]), np.array([2.0, 2.0])))


def test_models_and_metrics_use_the_same_rules():
    assert models.target_arrays is target_arrays and models.check_survival_target is check_survival_target
    reordered = np.array([(5.0, True), (3.0, False), (4.0, True)], dtype=[("days", "f8"), ("died", "?")])
    assert metrics.harrell_c(*target_arrays(reordered), np.array([0.1, 0.5, 0.2])) == pytest.approx(1.0)


def test_per_patient_values_are_one_finite_number_per_patient_and_the_message_names_the_rows():
    np.testing.assert_array_equal(check_per_patient([1, 2.5], "risk", 2), [1.0, 2.5])
    with pytest.raises(ValueError, match=r"^risk must be a 1-D array with one value per test patient \(3\), got shape"):
        check_per_patient([0.1, 0.2], "risk", 3, patients="test patient")
    with pytest.raises(ValueError, match=r"one value per patient \(2\), got shape \(1, 2\)"):
        check_per_patient([[0.1, 0.2]], "surv_prob", 2)
    with pytest.raises(ValueError, match=r"surv_prob contains NaN or infinite values at rows \[1 3\]"):
        check_per_patient([0.1, np.nan, 0.3, np.inf], "surv_prob", 4)
    with pytest.raises(ValueError, match=r"^surv_prob must be a 1-D array with one value per patient \(3\)"):
        calibration_in_the_large([True, False, True], [1.0, 2.0, 3.0], [0.5, 0.5], 2.0)
    with pytest.raises(ValueError, match=r"^risk must be a 1-D array with one value per test patient \(3\)"):
        metrics.harrell_c(np.array([True, False, True]), np.array([1.0, 2.0, 3.0]), [0.5, 0.5])
