"""Stacked survival ensemble and bootstrap intervals: known weights recovered, Brier score vs scikit-survival."""

import numpy as np
import pytest
from scipy.special import expit, logit
from sklearn.base import BaseEstimator
from sksurv.metrics import brier_score, integrated_brier_score
from sksurv.nonparametric import CensoringDistributionEstimator
from sksurv.util import Surv

from carrisk.bootstrap import bootstrap_interval
from carrisk.ensemble import StackedSurvival, brier_weights, simplex_least_squares


class _Exponential(BaseEstimator):
    """A 'model' that ignores X and predicts exp(-t / scale) for everyone."""

    def __init__(self, scale: float = 100.0) -> None:
        self.scale = scale

    def fit(self, X, y):
        self.unique_times_ = np.array([0.0, 1.0])
        return self

    def predict_survival_matrix(self, X, times):
        return np.exp(-np.asarray(times)[None, :] / self.scale).repeat(len(X), axis=0)


def test_stacking_recovers_the_mixture_weights_of_a_constructed_example():
    rng = np.random.default_rng(0)
    n = 6000
    from_b = rng.random(n) < 0.7  # the truth: S = 0.3 exp(-t/50) + 0.7 exp(-t/400)
    time = np.where(from_b, rng.exponential(400.0, n), rng.exponential(50.0, n))
    censor = rng.uniform(0, 1000, n)
    y = Surv.from_arrays(time <= censor, np.minimum(time, censor))
    bases = [("short", _Exponential(50.0)), ("long", _Exponential(400.0)), ("wrong", _Exponential(5.0))]
    model = StackedSurvival(bases, n_times=30).fit(np.zeros((n, 1)), y)
    np.testing.assert_allclose(model.weights_, [0.3, 0.7, 0.0], atol=0.04)
    assert model.weights_.sum() == pytest.approx(1.0)
    # the stacked curve is the weighted mixture
    times = np.array([10.0, 100.0])
    expected = 0.3 * np.exp(-times / 50) + 0.7 * np.exp(-times / 400)
    np.testing.assert_allclose(model.predict_survival_matrix(np.zeros((1, 1)), times)[0], expected, atol=0.02)


def test_out_of_fold_ibs_equals_scikit_survivals_integrated_brier_score():
    rng = np.random.default_rng(3)
    n = 500
    time, censor = rng.exponential(150.0, n), rng.uniform(0, 400, n)
    y = Surv.from_arrays(time <= censor, np.minimum(time, censor))
    bases = [("short", _Exponential(50.0)), ("long", _Exponential(400.0))]
    model = StackedSurvival(bases, n_times=20).fit(np.zeros((n, 1)), y)
    grid = model.ibs_times_
    for k, (_, base) in enumerate(bases):  # these bases ignore X: out-of-fold curves = the base's curve
        curves = base.predict_survival_matrix(np.zeros((n, 1)), grid)
        assert model.oof_ibs_[k] == pytest.approx(integrated_brier_score(y, y, curves, grid), rel=1e-10)


def test_fixed_weights_skip_the_out_of_fold_search_and_are_checked():
    y = Surv.from_arrays([True, False, True], [1.0, 2.0, 3.0])
    bases = [("a", _Exponential(1.0)), ("b", _Exponential(2.0))]
    model = StackedSurvival(bases, weights=(0.25, 0.75)).fit(np.zeros((3, 1)), y)
    assert model.oof_ibs_ is None
    np.testing.assert_allclose(model.weights_, [0.25, 0.75])
    with pytest.raises(ValueError, match="summing to 1"):
        StackedSurvival(bases, weights=(0.5, 0.6)).fit(np.zeros((3, 1)), y)


def test_brier_weights_reproduce_scikit_survival_brier_score():
    rng = np.random.default_rng(1)
    n = 400
    time = rng.exponential(100.0, n)
    censor = rng.uniform(0, 250, n)
    event, observed = time <= censor, np.minimum(time, censor)
    y = Surv.from_arrays(event, observed)
    times = np.array([20.0, 60.0, 120.0])
    survival = np.exp(-times[None, :] / rng.uniform(60, 140, n)[:, None])
    censoring = CensoringDistributionEstimator().fit(y)
    weights, target = brier_weights(event, observed, times, censoring)
    ours = np.mean(weights * (target - survival) ** 2, axis=0)
    _, reference = brier_score(y, y, survival, times)
    np.testing.assert_allclose(ours, reference, rtol=1e-10)


def test_simplex_least_squares_known_answer():
    # minimise (w1 - 0.2)^2 + (w2 - 0.5)^2 on the simplex: the projection (0.35, 0.65)
    weights = simplex_least_squares(np.eye(2), np.array([0.2, 0.5]))
    np.testing.assert_allclose(weights, [0.35, 0.65], atol=1e-6)
    # an unconstrained optimum outside the simplex lands on its corner
    np.testing.assert_allclose(simplex_least_squares(np.eye(2), np.array([2.0, -1.0])), [1.0, 0.0], atol=1e-6)


class _Constant(BaseEstimator):
    def __init__(self, value: float = 0.5) -> None:
        self.value = value

    def predict_survival_matrix(self, X, times):
        return np.full((len(X), len(times)), self.value)


def test_bootstrap_intervals_known_answer():
    draws = np.linspace(0.1, 0.9, 81)  # 81 draws: the 2.5 % and 97.5 % quantiles are the 3rd and 79th draws
    refits = [_Constant(v) for v in draws]
    design, times = np.zeros((2, 1)), np.array([100.0])
    point = np.full((2, 1), 0.6)
    lo, hi = bootstrap_interval(refits, design, times, point, method="percentile")
    np.testing.assert_allclose(lo, draws[2], rtol=1e-6)
    np.testing.assert_allclose(hi, draws[78], rtol=1e-6)
    lo, hi = bootstrap_interval(refits, design, times, point, method="centred")
    q_lo, median, q_hi = logit(draws[2]), logit(draws[40]), logit(draws[78])
    np.testing.assert_allclose(lo, expit(logit(0.6) + q_lo - median), rtol=1e-6)
    np.testing.assert_allclose(hi, expit(logit(0.6) + q_hi - median), rtol=1e-6)
    # draws all above the point: the percentile interval misses it, the centred one keeps it inside
    far = np.full((2, 1), 0.05)
    lo, hi = bootstrap_interval(refits, design, times, far, method="percentile")
    assert np.all(lo > far)
    lo, hi = bootstrap_interval(refits, design, times, far, method="centred")
    assert np.all(lo < far) and np.all(far < hi)
    with pytest.raises(ValueError, match="method must be"):
        bootstrap_interval(refits, design, times, point, method="bca")


def test_stack_of_linear_index_models_is_explained_exactly():
    from carrisk.explain import CoxExplainer
    from carrisk.penalized import CoxnetCV

    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, 2))
    time = rng.exponential(100 * np.exp(-0.8 * X[:, 0]))
    y = Surv.from_arrays(time < 250, np.minimum(time, 250))
    stack = StackedSurvival([("strong", CoxnetCV(alpha=0.001)), ("weak", CoxnetCV(alpha=0.5))], weights=(0.6, 0.4)).fit(
        X, y
    )
    assert stack.index_coefs_.shape == (2, 2)
    result = CoxExplainer(stack, X[:20]).shap_values(X[20:23], output="survival", times=[50.0, 100.0])
    np.testing.assert_allclose(
        result.base_values + result.values.sum(axis=1), stack.predict_survival_matrix(X[20:23], [50.0, 100.0])
    )
    expected = 0.6 * stack.estimators_[0].predict_survival_matrix(X[20:23], [50.0]) + 0.4 * stack.estimators_[
        1
    ].predict_survival_matrix(X[20:23], [50.0])
    np.testing.assert_allclose(result.predictions[:, 0], expected[:, 0])
