"""Cross-validation at registry scale on dask.distributed: 100,000 rows, 5 folds, ``LocalCluster(n_workers=2)``.

``python -m benchmarks.scale_dask [--rows N] [--features P] [--folds K] [--trees T] [--compare-loky]``. The table
is :func:`benchmarks.scale.synthetic_table` in generic mode; the model is the histogram forest
(``SurvivalForest(engine="hist")``, 100 trees, leaf 15, one thread per fit) with fixed settings, so every outer
fold is one fit (``carrisk cv``'s default forest search would fit its 6 candidates per fold). The folds run on a
``LocalCluster`` of 2 single-threaded worker processes through ``cross_validate(..., backend="dask",
scheduler=<its address>)``, the code path of ``carrisk cv --backend dask --scheduler ADDRESS``. With
``--compare-loky`` the same folds then run with ``backend="loky"`` (2 jobs) in the same process, for the ratio.
Wall time, load average, per-fold held-out Harrell C and the workers' peak memory are recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

from benchmarks import _common
from benchmarks.scale import MIN_SAMPLES_LEAF, SEED, synthetic_table

WORKERS = 2


def _cv(data: Any, n_trees: int, folds: int, backend: str, scheduler: str | None) -> dict[str, Any]:
    from carrisk.models import make_pipeline
    from carrisk.validation import cross_validate

    model = make_pipeline("rsf", data.spec, n_estimators=n_trees, min_samples_leaf=MIN_SAMPLES_LEAF, engine="hist",
                          ci_group_size=1, n_jobs=1)  # fmt: skip
    load, start = os.getloadavg()[0], time.perf_counter()
    result = cross_validate(data.records, data.y, {"rsf_hist": model}, spec=data.spec, folds=folds, repeats=1,
                            seed=SEED, n_jobs=WORKERS, backend=backend, scheduler=scheduler, progress=False,
                            calibration_bootstrap=0)  # fmt: skip
    seconds = time.perf_counter() - start
    _common.log(f"scale_dask: {backend} {seconds:.1f} s (load {load:.1f})")
    return {
        "seconds": seconds,
        "load_before": load,
        "load_after": os.getloadavg()[0],
        "fold_seconds": [fold["seconds"] for fold in result.folds],
        "harrell_c": [fold["metrics"].get("harrell_c") for fold in result.folds],
        "errors": [fold["error"] for fold in result.folds if fold["error"]],
    }


def run(rows: int = 100_000, n_features: int = 20, folds: int = 5, n_trees: int = 100,
        compare_loky: bool = False) -> dict[str, Any]:  # fmt: skip
    """Run the folds on a LocalCluster (and optionally loky); returns the payload written to scale_dask.json."""
    from dask.distributed import Client, LocalCluster

    from carrisk.datasets import load_survival_data

    data = load_survival_data(synthetic_table(rows, SEED + 1, n_features), time_col="time", event_col="event")
    with LocalCluster(n_workers=WORKERS, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            dask = _cv(data, n_trees, folds, "dask", cluster.scheduler_address)
            memory = client.run(lambda: __import__("resource").getrusage(0).ru_maxrss * 1024)
    payload = _common.header("scale_dask", _common.FULL, {"folds_and_forest": SEED, "train": SEED + 1}) | {
        "settings": {"rows": rows, "features": n_features, "folds": folds, "repeats": 1, "trees": n_trees,
                     "min_samples_leaf": MIN_SAMPLES_LEAF, "workers": WORKERS, "threads_per_worker": 1},
        "dask": dask | {"worker_peak_rss_bytes": sorted(memory.values())},
    }  # fmt: skip
    if compare_loky:
        payload["loky"] = _cv(data, n_trees, folds, "loky", None)
        payload["dask_over_loky"] = dask["seconds"] / payload["loky"]["seconds"]
    _common.write_json(_common.RESULTS_DIR / "scale_dask.json", payload)
    return payload


def main(argv: list[str] | None = None) -> None:
    """Command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale_dask")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--compare-loky", action="store_true")
    args = parser.parse_args(argv)
    payload = run(args.rows, args.features, args.folds, args.trees, args.compare_loky)
    print(json.dumps({k: v for k, v in payload.items() if k in ("dask", "loky", "dask_over_loky")}, indent=1))


if __name__ == "__main__":
    main()
