"""One random-survival-forest fit in a fresh process: time, peak memory, model size and held-out C.

Run by :mod:`benchmarks.speed` as ``python -m benchmarks.speed_worker IMPL TRAIN_CSV TEST_CSV [N_TREES]``; prints
one JSON line. Each configuration runs in its own process so that the peak resident set size (``ru_maxrss``) belongs to
that fit alone. For ``ranger`` the fit runs in an ``Rscript`` child and its peak is read from
``RUSAGE_CHILDREN`` (this process has no other child).
"""

from __future__ import annotations

import json
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil

N_TREES = 100
MIN_SAMPLES_LEAF = 15
N_JOBS = 2
FOREST_SEED = 0
IMPLEMENTATIONS = ("carrisk", "sksurv_low_memory_false", "sksurv_low_memory_true", "ranger")

RANGER_SCRIPT = r"""
suppressPackageStartupMessages(library(ranger))
args <- commandArgs(trailingOnly = TRUE)
train <- read.csv(args[1]); test <- read.csv(args[2])
t0 <- proc.time()[["elapsed"]]
fit <- ranger(dependent.variable.name = "time", status.variable.name = "event", data = train,
              num.trees = as.integer(args[4]), min.node.size = as.integer(args[5]), num.threads = as.integer(args[6]),
              seed = as.integer(args[7]), oob.error = FALSE, verbose = FALSE)
t1 <- proc.time()[["elapsed"]]
pred <- predict(fit, data = test, num.threads = as.integer(args[6]))
risk <- rowSums(pred$chf)
t2 <- proc.time()[["elapsed"]]
model_file <- tempfile(fileext = ".rds"); saveRDS(fit, model_file, compress = FALSE)
write.csv(data.frame(risk = risk), args[3], row.names = FALSE)
cat(sprintf('{"fit_seconds": %.6f, "predict_seconds": %.6f, "model_bytes": %.0f, "n_unique_times": %d}\n',
            t1 - t0, t2 - t1, file.info(model_file)$size, length(fit$unique.death.times)))
"""


class _ByteCounter:
    """A write-only file that only counts bytes: the pickle size without holding the pickle in memory."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, chunk: Any) -> int:
        size = memoryview(chunk).nbytes  # bytes, or a PickleBuffer (protocol 5 out-of-band data)
        self.size += size
        return size


def _pickle_size(model: Any) -> int:
    counter = _ByteCounter()
    pickle.dump(model, counter, protocol=pickle.HIGHEST_PROTOCOL)
    return counter.size


def _peak_rss_bytes(who: int = resource.RUSAGE_SELF) -> int:
    return resource.getrusage(who).ru_maxrss * 1024  # kilobytes on Linux


def _harrell(test: pd.DataFrame, risk: np.ndarray) -> float:
    """Harrell's C with scikit-survival's function for every implementation (imported by the forests anyway;
    carrisk is not imported by the peers' workers, to keep their start-up cost out of the comparison)."""
    from sksurv.metrics import concordance_index_censored

    return float(concordance_index_censored(test["event"].to_numpy(bool), test["time"].to_numpy(float), risk)[0])


def run_python(impl: str, train: pd.DataFrame, test: pd.DataFrame, n_trees: int = N_TREES) -> dict[str, Any]:
    """Fit and time one of the Python forests on already loaded data."""
    from sksurv.ensemble import RandomSurvivalForest
    from sksurv.util import Surv

    features = [c for c in train.columns if c not in ("time", "event")]
    X_train, X_test = train[features].to_numpy(float), test[features].to_numpy(float)
    y_train = Surv.from_arrays(train["event"].to_numpy(bool), train["time"].to_numpy(float))
    common = {
        "n_estimators": n_trees,
        "min_samples_leaf": MIN_SAMPLES_LEAF,
        "n_jobs": N_JOBS,
        "random_state": FOREST_SEED,
    }
    if impl == "carrisk":
        from carrisk.models import SurvivalForest

        model: Any = SurvivalForest(max_times="auto", **common)
    else:
        model = RandomSurvivalForest(low_memory=impl == "sksurv_low_memory_true", **common)
    baseline = psutil.Process().memory_info().rss
    start = time.perf_counter()
    model.fit(X_train, y_train)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    risk = model.predict(X_test)
    predict_seconds = time.perf_counter() - start
    out: dict[str, Any] = {"fit_seconds": fit_seconds, "predict_seconds": predict_seconds}
    if impl != "sksurv_low_memory_true":  # low_memory=True keeps no survival curves
        start = time.perf_counter()
        model.predict_survival_function(X_test[:1000], return_array=True)
        out["predict_survival_1000_seconds"] = time.perf_counter() - start
    peak = _peak_rss_bytes()
    forest = model.forest_ if impl == "carrisk" else model
    out |= {
        "peak_rss_bytes": peak,
        "baseline_rss_bytes": baseline,
        "fit_rss_increase_bytes": peak - baseline,
        "c_harrell": _harrell(test, risk),
        "n_unique_times": len(model.unique_times_),
        "n_nodes": int(sum(tree.tree_.node_count for tree in forest.estimators_)),
        "model_bytes": _pickle_size(model),
    }
    return out


def run_ranger(train_csv: Path, test_csv: Path, n_trees: int = N_TREES) -> dict[str, Any]:
    """Fit and time ranger's survival forest in an Rscript child on the same CSV files."""
    test = pd.read_csv(test_csv)
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "ranger_fit.R"
        script.write_text(RANGER_SCRIPT)
        predictions = Path(tmp) / "risk.csv"
        args = [train_csv, test_csv, predictions, n_trees, MIN_SAMPLES_LEAF, N_JOBS, FOREST_SEED]
        start = time.perf_counter()
        done = subprocess.run(
            ["Rscript", str(script), *map(str, args)], capture_output=True, text=True, check=False, timeout=3600
        )
        wall = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"Rscript failed ({done.returncode}): {done.stderr.strip()[-500:]}")
        out = json.loads(done.stdout.strip().splitlines()[-1])
        risk = pd.read_csv(predictions)["risk"].to_numpy(float)
    out |= {
        "peak_rss_bytes": _peak_rss_bytes(resource.RUSAGE_CHILDREN),
        "process_wall_seconds": wall,
        "c_harrell": _harrell(test, risk),
        "model_bytes_note": "saveRDS(compress = FALSE) size of the ranger object",
    }
    return out


def main(argv: list[str]) -> None:
    impl, train_csv, test_csv = argv[0], Path(argv[1]), Path(argv[2])
    n_trees = int(argv[3]) if len(argv) > 3 else N_TREES
    if impl not in IMPLEMENTATIONS:
        raise SystemExit(f"unknown implementation {impl!r}; choose one of {', '.join(IMPLEMENTATIONS)}")
    if impl == "ranger":
        result = run_ranger(train_csv, test_csv, n_trees)
    else:
        result = run_python(impl, pd.read_csv(train_csv), pd.read_csv(test_csv), n_trees)
    result["n_trees"] = n_trees
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
