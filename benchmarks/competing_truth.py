"""Competing risks against the simulator's truth: ``python -m benchmarks.competing_truth [--quick]``.

Two questions, both about CD19-negative relapse by 12 months (365.25 days):

1. **Per patient.** For training cohorts of 420 and 2,000 patients (``simulate_cohort(n, seed=20_000 + r)``),
   fit the competing-risks models and the crude alternative and compare each with every test patient's true
   12-month incidence (``truth["true_cif_cd19neg_12mo"]``, 2,000 test patients, ``simulate_cohort(2000,
   seed=777_777)``): RMSE, and mean error (prediction - truth) by true blinatumomab group. Methods:

   - ``cause_specific``: :class:`carrisk.competing.prediction.CauseSpecificModel` as shipped, each cause's ridge
     penalty chosen by inner 5-fold cross-validated partial likelihood on the training cohort;
   - ``cause_specific_alpha100``: the same with the penalty fixed at 100 (the earlier default, chosen by
     comparison with the truth);
   - ``crude_single_cause``: one ridge Cox model for CD19-negative relapse with every other first event censored
     (same features, penalty chosen by the same inner cross-validation), whose ``1 - exp(-H(t | x))`` ignores the
     competing causes;
   - ``fine_gray``: :class:`carrisk.competing.fine_gray_model.FineGrayModel` (ridge, inner-CV penalties);
   - ``forest``: :class:`carrisk.competing.forest.CompetingRiskForest` (200 trees, composite log-rank splits), at
     n = 420 only (:data:`FOREST_MAX_N`: at 2,000 a fit takes minutes of CPU on the shared benchmark machine).
2. **Cohort level.** The Aalen-Johansen 12-month incidence by blinatumomab group in a 20,000-patient cohort
   (seed 999_999) is the reference; in replicate 420-patient cohorts (seed 30_000 + r) we count how often the
   group's pointwise 95% interval contains it. Target: >= 90% in every group.

Writes ``results/competing_truth.json`` (every number, settings, versions, seeds, the penalties chosen) and
``results/competing_truth.md``. Default: 10 / 5 model replicates at n = 420 / 2,000 and 200 interval replicates;
``--quick``: 2 / 1 and 20.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import _common
from carrisk._io import atomic_write_text
from carrisk.competing import CAUSES, aalen_johansen, derive_first_event
from carrisk.competing.fine_gray_model import FineGrayModel
from carrisk.competing.forest import CompetingRiskForest
from carrisk.competing.metrics import cause_concordance, cif_brier_score
from carrisk.competing.prediction import DEFAULT_ALPHAS, CauseSpecificModel
from carrisk.competing.regression import cross_validated_penalty, ridge_hazard_fit
from carrisk.features import BlinatumomabStatus
from carrisk.provenance import package_versions
from carrisk.simulate import simulate_cohort

HORIZON_DAYS = 365.25
CAUSE = "cd19neg"
GROUPS = ("naive", "responder", "nonresponder")
TEST_SEED, TEST_N = 777_777, 2_000
TRAIN_SEED_BASE = 20_000
COVERAGE_SEED_BASE, COVERAGE_N = 30_000, 420
REFERENCE_SEED, REFERENCE_N = 999_999, 20_000


METHODS = ("cause_specific", "cause_specific_alpha100", "crude_single_cause", "fine_gray", "forest")
#: Largest training cohort the forest is fitted on.
FOREST_MAX_N = 420


def _crude_cif(model: CauseSpecificModel, train_records: Any, test_records: Any) -> tuple[np.ndarray, float]:
    """1 - exp(-H_cd19neg(12 months | x)) from one ridge Cox model with every other first event censored.

    Same design as ``model``; the penalty is chosen by the cause model's inner cross-validation (on all training
    patients, as this model sees them). Returns the predictions and the penalty.
    """
    events = derive_first_event(train_records)
    design = model.preprocess_.transform(train_records.reset_index(drop=True))
    time = events["time_days"].to_numpy(dtype=float)
    code = (events["cause"] == CAUSE).to_numpy().astype(int)  # 1 the cause, 0 everything else
    penalty, _ = cross_validated_penalty(time, code, design, 1, DEFAULT_ALPHAS, subdistribution=False, seed=0)
    fit = ridge_hazard_fit(time, code, design, 1, penalty=penalty, subdistribution=False)
    baseline = float(fit.baseline_hazard[fit.fail_times <= HORIZON_DAYS].sum())
    test_design = model.preprocess_.transform(test_records.reset_index(drop=True))
    return -np.expm1(-baseline * np.exp(test_design @ fit.coef)), penalty


def _at_horizon(model: Any, records: Any) -> np.ndarray:
    index = np.searchsorted(model.unique_times_, HORIZON_DAYS, side="right") - 1
    return model.predict_cif(records)[:, index, CAUSES.index(CAUSE)]


def _predictions(train: Any, test: Any, forest: bool) -> dict[str, tuple[np.ndarray, Any, float]]:
    """Method -> (12-month CD19-negative incidence of the test patients, penalties chosen, seconds)."""
    out: dict[str, tuple[np.ndarray, Any, float]] = {}
    started = time.perf_counter()
    model = CauseSpecificModel().fit(train)
    out["cause_specific"] = (_at_horizon(model, test), model.alpha_, time.perf_counter() - started)
    started = time.perf_counter()
    fixed = CauseSpecificModel(alpha=100.0).fit(train)
    out["cause_specific_alpha100"] = (_at_horizon(fixed, test), fixed.alpha_, time.perf_counter() - started)
    started = time.perf_counter()
    crude, penalty = _crude_cif(model, train, test)
    out["crude_single_cause"] = (crude, {CAUSE: penalty}, time.perf_counter() - started)
    started = time.perf_counter()
    fine_gray = FineGrayModel().fit(train)
    out["fine_gray"] = (_at_horizon(fine_gray, test), fine_gray.alpha_, time.perf_counter() - started)
    if forest:
        started = time.perf_counter()
        fitted = CompetingRiskForest().fit(train)
        out["forest"] = (_at_horizon(fitted, test), None, time.perf_counter() - started)
    return out


def per_patient(replicates: dict[int, int]) -> list[dict[str, Any]]:
    test = simulate_cohort(n=TEST_N, seed=TEST_SEED)
    truth = test.truth[f"true_cif_{CAUSE}_12mo"].to_numpy()
    observed = derive_first_event(test.records)
    code = CAUSES.index(CAUSE) + 1
    observed_time, observed_code = observed["time_days"].to_numpy(), observed["cause_code"].to_numpy()
    group = test.truth["true_blina_group"].to_numpy()
    rows = []
    for n, count in replicates.items():
        for r in range(count):
            seed = TRAIN_SEED_BASE + 1000 * (n // 1000) + r
            train = simulate_cohort(n=n, seed=seed).records
            predictions = _predictions(train, test.records, forest=n <= FOREST_MAX_N)
            for method, (prediction, chosen, seconds) in predictions.items():
                error = prediction - truth
                rows.append(
                    {
                        "n_train": n,
                        "replicate": r,
                        "train_seed": seed,
                        "method": method,
                        "rmse": float(np.sqrt(np.mean(error**2))),
                        "wolbers_c": cause_concordance(
                            observed_time, observed_code, prediction, code, tau=HORIZON_DAYS
                        ),
                        "brier_12mo": cif_brier_score(observed_time, observed_code, prediction, code, HORIZON_DAYS),
                        "mean_error": float(error.mean()),
                        **{f"mean_error_{g}": float(error[group == g].mean()) for g in GROUPS},
                        "penalties": chosen,
                        "seconds": seconds,
                    }
                )
            _common.log(
                f"n={n} replicate {r}: "
                + ", ".join(f"{row['method']} {row['rmse']:.4f}" for row in rows[-len(predictions) :])
            )
    return rows


def _aj_by_group(records: Any) -> dict[str, tuple[float, float, float]]:
    events = derive_first_event(records)
    status = BlinatumomabStatus().fit(records).categorize(records)["blina_status"].to_numpy()
    out = {}
    k = CAUSES.index(CAUSE)
    for g in GROUPS:
        mask = status == g
        estimate = aalen_johansen(events["time_days"][mask], events["cause_code"][mask], CAUSES)
        i = np.searchsorted(estimate.times, HORIZON_DAYS, side="right") - 1
        out[g] = (float(estimate.cif[i, k]), float(estimate.ci_low[i, k]), float(estimate.ci_high[i, k]))
    return out


def cohort_coverage(replicates: int) -> dict[str, Any]:
    reference_cohort = simulate_cohort(n=REFERENCE_N, seed=REFERENCE_SEED)
    reference = _aj_by_group(reference_cohort.records)
    truth_group = reference_cohort.truth["true_blina_group"].to_numpy()
    true_mean = {
        g: float(reference_cohort.truth.loc[truth_group == g, f"true_cif_{CAUSE}_12mo"].mean()) for g in GROUPS
    }
    hits = {g: 0 for g in GROUPS}
    widths: dict[str, list[float]] = {g: [] for g in GROUPS}
    for r in range(replicates):
        estimate = _aj_by_group(simulate_cohort(n=COVERAGE_N, seed=COVERAGE_SEED_BASE + r).records)
        for g in GROUPS:
            _, low, high = estimate[g]
            hits[g] += int(low <= reference[g][0] <= high)
            widths[g].append(high - low)
    return {
        "reference_n": REFERENCE_N,
        "reference_seed": REFERENCE_SEED,
        "reference_aj": {g: dict(zip(("cif", "ci_low", "ci_high"), reference[g])) for g in GROUPS},
        "reference_true_mean": true_mean,
        "replicates": replicates,
        "coverage": {g: hits[g] / replicates for g in GROUPS},
        "mean_width": {g: float(np.mean(widths[g])) for g in GROUPS},
        "target": ">= 0.90 in every group",
        "met": all(hits[g] / replicates >= 0.90 for g in GROUPS),
    }


def summary_markdown(payload: dict[str, Any]) -> str:
    lines = [
        "# Competing risks against the truth: 12-month CD19-negative relapse incidence",
        "",
        f"Generated by `python -m benchmarks.competing_truth{' --quick' if payload['mode'] == 'quick' else ''}` "
        f"on {payload['date']}. Synthetic data (carrisk's calibrated simulator); the truth is known per patient.",
        "",
        f"## Per patient ({TEST_N} test patients, seed {TEST_SEED}; mean over training replicates)",
        "",
        "| n train | method | replicates | RMSE vs truth | mean error | naive | responder | nonresponder "
        "| Wolbers C | Brier 12 mo | CD19-neg. penalty chosen (times) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows = payload["per_patient"]
    for n in sorted({r["n_train"] for r in rows}):
        for method in METHODS:
            chosen = [r for r in rows if r["n_train"] == n and r["method"] == method]
            if not chosen:
                continue
            penalties = Counter(r["penalties"][CAUSE] for r in chosen if r["penalties"])
            mean = {
                key: np.mean([r[key] for r in chosen])
                for key in ("rmse", "mean_error", *(f"mean_error_{g}" for g in GROUPS), "wolbers_c", "brier_12mo")
            }
            lines.append(
                f"| {n} | {method} | {len(chosen)} | {mean['rmse']:.4f} | {mean['mean_error']:+.4f} | "
                + " | ".join(f"{mean[f'mean_error_{g}']:+.4f}" for g in GROUPS)
                + f" | {mean['wolbers_c']:.3f} | {mean['brier_12mo']:.4f} | "
                + (", ".join(f"{p:g} ({c})" for p, c in sorted(penalties.items())) or "-")
                + " |"
            )
    coverage = payload["cohort_coverage"]
    lines += [
        "",
        "Mean error = prediction - truth (by true blinatumomab group). `cause_specific`: penalties by inner "
        "cross-validation (shipped); `cause_specific_alpha100`: penalty fixed at 100; `crude_single_cause`: one "
        "ridge Cox model for CD19-negative relapse with the other first events censored, 1 - exp(-H), penalty by "
        "inner cross-validation; `fine_gray`: ridge Fine-Gray per cause; `forest`: competing-risks forest. "
        "Wolbers C (cause-specific "
        "concordance, events by 12 months) and the IPCW Brier score at 12 months use the test patients' observed "
        "outcomes (carrisk.competing.metrics).",
        "",
        f"## Cohort level: does the AJ 95% interval of a {COVERAGE_N}-patient cohort contain the "
        f"{coverage['reference_n']:,}-patient cohort's value? ({coverage['replicates']} replicates)",
        "",
        "| group | 20,000-patient AJ (95% CI) | mean true incidence | coverage | mean interval width |",
        "|---|---|---|---|---|",
    ]
    for g in GROUPS:
        ref = coverage["reference_aj"][g]
        lines.append(
            f"| {g} | {ref['cif']:.4f} ({ref['ci_low']:.4f}-{ref['ci_high']:.4f}) | "
            f"{coverage['reference_true_mean'][g]:.4f} | {coverage['coverage'][g]:.1%} | "
            f"{coverage['mean_width'][g]:.3f} |"
        )
    lines += ["", f"Target {coverage['target']}: {'met' if coverage['met'] else 'NOT met'}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2/1 model replicates and 20 interval replicates")
    parser.add_argument("--out", type=Path, default=_common.RESULTS_DIR)
    args = parser.parse_args(argv)
    replicates = {420: 2, 2000: 1} if args.quick else {420: 10, 2000: 5}
    coverage_replicates = 20 if args.quick else 200
    started = time.perf_counter()
    payload: dict[str, Any] = {
        "part": "competing_truth",
        "mode": "quick" if args.quick else "full",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": _common.machine(),
        "versions": package_versions(),
        "seeds": {
            "test": TEST_SEED,
            "train_base": TRAIN_SEED_BASE,
            "coverage_base": COVERAGE_SEED_BASE,
            "reference": REFERENCE_SEED,
        },
        "settings": {
            "model_replicates": replicates,
            "coverage_replicates": coverage_replicates,
            "horizon_days": HORIZON_DAYS,
        },
    }
    payload["cohort_coverage"] = cohort_coverage(coverage_replicates)
    _common.log(f"coverage {payload['cohort_coverage']['coverage']}")
    payload["per_patient"] = per_patient(replicates)
    payload["seconds"] = time.perf_counter() - started
    _common.write_json(args.out / "competing_truth.json", payload)
    atomic_write_text(args.out / "competing_truth.md", summary_markdown(payload))
    print(summary_markdown(payload))


if __name__ == "__main__":
    main()
