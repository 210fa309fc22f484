"""Summaries of cross-validation estimates: the spread of the fold estimates and a confidence interval of their mean.

The fold estimates of repeated K-fold cross-validation share most of their training patients, so neither their
spread nor the naive ``sd / sqrt(K r)`` describes the uncertainty of their mean. The Nadeau-Bengio correction
[1]_, in the form Bouckaert & Frank [2]_ gave it for r repeats of K-fold cross-validation, inflates the variance of
the mean by the ratio of test to training size:

    Var(mean) ~= (1 / (K r) + n_test / n_train) * s^2,

with ``s^2`` the sample variance of the K r fold estimates, and uses Student's t with K r - 1 degrees of freedom.
The interval is for the expected performance of the *procedure* (the modelling pipeline, including its tuning)
when trained on ``n_train`` patients from the same population, not for one fitted model.

The t interval is symmetric and can reach past a measure's range (an ICI of 0.02 with a wide interval had a lower
limit below 0). Limits of measures confined to [0, 1] (concordance, AUC, Brier and integrated Brier scores, ICI,
E50, E90; :func:`metric_bounds`) are clipped to it, and the summary says when a limit was clipped.

References
----------
.. [1] Nadeau, C., & Bengio, Y. (2003). "Inference for the generalization error". Machine Learning, 52(3),
       239-281.
.. [2] Bouckaert, R. R., & Frank, E. (2004). "Evaluating the replicability of significance tests for comparing
       learning algorithms". PAKDD 2004, LNCS 3056, 3-12.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from carrisk.metrics import summarize

MEAN_CI_METHOD = "nadeau-bengio"
MEAN_CI_DESCRIPTION = (
    "95% confidence interval of the cross-validated mean: Nadeau-Bengio corrected repeated-CV t interval, "
    "variance factor 1/(K r) + n_test/n_train, t with K r - 1 df (Bouckaert & Frank 2004); limits of measures "
    "confined to [0, 1] (C, AUC, Brier, IBS, ICI, E50, E90) clipped to it (mean_ci_clipped)"
)
#: Name prefixes of the measures that lie in [0, 1] (the rest, e.g. calibration slope and O/E, are unbounded).
UNIT_INTERVAL_METRICS = ("harrell_c", "uno_c", "auc", "ibs", "brier", "ici", "e50", "e90")


def metric_bounds(name: str) -> tuple[float, float] | None:
    """The range of a cross-validation measure by its name: (0, 1) for :data:`UNIT_INTERVAL_METRICS`, else None."""
    return (0.0, 1.0) if name.startswith(UNIT_INTERVAL_METRICS) else None


SPREAD_DESCRIPTION = "2.5th-97.5th percentiles of the fold estimates (their spread, not a confidence interval)"


def corrected_cv_interval(
    values: Sequence[float],
    test_train_ratio: float,
    level: float = 0.95,
    bounds: tuple[float, float] | None = None,
) -> tuple[float, float]:
    """Nadeau-Bengio corrected repeated cross-validation t interval for the mean of the fold estimates.

    Parameters
    ----------
    values : sequence of float
        One estimate per outer fold of every repeat (K r values); NaN marks a failed fold and is left out.
    test_train_ratio : float
        ``n_test / n_train`` of the folds (their mean when the folds differ by a patient).
    level : float, default 0.95
        Confidence level.
    bounds : (float, float), optional
        The measure's range (e.g. :func:`metric_bounds`): the limits are clipped to it.

    Returns
    -------
    (float, float)
        ``mean -/+ t_{J-1, (1+level)/2} * sqrt((1/J + test_train_ratio) * s^2)`` with J finite values and
        ``s^2`` their sample variance (ddof=1), clipped to ``bounds``; NaN limits with fewer than 2 finite values.

    Raises
    ------
    ValueError
        If ``level`` is not in (0, 1) or ``test_train_ratio`` is negative or not finite.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level}")
    if not np.isfinite(test_train_ratio) or test_train_ratio < 0:
        raise ValueError(f"test_train_ratio must be a finite, non-negative number, got {test_train_ratio}")
    array = np.asarray(values, dtype=float)
    finite = array[~np.isnan(array)]
    if finite.size < 2:
        return (np.nan, np.nan)
    mean = float(finite.mean())
    variance = (1.0 / finite.size + test_train_ratio) * float(finite.var(ddof=1))
    half_width = float(stats.t.ppf(0.5 + level / 2.0, df=finite.size - 1)) * np.sqrt(variance)
    lower, upper = mean - half_width, mean + half_width
    if bounds is not None:
        lower, upper = float(np.clip(lower, *bounds)), float(np.clip(upper, *bounds))
    return (lower, upper)


def summarize_cv_metric(
    values: Sequence[float], test_train_ratio: float, level: float = 0.95, metric: str | None = None
) -> dict[str, Any]:
    """One metric over the outer folds: mean, sd, fold spread and the confidence interval of the mean.

    Parameters
    ----------
    values : sequence of float
        One value per outer fold (NaN = failed fold).
    test_train_ratio : float
        ``n_test / n_train`` of the folds, for :func:`corrected_cv_interval`.
    level : float, default 0.95
        Level of the interval of the mean.
    metric : str, optional
        The measure's name; the interval of the mean is clipped to its range (:func:`metric_bounds`).

    Returns
    -------
    dict
        ``mean``, ``sd``, ``spread`` ([2.5th, 97.5th] percentiles of the fold values), ``mean_ci`` (the corrected
        interval of the mean), ``mean_ci_clipped`` (whether a limit was clipped to the measure's range), ``ci``
        (deprecated alias of ``spread``, kept for JSON schema 1 readers; removed in the next schema version),
        ``folds``, ``n`` and ``n_failed`` (see :func:`carrisk.metrics.summarize`).
    """
    summary = summarize(values)
    bounds = None if metric is None else metric_bounds(metric)
    unclipped = corrected_cv_interval(values, test_train_ratio, level)
    lower, upper = corrected_cv_interval(values, test_train_ratio, level, bounds)
    return {
        "mean": summary["mean"],
        "sd": summary["sd"],
        "spread": summary["spread"],
        "mean_ci": [lower, upper],
        "mean_ci_clipped": bool(np.any(np.isfinite(unclipped) & (np.asarray([lower, upper]) != unclipped))),
        "ci": summary["ci"],
        "folds": summary["folds"],
        "n": summary["n"],
        "n_failed": summary["n_failed"],
    }
