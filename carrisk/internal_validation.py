"""Internal validation by bootstrap optimism correction (Harrell, Lee & Mark 1996; R rms ``validate``).

The whole tuned pipeline (feature building, imputation, scaling, hyper-parameter search, final fit) is refitted
on each of ``n_bootstrap`` bootstrap resamples of the development data. Each refit is scored on its own resample
(apparent) and on the original data (test); the mean difference is the optimism, and

    corrected = apparent performance of the model fitted on all data - mean optimism.

Measures: Harrell's C of the predicted event probability by the horizon, the calibration slope (Cox model on
log(-log S(horizon))) and calibration-in-the-large (observed Kaplan-Meier minus mean predicted event
probability). The corrected figures estimate how the model fitted on all the data would perform in new patients
from the same population; the benchmark ``python -m benchmarks.internal_validation`` checks on the simulator that
they are closer to that truth than the apparent ones.

References
----------
.. [1] Harrell, F. E., Lee, K. L., & Mark, D. B. (1996). "Multivariable prognostic models: issues in developing
       models, evaluating assumptions and adequacy, and measuring and reducing errors". Statistics in Medicine,
       15(4), 361-387.
.. [2] Steyerberg, E. W., Harrell, F. E., et al. (2001). "Internal validation of predictive models: efficiency of
       some procedures for logistic regression analysis". Journal of Clinical Epidemiology, 54(8), 774-781.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from carrisk.decision_curves import kaplan_meier_at
from carrisk.evaluate import calibration_slope
from carrisk.metrics import harrell_c
from carrisk.models import check_survival_target
from carrisk.schema import TWELVE_MONTHS_DAYS
from carrisk.tuning import final_pipeline, tuned_model

__all__ = ["InternalValidation", "bootstrap_optimism", "performance"]

MEASURES = ("harrell_c", "calibration_slope", "citl")


def performance(pipeline: Any, records: pd.DataFrame, y: np.ndarray, horizon: float) -> dict[str, float]:
    """Harrell's C, calibration slope and calibration-in-the-large of a fitted pipeline on ``records``."""
    event, time = check_survival_target(y)
    design = pipeline[:-1].transform(records)
    surv = np.asarray(pipeline[-1].predict_survival_matrix(design, np.array([horizon]))[:, 0], dtype=float)
    return {
        "harrell_c": harrell_c(event, time, 1.0 - surv),
        "calibration_slope": calibration_slope(event, time, surv)[0],
        "citl": (1.0 - kaplan_meier_at(event, time, horizon)) - float(np.mean(1.0 - surv)),
    }


@dataclass
class InternalValidation:
    """Result of :func:`bootstrap_optimism`: ``summary`` has ``measure``, ``apparent``, ``optimism``,
    ``corrected`` and ``n_bootstrap`` (refits that succeeded); ``refits`` holds every refit's scores."""

    summary: pd.DataFrame
    refits: pd.DataFrame
    settings: dict[str, Any]

    def corrected(self, measure: str) -> float:
        return float(self.summary.set_index("measure").loc[measure, "corrected"])

    def to_text(self) -> str:
        return self.summary.to_string(index=False, float_format=lambda v: f"{v:.3f}")


def bootstrap_optimism(
    records: pd.DataFrame,
    y: np.ndarray,
    model: str = "coxnet",
    *,
    n_bootstrap: int = 200,
    seed: int = 0,
    horizon: float = TWELVE_MONTHS_DAYS,
    spec: Any = None,
    grid: Mapping[str, Sequence[Any]] | None = None,
    inner_folds: int = 3,
    **params: Any,
) -> InternalValidation:
    """Optimism-corrected C, calibration slope and calibration-in-the-large from bootstrap refits.

    Parameters
    ----------
    records, y
        Development records and survival target.
    model : {"rsf", "coxnet", "coxph", "gbsa"}
        The model, tuned as :func:`carrisk.tuning.tuned_model` does (the tuning is repeated in every refit).
    n_bootstrap : int, default 200
        Bootstrap refits (Harrell recommends >= 200).
    seed : int, default 0
        Seeds the resampling and every fit (recorded).
    horizon : float, default 365.25
        Days at which the predicted event probability is scored.
    spec, grid, inner_folds, **params
        As for :func:`carrisk.tuning.tuned_model`.

    Returns
    -------
    InternalValidation
    """
    records = records.reset_index(drop=True)
    check_survival_target(y)

    def fit(rows: pd.DataFrame, target: np.ndarray) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tuned = tuned_model(model, spec, grid, inner_folds=inner_folds, random_state=seed, **params)
            return final_pipeline(tuned.fit(rows, target))

    apparent = performance(fit(records, y), records, y, horizon)
    rng = np.random.default_rng(seed)
    rows = []
    for b in range(n_bootstrap):
        index = rng.integers(0, len(records), len(records))
        sample, target = records.iloc[index].reset_index(drop=True), y[index]
        try:
            pipeline = fit(sample, target)
            own = performance(pipeline, sample, target, horizon)
            test = performance(pipeline, records, y, horizon)
        except (ValueError, ArithmeticError, np.linalg.LinAlgError):
            continue
        rows.append(
            {"refit": b, **{f"{m}_apparent": own[m] for m in MEASURES}, **{f"{m}_test": test[m] for m in MEASURES}}
        )
    refits = pd.DataFrame(rows)
    summary = []
    for measure in MEASURES:
        if refits.empty:
            optimism, used = float("nan"), 0
        else:
            difference = (refits[f"{measure}_apparent"] - refits[f"{measure}_test"]).to_numpy(dtype=float)
            finite = difference[np.isfinite(difference)]
            optimism, used = (float(finite.mean()) if finite.size else float("nan")), int(finite.size)
        summary.append(
            {
                "measure": measure,
                "apparent": apparent[measure],
                "optimism": optimism,
                "corrected": apparent[measure] - optimism,
                "n_bootstrap": used,
            }
        )
    settings = {"model": model, "n_bootstrap": n_bootstrap, "seed": seed, "horizon_days": horizon}
    return InternalValidation(pd.DataFrame(summary), refits, settings)
