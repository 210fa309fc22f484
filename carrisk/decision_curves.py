"""Decision curve analysis for an event by a horizon, with censored follow-up (Vickers et al. 2008).

A patient is "treated" (offered the intervention the model is meant to guide) when the predicted probability of
an EFS event by the horizon is at least the threshold probability ``p_t``. With ``P(treated)`` the share of
patients treated and ``KM_treated`` the Kaplan-Meier EFS at the horizon among them::

    net benefit = (1 - KM_treated) P(treated) - KM_treated P(treated) p_t / (1 - p_t)

(true positives minus false positives weighted by the odds of the threshold, per patient), the time-to-event
form of Vickers, Cronin, Elkin & Gonen [1]_. Treat-all uses the whole cohort's Kaplan-Meier estimate and
treat-none has net benefit 0. Where nobody is treated the net benefit is 0; where the treated patients are not
followed up to the horizon it is undefined (NaN). These are the rules of the ``dcurves`` package [2]_, which
the tests check against, with one exception: when every treated patient had an event before the horizon, the
Kaplan-Meier estimate is 0 and stays 0 (``dcurves`` gives NaN).

References
----------
.. [1] Vickers, A. J., Cronin, A. M., Elkin, E. B., & Gonen, M. (2008). "Extensions to decision curve
       analysis, a novel method for evaluating diagnostic tests, prediction models and molecular markers".
       BMC Medical Informatics and Decision Making, 8, 53.
.. [2] dcurves (Python), https://github.com/ddsjoberg/dcurves (``dca(..., time=..., time_to_outcome_col=...)``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from carrisk.nonparametric import kaplan_meier_survival_at

#: The point estimate under the name ``carrisk.internal_validation`` imports from here; new code imports
#: :func:`carrisk.nonparametric.kaplan_meier_survival_at`.
kaplan_meier_at = kaplan_meier_survival_at

__all__ = ["DEFAULT_THRESHOLDS", "decision_curve", "decision_curve_with_draws", "net_benefit", "pooled_decision_curve"]

DEFAULT_THRESHOLDS = tuple(np.round(np.arange(0.01, 0.96, 0.01), 2))


def net_benefit(
    event: np.ndarray, time: np.ndarray, event_prob: np.ndarray, horizon: float, thresholds: Sequence[float]
) -> np.ndarray:
    """Net benefit of treating patients whose predicted event probability by ``horizon`` is >= each threshold.

    Parameters
    ----------
    event, time : arrays, shape (n,)
        Observed EFS event indicator and follow-up (days).
    event_prob : array, shape (n,)
        Predicted probability of an event by ``horizon`` (1 - S(horizon)); 1 everywhere gives treat-all.
    horizon : float
        Days.
    thresholds : sequence of float
        Threshold probabilities in [0, 1).

    Returns
    -------
    ndarray, shape (len(thresholds),)
        Net benefit per threshold (NaN where the treated patients are not followed to ``horizon``).
    """
    event = np.asarray(event, dtype=bool)
    time = np.asarray(time, dtype=float)
    event_prob = np.asarray(event_prob, dtype=float)
    n = event.size
    out = np.empty(len(thresholds))
    for k, threshold in enumerate(thresholds):
        treated = event_prob >= threshold
        share = treated.sum() / n
        if share == 0:
            out[k] = 0.0
            continue
        survival = kaplan_meier_survival_at(event[treated], time[treated], horizon)
        out[k] = (1.0 - survival) * share - survival * share * threshold / (1.0 - threshold)
    return out


def decision_curve(
    event: np.ndarray,
    time: np.ndarray,
    event_prob: np.ndarray,
    horizon: float,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    *,
    n_bootstrap: int = 200,
    seed: int = 0,
) -> pd.DataFrame:
    """Net benefit of the model, treat-all and treat-none over thresholds, with bootstrap percentile bands.

    Parameters
    ----------
    event, time, event_prob, horizon, thresholds
        As for :func:`net_benefit`.
    n_bootstrap : int, default 200
        Resamples of the patients (predictions fixed) for the 95% percentile bands; 0 for none.
    seed : int, default 0
        Seed of the resampling.

    Returns
    -------
    DataFrame
        One row per threshold: ``threshold``, ``net_benefit_model`` with ``_lower``/``_upper``,
        ``net_benefit_all`` with ``_lower``/``_upper``, ``net_benefit_none`` (0) and ``treated_share`` of the
        model. The bands cover the net benefit's sampling variation in a cohort like this one, with the model
        held fixed.
    """
    return decision_curve_with_draws(event, time, event_prob, horizon, thresholds, n_bootstrap=n_bootstrap, seed=seed)[
        0
    ]


def decision_curve_with_draws(
    event: np.ndarray,
    time: np.ndarray,
    event_prob: np.ndarray,
    horizon: float,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    *,
    n_bootstrap: int = 200,
    seed: int = 0,
) -> tuple[pd.DataFrame, np.ndarray]:
    """:func:`decision_curve`'s table and the model's net benefit on each resample behind its band.

    Returns
    -------
    (DataFrame, ndarray)
        The table, and the draws, shape ``(n_bootstrap, len(thresholds))`` (NaN where undefined). Resample ``b``
        is the ``b``-th ``rng.integers(0, n, n)`` of ``np.random.default_rng(seed)``, so models scored with the
        same seed share their resamples: :func:`carrisk.evaluate_models` differences these draws within each
        resample.
    """
    event_prob = np.asarray(event_prob, dtype=float)
    if event_prob.ndim != 1:
        raise ValueError(f"event_prob must be one prediction per patient, got shape {event_prob.shape}")
    # one repeat of the pooled curve: the same net benefits, bands and treated share
    return _pooled_decision_curve(event, time, event_prob[None, :], horizon, thresholds, n_bootstrap, seed)


def pooled_decision_curve(
    event: np.ndarray,
    time: np.ndarray,
    event_prob: np.ndarray,
    horizon: float,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    *,
    n_bootstrap: int = 100,
    seed: int = 0,
) -> pd.DataFrame:
    """Decision curve of out-of-fold predictions from repeated cross-validation: net benefit averaged over repeats.

    Each row of ``event_prob`` is one repeat (every patient predicted by the fold model that did not see them);
    the model's net benefit is that of each repeat's predictions (:func:`net_benefit`), averaged over repeats.
    The 95% percentile bands resample patients (each keeping all their repeats) and average again.

    Parameters
    ----------
    event, time : arrays, shape (n,)
        Observed outcome.
    event_prob : array, shape (repeats, n) or (n,)
        Out-of-fold predicted probability of an event by ``horizon``.
    horizon, thresholds
        As for :func:`net_benefit`.
    n_bootstrap : int, default 100
        Resamples for the bands; 0 for none.
    seed : int, default 0
        Seed of the resampling.

    Returns
    -------
    DataFrame
        The columns of :func:`decision_curve`; ``treated_share`` is averaged over repeats.
    """
    return _pooled_decision_curve(event, time, event_prob, horizon, thresholds, n_bootstrap, seed)[0]


def _pooled_decision_curve(
    event: np.ndarray,
    time: np.ndarray,
    event_prob: np.ndarray,
    horizon: float,
    thresholds: Sequence[float],
    n_bootstrap: int,
    seed: int,
) -> tuple[pd.DataFrame, np.ndarray]:
    """:func:`pooled_decision_curve`'s table and the model's net benefit on each resample, shape
    ``(n_bootstrap, len(thresholds))`` (the draws behind its band; :func:`carrisk.evaluate_models` pairs them
    across models). Resample ``b`` is the ``b``-th ``rng.integers(0, n, n)`` of ``np.random.default_rng(seed)``."""
    event = np.asarray(event, dtype=bool)
    time = np.asarray(time, dtype=float)
    by_repeat = np.atleast_2d(np.asarray(event_prob, dtype=float))
    if by_repeat.shape[1] != event.size:
        raise ValueError(f"event_prob must have shape (repeats, {event.size}), got {by_repeat.shape}")
    thresholds = [float(t) for t in thresholds]
    if any(not 0.0 <= t < 1.0 for t in thresholds):
        raise ValueError(f"thresholds must lie in [0, 1), got {thresholds}")
    everyone = np.ones(event.size)

    def model_curve(index: np.ndarray) -> np.ndarray:
        curves = [net_benefit(event[index], time[index], row[index], horizon, thresholds) for row in by_repeat]
        return np.mean(curves, axis=0)

    every = np.arange(event.size)
    table = pd.DataFrame(
        {
            "threshold": thresholds,
            "net_benefit_model": model_curve(every),
            "net_benefit_all": net_benefit(event, time, everyone, horizon, thresholds),
            "net_benefit_none": 0.0,
            "treated_share": [float((by_repeat >= t).mean()) for t in thresholds],
        }
    )
    draws_model = np.empty((max(n_bootstrap, 0), len(thresholds)))
    if n_bootstrap > 0:
        rng = np.random.default_rng(seed)
        draws_all = np.empty((n_bootstrap, len(thresholds)))
        for b in range(n_bootstrap):
            index = rng.integers(0, event.size, event.size)
            draws_model[b] = model_curve(index)
            draws_all[b] = net_benefit(event[index], time[index], everyone, horizon, thresholds)
        for name, draws in (("net_benefit_model", draws_model), ("net_benefit_all", draws_all)):
            table[f"{name}_lower"] = np.nanquantile(draws, 0.025, axis=0)
            table[f"{name}_upper"] = np.nanquantile(draws, 0.975, axis=0)
    return table, draws_model
