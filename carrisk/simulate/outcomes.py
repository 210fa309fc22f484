"""Outcome model: day-28 CR and cause-specific linear predictors, piecewise-exponential baseline hazards, deaths
before the day-28 assessment, and the drawn outcome times with their censoring."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from carrisk.simulate.parameters import CAR_PRODUCTS, CAUSES, RELAPSE_CAUSES
from carrisk.units import DAY28_DAYS, DAYS_PER_YEAR, TWELVE_MONTHS_DAYS

__all__ = ["EARLY_DEATH_DAYS", "PHENOTYPE_OF_CAUSE"]


PHENOTYPE_OF_CAUSE = {"cd19pos": "CD19+", "cd19neg": "CD19-", "lineage_switch": "lineage switch"}


def _linear_predictors(p: Mapping[str, Any], x: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Logit of day-28 CR and the log relative hazard of every cause."""
    cr_logit = (
        p["cr_intercept"]
        + p["cr_logor_blina_nonresponder"] * x["nonresponder"]
        + p["cr_logor_blina_responder"] * x["responder"]
        + p["cr_logor_high_burden"] * x["high_burden"]
        + p["cr_logor_cd19_dim_partial"] * x["cd19_dim_partial"]
        + p["cr_logor_kmt2a"] * x["kmt2a"]
        + p["cr_logor_inotuzumab"] * x["inotuzumab"]
    )
    age_10y = (x["age"] - p["age_reference_years"]) / 10.0
    four_1bb = x["product"] != CAR_PRODUCTS.index("nci_cd28")
    lp = {"cr": cr_logit}
    for cause in CAUSES:
        relapse = cause in RELAPSE_CAUSES
        term = (
            p[f"loghr_high_burden_{cause}"] * x["high_burden"]
            + p[f"loghr_prior_hsct_{cause}"] * x["hsct"]
            + p[f"loghr_inotuzumab_{cause}"] * x["inotuzumab"]
            + p[f"loghr_age_per_10y_{cause}"] * age_10y
        )
        if relapse:
            term = (
                term
                + p["loghr_blina_nonresponder"] * x["nonresponder"]
                + p["loghr_blina_responder"] * x["responder"]
                + p["loghr_mrd_positive_relapse"] * x["mrd_positive"]
                + p[f"loghr_cd19_dim_partial_{cause}"] * x["cd19_dim_partial"]
                + p[f"loghr_kmt2a_{cause}"] * x["kmt2a"]
                + p[f"loghr_41bb_{cause}"] * four_1bb
            )
        else:
            term = term + p["loghr_down_syndrome_death"] * x["down"]
        if cause == "cd19neg":
            term = term + p["loghr_blina_nonresponder_cd19neg_extra"] * x["nonresponder"]
        lp[cause] = term
    return lp


def _baseline_rates(p: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Interval edges (days, last = inf) and baseline hazard per day, shape (causes, intervals)."""
    edges = np.append(np.asarray(p["hazard_edges_days"], dtype=float), np.inf)
    n_intervals = len(edges) - 1
    rates = np.empty((len(CAUSES), n_intervals))
    late = edges[:-1] >= TWELVE_MONTHS_DAYS
    for k, cause in enumerate(CAUSES):
        shape = np.asarray(p[f"hazard_shape_{cause}"], dtype=float)
        if shape.shape != (n_intervals,):
            raise ValueError(
                f"hazard_shape_{cause} has {shape.size} values but hazard_edges_days defines {n_intervals} "
                "intervals; give one relative hazard per interval."
            )
        multiplier = np.where(late & (cause in RELAPSE_CAUSES), p["hazard_late_multiplier"], 1.0)
        rates[k] = np.exp(p[f"hazard_log_rate_{cause}"]) / DAYS_PER_YEAR * shape * multiplier
    return edges, rates


def _baseline_cumhaz(edges: np.ndarray, rates: np.ndarray, times: ArrayLike) -> np.ndarray:
    """Baseline cumulative hazard of every cause at ``times`` (days from infusion), shape (causes, times)."""
    t = np.asarray(times, dtype=float).reshape(-1)
    lower, upper = edges[:-1], edges[1:]
    exposure = np.clip(np.minimum(t[:, None], upper[None, :]) - lower[None, :], 0.0, None)  # (times, intervals)
    exposure = np.where(np.isfinite(exposure), exposure, 0.0)
    return rates @ exposure.T


def _relative_hazards(lp: Mapping[str, np.ndarray]) -> np.ndarray:
    return np.exp(np.column_stack([lp[cause] for cause in CAUSES]))


#: Days on which a patient not evaluable for response dies (uniform), before the day-28 assessment.
EARLY_DEATH_DAYS = (1.0, 27.0)


def _early_death_cdf(t: np.ndarray) -> np.ndarray:
    low, high = EARLY_DEATH_DAYS
    return np.clip((t - low) / (high - low), 0.0, 1.0)


def _non_evaluable(p: Mapping[str, Any]) -> float:
    """Probability of dying before the day-28 assessment (0 for parameter sets older than the parameter)."""
    return float(p.get("non_evaluable_prob", 0.0))


def _with_early_deaths(
    outcomes: dict[str, np.ndarray], p: Mapping[str, Any], rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Replace the outcomes of the patients not evaluable for response (drawn from their own stream ``rng``)."""
    n = outcomes["efs_days"].size
    u = rng.random((n, 2))
    early = u[:, 0] < _non_evaluable(p)
    low, high = EARLY_DEATH_DAYS
    day = np.round(low + (high - low) * u[:, 1], 1)
    out = dict(outcomes)
    out["day28_cr"] = pd.array(np.where(early, 0, outcomes["day28_cr"]), dtype="Int64")
    out["day28_cr"][early] = pd.NA
    for column, value in (("efs_days", day), ("os_days", day), ("efs_event", 1), ("death", 1)):
        out[column] = np.where(early, value, outcomes[column])
    out["relapse_phenotype"] = np.where(early, "none", outcomes["relapse_phenotype"]).astype(object)
    return out


def _inverse_cumhaz(edges: np.ndarray, rate: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Time at which a piecewise-linear baseline cumulative hazard reaches ``target`` (inf if never)."""
    finite_edges = edges[:-1]
    cum_at_edges = np.concatenate([[0.0], np.cumsum(rate[:-1] * np.diff(finite_edges))])
    inside = target <= cum_at_edges[-1]
    within = np.interp(target, cum_at_edges, finite_edges)
    with np.errstate(divide="ignore"):
        beyond = finite_edges[-1] + (target - cum_at_edges[-1]) / rate[-1]
    return np.where(inside, within, beyond)


def _admin_followup_days(p: Mapping[str, Any], u_accrual: np.ndarray) -> np.ndarray:
    start = np.datetime64(p["accrual_start"], "D").astype(np.int64)
    end = np.datetime64(p["accrual_end"], "D").astype(np.int64)
    cutoff = np.datetime64(p["data_cutoff"], "D").astype(np.int64)
    infusion_day = start + u_accrual * (end - start)
    return cutoff - infusion_day


def _simulate_outcomes(
    p: Mapping[str, Any],
    d: Mapping[str, np.ndarray],
    cr_prob: np.ndarray,
    rel_hazard: np.ndarray,
    edges: np.ndarray,
    rates: np.ndarray,
) -> dict[str, np.ndarray]:
    n = cr_prob.size
    cr = d["cr"] < cr_prob
    # Latent time of each cause by inversion of its cumulative hazard (independent latent times reproduce the
    # cause-specific hazards exactly); EFS after CR is the first of them.
    cause_times = np.column_stack(
        [_inverse_cumhaz(edges, rates[k], d["cause_exp"][:, k] / rel_hazard[:, k]) for k in range(len(CAUSES))]
    )
    first_cause = np.argmin(cause_times, axis=1)
    event_time = cause_times[np.arange(n), first_cause]

    admin = _admin_followup_days(p, d["accrual"])
    ltfu = DAY28_DAYS + d["ltfu_exp"] * DAYS_PER_YEAR / p["ltfu_rate_per_year"]
    censor = np.minimum(admin, ltfu)

    efs_event = ~cr | (event_time <= censor)
    efs_days = np.where(cr, np.minimum(event_time, censor), DAY28_DAYS)
    death_cause = CAUSES.index("death")
    relapsed = cr & efs_event & (first_cause != death_cause)
    phenotype = np.full(n, "none", dtype=object)
    for k, cause in enumerate(RELAPSE_CAUSES):
        phenotype[relapsed & (first_cause == k)] = PHENOTYPE_OF_CAUSE[cause]
    phenotype[relapsed & (d["unclassified"] < p["unclassified_relapse_share"])] = "unclassified"

    post_relapse = d["os_exp"] * p["os_median_days_after_relapse"] / np.log(2.0)
    post_no_cr = d["os_exp"] * p["os_median_days_after_no_cr"] / np.log(2.0)
    death_time = np.where(
        ~cr,
        DAY28_DAYS + post_no_cr,
        np.where(first_cause == death_cause, event_time, event_time + post_relapse),
    )
    death = death_time <= censor
    os_days = np.minimum(death_time, censor)
    return {
        "efs_days": np.round(efs_days, 1),
        "efs_event": efs_event.astype(int),
        "day28_cr": cr.astype(int),
        "relapse_phenotype": phenotype,
        "os_days": np.round(np.maximum(os_days, efs_days), 1),
        "death": death.astype(int),
    }
