"""Cause-specific Cox and Fine-Gray subdistribution hazard regression.

Cause-specific Cox
    ``lifelines.CoxPHFitter`` (Efron ties) on the first event of the cause, every other cause censored at its
    time. Hazard ratios describe the rate of the cause among patients still event-free.

Fine-Gray [1]_
    Proportional hazards for the subdistribution hazard of cause ``k``, fitted as R's ``cmprsk::crr`` does:
    maximise the Breslow partial likelihood in which a patient who failed from another cause at ``T_j`` stays in
    the risk set at later times ``u`` with weight ``G(u-) / G(T_j-)``, ``G`` the Kaplan-Meier estimate of the
    censoring distribution (inverse probability of censoring weighting); Newton-Raphson from 0 to a gradient
    below ``tol``. The coefficients equal ``crr``'s (tests: to 1e-6 on a pinned reference).

    Variance: the sandwich ``I^-1 (sum_i eta_i eta_i') I^-1`` with ``eta_i`` the subject's score residual
    (its counting-process term minus its weighted share of every risk set), i.e. Fine and Gray's variance
    without the term ``psi_i`` for the estimated censoring distribution. ``crr`` adds that term; on the pinned
    reference the standard errors here differ from ``crr``'s by at most 0.11% (tested at 0.2% relative).

    Memory is O(distinct failure times x patients): fine for a study cohort (420-5,000 patients).

References
----------
.. [1] Fine JP, Gray RJ. A proportional hazards model for the subdistribution of a competing risk.
   J Am Stat Assoc 1999;94:496-509.
.. [2] Putter H, Fiocco M, Geskus RB. Tutorial in biostatistics: competing risks and multi-state models.
   Stat Med 2007;26:2389-2430.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

CONFIDENCE_LEVEL = 0.95


@dataclass(frozen=True)
class HazardRegression:
    """A fitted competing-risks regression: ``summary`` has one row per covariate.

    Attributes
    ----------
    model : str
        ``"fine_gray"`` or ``"cause_specific_cox"``.
    cause : str
        The cause modelled.
    summary : DataFrame
        Index covariate; ``coef``, ``se``, ``hr``, ``ci_low``, ``ci_high`` (95% Wald, exp(coef +- 1.96 se)),
        ``p`` (two-sided Wald).
    n : int
    events : int
        First events of ``cause``.
    converged : bool
    """

    model: str
    cause: str
    summary: pd.DataFrame
    n: int
    events: int
    converged: bool


def _summary(names: Sequence[str], coef: np.ndarray, se: np.ndarray) -> pd.DataFrame:
    z = stats.norm.ppf(0.5 + CONFIDENCE_LEVEL / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = 2 * stats.norm.sf(np.abs(coef / se))
    return pd.DataFrame(
        {
            "coef": coef,
            "se": se,
            "hr": np.exp(coef),
            "ci_low": np.exp(coef - z * se),
            "ci_high": np.exp(coef + z * se),
            "p": p,
        },
        index=pd.Index(list(names), name="covariate"),
    )


def _censoring_survival_before(time: np.ndarray, censored: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Kaplan-Meier of the censoring distribution just before each of ``at`` (``G(t-)``)."""
    times = np.unique(time[censored])
    at_risk = np.array([(time >= t).sum() for t in times], dtype=float)
    n_censored = np.array([(censored & (time == t)).sum() for t in times], dtype=float)
    survival = np.cumprod(1.0 - n_censored / at_risk)
    index = np.searchsorted(times, at, side="left") - 1  # last censoring time strictly before `at`
    return np.where(index >= 0, survival[np.maximum(index, 0)], 1.0)


def fine_gray(
    time: ArrayLike,
    cause_code: ArrayLike,
    covariates: pd.DataFrame,
    cause: int,
    *,
    cause_name: str = "",
    tol: float = 1e-10,
    max_iter: int = 50,
) -> HazardRegression:
    """Fine-Gray subdistribution hazard regression for cause code ``cause`` (``cmprsk::crr``'s estimator).

    Parameters
    ----------
    time : array-like of float
        Time of the first event or censoring.
    cause_code : array-like of int
        0 censored, ``cause`` the cause of interest, other positive codes competing causes.
    covariates : DataFrame
        Numeric covariates, no missing values (one row per patient, same order).
    cause : int
    cause_name : str, optional
    tol : float, default 1e-10
        Stop when ``max |score| * max(|beta|, 1) < tol * max(|log likelihood|, 1)`` (crr's rule).
    max_iter : int, default 50

    Returns
    -------
    HazardRegression

    Raises
    ------
    ValueError
        If covariates are missing or not numeric, lengths differ, or there is no event of ``cause``.
    """
    t = np.asarray(time, dtype=float).reshape(-1)
    code = np.asarray(cause_code).astype(int).reshape(-1)
    x = _design(covariates, t.size)
    failed = code == cause
    if not failed.any():
        raise ValueError(f"no first event of cause {cause_name or cause}: the Fine-Gray model cannot be fitted.")
    competing = (code != cause) & (code != 0)
    fail_times, d = np.unique(t[failed], return_counts=True)
    g_fail = _censoring_survival_before(t, code == 0, fail_times)
    g_own = _censoring_survival_before(t, code == 0, t)
    with np.errstate(divide="ignore", invalid="ignore"):
        ipcw = np.where(g_own[None, :] > 0, g_fail[:, None] / g_own[None, :], 0.0)
    weight = (t[None, :] >= fail_times[:, None]) + (competing[None, :] & (t[None, :] < fail_times[:, None])) * ipcw
    x_failed_sum = np.zeros((fail_times.size, x.shape[1]))
    np.add.at(x_failed_sum, np.searchsorted(fail_times, t[failed]), x[failed])

    beta = np.zeros(x.shape[1])
    converged = False
    for _ in range(max_iter + 1):
        loglik, score, info = _fg_derivatives(beta, x, weight, d, x_failed_sum)
        if np.max(np.abs(score) * np.maximum(np.abs(beta), 1.0)) < max(abs(loglik), 1.0) * tol:
            converged = True
            break
        step = np.linalg.solve(info, score)
        for _halving in range(30):  # backtracking, as crr
            candidate = beta + step
            if _fg_derivatives(candidate, x, weight, d, x_failed_sum)[0] >= loglik + 1e-4 * score @ step:
                break
            step = step / 2
        beta = candidate
    _, _, info = _fg_derivatives(beta, x, weight, d, x_failed_sum)
    risk = weight * np.exp(x @ beta)[None, :]
    s0 = risk.sum(axis=1)
    xbar = (risk @ x) / s0[:, None]
    share = risk * (d / s0)[:, None]  # (failure times, patients): dLambda share of each patient
    eta = np.zeros_like(x)
    eta[failed] = x[failed] - xbar[np.searchsorted(fail_times, t[failed])]
    eta -= x * share.sum(axis=0)[:, None] - share.T @ xbar
    inverse = np.linalg.inv(info)
    covariance = inverse @ (eta.T @ eta) @ inverse
    summary = _summary(list(covariates.columns), beta, np.sqrt(np.diag(covariance)))
    return HazardRegression("fine_gray", cause_name or str(cause), summary, t.size, int(failed.sum()), converged)


def _fg_derivatives(
    beta: np.ndarray, x: np.ndarray, weight: np.ndarray, d: np.ndarray, x_failed_sum: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """Breslow log partial likelihood, score and information of the weighted risk sets."""
    linear = x @ beta
    risk = weight * np.exp(linear)[None, :]
    s0 = risk.sum(axis=1)
    s1 = risk @ x
    xbar = s1 / s0[:, None]
    loglik = float(np.sum(x_failed_sum @ beta) - np.sum(d * np.log(s0)))
    score = x_failed_sum.sum(axis=0) - (d[:, None] * xbar).sum(axis=0)
    s2 = np.einsum("un,np,nq->pq", risk * (d / s0)[:, None], x, x)
    info = s2 - (xbar * d[:, None]).T @ xbar
    return loglik, score, info


def cause_specific_cox(
    time: ArrayLike, cause_code: ArrayLike, covariates: pd.DataFrame, cause: int, *, cause_name: str = ""
) -> HazardRegression:
    """Cause-specific Cox model (lifelines ``CoxPHFitter``, Efron ties): other causes censored at their time.

    Parameters are as :func:`fine_gray`.

    Returns
    -------
    HazardRegression
    """
    from lifelines import CoxPHFitter

    t = np.asarray(time, dtype=float).reshape(-1)
    code = np.asarray(cause_code).astype(int).reshape(-1)
    x = _design(covariates, t.size)
    failed = code == cause
    if not failed.any():
        raise ValueError(f"no first event of cause {cause_name or cause}: the Cox model cannot be fitted.")
    frame = pd.DataFrame(x, columns=list(covariates.columns)).assign(_time=t, _event=failed.astype(int))
    fitter = CoxPHFitter().fit(frame, "_time", "_event")
    summary = _summary(list(covariates.columns), fitter.params_.to_numpy(), fitter.standard_errors_.to_numpy())
    return HazardRegression("cause_specific_cox", cause_name or str(cause), summary, t.size, int(failed.sum()), True)


def _design(covariates: pd.DataFrame, n: int) -> np.ndarray:
    if len(covariates) != n:
        raise ValueError(f"covariates have {len(covariates)} rows but there are {n} times; give one row per patient.")
    try:
        x = covariates.to_numpy(dtype=float)
    except (TypeError, ValueError):
        raise ValueError("covariates must be numeric (encode categories as 0/1 columns).") from None
    bad = ~np.isfinite(x)
    if bad.any():
        row, column = np.argwhere(bad)[0]
        raise ValueError(
            f"covariate {covariates.columns[column]!r} is missing or not finite at row {row + 1}; drop or impute "
            "incomplete rows first."
        )
    return x


__all__ = ["HazardRegression", "cause_specific_cox", "fine_gray"]
