"""Registry scale: carrisk's forest engines (scikit-survival exact, carrisk's histogram kernel) and comprisk, 420+ rows.

``python -m benchmarks.scale [--quick] [--sizes N,N,...] [--runs R] [--features P] [--trees T]``, or as part
``scale`` of ``python -m benchmarks``. Data: :func:`synthetic_table` (:func:`benchmarks.speed.synthetic_survival`'s
10 standard-normal features, Weibull times, ~50 % censored, plus ``P - 10`` pure-noise features), held-out 5,000
rows (seed 99). Every forest: 100 trees, min_samples_leaf=15, "sqrt" features per split (3 of 10, 4 of 20),
bootstrap, 2 threads, seed 0. Each fit runs in a fresh process (``--worker``) so its peak RSS is its own (recorded
right after the fit, ``fit_peak_rss_bytes``, and at the end of the process, after predicting and pickling,
``peak_rss_bytes``); the median of ``runs`` processes is reported (the full sweep: 3 up to 20,000 rows, 1 above, and
1 for the exact forest at 20,000 rows), with the load average before and after every fit and its CPU seconds (all
threads), which the other jobs on a shared machine inflate less than the wall time.

Implementations: ``sksurv`` and ``hist`` are ``SurvivalForest(engine=...)`` (``hist``: carrisk's own numba kernel,
:mod:`carrisk._hist_kernel`); ``comprisk`` is comprisk 0.8's ``CompetingRiskForest`` with the settings carrisk's
engine used to pass it when it wrapped comprisk (``splitrule="logrank"``, exhaustive bins, 10 split times, the same
time coarsening); ``hist_weights`` (only with ``--impls``) is carrisk's kernel with comprisk's leaf-size rule
(bootstrap-weighted rows instead of scikit-learn's distinct rows), to compare equal tree sizes; ``hist_bags`` (only
with ``--impls``) is the ``hist`` forest grown in pairs on shared half-samples (``ci_group_size=2``, grf's little
bags), to compare its accuracy and time with the bootstrap forest. numba kernels
compile (or load numba's cache) on their first call in a process, so every worker fits once on 500 rows first (not
timed).
The scaling exponent is the least-squares slope of log fit time on log rows over the sizes from 2,000 rows.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import _common

N_TREES = 100
MIN_SAMPLES_LEAF = 15
N_JOBS = 2
SEED = 0
TEST_ROWS = 5_000
TEST_SEED = 99
IMPLS = ("sksurv", "hist", "comprisk")
#: Accepted by ``--impls`` in addition to :data:`IMPLS`.
EXTRA_IMPLS = ("hist_weights", "hist_bags")
SIZES = {"quick": (420, 2_000), "full": (420, 5_000, 20_000, 100_000, 200_000)}
#: The exact engine is not run above this size (822 s at 50,000 rows on an idle machine, issue 16).
MAX_SKSURV_ROWS = {"quick": 2_000, "full": 20_000}
RUNS = {"quick": 1, "full": 3}
#: Above this many rows (the exact forest: from this many) the full sweep runs each fit once.
SINGLE_RUN_FROM = {"sksurv": 20_000, "hist": 100_000, "comprisk": 100_000, "hist_weights": 100_000}
SINGLE_RUN_FROM["hist_bags"] = 100_000
#: Smallest size in the scaling-exponent fit (below it, fixed costs dominate).
EXPONENT_MIN_ROWS = 2_000
NOISE_SEED = 7


def synthetic_table(n: int, seed: int, n_features: int = 10) -> Any:
    """:func:`benchmarks.speed.synthetic_survival` with ``n_features - 10`` extra standard-normal noise columns."""
    from benchmarks.speed import N_FEATURES, synthetic_survival

    frame = synthetic_survival(n, seed)
    extra = np.random.default_rng([NOISE_SEED, seed]).standard_normal((n, n_features - N_FEATURES))
    for j in range(extra.shape[1]):
        frame[f"x{N_FEATURES + j}"] = extra[:, j]
    return frame


def _fit_one(impl: str, n: int, n_features: int = 10, n_trees: int = N_TREES) -> dict[str, Any]:
    import os
    import pickle
    import resource

    from sksurv.metrics import concordance_index_censored
    from sksurv.util import Surv

    from carrisk.hist_forest import resolve_max_features
    from carrisk.models import SurvivalForest, coarsen_times

    train, test = synthetic_table(n, SEED + 1, n_features), synthetic_table(TEST_ROWS, TEST_SEED, n_features)
    features = [c for c in train.columns if c.startswith("x")]
    X, X_test = train[features].to_numpy(float), test[features].to_numpy(float)
    event, times = train["event"].to_numpy(bool), train["time"].to_numpy(float)
    if impl == "comprisk":
        import comprisk

        from carrisk.hist_forest import SPLIT_TIMES

        coarse, _ = coarsen_times(times, event, 200)
        settings = dict(max_depth=None, min_samples_split=6, min_samples_leaf=MIN_SAMPLES_LEAF,
                        max_features=resolve_max_features("sqrt", n_features), samptype="swr", random_state=SEED,
                        time_grid=200, n_jobs=N_JOBS, splitrule="logrank", nsplit=0,
                        split_ntime=SPLIT_TIMES)  # fmt: skip
        comprisk.CompetingRiskForest(n_estimators=2, **settings).fit(X[:500], coarse[:500], event[:500].astype(int))
        model: Any = comprisk.CompetingRiskForest(n_estimators=n_trees, **settings)
        load_before, cpu, start = os.getloadavg()[0], time.process_time(), time.perf_counter()
        model.fit(X, coarse, event.astype(np.int32))
        fit_seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
        fit_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        leaves = float(np.mean([int(np.max(tree.leaf_idx_of_node)) + 1 for tree in model.trees_]))
        risk = model.predict_chf(X_test)[:, 0, :].sum(axis=1)
        model._X_train_oob_ = None
    elif impl == "hist_weights":
        from carrisk.hist_forest import HistForest

        coarse, _ = coarsen_times(times, event, 200)
        fit_args = dict(min_samples_leaf=MIN_SAMPLES_LEAF, max_features="sqrt", max_samples=None, n_jobs=N_JOBS,
                        random_state=SEED, leaf_size="weights")  # fmt: skip
        HistForest.fit(X[:500], event[:500], coarse[:500], n_estimators=2, **fit_args)
        load_before, cpu, start = os.getloadavg()[0], time.process_time(), time.perf_counter()
        model = HistForest.fit(X, event, coarse, n_estimators=n_trees, **fit_args)
        fit_seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
        fit_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        leaves = float(np.mean([tree.tree_.n_leaves for tree in model.estimators_]))
        risk = model.predict(X_test)
    else:
        engine, bags = ("hist", 2) if impl == "hist_bags" else (impl, 1)
        if engine == "hist":  # compile numba outside the timed fit, as for comprisk
            SurvivalForest(n_estimators=2, engine="hist", random_state=SEED).fit(
                X[:500], Surv.from_arrays(event[:500], times[:500])
            )
        model = SurvivalForest(n_estimators=n_trees, min_samples_leaf=MIN_SAMPLES_LEAF, max_features="sqrt",
                               n_jobs=N_JOBS, random_state=SEED, engine=engine, ci_group_size=bags)  # fmt: skip
        load_before, cpu, start = os.getloadavg()[0], time.process_time(), time.perf_counter()
        model.fit(X, Surv.from_arrays(event, times))
        fit_seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
        fit_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        leaves = float(np.mean([tree.tree_.n_leaves for tree in model.forest_.estimators_]))
        risk = model.predict(X_test)
    c = concordance_index_censored(test["event"].to_numpy(bool), test["time"].to_numpy(float), risk)[0]
    return {
        "fit_seconds": fit_seconds,
        "fit_cpu_seconds": cpu_seconds,
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        "fit_peak_rss_bytes": fit_rss,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "leaves_per_tree": leaves,
        "model_bytes": len(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)),
        "c_harrell": float(c),
    }


def paired(n: int, runs: int = 3) -> dict[str, Any]:
    """``SurvivalForest(engine="hist")`` (carrisk's kernel) and comprisk fitted alternately in one process (after a
    compiling fit), so both see the same load; medians of ``runs`` fits each and their ratio."""
    import comprisk
    from sksurv.util import Surv

    from benchmarks.speed import synthetic_survival
    from carrisk.hist_forest import SPLIT_TIMES
    from carrisk.models import SurvivalForest, coarsen_times

    train = synthetic_survival(n, SEED + 1)
    X = train[[c for c in train.columns if c.startswith("x")]].to_numpy(float)
    event, times = train["event"].to_numpy(bool), train["time"].to_numpy(float)
    coarse, _ = coarsen_times(times, event, 200)
    y = Surv.from_arrays(event, times)
    settings = dict(max_depth=None, min_samples_split=6, min_samples_leaf=MIN_SAMPLES_LEAF, max_features=3,
                    samptype="swr", random_state=SEED, time_grid=200, n_jobs=N_JOBS, splitrule="logrank", nsplit=0,
                    split_ntime=SPLIT_TIMES)  # fmt: skip
    SurvivalForest(n_estimators=2, engine="hist", random_state=SEED).fit(X[:500], y[:500])
    seconds: dict[str, list[float]] = {"hist": [], "comprisk": []}
    for _ in range(runs):
        start = time.perf_counter()
        SurvivalForest(n_estimators=N_TREES, min_samples_leaf=MIN_SAMPLES_LEAF, n_jobs=N_JOBS, random_state=SEED,
                       engine="hist", ci_group_size=1).fit(X, y)  # fmt: skip
        seconds["hist"].append(time.perf_counter() - start)
        start = time.perf_counter()
        comprisk.CompetingRiskForest(n_estimators=N_TREES, **settings).fit(X, coarse, event.astype(np.int32))
        seconds["comprisk"].append(time.perf_counter() - start)
    hist, peer = statistics.median(seconds["hist"]), statistics.median(seconds["comprisk"])
    return {
        "rows": n,
        "fit_seconds": seconds,
        "median_hist": hist,
        "median_comprisk": peer,
        "hist_over_comprisk": hist / peer,
    }


def _run(impl: str, n: int, n_features: int = 10, n_trees: int = N_TREES) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.scale", "--worker", impl, str(n)]
    proc = subprocess.run(
        [*command, "--features", str(n_features), "--trees", str(n_trees)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return {"error": runs[0]["error"]}
    out = {key: statistics.median(r[key] for r in ok) for key in ok[0]}
    return out | {"runs": len(ok), "fit_seconds_all": [r["fit_seconds"] for r in ok]}


def _exponent(rows: dict[int, dict[str, Any]]) -> dict[str, Any] | None:
    """Least-squares slope of log fit time (wall and CPU) on log rows, sizes from :data:`EXPONENT_MIN_ROWS`."""
    sizes = sorted(n for n, r in rows.items() if "fit_seconds" in r and n >= EXPONENT_MIN_ROWS)
    if len(sizes) < 2:
        return None
    log_n = np.log(sizes)
    return {
        "sizes": sizes,
        "wall": float(np.polyfit(log_n, np.log([rows[n]["fit_seconds"] for n in sizes]), 1)[0]),
        "cpu": float(np.polyfit(log_n, np.log([rows[n]["fit_cpu_seconds"] for n in sizes]), 1)[0]),
    }


def run(settings: _common.Settings, out_dir: Path = _common.RESULTS_DIR, sizes: tuple[int, ...] | None = None,
        runs: int | None = None, name: str | None = None, n_features: int = 10,
        n_trees: int = N_TREES, impls: tuple[str, ...] = IMPLS) -> dict[str, Any]:  # fmt: skip
    """Sweep the sizes; engines at one size run back to back, in the same load conditions. The JSON is rewritten
    after every size, so an interrupted sweep keeps the sizes it finished."""
    mode = settings.mode
    sizes = sizes or SIZES[mode]
    results: dict[str, dict[int, dict[str, Any]]] = {impl: {} for impl in (*IMPLS, *EXTRA_IMPLS)}
    payload: dict[str, Any] = {}
    for n in sizes:
        for impl in impls:
            if impl == "sksurv" and n > MAX_SKSURV_ROWS[mode]:
                continue
            repeat = runs or (1 if mode == "full" and n >= SINGLE_RUN_FROM[impl] else RUNS[mode])
            _common.log(f"scale: {impl} at {n} rows x {repeat}")
            results[impl][n] = _median([_run(impl, n, n_features, n_trees) for _ in range(repeat)])
        payload = _payload(settings, results, runs, n_features, n_trees)
        _common.write_json(out_dir / f"{name or ('scale' if mode == 'full' else 'scale_quick')}.json", payload)
    return payload


def _payload(settings: _common.Settings, results: dict[str, dict[int, dict[str, Any]]], runs: int | None,
             n_features: int, n_trees: int) -> dict[str, Any]:  # fmt: skip
    ratios: dict[int, dict[str, float]] = {}
    for n in sorted({n for rows in results.values() for n in rows}):
        ref, hist, peer = (results[i].get(n, {}) for i in IMPLS)
        if "fit_seconds" in ref and "fit_seconds" in hist:
            ratios[n] = {
                "speedup_hist_vs_sksurv": ref["fit_seconds"] / hist["fit_seconds"],
                "speedup_hist_vs_sksurv_cpu": ref["fit_cpu_seconds"] / hist["fit_cpu_seconds"],
                "c_hist_minus_sksurv": hist["c_harrell"] - ref["c_harrell"],
            }
        if "fit_seconds" in peer and "fit_seconds" in hist:
            ratios.setdefault(n, {})["hist_time_over_comprisk"] = hist["fit_seconds"] / peer["fit_seconds"]
            ratios[n]["hist_cpu_over_comprisk"] = hist["fit_cpu_seconds"] / peer["fit_cpu_seconds"]
            ratios[n]["c_hist_minus_comprisk"] = hist["c_harrell"] - peer["c_harrell"]
        bags = results.get("hist_bags", {}).get(n, {})
        if "fit_seconds" in hist and "fit_seconds" in bags:
            ratios.setdefault(n, {})["hist_bags_time_over_hist"] = bags["fit_seconds"] / hist["fit_seconds"]
            ratios[n]["c_hist_bags_minus_hist"] = bags["c_harrell"] - hist["c_harrell"]
        weighted = results.get("hist_weights", {}).get(n, {})
        if "fit_seconds" in peer and "fit_seconds" in weighted:
            ratios.setdefault(n, {})["hist_weights_cpu_over_comprisk"] = (
                weighted["fit_cpu_seconds"] / peer["fit_cpu_seconds"]
            )
    return _common.header("scale", settings, {"forest": SEED, "train": SEED + 1, "test": TEST_SEED}) | {
        "settings": {
            "trees": n_trees,
            "min_samples_leaf": MIN_SAMPLES_LEAF,
            "threads": N_JOBS,
            "features": n_features,
            "max_features": "sqrt",
            "test_rows": TEST_ROWS,
            "runs": runs or "3, 1 from SINGLE_RUN_FROM rows",
        },
        "results": {impl: {str(n): r for n, r in sorted(rows.items())} for impl, rows in results.items() if rows},
        "ratios": {str(n): r for n, r in ratios.items()},
        "scaling_exponent": {impl: _exponent(rows) for impl, rows in results.items() if rows},
    }


def main(argv: list[str] | None = None) -> None:
    """Command line: ``--worker IMPL N`` (one fit, JSON line) or a sweep."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale")
    parser.add_argument("--worker", nargs=2, metavar=("IMPL", "N"))
    parser.add_argument("--features", type=int, default=10, help="columns of the table (10 signal, rest noise)")
    parser.add_argument("--trees", type=int, default=N_TREES)
    parser.add_argument(
        "--impls", help=f"comma-separated, from {','.join((*IMPLS, *EXTRA_IMPLS))} (default: {','.join(IMPLS)})"
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sizes", help="comma-separated row counts (default: the mode's sweep)")
    parser.add_argument("--runs", type=int)
    parser.add_argument("--paired", help="comma-separated row counts: hist and comprisk alternately in one process")
    parser.add_argument("--name", help="results file name without .json (default scale, quick: scale_quick)")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_fit_one(args.worker[0], int(args.worker[1]), args.features, args.trees)))
        return
    if args.paired:
        rows = [paired(int(n), args.runs or 3) for n in args.paired.split(",")]
        payload = _common.header("scale", _common.FULL, {"forest": SEED, "train": SEED + 1}) | {"paired": rows}
        _common.write_json(_common.RESULTS_DIR / f"{args.name or 'scale_paired'}.json", payload)
        print(json.dumps(rows, indent=1))
        return
    sizes = tuple(int(s) for s in args.sizes.split(",")) if args.sizes else None
    settings = _common.QUICK if args.quick else _common.FULL
    impls = tuple(args.impls.split(",")) if args.impls else IMPLS
    payload = run(settings, sizes=sizes, runs=args.runs, name=args.name, n_features=args.features,
                  n_trees=args.trees, impls=impls)  # fmt: skip
    print(json.dumps(payload["ratios"], indent=1))


if __name__ == "__main__":
    main()
