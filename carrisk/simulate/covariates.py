"""Latent draws (common random numbers: every random number a cohort needs, independent of the parameters) and the
deterministic map from them to each patient's true covariates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import special

from carrisk.schema import MAX_MONTHS_SINCE_HSCT
from carrisk.simulate.parameters import CAR_PRODUCTS, CAUSES

_UNIFORM_DRAWS = (
    "age",
    "sex",
    "product",
    "blina_exposed",
    "blina_response",
    "blina_unknown",
    "kmt2a",
    "hsct",
    "hsct_second",
    "burden_stratum",
    "burden_level",
    "cns",
    "emd",
    "relapses",
    "down",
    "inotuzumab",
    "cd19",
    "cd19_type",
    "cr",
    "unclassified",
    "accrual",
)


def _draw_latent(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    draws = {name: rng.random(n) for name in _UNIFORM_DRAWS}
    draws["hsct_months_z"] = rng.standard_normal(n)
    draws["cause_exp"] = rng.standard_exponential((n, len(CAUSES)))
    draws["ltfu_exp"] = rng.standard_exponential(n)
    draws["os_exp"] = rng.standard_exponential(n)
    return draws


_AGE_QUANTILE_GRID = np.linspace(0.0, 1.0, 20_001)


def _truncnorm_ppf(u: np.ndarray, mean: float, sd: float, lower: float, upper: float) -> np.ndarray:
    lo, hi = special.ndtr((lower - mean) / sd), special.ndtr((upper - mean) / sd)
    return mean + sd * special.ndtri(lo + u * (hi - lo))


def _covariates(p: Mapping[str, Any], d: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Deterministic map from latent draws to the true covariates."""
    # Beta quantile function tabulated on a fine grid and interpolated: exact to ~1e-4 years, 20x faster.
    age_grid = special.betaincinv(p["age_beta_a"], p["age_beta_b"], _AGE_QUANTILE_GRID)
    age = p["age_min_years"] + (p["age_max_years"] - p["age_min_years"]) * np.interp(
        d["age"], _AGE_QUANTILE_GRID, age_grid
    )
    product_probs = np.array([p["car_product_probs"][name] for name in CAR_PRODUCTS], dtype=float)
    product = np.minimum(
        np.searchsorted(np.cumsum(product_probs / product_probs.sum()), d["product"], side="right"),
        len(CAR_PRODUCTS) - 1,
    )
    exposed = d["blina_exposed"] < p["blina_exposed_prob"]
    responder = exposed & (d["blina_response"] < p["blina_response_prob"])
    nonresponder = exposed & ~responder
    response_recorded = ~exposed | (d["blina_unknown"] >= p["blina_unknown_response_share"])

    kmt2a = d["kmt2a"] < np.where(exposed, p["kmt2a_prob_exposed"], p["kmt2a_prob_naive"])
    hsct = d["hsct"] < np.where(exposed, p["hsct_prob_exposed"], p["hsct_prob_naive"])
    hsct_count = hsct * (1 + (d["hsct_second"] < p["hsct_second_share"]))
    hsct_months = np.where(hsct, p["hsct_months_median"] * np.exp(p["hsct_months_sdlog"] * d["hsct_months_z"]), np.nan)
    # the log-normal tail reaches past the plausible range (about 1 patient in 100,000); keep records valid
    hsct_months = np.minimum(hsct_months, MAX_MONTHS_SINCE_HSCT)

    p_high = np.select(
        [nonresponder, responder],
        [p["marrow_high_prob_nonresponder"], p["marrow_high_prob_responder"]],
        p["marrow_high_prob_naive"],
    )
    u = d["burden_stratum"]
    marrow_high = u < p_high
    undetectable = ~marrow_high & ((u - p_high) / (1.0 - p_high) < p["marrow_undetectable_share"])
    mrd_positive = ~marrow_high & ~undetectable
    high_log10 = _truncnorm_ppf(
        d["burden_level"], p["marrow_high_log10_mean"], p["marrow_high_log10_sd"], np.log10(5.0), 2.0
    )
    mrd_log10 = _truncnorm_ppf(
        d["burden_level"], p["marrow_mrd_log10_mean"], p["marrow_mrd_log10_sd"], -2.0, np.log10(4.99)
    )
    blasts = np.where(marrow_high, 10.0**high_log10, np.where(mrd_positive, 10.0**mrd_log10, 0.0))

    cns = np.where(d["cns"] < p["cns3_prob"], 3, np.where(d["cns"] < p["cns3_prob"] + p["cns2_prob"], 2, 1)).astype(int)
    emd = d["emd"] < p["emd_prob"]
    high_burden = marrow_high | (cns == 3) | emd

    relapse_probs = np.asarray(p["prior_relapses_probs"], dtype=float)
    prior_relapses = np.minimum(
        np.searchsorted(np.cumsum(relapse_probs / relapse_probs.sum()), d["relapses"], side="right"),
        len(relapse_probs) - 1,
    )
    down = d["down"] < p["down_syndrome_prob"]
    inotuzumab = d["inotuzumab"] < np.where(exposed, p["inotuzumab_prob_exposed"], p["inotuzumab_prob_naive"])

    cd19_logit = (
        p["cd19_intercept"]
        + p["cd19_logor_exposed"] * exposed
        + p["cd19_logor_nonresponder_extra"] * nonresponder
        + p["cd19_logor_high_burden"] * high_burden
    )
    cd19_prob = special.expit(cd19_logit)
    cd19_dim_partial = d["cd19"] < cd19_prob
    cd19_partial = cd19_dim_partial & (d["cd19_type"] < p["cd19_partial_share"])

    return {
        "age": age,
        "male": d["sex"] < p["sex_male_prob"],
        "product": product,
        "exposed": exposed,
        "responder": responder,
        "nonresponder": nonresponder,
        "response_recorded": response_recorded,
        "kmt2a": kmt2a,
        "hsct": hsct,
        "hsct_count": hsct_count.astype(int),
        "hsct_months": hsct_months,
        "marrow_high": marrow_high,
        "undetectable": undetectable,
        "mrd_positive": mrd_positive,
        "blasts": blasts,
        "cns": cns,
        "emd": emd,
        "high_burden": high_burden,
        "prior_relapses": prior_relapses.astype(int),
        "down": down,
        "inotuzumab": inotuzumab,
        "cd19_prob": cd19_prob,
        "cd19_dim_partial": cd19_dim_partial,
        "cd19_partial": cd19_partial,
    }
