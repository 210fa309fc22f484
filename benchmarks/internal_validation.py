"""Bootstrap optimism correction on the simulator: are the corrected figures closer to the truth?

    python -m benchmarks.internal_validation            # 10 development cohorts x 200 refits (long: about 1 h)
    python -m benchmarks.internal_validation --quick    # 3 cohorts x 20 refits

Each replicate r draws a development cohort (``simulate_cohort(420, seed=70_000 + r)``), fits the tuned elastic-net
Cox model on it and runs :func:`carrisk.internal_validation.bootstrap_optimism`. The fitted model's *true*
performance in new patients of the same population is measured on one large independent cohort (n=5,000,
seed 80,000). For each measure (Harrell's C, calibration slope, calibration-in-the-large at 12 months) the script
reports the mean absolute error of the apparent and of the optimism-corrected figure against that truth.

Writes ``results/internal_validation.json`` and ``results/internal_validation.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import _common
from carrisk import simulate_cohort, survival_target
from carrisk._io import atomic_write_text
from carrisk.internal_validation import MEASURES, bootstrap_optimism, performance
from carrisk.schema import TWELVE_MONTHS_DAYS
from carrisk.tuning import final_pipeline, tuned_model

RESULTS = Path(__file__).parent / "results"
N_DEVELOPMENT, N_TRUTH = 420, 5000
DEVELOPMENT_SEED_BASE, TRUTH_SEED = 70_000, 80_000
MODEL = "coxnet"


def run(replicates: int, refits: int, checkpoint: Any = None) -> list[dict[str, Any]]:
    """Run the replicates; ``checkpoint(rows)`` (if given) is called after each one, so a long run keeps its work."""
    truth_cohort = simulate_cohort(N_TRUTH, seed=TRUTH_SEED)
    truth_y = survival_target(truth_cohort.records)
    rows = []
    for r in range(replicates):
        started = time.perf_counter()
        development = simulate_cohort(N_DEVELOPMENT, seed=DEVELOPMENT_SEED_BASE + r)
        y = survival_target(development.records)
        result = bootstrap_optimism(development.records, y, MODEL, n_bootstrap=refits, seed=r)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitted = final_pipeline(tuned_model(MODEL, random_state=r).fit(development.records, y))
        true = performance(fitted, truth_cohort.records, truth_y, TWELVE_MONTHS_DAYS)
        summary = result.summary.set_index("measure")
        rows.append(
            {
                "replicate": r,
                "apparent": {m: float(summary.loc[m, "apparent"]) for m in MEASURES},
                "corrected": {m: float(summary.loc[m, "corrected"]) for m in MEASURES},
                "true": true,
                "refits_used": int(summary["n_bootstrap"].min()),
                "seconds": time.perf_counter() - started,
            }
        )
        _common.log(f"replicate {r}: {rows[-1]['seconds']:.0f} s")
        if checkpoint is not None:
            checkpoint(rows)
    return rows


def markdown(payload: dict[str, Any]) -> str:
    rows = payload["replicates"]
    lines = [
        "# Bootstrap optimism correction against the truth",
        "",
        f"`python -m benchmarks.internal_validation` ({payload['mode']}: {len(rows)} development cohorts of "
        f"{N_DEVELOPMENT}, {payload['refits']} refits each, {payload['date']}); model: tuned {MODEL}; truth: the "
        f"fitted model on {N_TRUTH} new patients.",
        "",
        "| measure | mean apparent | mean corrected | mean true | MAE apparent | MAE corrected | corrected closer |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in MEASURES:
        apparent = np.array([row["apparent"][m] for row in rows])
        corrected = np.array([row["corrected"][m] for row in rows])
        true = np.array([row["true"][m] for row in rows])
        closer = np.mean(np.abs(corrected - true) < np.abs(apparent - true))
        lines.append(
            f"| {m} | {apparent.mean():.3f} | {corrected.mean():.3f} | {true.mean():.3f} | "
            f"{np.abs(apparent - true).mean():.3f} | {np.abs(corrected - true).mean():.3f} | {closer:.0%} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 cohorts x 20 refits")
    args = parser.parse_args()
    replicates, refits = (3, 20) if args.quick else (10, 200)
    started = time.perf_counter()
    mode = "quick" if args.quick else "full"

    def write(rows: list[dict[str, Any]]) -> dict[str, Any]:
        payload = {
            "part": "internal_validation",
            "mode": mode if len(rows) == replicates else f"{mode}, {len(rows)} of {replicates} cohorts done",
            "refits": refits,
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "machine": _common.machine(),
            "seeds": {"development_base": DEVELOPMENT_SEED_BASE, "truth": TRUTH_SEED},
            "seconds": time.perf_counter() - started,
            "replicates": rows,
        }
        _common.write_json(RESULTS / "internal_validation.json", payload)
        atomic_write_text(RESULTS / "internal_validation.md", markdown(payload))
        return payload

    print(markdown(write(run(replicates, refits, checkpoint=write))))


if __name__ == "__main__":
    main()
