"""Two-part EFS model mirroring the clinical course: day-28 complete remission, then relapse or death after it.

After CD19 CAR T-cells, a patient without complete remission (CR) at the day-28 assessment has an EFS event on that
day; a patient in CR is then at risk of relapse (CD19-positive, CD19-negative, lineage switch) or death in
remission. :class:`TwoPartSurvival` models the two steps separately, as the study reports them:

``S(t | x) = 1`` for ``t < response_day`` and ``S(t | x) = p_CR(x) * S_post(t | x)`` for ``t >= response_day``,

with ``p_CR`` a penalised logistic regression (L2, penalty chosen by cross-validated log-loss, a proper score) and
``S_post(t | x) = S0_post(t)^exp(beta' x)`` an elastic-net Cox model fitted to the patients still event-free
after ``response_day`` (penalty chosen by cross-validated partial-likelihood deviance, :class:`CoxnetCV`), with
its own Breslow baseline. Both parts see the same (standardised) design matrix.

Who is in which part: an EFS event at or before ``response_day`` is "no CR"; follow-up beyond ``response_day``
is "CR" and enters the Cox part. A patient censored at or before ``response_day`` has an unknown response and
no risk time after it, so contributes to neither part (in the simulated cohorts nobody is censored before day
28).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.special import expit
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.utils.validation import check_is_fitted
from sksurv.base import SurvivalAnalysisMixin

from carrisk.models import CurveRiskMixin, check_survival_target
from carrisk.penalized import CoxnetCV
from carrisk.schema import TWELVE_MONTHS_DAYS

__all__ = ["CR_C_FLOOR", "RESPONSE_DAY", "TwoPartSurvival"]

#: Day of the response assessment after infusion (the study's day-28 marrow).
RESPONSE_DAY = 28.0
#: Smallest inverse penalty the CR part's grid extends down to when cross-validation keeps asking for more shrinkage.
CR_C_FLOOR = 1e-9


class TwoPartSurvival(CurveRiskMixin, SurvivalAnalysisMixin, BaseEstimator):
    """Day-28 CR (logistic) times event-free survival after CR (Cox): ``S(t) = p_CR * S_post(t)`` from day 28.

    Parameters
    ----------
    response_day : float
        Day of the response assessment; EFS events up to this day are non-response.
    cr_Cs : int
        Number of inverse penalties tried for the logistic part, log-spaced on [1e-3, 100]
        (``LogisticRegressionCV``, Newton-Cholesky solver, scored by log-loss). While the choice is the grid's
        smallest C (cross-validation wants more shrinkage than the grid allows), the grid is extended downwards
        by two decades at the same spacing, down to ``CR_C_FLOOR``.
    l1_ratio : float
        Elastic-net mixing of the Cox part (see :class:`carrisk.penalized.CoxnetCV`).
    cv : int
        Folds for both penalty choices.
    risk_horizon : float
        ``predict`` returns ``-log S(risk_horizon)`` (default 12 months), the risk used for concordance.
    cr_C, post_alpha : float or None
        Fixed penalties (inverse L2 penalty of the CR part, elastic-net penalty of the Cox part) instead of
        cross-validated ones; used to refit bootstrap samples at the penalties chosen on the full data.
    random_state : int
        Seeds the folds.

    Attributes
    ----------
    cr_model_ : LogisticRegressionCV
        The CR part; ``cr_coef_`` and ``cr_intercept_`` its coefficients (log-odds of CR).
    cr_C_ : float
        The CR part's inverse penalty; ``cr_Cs_`` the grid it was chosen from (None when ``cr_C`` was fixed) and
        ``cr_C_at_edge_`` whether it is the grid's first or last value (the optimum may lie beyond).
    post_model_ : CoxnetCV
        The post-CR part; ``post_coef_`` its log hazard ratios.
    unique_times_ : ndarray
        ``response_day`` and the post-CR event times.
    """

    def __init__(
        self,
        response_day: float = RESPONSE_DAY,
        cr_Cs: int = 20,
        l1_ratio: float = 0.05,
        cv: int = 5,
        risk_horizon: float = TWELVE_MONTHS_DAYS,
        cr_C: float | None = None,
        post_alpha: float | None = None,
        random_state: int = 0,
    ) -> None:
        self.response_day = response_day
        self.cr_Cs = cr_Cs
        self.l1_ratio = l1_ratio
        self.cv = cv
        self.risk_horizon = risk_horizon
        self.cr_C = cr_C
        self.post_alpha = post_alpha
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray) -> TwoPartSurvival:
        """Fit the CR part on patients with a known day-28 status and the Cox part on those event-free after it."""
        event, time = check_survival_target(y)
        X = np.asarray(X, dtype=float)
        no_cr = event & (time <= self.response_day)
        after = time > self.response_day
        known = no_cr | after
        if no_cr.sum() < 2 or after.sum() < 2:
            raise ValueError(
                f"the two-part model needs at least 2 patients without an event by day {self.response_day:g} and "
                f"2 with an EFS event by then; got {int(after.sum())} and {int(no_cr.sum())}"
            )
        cr = (~no_cr[known]).astype(int)
        folds = int(max(2, min(self.cv, cr.sum(), (1 - cr).sum())))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self.cr_C is None:
                self._fit_cr_cv(X[known], cr, folds)
            else:
                self.cr_model_ = LogisticRegression(C=self.cr_C, solver="newton-cholesky", max_iter=200).fit(
                    X[known], cr
                )
                self.cr_C_ = float(self.cr_C)
                self.cr_Cs_: np.ndarray | None = None
                self.cr_C_at_edge_ = False
        self.cr_coef_ = self.cr_model_.coef_[0].copy()
        self.cr_intercept_ = float(self.cr_model_.intercept_[0])
        self.post_model_ = CoxnetCV(
            l1_ratio=self.l1_ratio, cv=self.cv, alpha=self.post_alpha, random_state=self.random_state
        )
        self.post_model_.fit(X[after], np.asarray(y)[after])
        self.post_coef_ = self.post_model_.coef_
        self.post_alpha_ = self.post_model_.alpha_
        self.unique_times_ = np.unique(np.concatenate([[self.response_day], self.post_model_.unique_times_]))
        self.n_features_in_ = X.shape[1]
        return self

    def _fit_cr_cv(self, X: np.ndarray, cr: np.ndarray, folds: int) -> None:
        """Choose the CR part's C by CV log-loss, extending the grid downwards while the choice is its smallest C."""
        grid = np.logspace(-3, 2, self.cr_Cs)
        per_decade = max(1, round((len(grid) - 1) / 5))
        while True:
            self.cr_model_ = LogisticRegressionCV(
                Cs=grid,
                cv=folds,
                scoring="neg_log_loss",
                solver="newton-cholesky",
                max_iter=200,
                random_state=self.random_state,
            ).fit(X, cr)
            self.cr_C_ = float(self.cr_model_.C_[0])
            if self.cr_C_ > grid[0] or grid[0] <= CR_C_FLOOR:
                break
            lowest = max(grid[0] / 100, CR_C_FLOOR)
            points = max(1, round(per_decade * np.log10(grid[0] / lowest)))
            grid = np.concatenate([np.geomspace(lowest, grid[0], points + 1)[:-1], grid])
        self.cr_Cs_ = grid
        self.cr_C_at_edge_ = bool(self.cr_C_ in (grid[0], grid[-1]))

    # ----- the linear-index interface used by the SHAP explainer and the ensemble -----
    @property
    def index_coefs_(self) -> np.ndarray:
        """Coefficients of the two linear indices (log-odds of CR, post-CR log hazard), shape (p, 2)."""
        check_is_fitted(self, "cr_model_")
        return np.column_stack([self.cr_coef_, self.post_coef_])

    @property
    def index_offsets_(self) -> np.ndarray:
        return np.array([self.cr_intercept_, 0.0])

    def survival_from_indices(self, indices: np.ndarray, times: np.ndarray) -> np.ndarray:
        """``S(t)`` from the two linear indices ``indices[..., 0]`` (CR log-odds) and ``[..., 1]`` (post-CR)."""
        times = np.asarray(times, dtype=float)
        post = self.post_model_.survival_from_indices(indices[..., 1:2], times)
        survival = expit(indices[..., 0])[..., None] * post
        return np.where(times < self.response_day, 1.0, survival)

    def indices(self, X: np.ndarray) -> np.ndarray:
        """The linear indices of each row (n, 2)."""
        return np.asarray(X, dtype=float) @ self.index_coefs_ + self.index_offsets_

    def predict_cr_probability(self, X: np.ndarray) -> np.ndarray:
        """Probability of CR at ``response_day``."""
        return expit(self.indices(X)[:, 0])

    def predict_survival_matrix(self, X: np.ndarray, times: np.ndarray) -> np.ndarray:
        """Survival probability of each row at each of ``times``."""
        return self.survival_from_indices(self.indices(X), times)
