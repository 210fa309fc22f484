"""What the allow-listed unpickler costs: loading the shipped model with and without it.

    python -m benchmarks.bundle_load [--runs 7]

Loads ``carrisk.default_model_path()`` with ``carrisk.load_model`` (checksum, version check, allow-listed
unpickling, carrisk-model check) and with ``load_model(..., trusted=True)`` (the same, but plain ``joblib.load``),
alternating, after one untimed load of each; reports the median seconds and their ratio. Writes
``benchmarks/results/bundle_load.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time

from benchmarks import _common
from carrisk import default_model_path, load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="Timed loads of each kind.")
    args = parser.parse_args()
    path = default_model_path()
    seconds: dict[str, list[float]] = {"allow_list": [], "plain_joblib": []}
    load_model(path)
    load_model(path, trusted=True)
    for _ in range(args.runs):
        for kind, trusted in (("allow_list", False), ("plain_joblib", True)):
            start = time.perf_counter()
            load_model(path, trusted=trusted)
            seconds[kind].append(time.perf_counter() - start)
    medians = {kind: statistics.median(values) for kind, values in seconds.items()}
    summary = {
        "payload_bytes": (path / "model.joblib").stat().st_size,
        "median_seconds": medians,
        "ratio_allow_list_to_plain": medians["allow_list"] / medians["plain_joblib"],
    }
    _common.log(str(summary))
    _common.write_json(
        _common.RESULTS_DIR / "bundle_load.json",
        {
            "part": "bundle_load",
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "machine": _common.machine(),
            "versions": _common.package_versions(),
            "command": f"python -m benchmarks.bundle_load --runs {args.runs}",
            "summary": summary,
            "seconds": seconds,
        },
    )


if __name__ == "__main__":
    main()
