"""Performance of cumulative-incidence predictions on data with competing events.

- :func:`cause_concordance`: Wolbers' cause-specific concordance [1]_ in its Harrell-type (unweighted) form. A
  pair (i, j) is comparable when i had a first event of the cause at ``T_i`` (at most ``tau``) and j was still
  event-free after ``T_i`` (``T_j > T_i``) or had already failed of another cause (``T_j <= T_i``: j can no
  longer have this cause); censored j with ``T_j <= T_i`` are left out. Concordant when i's predicted risk is
  higher; ties in the prediction count one half. Without competing events it is Harrell's C.
- :func:`cif_brier_score`: the time-dependent Brier score of a predicted cumulative incidence ``F_k(t | x)``
  [2]_ with inverse probability of censoring weights: ``(1/n) sum_i w_i (1{T_i <= t, cause k} - F_k(t | x_i))^2``,
  ``w_i = 1 / G(T_i)`` for an event of any cause by ``t``, ``1 / G(t)`` for the still event-free, 0 for patients
  censored before ``t``; ``G`` is scikit-survival's Kaplan-Meier ``CensoringDistributionEstimator`` of the same
  data (as ``sksurv.metrics.brier_score``, which it equals without competing events).
- :func:`cif_auc`: the cumulative/dynamic time-dependent AUC of a predicted cumulative incidence with inverse
  probability of censoring weights [3]_: cases had the cause by ``t`` (weight ``1 / G(T_i)``), controls are all
  others not censored before ``t``: still event-free (``1 / G(t)``) or failed of another cause by ``t``
  (``1 / G(T_j)``), Blanche's "definition 2" controls. ``AUC = sum w_i w_j (1{M_i > M_j} + 1{M_i = M_j} / 2) /
  sum w_i w_j`` over case-control pairs; without competing events it is
  ``sksurv.metrics.cumulative_dynamic_auc`` with the censoring estimated on the same data.

References
----------
.. [1] Wolbers M, Koller MT, Witteman JCM, Steyerberg EW. Prognostic models with competing risks: methods and
   application to coronary risk prediction. Epidemiology 2009;20:555-561.
.. [2] Schoop R, Beyersmann J, Schumacher M, Binder H. Quantifying the predictive accuracy of time-to-event
   models in the presence of competing risks. Biom J 2011;53:88-112.
.. [3] Blanche P, Dartigues JF, Jacqmin-Gadda H. Estimating and comparing time-dependent areas under receiver
   operating characteristic curves for censored event times with competing risks. Stat Med 2013;32:5381-5397.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from sksurv.nonparametric import CensoringDistributionEstimator
from sksurv.util import Surv


def _inputs(time: ArrayLike, cause_code: ArrayLike, prediction: ArrayLike) -> tuple[np.ndarray, ...]:
    t = np.asarray(time, dtype=float).reshape(-1)
    code = np.asarray(cause_code).astype(int).reshape(-1)
    risk = np.asarray(prediction, dtype=float).reshape(-1)
    if not (t.size == code.size == risk.size):
        raise ValueError(
            f"time, cause_code and prediction must have one value per patient ({t.size}, {code.size}, {risk.size})."
        )
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(risk))):
        raise ValueError("time and prediction must be finite.")
    return t, code, risk


def cause_concordance(
    time: ArrayLike, cause_code: ArrayLike, prediction: ArrayLike, cause: int, *, tau: float = np.inf
) -> float:
    """Wolbers' cause-specific concordance (Harrell-type, unweighted) of ``prediction`` for cause ``cause``.

    Parameters
    ----------
    time, cause_code : array-like
        First event or censoring time; 0 censored, positive codes the causes.
    prediction : array-like
        Predicted risk of the cause (higher = more likely), e.g. the cumulative incidence at a horizon.
    cause : int
    tau : float, default inf
        Only events of the cause at times <= ``tau`` count.

    Returns
    -------
    float
        Concordant / comparable pairs; NaN without a comparable pair. Cost O(n^2) memory in blocks of 2,000.
    """
    t, code, risk = _inputs(time, cause_code, prediction)
    cases = np.flatnonzero((code == cause) & (t <= tau))
    concordant = comparable = 0.0
    for start in range(0, cases.size, 2000):
        i = cases[start : start + 2000]
        # as in Harrell's C, a censoring at the case's event time counts as later (the patient was still at risk)
        later = (t[None, :] > t[i, None]) | ((t[None, :] == t[i, None]) & (code[None, :] == 0))
        failed_other = (code[None, :] > 0) & (code[None, :] != cause) & (t[None, :] <= t[i, None])
        pairs = later | failed_other
        higher = risk[i, None] > risk[None, :]
        tied = risk[i, None] == risk[None, :]
        comparable += pairs.sum()
        concordant += (pairs & higher).sum() + 0.5 * (pairs & tied).sum()
    return float(concordant / comparable) if comparable else float("nan")


def cif_brier_score(time: ArrayLike, cause_code: ArrayLike, prediction: ArrayLike, cause: int, horizon: float) -> float:
    """IPCW Brier score at ``horizon`` of the predicted cumulative incidence of cause ``cause``.

    Parameters
    ----------
    time, cause_code : array-like
        First event or censoring time; 0 censored, positive codes the causes.
    prediction : array-like
        Predicted ``F_cause(horizon | x)`` per patient, in [0, 1].
    cause : int
    horizon : float

    Returns
    -------
    float
    """
    t, code, f = _inputs(time, cause_code, prediction)
    weight, failed = _ipcw(t, code, horizon)
    outcome = (failed & (code == cause)).astype(float)
    return float(np.mean(weight * (outcome - f) ** 2))


def _ipcw(t: np.ndarray, code: np.ndarray, horizon: float) -> tuple[np.ndarray, np.ndarray]:
    """Censoring weights at ``horizon`` (``1/G(T_i)`` failed by it, ``1/G(t)`` still event-free, 0 censored)."""
    censoring = CensoringDistributionEstimator().fit(Surv.from_arrays(code > 0, t))
    g_at_time = censoring.predict_proba(t)
    g_at_horizon = float(censoring.predict_proba(np.array([horizon]))[0])
    failed = (t <= horizon) & (code > 0)
    still = t > horizon
    with np.errstate(divide="ignore"):  # G = 0 gives weight 0, as scikit-survival
        inverse_at_time = np.where(g_at_time > 0, 1.0 / g_at_time, 0.0)
        inverse_at_horizon = 1.0 / g_at_horizon if g_at_horizon > 0 else 0.0
    return np.where(failed, inverse_at_time, np.where(still, inverse_at_horizon, 0.0)), failed


def cif_auc(time: ArrayLike, cause_code: ArrayLike, prediction: ArrayLike, cause: int, horizon: float) -> float:
    """IPCW cumulative/dynamic AUC at ``horizon`` of a predicted cumulative incidence of cause ``cause``.

    Parameters
    ----------
    time, cause_code : array-like
        First event or censoring time; 0 censored, positive codes the causes.
    prediction : array-like
        Predicted risk of the cause per patient (e.g. ``F_cause(horizon | x)``).
    cause : int
    horizon : float

    Returns
    -------
    float
        Blanche et al.'s AUC with definition-2 controls (see the module docstring); NaN without a case or a
        control.
    """
    t, code, risk = _inputs(time, cause_code, prediction)
    weight, failed = _ipcw(t, code, horizon)
    case = failed & (code == cause) & (weight > 0)
    control = ~case & (weight > 0)
    if not case.any() or not control.any():
        return float("nan")
    order = np.argsort(risk[control], kind="stable")
    control_risk, control_weight = risk[control][order], weight[control][order]
    cumulative = np.concatenate([[0.0], np.cumsum(control_weight)])
    below = cumulative[np.searchsorted(control_risk, risk[case], side="left")]
    not_above = cumulative[np.searchsorted(control_risk, risk[case], side="right")]
    concordant = weight[case] @ (below + 0.5 * (not_above - below))
    return float(concordant / (weight[case].sum() * control_weight.sum()))


__all__ = ["cause_concordance", "cif_auc", "cif_brier_score"]
