"""Harrell's C at scale: carrisk's O(n log n) ``harrell_c`` against scikit-survival's pairwise count.

    python -m benchmarks.harrell_speed [--sizes 2000,20000,200000]

Times both on the same simulated data with tied times and tied risks (exponential times rounded to 0.01, risks
rounded to 0.1, half censored; seed 7), checks they agree to 1e-9 where scikit-survival was run, and writes
``benchmarks/results/harrell_speed.json``. scikit-survival is skipped above 50,000 patients (minutes per call).
Timings are measurements, never pass/fail; the test-suite checks the algorithm's growth by counting executed
lines and peak memory instead (``tests/test_metrics.py``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

import numpy as np
from sksurv.metrics import concordance_index_censored

from benchmarks import _common
from carrisk.metrics import harrell_c

SEED = 7
SKSURV_MAX_N = 50_000


def tied_data(n: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Event, time and risk of ``n`` simulated patients, with many tied times and risks."""
    rng = np.random.default_rng(seed)
    time_ = np.round(rng.exponential(size=n), 2)
    event = rng.random(n) < 0.5
    risk = np.round(-time_ + rng.normal(size=n), 1)
    return event, time_, risk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="2000,20000,200000", help="Comma-separated numbers of patients.")
    args = parser.parse_args()
    rows = []
    for n in (int(size) for size in args.sizes.split(",")):
        event, time_, risk = tied_data(n)
        start = time.perf_counter()
        ours = harrell_c(event, time_, risk)
        row = {"n": n, "carrisk_seconds": time.perf_counter() - start, "harrell_c": ours}
        if n <= SKSURV_MAX_N:
            start = time.perf_counter()
            reference = concordance_index_censored(event, time_, risk)[0]
            row |= {"sksurv_seconds": time.perf_counter() - start, "abs_difference": abs(ours - reference)}
            assert abs(ours - reference) < 1e-9, row
        _common.log(str(row))
        rows.append(row)
    payload = {
        "part": "harrell_speed",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": _common.machine(),
        "versions": _common.package_versions(),
        "seeds": {"data": SEED},
        "command": "python -m benchmarks.harrell_speed --sizes " + args.sizes,
        "rows": rows,
    }
    _common.write_json(_common.RESULTS_DIR / "harrell_speed.json", payload)


if __name__ == "__main__":
    main()
