"""Exact SHAP at registry scale: the whole EFS curve of 10,000 patients on a 100-tree forest grown on 100,000 rows.

``python -m benchmarks.scale_shap [--rows N] [--features P] [--patients M] [--trees T]`` (issue 16's target: under
60 s on 2 cores). One process: a histogram forest (``SurvivalForest(engine="hist")``, the settings of
:mod:`benchmarks.scale`) is fitted on :func:`benchmarks.scale.synthetic_table`, converted once by
:class:`carrisk.explain.ForestExplainer`, and the path-dependent SHAP values of the survival probability at every
grid time are computed for ``M`` held-out patients, ``--repeats`` times (default 3; ``steps.shap`` holds the medians
over the runs, the first of which also computes the leaf values' steps). Numba kernels are compiled (or loaded from
the cache) on a small forest first, outside the timings. Wall and CPU seconds (all threads) and the load average are
recorded for every step, since the machine may be shared; additivity (base value + SHAP values = the forest's
prediction) is checked on every patient and time. ``--compare-reference M`` also explains the first M patients with
the per-leaf polynomial algorithm carrisk used before (``tests/_treeshap_reference.py``) and records both times and
the largest difference (``scale_shap_reference.json``; e.g. ``--rows 20000 --patients 200 --compare-reference
200``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time
from typing import Any

import numpy as np

from benchmarks import _common
from benchmarks.scale import MIN_SAMPLES_LEAF, N_JOBS, SEED, TEST_SEED, synthetic_table


def _timed(step: str, log: dict[str, Any], fn: Any) -> Any:
    load, cpu, start = os.getloadavg()[0], time.process_time(), time.perf_counter()
    out = fn()
    log[step] = {
        "seconds": time.perf_counter() - start,
        "cpu_seconds": time.process_time() - cpu,
        "load_before": load,
        "load_after": os.getloadavg()[0],
    }
    _common.log(f"scale_shap: {step} {log[step]['seconds']:.1f} s (load {load:.1f})")
    return out


def run(rows: int = 100_000, n_features: int = 20, patients: int = 10_000, n_trees: int = 100,
        compare_reference: int = 0, repeats: int = 3) -> dict[str, Any]:  # fmt: skip
    """Fit, convert, explain; returns the JSON payload (written to ``results/scale_shap.json``, or with
    ``compare_reference`` to ``results/scale_shap_reference.json``)."""
    from sksurv.util import Surv

    from carrisk.explain import ForestExplainer
    from carrisk.models import SurvivalForest

    train, test = synthetic_table(rows, SEED + 1, n_features), synthetic_table(patients, TEST_SEED, n_features)
    columns = [c for c in train.columns if c.startswith("x")]
    X, X_test = train[columns].to_numpy(float), test[columns].to_numpy(float)
    y = Surv.from_arrays(train["event"].to_numpy(bool), train["time"].to_numpy(float))
    small = SurvivalForest(n_estimators=2, engine="hist", random_state=SEED).fit(X[:500], y[:500])
    ForestExplainer(small.forest_).shap_values(X_test[:3], output="survival")  # compile outside the timings
    steps: dict[str, Any] = {}
    forest = SurvivalForest(n_estimators=n_trees, min_samples_leaf=MIN_SAMPLES_LEAF, n_jobs=N_JOBS,
                            random_state=SEED, engine="hist", ci_group_size=1)  # fmt: skip
    _timed("fit", steps, lambda: forest.fit(X, y))
    explainer = _timed("convert", steps, lambda: ForestExplainer(forest.forest_))
    runs: list[dict[str, Any]] = []
    for _ in range(repeats):  # the same explainer: leaf values and their steps are computed in the first run only
        result = _timed("shap", steps, lambda: explainer.shap_values(X_test, output="survival"))
        runs.append(steps.pop("shap"))
    steps["shap_runs"] = runs
    steps["shap"] = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    flat = explainer._flat
    payload = _common.header("scale_shap", _common.FULL, {"forest": SEED, "train": SEED + 1, "test": TEST_SEED}) | {
        "settings": {"rows": rows, "features": n_features, "patients": patients, "trees": n_trees, "repeats": repeats,
                     "min_samples_leaf": MIN_SAMPLES_LEAF, "threads": N_JOBS, "output": "survival, every grid time"},
        "forest": {"leaves": int(flat.leaf_ptr.size - 1), "grid_times": int(explainer.unique_times.size),
                   "max_distinct_features_on_a_path": int(flat.max_path_features)},
        "steps": steps,
        "shap_values_shape": list(result.values.shape),
        "additivity_error": result.additivity_error(),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "target_seconds": 60.0,
        "shap_over_target": steps["shap"]["seconds"] / 60.0,
        "shap_cpu_over_two_cores_over_target": steps["shap"]["cpu_seconds"] / N_JOBS / 60.0,
    }  # fmt: skip
    if compare_reference:
        from tests._treeshap_reference import reference_path_dependent_shap

        rows_ref = X_test[:compare_reference]
        ours = _timed("tree_walk_subset", steps, lambda: explainer.shap_values(rows_ref, output="survival"))
        ref = _timed("reference_subset", steps, lambda: reference_path_dependent_shap(explainer, rows_ref, "survival"))
        payload["reference"] = {
            "patients": compare_reference,
            "max_abs_difference": float(np.max(np.abs(ours.values - ref))),
            "cpu_ratio_reference_over_tree_walk": steps["reference_subset"]["cpu_seconds"]
            / steps["tree_walk_subset"]["cpu_seconds"],
        }
    name = "scale_shap_reference.json" if compare_reference else "scale_shap.json"
    _common.write_json(_common.RESULTS_DIR / name, payload)
    return payload


def main(argv: list[str] | None = None) -> None:
    """Command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale_shap")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--compare-reference", type=int, default=0, metavar="M")
    parser.add_argument("--repeats", type=int, default=3, help="SHAP runs on the fitted forest; the median is reported")
    args = parser.parse_args(argv)
    payload = run(args.rows, args.features, args.patients, args.trees, args.compare_reference, args.repeats)
    keys = ("forest", "steps", "additivity_error", "peak_rss_bytes", "reference")
    print(json.dumps({k: payload[k] for k in keys if k in payload}, indent=1))


if __name__ == "__main__":
    main()
