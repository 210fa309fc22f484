"""Shared pieces of the benchmark parts: run settings per mode, machine description, JSON output, timing."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from carrisk.provenance import package_versions

RESULTS_DIR = Path(__file__).parent / "results"
PARTS = ("accuracy", "nested_cv", "speed", "explain", "latency", "cv_coverage", "truth", "scale")
#: Peer packages whose versions every JSON file records, besides carrisk's own dependencies.
PEER_PACKAGES = ("xgboost", "numba", "survshap", "psutil", "joblib", "matplotlib")
N_CORES = 2


@dataclass(frozen=True)
class Settings:
    """What one mode runs; recorded in every JSON file so that a number can be traced to its settings."""

    mode: str
    folds: int
    repeats: int
    flchain_rows: int | None  # None = the full 7,874 rows
    speed_sizes: tuple[int, ...]
    speed_runs: int  # fresh processes per configuration (the median is reported)
    speed_runs_slow: int  # the same for a configuration whose first run took more than SLOW_FIT_SECONDS
    nested_cv_repeats: int
    nested_cv_runs: int
    latency_single_runs: int
    latency_batch_rows: int
    latency_batch_rows_with_reasons: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


QUICK = Settings(
    mode="quick",
    folds=3,
    repeats=1,
    flchain_rows=1000,
    speed_sizes=(420, 1_000),
    speed_runs=1,
    speed_runs_slow=1,
    nested_cv_repeats=1,
    nested_cv_runs=1,
    latency_single_runs=20,
    latency_batch_rows=10_000,
    latency_batch_rows_with_reasons=1_000,
)
FULL = Settings(
    mode="full",
    folds=5,
    repeats=3,
    flchain_rows=None,
    speed_sizes=(420, 2_000, 5_000, 10_000, 20_000, 50_000),
    speed_runs=3,
    speed_runs_slow=1,
    nested_cv_repeats=3,
    nested_cv_runs=3,
    latency_single_runs=50,
    latency_batch_rows=10_000,
    latency_batch_rows_with_reasons=10_000,
)
#: A configuration whose first fit took longer than this is not repeated in full mode (said in the JSON).
SLOW_FIT_SECONDS = 30.0


def r_version() -> str | None:
    """``R.version.string`` and ranger's version when Rscript is on the PATH, else None."""
    try:
        out = subprocess.run(
            ["Rscript", "-e", 'cat(R.version.string, "| ranger", as.character(packageVersion("ranger")))'],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def machine() -> dict[str, Any]:
    """Platform, processor, CPU count and total memory of this machine."""
    cpu_model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu_model = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "platform": platform.platform(),
        "processor": cpu_model,
        "cpu_count": os.cpu_count(),
        "cpus_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "total_memory_gb": round(psutil.virtual_memory().total / 1e9, 2),
        "python": platform.python_version(),
        # other work on a shared machine inflates wall times: the 1-minute load average when the part started
        "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }


def header(part: str, settings: Settings, seeds: dict[str, int], *, with_r: bool = False) -> dict[str, Any]:
    """The provenance block every result file starts with."""
    versions = package_versions(extra=PEER_PACKAGES)
    if with_r:
        versions["R"] = r_version() or "not available"
    return {
        "part": part,
        "mode": settings.mode,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions,
        "seeds": seeds,
        "settings": settings.to_dict(),
    }


def _clean(value: Any) -> Any:
    """JSON-safe copy: numpy scalars to Python, NaN/inf to None."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_clean(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` as indented JSON, atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(_clean(payload), indent=2) + "\n")
    partial.replace(path)


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON at ``path``, or None if there is none."""
    return json.loads(path.read_text()) if path.exists() else None


def median_time(fn: Callable[[], Any], runs: int, warmup: bool = False) -> tuple[float, list[float]]:
    """Median wall-clock seconds of ``fn()`` over ``runs`` calls (after one untimed call with ``warmup``)."""
    if warmup:
        fn()
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), seconds


def log(message: str) -> None:
    """Progress line on stdout with the wall-clock time (the full run is followed through its log file)."""
    print(f"[{dt.datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)
