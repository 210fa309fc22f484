"""Internal validation by bootstrap optimism correction (Harrell, Lee & Mark 1996; R rms ``validate``).

The whole tuned pipeline (feature building, imputation, scaling, hyper-parameter search, final fit) is refitted
on each of ``n_bootstrap`` bootstrap resamples of the development data. Each refit is scored on its own resample
(apparent) and on the original data (test); the mean difference is the optimism, and

    corrected = apparent performance of the model fitted on all data - mean optimism.

Measures: Harrell's C of the predicted event probability by the horizon, the calibration slope (Cox model on
log(-log S(horizon))) and calibration-in-the-large (observed Kaplan-Meier minus mean predicted event
probability).

The calibration curve is corrected the same way, point by point (rms ``calibrate``, ``method="boot"``,
``what="observed-predicted"``): on a fixed grid of predicted event probabilities (1st to 99th percentile of the
final model's predictions), each refit's smoothed calibration curve (:func:`carrisk.calibration.calibration_curve`,
the Austin-Harrell-van Klaveren spline Cox model) on its own resample minus its curve on the original data is
that refit's optimism at each grid point; the mean over refits is subtracted from the apparent curve of the final
model. rms smooths with hare instead of a spline Cox model and reads survival rather than event probabilities;
the resampling and the subtraction are the same.

With the same resamples (``indices``) and an unpenalised Cox model with Efron's ties, C and the calibration slope
equal rms ``validate.cph``'s to 1e-9 (``tests/test_reference_r.py``; README, "Cross-checked against R rms").

The corrected figures estimate how the model fitted on all the data would perform in new patients from the same
population; the benchmark ``python -m benchmarks.internal_validation`` checks on the simulator that they are
closer to that truth than the apparent ones.

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
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from carrisk.calibration import calibration_curve
from carrisk.decision_curves import kaplan_meier_at
from carrisk.evaluate import calibration_slope
from carrisk.metrics import harrell_c
from carrisk.models import check_survival_target
from carrisk.schema import TWELVE_MONTHS_DAYS
from carrisk.tuning import final_pipeline, tuned_model

__all__ = ["InternalValidation", "bootstrap_optimism", "performance"]

MEASURES = ("harrell_c", "calibration_slope", "citl")
#: Points of the optimism-corrected calibration curve.
CURVE_POINTS = 50


def _predicted_efs(pipeline: Any, records: pd.DataFrame, horizon: float) -> np.ndarray:
    design = pipeline[:-1].transform(records)
    return np.asarray(pipeline[-1].predict_survival_matrix(design, np.array([horizon]))[:, 0], dtype=float)


def _scores(event: np.ndarray, time: np.ndarray, surv: np.ndarray, horizon: float) -> dict[str, float]:
    return {
        "harrell_c": harrell_c(event, time, 1.0 - surv),
        "calibration_slope": calibration_slope(event, time, surv)[0],
        "citl": (1.0 - kaplan_meier_at(event, time, horizon)) - float(np.mean(1.0 - surv)),
    }


def performance(pipeline: Any, records: pd.DataFrame, y: np.ndarray, horizon: float) -> dict[str, float]:
    """Harrell's C, calibration slope and calibration-in-the-large of a fitted pipeline on ``records``."""
    event, time = check_survival_target(y)
    return _scores(event, time, _predicted_efs(pipeline, records, horizon), horizon)


def _observed_on_grid(
    event: np.ndarray, time: np.ndarray, surv: np.ndarray, horizon: float, grid: np.ndarray
) -> np.ndarray:
    """Smoothed observed event probability at the predicted event probabilities ``grid`` (NaN if not fitted)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return calibration_curve(event, time, surv, horizon, grid=grid)["observed"].to_numpy()
    except ValueError:
        return np.full(grid.shape, np.nan)


@dataclass
class InternalValidation:
    """Result of :func:`bootstrap_optimism`.

    Attributes
    ----------
    summary : DataFrame
        ``measure``, ``apparent``, ``optimism``, ``corrected`` and ``n_bootstrap`` (refits that succeeded).
    refits : DataFrame
        Every refit's scores on its own resample (``_apparent``) and on the original data (``_test``).
    settings : dict
        Model, refits, seed, horizon.
    calibration_curve : DataFrame
        One row per grid point: ``predicted`` (event probability by the horizon), ``apparent`` (smoothed observed
        event probability of the final model on the development data), ``optimism`` (mean over refits of own-resample
        minus original-data curve), ``corrected`` = apparent - optimism, and ``n_bootstrap`` (refits whose two curves
        could be fitted at that point). Empty if the apparent curve cannot be fitted.
    """

    summary: pd.DataFrame
    refits: pd.DataFrame
    settings: dict[str, Any]
    calibration_curve: pd.DataFrame = field(default_factory=pd.DataFrame)

    def corrected(self, measure: str) -> float:
        return float(self.summary.set_index("measure").loc[measure, "corrected"])

    def to_text(self) -> str:
        """The summary table, then the calibration curve at a few predicted probabilities."""
        text = self.summary.to_string(index=False, float_format=lambda v: f"{v:.3f}")
        curve = self.calibration_curve
        if curve.empty:
            return text
        shown = curve.iloc[np.unique(np.linspace(0, len(curve) - 1, 6).round().astype(int))]
        return (
            f"{text}\n\nCalibration curve (event probability by {self.settings['horizon_days']:g} days; smoothed "
            "observed at each predicted probability):\n"
            + shown.to_string(index=False, float_format=lambda v: f"{v:.3f}")
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: settings, summary rows and the calibration curve (column -> list)."""
        return {
            "settings": self.settings,
            "summary": self.summary.to_dict(orient="records"),
            "calibration_curve": self.calibration_curve.to_dict(orient="list"),
        }


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
    indices: Sequence[Sequence[int]] | np.ndarray | None = None,
    curve: bool = True,
    **params: Any,
) -> InternalValidation:
    """Optimism-corrected C, calibration slope, calibration-in-the-large and calibration curve from bootstrap refits.

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
    indices : array of int, shape (n_resamples, n), optional
        The bootstrap resamples as 0-based row numbers, one row per refit, instead of drawing ``n_bootstrap`` of
        them (to replay another program's resamples, e.g. R rms ``validate``'s; ``n_bootstrap`` is then ignored).
    curve : bool, default True
        Also correct the smoothed calibration curve (two spline Cox fits per refit); False leaves
        ``calibration_curve`` empty.
    spec, grid, inner_folds, **params
        As for :func:`carrisk.tuning.tuned_model`.

    Returns
    -------
    InternalValidation
    """
    records = records.reset_index(drop=True)
    check_survival_target(y)
    resamples = None if indices is None else _checked_indices(indices, len(records))
    if resamples is not None:
        n_bootstrap = len(resamples)

    def fit(rows: pd.DataFrame, target: np.ndarray) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tuned = tuned_model(model, spec, grid, inner_folds=inner_folds, random_state=seed, **params)
            return final_pipeline(tuned.fit(rows, target))

    event, time = check_survival_target(y)
    final_efs = _predicted_efs(fit(records, y), records, horizon)
    apparent = _scores(event, time, final_efs, horizon)
    low, high = np.quantile(1.0 - final_efs, [0.01, 0.99])
    curve_grid = np.linspace(low, high, CURVE_POINTS)
    apparent_curve = (
        _observed_on_grid(event, time, final_efs, horizon, curve_grid) if curve else np.full(CURVE_POINTS, np.nan)
    )
    rng = np.random.default_rng(seed)
    rows, curve_optimism = [], []
    for b in range(n_bootstrap):
        index = resamples[b] if resamples is not None else rng.integers(0, len(records), len(records))
        sample, target = records.iloc[index].reset_index(drop=True), y[index]
        try:
            pipeline = fit(sample, target)
            own_efs = _predicted_efs(pipeline, sample, horizon)
            with warnings.catch_warnings():
                # A resample can miss a rare level (e.g. 2 of 420 patients); the refit then scores the original
                # patients with that level as its reference, as it would any new patient: expected, not news.
                warnings.filterwarnings("ignore", message=r".*were not seen in training", category=UserWarning)
                test_efs = _predicted_efs(pipeline, records, horizon)
            own = _scores(event[index], time[index], own_efs, horizon)
            test = _scores(event, time, test_efs, horizon)
        except (ValueError, ArithmeticError, np.linalg.LinAlgError):
            continue
        rows.append(
            {"refit": b, **{f"{m}_apparent": own[m] for m in MEASURES}, **{f"{m}_test": test[m] for m in MEASURES}}
        )
        if curve:
            curve_optimism.append(
                _observed_on_grid(event[index], time[index], own_efs, horizon, curve_grid)
                - _observed_on_grid(event, time, test_efs, horizon, curve_grid)
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
    settings = {
        "model": model,
        "n_bootstrap": n_bootstrap,
        "seed": seed,
        "horizon_days": horizon,
        "resamples": "given (indices)" if resamples is not None else "drawn (numpy default_rng(seed))",
    }
    return InternalValidation(
        pd.DataFrame(summary), refits, settings, _corrected_curve(curve_grid, apparent_curve, curve_optimism)
    )


def _checked_indices(indices: Sequence[Sequence[int]] | np.ndarray, n: int) -> np.ndarray:
    """``indices`` as an (n_resamples, n) integer array of 0-based row numbers, or a one-line ValueError."""
    resamples = np.asarray(indices)
    if resamples.ndim != 2 or resamples.shape[1] != n or not np.issubdtype(resamples.dtype, np.integer):
        raise ValueError(
            f"indices must be an integer array with one row per resample and {n} columns (one per patient), "
            f"got shape {resamples.shape} and dtype {resamples.dtype}"
        )
    if resamples.size and (resamples.min() < 0 or resamples.max() >= n):
        raise ValueError(
            f"indices must be 0-based row numbers in [0, {n - 1}], got values from {resamples.min()} to "
            f"{resamples.max()}"
        )
    return resamples


def _corrected_curve(grid: np.ndarray, apparent: np.ndarray, optimism: Sequence[np.ndarray]) -> pd.DataFrame:
    """The apparent curve, the mean optimism of the refits at each grid point, and their difference."""
    if not np.all(np.isfinite(apparent)):
        return pd.DataFrame(columns=["predicted", "apparent", "optimism", "corrected", "n_bootstrap"])
    stacked = np.vstack(optimism) if len(optimism) else np.full((0, grid.size), np.nan)
    used = np.isfinite(stacked).sum(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # mean of no refit is NaN, as it should be
        mean_optimism = np.nanmean(stacked, axis=0) if len(stacked) else np.full(grid.size, np.nan)
    return pd.DataFrame(
        {
            "predicted": grid,
            "apparent": apparent,
            "optimism": mean_optimism,
            "corrected": apparent - mean_optimism,
            "n_bootstrap": used,
        }
    )
