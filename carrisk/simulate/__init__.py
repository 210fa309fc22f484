"""Synthetic CAR T-cell cohorts calibrated to Myers et al. (J Clin Oncol 2022) and Lamble et al. (2023).

The simulator draws patients in the record schema of ``docs/records.md`` together with their *true* event-free
survival (EFS) curves, so that a model's discrimination and calibration can be compared with the best any model
could reach on the same cohort (:func:`oracle_concordance`).

Generative model
----------------
All numeric values live in ``carrisk/data/simulation_params.json`` (written by ``benchmarks/calibrate_cohort.py``);
the names in brackets are their keys there.

1. **Age** at infusion: ``age_min_years + (age_max_years - age_min_years) * Beta(age_beta_a, age_beta_b)``, the
   Beta fitted to the published median 12.7 and IQR 7.1-17.5 years on the range 1-30 years.
2. **Sex** male with ``sex_male_prob``. **CAR product** from ``car_product_probs`` (tisagenlecleucel most common;
   every construct is 4-1BB except ``nci_cd28``).
3. **Blinatumomab**: exposed with ``blina_exposed_prob`` (18.3 %). Among the exposed the latent response is
   ``responder`` with ``blina_response_prob`` (57.5 % = 42/73), else ``nonresponder``; a share
   ``blina_unknown_response_share`` (4/77) of the exposed has the response *recorded* as unknown (the latent
   response still drives the outcome).
4. **KMT2A** rearranged and **prior allogeneic transplant** with group-specific probabilities
   (``kmt2a_prob_*``, ``hsct_prob_*``), more frequent among the exposed; a share ``hsct_second_share`` had two
   transplants; months since the last one is log-normal (``hsct_months_median``, ``hsct_months_sdlog``).
   **Prior inotuzumab** (``inotuzumab_prob_*``), **Down syndrome** (``down_syndrome_prob``) and the number of
   **prior relapses** (``prior_relapses_probs`` over 0, 1, 2, 3, 4) are drawn independently.
5. **Disease burden**: marrow blasts >= 5 % with a probability per latent blinatumomab group
   (``marrow_high_prob_*``); otherwise undetectable (share ``marrow_undetectable_share``) or MRD-positive.
   Within a stratum log10(blasts %) is a truncated normal (``marrow_high_log10_*`` on [log10 5, 2],
   ``marrow_mrd_log10_*`` on [-2, log10 4.99]). **CNS3**/CNS2 (``cns3_prob``, ``cns2_prob``) and non-CNS
   **extramedullary disease** (``emd_prob``) are independent. High burden = blasts >= 5 % or CNS3 or
   extramedullary disease (the study's definition).
6. **CD19 dim or partial** before infusion: logistic, ``logit p = cd19_intercept + cd19_logor_exposed * exposed
   + cd19_logor_nonresponder_extra * nonresponder + cd19_logor_high_burden * high``; partial (vs dim) with
   ``cd19_partial_share``; the rest bright.
7. **Day-28 CR**: logistic, ``logit p_CR = cr_intercept + cr_logor_blina_nonresponder + cr_logor_blina_responder
   + cr_logor_high_burden + cr_logor_cd19_dim_partial + cr_logor_kmt2a + cr_logor_inotuzumab`` (each term times
   its indicator). No CR -> EFS event at day 28.
8. **After CR**, four cause-specific hazards from infusion day 28 on: CD19-positive relapse, CD19-negative
   relapse, lineage switch, death in remission. Each is piecewise-exponential,
   ``h_k(t | x) = exp(hazard_log_rate_k) / 365.25 * hazard_shape_k[j] * exp(lp_k(x))`` for ``t`` in interval
   ``j`` of ``hazard_edges_days`` (days from infusion), with ``lp_k`` a sum of log hazard ratios
   (``loghr_<covariate>_<cause>``; relapse causes share ``loghr_blina_nonresponder``/``loghr_blina_responder``).
   EFS time = the first cause. A share ``unclassified_relapse_share`` of relapses is recorded "unclassified".
8a. **Not evaluable for response**: independently of everything else, a share ``non_evaluable_prob`` (8/420:
   the study had 412 of 420 evaluable) dies before the day-28 assessment, on a day uniform on [1, 27]
   (:data:`EARLY_DEATH_DAYS`): an EFS event and a death that day, ``day28_cr`` blank (cause ``no_cr`` in
   :func:`carrisk.competing.derive_first_event`: the study's EFS counts no CR by day 28 as an event). These draws
   come from a third random stream, so every other patient is the same as without them. They are distinct from
   the exposed patients whose *blinatumomab* response is unknown (``blina_response`` "not evaluable", share
   ``blina_unknown_response_share``): those are evaluable for the CAR response and have a recorded ``day28_cr``;
   they are left out of the per-blinatumomab-group CR rates only because their group is unknown.
9. **Overall survival**: death after relapse (or lineage switch) after an exponential time with median
   ``os_median_days_after_relapse``; after no CR with median ``os_median_days_after_no_cr``; death in
   remission is a death. No other deaths.
10. **Censoring**: infusion date uniform between ``accrual_start`` and ``accrual_end``, administrative
    cut-off at ``data_cutoff``, plus loss to follow-up from day 28 with hazard ``ltfu_rate_per_year``.
    EFS and OS share the censoring time; the day-28 response is always observed.
11. **Truth**: ``S(t) = 1 - q F(t)`` for ``t < 28`` and ``S(t) = (1 - q) p_CR exp(-sum_k H_k(t))`` for ``t >= 28``
    (``q = non_evaluable_prob``, ``F`` the uniform early-death distribution; ``true_cr_prob`` is ``p_CR``, the CR
    probability of an evaluable patient), exact
    (piecewise-linear cumulative hazards), without censoring. ``true_risk = -log S(12 months)``, the true
    12-month cumulative EFS hazard (higher = worse, a strictly decreasing function of ``true_efs_12mo``).

Randomness: ``np.random.default_rng(seed)`` is split into three independent streams, one for the patients, one
for the record spellings and missing cells, so ``messy=True`` and ``messy=False`` describe the same patients, and
one for the non-evaluable (early death) patients.

Assumptions (not printed in the abstract)
-----------------------------------------
=======================================  ===================  ==================================================
parameter                                value                reason
=======================================  ===================  ==================================================
car_product_probs tisa/CHOP/SCRI/NCI     .40/.27/.20/.13      tisagenlecleucel most common; three trial sites
sex_male_prob                            0.57                 usual male excess in paediatric B-ALL
kmt2a_prob_naive / _exposed              .10 / .20            ~10 % in R/R B-ALL; abstract: exposed more KMT2A-r
hsct_prob_naive / _exposed               .38 / .55            below ELIANA 61 % (trial); abstract: exposed more
hsct_second_share; months median, sdlog  .12; 14, 0.8         second transplants uncommon
marrow_high_prob naive/resp/nonresp      .40/.25/.65          -> high burden ~46 %; blina NR carry more disease
marrow_undetectable_share                0.50                 John 2025: >0-<5 % blasts in ~20 %
marrow_high_log10 mean / sd              1.6 / 0.4            -> >= 50 % blasts in ~12 % (John 2025: 12-18 %)
marrow_mrd_log10 mean / sd               -0.7 / 0.7           MRD levels centred ~0.2 %, spanning 0.01-5 %
cns3 / cns2 / emd prob                   .04/.08/.06          CNS3 and EMD are minority indications
prior_relapses_probs (0..4)              .12/.45/.30/.10/.03  mostly first/second relapse; 12 % refractory
down_syndrome_prob                       0.04                 DS enriched in R/R B-ALL
inotuzumab_prob_naive / _exposed         .06 / .20            rare before 2019; more among the exposed
cd19_logor_nonresponder_extra            0.8                  CD19 modulation concentrates in blina NR
cd19_logor_high_burden; partial share    0.5; 0.5             dim/partial seen only with measurable disease
cr_logor high/cd19/kmt2a/ino             -1/-.8/-.5/-.4       directions of Myers 2022 / John 2025
loghr_high_burden CD19+/CD19-/LS/death   .5/.9/.3/.2          Myers: burden -> EFS; Lamble: -> CD19-
loghr_mrd_positive_relapse               0.3                  residual MRD raises relapse modestly
loghr_cd19_dim_partial CD19+/CD19-/LS    .2/1.0/.3            Myers: dim/partial -> lower RFS; escape
loghr_kmt2a CD19+/CD19-/LS               0/.3/2.2             Lamble 2023: KMT2A drives lineage switch
loghr_age_per_10y CD19+/CD19-/LS/death   0/.3/-.3/.3          Lamble: older age -> CD19-; LS in the young
loghr_41bb CD19+/CD19-/LS                -.4/.6/0             4-1BB persists (fewer CD19+); Lamble: -> CD19-
loghr_blina_nonresponder_cd19neg_extra   0.5                  Lamble 2023: blina NR -> CD19-negative
loghr_prior_hsct relapses / death        .15 / .4             prior HSCT: modest relapse effect, more TRM
loghr_inotuzumab CD19+/CD19-/LS/death    .2/.3/0/.3           John 2025: prior inotuzumab worse
loghr_down_syndrome_death                0.9                  DS: higher treatment-related mortality
hazard_shape_* (5 intervals)             see JSON             relapses mostly in year 1; ELIANA 3-y EFS 44 %
death in remission (calibration target)  7 %                  NRM ~5-10 %; keeps 3-y EFS near ELIANA
os median after relapse / no CR          300 / 150 d          poor salvage after post-CAR failure
ltfu_rate_per_year                       0.04                 modest loss to follow-up
accrual 2012-01-01..2019-12-31           cut 2020-06-30       study window; administrative censoring
=======================================  ===================  ==================================================

Fitted by ``benchmarks/calibrate_cohort.py`` (least squares on the published moments): ``age_beta_a``,
``age_beta_b``, ``cd19_intercept``, ``cd19_logor_exposed``, ``cr_intercept``, ``cr_logor_blina_nonresponder``,
``cr_logor_blina_responder``, ``hazard_log_rate_*`` (four causes), ``loghr_blina_nonresponder``,
``loghr_blina_responder`` and ``hazard_late_multiplier``. The Beta cannot pass through all three published age
quartiles at once; the least-squares fit misses each by < 0.5 years. The share of patients dying in remission
is not published; it is an assumed calibration target (7 %) so that the fit does not trade relapses for deaths.

References
----------
1. Myers RM et al. Blinatumomab nonresponse and high-disease burden are associated with inferior outcomes after
   CD19-CAR for B-ALL. J Clin Oncol 2022;40:932-944.
2. Lamble AJ et al. Risk factors for CD19-negative relapse after CD19-CAR. Blood Adv 2023;7:575.
3. Maude SL et al. Tisagenlecleucel in children and young adults with B-cell lymphoblastic leukemia (ELIANA).
   N Engl J Med 2018;378:439-448.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import special

from carrisk.schema import MAX_MONTHS_SINCE_HSCT, OUTCOME_COLUMNS, PREINFUSION_COLUMNS, RECORD_COLUMNS
from carrisk.units import DAY28_DAYS, DAYS_PER_YEAR, SIX_MONTHS_DAYS, TWELVE_MONTHS_DAYS

__all__ = [
    "CAUSES",
    "EXTERNAL_CENTRES",
    "OUTCOME_COLUMNS",
    "PREINFUSION_COLUMNS",
    "RECORD_COLUMNS",
    "SIX_MONTHS_DAYS",
    "TRUE_CIF_CAUSES",
    "TWELVE_MONTHS_DAYS",
    "SimulatedCohort",
    "centre_params",
    "cohort_moments",
    "load_simulation_params",
    "oracle_concordance",
    "simulate_cohort",
    "true_cause_incidence",
    "true_survival",
]


CAUSES = ("cd19pos", "cd19neg", "lineage_switch", "death")
RELAPSE_CAUSES = ("cd19pos", "cd19neg", "lineage_switch")
PHENOTYPE_OF_CAUSE = {"cd19pos": "CD19+", "cd19neg": "CD19-", "lineage_switch": "lineage switch"}


CAR_PRODUCTS = ("tisagenlecleucel", "chop_penn", "scri_plat02", "nci_cd28")
BLINA_GROUPS = ("naive", "responder", "nonresponder")

# Columns that may be blanked at `missing_rate` (never patient_id, blina_exposed or outcomes).
_MISSABLE_COLUMNS = (
    "age_years",
    "sex",
    "car_product",
    "blina_response",
    "marrow_blasts_pct",
    "cns_status",
    "extramedullary_disease",
    "cd19_expression",
    "kmt2a_status",
    "cytogenetics",
    "prior_hsct_count",
    "months_since_last_hsct",
    "prior_relapses",
    "down_syndrome",
    "prior_inotuzumab",
)
_MISSING_TOKENS = ("NA", "N/A", "unknown", "not known", ".")
_TOKEN_MISSING_COLUMNS = ("sex", "car_product", "cns_status", "extramedullary_disease", "down_syndrome")

# Accepted spellings from docs/records.md, used by messy mode: column -> canonical value -> spellings, or, for the
# marrow's "undetectable", the spellings themselves.
_SPELLINGS: dict[str, Any] = {
    "sex": {"M": ("M", "male", "Male"), "F": ("F", "female", "Female")},
    "car_product": {
        "tisagenlecleucel": ("tisagenlecleucel", "Kymriah", "tisa-cel", "CTL019"),
        "nci_cd28": ("NCI", "NCI CD19-28z", "19-28z"),
        "scri_plat02": ("SCRI", "Seattle", "PLAT-02"),
        "chop_penn": ("CHOP", "Penn", "CHOP/Penn", "CTL119", "huCART19"),
    },
    "blina_response": {
        "responder": ("CR", "CRi", "MRD-negative CR", "MRD neg", "MRD-positive CR"),
        "nonresponder": ("PR", "NR", "no response", "refractory", "PD", "no CR"),
        "unknown": ("not evaluable", "NE", ""),
    },
    "cns_status": {"CNS1": ("CNS1", "1"), "CNS2": ("CNS2", "2", "CNS 2b"), "CNS3": ("CNS3", "3", "CNS-3")},
    "cd19_expression": {
        "bright": ("bright", "CD19+ bright", "normal", "positive", "CD19+"),
        "dim": ("dim", "CD19 dim", "weak"),
        "partial": ("partial", "partial loss", "heterogeneous", "CD19-neg subpopulation", "bimodal"),
    },
    "kmt2a_status": {
        "rearranged": ("rearranged", "KMT2A-r", "MLL-r", "positive"),
        "not_rearranged": ("not rearranged", "negative", "germline"),
    },
    "marrow_undetectable": ("<0.01", "MRD negative", "MRD neg", "undetectable", "0"),
}
_YES_NO_STYLES = (("yes", "no"), ("Y", "N"), ("1", "0"))
_KMT2A_FUSIONS = ("t(4;11)(q21;q23)", "KMT2A-AFF1", "KMT2A::MLLT1", "MLL-r", "11q23 rearranged")
_OTHER_KARYOTYPES = ("hyperdiploid", "ETV6::RUNX1", "iAMP21")


# --------------------------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------------------------
def load_simulation_params() -> dict[str, Any]:
    """Load the fitted simulation parameters shipped with carrisk.

    Returns
    -------
    dict
        Parameter name -> value (numbers, lists of numbers, a dict of product shares, ISO dates), the
        ``parameters`` section of ``carrisk/data/simulation_params.json``.
    """
    text = resources.files("carrisk").joinpath("data", "simulation_params.json").read_text(encoding="utf-8")
    return dict(json.loads(text)["parameters"])


def _resolve_params(params: Mapping[str, Any] | None, overrides: Mapping[str, Any]) -> dict[str, Any]:
    if params is None:
        resolved = load_simulation_params()
    elif "parameters" in params and isinstance(params["parameters"], Mapping):
        resolved = dict(params["parameters"])
    else:
        resolved = dict(params)
    for key, value in overrides.items():
        if key not in resolved:
            close = difflib.get_close_matches(key, list(resolved), n=3)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise ValueError(
                f"Unknown simulation parameter {key!r}.{hint} Valid names are the keys of the 'parameters' "
                "section of carrisk/data/simulation_params.json."
            )
        resolved[key] = value
    return resolved


# --------------------------------------------------------------------------------------------------------------
# Latent draws (common random numbers): every random number a cohort needs, independent of the parameters.
# --------------------------------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SimulatedCohort:
    """A simulated cohort: the records a study would hold and the truth behind them.

    Attributes
    ----------
    records : pandas.DataFrame
        One row per patient, exactly the columns of ``docs/records.md`` (pre-infusion then outcome) in order.
    truth : pandas.DataFrame
        Same rows and order: ``patient_id``, ``true_cr_prob``, ``true_efs_6mo``, ``true_efs_12mo``,
        ``true_risk`` (= -log S(12 months), higher = worse), ``true_lp_cr`` (logit of day-28 CR),
        ``true_lp_<cause>`` (log relative hazard of each cause in :data:`CAUSES`), the latent
        ``true_blina_group``, ``true_high_burden``, ``true_cd19_dim_partial``, ``true_kmt2a``, and
        ``true_cif_<cause>_6mo``/``_12mo``: the true cumulative incidence of each recorded first-event cause of
        :data:`TRUE_CIF_CAUSES` (see :func:`true_cause_incidence`).
    time_grid : numpy.ndarray
        Days from infusion at which ``truth_curves`` is given (includes 28, 182.625 and 365.25).
    truth_curves : numpy.ndarray
        ``(n, len(time_grid))`` true EFS survival S(t), without censoring.
    params : dict
        The parameters the cohort was drawn with.
    seed : int
        The seed.
    """

    records: pd.DataFrame
    truth: pd.DataFrame
    time_grid: np.ndarray
    truth_curves: np.ndarray
    params: dict[str, Any]
    seed: int


#: Simulated external centres for demonstrations and tests. ``shifted``: more blinatumomab exposure and
#: high-burden disease, mostly commercial tisagenlecleucel, a worse post-remission baseline and fewer
#: remissions (its effects are the default centre's, so a model's calibration slope stays near 1 there).
#: ``baseline_and_effects``: the post-remission baseline hazard x 1.8 and every effect x 0.7, as at a centre
#: with another product or population; a model from the default centre is off in the large *and* in its slope
#: there (about 0.6), the case for a recalibration or revision (benchmarks/external_validation.py).
EXTERNAL_CENTRES: dict[str, dict[str, Any]] = {
    "baseline_and_effects": {"baseline_hazard_multiplier": 1.8, "effect_scale": 0.7},
    "shifted": {
        "case_mix": {
            "blina_exposed": 0.35,
            "high_burden_odds_ratio": 1.8,
            "product": {"tisagenlecleucel": 0.7, "chop_penn": 0.1, "scri_plat02": 0.1, "nci_cd28": 0.1},
        },
        "baseline_hazard_multiplier": 1.6,
        "cr_logodds_shift": -0.5,
    },
}
_CASE_MIX_KEYS = ("blina_exposed", "high_burden_odds_ratio", "product")


def centre_params(
    params: Mapping[str, Any],
    *,
    case_mix: Mapping[str, Any] | None = None,
    baseline_hazard_multiplier: float = 1.0,
    cr_logodds_shift: float = 0.0,
    effect_scale: float = 1.0,
) -> dict[str, Any]:
    """Parameters of a different centre: another case-mix, post-remission baseline hazard, CR rate and effects.

    Parameters
    ----------
    params : mapping
        Resolved simulation parameters (e.g. :func:`load_simulation_params`).
    case_mix : mapping, optional
        ``blina_exposed`` (probability in [0, 1]) replaces ``blina_exposed_prob``; ``high_burden_odds_ratio``
        (> 0) multiplies the odds of ``marrow_high_prob_naive``/``_responder``/``_nonresponder``; ``product``
        (mapping of :data:`CAR_PRODUCTS` names to non-negative shares) replaces ``car_product_probs``.
    baseline_hazard_multiplier : float, default 1.0
        Added as ``log(multiplier)`` to every ``hazard_log_rate_<cause>``.
    cr_logodds_shift : float, default 0.0
        Added to ``cr_intercept``.
    effect_scale : float, default 1.0
        Multiplies every log hazard ratio (``loghr_*``) and day-28 CR log odds ratio (``cr_logor_*``): below 1
        the predictors matter less at this centre (a model from the default centre has a calibration slope
        below 1 there). The baselines are not re-centred, so the centre's mean risk moves too.

    Returns
    -------
    dict
        A new parameter dict; with the defaults equal to ``params``.

    Raises
    ------
    ValueError
        For an unknown case-mix key, a product name not in :data:`CAR_PRODUCTS`, or a value out of range.
    """
    p = dict(params)
    mix = dict(case_mix or {})
    unknown = sorted(set(mix) - set(_CASE_MIX_KEYS))
    if unknown:
        raise ValueError(f"unknown case_mix key(s) {unknown}; valid keys are {list(_CASE_MIX_KEYS)}")
    if "blina_exposed" in mix:
        share = float(mix["blina_exposed"])
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"case_mix blina_exposed must be a probability in [0, 1], got {share}")
        p["blina_exposed_prob"] = share
    if "high_burden_odds_ratio" in mix:
        odds_ratio = float(mix["high_burden_odds_ratio"])
        if not odds_ratio > 0.0:
            raise ValueError(f"case_mix high_burden_odds_ratio must be > 0, got {odds_ratio}")
        for group in BLINA_GROUPS:
            key = f"marrow_high_prob_{group}"
            p[key] = float(special.expit(special.logit(p[key]) + np.log(odds_ratio)))
    if "product" in mix:
        shares = {str(name): float(value) for name, value in dict(mix["product"]).items()}
        bad = sorted(set(shares) - set(CAR_PRODUCTS))
        if bad or any(value < 0 for value in shares.values()) or sum(shares.values()) <= 0:
            raise ValueError(
                f"case_mix product must give non-negative shares of {list(CAR_PRODUCTS)} summing to > 0, got {shares}"
            )
        p["car_product_probs"] = {name: shares.get(name, 0.0) for name in CAR_PRODUCTS}
    multiplier = float(baseline_hazard_multiplier)
    if not (np.isfinite(multiplier) and multiplier > 0.0):
        raise ValueError(f"baseline_hazard_multiplier must be a positive number, got {baseline_hazard_multiplier!r}")
    if multiplier != 1.0:
        for cause in CAUSES:
            p[f"hazard_log_rate_{cause}"] = p[f"hazard_log_rate_{cause}"] + np.log(multiplier)
    if not np.isfinite(cr_logodds_shift):
        raise ValueError(f"cr_logodds_shift must be a finite number, got {cr_logodds_shift!r}")
    if cr_logodds_shift != 0.0:
        p["cr_intercept"] = p["cr_intercept"] + float(cr_logodds_shift)
    scale = float(effect_scale)
    if not (np.isfinite(scale) and scale >= 0.0):
        raise ValueError(f"effect_scale must be a non-negative number, got {effect_scale!r}")
    if scale != 1.0:
        for name in [name for name in p if name.startswith(("loghr_", "cr_logor_"))]:
            p[name] = scale * float(p[name])
    return p


def _time_grid() -> np.ndarray:
    grid = np.linspace(0.0, 5 * DAYS_PER_YEAR, 61)
    return np.unique(np.concatenate([grid, [DAY28_DAYS, SIX_MONTHS_DAYS, TWELVE_MONTHS_DAYS]]))


def simulate_cohort(
    n: int = 420,
    seed: int = 0,
    *,
    missing_rate: float = 0.03,
    messy: bool = True,
    params: Mapping[str, Any] | None = None,
    case_mix: Mapping[str, Any] | None = None,
    baseline_hazard_multiplier: float = 1.0,
    cr_logodds_shift: float = 0.0,
    effect_scale: float = 1.0,
    **overrides: Any,
) -> SimulatedCohort:
    """Simulate a cohort of CD19-CAR recipients in the carrisk record schema, with the true EFS behind it.

    Parameters
    ----------
    n : int, default 420
        Number of patients (the size of the Myers et al. cohort).
    seed : int, default 0
        Seed for ``np.random.default_rng``; the same seed gives the same cohort.
    missing_rate : float, default 0.03
        Probability that a cell of a non-key pre-infusion column is missing (messy mode only). ``patient_id``,
        ``blina_exposed`` and the outcome columns are never missing.
    messy : bool, default True
        Use the varied accepted spellings of ``docs/records.md`` and blank cells. With ``False`` every value is
        in its canonical encoding and nothing is missing except the structural blanks (``blina_response`` of
        blinatumomab-naive patients, ``months_since_last_hsct`` without a transplant). The patients are the same
        in both modes.
    params : mapping, optional
        Full parameter set (or the whole JSON document); defaults to the fitted
        ``carrisk/data/simulation_params.json``.
    case_mix : mapping, optional
        A different centre's case-mix (see :func:`centre_params`): ``blina_exposed`` (share with prior
        blinatumomab), ``high_burden_odds_ratio`` (multiplies the odds of marrow blasts >= 5 % in every
        blinatumomab group) and ``product`` (shares of the CAR products by name).
    baseline_hazard_multiplier : float, default 1.0
        Multiplies the baseline hazard of every post-CR cause (> 1: a worse centre).
    cr_logodds_shift : float, default 0.0
        Added to the log-odds of day-28 CR for every patient (< 0: fewer remissions).
    effect_scale : float, default 1.0
        Multiplies every log hazard ratio and CR log odds ratio (< 1: the predictors matter less there).
    **overrides
        Individual parameters to replace by name, e.g. ``cr_intercept=2.0``.

    Returns
    -------
    SimulatedCohort
        Its ``params`` are the parameters after the centre options were applied, so ``true_survival`` and
        the truth table describe the simulated centre.

    Raises
    ------
    ValueError
        If an override names no known parameter, or ``n < 1`` or ``missing_rate`` is outside [0, 1), or a
        centre option is out of range.

    Notes
    -----
    The centre options change parameters only, never the random streams: with the defaults the cohort is
    the default cohort, and with a shifted case-mix each patient keeps the latent draws of the same patient
    of the default cohort.
    """
    if int(n) < 1:
        raise ValueError(f"n must be a positive number of patients, got {n!r}.")
    if not 0.0 <= missing_rate < 1.0:
        raise ValueError(f"missing_rate must be in [0, 1), got {missing_rate!r}.")
    n = int(n)
    p = centre_params(
        _resolve_params(params, overrides),
        case_mix=case_mix,
        baseline_hazard_multiplier=baseline_hazard_multiplier,
        cr_logodds_shift=cr_logodds_shift,
        effect_scale=effect_scale,
    )
    patient_rng, messy_rng, early_rng = np.random.default_rng(seed).spawn(3)
    draws = _draw_latent(n, patient_rng)
    x = _covariates(p, draws)
    lp = _linear_predictors(p, x)
    cr_prob = special.expit(lp["cr"])
    rel_hazard = _relative_hazards(lp)
    edges, rates = _baseline_rates(p)

    outcomes = _with_early_deaths(_simulate_outcomes(p, draws, cr_prob, rel_hazard, edges, rates), p, early_rng)
    patient_id = np.array([f"SIM-{i:04d}" for i in range(1, n + 1)], dtype=object)
    records = _canonical_records(patient_id, x, outcomes)
    if messy:
        records = _messy_records(records, x, missing_rate, p, messy_rng)

    grid = _time_grid()
    q = _non_evaluable(p)
    curves = _survival_from(cr_prob, rel_hazard, edges, rates, grid, q)
    s6, s12 = _survival_from(cr_prob, rel_hazard, edges, rates, [SIX_MONTHS_DAYS, TWELVE_MONTHS_DAYS], q).T
    group = np.where(x["nonresponder"], "nonresponder", np.where(x["responder"], "responder", "naive"))
    truth = pd.DataFrame(
        {
            "patient_id": patient_id,
            "true_cr_prob": cr_prob,
            "true_efs_6mo": s6,
            "true_efs_12mo": s12,
            "true_risk": -np.log(s12),
            "true_lp_cr": lp["cr"],
            **{f"true_lp_{cause}": lp[cause] for cause in CAUSES},
            "true_blina_group": group,
            "true_high_burden": x["high_burden"],
            "true_cd19_dim_partial": x["cd19_dim_partial"],
            "true_kmt2a": x["kmt2a"],
            **_true_cif_columns(p, cr_prob, rel_hazard, edges, rates),
        }
    )
    return SimulatedCohort(records, truth, grid, curves, p, int(seed))


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


def _canonical_records(
    patient_id: np.ndarray, x: Mapping[str, np.ndarray], outcomes: Mapping[str, np.ndarray]
) -> pd.DataFrame:
    n = patient_id.size
    blina_response = np.full(n, np.nan, dtype=object)
    blina_response[x["responder"] & x["response_recorded"]] = "CR"
    blina_response[x["nonresponder"] & x["response_recorded"]] = "NR"
    blina_response[x["exposed"] & ~x["response_recorded"]] = "not evaluable"
    cd19 = np.where(x["cd19_partial"], "partial", np.where(x["cd19_dim_partial"], "dim", "bright"))
    male = x["male"]
    normal_karyotype = np.where(male, "46,XY", "46,XX")
    cytogenetics = np.where(x["kmt2a"], "KMT2A-AFF1", normal_karyotype).astype(object)
    blasts = np.where(x["marrow_high"], np.round(x["blasts"], 1), np.round(x["blasts"], 3))
    blasts = np.where(x["mrd_positive"], np.maximum(blasts, 0.01), blasts)
    records = pd.DataFrame(
        {
            "patient_id": patient_id,
            "age_years": np.round(x["age"], 1),
            "sex": np.where(male, "M", "F").astype(object),
            "car_product": np.asarray(CAR_PRODUCTS, dtype=object)[x["product"]],
            "blina_exposed": x["exposed"].astype(bool),
            "blina_response": blina_response,
            "marrow_blasts_pct": blasts,
            "cns_status": np.char.add("CNS", x["cns"].astype(str)).astype(object),
            "extramedullary_disease": x["emd"].astype(bool),
            "cd19_expression": cd19.astype(object),
            "kmt2a_status": np.where(x["kmt2a"], "rearranged", "not_rearranged").astype(object),
            "cytogenetics": cytogenetics,
            "prior_hsct_count": x["hsct_count"],
            "months_since_last_hsct": np.round(x["hsct_months"], 1),
            "prior_relapses": x["prior_relapses"],
            "down_syndrome": x["down"].astype(bool),
            "prior_inotuzumab": x["inotuzumab"].astype(bool),
            **outcomes,
        }
    )
    return records[list(RECORD_COLUMNS)]


def _pick(rng: np.random.Generator, options: tuple[str, ...], size: int) -> np.ndarray:
    return np.asarray(options, dtype=object)[rng.integers(0, len(options), size=size)]


def _messy_records(
    canonical: pd.DataFrame,
    x: Mapping[str, np.ndarray],
    missing_rate: float,
    p: Mapping[str, Any],
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Re-spell the canonical records with accepted variants and blank cells at ``missing_rate``."""
    n = len(canonical)
    out = canonical.copy()

    for column in ("sex", "car_product", "cns_status", "cd19_expression"):
        values = canonical[column].to_numpy(dtype=object)
        respelled = values.copy()
        for canonical_value, options in _SPELLINGS[column].items():
            mask = values == canonical_value
            respelled[mask] = _pick(rng, options, int(mask.sum()))
        out[column] = respelled

    response = np.full(n, np.nan, dtype=object)
    for group, mask in (
        ("responder", x["responder"] & x["response_recorded"]),
        ("nonresponder", x["nonresponder"] & x["response_recorded"]),
        ("unknown", x["exposed"] & ~x["response_recorded"]),
    ):
        response[mask] = _pick(rng, _SPELLINGS["blina_response"][group], int(mask.sum()))
    response[response == ""] = np.nan
    out["blina_response"] = response

    yes_no_style = rng.integers(0, len(_YES_NO_STYLES), size=n)
    yes = np.array([style[0] for style in _YES_NO_STYLES], dtype=object)[yes_no_style]
    no = np.array([style[1] for style in _YES_NO_STYLES], dtype=object)[yes_no_style]
    for column in ("blina_exposed", "extramedullary_disease", "down_syndrome", "prior_inotuzumab"):
        out[column] = np.where(canonical[column].to_numpy(dtype=bool), yes, no)

    out["marrow_blasts_pct"] = _messy_blasts(canonical["marrow_blasts_pct"].to_numpy(dtype=float), x, rng)

    kmt2a_status, cytogenetics = _messy_kmt2a(x, p, rng)
    out["kmt2a_status"] = kmt2a_status
    out["cytogenetics"] = cytogenetics

    for column in ("prior_hsct_count", "prior_relapses"):
        out[column] = out[column].astype("Int64")

    for column in _MISSABLE_COLUMNS:
        mask = rng.random(n) < missing_rate
        if column in _TOKEN_MISSING_COLUMNS:
            tokens = _pick(rng, ("", "", "", *_MISSING_TOKENS), n)
            values = out[column].to_numpy(dtype=object)
            values[mask] = tokens[mask]
            values[values == ""] = np.nan
            out[column] = values
        else:
            out.loc[mask, column] = pd.NA if str(out[column].dtype) == "Int64" else np.nan
    return out[list(RECORD_COLUMNS)]


def _messy_blasts(blasts: np.ndarray, x: Mapping[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    n = blasts.size
    style = rng.random(n)
    m_code = rng.random(n) < 0.05
    text = np.empty(n, dtype=object)
    undetectable = x["undetectable"]
    text[undetectable] = _pick(rng, _SPELLINGS["marrow_undetectable"], int(undetectable.sum()))
    for i in np.flatnonzero(x["mrd_positive"]):
        value = f"{blasts[i]:.3g}"
        text[i] = "M1" if m_code[i] else (value + "%" if style[i] < 0.3 else value)
    for i in np.flatnonzero(x["marrow_high"]):
        if m_code[i]:
            text[i] = "M3" if blasts[i] > 25 else "M2"
        elif style[i] < 0.3:
            text[i] = f"{blasts[i]:.0f}%"
        elif style[i] < 0.6:
            text[i] = f"{blasts[i]:.0f}"
        else:
            text[i] = f"{blasts[i]:.1f}"
    return text


def _messy_kmt2a(
    x: Mapping[str, np.ndarray], p: Mapping[str, Any], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """KMT2A status spelled out, left blank (fusion then only in ``cytogenetics``) or ``not tested``."""
    n = x["kmt2a"].size
    u = rng.random(n)
    not_tested = u < p["kmt2a_not_tested_share"]
    blank_status = ~not_tested & (u < p["kmt2a_not_tested_share"] + p["kmt2a_status_blank_share"])
    status = np.where(
        x["kmt2a"],
        _pick(rng, _SPELLINGS["kmt2a_status"]["rearranged"], n),
        _pick(rng, _SPELLINGS["kmt2a_status"]["not_rearranged"], n),
    ).astype(object)
    status[not_tested] = "not tested"
    status[blank_status] = np.nan

    normal = np.where(x["male"], "46,XY", "46,XX").astype(object)
    other = _pick(rng, _OTHER_KARYOTYPES, n)
    karyotype = np.where(rng.random(n) < 0.6, normal, other)
    cytogenetics = np.where(x["kmt2a"], _pick(rng, _KMT2A_FUSIONS, n), karyotype).astype(object)
    cytogenetics[not_tested] = np.nan
    return status, cytogenetics


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
