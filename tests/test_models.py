"""Model pipelines: chosen penalty is used, time grid, bad inputs, reference agreement."""

import numpy as np
import pytest
from sksurv.linear_model import CoxnetSurvivalAnalysis
from sksurv.util import Surv

from carrisk.datasets import load_public_dataset, load_survival_data
from carrisk.models import PenalizedCox, SurvivalForest, coarsen_times, make_pipeline, step_survival


@pytest.fixture(scope="module")
def gbsg2():
    return load_survival_data(load_public_dataset("gbsg2"), time_col="time", event_col="event")


def test_coxnet_predicts_with_the_selected_alpha_not_the_last(gbsg2):
    pipe = make_pipeline("coxnet", gbsg2.spec, alpha_ratio=0.1).fit(gbsg2.records, gbsg2.y)
    model = pipe[-1]
    design = pipe[:-1].transform(gbsg2.records)
    reference = CoxnetSurvivalAnalysis(l1_ratio=0.5, alphas=model.model_.alphas_, fit_baseline_model=True)
    reference.fit(design, gbsg2.y)
    np.testing.assert_allclose(model.predict(design), reference.predict(design, alpha=model.alpha_), rtol=1e-6)
    assert model.alpha_ == pytest.approx(0.1 * model.alpha_max_, rel=1e-6)
    # a smaller penalty gives a different (larger-norm) coefficient vector
    loose = make_pipeline("coxnet", gbsg2.spec, alpha_ratio=0.01).fit(gbsg2.records, gbsg2.y)[-1]
    assert np.linalg.norm(loose.coef_) > np.linalg.norm(model.coef_)


def test_coxnet_numerical_failure_is_caught_and_reported(monkeypatch, gbsg2):
    calls = []
    original = CoxnetSurvivalAnalysis.fit

    def failing_fit(self, X, y):
        calls.append(self.alpha_min_ratio)
        if self.alpha_min_ratio < 0.05:
            raise ArithmeticError("Numerical error, because weights are too large.")
        return original(self, X, y)

    monkeypatch.setattr(CoxnetSurvivalAnalysis, "fit", failing_fit)
    X = np.random.default_rng(0).normal(size=(100, 3))
    y = Surv.from_arrays(np.arange(100) % 2 == 0, np.arange(1, 101, dtype=float))
    with pytest.warns(UserWarning, match="failed"):
        model = PenalizedCox(alpha_ratio=0.01).fit(X, y)
    assert calls[:2] == [0.01, 0.03] and model.fit_warnings_


def test_time_grid_keeps_order_and_bounds():
    rng = np.random.default_rng(1)
    time = rng.exponential(100, 1000)
    event = rng.random(1000) < 0.6
    coarse, grid = coarsen_times(time, event, 50)
    assert len(grid) <= 51 and grid[-1] == time.max()
    assert np.all(coarse >= time)  # moved up to the next grid point, never down
    order = np.argsort(time, kind="stable")
    assert np.all(np.diff(coarse[order]) >= 0)  # the ordering between patients is kept


def test_time_grid_forest_is_smaller_and_as_accurate(gbsg2):
    design = make_pipeline("rsf", gbsg2.spec)[:-1].fit_transform(gbsg2.records)
    full = SurvivalForest(n_estimators=30, max_times=None, random_state=0).fit(design, gbsg2.y)
    coarse = SurvivalForest(n_estimators=30, max_times=40, random_state=0).fit(design, gbsg2.y)
    assert len(coarse.unique_times_) <= 41 < len(full.unique_times_)
    c_full, c_coarse = full.score(design, gbsg2.y), coarse.score(design, gbsg2.y)
    assert abs(c_full - c_coarse) < 0.02


def test_step_survival_is_right_continuous():
    times = np.array([1.0, 2.0, 4.0])
    surv = np.array([[0.9, 0.8, 0.5]])
    np.testing.assert_allclose(
        step_survival(times, surv, np.array([0.5, 1.0, 1.5, 4.0, 9.0])), [[1.0, 0.9, 0.9, 0.5, 0.5]]
    )


@pytest.mark.parametrize(
    ("event", "time", "message"),
    [
        ([False, False, False], [1.0, 2.0, 3.0], "no events"),
        ([True], [1.0], "at least 2"),
        ([True, False, True], [5.0, 5.0, 5.0], "same"),
        ([True, False], [-1.0, 2.0], "non-negative"),
    ],
)
def test_bad_targets_raise_clear_errors(event, time, message):
    X = np.zeros((len(time), 2))
    y = Surv.from_arrays(np.array(event), np.array(time))
    for model in (SurvivalForest(n_estimators=5), PenalizedCox()):
        with pytest.raises(ValueError, match=message):
            model.fit(X, y)


def test_unknown_model_name():
    with pytest.raises(ValueError, match="unknown model"):
        make_pipeline("svm")
