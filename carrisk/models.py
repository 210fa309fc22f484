"""Survival model pipelines: random survival forest, elastic-net Cox, and reference models.

Every model is a full scikit-learn :class:`~sklearn.pipeline.Pipeline`: feature builders -> median imputation ->
(standardisation, for the Cox models) -> estimator, so that everything that learns from data is fitted inside the
training fold. The final estimators share one prediction interface: ``predict(X)`` returns a risk score (higher =
earlier event) and ``predict_survival_matrix(X, times)`` the survival probability on a time grid.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from numbers import Integral
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted
from sksurv.base import SurvivalAnalysisMixin
from sksurv.ensemble import GradientBoostingSurvivalAnalysis, RandomSurvivalForest
from sksurv.linear_model import CoxnetSurvivalAnalysis, CoxPHSurvivalAnalysis
from sksurv.util import Surv

from carrisk.features import ClinicalFeatures, FeatureSpec
from carrisk.target import check_survival_target, target_arrays

__all__ = [
    "MODEL_NAMES",
    "CoxPH",
    "GradientBoostedSurvival",
    "PenalizedCox",
    "SurvivalForest",
    "check_survival_target",
    "coarsen_times",
    "grid_size",
    "make_pipeline",
    "step_survival",
    "survival_matrix",
    "target_arrays",
]

MODEL_NAMES = ("rsf", "coxnet", "coxph", "gbsa", "two_part", "coxnet_cv", "stacked", "average")
#: Coarsen event times to a quantile grid when the training data have more unique event times than this.
AUTO_TIME_GRID_THRESHOLD = 200
#: ``SurvivalForest(engine="auto")`` uses the histogram engine from this many training rows (benchmarks/scale.py).
AUTO_HIST_MIN_ROWS = 10_000
FOREST_ENGINES = ("auto", "sksurv", "hist")


def coarsen_times(time: np.ndarray, event: np.ndarray, max_times: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Map times up to a grid of at most ``max_times`` event-time quantiles (randomForestSRC's ``ntime`` idea).

    Each time t becomes the smallest grid point >= t, so events and censorings in the interval
    (g[k-1], g[k]] are recorded at g[k]; the order between intervals is kept, ties within one interval are
    created. The last grid point is the largest time, so nothing moves beyond the follow-up.

    Returns
    -------
    (coarse_time, grid)
    """
    if max_times is None:
        return time, np.unique(time[event])
    event_times = np.unique(time[event])
    if len(event_times) <= max_times:
        return time, event_times
    grid = np.unique(np.quantile(event_times, np.linspace(0, 1, max_times)))
    grid = np.append(grid[grid < time.max()], time.max())
    index = np.minimum(np.searchsorted(grid, time, side="left"), len(grid) - 1)
    return grid[index], grid


def step_survival(times: np.ndarray, survival: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Evaluate right-continuous step survival curves (rows of ``survival`` on ``times``) at the times ``at``.

    S(t) = 1 before the first time; beyond the last time the last value is carried forward.
    """
    index = np.searchsorted(times, at, side="right") - 1
    padded = np.hstack([np.ones((survival.shape[0], 1)), survival])
    return padded[:, index + 1]


class CurveRiskMixin:
    """``predict`` and ``predict_survival_function`` for an estimator that defines ``predict_survival_matrix``.

    The risk score is ``-log S(risk_horizon)`` (higher = worse; the estimator stores ``risk_horizon``) and the
    survival function is read on ``unique_times_``. Shared by the two-part model and the stacked ensemble.
    """

    risk_horizon: float
    unique_times_: np.ndarray

    def predict_survival_matrix(self, X: np.ndarray, times: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Risk score ``-log S(risk_horizon)`` (higher = worse)."""
        survival = self.predict_survival_matrix(X, np.array([self.risk_horizon]))[:, 0]
        return -np.log(np.clip(survival, np.finfo(float).tiny, None))

    def predict_survival_function(self, X: np.ndarray, return_array: bool = False) -> Any:
        """Survival on ``unique_times_`` as an array (``return_array=True``) or as step functions."""
        from sksurv.functions import StepFunction

        values = self.predict_survival_matrix(X, self.unique_times_)
        if return_array:
            return values
        return np.array([StepFunction(self.unique_times_, row) for row in values])


class SurvivalForest(SurvivalAnalysisMixin, BaseEstimator):
    """Random survival forest with an optional coarse time grid (scikit-survival's ``RandomSurvivalForest``).

    scikit-survival stores, in every node, one value per unique event time, so memory grows with n x unique
    times. ``max_times`` coarsens the training times to a quantile grid first (see :func:`coarsen_times`);
    ``"auto"`` does so when there are more than 200 unique event times.

    Parameters
    ----------
    n_estimators, min_samples_leaf, max_features, max_samples, low_memory, n_jobs, random_state
        As for :class:`sksurv.ensemble.RandomSurvivalForest`.
    max_times : int, "auto" or None
        Size of the time grid; None keeps every event time.
    oob_score : bool
        Also compute each training row's out-of-bag risk (``oob_prediction_``) and its Harrell's C against the
        original (not coarsened) times (``oob_score_``); used to tune forests without inner folds.
    engine : {"auto", "sksurv", "hist"}
        ``"sksurv"``: scikit-survival's exact splitter (the reference). ``"hist"``: carrisk's histogram log-rank
        splitter (features binned to 256 levels, a numba kernel growing trees in parallel threads), stored as the
        same tree arrays, so TreeSHAP and the jackknife intervals work unchanged (:mod:`carrisk.hist_forest`).
        ``"auto"``: ``"hist"`` from :data:`AUTO_HIST_MIN_ROWS` training rows, else ``"sksurv"``.
    ci_group_size : int or "auto"
        1: bootstrap trees (intervals by the infinitesimal jackknife). ``L >= 2`` (hist engine only; ``n_estimators``
        a multiple of L): trees in groups of L grown on a shared half-sample of the rows, for grf's little-bags
        variance (:meth:`carrisk.hist_forest.HistForest.fit`, :func:`carrisk.intervals.little_bags_variance`).
        ``"auto"`` (default): 2 when the hist engine grows the forest (``n_estimators`` even, ``max_samples`` None),
        else 1. The jackknife's Monte-Carlo noise grows with the rows per tree (intervals 1.6x too wide at 5,000
        rows and 200 trees, the hist engine's territory) while little bags keep the right width at any size
        (``benchmarks.interval_coverage``: 93-96% coverage from 420 to 100,000 rows).

    Attributes
    ----------
    forest_ : RandomSurvivalForest or HistForest
        The fitted forest (its trees are what TreeSHAP explains).
    engine_ : str
        The engine used.
    ci_group_size_ : int
        The group size used (``ci_group_size`` resolved).
    unique_times_ : ndarray
        The forest's time grid.
    oob_prediction_, oob_score_
        With ``oob_score=True``: out-of-bag risk of every training row and its Harrell's C.
    """

    forest_: Any
    #: class default, so forests pickled before the parameter existed still report their parameters
    ci_group_size: int | str = 1

    def __init__(
        self,
        n_estimators: int = 200,
        min_samples_leaf: int = 15,
        max_features: str | float | int = "sqrt",
        max_samples: float | None = None,
        max_times: int | str | None = "auto",
        low_memory: bool = False,
        oob_score: bool = False,
        n_jobs: int | None = None,
        random_state: int | None = None,
        engine: str = "auto",
        ci_group_size: int | str = "auto",
    ) -> None:
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.max_samples = max_samples
        self.max_times = max_times
        self.low_memory = low_memory
        self.oob_score = oob_score
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.engine = engine
        self.ci_group_size = ci_group_size

    def _resolve_engine(self, n_rows: int) -> str:
        if self.engine not in FOREST_ENGINES:
            raise ValueError(f"engine must be one of {', '.join(FOREST_ENGINES)}, got {self.engine!r}")
        if self.engine != "auto":
            return str(self.engine)
        return "sksurv" if n_rows < AUTO_HIST_MIN_ROWS or self.low_memory else "hist"

    def _resolve_group_size(self) -> int:
        size = self.ci_group_size
        if size == "auto":
            hist = self.engine_ == "hist"
            return 2 if hist and self.max_samples is None and self.n_estimators % 2 == 0 else 1
        if isinstance(size, bool) or not isinstance(size, Integral) or size < 1:
            raise ValueError(f"ci_group_size must be an integer >= 1 or 'auto', got {size!r}")
        if size != 1 and self.engine_ != "hist":
            raise ValueError(
                f"ci_group_size={size!r} (little-bags intervals) needs engine='hist'; the sksurv "
                "engine grows bootstrap trees only"
            )
        return int(size)

    def _fit_hist(self, X: np.ndarray, event: np.ndarray, time: np.ndarray, coarse_time: np.ndarray) -> None:
        from sklearn.utils import check_random_state

        from carrisk.hist_forest import HistForest

        if self.low_memory:
            raise ValueError("low_memory=True applies to engine='sksurv' only; the hist engine stores leaf counts")
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        self.forest_ = HistForest.fit(
            X,
            event,
            coarse_time,
            n_estimators=self.n_estimators,
            min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features,
            max_samples=self.max_samples,
            n_jobs=self.n_jobs,
            random_state=seed,
            oob=self.oob_score,
            ci_group_size=self.ci_group_size_,
        )
        if self.oob_score:
            from carrisk.metrics import harrell_c

            self.oob_prediction_ = self.forest_.oob_prediction_
            self.oob_score_ = harrell_c(event, time, self.oob_prediction_)

    def fit(self, X: np.ndarray, y: np.ndarray) -> SurvivalForest:
        """Fit the forest on (optionally coarsened) survival times."""
        event, time = check_survival_target(y)
        max_times = self.max_times
        if max_times == "auto":
            max_times = AUTO_TIME_GRID_THRESHOLD if len(np.unique(time[event])) > AUTO_TIME_GRID_THRESHOLD else None
        elif isinstance(max_times, str):
            raise ValueError(f"max_times must be a number of grid times, None or 'auto', got {max_times!r}")
        coarse_time, _ = coarsen_times(time, event, max_times)
        self.engine_ = self._resolve_engine(len(time))
        self.ci_group_size_ = self._resolve_group_size()
        if self.engine_ == "hist":
            self._fit_hist(np.asarray(X, dtype=float), event, time, coarse_time)
            self.unique_times_ = self.forest_.unique_times_
            self.n_features_in_ = self.forest_.n_features_in_
            return self
        with warnings.catch_warnings():
            # a row in every bootstrap has no out-of-bag prediction (risk 0); rare beyond a few dozen trees
            warnings.filterwarnings("ignore", message="Some inputs do not have OOB scores")
            self.forest_ = RandomSurvivalForest(
                n_estimators=self.n_estimators,
                min_samples_leaf=self.min_samples_leaf,
                max_features=self.max_features,
                max_samples=self.max_samples,
                low_memory=self.low_memory,
                oob_score=self.oob_score,
                n_jobs=self.n_jobs,
                random_state=self.random_state,
            ).fit(np.asarray(X, dtype=float), Surv.from_arrays(event, coarse_time))
        if self.oob_score:
            from carrisk.metrics import harrell_c

            self.oob_prediction_ = self.forest_.oob_prediction_
            self.oob_score_ = harrell_c(event, time, self.oob_prediction_)
        self.unique_times_ = self.forest_.unique_times_
        self.n_features_in_ = self.forest_.n_features_in_
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Risk score: the ensemble cumulative hazard summed over the time grid (higher = worse)."""
        check_is_fitted(self, "forest_")
        return self.forest_.predict(np.asarray(X, dtype=float))

    def predict_survival_function(self, X: np.ndarray, return_array: bool = False) -> Any:
        """Survival functions on the forest's time grid, as scikit-survival returns them."""
        check_is_fitted(self, "forest_")
        return self.forest_.predict_survival_function(np.asarray(X, dtype=float), return_array=return_array)

    def predict_survival_matrix(self, X: np.ndarray, times: np.ndarray) -> np.ndarray:
        """Survival probability of each row at each of ``times`` (n_rows x n_times)."""
        surv = self.predict_survival_function(X, return_array=True)
        return step_survival(self.unique_times_, surv, np.asarray(times, dtype=float))


class PenalizedCox(SurvivalAnalysisMixin, BaseEstimator):
    """Elastic-net Cox model that predicts with one chosen penalty (scikit-survival's ``CoxnetSurvivalAnalysis``).

    The penalty is set relative to the data: ``alpha = alpha_ratio * alpha_max``, where ``alpha_max`` is the
    smallest penalty that sets every coefficient to zero in this training set. The path from ``alpha_max`` down
    to ``alpha`` is fitted (warm starts make coordinate descent stable) and predictions use ``alpha`` explicitly,
    never the default last alpha of the path. Inputs should be standardised (the pipeline does it).

    When coordinate descent fails numerically at a small penalty, the penalty is raised step by step (x3) until
    the fit succeeds; the penalty used is ``alpha_`` and the failures are listed in ``fit_warnings_``.

    Parameters
    ----------
    l1_ratio : float
        Elastic-net mixing (1 = lasso, close to 0 = ridge).
    alpha_ratio : float
        Penalty as a fraction of ``alpha_max``.
    n_path : int
        Number of penalties on the path from ``alpha_max`` to ``alpha``.
    """

    def __init__(self, l1_ratio: float = 0.5, alpha_ratio: float = 0.05, n_path: int = 30) -> None:
        self.l1_ratio = l1_ratio
        self.alpha_ratio = alpha_ratio
        self.n_path = n_path

    def fit(self, X: np.ndarray, y: np.ndarray) -> PenalizedCox:
        """Fit the penalty path down to ``alpha_ratio * alpha_max`` and keep the model at that penalty."""
        event, time = check_survival_target(y)
        X = np.asarray(X, dtype=float)
        target = Surv.from_arrays(event, time)
        self.fit_warnings_: list[str] = []
        ratio = float(self.alpha_ratio)
        while True:
            model = CoxnetSurvivalAnalysis(
                l1_ratio=self.l1_ratio, alpha_min_ratio=ratio, n_alphas=self.n_path, fit_baseline_model=True
            )
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", category=UserWarning)
                    model.fit(X, target)
                break
            except ArithmeticError as err:
                if ratio >= 0.5:
                    raise ArithmeticError(
                        f"elastic-net Cox failed even at alpha_ratio={ratio:g}: {err}. Check for constant or "
                        "perfectly separating columns."
                    ) from err
                self.fit_warnings_.append(f"alpha_ratio={ratio:g} failed ({err}); retried with {ratio * 3:g}")
                ratio *= 3
        self.model_ = model
        self.alpha_ = float(model.alphas_[-1])
        self.alpha_max_ = float(model.alphas_[0])
        self.coef_ = model.coef_[:, -1].copy()
        self.unique_times_ = model.predict_survival_function(X[:1], alpha=self.alpha_)[0].x
        self.n_features_in_ = X.shape[1]
        if self.fit_warnings_:
            warnings.warn("; ".join(self.fit_warnings_), UserWarning, stacklevel=2)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Linear predictor at the chosen penalty (higher = worse)."""
        check_is_fitted(self, "model_")
        return self.model_.predict(np.asarray(X, dtype=float), alpha=self.alpha_)

    def predict_survival_function(self, X: np.ndarray, return_array: bool = False) -> Any:
        """Breslow survival functions at the chosen penalty."""
        check_is_fitted(self, "model_")
        return self.model_.predict_survival_function(
            np.asarray(X, dtype=float), alpha=self.alpha_, return_array=return_array
        )

    def predict_survival_matrix(self, X: np.ndarray, times: np.ndarray) -> np.ndarray:
        """Survival probability of each row at each of ``times``."""
        surv = self.predict_survival_function(X, return_array=True)
        return step_survival(self.unique_times_, surv, np.asarray(times, dtype=float))


class _ReferenceModel(SurvivalAnalysisMixin, BaseEstimator):
    """Shared survival-matrix method for scikit-survival reference models that expose ``unique_times_``."""

    def predict(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "model_")
        return self.model_.predict(np.asarray(X, dtype=float))

    def predict_survival_matrix(self, X: np.ndarray, times: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "model_")
        surv = self.model_.predict_survival_function(np.asarray(X, dtype=float), return_array=True)
        return step_survival(self.unique_times_, surv, np.asarray(times, dtype=float))


class CoxPH(_ReferenceModel):
    """Unpenalised Cox model (scikit-survival ``CoxPHSurvivalAnalysis``; a tiny ridge ``alpha`` for stability).

    ``ties`` is the partial likelihood's handling of tied event times (``"breslow"`` or ``"efron"``, R's default).
    """

    def __init__(self, alpha: float = 1e-4, ties: str = "breslow") -> None:
        self.alpha = alpha
        self.ties = ties

    def fit(self, X: np.ndarray, y: np.ndarray) -> CoxPH:
        event, time = check_survival_target(y)
        self.model_ = CoxPHSurvivalAnalysis(alpha=self.alpha, ties=self.ties).fit(
            np.asarray(X, dtype=float), Surv.from_arrays(event, time)
        )
        self.coef_ = self.model_.coef_
        self.unique_times_ = self.model_.unique_times_
        return self


class GradientBoostedSurvival(_ReferenceModel):
    """Gradient-boosted Cox trees (scikit-survival ``GradientBoostingSurvivalAnalysis``)."""

    def __init__(
        self, n_estimators: int = 200, learning_rate: float = 0.05, max_depth: int = 3, random_state: int | None = None
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray) -> GradientBoostedSurvival:
        event, time = check_survival_target(y)
        self.model_ = GradientBoostingSurvivalAnalysis(
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            max_depth=self.max_depth,
            subsample=0.8,
            random_state=self.random_state,
        ).fit(np.asarray(X, dtype=float), Surv.from_arrays(event, time))
        self.unique_times_ = self.model_.unique_times_
        return self


#: Default hyper-parameter grids (pipeline parameter names), 6 candidates each.
DEFAULT_GRIDS: dict[str, dict[str, list[Any]]] = {
    "rsf": {"model__min_samples_leaf": [5, 15, 30], "model__max_features": ["sqrt", 0.5]},
    "coxnet": {"model__l1_ratio": [0.5, 0.9], "model__alpha_ratio": [0.3, 0.1, 0.03]},
    "coxph": {},
    "gbsa": {"model__learning_rate": [0.05, 0.1], "model__max_depth": [2, 3]},
    "two_part": {},  # both penalties are chosen inside the estimator by cross-validated proper scores
    "coxnet_cv": {},  # the penalty is chosen inside the estimator by cross-validated deviance
    "stacked": {},  # the weights are chosen inside the estimator on out-of-fold integrated Brier score
    "average": {},  # fixed equal weights; each base model chooses its penalties by a proper score
}


def make_pipeline(
    model: str = "rsf",
    spec: FeatureSpec | None = None,
    *,
    random_state: int | None = 0,
    on_unknown: str = "raise",
    n_jobs: int | None = None,
    penalty_weights: Mapping[str, float] | None = None,
    **params: Any,
) -> Pipeline:
    """Build the full pipeline for one model: features -> imputation -> (scaling) -> estimator.

    Parameters
    ----------
    model : {"rsf", "coxnet", "coxph", "gbsa", "two_part", "coxnet_cv", "stacked", "average"}
        Random survival forest, elastic-net Cox (penalty from a grid), unpenalised Cox, gradient-boosted survival,
        the two-part CR x post-CR model (:mod:`carrisk.two_part`), elastic-net Cox with the penalty by
        cross-validated deviance (:mod:`carrisk.penalized`), the stack of the last two with weights by
        out-of-fold integrated Brier score (:mod:`carrisk.ensemble`), and their fixed 50/50 average (the same
        stack with weights (0.5, 0.5); the default for carrisk records).
    spec : FeatureSpec or None
        Design-matrix spec (default: the clinical record schema).
    random_state : int or None
        Seed of the stochastic models.
    penalty_weights : mapping or None
        For ``"two_part"`` and ``"coxnet_cv"``: column-name prefix -> penalty weight
        (:class:`carrisk.penalized.PenaltyWeights`); None = the prespecified weights
        (:data:`carrisk.penalized.PRESPECIFIED_WEIGHTS`), ``{}`` = every column weighs 1.
    params
        Estimator parameters, e.g. ``min_samples_leaf=10`` or ``l1_ratio=0.9``.
    """
    if model == "rsf":
        estimator: BaseEstimator = SurvivalForest(random_state=random_state, n_jobs=n_jobs, **params)
    elif model == "coxnet":
        estimator = PenalizedCox(**params)
    elif model == "coxph":
        estimator = CoxPH(**params)
    elif model == "gbsa":
        estimator = GradientBoostedSurvival(random_state=random_state, **params)
    elif model == "two_part":
        from carrisk.two_part import TwoPartSurvival

        estimator = TwoPartSurvival(random_state=random_state or 0, **params)
    elif model == "coxnet_cv":
        from carrisk.penalized import CoxnetCV

        estimator = CoxnetCV(random_state=random_state or 0, **params)
    elif model in ("stacked", "average"):
        from carrisk.ensemble import StackedSurvival
        from carrisk.penalized import CoxnetCV
        from carrisk.two_part import TwoPartSurvival

        seed = random_state or 0
        bases = [("coxnet_cv", CoxnetCV(random_state=seed)), ("two_part", TwoPartSurvival(random_state=seed))]
        if model == "average":
            params = {"weights": (0.5, 0.5)} | params
        estimator = StackedSurvival(bases, random_state=seed, **params)
    else:
        raise ValueError(f"unknown model {model!r}; choose one of {', '.join(MODEL_NAMES)}")
    steps: list[tuple[str, Any]] = [
        ("features", ClinicalFeatures(spec, on_unknown=on_unknown)),
        ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
    ]
    if model in ("two_part", "coxnet_cv", "stacked", "average"):
        from carrisk.penalized import PenaltyWeights

        steps = [(name, step.set_output(transform="pandas")) for name, step in steps]
        steps.append(("scale", PenaltyWeights(penalty_weights)))
    elif model in ("coxnet", "coxph"):
        steps.append(("scale", StandardScaler()))
    steps.append(("model", estimator))
    return Pipeline(steps)


def survival_matrix(pipeline: Pipeline, X: Any, times: Sequence[float] | np.ndarray) -> np.ndarray:
    """Predicted survival of each row of raw ``X`` at ``times`` from a fitted pipeline (n_rows x n_times)."""
    design = pipeline[:-1].transform(X)
    return pipeline[-1].predict_survival_matrix(design, np.asarray(times, dtype=float))


def grid_size(grid: Mapping[str, Sequence[Any]]) -> int:
    """Number of candidates in a parameter grid."""
    return int(np.prod([len(v) for v in grid.values()])) if grid else 1
