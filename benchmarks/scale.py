"""Registry scale: carrisk's forest engines (scikit-survival exact, comprisk histogram) and raw comprisk, 420+ rows.

``python -m benchmarks.scale [--quick] [--sizes N,N,...] [--runs R]``, or as part ``scale`` of ``python -m benchmarks``.
Data: :func:`benchmarks.speed.synthetic_survival` (10 standard-normal features, Weibull times, ~50 % censored),
held-out 5,000 rows (seed 99). Every forest: 100 trees, min_samples_leaf=15, 3 features per split, bootstrap,
2 threads, seed 0. Each fit runs in a fresh process (``--worker``) so its peak RSS is its own; the median of
``runs`` processes is reported. ``comprisk`` is comprisk's ``CompetingRiskForest`` with the settings
``SurvivalForest(engine="hist")`` passes it (after the same time coarsening), without carrisk's tree conversion;
its first fit in a process includes numba compilation, so the worker fits once on 500 rows first (not timed).
The scaling exponent is the log-log slope of fit time between the two largest sizes of each engine.
"""

from __future__ import annotations

import argparse
import json
import math
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
SIZES = {"quick": (420, 2_000), "full": (420, 5_000, 20_000, 100_000, 200_000)}
#: The exact engine is not run above this size (822 s at 50,000 rows on an idle machine, issue 16).
MAX_SKSURV_ROWS = {"quick": 2_000, "full": 20_000}
RUNS = {"quick": 1, "full": 3}


def _fit_one(impl: str, n: int) -> dict[str, Any]:
    import pickle
    import resource

    from sksurv.metrics import concordance_index_censored
    from sksurv.util import Surv

    from benchmarks.speed import synthetic_survival
    from carrisk.models import SurvivalForest, coarsen_times

    train, test = synthetic_survival(n, SEED + 1), synthetic_survival(TEST_ROWS, TEST_SEED)
    features = [c for c in train.columns if c.startswith("x")]
    X, X_test = train[features].to_numpy(float), test[features].to_numpy(float)
    event, times = train["event"].to_numpy(bool), train["time"].to_numpy(float)
    if impl == "comprisk":
        import comprisk

        from carrisk.hist_forest import SPLIT_TIMES

        coarse, _ = coarsen_times(times, event, 200)
        settings = dict(max_depth=None, min_samples_split=6, min_samples_leaf=MIN_SAMPLES_LEAF, max_features=3,
                        samptype="swr", random_state=SEED, time_grid=200, n_jobs=N_JOBS, splitrule="logrank",
                        nsplit=0, split_ntime=SPLIT_TIMES)  # fmt: skip
        comprisk.CompetingRiskForest(n_estimators=2, **settings).fit(X[:500], coarse[:500], event[:500].astype(int))
        model: Any = comprisk.CompetingRiskForest(n_estimators=N_TREES, **settings)
        start = time.perf_counter()
        model.fit(X, coarse, event.astype(np.int32))
        fit_seconds = time.perf_counter() - start
        risk = model.predict_chf(X_test)[:, 0, :].sum(axis=1)
        model._X_train_oob_ = None
    else:
        if impl == "hist":  # compile numba outside the timed fit, as for comprisk
            SurvivalForest(n_estimators=2, engine="hist", random_state=SEED).fit(
                X[:500], Surv.from_arrays(event[:500], times[:500])
            )
        model = SurvivalForest(n_estimators=N_TREES, min_samples_leaf=MIN_SAMPLES_LEAF, max_features="sqrt",
                               n_jobs=N_JOBS, random_state=SEED, engine=impl)  # fmt: skip
        start = time.perf_counter()
        model.fit(X, Surv.from_arrays(event, times))
        fit_seconds = time.perf_counter() - start
        risk = model.predict(X_test)
    c = concordance_index_censored(test["event"].to_numpy(bool), test["time"].to_numpy(float), risk)[0]
    return {
        "fit_seconds": fit_seconds,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "model_bytes": len(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)),
        "c_harrell": float(c),
    }


def paired(n: int, runs: int = 3) -> dict[str, Any]:
    """``SurvivalForest(engine="hist")`` and raw comprisk fitted alternately in one process (after a compiling fit),
    so both see the same load; medians of ``runs`` fits each and their ratio."""
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
                       engine="hist").fit(X, y)  # fmt: skip
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


def _run(impl: str, n: int) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.scale", "--worker", impl, str(n)],
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


def _exponent(rows: dict[int, dict[str, Any]]) -> float | None:
    sizes = sorted(n for n, r in rows.items() if "fit_seconds" in r)
    if len(sizes) < 2:
        return None
    a, b = sizes[-2], sizes[-1]
    return math.log(rows[b]["fit_seconds"] / rows[a]["fit_seconds"]) / math.log(b / a)


def run(settings: _common.Settings, out_dir: Path = _common.RESULTS_DIR, sizes: tuple[int, ...] | None = None,
        runs: int | None = None, name: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Sweep the sizes; engines at one size run back to back, in the same load conditions."""
    mode = settings.mode
    sizes = sizes or SIZES[mode]
    runs = runs or RUNS[mode]
    results: dict[str, dict[int, dict[str, Any]]] = {impl: {} for impl in IMPLS}
    for n in sizes:
        for impl in IMPLS:
            if impl == "sksurv" and n > MAX_SKSURV_ROWS[mode]:
                continue
            _common.log(f"scale: {impl} at {n} rows x {runs}")
            results[impl][n] = _median([_run(impl, n) for _ in range(runs)])
    ratios = {}
    for n in sizes:
        ref, hist, peer = (results[i].get(n, {}) for i in IMPLS)
        if "fit_seconds" in ref and "fit_seconds" in hist:
            ratios[n] = {
                "speedup_hist_vs_sksurv": ref["fit_seconds"] / hist["fit_seconds"],
                "c_hist_minus_sksurv": hist["c_harrell"] - ref["c_harrell"],
            }
        if "fit_seconds" in peer and "fit_seconds" in hist:
            ratios.setdefault(n, {})["hist_time_over_comprisk"] = hist["fit_seconds"] / peer["fit_seconds"]
    payload = _common.header("scale", settings, {"forest": SEED, "train": SEED + 1, "test": TEST_SEED}) | {
        "settings": {
            "trees": N_TREES,
            "min_samples_leaf": MIN_SAMPLES_LEAF,
            "threads": N_JOBS,
            "features": 10,
            "max_features": 3,
            "test_rows": TEST_ROWS,
            "runs": runs,
        },
        "results": {impl: {str(n): r for n, r in rows.items()} for impl, rows in results.items()},
        "ratios": {str(n): r for n, r in ratios.items()},
        "scaling_exponent": {impl: _exponent(rows) for impl, rows in results.items()},
    }
    _common.write_json(out_dir / f"{name or ('scale' if mode == 'full' else 'scale_quick')}.json", payload)
    return payload


def main(argv: list[str] | None = None) -> None:
    """Command line: ``--worker IMPL N`` (one fit, JSON line) or a sweep."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale")
    parser.add_argument("--worker", nargs=2, metavar=("IMPL", "N"))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sizes", help="comma-separated row counts (default: the mode's sweep)")
    parser.add_argument("--runs", type=int)
    parser.add_argument("--paired", help="comma-separated row counts: hist and comprisk alternately in one process")
    parser.add_argument("--name", help="results file name without .json (default scale, quick: scale_quick)")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_fit_one(args.worker[0], int(args.worker[1]))))
        return
    if args.paired:
        rows = [paired(int(n), args.runs or 3) for n in args.paired.split(",")]
        payload = _common.header("scale", _common.FULL, {"forest": SEED, "train": SEED + 1}) | {"paired": rows}
        _common.write_json(_common.RESULTS_DIR / f"{args.name or 'scale_paired'}.json", payload)
        print(json.dumps(rows, indent=1))
        return
    sizes = tuple(int(s) for s in args.sizes.split(",")) if args.sizes else None
    settings = _common.QUICK if args.quick else _common.FULL
    print(json.dumps(run(settings, sizes=sizes, runs=args.runs, name=args.name)["ratios"], indent=1))


if __name__ == "__main__":
    main()
