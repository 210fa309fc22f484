"""How honest are the forest's 95% EFS intervals? A coverage study on the synthetic cohort.

    python -m benchmarks.interval_coverage            # 100 replicate training cohorts (about 10 minutes)
    python -m benchmarks.interval_coverage --quick    # 10 replicates
    python -m benchmarks.interval_coverage --engine hist   # the same forest grown by the histogram engine

Each replicate draws a new training cohort from the calibrated generator (``simulate_cohort(420, seed=10_000 +
r)``), fits the forest that shipped before the two-part default (600-tree forest, time grid 40, leaf size and
features per split fixed at its tuned 15 and sqrt; forest seed r) and
predicts 6- and 12-month EFS with intervals for the same 200 test patients (``simulate_cohort(200, seed=424242)``).
The generating model is known, so every prediction can be checked against two targets:

* the forest's expected prediction (the mean over replicates of its point prediction): what the infinitesimal
  jackknife interval is built for (sampling variability of the fitted forest);
* the patient's true EFS probability: coverage here is lower because the interval says nothing about the forest's
  bias (smoothing by leaf averaging, too few patients in a leaf).

Writes ``results/interval_coverage.json`` (every number, settings, versions, seeds) and
``results/interval_coverage.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import _common
from carrisk import fit_efs_model, simulate_cohort, survival_target
from carrisk._io import atomic_write_text
from carrisk.intervals import MAX_ROWS_PER_TREE
from carrisk.schema import OUTCOME_COLUMNS
from carrisk.simulate import true_survival
from carrisk.units import SIX_MONTHS_DAYS, TWELVE_MONTHS_DAYS

N_TRAIN = 420
N_TEST = 200
TEST_SEED = 424_242
TRAIN_SEED_BASE = 10_000
#: The forest that shipped until the two-part model became the default (its out-of-bag tuned settings); the
#: default model's own interval coverage is measured by ``benchmarks/truth.py``.
FOREST = {"n_estimators": 600, "max_times": 40, "min_samples_leaf": 15, "max_features": "sqrt"}


def shipped_configuration(engine: str = "sksurv", trees: int | None = None, ci_group_size: int = 1) -> dict[str, Any]:
    """The forest's settings and hyper-parameters, fixed for every replicate (``engine``: sksurv or hist;
    ``ci_group_size`` > 1: grf's little bags, hist only)."""
    return {**FOREST, "engine": engine} | ({"n_estimators": trees} if trees else {}) | {"ci_group_size": ci_group_size}


HORIZONS = {"6mo": SIX_MONTHS_DAYS, "12mo": TWELVE_MONTHS_DAYS}


def run(
    replicates: int, engine: str = "sksurv", trees: int | None = None, n_train: int = N_TRAIN, ci_group_size: int = 1
) -> dict[str, Any]:
    """Fit ``replicates`` forests and return the coverage summary."""
    shipped = shipped_configuration(engine, trees, ci_group_size)
    test_cohort = simulate_cohort(N_TEST, seed=TEST_SEED)
    test = test_cohort.records.drop(columns=[c for c in OUTCOME_COLUMNS if c in test_cohort.records])
    truth = true_survival(test_cohort, list(HORIZONS.values()))  # (N_TEST, 2)
    point = np.zeros((replicates, N_TEST, len(HORIZONS)))
    lower, upper = np.zeros_like(point), np.zeros_like(point)
    seconds, noise, flagged, methods = [], [], [], set()
    for r in range(replicates):
        start = time.perf_counter()
        cohort = simulate_cohort(n_train, seed=TRAIN_SEED_BASE + r)
        model = fit_efs_model(
            cohort.records, survival_target(cohort.records), "rsf", seed=r, causes=False, **shipped
        )  # fmt: skip
        noise.append(model.metadata.get("interval_noise_to_signal", float("nan")))
        flagged.append("interval_warning" in model.metadata)
        methods.add(model.metadata["interval_method"])
        pred = model.predict_efs(test, HORIZONS, top=0)
        for k, name in enumerate(HORIZONS):
            point[r, :, k] = pred[f"efs_{name}"]
            lower[r, :, k] = pred[f"efs_{name}_lo"]
            upper[r, :, k] = pred[f"efs_{name}_hi"]
        seconds.append(time.perf_counter() - start)
        _common.log(f"interval coverage: replicate {r + 1}/{replicates} ({seconds[-1]:.1f} s)")
    expected = point.mean(axis=0)  # (N_TEST, 2): the forest's expected prediction, estimated
    summary: dict[str, Any] = {}
    for k, name in enumerate(HORIZONS):
        lo, hi, est = lower[:, :, k], upper[:, :, k], point[:, :, k]
        covers_expected = (lo <= expected[None, :, k]) & (expected[None, :, k] <= hi)
        covers_truth = (lo <= truth[None, :, k]) & (truth[None, :, k] <= hi)
        per_patient_expected = covers_expected.mean(axis=0)
        summary[name] = {
            "coverage_of_expected_prediction": float(covers_expected.mean()),
            "coverage_of_expected_prediction_patient_quantiles": np.quantile(
                per_patient_expected, [0.1, 0.5, 0.9]
            ).tolist(),
            "coverage_of_true_efs": float(covers_truth.mean()),
            "mean_width": float((hi - lo).mean()),
            "empirical_sd_across_replicates_mean": float(est.std(axis=0, ddof=1).mean()),
            "implied_sd_from_width_mean": float(((hi - lo) / (2 * 1.959964)).mean()),
            "bias_mean": float((expected[:, k] - truth[:, k]).mean()),
            "bias_rms": float(np.sqrt(((expected[:, k] - truth[:, k]) ** 2).mean())),
            "zero_width_share": float(((hi - lo) < 1e-9).mean()),
        }
    return {
        "setup": {
            "replicates": replicates,
            "train": f"simulate_cohort({n_train}, seed={TRAIN_SEED_BASE} + r)",
            "test": f"simulate_cohort({N_TEST}, seed={TEST_SEED}), outcomes dropped",
            "model": "fit_efs_model(..., 'rsf', seed=r, " + ", ".join(f"{k}={v!r}" for k, v in shipped.items()) + ")",
            "interval": "95%, " + "; ".join(sorted(methods)),
            "expected_prediction": "mean of the point predictions over the replicates (Monte Carlo estimate)",
            "seconds_per_replicate_median": float(np.median(seconds)),
            # the jackknife's diagnostic; absent (nan) for little-bags forests, which fit no variance prior
            "interval_noise_to_signal_median": float(np.nanmedian(noise)) if np.isfinite(noise).any() else float("nan"),
            "interval_warning_share": float(np.mean(flagged)),
        },
        "horizons": summary,
    }


def _noise_sentence(setup: dict[str, Any]) -> str:
    ratio = setup.get("interval_noise_to_signal_median", float("nan"))
    if ratio is None or not np.isfinite(ratio):  # null in JSON; little bags: no jackknife, prior or warning
        return "no jackknife noise diagnostic (not a jackknife interval)."
    return (
        f"the jackknife's noise-to-signal ratio (median over replicates) {ratio:.2f}; the model warned that its "
        f"intervals are inflated (more than {MAX_ROWS_PER_TREE} training rows per tree) in "
        f"{setup.get('interval_warning_share', float('nan')):.0%} of the fits."
    )


def markdown(result: dict[str, Any]) -> str:
    """The coverage table as a short markdown report."""
    setup = result["setup"]
    lines = [
        "# Coverage of the forest's 95% EFS intervals (synthetic cohort)",
        "",
        f"Generated by `python -m benchmarks.interval_coverage` on {result['date']}; {setup['replicates']} "
        f"replicate training cohorts ({setup['train']}), test patients {setup['test']}; model "
        f"`{setup['model']}`; {setup['interval']}; " + _noise_sentence(setup) + " "
        "Synthetic data only: this says how the method behaves when the "
        "generating model is known, not how it behaves on real patients.",
        "",
        "| horizon | covers the forest's expected prediction | (10th / 50th / 90th percentile over patients) "
        "| covers the true EFS | mean width | sd across replicates | sd implied by the width | bias (mean, rms) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, h in result["horizons"].items():
        q = h["coverage_of_expected_prediction_patient_quantiles"]
        lines.append(
            f"| {name} | {h['coverage_of_expected_prediction']:.1%} | {q[0]:.0%} / {q[1]:.0%} / {q[2]:.0%} | "
            f"{h['coverage_of_true_efs']:.1%} | {h['mean_width']:.3f} | "
            f"{h['empirical_sd_across_replicates_mean']:.3f} | {h['implied_sd_from_width_mean']:.3f} | "
            f"{h['bias_mean']:+.3f}, {h['bias_rms']:.3f} |"
        )
    lines += [
        "",
        "Reading: the interval targets the sampling variability of the fitted forest, so its coverage of the "
        "forest's expected prediction is the check of the method; coverage of the true EFS is lower by however "
        "much the forest is biased for a patient, which no variance estimate can show.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.interval_coverage", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 replicates instead of 100")
    parser.add_argument("--out", type=Path, default=_common.RESULTS_DIR)
    parser.add_argument("--engine", choices=("sksurv", "hist"), default="sksurv", help="forest engine")
    parser.add_argument("--trees", type=int, help=f"trees per forest (default {FOREST['n_estimators']})")
    parser.add_argument("--n-train", type=int, default=N_TRAIN, help=f"training cohort size (default {N_TRAIN})")
    parser.add_argument("--replicates", type=int, help="replicate training cohorts (default 100, quick 10)")
    parser.add_argument(
        "--ci-group-size", type=int, default=1, help="trees per half-sample group (> 1: grf little-bags intervals)"
    )
    args = parser.parse_args(argv)
    stem = "interval_coverage" if args.engine == "sksurv" else f"interval_coverage_{args.engine}"
    if args.n_train != N_TRAIN:
        stem += f"_n{args.n_train}"
    if args.trees:
        stem += f"_t{args.trees}"
    if args.ci_group_size > 1:
        stem += f"_g{args.ci_group_size}"
    replicates = args.replicates or (10 if args.quick else 100)
    result = {
        "part": "interval_coverage",
        "mode": "quick" if args.quick else "full",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": _common.machine(),
        "versions": _common.package_versions(),
        "seeds": {"train": f"{TRAIN_SEED_BASE} + r", "forest": "r", "test": TEST_SEED},
    } | run(replicates, args.engine, args.trees, args.n_train, args.ci_group_size)
    _common.write_json(args.out / f"{stem}.json", result)
    atomic_write_text(args.out / f"{stem}.md", markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
