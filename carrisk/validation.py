"""Nested, repeated cross-validation of survival pipelines, scored by concordance.

Outer loop: repeated K-fold stratified on the event indicator. Inner loop (when a model has a grid): the search
of :func:`carrisk.tuning.tuned_model` on the outer training fold only, scored by Harrell's C (or Uno's C): for
random survival forests on the out-of-bag predictions of forests fitted to the whole training fold, for the other
models by an inner K-fold stratified on the event. Every
fitted step (features, imputation, scaling, tuning) sees only the training rows of its fold. Work is spread over
(model, outer fold) tasks with joblib; ``backend="dask"`` runs the same tasks on a dask.distributed cluster.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
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
from sklearn.model_selection import RepeatedStratifiedKFold

from carrisk import metrics
from carrisk._io import atomic_write_text
from carrisk.models import check_survival_target, grid_size, target_arrays
from carrisk.tuning import chosen_params, final_pipeline, jsonable, tuned_model

VERSION_PACKAGES = ("carrisk", "scikit-survival", "scikit-learn", "numpy", "pandas", "scipy", "lifelines", "shap")


def package_versions(extra: Sequence[str] = ()) -> dict[str, str]:
    """Installed versions of carrisk's main dependencies (and ``extra`` packages), plus Python's."""
    versions = {"python": sys.version.split()[0]}
    for name in (*VERSION_PACKAGES, *extra):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def data_fingerprint(records: pd.DataFrame) -> dict[str, Any]:
    """Rows, columns and a SHA-256 of the table's content (as CSV text), to tie results to their data."""
    digest = hashlib.sha256(records.to_csv(index=False).encode()).hexdigest()
    return {"rows": len(records), "columns": list(map(str, records.columns)), "sha256": digest}


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
    versions: dict[str, str] = field(default_factory=package_versions)
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
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, default=jsonable))


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
        name: {k: list(map(jsonable, v)) for k, v in getattr(m, "param_grid", {}).items()} for name, m in models.items()
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
