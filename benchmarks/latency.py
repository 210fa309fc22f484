"""Prediction latency of the shipped model: one patient, and a batch of 10,000, with and without top reasons.

Loads ``models/default`` with :func:`carrisk.load_model` (if it is missing, a model is trained with
:func:`carrisk.fit_efs_model` on ``simulate_cohort(420, seed=7)`` and that is said in the JSON). Patients are
``simulate_cohort(10000, seed=1).records`` without the outcome columns. ``predict_efs`` computes the EFS curve,
EFS at 6 and 12 months with the 95% interval (infinitesimal jackknife for a forest), the risk group and, with
``top > 0``, the top reasons (TreeSHAP of EFS at 6 months).
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

from benchmarks import _common
from carrisk import fit_efs_model, load_model, load_survival_data, simulate_cohort
from carrisk.schema import PREINFUSION_COLUMNS

MODEL_DIR = Path(__file__).parent.parent / "models" / "default"
PATIENT_SEED = 1
BATCH_ROWS = 10_000
FALLBACK_SEED = 7
TOP_REASONS = 3


def _model() -> tuple[Any, dict[str, Any]]:
    if (MODEL_DIR / "manifest.json").exists():
        start = time.perf_counter()
        model = load_model(MODEL_DIR)
        return model, {"source": "models/default", "load_seconds": time.perf_counter() - start}
    data = load_survival_data(simulate_cohort(420, seed=FALLBACK_SEED).records)
    start = time.perf_counter()
    model = fit_efs_model(data.records, data.y, synthetic=True, seed=0)
    return model, {
        "source": f"models/default missing: fit_efs_model on simulate_cohort(420, seed={FALLBACK_SEED})",
        "fit_seconds": time.perf_counter() - start,
    }


def run(settings: _common.Settings, out_dir: Path = _common.RESULTS_DIR) -> dict[str, Any]:
    """Run the latency part and write ``latency.json``."""
    result = _common.header("latency", settings, {"patients": PATIENT_SEED})
    warnings.simplefilter("ignore", category=UserWarning)
    model, source = _model()
    estimator = model.estimator
    result["model"] = source | {
        "model": model.model_name,
        "params": model.params,
        "trees": len(getattr(getattr(estimator, "forest_", None), "estimators_", [])) or None,
        "time_grid_points": len(model.time_grid),
    }
    patients = simulate_cohort(BATCH_ROWS, seed=PATIENT_SEED).records[list(PREINFUSION_COLUMNS)]
    one = patients.iloc[[0]]
    single: dict[str, Any] = {}
    for top in (TOP_REASONS, 0):
        _common.log(f"latency: one patient, top={top}")
        median, all_seconds = _common.median_time(
            lambda t=top: model.predict_efs(one, top=t), settings.latency_single_runs, warmup=True
        )
        single[f"top_{top}"] = {"median_seconds": median, "min_seconds": min(all_seconds), "runs": len(all_seconds)}
    batch: dict[str, Any] = {}
    for top, rows in ((0, settings.latency_batch_rows), (TOP_REASONS, settings.latency_batch_rows_with_reasons)):
        _common.log(f"latency: {rows} patients, top={top}")
        start = time.perf_counter()
        model.predict_efs(patients.iloc[:rows], top=top)
        seconds = time.perf_counter() - start
        batch[f"top_{top}"] = {
            "rows": rows,
            "seconds": seconds,
            "ms_per_patient": 1000 * seconds / rows,
            "runs": 1,
        }
    result["single_patient"] = single
    result["batch"] = batch
    result["setup"] = (
        f"predict_efs on simulate_cohort({BATCH_ROWS}, seed={PATIENT_SEED}) records without outcome columns; single "
        f"patient: median of {settings.latency_single_runs} calls after one warm-up call; batch: one call "
        "after the warm-up; top = number of top reasons (0 skips SHAP)"
    )
    _common.write_json(out_dir / "latency.json", result)
    return result
