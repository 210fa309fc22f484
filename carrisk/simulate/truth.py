"""The truth behind a simulated cohort, exact from the outcome model: EFS survival, cumulative incidence of every
recorded first-event cause, the oracle concordance, and the expected published moments used for calibration."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from carrisk.simulate.covariates import _covariates, _draw_latent
from carrisk.simulate.outcomes import (
    _admin_followup_days,
    _baseline_cumhaz,
    _baseline_rates,
    _early_death_cdf,
    _linear_predictors,
    _non_evaluable,
    _relative_hazards,
)
from carrisk.simulate.parameters import CAUSES, RELAPSE_CAUSES, _resolve_params
from carrisk.units import DAY28_DAYS, DAYS_PER_YEAR, SIX_MONTHS_DAYS, TWELVE_MONTHS_DAYS

if TYPE_CHECKING:
    from carrisk.simulate.cohort import SimulatedCohort

__all__ = ["TRUE_CIF_CAUSES", "cohort_moments", "oracle_concordance", "true_cause_incidence", "true_survival"]


def _survival_from(
    cr_prob: np.ndarray,
    rel_hazard: np.ndarray,
    edges: np.ndarray,
    rates: np.ndarray,
    times: ArrayLike,
    non_evaluable: float = 0.0,
) -> np.ndarray:
    t = np.asarray(times, dtype=float).reshape(-1)
    cumhaz = rel_hazard @ _baseline_cumhaz(edges, rates, t)  # (n, times)
    surv = (1.0 - non_evaluable) * cr_prob[:, None] * np.exp(-cumhaz)
    return np.where(t[None, :] < DAY28_DAYS, 1.0 - non_evaluable * _early_death_cdf(t)[None, :], surv)


def true_survival(cohort: SimulatedCohort, times: ArrayLike) -> np.ndarray:
    """True EFS survival probability of every patient of ``cohort`` at ``times``.

    Parameters
    ----------
    cohort : SimulatedCohort
    times : array-like of float
        Days from infusion.

    Returns
    -------
    numpy.ndarray
        ``(n_patients, n_times)``; ``1 - q F(t)`` before day 28 (early deaths), ``(1 - q) p_CR
        exp(-sum_k H_k(t))`` from day 28 on, computed exactly from the piecewise-exponential cause-specific
        hazards (no censoring).
    """
    t, cr_prob, rel_hazard, edges, rates = _true_hazards(cohort, times)
    return _survival_from(cr_prob, rel_hazard, edges, rates, t, _non_evaluable(cohort.params))


def _true_hazards(
    cohort: SimulatedCohort, times: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Checked ``times`` and what the truth is computed from: (t, CR probability, relative hazards, edges, rates)."""
    t = np.asarray(times, dtype=float).reshape(-1)
    if np.any(t < 0) or not np.all(np.isfinite(t)):
        raise ValueError("times must be finite days from infusion (>= 0).")
    truth = cohort.truth
    edges, rates = _baseline_rates(cohort.params)
    rel_hazard = np.exp(truth[[f"true_lp_{cause}" for cause in CAUSES]].to_numpy(dtype=float))
    return t, truth["true_cr_prob"].to_numpy(dtype=float), rel_hazard, edges, rates


#: Recorded first-event causes whose true cumulative incidence the truth table holds (names of
#: ``carrisk.competing.outcomes.CAUSES``).
TRUE_CIF_CAUSES = ("no_cr", "cd19pos", "cd19neg", "lineage_switch", "unclassified", "death_in_remission")


def true_cause_incidence(cohort: SimulatedCohort, times: ArrayLike) -> np.ndarray:
    """True cumulative incidence of every recorded first-event cause, per patient, at ``times`` (no censoring).

    Exact from the piecewise-exponential cause-specific hazards: within hazard interval ``j`` every rate is
    constant, so the probability of leaving through cause ``k`` is ``h_kj / h_j * S(start of j) *
    (1 - exp(-h_j * exposure))`` with ``h_j`` the total rate. ``no_cr`` is ``q F(t)`` before day 28 (early
    deaths) and ``1 - (1 - q) p_CR`` from day 28 on; a relapse
    is recorded ``unclassified`` with probability ``unclassified_relapse_share`` whatever its true phenotype, so
    the recorded CD19+/CD19-/lineage-switch incidences are the latent ones times ``1 - share``. For every patient
    and time the causes and the true EFS add up to 1.

    Parameters
    ----------
    cohort : SimulatedCohort
    times : array-like of float
        Days from infusion.

    Returns
    -------
    numpy.ndarray
        ``(n_patients, n_times, len(TRUE_CIF_CAUSES))``.
    """
    t, cr_prob, rel_hazard, edges, rates = _true_hazards(cohort, times)
    return _cause_incidence(cohort.params, cr_prob, rel_hazard, edges, rates, t)


def _cause_incidence(
    p: Mapping[str, Any],
    cr_prob: np.ndarray,
    rel_hazard: np.ndarray,
    edges: np.ndarray,
    rates: np.ndarray,
    t: np.ndarray,
) -> np.ndarray:
    lower, upper = edges[:-1], edges[1:]
    q = _non_evaluable(p)
    in_cr = (1.0 - q) * cr_prob
    at_start = in_cr[:, None] * np.exp(-(rel_hazard @ _baseline_cumhaz(edges, rates, lower)))  # (n, intervals)
    cause_rates = rel_hazard[:, None, :] * rates.T[None, :, :]  # (n, intervals, causes)
    total = cause_rates.sum(axis=2)
    exposure = np.clip(np.minimum(t[:, None], upper[None, :]) - lower[None, :], 0.0, None)  # (times, intervals)
    leave = at_start[:, None, :] * -np.expm1(-total[:, None, :] * exposure[None, :, :])  # (n, times, intervals)
    latent = np.einsum("ntj,njk->ntk", leave, cause_rates / total[:, :, None])
    share = p["unclassified_relapse_share"]
    relapse = [CAUSES.index(cause) for cause in RELAPSE_CAUSES]
    no_cr = np.where(t[None, :] >= DAY28_DAYS, 1.0 - in_cr[:, None], q * _early_death_cdf(t)[None, :])
    return np.stack(
        [
            no_cr,
            *((1.0 - share) * latent[:, :, k] for k in relapse),
            share * latent[:, :, relapse].sum(axis=2),
            latent[:, :, CAUSES.index("death")],
        ],
        axis=2,
    )


def _true_cif_columns(
    p: Mapping[str, Any], cr_prob: np.ndarray, rel_hazard: np.ndarray, edges: np.ndarray, rates: np.ndarray
) -> dict[str, np.ndarray]:
    cif = _cause_incidence(p, cr_prob, rel_hazard, edges, rates, np.array([SIX_MONTHS_DAYS, TWELVE_MONTHS_DAYS]))
    return {
        f"true_cif_{cause}_{horizon}": cif[:, h, k]
        for k, cause in enumerate(TRUE_CIF_CAUSES)
        for h, horizon in enumerate(("6mo", "12mo"))
    }


def oracle_concordance(cohort: SimulatedCohort) -> float:
    """Harrell's C of the true risk against the observed EFS of ``cohort``.

    The true risk (-log of the true 12-month EFS) is the best ranking any model could produce, so this is an
    upper reference for a model's concordance on the same cohort (it is itself estimated with noise).

    Parameters
    ----------
    cohort : SimulatedCohort

    Returns
    -------
    float
        ``sksurv.metrics.concordance_index_censored(efs_event, efs_days, true_risk)[0]``.
    """
    from sksurv.metrics import concordance_index_censored

    records = cohort.records
    event = records["efs_event"].to_numpy(dtype=int).astype(bool)
    time = records["efs_days"].to_numpy(dtype=float)
    return float(concordance_index_censored(event, time, cohort.truth["true_risk"].to_numpy(dtype=float))[0])


def cohort_moments(
    params: Mapping[str, Any] | None = None, *, n: int = 200_000, seed: int = 0, **overrides: Any
) -> dict[str, float]:
    """Expected values of the published summary statistics under ``params``, by exact conditional expectation.

    The covariates of ``n`` patients are drawn with ``seed`` (common random numbers: the same draws for every
    parameter value), and every outcome statistic is averaged analytically over the outcome model given those
    covariates, so the moments are smooth in the outcome parameters and can be fitted by least squares.

    Groups are the *recorded* blinatumomab groups (exposed patients with an unrecorded response are excluded
    from the per-group CR and EFS figures, as in the study); CR rates are among patients evaluable for response
    (``non_evaluable_prob`` die before day 28: in EFS, not in the CR denominators). Six- and 12-month EFS are
    the mean true survival; the Kaplan-Meier estimate of the study converges to the same value because
    censoring is independent.
    Relapse counts account for censoring (administrative and loss to follow-up), as an observed count would.

    Parameters
    ----------
    params : mapping, optional
        Parameter set; defaults to the shipped fitted parameters.
    n : int, default 200000
        Number of covariate draws.
    seed : int, default 0
    **overrides
        Individual parameters to replace.

    Returns
    -------
    dict
        ``cr_rate_<group>``, ``efs_6mo_<group>`` for the groups naive/responder/nonresponder, ``efs_6mo_overall``,
        ``efs_12mo_overall``, ``cd19_dim_partial_exposed``/``_naive``, ``relapse_fraction`` (observed first
        relapses / n), ``relapse_share_<phenotype>`` among observed relapses, and descriptive covariate moments
        (``high_burden``, ``kmt2a_*``, ``prior_hsct_*``, ``age_median``, ``age_q25``, ``age_q75``,
        ``death_in_remission_fraction``).
    """
    p = _resolve_params(params, overrides)
    draws = _draw_latent(int(n), np.random.default_rng(seed).spawn(2)[0])
    x = _covariates(p, draws)
    lp = _linear_predictors(p, x)
    cr_prob = special.expit(lp["cr"])
    rel_hazard = _relative_hazards(lp)
    edges, rates = _baseline_rates(p)
    q = _non_evaluable(p)
    s6, s12 = _survival_from(cr_prob, rel_hazard, edges, rates, [SIX_MONTHS_DAYS, TWELVE_MONTHS_DAYS], q).T

    observed = _expected_observed_first_events(p, draws, (1.0 - q) * cr_prob, rel_hazard, edges, rates)
    relapse_by_cause = observed[:, : len(RELAPSE_CAUSES)].sum(axis=0)
    total_relapses = relapse_by_cause.sum()
    unclassified = p["unclassified_relapse_share"]

    moments: dict[str, float] = {}
    recorded = x["response_recorded"]
    groups = {
        "naive": ~x["exposed"],
        "responder": x["responder"] & recorded,
        "nonresponder": x["nonresponder"] & recorded,
    }
    for name, mask in groups.items():
        moments[f"cr_rate_{name}"] = float(cr_prob[mask].mean())
        moments[f"efs_6mo_{name}"] = float(s6[mask].mean())
    moments["efs_6mo_overall"] = float(s6.mean())
    moments["efs_12mo_overall"] = float(s12.mean())
    moments["cd19_dim_partial_exposed"] = float(x["cd19_prob"][x["exposed"]].mean())
    moments["cd19_dim_partial_naive"] = float(x["cd19_prob"][~x["exposed"]].mean())
    moments["relapse_fraction"] = float(total_relapses / n)
    for k, cause in enumerate(RELAPSE_CAUSES):
        moments[f"relapse_share_{cause}"] = float((1.0 - unclassified) * relapse_by_cause[k] / total_relapses)
    moments["relapse_share_unclassified"] = float(unclassified)
    moments["death_in_remission_fraction"] = float(observed[:, CAUSES.index("death")].sum() / n)
    moments["evaluable_fraction"] = 1.0 - q
    moments["high_burden"] = float(x["high_burden"].mean())
    moments["marrow_blasts_ge50"] = float((x["blasts"] >= 50).mean())
    for name, mask in (("naive", ~x["exposed"]), ("exposed", x["exposed"])):
        moments[f"kmt2a_{name}"] = float(x["kmt2a"][mask].mean())
        moments[f"prior_hsct_{name}"] = float(x["hsct"][mask].mean())
        moments[f"high_burden_{name}"] = float(x["high_burden"][mask].mean())
    q25, q50, q75 = np.quantile(x["age"], [0.25, 0.5, 0.75])
    moments.update(age_q25=float(q25), age_median=float(q50), age_q75=float(q75))
    return moments


def _expected_observed_first_events(
    p: Mapping[str, Any],
    d: Mapping[str, np.ndarray],
    cr_prob: np.ndarray,
    rel_hazard: np.ndarray,
    edges: np.ndarray,
    rates: np.ndarray,
) -> np.ndarray:
    """Probability that each patient's first post-CR event is of each cause *and* observed before censoring.

    Within an interval every hazard, including loss to follow-up, is constant, so the probability of leaving
    the interval through cause k is ``h_k / h_total * P(at risk at its start) * (1 - exp(-h_total * length))``,
    with the interval truncated at the patient's administrative follow-up. Cost: O(n x intervals x causes).
    """
    admin = _admin_followup_days(p, d["accrual"])
    ltfu_rate = p["ltfu_rate_per_year"] / DAYS_PER_YEAR
    lower, upper = edges[:-1], edges[1:]
    start_cumhaz = rel_hazard @ _baseline_cumhaz(edges, rates, lower)  # (n, intervals)
    at_risk = cr_prob[:, None] * np.exp(-start_cumhaz - ltfu_rate * (lower[None, :] - DAY28_DAYS))
    length = np.clip(np.minimum(upper[None, :], admin[:, None]) - lower[None, :], 0.0, None)
    cause_rates = rel_hazard[:, None, :] * rates.T[None, :, :]  # (n, intervals, causes)
    total = cause_rates.sum(axis=2) + ltfu_rate
    leave = at_risk * -np.expm1(-total * length)
    return np.einsum("nj,njk->nk", leave / total, cause_rates)
