"""The optimism-corrected calibration curve against the truth: is it closer than the apparent curve?

    python -m benchmarks.internal_calibration            # 10 development cohorts x 200 refits (long)
    python -m benchmarks.internal_calibration --quick    # 4 cohorts x 20 refits (a few minutes)
    python -m benchmarks.internal_calibration --models coxnet --replicates 6   # 200 refits, one model

The results are written after every replicate (an interrupted run keeps what it finished).

Each replicate r draws a development cohort (``simulate_cohort(200, seed=90_000 + r)``) and runs
:func:`carrisk.internal_validation.bootstrap_optimism` with the tuned model. The fitted model's *true*
calibration curve is its smoothed calibration (the same spline Cox model) on one large independent cohort of the
same population (n=5,000, seed 95,000), read on the same grid of predicted 12-month event probabilities. The
script reports, per model, the mean over the grid of |curve - true curve| for the apparent and the corrected curve.

Writes ``results/internal_calibration.json`` and ``results/internal_calibration.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import _common
from carrisk import simulate_cohort, survival_target
from carrisk._io import atomic_write_text
from carrisk.calibration import calibration_curve
from carrisk.internal_validation import bootstrap_optimism
from carrisk.schema import TWELVE_MONTHS_DAYS
from carrisk.tuning import final_pipeline, tuned_model

RESULTS = Path(__file__).parent / "results"
N_DEVELOPMENT, N_TRUTH = 200, 5000
DEVELOPMENT_SEED_BASE, TRUTH_SEED = 90_000, 95_000
MODELS = ("coxnet", "rsf")


def _true_curve(model: str, seed: int, development: Any, truth: Any, grid: np.ndarray) -> np.ndarray:
    y = survival_target(development.records)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = final_pipeline(tuned_model(model, random_state=seed).fit(development.records, y))
        design = fitted[:-1].transform(truth.records)
        efs = fitted[-1].predict_survival_matrix(design, np.array([TWELVE_MONTHS_DAYS]))[:, 0]
        truth_y = survival_target(truth.records)
        curve = calibration_curve(truth_y["event"], truth_y["time"], efs, TWELVE_MONTHS_DAYS, grid=grid)
    return curve["observed"].to_numpy()


def run(replicates: int, refits: int, models: tuple[str, ...] = MODELS, done: Any = None) -> list[dict[str, Any]]:
    """Every replicate and model; ``done(rows)`` is called after each one (to write what is finished)."""
    truth = simulate_cohort(N_TRUTH, seed=TRUTH_SEED)
    rows: list[dict[str, Any]] = []
    for r in range(replicates):
        development = simulate_cohort(N_DEVELOPMENT, seed=DEVELOPMENT_SEED_BASE + r)
        y = survival_target(development.records)
        for model in models:
            started = time.perf_counter()
            result = bootstrap_optimism(development.records, y, model, n_bootstrap=refits, seed=r)
            curve = result.calibration_curve
            grid = curve["predicted"].to_numpy()
            true = _true_curve(model, r, development, truth, grid)
            rows.append(
                {
                    "replicate": r,
                    "model": model,
                    "grid": grid.tolist(),
                    "apparent": curve["apparent"].tolist(),
                    "corrected": curve["corrected"].tolist(),
                    "true": true.tolist(),
                    "mae_apparent": float(np.mean(np.abs(curve["apparent"] - true))),
                    "mae_corrected": float(np.mean(np.abs(curve["corrected"] - true))),
                    "refits_used": int(curve["n_bootstrap"].min()),
                    "seconds": time.perf_counter() - started,
                }
            )
            _common.log(f"replicate {r} {model}: {rows[-1]['seconds']:.0f} s")
            if done is not None:
                done(rows)
    return rows


def markdown(payload: dict[str, Any]) -> str:
    rows = payload["replicates"]
    lines = [
        "# Optimism-corrected calibration curve against the truth",
        "",
        f"`{payload.get('command', 'python -m benchmarks.internal_calibration')}` ({payload['mode']}: "
        f"{len({row['replicate'] for row in rows})} of {payload['n_replicates']} development "
        f"cohorts of {N_DEVELOPMENT}, {payload['refits']} refits each, {payload['date']}); truth: each fitted "
        f"model's smoothed calibration curve on {N_TRUTH} new patients, on the same grid of predicted 12-month "
        "event probabilities. Error: mean over the grid of |curve - true curve| (event-probability points).",
        "",
        "| model | mean error, apparent curve | mean error, corrected curve | corrected closer |",
        "|---|---|---|---|",
    ]
    for model in dict.fromkeys(row["model"] for row in rows):
        mine = [row for row in rows if row["model"] == model]
        apparent = np.array([row["mae_apparent"] for row in mine])
        corrected = np.array([row["mae_corrected"] for row in mine])
        lines.append(
            f"| tuned {model} | {apparent.mean():.3f} | {corrected.mean():.3f} | "
            f"{np.mean(corrected < apparent):.0%} of {len(mine)} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="4 cohorts x 20 refits")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated, from " + ", ".join(MODELS))
    parser.add_argument("--replicates", type=int, default=None, help="development cohorts (default 10; quick 4)")
    args = parser.parse_args()
    replicates, refits = (4, 20) if args.quick else (10, 200)
    replicates = args.replicates or replicates
    models = tuple(m for m in args.models.split(",") if m)
    if not set(models) <= set(MODELS):
        parser.error(f"--models: choose from {', '.join(MODELS)}")
    started = time.perf_counter()
    command = " ".join(["python -m benchmarks.internal_calibration", *sys.argv[1:]])

    def write(rows: list[dict[str, Any]]) -> dict[str, Any]:
        payload = {
            "part": "internal_calibration",
            "mode": "quick" if args.quick else "full",
            "command": command,
            "n_replicates": replicates,
            "refits": refits,
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "machine": _common.machine(),
            "seeds": {"development_base": DEVELOPMENT_SEED_BASE, "truth": TRUTH_SEED},
            "seconds": time.perf_counter() - started,
            "replicates": rows,
        }
        _common.write_json(RESULTS / "internal_calibration.json", payload)
        atomic_write_text(RESULTS / "internal_calibration.md", markdown(payload))
        return payload

    print(markdown(write(run(replicates, refits, models, done=write))))


if __name__ == "__main__":
    main()
