"""Bootstrap optimism correction against R rms ``validate.cph``, all 50 stored resamples, at 6 and 12 months.

    python -m benchmarks.rms_crosscheck      # about 1 minute

Replays the resamples of ``tests/reference/rms_validate.R`` (GBSG2, unpenalised Cox model with Efron's ties)
through :func:`carrisk.internal_validation.bootstrap_optimism` and compares Harrell's C (= Dxy / 2 + 1/2) and
the calibration slope with rms's (its Newton-Raphson tolerance tightened, and with its defaults). The test
``tests/test_reference_r.py`` checks the first 10 resamples at 6 months; this script shows all 50 and the
12-month horizon, where one refit predicts an event-free probability below carrisk's clip of 1e-6.

Writes ``results/rms_crosscheck.md``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from carrisk._io import atomic_write_text
from carrisk.evaluate import PROBABILITY_CLIP
from carrisk.features import FeatureSpec
from carrisk.internal_validation import bootstrap_optimism
from carrisk.models import make_pipeline
from carrisk.target import make_target

REFERENCE = Path(__file__).parents[1] / "tests" / "reference"
RESULTS = Path(__file__).parent / "results"
HORIZONS = {"6 months": 182.625, "12 months": 365.25}


def _clipped_refits(
    records: pd.DataFrame, y: np.ndarray, spec: FeatureSpec, indices: np.ndarray, horizon: float
) -> list[int]:
    """Refits whose predicted event-free probability at ``horizon`` falls outside carrisk's clip for a patient."""
    clipped = []
    for b, index in enumerate(indices):
        pipeline = make_pipeline("coxph", spec, alpha=0.0, ties="efron").fit(
            records.iloc[index].reset_index(drop=True), y[index]
        )
        surv = pipeline[-1].predict_survival_matrix(pipeline[:-1].transform(records), np.array([horizon]))[:, 0]
        if np.any((surv < PROBABILITY_CLIP) | (surv > 1.0 - PROBABILITY_CLIP)):
            clipped.append(b)
    return clipped


def main() -> None:
    data = pd.read_csv(REFERENCE / "gbsg2.csv")
    y = make_target(data["cens"].to_numpy(dtype=bool), data["time"].to_numpy(dtype=float))
    records, spec = data.drop(columns=["time", "cens"]), FeatureSpec.generic(data, "time", "cens")
    indices = np.loadtxt(REFERENCE / "gbsg2_boot_indices.csv.gz", delimiter=",", dtype=int) - 1
    reference = pd.read_csv(REFERENCE / "rms_validate.csv")
    reference = reference[reference["B"] == len(indices)]
    rms = {tol: table.set_index("measure") for tol, table in reference.groupby("tolerance")}
    lines = [
        "# Bootstrap optimism correction: carrisk against R rms validate.cph",
        "",
        f"Run {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')} by `python -m benchmarks.rms_crosscheck`: GBSG2 "
        f"(686 patients, 299 events), unpenalised Cox model (Efron ties), the same {len(indices)} bootstrap "
        "resamples on both sides (`tests/reference/rms_validate.R`). rms figures: C = Dxy / 2 + 1/2; 'tight' = "
        "validate.cph with its Newton-Raphson tolerance tightened to 1e-10, 'default' = rms's eps 1e-4, 10 steps.",
        "",
        "| horizon | measure | figure | carrisk | rms (tight) | difference | rms (default) |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, horizon in HORIZONS.items():
        result = bootstrap_optimism(
            records, y, "coxph", spec=spec, indices=indices, horizon=horizon, curve=False, alpha=0.0, ties="efron"
        )
        ours = result.summary.set_index("measure")
        for measure, name, scale, shift in (("harrell_c", "Dxy", 0.5, 0.5), ("calibration_slope", "Slope", 1.0, 0.0)):
            for figure, column in (
                ("apparent", "index.orig"),
                ("optimism", "optimism"),
                ("corrected", "index.corrected"),
            ):
                offset = 0.0 if figure == "optimism" else shift
                tight = rms["tight"].loc[name, column] * scale + offset
                loose = rms["rms"].loc[name, column] * scale + offset
                value = ours.loc[measure, figure]
                lines.append(
                    f"| {label} | {measure} | {figure} | {value:.9f} | {tight:.9f} | {value - tight:+.1e} "
                    f"| {loose:.9f} |"
                )
        clipped = _clipped_refits(records, y, spec, indices, horizon)
        lines.append(f"| {label} | refits with a prediction outside [1e-6, 1 - 1e-6] | | {clipped or 'none'} | | | |")
    text = "\n".join(lines) + "\n"
    RESULTS.mkdir(exist_ok=True)
    atomic_write_text(RESULTS / "rms_crosscheck.md", text)
    print(text)


if __name__ == "__main__":
    main()
