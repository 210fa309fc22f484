"""Kaplan-Meier event-free survival at one horizon: the point estimate, and the estimate with its interval.

Both functions follow the same rules, kept in :func:`kaplan_meier_survival_at`: 1 before the first event; 0
once every patient has had the event (and 0 stays 0 beyond the last follow-up); NaN when the longest follow-up
is a censoring before the horizon (the step function is not defined there) or there are no patients.
:func:`kaplan_meier_survival_at` is the fast path for bootstrap loops (one ``np.unique`` and a product, no
interval); :func:`kaplan_meier_at` adds the 95% interval from scikit-survival. The competing-risks counterpart
(Aalen-Johansen) is :mod:`carrisk.competing.nonparametric`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from sksurv.nonparametric import kaplan_meier_estimator

__all__ = ["kaplan_meier_at", "kaplan_meier_survival_at"]


def kaplan_meier_survival_at(event: ArrayLike, time: ArrayLike, horizon: float) -> float:
    """Kaplan-Meier survival at ``horizon``: the product of ``1 - d_j / n_j`` over event times ``t_j <= horizon``.

    The same number as ``sksurv.nonparametric.kaplan_meier_estimator`` read at ``horizon`` (tested to the bit),
    without the interval: the fast path for loops over bootstrap resamples and thresholds.

    Parameters
    ----------
    event, time : arrays, shape (n,)
        Observed outcome (event indicator, follow-up).
    horizon : float
        Time at which the step function is read.

    Returns
    -------
    float
        The estimate; NaN when nobody is followed up to ``horizon`` (the largest time is a censoring below it),
        unless the estimate has already reached 0 (everybody had an event), where it stays 0 (``dcurves``
        returns NaN there); NaN for no patients.
    """
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=bool)
    if time.size == 0:
        return float("nan")
    event_times, deaths = np.unique(time[event & (time <= horizon)], return_counts=True)
    at_risk = time.size - np.searchsorted(np.sort(time), event_times, side="left")
    survival = float(np.prod(1.0 - deaths / at_risk))
    if time.max() < horizon and survival > 0.0:
        return float("nan")
    return survival


def kaplan_meier_at(event: ArrayLike, time: ArrayLike, horizon: float) -> tuple[float, float, float]:
    """Kaplan-Meier EFS at ``horizon`` with its 95% confidence interval (Greenwood variance, log-log scale).

    The estimate is :func:`kaplan_meier_survival_at`; the interval is
    ``sksurv.nonparametric.kaplan_meier_estimator(..., conf_type="log-log")`` read at ``horizon``.

    Parameters
    ----------
    event, time : arrays, shape (n,)
        Observed outcome.
    horizon : float
        Time at which the step function is read.

    Returns
    -------
    (estimate, lower, upper)
        1 with a degenerate interval before the first event; 0 with NaN bounds (the log-log interval is not
        defined at 0) once every patient has had the event; NaN when the longest follow-up is a censoring
        before ``horizon`` (the estimate is not defined there).
    """
    event = np.asarray(event, dtype=bool)
    time = np.asarray(time, dtype=float)
    estimate = kaplan_meier_survival_at(event, time, horizon)
    if np.isnan(estimate):
        return (np.nan, np.nan, np.nan)
    if estimate == 0.0:  # the log-log interval is not defined at 0
        return (0.0, np.nan, np.nan)
    times, _, conf = kaplan_meier_estimator(event, time, conf_type="log-log")
    index = int(np.searchsorted(times, horizon, side="right")) - 1
    if index < 0:
        return (1.0, 1.0, 1.0)
    return (estimate, float(conf[0, index]), float(conf[1, index]))
