"""Model updating at a simulated external centre: does the recommended update fix calibration?

    python -m benchmarks.external_validation            # 20 replicates per scenario (about 10 minutes on 2 cores)
    python -m benchmarks.external_validation --quick    # 3 replicates

For each replicate r and scenario, two independent cohorts are drawn from the same external centre: an update
cohort (n=600, seed 50,000 + r) on which ``carrisk.update_model`` chooses and fits the update by the closed test,
and a validation cohort (n=1,000, seed 60,000 + r) on which the shipped model and the updated model are compared:

* calibration-in-the-large against the truth: mean true minus mean predicted event probability by 6 and 12 months
  (the simulator knows every patient's true EFS), and against the Kaplan-Meier estimate;
* the calibration slope at 12 months (Cox model on log(-log S)) with its Wald 95% interval, for the model and for
  the true probabilities themselves (a perfectly calibrated prediction);
* Harrell's C of the 12-month event probability.

Scenarios: ``baseline`` (post-remission baseline hazard x 1.8, same case-mix) and ``shifted`` (the ``shifted``
preset: more blinatumomab exposure and high burden, mostly tisagenlecleucel, baseline x 1.6, CR log-odds - 0.5).

Writes ``results/external_validation.json`` and ``results/external_validation.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import _common
from carrisk import load_model
from carrisk._io import atomic_write_text
from carrisk.evaluate import calibration_slope, observed_expected
from carrisk.metrics import harrell_c
from carrisk.schema import SIX_MONTHS_DAYS, TWELVE_MONTHS_DAYS
from carrisk.simulate import EXTERNAL_CENTRES, simulate_cohort
from carrisk.updating import update_model

RESULTS = Path(__file__).parent / "results"
MODEL_DIR = Path(__file__).parent.parent / "models" / "default"
N_UPDATE, N_VALIDATION = 600, 1000
UPDATE_SEED_BASE, VALIDATION_SEED_BASE = 50_000, 60_000
SCENARIOS: dict[str, dict[str, Any]] = {
    "baseline": {"baseline_hazard_multiplier": 1.8},
    "shifted": EXTERNAL_CENTRES["shifted"],
}
HORIZONS = (SIX_MONTHS_DAYS, TWELVE_MONTHS_DAYS)


def _measures(model: Any, validation: Any) -> dict[str, Any]:
    records = validation.records
    event = records["efs_event"].to_numpy(dtype=bool)
    time_days = records["efs_days"].to_numpy(dtype=float)
    surv = model.predict_survival(records, list(HORIZONS))
    truth = validation.truth[["true_efs_6mo", "true_efs_12mo"]].to_numpy()
    slope = calibration_slope(event, time_days, surv[:, 1])
    km = observed_expected(event, time_days, surv[:, 1], TWELVE_MONTHS_DAYS)
    return {
        "true_citl_6mo": float((1 - truth[:, 0]).mean() - (1 - surv[:, 0]).mean()),
        "true_citl_12mo": float((1 - truth[:, 1]).mean() - (1 - surv[:, 1]).mean()),
        "km_citl_12mo": float(km[0] - km[1]),
        "slope_12mo": list(slope),
        "harrell_c": harrell_c(event, time_days, 1 - surv[:, 1]),
    }


def run(replicates: int) -> dict[str, Any]:
    """Every replicate of every scenario."""
    parent = load_model(MODEL_DIR)
    out: dict[str, Any] = {}
    for name, options in SCENARIOS.items():
        rows = []
        for r in range(replicates):
            started = time.perf_counter()
            update = simulate_cohort(N_UPDATE, seed=UPDATE_SEED_BASE + r, **options)
            validation = simulate_cohort(N_VALIDATION, seed=VALIDATION_SEED_BASE + r, **options)
            result = update_model(parent, update.records)
            event = validation.records["efs_event"].to_numpy(dtype=bool)
            time_days = validation.records["efs_days"].to_numpy(dtype=float)
            rows.append(
                {
                    "replicate": r,
                    "chosen": result.model.level,
                    "multiplier": result.model.update["baseline_hazard_multiplier"],
                    "original": _measures(parent, validation),
                    "updated": _measures(result.model, validation),
                    "truth_slope_12mo": list(
                        calibration_slope(event, time_days, validation.truth["true_efs_12mo"].to_numpy())
                    ),
                    "seconds": time.perf_counter() - started,
                }
            )
            _common.log(f"{name} replicate {r}: {rows[-1]['chosen']}, {rows[-1]['seconds']:.1f} s")
        out[name] = {"options": options, "replicates": rows, "summary": _summary(rows)}
    return out


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def share(values: list[bool]) -> float:
        return float(np.mean(values))

    summary: dict[str, Any] = {"chosen": {}}
    for row in rows:
        summary["chosen"][row["chosen"]] = summary["chosen"].get(row["chosen"], 0) + 1
    for which in ("original", "updated"):
        measures = [row[which] for row in rows]
        summary[which] = {
            "mean_true_citl_6mo": float(np.mean([m["true_citl_6mo"] for m in measures])),
            "mean_true_citl_12mo": float(np.mean([m["true_citl_12mo"] for m in measures])),
            "share_true_citl_within_002": share(
                [abs(m["true_citl_6mo"]) < 0.02 and abs(m["true_citl_12mo"]) < 0.02 for m in measures]
            ),
            "mean_km_citl_12mo": float(np.mean([m["km_citl_12mo"] for m in measures])),
            "mean_slope_12mo": float(np.mean([m["slope_12mo"][0] for m in measures])),
            "share_slope_ci_covers_1": share([m["slope_12mo"][1] < 1 < m["slope_12mo"][2] for m in measures]),
            "share_slope_ci_covers_truth_slope": share(
                [m["slope_12mo"][1] < row["truth_slope_12mo"][0] < m["slope_12mo"][2] for m, row in zip(measures, rows)]
            ),
            "mean_harrell_c": float(np.mean([m["harrell_c"] for m in measures])),
        }
    summary["mean_truth_slope_12mo"] = float(np.mean([row["truth_slope_12mo"][0] for row in rows]))
    summary["share_truth_slope_ci_covers_1"] = share(
        [row["truth_slope_12mo"][1] < 1 < row["truth_slope_12mo"][2] for row in rows]
    )
    return summary


def markdown(payload: dict[str, Any]) -> str:
    lines = [
        "# Model updating at a simulated external centre",
        "",
        f"`python -m benchmarks.external_validation` ({payload['mode']}, {payload['replicates']} replicates per "
        f"scenario, {payload['date']}). Update cohort n={N_UPDATE}, independent validation cohort n={N_VALIDATION} "
        "of the same centre; parent: the shipped model.",
        "",
        "| scenario | model | closed test chose | true CITL 6 / 12 mo (mean) | both within +-0.02 | KM CITL 12 mo | "
        "slope 12 mo (mean) | slope CI covers 1 | covers the truth's slope | Harrell C |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, block in payload["scenarios"].items():
        summary = block["summary"]
        chosen = ", ".join(f"{k} {v}" for k, v in summary["chosen"].items())
        for which in ("original", "updated"):
            s = summary[which]
            lines.append(
                f"| {name} | {which} | {chosen if which == 'updated' else '-'} | "
                f"{s['mean_true_citl_6mo']:+.3f} / {s['mean_true_citl_12mo']:+.3f} | "
                f"{s['share_true_citl_within_002']:.0%} | {s['mean_km_citl_12mo']:+.3f} | {s['mean_slope_12mo']:.2f} | "
                f"{s['share_slope_ci_covers_1']:.0%} | {s['share_slope_ci_covers_truth_slope']:.0%} | "
                f"{s['mean_harrell_c']:.3f} |"
            )
        lines.append(
            f"| {name} | true probabilities | - | 0 | - | - | {summary['mean_truth_slope_12mo']:.2f} | "
            f"{summary['share_truth_slope_ci_covers_1']:.0%} | - | - |"
        )
    lines += [
        "",
        "CITL = observed minus predicted event probability (positive: the model is too optimistic); 'both within "
        "+-0.02' is the share of replicates whose true CITL is within 0.02 at 6 and at 12 months. The slope of the "
        "*true* probabilities need not be exactly 1 in one cohort (the simulator's hazards are not proportional: a "
        "day-28 point mass for no remission and cause-specific hazards), so the slope's interval is also compared "
        "with the truth's slope on the same validation cohort.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 replicates per scenario")
    args = parser.parse_args()
    replicates = 3 if args.quick else 20
    started = time.perf_counter()
    scenarios = run(replicates)
    payload = {
        "part": "external_validation",
        "mode": "quick" if args.quick else "full",
        "replicates": replicates,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": _common.machine(),
        "seeds": {"update_base": UPDATE_SEED_BASE, "validation_base": VALIDATION_SEED_BASE},
        "seconds": time.perf_counter() - started,
        "scenarios": scenarios,
    }
    _common.write_json(RESULTS / "external_validation.json", payload)
    atomic_write_text(RESULTS / "external_validation.md", markdown(payload))
    print(markdown(payload))


if __name__ == "__main__":
    main()
