"""Does the confidence interval of the cross-validated mean C cover the procedure's true C?

    python -m benchmarks.cv_coverage            # 60 replicate cohorts (full mode)
    python -m benchmarks.cv_coverage --quick    # 8 replicates
    python -m benchmarks --only cv_coverage     # the same, as a part of the benchmark run

The procedure is a fast, fixed model: elastic-net Cox (``make_pipeline("coxnet", alpha_ratio=0.1,
l1_ratio=0.5)``; no tuning, so the numbers measure the interval, not the tuning). For each replicate r:

1. draw a training cohort of n = 420 (``simulate_cohort(420, seed=20_000 + r)``);
2. run ``carrisk.cross_validate`` on it (5-fold x 3, seed r) and take the mean Harrell's C of the 15 test folds with
   its 95% intervals: the Nadeau-Bengio corrected interval (carrisk's ``mean_ci``), the naive t interval
   ``mean +/- t sd / sqrt(15)`` and the 2.5-97.5% spread of the fold estimates, for comparison;
3. fit the same pipeline to the whole replicate cohort, and to a random 4/5 of it (336 patients, the size of a
   CV training fold), and compute Harrell's C of each fitted model on one large independent cohort
   (``simulate_cohort(20_000, seed=777_777)``, observed outcomes with the simulator's censoring, like the folds).

The estimand of a CV-mean interval is the expected performance of the *procedure* when trained on a sample of
this size from this population: theta = E_D[C(model fitted to D)]. It is estimated by the mean over replicates of
the large-cohort C of step 3 (its standard error is reported; with 60 replicates it is far smaller than any
interval's half-width). The interval covers theta in replicate r if theta lies within it. Two versions of theta
are reported: trained on n = 420 (the whole cohort, the model one would ship) and on n = 336 (what the CV
training folds actually see; the corrected interval is derived for this one). Coverage of the replicate's own
fitted model's C (a conditional target, which no CV interval is designed for) is reported too.

Writes ``results/cv_coverage.json`` (every replicate's numbers, settings, versions, seeds) and
``results/cv_coverage.md``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from scipy import stats

from benchmarks import _common
from carrisk import cross_validate, make_pipeline, simulate_cohort, survival_target
from carrisk._io import atomic_write_text
from carrisk.metrics import harrell_c
from carrisk.target import target_arrays

N_TRAIN = 420
N_LARGE = 20_000
LARGE_SEED = 777_777
TRAIN_SEED_BASE = 20_000
FOLDS, REPEATS = 5, 3
MODEL = {"alpha_ratio": 0.1, "l1_ratio": 0.5}
REPLICATES = {"quick": 8, "full": 60}


def _large_cohort() -> tuple[Any, np.ndarray, np.ndarray]:
    cohort = simulate_cohort(n=N_LARGE, seed=LARGE_SEED)
    y = survival_target(cohort.records)
    return cohort.records, *target_arrays(y)


def replicate(r: int, large: tuple[Any, np.ndarray, np.ndarray]) -> dict[str, Any]:
    """One replicate: the CV estimate and its intervals, and the large-cohort C of the fitted procedure."""
    started = time.perf_counter()
    cohort = simulate_cohort(n=N_TRAIN, seed=TRAIN_SEED_BASE + r)
    y = survival_target(cohort.records)
    cv = cross_validate(
        cohort.records,
        y,
        {"coxnet": make_pipeline("coxnet", **MODEL)},
        folds=FOLDS,
        repeats=REPEATS,
        seed=r,
        n_jobs=1,
        progress=False,
        calibration_bootstrap=0,
    )
    summary = cv.to_dict()["models"]["coxnet"]["metrics"]["harrell_c"]
    folds = np.array([v for v in summary["folds"] if v == v])
    half = stats.t.ppf(0.975, folds.size - 1) * folds.std(ddof=1) / np.sqrt(folds.size)
    records, event, time_ = large
    full = make_pipeline("coxnet", **MODEL).fit(cohort.records, y)
    subset = np.random.default_rng(r).choice(N_TRAIN, size=N_TRAIN * (FOLDS - 1) // FOLDS, replace=False)
    fold_sized = make_pipeline("coxnet", **MODEL).fit(cohort.records.iloc[subset], y[subset])
    return {
        "replicate": r,
        "seed": TRAIN_SEED_BASE + r,
        "cv_mean": summary["mean"],
        "mean_ci": summary["mean_ci"],
        "naive_ci": [summary["mean"] - half, summary["mean"] + half],
        "spread": summary["spread"],
        "n_folds": int(folds.size),
        "large_c_420": harrell_c(event, time_, full.predict(records)),
        "large_c_336": harrell_c(event, time_, fold_sized.predict(records)),
        "seconds": time.perf_counter() - started,
    }


def _coverage(rows: list[dict[str, Any]], interval: str, target: np.ndarray) -> dict[str, Any]:
    bounds = np.array([row[interval] for row in rows], dtype=float)
    hits = (bounds[:, 0] <= target) & (target <= bounds[:, 1])
    k, n = int(hits.sum()), len(rows)
    exact = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    return {
        "covered": k,
        "replicates": n,
        "coverage": k / n,
        "coverage_95ci": [exact.low, exact.high],
        "mean_width": float(np.mean(bounds[:, 1] - bounds[:, 0])),
        "misses_below": int((target < bounds[:, 0]).sum()),
        "misses_above": int((target > bounds[:, 1]).sum()),
    }


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Coverage of each interval for each target, with exact binomial intervals of the coverage."""
    out: dict[str, Any] = {"targets": {}}
    for n_train in (420, 336):
        values = np.array([row[f"large_c_{n_train}"] for row in rows])
        out["targets"][f"theta_{n_train}"] = {
            "value": float(values.mean()),
            "standard_error": float(values.std(ddof=1) / np.sqrt(values.size)),
            "sd_over_replicates": float(values.std(ddof=1)),
        }
    out["cv_mean"] = {
        "mean": float(np.mean([row["cv_mean"] for row in rows])),
        "sd_over_replicates": float(np.std([row["cv_mean"] for row in rows], ddof=1)),
    }
    out["coverage"] = {}
    for interval in ("mean_ci", "naive_ci", "spread"):
        out["coverage"][interval] = {
            f"theta_{n}": _coverage(rows, interval, np.full(len(rows), out["targets"][f"theta_{n}"]["value"]))
            for n in (420, 336)
        } | {"own_model_420": _coverage(rows, interval, np.array([row["large_c_420"] for row in rows]))}
    return out


def markdown(payload: dict[str, Any]) -> str:
    s = payload["summary"]
    labels = {
        "mean_ci": "Nadeau-Bengio corrected t (carrisk `mean_ci`)",
        "naive_ci": "naive t, sd / sqrt(15)",
        "spread": "2.5-97.5% spread of fold estimates",
    }
    lines = [
        "# Coverage of the cross-validated mean's confidence interval",
        "",
        f"`python -m benchmarks.cv_coverage{' --quick' if payload['mode'] == 'quick' else ''}`, {payload['date']}, "
        f"{payload['mode']} mode: {len(payload['replicates'])} replicate cohorts of n = {N_TRAIN}, coxnet "
        f"(alpha_ratio {MODEL['alpha_ratio']}, l1_ratio {MODEL['l1_ratio']}), {FOLDS}-fold x {REPEATS}, "
        f"Harrell's C; truth from a {N_LARGE:,}-patient independent cohort.",
        "",
        f"Procedure's true C: theta(420) = {s['targets']['theta_420']['value']:.4f} "
        f"(SE {s['targets']['theta_420']['standard_error']:.4f}), theta(336) = "
        f"{s['targets']['theta_336']['value']:.4f} (SE {s['targets']['theta_336']['standard_error']:.4f}). "
        f"CV mean C: {s['cv_mean']['mean']:.4f} on average (sd {s['cv_mean']['sd_over_replicates']:.4f} "
        "over replicates).",
        "",
        "| 95% interval | covers theta(420) | covers theta(336) | covers own model's C | mean width |",
        "|---|---|---|---|---|",
    ]
    for key, label in labels.items():
        c = s["coverage"][key]
        cells = [
            f"{c[t]['coverage']:.1%} ({c[t]['coverage_95ci'][0]:.0%}-{c[t]['coverage_95ci'][1]:.0%})"
            for t in ("theta_420", "theta_336", "own_model_420")
        ]
        lines.append(f"| {label} | {' | '.join(cells)} | {c['theta_420']['mean_width']:.3f} |")
    lines += [
        "",
        "Coverage in parentheses: exact binomial 95% interval over the replicates. See the module docstring of "
        "`benchmarks/cv_coverage.py` for the estimand.",
        "",
    ]
    return "\n".join(lines)


def run(settings: _common.Settings, out: Path, n_jobs: int = _common.N_CORES) -> dict[str, Any]:
    """Run the coverage study in ``settings.mode`` and write ``cv_coverage.json`` and ``cv_coverage.md``."""
    n = REPLICATES[settings.mode]
    large = _large_cohort()
    _common.log(f"cv_coverage: {n} replicates, {n_jobs} jobs")
    rows = joblib.Parallel(n_jobs=n_jobs)(joblib.delayed(replicate)(r, large) for r in range(n))
    payload = _common.header(
        "cv_coverage",
        settings,
        {"train_base": TRAIN_SEED_BASE, "large": LARGE_SEED, "cv_and_subset": "replicate index r"},
    ) | {"replicates": rows, "summary": summarize(rows), "model": MODEL, "folds": FOLDS, "repeats": REPEATS}
    _common.write_json(out / "cv_coverage.json", payload)
    atomic_write_text(out / "cv_coverage.md", markdown(payload))
    _common.log(markdown(payload))
    return payload


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=f"{REPLICATES['quick']} replicates")
    parser.add_argument("--out", type=Path, default=_common.RESULTS_DIR)
    parser.add_argument("--n-jobs", type=int, default=_common.N_CORES)
    args = parser.parse_args()
    run(_common.QUICK if args.quick else _common.FULL, args.out, args.n_jobs)
