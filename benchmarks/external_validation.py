"""Model updating at simulated external centres: does the recommended update fix calibration, and how often?

    python -m benchmarks.external_validation            # 20 replicates per scenario and update-cohort size
    python -m benchmarks.external_validation --quick    # 3 replicates

For each scenario, replicate r and update-cohort size n, an update cohort (n patients, seed 50,000 + 1,000 k + r
for the k-th size) is drawn from the external centre and ``carrisk.update_model`` chooses and fits the update by
the closed test; the shipped model and the updated model are then compared on an independent validation cohort
of the same centre (n=1,000, seed 60,000 + r; the same for every size):

* calibration-in-the-large against the truth: mean true minus mean predicted event probability by 6 and 12 months
  (the simulator knows every patient's true EFS), and against the Kaplan-Meier estimate at 12 months;
* the calibration slope at 12 months (Cox model on log(-log S)) with its Wald 95% interval, for the model and for
  the true probabilities themselves (a perfectly calibrated prediction);
* Harrell's C of the 12-month event probability.

Scenarios (each a different way for a centre to differ from the development data):

* ``baseline``: post-remission baseline hazard x 1.8, same case-mix and remission rate (calibration-in-the-large
  off, slope about right);
* ``weaker_effects``: every log hazard ratio and remission log odds ratio of the simulator x 0.6 (the predictors
  matter less there: slope < 1, and the mean risk moves too);
* ``shifted``: the ``shifted`` preset (more blinatumomab exposure and high burden, mostly tisagenlecleucel,
  baseline x 1.6, remission log-odds - 0.5);
* ``baseline_and_effects``: the ``baseline_and_effects`` preset (post-remission baseline hazard x 1.8 and every
  effect x 0.7: off in the large *and* in the slope, the centre of the README's demonstration).

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
from carrisk.simulate import EXTERNAL_CENTRES, load_simulation_params, simulate_cohort
from carrisk.updating import update_model

RESULTS = Path(__file__).parent / "results"
MODEL_DIR = Path(__file__).parent.parent / "models" / "default"
UPDATE_SIZES, N_VALIDATION = (600, 2400), 1000
UPDATE_SEED_BASE, VALIDATION_SEED_BASE = 50_000, 60_000
EFFECT_SCALE = 0.6
CITL_TARGET = 0.02
HORIZONS = (SIX_MONTHS_DAYS, TWELVE_MONTHS_DAYS)


def weaker_effects(scale: float) -> dict[str, float]:
    """Simulator overrides that multiply every log hazard ratio and remission log odds ratio by ``scale``."""
    params = load_simulation_params()
    return {name: scale * float(value) for name, value in params.items() if name.startswith(("loghr_", "cr_logor_"))}


SCENARIOS: dict[str, dict[str, Any]] = {
    "baseline": {"baseline_hazard_multiplier": 1.8},
    "weaker_effects": weaker_effects(EFFECT_SCALE),
    "shifted": EXTERNAL_CENTRES["shifted"],
    "baseline_and_effects": EXTERNAL_CENTRES["baseline_and_effects"],
}


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
    """Every replicate of every scenario and update-cohort size."""
    parent = load_model(MODEL_DIR)
    out: dict[str, Any] = {}
    for name, options in SCENARIOS.items():
        rows = []
        for r in range(replicates):
            validation = simulate_cohort(N_VALIDATION, seed=VALIDATION_SEED_BASE + r, **options)
            event = validation.records["efs_event"].to_numpy(dtype=bool)
            time_days = validation.records["efs_days"].to_numpy(dtype=float)
            original = _measures(parent, validation)
            truth_slope = list(calibration_slope(event, time_days, validation.truth["true_efs_12mo"].to_numpy()))
            for k, size in enumerate(UPDATE_SIZES):
                started = time.perf_counter()
                update = simulate_cohort(size, seed=UPDATE_SEED_BASE + 1000 * k + r, **options)
                result = update_model(parent, update.records)
                rows.append(
                    {
                        "replicate": r,
                        "update_n": size,
                        "chosen": result.model.level,
                        "multiplier": result.model.update["baseline_hazard_multiplier"],
                        "risk_score_slope": result.model.update["risk_score_slope"],
                        "original": original,
                        "updated": _measures(result.model, validation),
                        "truth_slope_12mo": truth_slope,
                        "seconds": time.perf_counter() - started,
                    }
                )
                _common.log(f"{name} n={size} replicate {r}: {rows[-1]['chosen']}, {rows[-1]['seconds']:.1f} s")
        out[name] = {
            "options": options,
            "replicates": rows,
            "summary": {str(size): _summary([row for row in rows if row["update_n"] == size]) for size in UPDATE_SIZES},
        }
    return out


def _interval(values: list[float]) -> list[float]:
    """Mean and the 2.5th and 97.5th percentiles over the replicates."""
    return [float(np.mean(values)), *(float(v) for v in np.percentile(values, [2.5, 97.5]))]


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def share(values: list[bool]) -> float:
        return float(np.mean(values))

    def citl_met(m: dict[str, Any]) -> bool:
        return abs(m["true_citl_6mo"]) < CITL_TARGET and abs(m["true_citl_12mo"]) < CITL_TARGET

    def covers_1(m: dict[str, Any]) -> bool:
        return bool(m["slope_12mo"][1] < 1 < m["slope_12mo"][2])

    summary: dict[str, Any] = {"replicates": len(rows), "chosen": {}}
    for row in rows:
        summary["chosen"][row["chosen"]] = summary["chosen"].get(row["chosen"], 0) + 1
    for which in ("original", "updated"):
        measures = [row[which] for row in rows]
        summary[which] = {
            "true_citl_6mo": _interval([m["true_citl_6mo"] for m in measures]),
            "true_citl_12mo": _interval([m["true_citl_12mo"] for m in measures]),
            "share_true_citl_within_target": share([citl_met(m) for m in measures]),
            "mean_km_citl_12mo": float(np.mean([m["km_citl_12mo"] for m in measures])),
            "slope_12mo": _interval([m["slope_12mo"][0] for m in measures]),
            "mean_slope_ci": [float(np.mean([m["slope_12mo"][j] for m in measures])) for j in (1, 2)],
            "share_slope_ci_covers_1": share([covers_1(m) for m in measures]),
            "share_slope_ci_covers_truth_slope": share(
                [m["slope_12mo"][1] < row["truth_slope_12mo"][0] < m["slope_12mo"][2] for m, row in zip(measures, rows)]
            ),
            "mean_harrell_c": float(np.mean([m["harrell_c"] for m in measures])),
        }
    summary["share_updated_meets_citl_and_slope"] = share(
        [citl_met(row["updated"]) and covers_1(row["updated"]) for row in rows]
    )
    summary["share_original_slope_ci_excludes_1"] = share([not covers_1(row["original"]) for row in rows])
    summary["share_whole_target"] = share(
        [citl_met(row["updated"]) and covers_1(row["updated"]) and not covers_1(row["original"]) for row in rows]
    )
    summary["truth_slope_12mo"] = _interval([row["truth_slope_12mo"][0] for row in rows])
    summary["share_truth_slope_ci_covers_1"] = share(
        [row["truth_slope_12mo"][1] < 1 < row["truth_slope_12mo"][2] for row in rows]
    )
    return summary


def _fmt(interval: list[float], signed: bool = True) -> str:
    form = "+.3f" if signed else ".2f"
    return f"{interval[0]:{form}} [{interval[1]:{form}}, {interval[2]:{form}}]"


def markdown(payload: dict[str, Any]) -> str:
    lines = [
        "# Model updating at simulated external centres",
        "",
        f"`python -m benchmarks.external_validation` ({payload['mode']}, {payload['replicates']} replicates per "
        f"scenario and update-cohort size, {payload['date']}). Independent validation cohort n={N_VALIDATION} of the "
        "same centre; parent: the shipped model. Intervals in brackets: 2.5th-97.5th percentile over the replicates.",
        "",
        "| scenario | update n | model | closed test chose | true CITL 6 mo | true CITL 12 mo | both within "
        f"+-{CITL_TARGET} | KM CITL 12 mo | slope 12 mo | mean slope CI | CI covers 1 | covers the truth's slope "
        "| Harrell C |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, block in payload["scenarios"].items():
        for size, summary in block["summary"].items():
            chosen = ", ".join(f"{k} {v}" for k, v in summary["chosen"].items())
            for which in ("original", "updated"):
                s = summary[which]
                lines.append(
                    f"| {name} | {size} | {which} | {chosen if which == 'updated' else '-'} | "
                    f"{_fmt(s['true_citl_6mo'])} | {_fmt(s['true_citl_12mo'])} | "
                    f"{s['share_true_citl_within_target']:.0%} | {s['mean_km_citl_12mo']:+.3f} | "
                    f"{_fmt(s['slope_12mo'], signed=False)} | "
                    f"{s['mean_slope_ci'][0]:.2f}-{s['mean_slope_ci'][1]:.2f} | {s['share_slope_ci_covers_1']:.0%} | "
                    f"{s['share_slope_ci_covers_truth_slope']:.0%} | {s['mean_harrell_c']:.3f} |"
                )
            lines.append(
                f"| {name} | {size} | true probabilities | - | 0 | 0 | - | - | "
                f"{_fmt(summary['truth_slope_12mo'], signed=False)} | - | "
                f"{summary['share_truth_slope_ci_covers_1']:.0%} | - | - |"
            )
    lines += [
        "",
        "## The issue's target, share of replicates",
        "",
        f"| scenario | update n | updated: CITL within +-{CITL_TARGET} at 6 and 12 mo and slope CI covers 1 | "
        "original: slope CI excludes 1 | all three together |",
        "|---|---|---|---|---|",
    ]
    for name, block in payload["scenarios"].items():
        for size, summary in block["summary"].items():
            lines.append(
                f"| {name} | {size} | {summary['share_updated_meets_citl_and_slope']:.0%} | "
                f"{summary['share_original_slope_ci_excludes_1']:.0%} | {summary['share_whole_target']:.0%} |"
            )
    lines += [
        "",
        "CITL = observed minus predicted event probability (positive: the model is too optimistic), here against "
        "the truth. On the update cohort itself the update's Kaplan-Meier CITL at 12 months is 0 by construction "
        "(the baseline is matched to it), so every figure above is on new patients of the same centre. The slope of "
        "the *true* probabilities need not be exactly 1 in one cohort (the simulator's hazards are not "
        "proportional: a day-28 point mass for no remission and cause-specific hazards), so the slope's interval "
        "is also compared with the truth's slope on the same validation cohort.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 replicates per scenario")
    parser.add_argument("--replicates", type=int, default=None, help="override the number of replicates")
    args = parser.parse_args()
    replicates = args.replicates or (3 if args.quick else 20)
    started = time.perf_counter()
    scenarios = run(replicates)
    payload = {
        "part": "external_validation",
        "mode": "quick" if args.quick else "full",
        "replicates": replicates,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": _common.machine(),
        "seeds": {"update_base": UPDATE_SEED_BASE, "validation_base": VALIDATION_SEED_BASE},
        "update_sizes": list(UPDATE_SIZES),
        "effect_scale": EFFECT_SCALE,
        "seconds": time.perf_counter() - started,
        "scenarios": scenarios,
    }
    _common.write_json(RESULTS / "external_validation.json", payload)
    atomic_write_text(RESULTS / "external_validation.md", markdown(payload))
    print(markdown(payload))


if __name__ == "__main__":
    main()
