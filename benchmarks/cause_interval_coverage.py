"""How often does ``predict --causes``' 95% interval of a cause's incidence cover the simulator's true incidence?

``python -m benchmarks.cause_interval_coverage [--replicates R] [--test-n N]``: for each replicate, the default EFS
model (``fit_efs_model``, which also fits the bootstrapped cause-specific model) is trained on
``simulate_cohort(420, seed=1000 + r)``; an independent ``simulate_cohort(N, seed=424242)`` is predicted with
:meth:`carrisk.EFSModel.predict_causes`; each cause's 12-month interval is scored against the true
``true_cif_<cause>_12mo`` of the truth file (coverage, mean width, mean error). The intervals describe the cause
shares' bootstrap only, not the EFS model's own uncertainty (see ``carrisk.competing.prediction``), so they are
expected to under-cover where the EFS part is biased; this benchmark says by how much.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
from typing import Any

import numpy as np

from benchmarks._common import RESULTS_DIR, machine, write_json
from carrisk import fit_efs_model, simulate_cohort, survival_target
from carrisk._io import atomic_write_text
from carrisk.competing.outcomes import CAUSES
from carrisk.provenance import package_versions

TEST_SEED = 424242


def run(replicates: int, test_n: int) -> dict[str, Any]:
    test = simulate_cohort(test_n, seed=TEST_SEED)
    records = test.records.drop(columns=[c for c in test.records.columns if c in {"efs_days", "efs_event"}])
    hits: dict[str, list[float]] = {c: [] for c in CAUSES}
    widths: dict[str, list[float]] = {c: [] for c in CAUSES}
    errors: dict[str, list[float]] = {c: [] for c in CAUSES}
    for r in range(replicates):
        train = simulate_cohort(420, seed=1000 + r).records
        model = fit_efs_model(train, survival_target(train), seed=r, synthetic=True)
        table = model.predict_causes(records, horizons={"12mo": 365.25})
        for cause in CAUSES:
            truth = test.truth[f"true_cif_{cause}_12mo"].to_numpy(dtype=float)
            low, point, high = (table[f"cif_{cause}_12mo{s}"].to_numpy(dtype=float) for s in ("_lo", "", "_hi"))
            hits[cause].append(float(np.mean((low <= truth) & (truth <= high))))
            widths[cause].append(float(np.mean(high - low)))
            errors[cause].append(float(np.mean(point - truth)))
        print(f"replicate {r + 1}/{replicates}: cd19neg coverage {hits['cd19neg'][-1]:.1%}", flush=True)
    return {
        "replicates": replicates,
        "test_n": test_n,
        "test_seed": TEST_SEED,
        "coverage": {c: float(np.mean(v)) for c, v in hits.items()},
        "mean_width": {c: float(np.mean(v)) for c, v in widths.items()},
        "mean_error": {c: float(np.mean(v)) for c, v in errors.items()},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=5)
    parser.add_argument("--test-n", type=int, default=2000)
    args = parser.parse_args(argv)
    provenance = {
        "part": "cause_interval_coverage",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": package_versions(),
        "load_average_before": os.getloadavg()[0],
    }
    result = {**provenance, **run(args.replicates, args.test_n)}
    write_json(RESULTS_DIR / "cause_interval_coverage.json", result)
    lines = [
        "# Per-patient cause intervals against the truth (12 months)",
        "",
        f"`python -m benchmarks.cause_interval_coverage --replicates {args.replicates} --test-n {args.test_n}`, "
        f"{result['date']}: default model + cause model trained on {args.replicates} cohorts of n = 420, "
        f"scored on simulate_cohort({args.test_n}, seed={TEST_SEED}) against its true incidences.",
        "",
        "| cause | 95% interval covers the true 12-month incidence | mean width | mean error |",
        "|---|---|---|---|",
        *(
            f"| {c} | {result['coverage'][c]:.1%} | {result['mean_width'][c]:.3f} | {result['mean_error'][c]:+.3f} |"
            for c in CAUSES
        ),
    ]
    atomic_write_text(RESULTS_DIR / "cause_interval_coverage.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
