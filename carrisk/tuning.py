"""Hyper-parameter tuning: stratified inner grid search, out-of-bag search for forests, and what was chosen.

:func:`tuned_model` builds a model that tunes itself when fitted. Forests are scored on the out-of-bag
predictions of forests fitted to all the given rows (randomForestSRC's ``tune`` does the same); the other models
by an inner K-fold stratified on the event. Scoring is Harrell's C or Uno's C. :func:`chosen_params`,
:func:`final_pipeline` and :func:`tuning_record` read a fitted (possibly tuned) model back.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline

from carrisk import metrics
from carrisk.models import DEFAULT_GRIDS, check_survival_target, make_pipeline, target_arrays

#: Inner-loop criteria: concordance (Harrell's, Uno's), or proper scores of the predicted distribution:
#: integrated Brier score and, for Cox models, the held-out partial-likelihood deviance.
SCORINGS = ("harrell", "uno", "ibs", "deviance")
#: Models whose ``predict`` is a Cox linear predictor (the deviance applies to them only).
COX_MODELS = ("coxnet", "coxph")


def _ibs_scorer(estimator: Any, X: Any, y: np.ndarray) -> float:
    """Minus the integrated Brier score of the held-out fold (censoring weights from the training target).

    The integral runs over 20 points from the 10th to the 80th percentile of the held-out times, kept below the
    training follow-up, where the censoring weights are stable.
    """
    _, train_time = target_arrays(estimator.y_train_)
    _, test_time = target_arrays(y)
    lo, hi = np.quantile(test_time, [0.1, 0.8])
    times = np.linspace(lo, min(hi, 0.99 * train_time.max()), 20)
    surv = estimator[-1].predict_survival_matrix(estimator[:-1].transform(X), times)
    return -metrics.integrated_brier(estimator.y_train_, y, surv, times)


def _deviance_scorer(estimator: Any, X: Any, y: np.ndarray) -> float:
    """Held-out Cox partial log-likelihood per event (minus half the deviance per event; higher is better)."""
    from carrisk.penalized import cox_partial_log_likelihood

    event, time = target_arrays(y)
    return cox_partial_log_likelihood(estimator.predict(X), event, time) / max(int(event.sum()), 1)


def _uno_scorer(tau: float | None) -> Any:
    """A GridSearchCV scorer computing Uno's C; the training target is kept by the estimator wrapper."""

    def score(estimator: Any, X: Any, y: np.ndarray) -> float:
        return metrics.uno_c(estimator.y_train_, y, estimator.predict(X), tau=tau)

    return score


class _RememberTarget(Pipeline):
    """A pipeline that keeps its training target so that Uno's C can weight by the training censoring."""

    def fit(self, X: Any, y: Any = None, **params: Any) -> _RememberTarget:
        self.y_train_ = y
        return super().fit(X, y, **params)


def tuned_model(
    model: str,
    spec: Any = None,
    grid: Mapping[str, Sequence[Any]] | None = None,
    *,
    inner_folds: int = 3,
    scoring: str = "harrell",
    tau: float | None = None,
    random_state: int = 0,
    oob: bool = True,
    **params: Any,
) -> Any:
    """A model that tunes itself when fitted (a ``GridSearchCV`` over its pipeline).

    ``fit(records, y)`` scores every grid candidate by ``scoring`` and keeps the best: ``"harrell"`` or ``"uno"``
    (concordance), ``"ibs"`` (integrated Brier score of the held-out fold, a proper score) or ``"deviance"``
    (held-out Cox partial likelihood, as glmnet's ``cv.glmnet``; Cox models only). Forests with ``"ibs"`` are
    tuned by inner folds (the out-of-bag forest gives no out-of-bag survival curves). Forests (``"rsf"``) are
    scored out of bag: each candidate forest is fitted on all the given records (same seed, so the same
    bootstraps) and scored on every row's out-of-bag prediction; the best forest is the fitted model, with no
    refit. Set ``oob=False`` to use inner folds for forests too. Other models: ``inner_folds`` folds stratified on
    the event, best mean concordance, refit on all the given records. Parameters fixed in ``params`` are taken
    out of the grid; with an empty grid the plain pipeline is returned.
    """
    pipeline = make_pipeline(model, spec, random_state=random_state, **params)
    grid = DEFAULT_GRIDS[model] if grid is None else grid
    grid = {k: v for k, v in grid.items() if k.removeprefix("model__") not in params}  # fixed by the caller
    if not grid:
        return pipeline
    if scoring not in SCORINGS:
        raise ValueError(f"scoring must be one of {', '.join(SCORINGS)}, got {scoring!r}")
    if scoring == "deviance" and model not in COX_MODELS:
        raise ValueError(
            f"scoring 'deviance' is the Cox partial likelihood and applies to {' and '.join(COX_MODELS)} only, "
            f"not {model!r}; use 'ibs' for a proper score of any model"
        )
    if model == "rsf" and oob and scoring in ("harrell", "uno"):
        return OutOfBagSearch(pipeline, dict(grid), scoring=scoring, tau=tau)
    scorer: Any = None  # the estimator's own score: Harrell's C
    if scoring == "uno":
        pipeline = _RememberTarget(pipeline.steps)
        scorer = _uno_scorer(tau)
    elif scoring == "ibs":
        pipeline = _RememberTarget(pipeline.steps)
        scorer = _ibs_scorer
    elif scoring == "deviance":
        scorer = _deviance_scorer
    return StratifiedGridSearch(
        pipeline, dict(grid), scoring=scorer, inner_folds=inner_folds, random_state=random_state
    )


class StratifiedGridSearch(GridSearchCV):
    """GridSearchCV whose folds are stratified on the event indicator of the survival target."""

    cv: Any

    def __init__(
        self,
        estimator: Any,
        param_grid: Any,
        *,
        scoring: Any = None,
        inner_folds: int = 3,
        random_state: int = 0,
        n_jobs: int | None = None,
        refit: bool = True,
        cv: Any = None,
        verbose: int = 0,
        pre_dispatch: Any = "2*n_jobs",
        error_score: Any = np.nan,
        return_train_score: bool = False,
    ) -> None:
        super().__init__(
            estimator,
            param_grid,
            scoring=scoring,
            n_jobs=n_jobs,
            refit=refit,
            cv=cv,
            verbose=verbose,
            pre_dispatch=pre_dispatch,
            error_score=error_score,
            return_train_score=return_train_score,
        )
        self.inner_folds = inner_folds
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None, **params: Any) -> StratifiedGridSearch:
        event, _ = check_survival_target(y)
        n_splits = min(self.inner_folds, int(event.sum()), int((~event).sum()) or self.inner_folds)
        splitter = StratifiedKFold(max(n_splits, 2), shuffle=True, random_state=self.random_state)
        given_cv, self.cv = self.cv, list(splitter.split(np.zeros(len(event)), event))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", category=UserWarning)
                super().fit(X, y, **params)
        finally:
            self.cv = given_cv
        failed = int(np.isnan(self.cv_results_["mean_test_score"]).sum())
        self.n_failed_candidates_ = failed
        if failed == len(self.cv_results_["mean_test_score"]):
            raise RuntimeError("every hyper-parameter candidate failed in the inner cross-validation")
        return self


class OutOfBagSearch(GridSearchCV):
    """Grid search for forests scored by out-of-bag concordance on the training rows (no inner folds).

    Every candidate pipeline is fitted once on all the rows with ``model__oob_score=True``; its score is Harrell's
    C (or Uno's C with ``tau``, censoring weights from the same rows) of the out-of-bag risk. The best candidate's
    fitted pipeline is ``best_estimator_``. ``cv_results_`` holds ``params`` and ``mean_test_score``.
    """

    def __init__(self, estimator: Any, param_grid: Any, *, scoring: str = "harrell", tau: float | None = None) -> None:
        super().__init__(estimator, param_grid, scoring=None, refit=True, cv=None)
        self.scoring = scoring
        self.tau = tau

    def fit(self, X: Any, y: Any = None, **params: Any) -> OutOfBagSearch:
        from sklearn.metrics import check_scoring
        from sklearn.model_selection import ParameterGrid

        check_survival_target(y)
        candidates = list(ParameterGrid(self.param_grid))
        scores = np.full(len(candidates), np.nan)
        best = None  # only the best forest so far is kept: candidates are fitted one after another
        errors: list[str] = []
        for i, candidate in enumerate(candidates):
            pipeline = clone(self.estimator).set_params(**candidate, model__oob_score=True)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", category=UserWarning)
                    pipeline.fit(X, y, **params)
            except (ValueError, ArithmeticError, np.linalg.LinAlgError) as error:
                errors.append(str(error))
                continue
            forest = pipeline[-1]
            if self.scoring == "harrell":
                scores[i] = forest.oob_score_
            else:
                scores[i] = metrics.uno_c(y, y, forest.oob_prediction_, tau=self.tau)
            if best is None or scores[i] > scores[self.best_index_]:
                best, self.best_index_ = pipeline, i
        self.n_failed_candidates_ = int(np.isnan(scores).sum())
        if best is None:
            if len(set(errors)) == 1:  # the same reason for every candidate: a setting, not the grid, is wrong
                raise ValueError(errors[0])
            raise RuntimeError(f"every hyper-parameter candidate failed to fit (first: {errors[0] if errors else '?'})")
        self.best_params_ = candidates[self.best_index_]
        self.best_score_ = float(scores[self.best_index_])
        self.best_estimator_ = best
        self.cv_results_ = {"params": candidates, "mean_test_score": scores}
        self.scorer_ = check_scoring(self.best_estimator_)
        self.multimetric_ = False
        self.n_splits_ = 0
        return self


#: Penalties that self-tuning estimators choose inside ``fit`` (two-part: CR-part C and post-CR alpha; penalized Cox).
LEARNED_PENALTIES = ("cr_C_", "post_alpha_", "alpha_")


def chosen_params(model: Any) -> dict[str, Any]:
    """The hyper-parameters a fitted (possibly tuned) model ended up with.

    From the grid search when there is one; otherwise the penalties the final estimator chose itself in ``fit``
    (``cr_C``, ``post_alpha``, ``alpha``), so that a bundle's manifest records them too; for a stack, its weights
    and each member's penalties (``<member>__alpha``).
    """
    if isinstance(model, GridSearchCV):
        return {k.removeprefix("model__"): jsonable(v) for k, v in model.best_params_.items()}
    estimator = model[-1] if isinstance(model, Pipeline) else model
    chosen = {name[:-1]: jsonable(getattr(estimator, name)) for name in LEARNED_PENALTIES if hasattr(estimator, name)}
    if hasattr(estimator, "weights_") and hasattr(estimator, "estimators_"):
        chosen["weights"] = [float(w) for w in estimator.weights_]
        for (name, _), member in zip(estimator.estimators, estimator.estimators_):
            chosen |= {f"{name}__{key}": value for key, value in chosen_params(member).items()}
    return chosen


def final_pipeline(model: Any) -> Pipeline:
    """The fitted pipeline inside a (possibly tuned) model."""
    return model.best_estimator_ if isinstance(model, GridSearchCV) else model


#: How the self-tuning estimators choose their penalties or weights (for the model's metadata).
_SELF_TUNED = {
    "TwoPartSurvival": "inside the estimator: 5-fold CV log-loss (CR part) and CV partial-likelihood deviance "
    "(post-CR Cox part)",
    "CoxnetCV": "inside the estimator: 5-fold CV partial-likelihood deviance (Verweij & van Houwelingen)",
    "StackedSurvival": "inside the estimator: weights by 5-fold out-of-fold integrated Brier score; members' "
    "penalties by CV log-loss / partial-likelihood deviance",
}


def penalties_at_grid_edge(estimator: Any) -> list[str]:
    """Names of the self-chosen penalties that sit at an edge of their search grid (the optimum may lie beyond).

    ``cr_C`` (two-part CR logistic, after its grid's downward extension), ``post_alpha`` (its post-CR Cox part) and
    ``alpha`` (:class:`carrisk.penalized.CoxnetCV`, the path's smallest penalty); a stack's members as
    ``<member>__<name>``. Models fitted before these flags existed report none.
    """
    edges = [name for name in ("cr_C", "alpha") if getattr(estimator, f"{name}_at_edge_", False)]
    if getattr(getattr(estimator, "post_model_", None), "alpha_at_edge_", False):
        edges.append("post_alpha")
    if hasattr(estimator, "estimators_") and hasattr(estimator, "estimators"):
        for (name, _), member in zip(estimator.estimators, estimator.estimators_):
            edges += [f"{name}__{edge}" for edge in penalties_at_grid_edge(member)]
    return edges


def tuning_record(tuned: Any, inner_folds: int, scoring: str = "harrell") -> dict[str, Any]:
    """How the hyper-parameters of a fitted (possibly tuned) model were chosen, for the model's metadata."""
    if isinstance(tuned, OutOfBagSearch):
        return {"method": "out-of-bag", "scoring": tuned.scoring}
    if isinstance(tuned, GridSearchCV):
        return {"method": "inner cross-validation", "folds": inner_folds, "scoring": scoring}
    estimator = final_pipeline(tuned)[-1]
    self_tuned = _SELF_TUNED.get(type(estimator).__name__)
    if type(estimator).__name__ == "StackedSurvival" and estimator.weights is not None:
        self_tuned = "fixed weights; members' penalties inside them by CV log-loss / partial-likelihood deviance"
    if self_tuned:
        return {
            "method": self_tuned,
            "scoring": "proper scores (log-loss, deviance, Brier)",
            "at_grid_edge": penalties_at_grid_edge(estimator),
        }
    return {"method": "none: every hyper-parameter was given"}


def jsonable(value: Any) -> Any:
    """A numpy scalar as the plain Python value (for JSON); anything else unchanged."""
    if isinstance(value, np.generic):
        return value.item()
    return value
