"""Accuracy: carrisk and its peers on the same data and the same outer folds.

Outer folds: ``RepeatedStratifiedKFold`` on the event indicator with a fixed seed, computed once per dataset and
given to every model. Per fold: Harrell's C, Uno's C, the integrated Brier score, and at fixed horizons the
cumulative/dynamic AUC and the integrated calibration index (ICI), all from ``carrisk.metrics.evaluate_predictions``
on the same survival grid for every model. A model that fails on a fold is recorded with its error, never dropped.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.model_selection import RepeatedStratifiedKFold

from benchmarks import _common
from benchmarks.peers import CARRISK_MODELS, MODEL_LABELS, PEER_MODELS, build_model
from carrisk import metrics
from carrisk.datasets import load_public_dataset, load_survival_data
from carrisk.features import FeatureSpec
from carrisk.models import target_arrays
from carrisk.simulate import oracle_concordance, simulate_cohort
from carrisk.units import TWELVE_MONTHS_DAYS, TWO_YEARS_DAYS

SPLIT_SEED = 2024
MODEL_SEED = 0
SUBSAMPLE_SEED = 11
SIMULATED_N = 420
SIMULATED_SEED = 7
ONE_YEAR_DAYS = TWELVE_MONTHS_DAYS
PUBLIC = ("gbsg2", "whas500", "veterans", "aids", "flchain")
DATASETS = (*PUBLIC, "simulated")
MODELS = (*CARRISK_MODELS, *PEER_MODELS)
#: Harrell's C the issue quotes for scikit-survival's RSF and Cox model (reported against, not asserted).
ISSUE_TARGETS = {
    "gbsg2": {"sksurv_rsf": 0.69, "sksurv_coxph": 0.675},
    "whas500": {"sksurv_rsf": 0.77, "sksurv_coxph": 0.77},
    "flchain": {"sksurv_rsf": 0.79, "sksurv_coxph": 0.80},
}
ORACLE_TOLERANCE = 0.02
#: Metrics summarised per model (per horizon name H: auc_H, ici_H).
SUMMARY_METRICS = ("harrell_c", "uno_c", "ibs")
#: Metrics where lower is better (for "best peer" and the sign of paired differences).
LOWER_IS_BETTER = ("ibs", "ici")


@dataclass
class BenchDataset:
    """One dataset as every model sees it, with the fixed horizons chosen for it and why."""

    name: str
    records: pd.DataFrame  # what carrisk's pipelines read (time/event columns included, not used as features)
    y: np.ndarray
    spec: FeatureSpec
    design_options: dict[str, Any]  # the peers' preprocessing (see benchmarks.peers.peer_design)
    horizons: dict[str, float]
    horizon_rule: str
    ibs_max_time: float
    notes: list[str] = field(default_factory=list)
    true_risk: np.ndarray | None = None
    oracle_c: float | None = None


def _public_dataset(name: str, max_rows: int | None) -> BenchDataset:
    table = load_public_dataset(name)
    notes = []
    features = [c for c in table.columns if c not in ("time", "event")]
    categorical = [c for c in features if isinstance(table[c].dtype, pd.CategoricalDtype)]
    numeric = [c for c in features if c not in categorical]
    if name == "flchain":
        notes.append("`chapter` (cause of death) dropped: it leaks the outcome")
        notes.append(f"{int((table['time'] == 0).sum())} rows with time 0 kept (XGBoost: see its model note)")
    if max_rows is not None and len(table) > max_rows:
        notes.append(f"subsampled to {max_rows} of {len(table)} rows (seed {SUBSAMPLE_SEED})")
        table = table.sample(n=max_rows, random_state=SUBSAMPLE_SEED).reset_index(drop=True)
    data = load_survival_data(table, time_col="time", event_col="event", name=name)
    _, obs_time = target_arrays(data.y)
    median_time = float(np.median(obs_time))
    if ONE_YEAR_DAYS <= median_time:
        horizons, rule = {"1y": ONE_YEAR_DAYS}, f"1 year (365.25 d; median observed time {median_time:g} d)"
    else:
        horizons = {"median": median_time}
        rule = f"median observed time {median_time:g} d (1 year is beyond it)"
    ibs_max = float(np.quantile(obs_time, 0.8))
    return BenchDataset(
        name=name,
        records=data.records,
        y=data.y,
        spec=data.spec,
        design_options={"categorical": categorical, "numeric": numeric, "clinical_spec": None},
        horizons=horizons,
        horizon_rule=rule,
        ibs_max_time=ibs_max,
        notes=notes,
    )


def _simulated_dataset() -> BenchDataset:
    cohort = simulate_cohort(SIMULATED_N, seed=SIMULATED_SEED)
    data = load_survival_data(cohort.records, name="simulated")
    return BenchDataset(
        name="simulated",
        records=data.records,
        y=data.y,
        spec=data.spec,
        design_options={"categorical": None, "numeric": None, "clinical_spec": data.spec},
        horizons=dict(metrics.DEFAULT_HORIZONS_DAYS),
        horizon_rule="6 and 12 months (182.625 and 365.25 d), as in the clinic",
        ibs_max_time=TWO_YEARS_DAYS,
        notes=[
            f"simulate_cohort({SIMULATED_N}, seed={SIMULATED_SEED}); peers get carrisk's ClinicalFeatures one-hot "
            "design (the raw records hold free-text spellings only carrisk parses)"
        ],
        true_risk=cohort.truth["true_risk"].to_numpy(dtype=float),
        oracle_c=oracle_concordance(cohort),
    )


def load_dataset(name: str, settings: _common.Settings) -> BenchDataset:
    """A benchmark dataset by name (flchain subsampled in quick mode)."""
    if name == "simulated":
        return _simulated_dataset()
    return _public_dataset(name, settings.flchain_rows if name == "flchain" else None)


def _evaluation_grid(y_train: np.ndarray, horizons: dict[str, float]) -> np.ndarray:
    """Training event times and the horizons, up to the largest training time: the same grid for every model."""
    event, train_time = target_arrays(y_train)
    grid = np.unique(np.concatenate([train_time[event], list(horizons.values())]))
    return grid[grid <= train_time.max()]


def run_fold(
    data: BenchDataset, key: str, split: int, repeat: int, fold: int, train: np.ndarray, test: np.ndarray
) -> dict[str, Any]:
    """Fit one model on one outer training fold and score it on the test fold; errors are returned, not raised."""
    row: dict[str, Any] = {"model": key, "split": split, "repeat": repeat, "fold": fold, "n_train": len(train)}
    y_train, y_test = data.y[train], data.y[test]
    train_records = data.records.iloc[train].reset_index(drop=True)
    test_records = data.records.iloc[test].reset_index(drop=True)
    stage = "fit"
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = build_model(key, spec=data.spec, design_options=data.design_options, seed=MODEL_SEED)
            start = time.perf_counter()
            model.fit(train_records, y_train)
            row["fit_seconds"] = time.perf_counter() - start
            stage = "predict"
            start = time.perf_counter()
            grid = _evaluation_grid(y_train, data.horizons)
            risk = np.asarray(model.risk(test_records), dtype=float)
            surv = np.asarray(model.survival(test_records, grid), dtype=float)
            row["predict_seconds"] = time.perf_counter() - start
            stage = "evaluate"
            row["metrics"] = metrics.evaluate_predictions(
                y_train, y_test, risk, grid, surv, horizons=data.horizons, ibs_max_time=data.ibs_max_time
            )
        row["params"] = model.params
        row["error"] = None
    except Exception as err:  # a failing model is reported with its error, never dropped
        row["metrics"] = {}
        row["error"] = f"{stage}: {type(err).__name__}: {err}"
        row["traceback_tail"] = traceback.format_exc().strip().splitlines()[-3:]
    row["warnings"] = _fit_warnings(caught)
    return row


def _fit_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    """Convergence and numerical warnings of a fold (e.g. lifelines' ConvergenceWarning), without the noise.

    UserWarning, FutureWarning and DeprecationWarning (unseen category levels, API changes) are left out.
    """
    noise = (UserWarning, FutureWarning, DeprecationWarning)
    kept = {
        f"{w.category.__name__}: {str(w.message).splitlines()[0][:160]}"
        for w in caught
        if not issubclass(w.category, noise) or "Convergence" in w.category.__name__
    }
    return sorted(kept)[:5]


def _oracle_folds(data: BenchDataset, splits: list[tuple[np.ndarray, np.ndarray]]) -> list[float]:
    event, obs_time = target_arrays(data.y)
    return [metrics.harrell_c(event[test], obs_time[test], data.true_risk[test]) for _, test in splits]


def _metric_names(data: BenchDataset) -> list[str]:
    names = list(SUMMARY_METRICS)
    for horizon in data.horizons:
        names += [f"auc_{horizon}", f"ici_{horizon}"]
    return names


def _lower_is_better(metric: str) -> bool:
    return metric.split("_")[0] in LOWER_IS_BETTER


def _fold_values(rows: list[dict[str, Any]], key: str, metric: str, n_splits: int) -> list[float]:
    """One value per outer split (NaN where the model failed or the metric is undefined), in split order."""
    values = [np.nan] * n_splits
    for row in rows:
        if row["model"] == key:
            values[row["split"]] = row["metrics"].get(metric, np.nan)
    return values


def _paired(a: list[float], b: list[float]) -> dict[str, Any]:
    difference = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    summary = metrics.summarize(difference.tolist())
    return {"mean": summary["mean"], "ci": summary["ci"], "n": summary["n"], "folds": summary["folds"]}


def summarize_dataset(data: BenchDataset, rows: list[dict[str, Any]], n_splits: int) -> dict[str, Any]:
    """Per-model metric summaries, the best peer per metric, paired differences, oracle and issue targets."""
    names = _metric_names(data)
    models: dict[str, Any] = {}
    for key in MODELS:
        own = [r for r in rows if r["model"] == key]
        errors = [f"split {r['split']}: {r['error']}" for r in own if r["error"]]
        not_converged = [r for r in own if any("Convergence" in w for w in r.get("warnings", []))]
        models[key] = {
            "label": MODEL_LABELS[key],
            "metrics": {m: metrics.summarize(_fold_values(rows, key, m, n_splits)) for m in names},
            "n_failed_folds": len(errors),
            "errors": errors,
            "n_folds_convergence_warning": len(not_converged),
            "convergence_warnings": sorted({w for r in not_converged for w in r["warnings"] if "Convergence" in w}),
            "other_warnings": sorted({w for r in own for w in r.get("warnings", []) if "Convergence" not in w})[:5],
            "fit_seconds_median": float(np.median([r["fit_seconds"] for r in own if "fit_seconds" in r]))
            if any("fit_seconds" in r for r in own)
            else None,
            "params_per_fold": [r.get("params", {}) for r in sorted(own, key=lambda r: r["split"])],
        }
    best_peer: dict[str, str | None] = {}
    paired: dict[str, Any] = {}
    for metric in names:
        # A peer missing a fold that the others have (failure, NaN calibration) cannot be paired on every fold.
        most_folds = max(models[k]["metrics"][metric]["n"] for k in PEER_MODELS)
        candidates = [
            (models[k]["metrics"][metric]["mean"], k)
            for k in PEER_MODELS
            if most_folds > 0 and models[k]["metrics"][metric]["n"] == most_folds
        ]
        if not candidates:
            best_peer[metric] = None
            continue
        best = (min if _lower_is_better(metric) else max)(candidates)[1]
        best_peer[metric] = best
        for key in CARRISK_MODELS:
            paired.setdefault(key, {})[metric] = {"vs": best} | _paired(
                _fold_values(rows, key, metric, n_splits), _fold_values(rows, best, metric, n_splits)
            )
    out: dict[str, Any] = {
        "models": models,
        "best_peer": best_peer,
        "paired_vs_best_peer": paired,
        "issue_comparison": _issue_comparison(data.name, rows, models, n_splits),
    }
    return out


def _issue_comparison(name: str, rows: list[dict[str, Any]], models: dict[str, Any], n_splits: int) -> dict:
    """carrisk's tuned models against scikit-survival's RSF and Cox model (Harrell's C), as the issue asks."""
    comparison: dict[str, Any] = {"issue_values": ISSUE_TARGETS.get(name)}
    for key in CARRISK_MODELS:
        for peer in ("sksurv_rsf", "sksurv_coxph"):
            diff = _paired(
                _fold_values(rows, key, "harrell_c", n_splits), _fold_values(rows, peer, "harrell_c", n_splits)
            )
            comparison[f"{key}_minus_{peer}"] = {k: diff[k] for k in ("mean", "ci", "n")}
    return comparison


_TASK_ORDER = {"carrisk_rsf": 0, "sksurv_rsf": 1, "carrisk_coxnet": 2}


def _run_named_fold(data: BenchDataset, name: str, *task: Any) -> tuple[str, dict[str, Any]]:
    return name, run_fold(data, *task)


def _dataset_entry(
    data: BenchDataset, splits: list[tuple[np.ndarray, np.ndarray]], rows: list[dict[str, Any]]
) -> dict[str, Any]:
    """Everything the summary shows about one dataset, from its fold rows."""
    event, _ = target_arrays(data.y)
    entry: dict[str, Any] = {
        "rows": len(data.records),
        "events": int(event.sum()),
        "features": list(data.spec.numeric + data.spec.categorical),
        "horizons_days": data.horizons,
        "horizon_rule": data.horizon_rule,
        "ibs_max_time_days": data.ibs_max_time,
        "ibs_rule": "IBS up to 2 years"
        if data.name == "simulated"
        else "IBS up to the 80th percentile of observed times (lowered to each fold's valid range)",
        "notes": data.notes,
        "n_splits": len(splits),
    }
    entry |= summarize_dataset(data, rows, len(splits))
    if data.true_risk is not None:
        oracle_folds = _oracle_folds(data, splits)
        entry["oracle"] = {
            "c_full_cohort": data.oracle_c,
            "c_test_folds": metrics.summarize(oracle_folds),
            "tolerance": ORACLE_TOLERANCE,
        }
        for key in CARRISK_MODELS:
            gap = _paired(_fold_values(rows, key, "harrell_c", len(splits)), oracle_folds)
            entry["oracle"][f"{key}_minus_oracle"] = gap | {
                "within_tolerance": bool(gap["mean"] is not None and gap["mean"] >= -ORACLE_TOLERANCE)
            }
    entry["fold_rows"] = sorted(rows, key=lambda r: (r["model"], r["split"]))
    return entry


def run(
    settings: _common.Settings,
    out_dir: Path = _common.RESULTS_DIR,
    datasets: tuple[str, ...] = DATASETS,
    n_jobs: int = _common.N_CORES,
) -> dict[str, Any]:
    """Run the accuracy part and write ``accuracy.json`` (rewritten as each dataset completes, to follow a run)."""
    path = out_dir / "accuracy.json"
    result = _common.header(
        "accuracy",
        settings,
        {
            "outer_cv": SPLIT_SEED,
            "models": MODEL_SEED,
            "flchain_subsample": SUBSAMPLE_SEED,
            "simulated": SIMULATED_SEED,
        },
    )
    result["design"] = {
        "outer_cv": f"RepeatedStratifiedKFold(n_splits={settings.folds}, n_repeats={settings.repeats}, "
        f"random_state={SPLIT_SEED}) on the event indicator; the same splits for every model",
        "models": MODEL_LABELS,
        "metrics": "carrisk.metrics.evaluate_predictions: Harrell C, Uno C (tau = choose_tau), IBS, td-AUC and ICI "
        "at the horizons; interval = 2.5-97.5 percentile of fold values",
        "paired": "per-fold difference carrisk - best peer (best mean among the peers with a value on every fold "
        "where any peer has one); "
        "positive is better for C/AUC, negative is better for IBS/ICI",
        "survival_grid": "training-fold event times plus the horizons, up to the largest training time",
    }
    result["datasets"] = {}
    result["complete"] = False
    started = time.perf_counter()
    loaded = {name: load_dataset(name, settings) for name in datasets}
    splits = {}
    tasks = []
    for name, data in loaded.items():
        event, _ = target_arrays(data.y)
        outer = RepeatedStratifiedKFold(n_splits=settings.folds, n_repeats=settings.repeats, random_state=SPLIT_SEED)
        splits[name] = list(outer.split(np.zeros(len(event)), event))
        tasks += [
            (name, key, i, i // settings.folds, i % settings.folds, train, test)
            for key in MODELS
            for i, (train, test) in enumerate(splits[name])
        ]
    # Longest tasks first (carrisk's tuned forest, then scikit-survival's, larger datasets first), so that the
    # two workers finish together; results arrive in any order and each dataset is written once it is complete.
    tasks.sort(key=lambda t: (_TASK_ORDER.get(t[1], len(_TASK_ORDER)), -len(loaded[t[0]].records)))
    _common.log(f"accuracy: {len(tasks)} fits over {len(loaded)} datasets on {n_jobs} workers")
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in loaded}
    expected = {name: len(MODELS) * len(s) for name, s in splits.items()}
    outputs = joblib.Parallel(n_jobs=n_jobs, backend="loky", return_as="generator_unordered")(
        joblib.delayed(_run_named_fold)(loaded[task[0]], *task) for task in tasks
    )
    for name, row in outputs:
        rows[name].append(row)
        if len(rows[name]) == expected[name]:
            result["datasets"][name] = _dataset_entry(loaded[name], splits[name], rows[name])
            result["datasets"][name]["finished_after_seconds"] = time.perf_counter() - started
            result["datasets"] = {n: result["datasets"][n] for n in loaded if n in result["datasets"]}
            _common.write_json(path, result)
            _common.log(f"accuracy: {name} complete")
    result["complete"] = True
    _common.write_json(path, result)
    return result


def refresh(names: tuple[str, ...], out_dir: Path = _common.RESULTS_DIR) -> dict[str, Any]:
    """Re-run the full-mode accuracy part for some datasets only and replace their entries in ``accuracy.json``.

    The other datasets keep their entries (and the file's header its date); ``refreshed`` records each replaced
    entry's date, machine (with its load) and this command, so that the file says which rows are from which run.
    """
    unknown = sorted(set(names) - set(DATASETS))
    if unknown:
        raise SystemExit(f"unknown dataset(s) {', '.join(unknown)}; choose from {', '.join(DATASETS)}")
    path = out_dir / "accuracy.json"
    previous = _common.read_json(path)
    if previous is None or previous.get("mode") != _common.FULL.mode:
        raise SystemExit(f"{path} holds no full-mode run to refresh; run `python -m benchmarks --only accuracy`")
    with tempfile.TemporaryDirectory() as scratch:
        fresh = run(_common.FULL, Path(scratch), datasets=names)
    command = f"python -m benchmarks.accuracy --refresh {','.join(names)}"
    for name in names:
        previous["datasets"][name] = fresh["datasets"][name]
        previous.setdefault("refreshed", {})[name] = {
            "date": fresh["date"],
            "machine": fresh["machine"],
            "versions": fresh["versions"],
            "command": command,
        }
    previous["datasets"] = {n: previous["datasets"][n] for n in DATASETS if n in previous["datasets"]}
    _common.write_json(path, previous)
    return previous


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.accuracy", description=refresh.__doc__.splitlines()[0])
    parser.add_argument("--refresh", required=True, help=f"comma-separated datasets: {','.join(DATASETS)}")
    args = parser.parse_args(argv)
    refresh(tuple(n.strip() for n in args.refresh.split(",") if n.strip()))


if __name__ == "__main__":
    main()
