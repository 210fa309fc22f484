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
import json
import os
import platform
import sys
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import RepeatedStratifiedKFold

from carrisk import metrics
from carrisk._io import atomic_write_text, write_csv
from carrisk.calibration import (
    SUBGROUP_COLUMNS,
    PooledCalibration,
    plot_calibration,
    pooled_calibration,
    subgroup_calibration,
)
from carrisk.cv_summary import MEAN_CI_DESCRIPTION, MEAN_CI_METHOD, SPREAD_DESCRIPTION, summarize_cv_metric
from carrisk.features import FeatureSpec
from carrisk.models import check_survival_target, grid_size, target_arrays
from carrisk.provenance import data_fingerprint, package_versions
from carrisk.tuning import chosen_params, final_pipeline, jsonable, tuned_model
from carrisk.units import TWO_YEARS_DAYS
from carrisk.unseen import level_counts, marginalised


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
    tau: float | None = None,
) -> dict[str, Any]:
    started = time.perf_counter()
    train_records = records.iloc[task.train]
    test_records = records.iloc[task.test]
    y_train, y_test = y[task.train], y[task.test]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        fitted = clone(estimator).fit(train_records, y_train)
        pipeline = final_pipeline(fitted)
        _, train_time = target_arrays(y_train)
        grid = np.unique(np.concatenate([pipeline[-1].unique_times_, list(horizons.values())]))
        grid = grid[grid <= train_time.max()]
        at = np.concatenate([grid, np.array(list(horizons.values()), dtype=float)])

        def predict(frame: pd.DataFrame) -> np.ndarray:
            design = pipeline[:-1].transform(frame)
            return np.column_stack([pipeline[-1].predict(design), pipeline[-1].predict_survival_matrix(design, at)])

        # scored as carrisk predicts: a test patient's rare or unseen unknown level (by the training fold's
        # counts) is marginalised over the known levels, as in EFSModel.predict_efs
        features = pipeline.named_steps["features"]
        counts = level_counts(features.categorize(train_records)) if hasattr(features, "categorize") else None
        predicted = marginalised(test_records, features, counts, predict)
        risk, surv, at_horizons = predicted[:, 0], predicted[:, 1 : 1 + len(grid)], predicted[:, 1 + len(grid) :]
    try:
        scores = metrics.evaluate_predictions(
            y_train, y_test, risk, grid, surv, horizons=horizons, ibs_max_time=ibs_max_time, tau=tau
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
        "test_index": np.asarray(task.test),
        "predicted_efs": {name: at_horizons[:, j] for j, name in enumerate(horizons)},
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


SCHEMA_VERSION = 2
UNO_TAU_QUANTILE = 0.8
UNO_TAU_RULE = (
    "one tau for the data set: the 80th percentile of all observed times (events and censorings), lowered if "
    "needed to the largest observed time below the shortest 'longest follow-up' of any outer training fold, so "
    "that the training censoring Kaplan-Meier of every fold is positive up to tau"
)


def dataset_tau(y: np.ndarray, train_folds: Sequence[np.ndarray], quantile: float = UNO_TAU_QUANTILE) -> float:
    """One truncation time for Uno's C across all the folds of a cross-validation, from the whole data set.

    tau = the ``quantile`` of all observed times. Uno's C needs the censoring Kaplan-Meier of the training
    patients to be positive up to tau, so tau must lie below every training fold's longest follow-up; if the
    quantile does not, tau is lowered to the largest observed time strictly below the shortest of those.

    Parameters
    ----------
    y : structured array
        The whole data set's survival target.
    train_folds : sequence of index arrays
        The training rows of every outer fold.
    quantile : float, default 0.8
        Quantile of the observed times, in (0, 1).

    Returns
    -------
    float
        tau, strictly below ``min(max(time[train]) for train in train_folds)``.

    Raises
    ------
    ValueError
        If ``quantile`` is not in (0, 1) or no observed time lies below every training fold's longest follow-up.
    """
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must lie strictly between 0 and 1, got {quantile}")
    _, times = target_arrays(y)
    limit = min(float(times[np.asarray(train)].max()) for train in train_folds)
    tau = float(np.quantile(times, quantile))
    if tau >= limit:
        earlier = times[times < limit]
        if earlier.size == 0:
            raise ValueError("no observed time lies below every training fold's longest follow-up; cannot set tau")
        tau = float(earlier.max())
    return tau


@dataclass(repr=False)
class CVResult:
    """Cross-validation results: per-fold metrics and parameters of each model, and what produced them.

    ``summary`` is a DataFrame with one row per model: the mean of each metric, the Nadeau-Bengio confidence
    interval of the mean and the spread of the fold estimates. ``calibration`` holds each model's pooled
    out-of-fold calibration per horizon (:func:`carrisk.calibration.pooled_calibration`) and ``subgroups`` its
    subgroup table (:func:`carrisk.subgroup_calibration`; empty for records without the clinical columns).
    ``causes``, when set, is the competing-risks section (:func:`carrisk.competing.validation.cross_validate_causes`).
    :meth:`to_dict` gives the JSON contract documented in the README.
    """

    folds: list[dict[str, Any]]
    seeds: dict[str, Any]
    data: dict[str, Any]
    settings: dict[str, Any]
    versions: dict[str, str | None] = field(default_factory=package_versions)
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    calibration: dict[str, dict[str, PooledCalibration]] = field(default_factory=dict)
    subgroups: dict[str, pd.DataFrame] = field(default_factory=dict)
    causes: dict[str, Any] = field(default_factory=dict)

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys(f["model"] for f in self.folds))

    def __repr__(self) -> str:
        """A short description; :meth:`to_text`, :attr:`summary` and :meth:`to_dict` hold the results."""
        c = {
            name: f"{block['metrics']['harrell_c']['mean']:.3f}"
            for name, block in self.to_dict()["models"].items()
            if "harrell_c" in block["metrics"]
        }
        scheme = ", ".join(f"{k}={self.settings[k]}" for k in ("folds", "repeats") if k in self.settings)
        return (
            f"CVResult(models={self.models}, {scheme}, rows={self.data.get('rows', '?')}, "
            f"events={self.data.get('events', '?')}, seed={self.seeds.get('outer_cv', '?')}, mean Harrell's C {c}; "
            "see .to_text(), .summary, .to_dict())"
        )

    def metric_names(self, model: str) -> list[str]:
        names: dict[str, None] = {}
        for fold in self.folds:
            if fold["model"] == model:
                names.update(dict.fromkeys(fold["metrics"]))
        return [n for n in names if n != "uno_tau"]

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract (schema 2): models -> metrics, params, folds, calibration, subgroups; data; seeds..."""
        models = {}
        for name in self.models:
            folds = [f for f in self.folds if f["model"] == name]
            ratio = float(np.mean([f["n_test"] / f["n_train"] for f in folds]))
            summaries = {
                metric: summarize_cv_metric([f["metrics"].get(metric, np.nan) for f in folds], ratio, metric=metric)
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
                "calibration": {h: c.to_dict() for h, c in self.calibration.get(name, {}).items()},
                "subgroups": _records(self.subgroups.get(name)),
            }
        return {
            "schema_version": SCHEMA_VERSION,
            "models": models,
            "data": self.data,
            "seeds": self.seeds,
            "settings": self.settings,
            "versions": self.versions,
            "created": self.created,
        } | ({"causes": self.causes} if self.causes else {})

    @property
    def summary(self) -> pd.DataFrame:
        """One row per model: per metric the mean, ``_ci_lo``/``_ci_hi`` (CI of the mean) and ``_spread_lo``/``_hi``."""
        rows = {}
        for name, block in self.to_dict()["models"].items():
            row = {}
            for metric, s in block["metrics"].items():
                row[metric] = s["mean"]
                row[f"{metric}_ci_lo"], row[f"{metric}_ci_hi"] = s["mean_ci"]
                row[f"{metric}_spread_lo"], row[f"{metric}_spread_hi"] = s["spread"]
            rows[name] = row
        return pd.DataFrame.from_dict(rows, orient="index")

    def to_text(self, columns: Sequence[str] = ("harrell_c", "uno_c", "auc_6mo", "auc_12mo", "ibs", "ici_6mo")) -> str:
        """A readable table: one row per model, each metric as mean [95% CI of the mean], and what the CI is."""
        out = self.to_dict()["models"]
        lines = []
        header = f"{'model':<10}" + "".join(f"{c:>22}" for c in columns)
        lines.append(header)
        for name, block in out.items():
            cells = []
            for column in columns:
                s = block["metrics"].get(column)
                cells.append("n/a" if s is None else f"{s['mean']:.3f} [{s['mean_ci'][0]:.3f}, {s['mean_ci'][1]:.3f}]")
            lines.append(f"{name:<10}" + "".join(f"{c:>22}" for c in cells))
        lines.append(f"[ ]: {MEAN_CI_DESCRIPTION}; the fold spread is in the JSON ('spread').")
        return "\n".join(lines)

    def out_of_fold_predictions(self) -> dict[str, dict[str, np.ndarray]]:
        """Model -> horizon name -> predicted EFS of shape (repeats, patients), each patient predicted once per
        repeat by the model of the fold that held the patient out."""
        return _out_of_fold(
            self.folds, int(self.data["rows"]), int(self.settings["repeats"]), self.settings["horizons"]
        )

    def calibration_table(self) -> pd.DataFrame:
        """One row per (model, horizon): pooled out-of-fold calibration, mean over repeats (range in the JSON)."""
        rows = []
        for name, by_horizon in self.calibration.items():
            for horizon, result in by_horizon.items():
                summary = result.summary()
                rows.append({"model": name, "horizon": horizon} | {k: v["mean"] for k, v in summary.items()})
        return pd.DataFrame(rows)

    def subgroup_table(self) -> pd.DataFrame:
        """All models' subgroup tables stacked, with a ``model`` column first."""
        frames = [table.assign(model=name) for name, table in self.subgroups.items() if len(table)]
        if not frames:
            return pd.DataFrame()
        stacked = pd.concat(frames, ignore_index=True)
        return stacked[["model", *[c for c in stacked.columns if c != "model"]]]

    def report_text(self) -> str:
        """:meth:`to_text`, then the pooled calibration and the subgroup table (where available), as plain text."""
        parts = [self.to_text()]
        calibration = self.calibration_table()
        if len(calibration):
            columns = ["model", "horizon", "observed_efs", "predicted_efs", "difference", "oe_ratio", "slope", "ici"]
            parts.append(
                "\nCalibration of pooled out-of-fold predictions (per repeat over all patients, mean over repeats;"
                " difference = predicted - Kaplan-Meier EFS):\n"
                + calibration[[*columns, "e50", "e90"]].to_string(index=False, float_format=lambda v: f"{v:.3f}")
            )
        subgroups = self.subgroup_table()
        if len(subgroups):
            shown = subgroups[subgroups["variable"] != "blinatumomab x burden"]
            columns = ["model", "horizon", "variable", "group", "n", "events", "km_efs", "km_lo", "km_hi"]
            parts.append(
                "\nPredicted (mean out-of-fold) vs Kaplan-Meier EFS by subgroup (crossings in the JSON/CSV):\n"
                + shown[[*columns, "predicted_efs", "difference"]].to_string(
                    index=False, float_format=lambda v: f"{v:.3f}"
                )
            )
        return "\n".join(parts)

    def write_json(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`to_dict` as JSON, atomically."""
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, default=jsonable))

    def write_report(self, directory: str | os.PathLike[str], heading: str = "") -> list[Path]:
        """Write ``cv.json``, ``cv.txt`` (``heading`` and :meth:`report_text`), ``calibration.csv``,
        ``subgroups.csv`` and one ``calibration_<model>.png`` per model into ``directory``; return the paths."""
        out = Path(directory)
        paths = [out / "cv.json", out / "cv.txt"]
        self.write_json(paths[0])
        atomic_write_text(paths[1], "\n".join(filter(None, [heading, self.report_text()])) + "\n")
        for name, table in (("calibration.csv", self.calibration_table()), ("subgroups.csv", self.subgroup_table())):
            if len(table):
                paths.append(out / name)
                write_csv(paths[-1], table)
        for model, by_horizon in self.calibration.items():
            if by_horizon:
                paths.append(out / f"calibration_{model}.png")
                plot_calibration(by_horizon, paths[-1], model)
        return paths


def _records(table: pd.DataFrame | None) -> list[dict[str, Any]]:
    if table is None or not len(table):
        return []
    return [{k: jsonable(v) for k, v in row.items()} for row in table.to_dict(orient="records")]


def _most_common(params: list[dict[str, Any]]) -> dict[str, Any]:
    if not params:
        return {}
    keys = [json.dumps(p, sort_keys=True, default=str) for p in params]
    best = max(set(keys), key=keys.count)
    return json.loads(best)


def _out_of_fold(
    results: Sequence[dict[str, Any]], n: int, repeats: int, horizons: Mapping[str, float]
) -> dict[str, dict[str, np.ndarray]]:
    """Model -> horizon -> (repeats, n) predicted EFS, each patient predicted by the fold that held it out."""
    oof: dict[str, dict[str, np.ndarray]] = {}
    for result in results:
        by_horizon = oof.setdefault(result["model"], {h: np.full((repeats, n), np.nan) for h in horizons})
        for h in horizons:
            by_horizon[h][result["repeat"], result["test_index"]] = result["predicted_efs"][h]
    return oof


def _pooled_or_none(
    event: np.ndarray, time: np.ndarray, predictions: np.ndarray, horizon: float, n_bootstrap: int, seed: int
) -> PooledCalibration | None:
    """Pooled calibration, or None (with a warning) when the calibration model cannot be fitted."""
    try:
        return pooled_calibration(event, time, predictions, horizon, n_bootstrap=n_bootstrap, seed=seed)
    except ValueError as err:
        warnings.warn(f"pooled calibration skipped: {err}", RuntimeWarning, stacklevel=2)
        return None


def outer_splits(event: np.ndarray, folds: int, repeats: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The outer (train, test) index pairs of :func:`cross_validate`: repeated K-fold stratified on ``event``."""
    outer = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    return list(outer.split(np.zeros(len(event)), event))


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
    ibs_max_time: float = TWO_YEARS_DAYS,
    n_jobs: int | None = None,
    backend: str = "loky",
    scheduler: str | None = None,
    progress: bool | None = None,
    calibration_bootstrap: int = 200,
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
    calibration_bootstrap : int, default 200
        Bootstrap resamples for the band of each pooled calibration curve (0: no band).

    Uno's C of every fold (and of the inner tuning when ``scoring="uno"``) uses one ``tau`` for the data set
    (:func:`dataset_tau`), recorded in ``settings``. After the folds, each model's out-of-fold predictions of
    every repeat are pooled for calibration (:func:`carrisk.calibration.pooled_calibration`, at each horizon
    below the longest follow-up with an event by it) and, for records with the clinical columns, the subgroup
    table (:func:`carrisk.subgroup_calibration`).

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
    splits = outer_splits(event, folds, repeats, seed)
    tau = dataset_tau(y, [train for train, _ in splits])
    if not isinstance(models, Mapping):
        models = {
            name: tuned_model(name, spec, inner_folds=inner_folds, scoring=scoring, tau=tau, random_state=seed)
            for name in models
        }
    tasks = [
        FoldTask(name, i // folds, i % folds, train, test) for name in models for i, (train, test) in enumerate(splits)
    ]
    if progress is None:
        progress = sys.stderr.isatty()
    with _backend(backend, scheduler, n_jobs):
        runner = joblib.Parallel(return_as="generator")
        jobs = runner(
            joblib.delayed(_run_fold)(task, models[task.model_name], records, y, horizons, ibs_max_time, tau)
            for task in tasks
        )
        results = []
        if progress:
            from tqdm.auto import tqdm

            jobs = tqdm(jobs, total=len(tasks), desc="cross-validation", unit="fold")
        for result in jobs:
            results.append(result)
        oof = _out_of_fold(results, len(records), repeats, horizons)
        _, times = target_arrays(y)
        assessable = {h: days for h, days in horizons.items() if days < times.max() and np.any(event & (times <= days))}
        calibration_jobs = joblib.Parallel()(
            joblib.delayed(_pooled_or_none)(event, times, oof[name][h], days, calibration_bootstrap, seed)
            for name in models
            for h, days in assessable.items()
        )
    pooled = iter(calibration_jobs)
    calibration = {name: {h: next(pooled) for h in assessable} for name in models}
    calibration = {name: {h: c for h, c in by.items() if c is not None} for name, by in calibration.items()}
    subgroups = {}
    if all(column in records.columns for column in SUBGROUP_COLUMNS):
        subgroups = {name: subgroup_calibration(records, y, oof[name], assessable) for name in models}
    grids = {
        name: {k: list(map(jsonable, v)) for k, v in getattr(m, "param_grid", {}).items()} for name, m in models.items()
    }
    return CVResult(
        calibration=calibration,
        subgroups=subgroups,
        folds=results,
        seeds={"outer_cv": seed, "inner_cv": seed, "models": seed},
        data=data_fingerprint(records)
        | {"events": int(event.sum()), "feature_spec": (spec if spec is not None else FeatureSpec()).describe()},
        settings={
            "folds": folds,
            "repeats": repeats,
            "inner_folds": inner_folds,
            "scoring": scoring,
            "uno_tau": tau,
            "uno_tau_rule": UNO_TAU_RULE,
            "mean_ci": {"method": MEAN_CI_METHOD, "level": 0.95, "description": MEAN_CI_DESCRIPTION},
            "spread": SPREAD_DESCRIPTION,
            "calibration": {
                "method": "out-of-fold predictions pooled over the folds of each repeat, assessed per repeat over "
                "all patients, summarised over repeats (mean; min-max range of the repeats)",
                "bootstrap": calibration_bootstrap,
                "horizons": list(assessable),
            },
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
