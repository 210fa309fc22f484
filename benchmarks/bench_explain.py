"""Benchmark: exact TreeSHAP for a random survival forest vs model-agnostic SHAP.

Explains 1,000 patients of a 200-tree random survival forest (min_samples_leaf=15, trained on GBSG2, 686 rows,
one-hot encoded) on 2 cores, and compares :class:`carrisk.explain.ForestExplainer` with

* ``shap.KernelExplainer`` (100-row k-means background) over ``forest.predict``,
* ``shap.KernelExplainer`` over the fastest predict available (the converted trees:
  ``ForestExplainer.predict``, a sparse leaf-indicator product),
* ``survshap`` (``SurvivalModelExplainer`` + ``PredictSurvSHAP``, exact KernelSHAP of the survival curve).

The slow methods are timed on a few patients and extrapolated linearly to 1,000 (flagged in the JSON).
Writes ``benchmarks/results/explain.json``. Not part of the test-suite.

Usage::

    python benchmarks/bench_explain.py [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import time
import warnings
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numba
import numpy as np
import pandas as pd
import shap
from sksurv.datasets import load_gbsg2
from sksurv.ensemble import RandomSurvivalForest
from sksurv.preprocessing import OneHotEncoder
from threadpoolctl import threadpool_limits

from carrisk.explain import ForestExplainer
from carrisk.units import SIX_MONTHS_DAYS, TWELVE_MONTHS_DAYS

N_CORES = 2
N_PATIENTS = 1000
N_TREES = 200
MIN_SAMPLES_LEAF = 15
N_BACKGROUND = 100
FOREST_SEED = 0
PATIENT_SEED = 1
BACKGROUND_SEED = 2
GOALS = {
    "speedup_vs_kernel_over_forest_predict": 1000.0,
    "speedup_vs_kernel_over_fastest_predict": 100.0,
    "speedup_vs_survshap": 1000.0,
    "whole_curve_1000_patients_seconds": 10.0,
}


def _median_time(fn: Any, repeats: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def _per_patient_time(fn: Any, rows: pd.DataFrame) -> float:
    """Seconds per patient of ``fn(one_row)``, timed on each row of ``rows``."""
    start = time.perf_counter()
    for i in range(len(rows)):
        fn(rows.iloc[[i]])
    return (time.perf_counter() - start) / len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and fewer patients for slow methods")
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "explain.json")
    args = parser.parse_args()
    repeats = 3 if args.quick else 5
    n_kernel_patients = 2 if args.quick else 5
    n_survshap_patients = 1 if args.quick else 2

    numba.set_num_threads(min(N_CORES, numba.config.NUMBA_NUM_THREADS))
    warnings.filterwarnings("ignore", category=UserWarning)

    X_raw, y = load_gbsg2()
    X = OneHotEncoder().fit_transform(X_raw)
    rng = np.random.default_rng(PATIENT_SEED)
    patients = X.iloc[rng.integers(0, len(X), N_PATIENTS)].reset_index(drop=True)
    background = X.sample(N_BACKGROUND, random_state=BACKGROUND_SEED)

    results: dict[str, Any] = {}
    with threadpool_limits(limits=N_CORES):
        start = time.perf_counter()
        forest = RandomSurvivalForest(
            n_estimators=N_TREES, min_samples_leaf=MIN_SAMPLES_LEAF, random_state=FOREST_SEED, n_jobs=N_CORES
        ).fit(X, y)
        results["fit_seconds"] = time.perf_counter() - start

        # ---- ForestExplainer (exact) -------------------------------------------------------------------
        timings: dict[str, Any] = {}
        for mode in ("tree_path_dependent", "interventional"):
            start = time.perf_counter()
            explainer = ForestExplainer(
                forest, background=background if mode == "interventional" else None, feature_perturbation=mode
            )
            conversion = time.perf_counter() - start
            explainer.shap_values(patients.iloc[:5])  # numba compilation / cache load, not timed
            explainer.shap_values(patients.iloc[:5], output="survival")
            tasks = {
                "risk": lambda e=explainer: e.shap_values(patients),
                "survival_6_12_months": lambda e=explainer: e.shap_values(
                    patients, output="survival", times=[SIX_MONTHS_DAYS, TWELVE_MONTHS_DAYS]
                ),
                "whole_curve": lambda e=explainer: e.shap_values(patients, output="survival"),
            }
            mode_timings: dict[str, Any] = {"conversion_seconds": conversion}
            for name, task in tasks.items():
                median, all_times = _median_time(task, repeats)
                result = task()
                mode_timings[name] = {
                    "median_seconds": median,
                    "all_seconds": all_times,
                    "values_shape": list(result.values.shape),
                    "max_additivity_error": result.additivity_error(),
                }
            timings[mode] = mode_timings
        results["forest_explainer"] = timings
        fast_explainer = ForestExplainer(forest)
        n_times = int(forest.unique_times_.size)

        # ---- KernelExplainer -----------------------------------------------------------------------------
        kmeans_background = shap.kmeans(background.to_numpy(), N_BACKGROUND)
        kernel_rows = patients.iloc[:n_kernel_patients]

        def kernel_time(predict: Any) -> float:
            kernel = shap.KernelExplainer(predict, kmeans_background)
            return _per_patient_time(lambda row: kernel.shap_values(row.to_numpy(), silent=True), kernel_rows)

        def fastest_predict(Z: np.ndarray) -> np.ndarray:
            return fast_explainer.predict(Z)

        def forest_predict(Z: np.ndarray) -> np.ndarray:
            return forest.predict(pd.DataFrame(Z, columns=X.columns))

        predict_bench = X.iloc[np.arange(20_000) % len(X)]
        results["predict_20000_rows_seconds"] = {
            "forest.predict": _median_time(lambda: forest.predict(predict_bench), repeats)[0],
            "converted_trees": _median_time(lambda: fast_explainer.predict(predict_bench), repeats)[0],
        }
        kernel = {
            "patients_timed": n_kernel_patients,
            "extrapolated_linearly_to": N_PATIENTS,
            "nsamples": "auto (2 * p + 2048)",
            "background": f"shap.kmeans, {N_BACKGROUND} centroids",
            "output": "risk",
        }
        per_patient = kernel_time(forest_predict)
        kernel["forest_predict_seconds_per_patient"] = per_patient
        kernel["forest_predict_seconds_1000_patients_extrapolated"] = per_patient * N_PATIENTS
        per_patient = kernel_time(fastest_predict)
        kernel["fastest_predict_seconds_per_patient"] = per_patient
        kernel["fastest_predict_seconds_1000_patients_extrapolated"] = per_patient * N_PATIENTS
        results["kernel_explainer"] = kernel

        # ---- survshap ------------------------------------------------------------------------------------
        try:
            from survshap import PredictSurvSHAP, SurvivalModelExplainer

            survshap_explainer = SurvivalModelExplainer(forest, background, y[background.index])

            def survshap_one(row: pd.DataFrame) -> None:
                PredictSurvSHAP(calculation_method="kernel", function_type="sf").fit(survshap_explainer, row)

            per_patient = _per_patient_time(survshap_one, patients.iloc[:n_survshap_patients])
            results["survshap"] = {
                "version": version("survshap"),
                "method": "PredictSurvSHAP(calculation_method='kernel') = exact KernelSHAP, whole curve",
                "background_rows": N_BACKGROUND,
                "patients_timed": n_survshap_patients,
                "extrapolated_linearly_to": N_PATIENTS,
                "seconds_per_patient": per_patient,
                "seconds_1000_patients_extrapolated": per_patient * N_PATIENTS,
            }
        except ImportError:
            results["survshap"] = {"skipped": "survshap not installed (pip install survshap)"}

    interventional = timings["interventional"]
    path_dependent = timings["tree_path_dependent"]
    ratios = {
        "kernel_over_forest_predict_vs_interventional_risk": kernel["forest_predict_seconds_1000_patients_extrapolated"]
        / interventional["risk"]["median_seconds"],
        "kernel_over_fastest_predict_vs_interventional_risk": kernel[
            "fastest_predict_seconds_1000_patients_extrapolated"
        ]
        / interventional["risk"]["median_seconds"],
        "kernel_over_forest_predict_vs_path_dependent_risk": kernel["forest_predict_seconds_1000_patients_extrapolated"]
        / path_dependent["risk"]["median_seconds"],
        "kernel_over_fastest_predict_vs_path_dependent_risk": kernel[
            "fastest_predict_seconds_1000_patients_extrapolated"
        ]
        / path_dependent["risk"]["median_seconds"],
    }
    if "seconds_1000_patients_extrapolated" in results["survshap"]:
        survshap_total = results["survshap"]["seconds_1000_patients_extrapolated"]
        ratios["survshap_vs_interventional_whole_curve"] = (
            survshap_total / interventional["whole_curve"]["median_seconds"]
        )
        ratios["survshap_vs_path_dependent_whole_curve"] = (
            survshap_total / path_dependent["whole_curve"]["median_seconds"]
        )
    best_curve = min(interventional["whole_curve"]["median_seconds"], path_dependent["whole_curve"]["median_seconds"])
    goals = {
        "speedup_vs_kernel_over_forest_predict": {
            "goal": GOALS["speedup_vs_kernel_over_forest_predict"],
            "measured": ratios["kernel_over_forest_predict_vs_interventional_risk"],
        },
        "speedup_vs_kernel_over_fastest_predict": {
            "goal": GOALS["speedup_vs_kernel_over_fastest_predict"],
            "measured": ratios["kernel_over_fastest_predict_vs_interventional_risk"],
        },
        "whole_curve_1000_patients_seconds": {
            "goal": GOALS["whole_curve_1000_patients_seconds"],
            "measured": interventional["whole_curve"]["median_seconds"],
            "measured_path_dependent": path_dependent["whole_curve"]["median_seconds"],
        },
    }
    if "survshap_vs_interventional_whole_curve" in ratios:
        goals["speedup_vs_survshap"] = {
            "goal": GOALS["speedup_vs_survshap"],
            "measured": ratios["survshap_vs_interventional_whole_curve"],
        }
    for name, goal in goals.items():
        if name.endswith("_seconds"):
            goal["met"] = bool(best_curve < goal["goal"])
        else:
            goal["met"] = bool(goal["measured"] >= goal["goal"])

    report = {
        "benchmark": "carrisk.explain ForestExplainer vs KernelExplainer vs survshap",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "cpus_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "cores_used": N_CORES,
            "numba_threads": numba.get_num_threads(),
            "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        },
        "versions": {
            name: version(name)
            for name in ("numpy", "pandas", "scikit-learn", "scikit-survival", "shap", "numba", "scipy")
        },
        "seeds": {"forest": FOREST_SEED, "patients": PATIENT_SEED, "background": BACKGROUND_SEED},
        "setup": {
            "data": "sksurv.datasets.load_gbsg2, OneHotEncoder",
            "n_train": len(X),
            "n_features": X.shape[1],
            "n_trees": N_TREES,
            "min_samples_leaf": MIN_SAMPLES_LEAF,
            "n_patients_explained": N_PATIENTS,
            "n_background": N_BACKGROUND,
            "n_unique_times": n_times,
            "horizons_days": [SIX_MONTHS_DAYS, TWELVE_MONTHS_DAYS],
            "repeats_fast_methods": repeats,
            "timing": "median of repeats, wall clock; numba compilation excluded (warm-up call)",
        },
        **results,
        "ratios": ratios,
        "goals": goals,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({"forest_explainer": timings, "kernel": kernel, "survshap": results["survshap"]}, indent=1))
    print(json.dumps({"ratios": ratios, "goals": goals}, indent=1))


if __name__ == "__main__":
    main()
