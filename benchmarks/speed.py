"""Speed and memory of random survival forests: synthetic data of growing size, and the issue's time-grid targets.

Forests: carrisk's ``SurvivalForest`` (time grid on: ``max_times="auto"``, i.e. 200 event-time quantiles when
there are more unique event times) against scikit-survival's ``RandomSurvivalForest`` with ``low_memory=False``
and ``low_memory=True`` and, when R is available, ``ranger``; all with 100 trees, min_samples_leaf=15 (ranger:
``min.node.size = 15``), sqrt(p) features per split, 2 threads, on the same CSV files. Each run is a fresh process
(:mod:`benchmarks.speed_worker`). A configuration whose extrapolated time or memory would exceed the limits is
skipped, and the estimate is recorded as an estimate.
"""

from __future__ import annotations

import json
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks import _common
from benchmarks.speed_worker import FOREST_SEED, IMPLEMENTATIONS, MIN_SAMPLES_LEAF, N_JOBS, N_TREES

N_FEATURES = 10
WEIBULL_SHAPE = 1.5
WEIBULL_SCALE_DAYS = 1000.0
#: Upper end of the uniform censoring times; gives about 50% censoring with the hazard below.
CENSORING_MAX_DAYS = 1750.0
TEST_ROWS = 5_000
TEST_SEED = 99
MAX_MEMORY_BYTES = 16e9
#: Per configuration (fit + predict), in seconds: 15 minutes in full mode, 30 s in quick mode.
MAX_SECONDS = {"full": 900.0, "quick": 30.0}
#: Log-log slope assumed for time and memory when only one size has been measured, and the range allowed otherwise
#: (small sizes are dominated by fixed costs, so a measured slope is clipped before it is extrapolated).
DEFAULT_SLOPE = 2.0
MAX_SLOPE = 2.5
C_TARGET_ROWS = 20_000
C_TARGET_TOLERANCE = 0.005
#: The issue's time-grid targets: carrisk's forest vs scikit-survival's defaults (low_memory=False).
GRID_TARGETS = {"fit_speedup": 5.0, "memory_ratio": 10.0, "model_size_ratio": 10.0, "c_tolerance": C_TARGET_TOLERANCE}
#: (rows, trees) per target table and mode. scikit-survival stores ~400 MB per tree at 20,000 rows with continuous
#: times, so 100 trees (~40 GB) cannot run on a 24 GB machine; both forests get 20 trees there. Time, memory above
#: the baseline and model size grow linearly with the number of trees, so the ratios do not depend on it.
GRID_TARGET_SIZES = {
    "full": {"flchain": (None, N_TREES), "synthetic": (C_TARGET_ROWS, 20)},
    "quick": {"flchain": (2_000, 20), "synthetic": (2_000, 20)},
}
GRID_SPLIT_SEED = 0


def synthetic_survival(n: int, seed: int) -> pd.DataFrame:
    """``n`` rows of 10 standard-normal features, Weibull event times and uniform censoring (~50% censored).

    log relative hazard = 0.7 x0 - 0.5 x1 + 0.4 x2 x3 + 0.6 [x4 > 0] - 0.3 x5^2 (x6..x9 are noise); event time
    T = scale (-log U / exp(lp))^(1 / shape), censoring C ~ Uniform(0, 1750 d); times are continuous, so almost
    every event time is unique.
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, N_FEATURES))
    lp = 0.7 * X[:, 0] - 0.5 * X[:, 1] + 0.4 * X[:, 2] * X[:, 3] + 0.6 * (X[:, 4] > 0) - 0.3 * X[:, 5] ** 2
    event_time = WEIBULL_SCALE_DAYS * (-np.log(rng.random(n)) / np.exp(lp)) ** (1 / WEIBULL_SHAPE)
    censor_time = rng.uniform(0, CENSORING_MAX_DAYS, n)
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(N_FEATURES)])
    frame["time"] = np.minimum(event_time, censor_time)
    frame["event"] = (event_time <= censor_time).astype(int)
    return frame


def _slope(points: list[tuple[int, float]]) -> float:
    if len(points) < 2:
        return DEFAULT_SLOPE
    (n0, v0), (n1, v1) = points[-2], points[-1]
    if v0 <= 0 or v1 <= 0 or n1 == n0:
        return DEFAULT_SLOPE
    return min(MAX_SLOPE, max(1.0, math.log(v1 / v0) / math.log(n1 / n0)))


def _extrapolate(points: list[tuple[int, float]], n: int, base: float = 0.0) -> float:
    """Power-law extrapolation of ``value - base`` through the last two points, plus ``base``."""
    above = [(size, value - base) for size, value in points]
    n_last, v_last = above[-1]
    return base + v_last * (n / n_last) ** _slope(above)


def _run_worker(impl: str, train_csv: Path, test_csv: Path, timeout: float, n_trees: int = N_TREES) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.speed_worker", impl, str(train_csv), str(test_csv), str(n_trees)]
    start = time.perf_counter()
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=False, cwd=Path(__file__).parent.parent
        )
    except subprocess.TimeoutExpired:
        return {"error": f"killed after {timeout:.0f} s (time limit)"}
    if done.returncode != 0:
        return {"error": f"exit {done.returncode}: {done.stderr.strip()[-800:]}"}
    out = json.loads(done.stdout.strip().splitlines()[-1])
    out["process_seconds"] = time.perf_counter() - start
    return out


def _summarize_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("fit_seconds", "predict_seconds", "predict_survival_1000_seconds", "peak_rss_bytes")
    summary: dict[str, Any] = {
        f"{k}_median": statistics.median([r[k] for r in runs]) for k in keys if all(k in r for r in runs)
    }
    for key in ("fit_rss_increase_bytes", "model_bytes", "c_harrell", "n_unique_times", "n_nodes"):
        if key in runs[0]:
            summary[key] = runs[0][key]
    summary["fit_seconds_all"] = [r["fit_seconds"] for r in runs]
    summary["runs"] = len(runs)
    return summary


def forest_scaling(
    settings: _common.Settings, ranger: str | None, on_progress: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Any]:
    """Fit every implementation at every size, smallest first, skipping what the extrapolation rules out.

    ``on_progress`` receives the report so far (``"complete": False``) after every configuration.
    """
    limit = MAX_SECONDS[settings.mode]
    implementations = [i for i in IMPLEMENTATIONS if i != "ranger" or ranger]
    results: dict[str, dict[str, Any]] = {impl: {} for impl in implementations}
    measured: dict[str, dict[str, list[tuple[int, float]]]] = {
        impl: {"seconds": [], "memory": []} for impl in implementations
    }
    skipped_from: dict[str, str] = {}
    baseline: dict[str, float] = {}
    data_dir = Path(tempfile.mkdtemp(prefix="carrisk-speed-"))
    try:
        test_csv = data_dir / "test.csv"
        synthetic_survival(TEST_ROWS, TEST_SEED).to_csv(test_csv, index=False, float_format="%.6f")
        censoring = {}
        for n in settings.speed_sizes:
            train = synthetic_survival(n, seed=n)
            censoring[n] = float(1 - train["event"].mean())
            train_csv = data_dir / f"train_{n}.csv"
            train.to_csv(train_csv, index=False, float_format="%.6f")
            for impl in implementations:
                entry: dict[str, Any] = {"n": n}
                if impl in skipped_from:
                    entry["skipped"] = skipped_from[impl]
                if measured[impl]["seconds"]:
                    seconds = _extrapolate(measured[impl]["seconds"], n)
                    memory = _extrapolate(measured[impl]["memory"], n, base=baseline.get(impl, 0.0))
                    entry["estimate"] = {
                        "fit_plus_predict_seconds": seconds,
                        "peak_rss_bytes": memory,
                        "rule": "power law through the last two measured sizes (slope clipped to [1, 2.5]; 2 after "
                        "one size); memory: the increase above the process baseline",
                    }
                    if "skipped" not in entry and (seconds > limit or memory > MAX_MEMORY_BYTES):
                        reason = (
                            f"estimated {seconds:.0f} s and {memory / 1e9:.1f} GB at n={n} "
                            f"(limits {limit:.0f} s per configuration, {MAX_MEMORY_BYTES / 1e9:.0f} GB)"
                        )
                        entry["skipped"] = reason
                        skipped_from[impl] = f"skipped at a smaller n: {reason}"
                if "skipped" in entry:
                    _common.log(f"speed: {impl} n={n} skipped ({entry['skipped']})")
                    results[impl][str(n)] = entry
                    continue
                runs = []
                for _ in range(settings.speed_runs):
                    _common.log(f"speed: {impl} n={n} run {len(runs) + 1}")
                    run = _run_worker(impl, train_csv, test_csv, timeout=limit + 120)
                    if "error" in run:
                        entry["error"] = run["error"]
                        skipped_from[impl] = f"failed at a smaller n: {run['error']}"
                        break
                    runs.append(run)
                    if run["fit_seconds"] > _common.SLOW_FIT_SECONDS:
                        entry["note"] = f"one run only: the fit took more than {_common.SLOW_FIT_SECONDS:.0f} s"
                        break
                if runs:
                    entry |= _summarize_runs(runs)
                    measured[impl]["seconds"].append(
                        (n, entry["fit_seconds_median"] + entry.get("predict_seconds_median", 0.0))
                    )
                    measured[impl]["memory"].append((n, entry["peak_rss_bytes_median"]))
                    baseline[impl] = min(r.get("baseline_rss_bytes", 0.0) for r in runs)
                results[impl][str(n)] = entry
                if on_progress is not None:
                    on_progress(_forest_report(results, ranger, censoring, limit) | {"complete": False})
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    return _forest_report(results, ranger, censoring, limit) | {"complete": True}


def _forest_report(
    results: dict[str, dict[str, Any]], ranger: str | None, censoring: dict[int, float], limit: float
) -> dict[str, Any]:
    return {
        "implementations": {
            "carrisk": "carrisk.models.SurvivalForest(max_times='auto'): 200-point event-time quantile grid",
            "sksurv_low_memory_false": "sksurv RandomSurvivalForest(low_memory=False): every unique time",
            "sksurv_low_memory_true": "sksurv RandomSurvivalForest(low_memory=True): no survival curves stored",
            "ranger": f"R ranger via Rscript ({ranger})" if ranger else "not available",
        },
        "forest_settings": {
            "n_estimators": N_TREES,
            "min_samples_leaf": MIN_SAMPLES_LEAF,
            "max_features": "sqrt",
            "threads": N_JOBS,
            "seed": FOREST_SEED,
        },
        "data": {
            "generator": "benchmarks.speed.synthetic_survival",
            "features": N_FEATURES,
            "weibull_shape": WEIBULL_SHAPE,
            "weibull_scale_days": WEIBULL_SCALE_DAYS,
            "censoring": f"Uniform(0, {CENSORING_MAX_DAYS:g} d)",
            "censored_share": censoring,
            "train_seed": "n",
            "test_rows": TEST_ROWS,
            "test_seed": TEST_SEED,
        },
        "limits": {"seconds_per_configuration": limit, "memory_bytes": MAX_MEMORY_BYTES},
        "timing": "fit and predict (risk of the held-out rows) wall time inside the worker, median over runs",
        "memory": "peak RSS (ru_maxrss) of a fresh process: interpreter, data and fit; ranger: the Rscript child",
        "results": results,
        "ratios": _ratios(results),
        "c_agreement": _c_agreement(results),
    }


def _ratios(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Peer / carrisk for fit time, predict time, peak memory and model size, per n where both were measured."""
    ratios: dict[str, Any] = {}
    for impl, rows in results.items():
        if impl == "carrisk":
            continue
        for n, row in rows.items():
            base = results["carrisk"].get(n, {})
            pairs = {
                "fit_seconds": ("fit_seconds_median", "fit_seconds_median"),
                "predict_seconds": ("predict_seconds_median", "predict_seconds_median"),
                "peak_rss": ("peak_rss_bytes_median", "peak_rss_bytes_median"),
                "model_bytes": ("model_bytes", "model_bytes"),
            }
            for name, (peer_key, base_key) in pairs.items():
                if peer_key in row and base_key in base and base[base_key]:
                    ratios.setdefault(impl, {}).setdefault(n, {})[name] = row[peer_key] / base[base_key]
    return ratios


def _c_agreement(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """carrisk (time grid) minus each peer's held-out Harrell C at every n where both ran."""
    out: dict[str, Any] = {"target": f"|carrisk - sksurv| <= {C_TARGET_TOLERANCE} at n = {C_TARGET_ROWS}"}
    for impl, rows in results.items():
        if impl == "carrisk":
            continue
        for n, row in rows.items():
            base = results["carrisk"].get(n, {})
            if "c_harrell" in row and "c_harrell" in base:
                out.setdefault("differences", {}).setdefault(impl, {})[n] = base["c_harrell"] - row["c_harrell"]
    sksurv = out.get("differences", {}).get("sksurv_low_memory_true") or out.get("differences", {}).get(
        "sksurv_low_memory_false", {}
    )
    if sksurv:
        largest = max(sksurv, key=int)
        out["largest_n_with_sksurv"] = int(largest)
        out["difference_at_largest_n"] = sksurv[largest]
        out["within_tolerance_at_largest_n"] = abs(sksurv[largest]) <= C_TARGET_TOLERANCE
        if int(largest) < C_TARGET_ROWS:
            at_target = results.get("sksurv_low_memory_true", {}).get(str(C_TARGET_ROWS))
            reason = (at_target or {}).get("skipped") or (at_target or {}).get("error")
            out["note"] = (
                f"scikit-survival was not run at n = {C_TARGET_ROWS}: {reason}"
                if at_target
                else f"n = {C_TARGET_ROWS} is not among this mode's sizes"
            )
    return out


def _flchain_split(max_rows: int | None, directory: Path) -> tuple[Path, Path, dict[str, Any]]:
    """flchain as numbers (one-hot categories, creatinine imputed by the training median), split 75/25."""
    from sklearn.model_selection import train_test_split

    from carrisk.datasets import load_public_dataset

    table = load_public_dataset("flchain")
    if max_rows is not None and len(table) > max_rows:
        table = table.sample(n=max_rows, random_state=GRID_SPLIT_SEED).reset_index(drop=True)
    design = pd.get_dummies(table.drop(columns=["time", "event"]), drop_first=True, dtype=float)
    design[["time", "event"]] = table[["time", "event"]]
    train, test = train_test_split(design, test_size=0.25, stratify=design["event"], random_state=GRID_SPLIT_SEED)
    medians = train.median(numeric_only=True)
    paths = directory / "flchain_train.csv", directory / "flchain_test.csv"
    for frame, path in zip((train, test), paths, strict=True):
        frame.fillna(medians).to_csv(path, index=False)
    info = {
        "rows": len(design),
        "train_rows": len(train),
        "test_rows": len(test),
        "censored_share": float(1 - design["event"].mean()),
        "preparation": "chapter dropped (leaks the outcome), categories one-hot (first level dropped), creatinine "
        f"imputed by the training median; stratified 75/25 split, seed {GRID_SPLIT_SEED}",
    }
    return *paths, info


def time_grid_targets(settings: _common.Settings) -> dict[str, Any]:
    """The issue's targets for the time grid: flchain and a 20,000-row synthetic table, carrisk vs sksurv defaults.

    Both forests get the same trees, leaf size, features per split, threads and seed; carrisk's differs only in
    ``max_times="auto"``. Runs: ``settings.speed_runs`` per forest, one when a fit takes longer than
    ``SLOW_FIT_SECONDS``.
    """
    report: dict[str, Any] = {
        "targets": {
            "fit_speedup": f">= {GRID_TARGETS['fit_speedup']:g}x faster fit than sksurv low_memory=False",
            "memory_ratio": f">= {GRID_TARGETS['memory_ratio']:g}x smaller peak memory (reported as the whole "
            "process's peak RSS and as the fit's increase above the process's RSS before the fit)",
            "model_size_ratio": f">= {GRID_TARGETS['model_size_ratio']:g}x smaller pickled model",
            "c_tolerance": f"|held-out Harrell C difference| <= {GRID_TARGETS['c_tolerance']}",
        },
        "datasets": {},
    }
    directory = Path(tempfile.mkdtemp(prefix="carrisk-grid-"))
    try:
        for name, (rows, trees) in GRID_TARGET_SIZES[settings.mode].items():
            if name == "flchain":
                train_csv, test_csv, info = _flchain_split(rows, directory)
            else:
                train_csv, test_csv = directory / "synthetic_train.csv", directory / "synthetic_test.csv"
                train = synthetic_survival(rows, seed=rows)
                train.to_csv(train_csv, index=False, float_format="%.6f")
                synthetic_survival(TEST_ROWS, TEST_SEED).to_csv(test_csv, index=False, float_format="%.6f")
                info = {
                    "rows": rows,
                    "train_rows": rows,
                    "test_rows": TEST_ROWS,
                    "censored_share": float(1 - train["event"].mean()),
                    "preparation": f"benchmarks.speed.synthetic_survival(n, seed=n), test seed {TEST_SEED}",
                }
            entry: dict[str, Any] = info | {"n_estimators": trees, "results": {}}
            for impl in ("carrisk", "sksurv_low_memory_false"):
                runs = []
                for _ in range(settings.speed_runs):
                    _common.log(f"time grid target: {name} ({rows or 'all'} rows, {trees} trees) {impl}")
                    run = _run_worker(impl, train_csv, test_csv, timeout=3600, n_trees=trees)
                    if "error" in run:
                        entry["results"][impl] = {"error": run["error"]}
                        break
                    runs.append(run)
                    if run["fit_seconds"] > _common.SLOW_FIT_SECONDS:
                        break
                if runs:
                    entry["results"][impl] = _summarize_runs(runs)
            entry |= _grid_target_check(entry["results"])
            report["datasets"][name] = entry
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return report


def _grid_target_check(results: dict[str, Any]) -> dict[str, Any]:
    ours, peer = results.get("carrisk", {}), results.get("sksurv_low_memory_false", {})
    if "fit_seconds_median" not in ours or "fit_seconds_median" not in peer:
        return {"met": None, "note": "not both forests ran: " + "; ".join(str(r.get("error")) for r in (ours, peer))}
    ratios = {
        "fit_speedup": peer["fit_seconds_median"] / ours["fit_seconds_median"],
        "peak_rss_ratio": peer["peak_rss_bytes_median"] / ours["peak_rss_bytes_median"],
        "fit_memory_increase_ratio": peer["fit_rss_increase_bytes"] / max(ours["fit_rss_increase_bytes"], 1),
        "model_size_ratio": peer["model_bytes"] / ours["model_bytes"],
        "c_difference": ours["c_harrell"] - peer["c_harrell"],
    }
    met = {
        "fit_speedup": ratios["fit_speedup"] >= GRID_TARGETS["fit_speedup"],
        "peak_rss": ratios["peak_rss_ratio"] >= GRID_TARGETS["memory_ratio"],
        "fit_memory_increase": ratios["fit_memory_increase_ratio"] >= GRID_TARGETS["memory_ratio"],
        "model_size": ratios["model_size_ratio"] >= GRID_TARGETS["model_size_ratio"],
        "c": abs(ratios["c_difference"]) <= GRID_TARGETS["c_tolerance"],
    }
    return {"ratios": ratios, "met": met}


def run(settings: _common.Settings, out_dir: Path = _common.RESULTS_DIR) -> dict[str, Any]:
    """Run the speed part and write ``speed.json``."""
    ranger = _common.r_version()
    result = _common.header(
        "speed",
        settings,
        {"forest": FOREST_SEED, "train_data": "n (the training size)", "test_data": TEST_SEED},
        with_r=True,
    )
    if ranger is None:
        result["ranger"] = "Rscript with ranger not found (apt-get install r-cran-ranger); ranger not timed"
    result["time_grid_targets"] = time_grid_targets(settings)
    _common.write_json(out_dir / "speed.json", result)

    def checkpoint(forests: dict[str, Any]) -> None:
        _common.write_json(out_dir / "speed.json", result | {"forests": forests})

    result["forests"] = forest_scaling(settings, ranger, on_progress=checkpoint)
    _common.write_json(out_dir / "speed.json", result)
    return result
