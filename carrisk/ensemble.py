"""Stacked ensemble of survival curves with convex weights chosen on out-of-fold integrated Brier score.

``S(t | x) = sum_k w_k S_k(t | x)`` with ``w_k >= 0`` and ``sum_k w_k = 1``: a mixture of survival functions is a
survival function, so every prediction stays a proper (non-increasing, [0, 1]) curve. The weights minimise the
integrated Brier score [1] of the out-of-fold curves: every base model is fitted on K-1 folds and predicts the
held-out fold, and the inverse-probability-of-censoring weights come from the Kaplan-Meier estimate of the
censoring distribution of all rows (Graf et al.). The Brier score is quadratic in the weights, so the weights
solve a small quadratic programme over the simplex (Breiman's stacking [2] with a proper scoring rule for
survival). The base models are then refitted on all rows.

References
----------
1. Graf E, Schmoor C, Sauerbrei W, Schumacher M. Assessment and comparison of prognostic classification schemes
   for survival data. Stat Med 1999;18:2529-2545.
2. Breiman L. Stacked regressions. Mach Learn 1996;24:49-64.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.optimize import minimize
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.validation import check_is_fitted
from sksurv.base import SurvivalAnalysisMixin
from sksurv.nonparametric import CensoringDistributionEstimator
from sksurv.util import Surv

from carrisk.models import CurveRiskMixin, check_survival_target
from carrisk.schema import TWELVE_MONTHS_DAYS

__all__ = ["StackedSurvival", "brier_weights", "simplex_least_squares"]


def brier_weights(
    event: np.ndarray, time: np.ndarray, times: np.ndarray, censoring: Any
) -> tuple[np.ndarray, np.ndarray]:
    """IPCW weights and targets of the Brier score at ``times`` (Graf et al. 1999).

    ``BS(t) = mean_i w_i(t) (y_i(t) - S_i(t))^2`` with ``y_i(t) = 1{T_i > t}``, ``w_i(t) = 1{T_i <= t, event} /
    G(T_i) + 1{T_i > t} / G(t)``; rows censored by ``t`` weigh 0.

    Returns
    -------
    (weights, targets), each (n_rows, n_times).
    """
    g_at_time = censoring.predict_proba(time)
    g_at_grid = censoring.predict_proba(times)
    alive = time[:, None] > times[None, :]
    dead = (time[:, None] <= times[None, :]) & event[:, None]
    weights = np.where(dead, 1.0 / np.clip(g_at_time, 1e-12, None)[:, None], 0.0)
    weights = weights + np.where(alive, 1.0 / np.clip(g_at_grid, 1e-12, None)[None, :], 0.0)
    return weights, alive.astype(float)


def simplex_least_squares(quadratic: np.ndarray, linear: np.ndarray) -> np.ndarray:
    """Minimise ``w' Q w - 2 b' w`` over ``w >= 0, sum w = 1`` (SLSQP from the equal-weights start)."""
    k = len(linear)
    result = minimize(
        lambda w: float(w @ quadratic @ w - 2 * linear @ w),
        np.full(k, 1.0 / k),
        jac=lambda w: 2 * quadratic @ w - 2 * linear,
        bounds=[(0.0, 1.0)] * k,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones_like(w)}],
        method="SLSQP",
    )
    weights = np.clip(result.x, 0.0, None)
    return weights / weights.sum()


class StackedSurvival(CurveRiskMixin, SurvivalAnalysisMixin, BaseEstimator):
    """Convex combination of survival models, weights by out-of-fold integrated Brier score.

    Parameters
    ----------
    estimators : list of (name, estimator)
        Survival estimators with ``predict_survival_matrix(X, times)`` and ``unique_times_``.
    cv : int
        Folds for the out-of-fold curves (stratified on the event).
    n_times : int
        Grid points of the integrated Brier score, equally spaced from the 5th to the 80th percentile of the
        observed times (where the censoring weights are stable).
    weights : sequence of float or None
        Fixed weights (no out-of-fold fitting), e.g. for bootstrap refits.
    risk_horizon : float
        ``predict`` returns ``-log S(risk_horizon)``.
    random_state : int

    Attributes
    ----------
    weights_ : ndarray
        The convex weights, in the order of ``estimators``.
    estimators_ : list of fitted estimators (fitted on all rows).
    oof_ibs_ : ndarray or None
        Out-of-fold integrated Brier score of each base model alone (None with fixed weights).
    """

    def __init__(
        self,
        estimators: Sequence[tuple[str, Any]],
        cv: int = 5,
        n_times: int = 20,
        weights: Sequence[float] | None = None,
        risk_horizon: float = TWELVE_MONTHS_DAYS,
        random_state: int = 0,
    ) -> None:
        self.estimators = estimators
        self.cv = cv
        self.n_times = n_times
        self.weights = weights
        self.risk_horizon = risk_horizon
        self.random_state = random_state

    def _out_of_fold(self, X: np.ndarray, y: np.ndarray, event: np.ndarray, times: np.ndarray) -> np.ndarray:
        folds = StratifiedKFold(self.cv, shuffle=True, random_state=self.random_state)
        curves = np.zeros((len(self.estimators), len(X), len(times)))
        for train, test in folds.split(X, event):
            for k, (_, estimator) in enumerate(self.estimators):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    fitted = clone(estimator).fit(X[train], y[train])
                curves[k][test] = fitted.predict_survival_matrix(X[test], times)
        return curves

    def fit(self, X: np.ndarray, y: np.ndarray) -> StackedSurvival:
        """Choose the weights on out-of-fold curves (unless fixed), then refit every base model on all rows."""
        event, time = check_survival_target(y)
        X = np.asarray(X, dtype=float)
        if not self.estimators:
            raise ValueError("estimators is empty: give at least one (name, estimator) pair")
        self.oof_ibs_: np.ndarray | None = None
        if self.weights is not None:
            weights = np.asarray(self.weights, dtype=float)
            if len(weights) != len(self.estimators) or np.any(weights < 0) or not np.isclose(weights.sum(), 1.0):
                raise ValueError(f"weights must be {len(self.estimators)} non-negative numbers summing to 1")
        else:
            lo, hi = np.quantile(time, [0.05, 0.8])
            self.ibs_times_ = np.linspace(lo, hi, self.n_times)
            curves = self._out_of_fold(X, y, event, self.ibs_times_)
            censoring = CensoringDistributionEstimator().fit(Surv.from_arrays(event, time))
            ipcw, target = brier_weights(event, time, self.ibs_times_, censoring)
            steps = np.diff(self.ibs_times_)  # trapezoid rule over the grid, as sksurv's integrated_brier_score
            dt = (np.append(steps, 0.0) + np.insert(steps, 0, 0.0)) / 2 / (hi - lo)
            scale = ipcw * dt[None, :] / len(X)
            quadratic = np.einsum("knt,jnt,nt->kj", curves, curves, scale)
            linear = np.einsum("knt,nt,nt->k", curves, target, scale)
            constant = float(np.sum(target**2 * scale))
            self.oof_ibs_ = np.diag(quadratic) - 2 * linear + constant
            weights = simplex_least_squares(quadratic, linear)
        self.weights_ = weights
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.estimators_ = [clone(estimator).fit(X, y) for _, estimator in self.estimators]
        self.unique_times_ = np.unique(np.concatenate([e.unique_times_ for e in self.estimators_]))
        self.n_features_in_ = X.shape[1]
        return self

    def predict_survival_matrix(self, X: np.ndarray, times: np.ndarray) -> np.ndarray:
        """``sum_k w_k S_k(times | x)``."""
        check_is_fitted(self, "weights_")
        times = np.asarray(times, dtype=float)
        return sum(w * e.predict_survival_matrix(X, times) for w, e in zip(self.weights_, self.estimators_))

    # ----- the linear-index interface (when every base model has one) -----
    def _index_sizes(self) -> list[int]:
        return [e.index_coefs_.shape[1] for e in self.estimators_]

    @property
    def index_coefs_(self) -> np.ndarray:
        """The base models' linear indices side by side, shape (p, sum of their index counts)."""
        check_is_fitted(self, "weights_")
        return np.hstack([e.index_coefs_ for e in self.estimators_])

    @property
    def index_offsets_(self) -> np.ndarray:
        return np.concatenate([e.index_offsets_ for e in self.estimators_])

    def survival_from_indices(self, indices: np.ndarray, times: np.ndarray) -> np.ndarray:
        """``sum_k w_k S_k`` with each base model's survival computed from its own columns of ``indices``."""
        bounds = np.cumsum([0, *self._index_sizes()])
        return sum(
            w * e.survival_from_indices(indices[..., a:b], times)
            for w, e, a, b in zip(self.weights_, self.estimators_, bounds[:-1], bounds[1:])
        )
