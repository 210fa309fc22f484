"""Bootstrap intervals for the survival probabilities of a fitted model (any estimator with a survival matrix).

The final estimator is refitted on ``n_bootstrap`` resamples of the training design matrix (rows drawn with
replacement) at the hyper-parameters chosen on the full data (penalties fixed: :func:`fixed_hyperparameters`),
and each refit predicts S(t | x). Two intervals are formed from the draws, on the logit scale:

* ``percentile``: the 2.5 % and 97.5 % quantiles of the draws;
* ``basic`` (Davison & Hinkley 1997, eq. 5.6): ``2 * logit(S_hat) - q_97.5`` to ``2 * logit(S_hat) - q_2.5``,
  which moves the interval against the bootstrap estimate of the estimator's bias.

Both describe how the fitted model varies with its training sample; neither sees a bias the bootstrap does not
reproduce, and the shrinkage of a penalised model is such a bias (refits at the same penalty are shrunk the same
way). Refitting at smaller penalties (``penalty_divisor``) centres the draws near the unshrunk estimate, at the
price of width. Coverage of the true EFS, measured in ``benchmarks/truth.py`` (20 cohorts of n = 420), decides
which one carrisk uses.

References
----------
1. Davison AC, Hinkley DV. Bootstrap Methods and their Application. Cambridge University Press, 1997.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.special import expit, logit
from sklearn.base import clone

__all__ = [
    "INTERVAL_METHODS",
    "UNSHRUNK_PENALTY_DIVISOR",
    "bootstrap_interval",
    "bootstrap_refits",
    "fixed_hyperparameters",
]

INTERVAL_METHODS = ("percentile", "basic")
#: Penalties of the interval refits relative to the chosen ones (1/100: nearly unshrunk; see the module notes).
UNSHRUNK_PENALTY_DIVISOR = 100.0
_EPS = 1e-6


def fixed_hyperparameters(estimator: Any, penalty_divisor: float = 1.0) -> dict[str, Any]:
    """Parameters that pin a self-tuning estimator's penalties at the values it chose, divided by a factor.

    Handles :class:`carrisk.two_part.TwoPartSurvival` (``cr_C``, ``post_alpha``), :class:`carrisk.penalized.CoxnetCV`
    (``alpha``) and :class:`carrisk.ensemble.StackedSurvival` (its weights and each base model); other estimators
    have nothing to pin (empty dict).
    """
    params: dict[str, Any] = {}
    if hasattr(estimator, "cr_C_"):
        params["cr_C"] = estimator.cr_C_ * penalty_divisor  # C is an inverse penalty
    if hasattr(estimator, "post_alpha_"):
        params["post_alpha"] = estimator.post_alpha_ / penalty_divisor
    if type(estimator).__name__ == "CoxnetCV":
        params["alpha"] = estimator.alpha_ / penalty_divisor
    if hasattr(estimator, "weights_") and hasattr(estimator, "estimators_"):
        params["weights"] = tuple(map(float, estimator.weights_))
        params["estimators"] = [
            (name, clone(base).set_params(**fixed_hyperparameters(fitted, penalty_divisor)))
            for (name, base), fitted in zip(estimator.estimators, estimator.estimators_)
        ]
    return params


def bootstrap_refits(
    estimator: Any, design: np.ndarray, y: np.ndarray, n_bootstrap: int, seed: int, penalty_divisor: float = 1.0
) -> list[Any]:
    """Refit a clone of ``estimator`` (penalties fixed) on ``n_bootstrap`` row resamples of ``design``.

    ``penalty_divisor`` > 1 refits at smaller penalties than the ones chosen (``penalty_divisor=100``: nearly
    unpenalised), whose draws are centred near the unshrunk estimate: the shrunken model's own draws are centred
    on its shrinkage bias, which the bootstrap cannot see. A resample whose fit fails (e.g. no event in one part)
    is skipped; the number kept is ``len`` of the result.
    """
    template = clone(estimator).set_params(**fixed_hyperparameters(estimator, penalty_divisor))
    rng = np.random.default_rng(seed)
    refits = []
    for _ in range(n_bootstrap):
        index = rng.integers(0, len(design), len(design))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                refits.append(clone(template).fit(design[index], y[index]))
        except (ValueError, ArithmeticError, np.linalg.LinAlgError):
            continue
    return refits


def bootstrap_interval(
    refits: list[Any],
    design: np.ndarray,
    times: np.ndarray,
    point: np.ndarray,
    method: str = "basic",
    level: float = 0.95,
) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper interval limits of S(times | x) for each row of ``design`` (each (n_rows, n_times)).

    Parameters
    ----------
    refits : list of fitted estimators
        From :func:`bootstrap_refits`.
    design : (n, p) array
    times : (T,) array
    point : (n, T) array
        The full-data model's prediction (the centre of the basic interval).
    method : {"percentile", "basic"}
    level : float
    """
    if method not in INTERVAL_METHODS:
        raise ValueError(f"method must be one of {INTERVAL_METHODS}, got {method!r}")
    if not refits:
        nan = np.full_like(point, np.nan, dtype=float)
        return nan, nan
    draws = np.stack([r.predict_survival_matrix(design, times) for r in refits])  # (B, n, T)
    logit_draws = logit(np.clip(draws, _EPS, 1 - _EPS))
    alpha = (1 - level) / 2
    q_lo, q_hi = np.quantile(logit_draws, [alpha, 1 - alpha], axis=0)
    if method == "percentile":
        return expit(q_lo), expit(q_hi)
    centre = logit(np.clip(point, _EPS, 1 - _EPS))
    return expit(2 * centre - q_hi), expit(2 * centre - q_lo)
