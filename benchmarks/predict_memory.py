"""Peak memory of ``carrisk predict`` on a large file (issue 12, defect 8: memory bounded by the chunk size).

Simulates ``--rows`` patients (seed 1), then runs ``carrisk predict FILE --skip-invalid --out PRED.csv`` with the
shipped model in a fresh process and reads its peak resident set size from the operating system
(``getrusage(RUSAGE_CHILDREN).ru_maxrss``, the figure ``/usr/bin/time -v`` reports).

Run: ``nice -n 10 python -m benchmarks.predict_memory [--rows 100000]`` (about 7 minutes on a busy 2-core machine
for 100,000 rows). Writes ``benchmarks/results/predict_memory.json``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from carrisk._io import atomic_write_text, write_csv
from carrisk.bundle import read_manifest
from carrisk.predict import PREDICT_CHUNK_ROWS
from carrisk.shipped import default_model_path
from carrisk.simulate import simulate_cohort

RESULTS = Path(__file__).parent / "results"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS / "predict_memory.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        patients, predictions = Path(tmp) / "patients.csv", Path(tmp) / "predictions.csv"
        write_csv(patients, simulate_cohort(n=args.rows, seed=args.seed).records)
        command = [sys.executable, "-m", "carrisk", "predict", str(patients), "--skip-invalid"]
        command += ["--out", str(predictions)]
        start = time.perf_counter()
        run = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
        seconds = time.perf_counter() - start
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # Linux: KiB
        with open(predictions, encoding="utf-8") as handle:
            predicted = sum(1 for _ in handle) - 1
    manifest = read_manifest(default_model_path())
    result = {
        "model": manifest["model"]["model"],
        "model_sha256": manifest["payload"]["sha256"],
        "rows": args.rows,
        "seed": args.seed,
        "chunk_rows": PREDICT_CHUNK_ROWS,
        "exit_code": run.returncode,
        "predicted_rows": predicted,
        "peak_rss_gib": round(peak_kib / 1024**2, 3),
        "seconds": round(seconds, 1),
        "stderr_tail": run.stderr[-500:],
    }
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
