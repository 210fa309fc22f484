"""Bootstrap intervals for the survival probabilities of a fitted model (any estimator with a survival matrix).

The final estimator is refitted on ``n_bootstrap`` resamples of the training design matrix (rows drawn with
replacement) at the hyper-parameters chosen on the full data (penalties fixed: :func:`fixed_hyperparameters`),
and each refit predicts S(t | x). Two intervals are formed from the draws, on the logit scale:

* ``percentile``: the 2.5 % and 97.5 % quantiles of the draws;
* ``centred``: the draws' spread around their median, moved onto the point estimate:
  ``logit(S_hat) + (q_2.5 - q_50)`` to ``logit(S_hat) + (q_97.5 - q_50)``. The point is always inside.

The shrunken model's own refits (same penalty) describe how it varies with its training sample but not its
shrinkage bias, which the bootstrap reproduces instead of revealing: in the truth benchmark they covered the
true 6-month EFS in 77 % of patients. Refits at smaller penalties (``penalty_divisor``) vary more, and that
larger spread is what covers the bias. Their percentile interval is centred near the *less* shrunken estimate,
so it can exclude the model's own point prediction (7 % of patients for the two-part model at 1/100 of the
penalties), which then had to be clamped into it; the ``centred`` interval keeps the wider spread and the
shrunken point estimate. Coverage of the true EFS, measured in ``benchmarks/truth.py`` (20 cohorts of n = 420),
decided carrisk's choice: ``centred`` at :data:`INTERVAL_PENALTY_DIVISOR` covered 94 % at mean width 0.25 for
the default model (numbers in ``benchmarks/results/truth.md``).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.special import expit, logit
from sklearn.base import clone

__all__ = [
    "INTERVAL_METHODS",
    "INTERVAL_PENALTY_DIVISOR",
    "bootstrap_interval",
    "bootstrap_refits",
    "fixed_hyperparameters",
]

INTERVAL_METHODS = ("percentile", "centred")
#: Penalties of the interval refits relative to the chosen ones (see the module notes and the truth benchmark).
INTERVAL_PENALTY_DIVISOR = 10.0
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

    ``penalty_divisor`` > 1 refits at smaller penalties than the ones chosen, whose draws spread wider than the
    shrunken model's own (which share its shrinkage bias, so the bootstrap cannot see it). A resample whose fit
    fails (e.g. no event in one part) is skipped; the number kept is ``len`` of the result.
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
    method: str = "centred",
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
        The full-data model's prediction (the centre of the ``centred`` interval).
    method : {"percentile", "centred"}
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
    q_lo, median, q_hi = np.quantile(logit_draws, [alpha, 0.5, 1 - alpha], axis=0)
    if method == "percentile":
        return expit(q_lo), expit(q_hi)
    centre = logit(np.clip(point, _EPS, 1 - _EPS))
    return expit(centre + q_lo - median), expit(centre + q_hi - median)
