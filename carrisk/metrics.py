"""Evaluation metrics for event-free survival predictions.

Pure functions on numpy arrays and scikit-survival structured targets (as built by
``sksurv.util.Surv.from_arrays``). The fields of a structured target may have any names: the boolean field is
taken as the event indicator and the floating-point field as the follow-up time.

Where scikit-survival has the metric, it is used (Uno's C, cumulative/dynamic AUC, Brier score, integrated
Brier score). Harrell's C uses lifelines' O(n log n) algorithm. The graphical calibration measures of Austin,
Harrell & van Klaveren [1]_ live in :mod:`carrisk.calibration` (``calibration_at`` and ``calibration_curve`` are
re-exported here).

Inverse-probability-of-censoring weights (IPCW) come from the Kaplan-Meier estimate of the censoring
distribution in the training fold, which is only defined up to the largest training time. A test observation
beyond that time cannot be weighted and makes scikit-survival raise, which happens in the cross-validation
fold that holds the overall longest follow-up. Before calling an IPCW metric, such observations are therefore
administratively censored at the largest training time (and an event exactly there is censored when the
censoring survival has dropped to zero). For every evaluation time below the largest training time, which is
the only range where these metrics are defined, this leaves the metric unchanged; data that scikit-survival
accepts as they are pass through untouched.

References
----------
.. [1] Austin, P. C., Harrell, F. E., & van Klaveren, D. (2020). "Graphical calibration curves and the
       integrated calibration index (ICI) for survival models". Statistics in Medicine, 39(21), 2714-2742.
.. [2] Uno, H., Cai, T., Pencina, M. J., D'Agostino, R. B., & Wei, L. J. (2011). "On the C-statistics for
       evaluating overall adequacy of risk prediction procedures with censored survival data".
       Statistics in Medicine, 30(10), 1105-1117.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from lifelines.utils import concordance_index
from sksurv.metrics import (
    brier_score,
    concordance_index_ipcw,
    cumulative_dynamic_auc,
    integrated_brier_score,
)
from sksurv.nonparametric import CensoringDistributionEstimator

from carrisk.calibration import calibration_at, calibration_curve
from carrisk.target import check_per_patient, make_target, target_arrays
from carrisk.units import HORIZONS_DAYS, TWO_YEARS_DAYS

DEFAULT_HORIZONS_DAYS: Mapping[str, float] = HORIZONS_DAYS

__all__ = [
    "brier_at",
    "brier_time_grid",
    "calibration_at",
    "calibration_curve",
    "choose_tau",
    "evaluate_predictions",
    "harrell_c",
    "integrated_brier",
    "summarize",
    "time_dependent_auc",
    "uno_c",
]


def _ipcw_targets(y_train: np.ndarray, y_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (train, test) targets in scikit-survival's layout, with the test follow-up made weightable.

    Test observations after the largest training time are censored there, and an event exactly at it is
    censored if the training censoring survival is zero there (see the module docstring for why no metric
    value below the largest training time changes).
    """
    train_event, train_time = target_arrays(y_train)
    test_event, test_time = target_arrays(y_test)
    sk_train = make_target(train_event, train_time)
    last_train_time = train_time.max()
    censoring = CensoringDistributionEstimator().fit(sk_train)
    censoring_survival_at_last = censoring.predict_proba(np.array([last_train_time]))[0]
    unweightable = (test_time > last_train_time) | (
        (test_time == last_train_time) & (censoring_survival_at_last == 0.0)
    )
    new_event = test_event & ~unweightable
    new_time = np.minimum(test_time, last_train_time)
    return sk_train, make_target(new_event, new_time)


def harrell_c(event: np.ndarray, time: np.ndarray, risk: np.ndarray) -> float:
    """Harrell's concordance index; a higher risk score should mean an earlier event.

    A pair (i, j) is comparable when patient i has an event and either ``time[j] > time[i]``, or
    ``time[j] == time[i]`` and patient j is censored (an event is taken to precede a censoring at the same
    time). Two events at the same time are not comparable. Among comparable pairs, ``risk[i] > risk[j]``
    counts 1 and ``risk[i] == risk[j]`` counts 1/2. These are the rules of
    ``sksurv.metrics.concordance_index_censored``, which the tests check against.

    Parameters
    ----------
    event : array of bool, shape (n,)
        Event indicator (True = event observed).
    time : array of float, shape (n,)
        Time of event or censoring.
    risk : array of float, shape (n,)
        Predicted risk score.

    Returns
    -------
    float
        C = (concordant + 0.5 * tied risk) / comparable pairs.

    Raises
    ------
    ValueError
        If the inputs differ in length, contain NaN, or there is no comparable pair (for example, no events).

    Notes
    -----
    Uses ``lifelines.utils.concordance_index(time, -risk, event)``, which sorts once and counts with a
    balanced search tree, so it costs O(n log n): about 2 s at 200,000 patients, where scikit-survival's
    pairwise loop takes nearly a minute. It gives exactly scikit-survival's value, including tied times and
    tied risks. The only difference is that scikit-survival treats risks within 1e-8 of each other as tied,
    while here only exactly equal risks are tied.
    """
    event = np.asarray(event, dtype=bool)
    time = np.asarray(time, dtype=float)
    n = event.shape[0]
    if event.ndim != 1 or time.shape != (n,):
        raise ValueError(f"event and time must be 1-D arrays of equal length, got {event.shape} and {time.shape}")
    risk = check_per_patient(risk, "risk", n, patients="test patient")
    if not np.all(np.isfinite(time)):
        raise ValueError(f"time contains NaN or infinite values at rows {np.flatnonzero(~np.isfinite(time))}")
    if not event.any():
        raise ValueError("no comparable pairs for Harrell's C: all patients are censored; need at least one event")
    try:
        return float(concordance_index(time, -risk, event))
    except ZeroDivisionError as error:
        raise ValueError(
            "no comparable pairs for Harrell's C: no patient is followed beyond any event time; "
            "evaluate on data with longer follow-up after the events"
        ) from error


def choose_tau(y_train: np.ndarray, y_test: np.ndarray, quantile: float = 0.8) -> float:
    """Choose the truncation time tau for Uno's C and other IPCW metrics.

    Rule: tau = min(q-quantile of the test times, q-quantile of the training times), with q = ``quantile``.
    If that is not strictly below the largest training time (possible when many patients share the longest
    follow-up), tau is lowered to the largest training time strictly below it. Taking the minimum with the
    training quantile keeps tau where the training censoring Kaplan-Meier is positive and not based on a
    handful of patients, so the weights stay bounded; the test quantile keeps tau within the test follow-up.

    Parameters
    ----------
    y_train : structured array, shape (n_train,)
        Training-fold target; its censoring distribution gives the IPC weights.
    y_test : structured array, shape (n_test,)
        Test-fold target.
    quantile : float, default 0.8
        Quantile of the observed times (events and censorings together), in (0, 1).

    Returns
    -------
    float
        tau, with ``tau < max(train time)`` and ``min(test time) < tau <= max(test time)``.

    Raises
    ------
    ValueError
        If ``quantile`` is not in (0, 1), all training times are equal, or tau would not exceed the shortest
        test time.
    """
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must lie strictly between 0 and 1, got {quantile}")
    _, train_time = target_arrays(y_train)
    _, test_time = target_arrays(y_test)
    tau = float(min(np.quantile(test_time, quantile), np.quantile(train_time, quantile)))
    last_train_time = train_time.max()
    if tau >= last_train_time:
        earlier = train_time[train_time < last_train_time]
        if earlier.size == 0:
            raise ValueError("all training times are equal; the censoring distribution cannot weight any time")
        tau = float(earlier.max())
    if tau <= test_time.min():
        raise ValueError(
            f"tau={tau} is not above the shortest test time {test_time.min()}; "
            "use a larger quantile or a test fold with longer follow-up"
        )
    return tau


def uno_c(y_train: np.ndarray, y_test: np.ndarray, risk: np.ndarray, tau: float | None = None) -> float:
    """Uno's IPCW concordance index truncated at ``tau`` [2]_.

    Wraps ``sksurv.metrics.concordance_index_ipcw``.

    Parameters
    ----------
    y_train : structured array, shape (n_train,)
        Training-fold target (estimates the censoring distribution).
    y_test : structured array, shape (n_test,)
        Test-fold target.
    risk : array of float, shape (n_test,)
        Predicted risk score (higher = earlier event).
    tau : float, optional
        Truncation time; only events before tau count. ``choose_tau(y_train, y_test)`` when None.

    Returns
    -------
    float
        Uno's C.

    Raises
    ------
    ValueError
        If there is no test event before tau.
    """
    sk_train, sk_test = _ipcw_targets(y_train, y_test)
    risk = check_per_patient(risk, "risk", sk_test.shape[0], patients="test patient")
    if tau is None:
        tau = choose_tau(y_train, y_test)
    if not np.any(sk_test["event"] & (sk_test["time"] < tau)):
        raise ValueError(f"no test event before tau={tau}; Uno's C has no comparable pairs, use a larger tau")
    return float(concordance_index_ipcw(sk_train, sk_test, risk, tau=tau)[0])


def time_dependent_auc(y_train: np.ndarray, y_test: np.ndarray, risk: np.ndarray, time: float) -> float:
    """Cumulative/dynamic AUC at one time: cases have an event by ``time``, controls are event-free after it.

    Wraps ``sksurv.metrics.cumulative_dynamic_auc`` (cases weighted by the inverse censoring probability).

    Parameters
    ----------
    y_train : structured array, shape (n_train,)
        Training-fold target (estimates the censoring distribution).
    y_test : structured array, shape (n_test,)
        Test-fold target.
    risk : array of float, shape (n_test,)
        A risk score or the predicted event probability by ``time``; higher = more risk.
    time : float
        Evaluation time; must be within the test follow-up and below the largest training time.

    Returns
    -------
    float
        AUC(time).

    Raises
    ------
    ValueError
        If no test patient has an event by ``time`` or none is followed beyond it (the AUC is 0/0 there).
    """
    sk_train, sk_test = _ipcw_targets(y_train, y_test)
    risk = check_per_patient(risk, "risk", sk_test.shape[0], patients="test patient")
    cases = int(np.sum(sk_test["event"] & (sk_test["time"] <= time)))
    controls = int(np.sum(sk_test["time"] > time))
    if not (cases and controls):
        raise ValueError(
            f"time-dependent AUC at {time:g} is undefined: {cases} patients with an event by then and {controls} "
            "followed beyond it; it needs at least one of each"
        )
    auc, _ = cumulative_dynamic_auc(sk_train, sk_test, risk, [time])
    return float(auc[0])


def brier_at(y_train: np.ndarray, y_test: np.ndarray, surv_prob: np.ndarray, time: float) -> float:
    """IPCW Brier score at one time (Graf et al. 1999), via ``sksurv.metrics.brier_score``.

    Parameters
    ----------
    y_train : structured array, shape (n_train,)
        Training-fold target (estimates the censoring distribution).
    y_test : structured array, shape (n_test,)
        Test-fold target.
    surv_prob : array of float, shape (n_test,)
        Predicted probability of being event-free at ``time``.
    time : float
        Evaluation time; must be within the test follow-up and below the largest training time.

    Returns
    -------
    float
        Brier score at ``time`` (0 is perfect).
    """
    sk_train, sk_test = _ipcw_targets(y_train, y_test)
    surv_prob = check_per_patient(surv_prob, "surv_prob", sk_test.shape[0], patients="test patient")
    _, scores = brier_score(sk_train, sk_test, surv_prob, [time])
    return float(scores[0])


def integrated_brier(y_train: np.ndarray, y_test: np.ndarray, surv_matrix: np.ndarray, times: np.ndarray) -> float:
    """Integrated Brier score over ``times``, via ``sksurv.metrics.integrated_brier_score``.

    Parameters
    ----------
    y_train : structured array, shape (n_train,)
        Training-fold target (estimates the censoring distribution).
    y_test : structured array, shape (n_test,)
        Test-fold target.
    surv_matrix : array of float, shape (n_test, len(times))
        ``surv_matrix[i, j]`` is patient i's predicted event-free probability at ``times[j]``.
    times : array of float
        Increasing evaluation times; ``brier_time_grid`` builds a valid one.

    Returns
    -------
    float
        Trapezoidal integral of the Brier score over ``times`` divided by ``times[-1] - times[0]``.
    """
    sk_train, sk_test = _ipcw_targets(y_train, y_test)
    times = np.asarray(times, dtype=float)
    surv_matrix = np.asarray(surv_matrix, dtype=float)
    if surv_matrix.shape != (sk_test.shape[0], times.shape[0]):
        raise ValueError(
            f"surv_matrix must have shape (n_test, len(times)) = ({sk_test.shape[0]}, {times.shape[0]}), "
            f"got {surv_matrix.shape}"
        )
    if np.any(np.diff(times) <= 0):
        raise ValueError("times must be strictly increasing")
    return float(integrated_brier_score(sk_train, sk_test, surv_matrix, times))


def brier_time_grid(y_train: np.ndarray, y_test: np.ndarray, max_time: float, n: int = 50) -> np.ndarray:
    """Evenly spaced time grid on which every Brier score of the fold is defined.

    The grid runs from the shortest test time to ``min(max_time, t_last)``, where ``t_last`` is the largest
    test time strictly below both the longest test and the longest training follow-up. scikit-survival
    requires grid times in ``[min test time, max test time)``, and the training censoring survival must be
    positive there.

    Parameters
    ----------
    y_train : structured array, shape (n_train,)
        Training-fold target.
    y_test : structured array, shape (n_test,)
        Test-fold target.
    max_time : float
        Upper end wanted for the grid (e.g. ``TWO_YEARS_DAYS``); it is lowered to the valid range.
    n : int, default 50
        Number of grid points (at least 2).

    Returns
    -------
    ndarray of float, shape (n,)
        Strictly increasing grid.

    Raises
    ------
    ValueError
        If ``n < 2`` or the valid range is empty.
    """
    if n < 2:
        raise ValueError(f"the grid needs at least 2 points, got n={n}")
    _, sk_test = _ipcw_targets(y_train, y_test)
    test_time = sk_test["time"]
    start = test_time.min()
    below_last = test_time[test_time < test_time.max()]
    if below_last.size == 0:
        raise ValueError("all test times are equal; the Brier score cannot be evaluated over a time range")
    stop = min(float(max_time), float(below_last.max()))
    if stop <= start:
        raise ValueError(
            f"no valid Brier time range: it would run from {start} to {stop}; "
            "raise max_time or use a test fold with longer follow-up"
        )
    return np.linspace(start, stop, n)


def _survival_at(grid_times: np.ndarray, surv_matrix: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Read survival curves given on ``grid_times`` at ``times`` as right-continuous step functions.

    S(t) is the value at the last grid time <= t, and 1 before the first grid time. Returns shape
    (n_patients, len(times)).
    """
    index = np.searchsorted(grid_times, times, side="right") - 1
    values = surv_matrix[:, np.maximum(index, 0)]
    return np.where(index >= 0, values, 1.0)


def evaluate_predictions(
    y_train: np.ndarray,
    y_test: np.ndarray,
    risk: np.ndarray,
    surv_fn_times: np.ndarray,
    surv_matrix: np.ndarray,
    horizons: Mapping[str, float] = DEFAULT_HORIZONS_DAYS,
    ibs_max_time: float = TWO_YEARS_DAYS,
    tau: float | None = None,
) -> dict[str, float]:
    """All metrics for one outer cross-validation fold.

    Parameters
    ----------
    y_train : structured array, shape (n_train,)
        Training-fold target (censoring distribution for IPCW metrics).
    y_test : structured array, shape (n_test,)
        Test-fold target.
    risk : array of float, shape (n_test,)
        Risk score (higher = earlier event), used for Harrell's and Uno's C.
    surv_fn_times : array of float, shape (n_grid,)
        Strictly increasing times at which the survival curves are given.
    surv_matrix : array of float, shape (n_test, n_grid)
        ``surv_matrix[i, j]`` = predicted event-free probability of patient i at ``surv_fn_times[j]``; read
        as a right-continuous step function with S = 1 before the first grid time.
    horizons : mapping of str to float
        Named horizons in days; default 6 and 12 months.
    ibs_max_time : float, default 730.5
        Upper end of the integrated Brier score, lowered to the fold's valid range (``brier_time_grid``).
    tau : float, optional
        Truncation time of Uno's C; ``choose_tau(y_train, y_test)`` of this fold when None. Cross-validation
        passes one tau for the whole data set, so that every fold estimates the same quantity.

    Returns
    -------
    dict of str to float
        ``harrell_c``, ``uno_c``, ``uno_tau`` (``tau``, or ``choose_tau`` of the fold) and ``ibs``; and
        for each horizon name H that lies within the data (strictly below the largest test and the largest
        training time, not below the shortest test time, and with at least one test event by H): ``auc_H``
        (cumulative/dynamic AUC of the predicted event probability 1 - S(H)), ``brier_H``, ``ici_H``,
        ``e50_H``, ``e90_H`` and ``calibration_slope_H``. Horizons outside the data are absent, not NaN; a
        calibration model that fails gives NaN with a warning (see ``calibration_at``).
    """
    test_event, test_time = target_arrays(y_test)
    _, train_time = target_arrays(y_train)
    surv_fn_times = np.asarray(surv_fn_times, dtype=float)
    surv_matrix = np.asarray(surv_matrix, dtype=float)
    if surv_fn_times.ndim != 1 or np.any(np.diff(surv_fn_times) <= 0):
        raise ValueError("surv_fn_times must be a strictly increasing 1-D time grid")
    if surv_matrix.shape != (test_time.shape[0], surv_fn_times.shape[0]):
        raise ValueError(
            f"surv_matrix must have shape (n_test, len(surv_fn_times)) = "
            f"({test_time.shape[0]}, {surv_fn_times.shape[0]}), got {surv_matrix.shape}"
        )

    if tau is None:
        tau = choose_tau(y_train, y_test)
    metrics = {
        "harrell_c": harrell_c(test_event, test_time, risk),
        "uno_c": uno_c(y_train, y_test, risk, tau=tau),
        "uno_tau": tau,
    }
    ibs_times = brier_time_grid(y_train, y_test, ibs_max_time)
    metrics["ibs"] = integrated_brier(y_train, y_test, _survival_at(surv_fn_times, surv_matrix, ibs_times), ibs_times)

    upper = min(test_time.max(), train_time.max())
    for name, horizon in horizons.items():
        within_data = test_time.min() <= horizon < upper and np.any(test_event & (test_time <= horizon))
        if not within_data:
            continue
        surv_at_horizon = _survival_at(surv_fn_times, surv_matrix, np.array([horizon]))[:, 0]
        metrics[f"auc_{name}"] = time_dependent_auc(y_train, y_test, 1.0 - surv_at_horizon, horizon)
        metrics[f"brier_{name}"] = brier_at(y_train, y_test, surv_at_horizon, horizon)
        calibration = calibration_at(test_event, test_time, surv_at_horizon, horizon)
        metrics[f"ici_{name}"] = calibration["ici"]
        metrics[f"e50_{name}"] = calibration["e50"]
        metrics[f"e90_{name}"] = calibration["e90"]
        metrics[f"calibration_slope_{name}"] = calibration["slope"]
    return metrics


def summarize(values: Sequence[float]) -> dict[str, object]:
    """Summarize one metric over cross-validation folds.

    Parameters
    ----------
    values : sequence of float
        One value per fold; NaN marks a failed fold.

    Returns
    -------
    dict
        ``mean``, ``sd`` (ddof=1; NaN with fewer than 2 folds), ``spread`` = [2.5th, 97.5th] empirical
        percentiles of the fold values, ``ci`` (deprecated alias of ``spread``, kept for readers of schema 1
        cross-validation JSON), ``folds`` (all values as floats, NaN included, in the order given), ``n``
        (folds used) and ``n_failed`` (NaN folds, left out of every statistic). Folds of repeated
        cross-validation share most of their training data, so ``spread`` is the spread of fold estimates, not
        a confidence interval of the mean (:mod:`carrisk.cv_summary` gives that).
    """
    folds = [float(value) for value in values]
    array = np.asarray(folds, dtype=float)
    finite = array[~np.isnan(array)]
    if finite.size == 0:
        mean, sd, spread = np.nan, np.nan, [np.nan, np.nan]
    else:
        mean = float(finite.mean())
        sd = float(finite.std(ddof=1)) if finite.size > 1 else np.nan
        spread = [float(bound) for bound in np.percentile(finite, [2.5, 97.5])]
    return {
        "mean": mean,
        "sd": sd,
        "spread": spread,
        "ci": spread,
        "folds": folds,
        "n": int(finite.size),
        "n_failed": int(array.size - finite.size),
    }
