"""Nested, repeated cross-validation of survival pipelines, scored by concordance.

Outer loop: repeated K-fold stratified on the event indicator. Inner loop (when a model has a grid): a grid
search on the outer training fold only, scored by Harrell's C (or Uno's C): for random survival forests on the
out-of-bag predictions of forests fitted to the whole training fold (no inner folds; randomForestSRC's ``tune``
does the same), for the other models by an inner K-fold stratified on the event. Every
fitted step (features, imputation, scaling, tuning) sees only the training rows of its fold. Work is spread over
(model, outer fold) tasks with joblib; ``backend="dask"`` runs the same tasks on a dask.distributed cluster.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, RepeatedStratifiedKFold, StratifiedKFold
from sklearn.pipeline import Pipeline

from carrisk import metrics
from carrisk._io import atomic_write_text
from carrisk.models import DEFAULT_GRIDS, check_survival_target, grid_size, make_pipeline, target_arrays
from carrisk.provenance import data_fingerprint, package_versions


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

    ``fit(records, y)`` scores every grid candidate by concordance and keeps the best. Forests (``"rsf"``) are
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
    if scoring not in ("harrell", "uno"):
        raise ValueError(f"scoring must be 'harrell' or 'uno', got {scoring!r}")
    if model == "rsf" and oob:
        return _OutOfBagSearch(pipeline, dict(grid), scoring=scoring, tau=tau)
    scorer: Any = None  # the estimator's own score: Harrell's C
    if scoring == "uno":
        pipeline = _RememberTarget(pipeline.steps)
        scorer = _uno_scorer(tau)
    return _StratifiedGridSearch(
        pipeline, dict(grid), scoring=scorer, inner_folds=inner_folds, random_state=random_state
    )


class _StratifiedGridSearch(GridSearchCV):
    """GridSearchCV whose folds are stratified on the event indicator of the survival target."""

    cv: Any  # set by GridSearchCV.__init__; replaced by the stratified folds during fit

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

    def fit(self, X: Any, y: Any = None, **params: Any) -> _StratifiedGridSearch:
        event, _ = check_survival_target(y)
        n_splits = min(self.inner_folds, int(event.sum()), int((~event).sum()) or self.inner_folds)
        splitter = StratifiedKFold(max(n_splits, 2), shuffle=True, random_state=self.random_state)
        given_cv: Any = self.cv
        self.cv = list(splitter.split(np.zeros(len(event)), event))
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


class _OutOfBagSearch(GridSearchCV):
    """Grid search for forests scored by out-of-bag concordance on the training rows (no inner folds).

    Every candidate pipeline is fitted once on all the rows with ``model__oob_score=True``; its score is Harrell's
    C (or Uno's C with ``tau``, censoring weights from the same rows) of the out-of-bag risk. The best candidate's
    fitted pipeline is ``best_estimator_``. ``cv_results_`` holds ``params`` and ``mean_test_score``.
    """

    def __init__(self, estimator: Any, param_grid: Any, *, scoring: str = "harrell", tau: float | None = None) -> None:
        super().__init__(estimator, param_grid, scoring=None, refit=True, cv=None)
        self.scoring = scoring
        self.tau = tau

    def fit(self, X: Any, y: Any = None, **params: Any) -> _OutOfBagSearch:
        from sklearn.metrics import check_scoring
        from sklearn.model_selection import ParameterGrid

        check_survival_target(y)
        candidates = list(ParameterGrid(self.param_grid))
        scores = np.full(len(candidates), np.nan)
        best = None  # only the best forest so far is kept: candidates are fitted one after another
        for i, candidate in enumerate(candidates):
            pipeline = clone(self.estimator).set_params(**candidate, model__oob_score=True)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", category=UserWarning)
                    pipeline.fit(X, y, **params)
            except (ValueError, ArithmeticError, np.linalg.LinAlgError):
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
            raise RuntimeError("every hyper-parameter candidate failed to fit")
        self.best_params_ = candidates[self.best_index_]
        self.best_score_ = float(scores[self.best_index_])
        self.best_estimator_ = best
        self.cv_results_ = {"params": candidates, "mean_test_score": scores}
        self.scorer_ = check_scoring(self.best_estimator_)
        self.multimetric_ = False
        self.n_splits_ = 0
        return self


def chosen_params(model: Any) -> dict[str, Any]:
    """The hyper-parameters a fitted (possibly tuned) model ended up with."""
    if isinstance(model, GridSearchCV):
        return {k.removeprefix("model__"): _jsonable(v) for k, v in model.best_params_.items()}
    return {}


def final_pipeline(model: Any) -> Pipeline:
    """The fitted pipeline inside a (possibly tuned) model."""
    return model.best_estimator_ if isinstance(model, GridSearchCV) else model


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclass
class FoldTask:
    """One (model, outer fold) unit of work."""

    model_name: str
    repeat: int
    fold: int
    train: np.ndarray
    test: np.ndarray


def _run_fold(
    task: FoldTask,
    estimator: Any,
    records: pd.DataFrame,
    y: np.ndarray,
    horizons: Mapping[str, float],
    ibs_max_time: float,
) -> dict[str, Any]:
    started = time.perf_counter()
    train_records = records.iloc[task.train]
    test_records = records.iloc[task.test]
    y_train, y_test = y[task.train], y[task.test]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        fitted = clone(estimator).fit(train_records, y_train)
        pipeline = final_pipeline(fitted)
        design = pipeline[:-1].transform(test_records)
        risk = pipeline[-1].predict(design)
        _, train_time = target_arrays(y_train)
        grid = np.unique(np.concatenate([pipeline[-1].unique_times_, list(horizons.values())]))
        grid = grid[grid <= train_time.max()]
        surv = pipeline[-1].predict_survival_matrix(design, grid)
    try:
        scores = metrics.evaluate_predictions(
            y_train, y_test, risk, grid, surv, horizons=horizons, ibs_max_time=ibs_max_time
        )
        error = None
    except (ValueError, ArithmeticError) as err:
        scores, error = {}, f"{type(err).__name__}: {err}"
    return {
        "model": task.model_name,
        "repeat": task.repeat,
        "fold": task.fold,
        "n_train": len(task.train),
        "n_test": len(task.test),
        "params": chosen_params(fitted),
        "metrics": scores,
        "error": error,
        "seconds": time.perf_counter() - started,
    }


@contextlib.contextmanager
def _backend(backend: str, scheduler: str | None, n_jobs: int | None) -> Iterator[None]:
    if backend == "loky":
        with joblib.parallel_config(backend="loky", n_jobs=n_jobs):
            yield
        return
    if backend != "dask":
        raise ValueError(f"backend must be 'loky' or 'dask', got {backend!r}")
    try:
        from dask.distributed import Client
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("the dask backend needs `pip install 'carrisk[dask]'`") from err
    client = Client(scheduler) if scheduler else Client(processes=False)
    try:
        with joblib.parallel_config(backend="dask", n_jobs=n_jobs or -1):
            yield
    finally:
        client.close()


@dataclass
class CVResult:
    """Cross-validation results: per-fold metrics and parameters of each model, and what produced them.

    ``summary`` is a DataFrame with one row per model and mean / 95% interval of each metric;
    :meth:`to_dict` gives the JSON contract documented in the README.
    """

    folds: list[dict[str, Any]]
    seeds: dict[str, Any]
    data: dict[str, Any]
    settings: dict[str, Any]
    versions: dict[str, str | None] = field(default_factory=package_versions)
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys(f["model"] for f in self.folds))

    def metric_names(self, model: str) -> list[str]:
        names: dict[str, None] = {}
        for fold in self.folds:
            if fold["model"] == model:
                names.update(dict.fromkeys(fold["metrics"]))
        return [n for n in names if n != "uno_tau"]

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON contract: models -> metrics (mean, sd, ci, folds) and params; data; seeds; versions."""
        models = {}
        for name in self.models:
            folds = [f for f in self.folds if f["model"] == name]
            summaries = {
                metric: metrics.summarize([f["metrics"].get(metric, np.nan) for f in folds])
                for metric in self.metric_names(name)
            }
            models[name] = {
                "metrics": summaries,
                "params": {
                    "per_fold": [f["params"] for f in folds],
                    "most_chosen": _most_common([f["params"] for f in folds]),
                },
                "folds": [
                    {k: f[k] for k in ("repeat", "fold", "n_train", "n_test", "error", "seconds")}
                    | {"uno_tau": f["metrics"].get("uno_tau")}
                    for f in folds
                ],
            }
        return {
            "models": models,
            "data": self.data,
            "seeds": self.seeds,
            "settings": self.settings,
            "versions": self.versions,
            "created": self.created,
        }

    @property
    def summary(self) -> pd.DataFrame:
        """One row per model: mean and 95% interval of each metric (interval = spread of fold estimates)."""
        rows = {}
        for name, block in self.to_dict()["models"].items():
            row = {}
            for metric, s in block["metrics"].items():
                row[metric] = s["mean"]
                row[f"{metric}_lo"], row[f"{metric}_hi"] = s["ci"]
            rows[name] = row
        return pd.DataFrame.from_dict(rows, orient="index")

    def to_text(self, columns: Sequence[str] = ("harrell_c", "uno_c", "auc_6mo", "auc_12mo", "ibs", "ici_6mo")) -> str:
        """A readable table: one row per model, each metric as mean [lo, hi]."""
        out = self.to_dict()["models"]
        lines = []
        header = f"{'model':<10}" + "".join(f"{c:>22}" for c in columns)
        lines.append(header)
        for name, block in out.items():
            cells = []
            for column in columns:
                s = block["metrics"].get(column)
                cells.append("n/a" if s is None else f"{s['mean']:.3f} [{s['ci'][0]:.3f}, {s['ci'][1]:.3f}]")
            lines.append(f"{name:<10}" + "".join(f"{c:>22}" for c in cells))
        return "\n".join(lines)

    def write_json(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`to_dict` as JSON, atomically."""
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, default=_jsonable))


def _most_common(params: list[dict[str, Any]]) -> dict[str, Any]:
    if not params:
        return {}
    keys = [json.dumps(p, sort_keys=True, default=str) for p in params]
    best = max(set(keys), key=keys.count)
    return json.loads(best)


def cross_validate(
    records: pd.DataFrame,
    y: np.ndarray,
    models: Mapping[str, Any] | Sequence[str] = ("rsf", "coxnet"),
    *,
    spec: Any = None,
    folds: int = 5,
    repeats: int = 3,
    seed: int = 0,
    inner_folds: int = 3,
    scoring: str = "harrell",
    horizons: Mapping[str, float] = metrics.DEFAULT_HORIZONS_DAYS,
    ibs_max_time: float = metrics.TWO_YEARS_DAYS,
    n_jobs: int | None = None,
    backend: str = "loky",
    scheduler: str | None = None,
    progress: bool | None = None,
) -> CVResult:
    """Nested repeated K-fold cross-validation of survival models on the same outer folds.

    Parameters
    ----------
    records : DataFrame
        Raw records (the pipelines build their features inside each fold).
    y : structured array
        Survival target (``sksurv.util.Surv``).
    models : sequence of model names, or mapping name -> estimator
        Names from :data:`carrisk.models.MODEL_NAMES` are tuned on their default grids; a mapping gives any
        estimators taking raw records (e.g. from :func:`tuned_model`).
    folds, repeats, seed
        Outer ``RepeatedStratifiedKFold`` on the event indicator; ``seed`` also seeds the inner splits and the
        models (recorded in the result).
    scoring : {"harrell", "uno"}
        Inner-loop criterion.
    horizons : mapping
        Name -> time for the fixed-horizon metrics (days by default).
    n_jobs, backend, scheduler
        joblib parallelism over (model, fold) tasks; ``backend="dask"`` with a ``scheduler`` address uses that
        dask.distributed cluster (a local in-process cluster without one).
    progress : bool or None
        A progress bar; None shows it only on an interactive terminal.

    Returns
    -------
    CVResult
    """
    event, _ = check_survival_target(y)
    if len(records) != len(y):
        raise ValueError(f"records has {len(records)} rows but y has {len(y)}")
    if min(event.sum(), (~event).sum()) < folds:
        raise ValueError(
            f"{folds}-fold stratified CV needs at least {folds} events and {folds} censored patients; "
            f"got {int(event.sum())} events and {int((~event).sum())} censored"
        )
    records = records.reset_index(drop=True)
    if not isinstance(models, Mapping):
        models = {
            name: tuned_model(name, spec, inner_folds=inner_folds, scoring=scoring, random_state=seed)
            for name in models
        }
    outer = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    splits = list(outer.split(np.zeros(len(event)), event))
    tasks = [
        FoldTask(name, i // folds, i % folds, train, test) for name in models for i, (train, test) in enumerate(splits)
    ]
    if progress is None:
        progress = sys.stderr.isatty()
    with _backend(backend, scheduler, n_jobs):
        runner = joblib.Parallel(return_as="generator")
        jobs = runner(
            joblib.delayed(_run_fold)(task, models[task.model_name], records, y, horizons, ibs_max_time)
            for task in tasks
        )
        results = []
        if progress:
            from tqdm.auto import tqdm

            jobs = tqdm(jobs, total=len(tasks), desc="cross-validation", unit="fold")
        for result in jobs:
            results.append(result)
    grids = {
        name: {k: list(map(_jsonable, v)) for k, v in getattr(m, "param_grid", {}).items()}
        for name, m in models.items()
    }
    return CVResult(
        folds=results,
        seeds={"outer_cv": seed, "inner_cv": seed, "models": seed},
        data=data_fingerprint(records) | {"events": int(event.sum())},
        settings={
            "folds": folds,
            "repeats": repeats,
            "inner_folds": inner_folds,
            "scoring": scoring,
            "horizons": dict(horizons),
            "ibs_max_time": ibs_max_time,
            "grids": grids,
            "grid_sizes": {name: grid_size(g) for name, g in grids.items()},
            "backend": backend,
            "n_jobs": n_jobs,
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
        },
    )
